/* 在正文中查找: the lines of every published SOP's file that hold a text (GET /v1/text-search), in the pane under the
   editor, each line a button that opens its document and selects that line (a trial's rule change was written in five
   SOPs; the document filter, which reads titles, ids and tags, found two of them). */

import { api } from '../lib/api.js';
import { clear, el } from '../lib/dom.js';
import { selectDoc } from './docs.js';
import { lineButton, notice, spinnerNote } from './messages.js';
import { ui } from './state.js';

let shown = null; // the latest result, shown again after a document opens (to go through them one by one)

function lineRow(doc, hit) {
  const go = lineButton(hit.line, async () => {
    await selectDoc(doc.sop_id);
    if (shown) render(shown); // opening a document clears the pane
  });
  return el('li', null, go, ` ${hit.text}`);
}

function render(body) {
  shown = body;
  const pane = clear(ui.lower);
  const listed = body.results.length < body.documents ? `（列出前 ${body.results.length} 份）` : '';
  pane.append(
    el(
      'h3',
      { id: 'text-search-head' },
      `正文中包含「${body.query}」`,
      el('span', { class: 'faint' }, body.documents ? `${body.documents} 份文档${listed}` : '没有文档包含这段文字'),
    ),
  );
  for (const doc of body.results) {
    pane.append(
      el('h4', { class: 'lint-doc' }, `${doc.title}（${doc.path}）`),
      el(
        'ul',
        { class: 'issues text-hits' },
        doc.lines.map((hit) => lineRow(doc, hit)),
        doc.more ? el('li', { class: 'faint' }, `还有 ${doc.more} 行`) : null,
      ),
    );
  }
}

/** Look for `q` in every published SOP's text and list the lines in the pane under the editor. */
export async function searchText(q) {
  clear(ui.lower).append(spinnerNote(`正在所有文档中查找「${q}」…`));
  try {
    render(await api('/v1/text-search', { query: { q } }));
  } catch (err) {
    const why = err.status === 403 || err.status === 401 ? '在正文中查找需要培训师密钥' : `无法查找：${err.message}`;
    clear(ui.lower).append(notice('error', why));
  }
}
