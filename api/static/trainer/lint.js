/* 检查全部: every document's problems, as `kb lint` prints them (GET /v1/lint), in the pane under the editor — each
   document with its problems, a button on each line that opens the document and selects that line (a trainer without
   a shell saw problems only in the preview of the document open in the editor). */

import { api } from '../lib/api.js';
import { clear, el } from '../lib/dom.js';
import { selectDoc } from './docs.js';
import { lineButton } from './messages.js';
import { state, ui } from './state.js';

function issueRow(issue) {
  const kind = issue.severity === 'error' ? '错误' : '警告';
  const go = lineButton(issue.line, async () => {
    await selectDoc(issue.sop_id);
    if (shown) render(shown); // opening a document clears the pane: the list stays, to go through it one by one
  });
  return el(
    'li',
    { class: issue.severity === 'error' ? 'error' : 'warning' },
    issue.sop_id ? go : `第 ${issue.line} 行`,
    ` · ${kind}: ${issue.message}`,
  );
}

let shown = null; // the latest check, shown again after a document opens

function render(body) {
  shown = body;
  const pane = clear(ui.lower);
  const byFile = new Map();
  for (const i of body.issues) byFile.set(i.path, [...(byFile.get(i.path) || []), i]);
  pane.appendChild(
    el(
      'h3',
      null,
      '检查全部文档',
      el('span', { class: 'faint' }, `${body.documents} 个文档：${body.errors} 个错误，${body.warnings} 个警告`),
      body.issues.length ? null : el('span', { class: 'badge public' }, '全部通过'),
    ),
  );
  for (const [path, issues] of byFile) {
    const title = state.sops.find((s) => s.sop_id === issues[0].sop_id)?.title;
    pane.append(
      el('h4', { class: 'lint-doc' }, title ? `${title}（${path}）` : path),
      el('ul', { class: 'issues lint-issues' }, issues.map(issueRow)),
    );
  }
}

export function initLint() {
  const button = el('button', { type: 'button', class: 'btn small', id: 'lint-btn' }, '检查全部');
  button.title = '检查知识库里的全部文档（格式、内部标记、紧急类文档的安全提示等），与 kb lint 相同';
  ui.newBtn.before(button);
  button.addEventListener('click', async () => {
    clear(ui.lower).appendChild(el('div', { class: 'faint' }, el('span', { class: 'spinner' }), ' 正在检查全部文档…'));
    try {
      render(await api('/v1/lint'));
    } catch (err) {
      const why = err.status === 403 || err.status === 401 ? '检查全部文档需要培训师密钥' : `无法检查：${err.message}`;
      clear(ui.lower).appendChild(el('div', { class: 'notice error' }, why));
    }
  });
}
