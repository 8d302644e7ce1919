/* The selected document's published versions: view one, compare it with the one before, roll back to it. */

import { api } from '../lib/api.js';
import { $, clear, el } from '../lib/dom.js';
import { ACTION_LABELS, authorLabel } from '../lib/labels.js';
import { formatTs } from '../lib/text.js';
import { onDocLoaded, updateStatus } from './docs.js';
import { notice, setMsg, spinnerNote } from './messages.js';
import { rollback } from './publish.js';
import { sopPath, state, ui } from './state.js';

function historyItem(r, prev, isCurrent) {
  const hasContent = r.action !== 'delete';
  let rbTitle = `把 v${r.version} 的内容发布为新版本`;
  if (!hasContent) rbTitle = '删除记录没有内容，不能回滚到这里';
  else if (isCurrent) rbTitle = '这已是当前版本';
  const viewBtn = el('button', { type: 'button', class: 'btn small view-btn', disabled: !hasContent }, '查看');
  const diffBtn = el('button', { type: 'button', class: 'btn small diff-btn', disabled: !prev }, '与上一版对比');
  const rbBtn = el(
    'button',
    { type: 'button', class: 'btn small rollback-btn', disabled: !hasContent || isCurrent, title: rbTitle },
    '回滚到此版本',
  );
  viewBtn.addEventListener('click', () => viewVersion(r.version));
  diffBtn.addEventListener('click', () => showDiff(prev.version, r.version));
  rbBtn.addEventListener('click', () => rollback(r.version, rbBtn));
  return el(
    'li',
    { class: `history-item${isCurrent ? ' current' : ''}`, dataset: { version: String(r.version), action: r.action } },
    el(
      'div',
      { class: 'hi-head' },
      el('b', null, `v${r.version}`),
      el(
        'span',
        { class: `badge${r.action === 'delete' ? ' overdue' : ''}` },
        r.restored ? `回滚到 v${r.restored}` : ACTION_LABELS[r.action] || r.action,
      ),
      isCurrent ? el('span', { class: 'badge public' }, '当前') : null,
    ),
    el('div', { class: 'hi-meta' }, `${formatTs(r.ts)} · ${authorLabel(r.author)}`),
    el('div', { class: 'hi-actions' }, viewBtn, diffBtn, rbBtn),
  );
}

export function renderHistory() {
  clear(ui.historyList);
  if (!state.selected) {
    ui.historyNote.textContent = '选择一份 SOP 后显示它的发布历史。';
    return;
  }
  const records = state.history;
  if (state.historyDenied) {
    ui.historyNote.textContent = '查看发布历史需要培训师 API 密钥。';
    return;
  }
  if (!records.length) {
    ui.historyNote.textContent = '还没有历史版本：首次通过工作台发布时，会先把文件夹中的原始版本记入历史。';
    return;
  }
  ui.historyNote.textContent = `共 ${records.length} 个版本，最新在上。`;
  const latest = records[records.length - 1];
  for (let i = records.length - 1; i >= 0; i -= 1) {
    const r = records[i];
    ui.historyList.appendChild(historyItem(r, i > 0 ? records[i - 1] : null, r === latest && r.action !== 'delete'));
  }
}

async function refreshHistory() {
  if (!state.selected) return;
  try {
    state.history = await api(`${sopPath(state.selected)}/history`);
  } catch (err) {
    state.history = [];
    ui.historyNote.textContent = `无法读取历史版本：${err.message}`;
    clear(ui.historyList);
    return;
  }
  renderHistory();
}

async function viewVersion(version) {
  clear(ui.lower).appendChild(spinnerNote(`正在加载 v${version}…`));
  try {
    const v = await api(`${sopPath(state.selected)}/versions/${version}`);
    const load = el('button', { type: 'button', class: 'btn small' }, '载入编辑器');
    load.addEventListener('click', () => {
      ui.editor.value = v.content;
      updateStatus();
      setMsg(notice('info', `已把 v${version} 的内容载入编辑器；发布时仍以 v${state.base} 为基准。`));
      ui.editor.focus();
    });
    const meta = `${ACTION_LABELS[v.action] || v.action} · ${formatTs(v.ts)} · ${v.path}`;
    clear(ui.lower).append(
      el('h3', null, `v${version} 的内容`, el('span', { class: 'faint' }, meta), el('span', { class: 'spacer' }), load),
      el('pre', { class: 'code version-content' }, v.content),
    );
    ui.lower.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  } catch (err) {
    clear(ui.lower).appendChild(notice('error', `无法加载 v${version}：${err.message}`));
  }
}

export function diffLines(diff) {
  const pre = el('pre', { class: 'code diff' });
  if (!diff) pre.appendChild(el('span', null, '两个版本内容相同。'));
  for (const line of String(diff).replace(/\n$/, '').split('\n')) {
    let cls = null;
    if (line.startsWith('+++') || line.startsWith('---')) cls = 'file';
    else if (line.startsWith('@@')) cls = 'hunk';
    else if (line.startsWith('+')) cls = 'add';
    else if (line.startsWith('-')) cls = 'del';
    pre.appendChild(el('span', { class: cls }, line || ' '));
  }
  return pre;
}

async function showDiff(from, to) {
  clear(ui.lower).appendChild(spinnerNote('正在对比…'));
  try {
    const diff = await api(`${sopPath(state.selected)}/diff`, { query: { from, to } });
    const adds = (String(diff).match(/^\+(?!\+\+)/gm) || []).length;
    const dels = (String(diff).match(/^-(?!--)/gm) || []).length;
    clear(ui.lower).append(
      el('h3', null, `v${from} → v${to} 的差异`, el('span', { class: 'faint' }, `+${adds} 行 / -${dels} 行`)),
      diffLines(diff),
    );
    ui.lower.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  } catch (err) {
    clear(ui.lower).appendChild(notice('error', `无法对比：${err.message}`));
  }
}

export function initHistory() {
  onDocLoaded(renderHistory);
  ui.historyBtn.addEventListener('click', async () => {
    await refreshHistory();
    ui.historyPane.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    $('.history-item button:not(:disabled)', ui.historyList)?.focus();
  });
}
