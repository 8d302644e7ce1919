/* The whole SOP in a side drawer: metadata, every section, matched sections marked, copyable script lines. */

import { announce } from '../lib/announce.js';
import { api } from '../lib/api.js';
import { scriptLine } from '../lib/clipboard.js';
import { append, clear, controlKey, el, findControl } from '../lib/dom.js';
import { KIND_LABELS } from '../lib/labels.js';
import { learning } from '../lib/learning.js';
import { isCueLine, isOverdue, renderText, sopRefs } from '../lib/text.js';
import { state, ui } from './state.js';

export const internalBadge = (title) =>
  el('span', { class: 'badge internal', title: title || '仅员工可见，不要告知租客' }, '内部');

/** The structured SOP of a hit (cached per version; a failed load is retried next time). */
export function loadSop(hit) {
  const key = `${hit.sop_id}@${hit.version}`;
  if (!state.sopCache.has(key)) {
    const p = api(`/v1/sops/${encodeURIComponent(hit.sop_id)}`);
    p.catch(() => state.sopCache.delete(key));
    state.sopCache.set(key, p);
  }
  return state.sopCache.get(key);
}

// The control that opened the drawer, where focus returns when it closes; none when the search box opened it (the
// agent goes on typing there: the drawer is announced, and PageDown scrolls it). An accessibility review: focus stayed
// behind a drawer opened from a button, 49 Tab stops from it, and always went back to the search box.
let opener = null;
let openerKey = null; // where it was (lib/dom.js controlKey)

export function closeView({ focusSearch = true } = {}) {
  state.viewOpenFor = null;
  ui.view.hidden = true;
  ui.backdrop.hidden = true;
  // ... or the control that replaced it when its panel was redrawn (the queue redraws the open case every 4 s: a
  // re-check was sent to the search box after reading a SOP for more than a second)
  const back = opener?.isConnected ? opener : findControl(openerKey);
  opener = null;
  openerKey = null;
  if (back && !back.closest('[hidden]')) back.focus();
  else if (focusSearch) ui.search.focus();
}

/** Focus moves into the drawer when a button or link opened it; from the search box it is announced instead. */
function takeFocus(title) {
  const from = document.activeElement;
  if (from && from !== document.body && from !== ui.search && !ui.view.contains(from)) {
    opener = from;
    openerKey = controlKey(from);
    ui.viewTitle.tabIndex = -1;
    ui.viewTitle.focus();
  } else if (!ui.view.contains(from)) {
    announce(`已打开全文：${title}。PageDown 翻页，Esc 关闭`);
  }
}

export function openView(index) {
  const hit = state.hits[index];
  if (hit) showSop(hit.sop_id, hit.title, () => loadSop(hit), hit);
}

/** The full SOP in the drawer: a result's, or one the agent picked because the search missed it (lib/learning.js). */
async function showSop(sopId, title, load, hit) {
  if (state.viewOpenFor === sopId && !ui.view.hidden) return;
  state.viewOpenFor = sopId;
  ui.view.hidden = false;
  ui.backdrop.hidden = false;
  ui.view.dataset.sopId = sopId;
  ui.viewTitle.textContent = title;
  takeFocus(title);
  clear(ui.viewMeta);
  clear(ui.viewBody).appendChild(
    el('div', { class: 'drawer-loading' }, el('span', { class: 'spinner' }), ' 正在加载全文…'),
  );
  ui.viewBody.scrollTop = 0;
  document.dispatchEvent(new CustomEvent('kb:sop-opened', { detail: { sopId, queryId: state.queryId } }));
  let sop;
  try {
    sop = await load();
  } catch (err) {
    if (state.viewOpenFor !== sopId) return;
    clear(ui.viewBody).appendChild(el('div', { class: 'notice error' }, `无法加载全文：${err.message}`));
    return;
  }
  if (state.viewOpenFor !== sopId) return;
  renderSop(sop, hit);
}
learning.openSop = (sopId) => showSop(sopId, sopId, () => api(`/v1/sops/${encodeURIComponent(sopId)}`), null);
sopRefs.open = (sopId, title) => {
  state.viewOpenFor = null; // another SOP named in the open one replaces it
  showSop(sopId, title, () => api(`/v1/sops/${encodeURIComponent(sopId)}`), null);
};

function metaTable(sop) {
  const m = sop.meta;
  const rows = [];
  const row = (label, value) => {
    if (value) rows.push(el('tr', null, el('th', null, label), el('td', null, value)));
  };
  row('负责人', m.owner);
  row('更新日期', m.updated);
  if (m.review_by) {
    const overdue = el('span', { class: 'badge overdue' }, `${m.review_by}（已过期，内容可能需要更新）`);
    row('复核日期', isOverdue(m.review_by) ? overdue : m.review_by);
  }
  row('标签', m.tags?.length ? m.tags.join('、') : '');
  row('适用范围', m.scope?.length ? m.scope.join('、') : '');
  row('文件', el('span', { class: 'mono' }, sop.path));
  return el('table', { class: 'meta-table' }, el('tbody', null, rows));
}

function sectionBody(s, counter) {
  if (s.kind === 'script') {
    const renderScript = (line) =>
      scriptLine(line, { index: isCueLine(line) ? undefined : ++counter.n, internal: s.internal });
    return renderText(s.text, { scripts: new Set(s.scripts), renderScript });
  }
  if (s.kind === 'faq' && s.qa?.length) {
    const qa = el(
      'dl',
      { class: 'qa' },
      s.qa.map((pair) => [el('dt', null, pair.question), el('dd', null, renderText(pair.answer))]),
    );
    return [s.text ? renderText(s.text) : null, qa];
  }
  return renderText(s.text);
}

function renderSection(s, matched, counter) {
  const sec = el('section', {
    class: `sop-section kind-${s.kind} level-${s.level}${s.internal ? ' internal' : ''}${matched ? ' matched' : ''}`,
    dataset: { kind: s.kind, internal: String(s.internal) },
  });
  const label = KIND_LABELS[s.kind];
  sec.appendChild(
    el(
      s.level >= 3 ? 'h4' : 'h3',
      null,
      s.heading,
      s.internal ? internalBadge('内部小节：仅员工可见，不要告知租客') : null,
      s.kind !== 'plain' && !s.heading.includes(label) ? el('span', { class: 'kind-tag' }, label) : null,
      matched ? el('span', { class: 'match-tag' }, '匹配') : null,
    ),
  );
  if (s.internal) {
    sec.appendChild(el('div', { class: 'internal-note' }, '以下为内部信息，仅供员工参考，不要念给或转发给租客。'));
  }
  append(sec, [sectionBody(s, counter)]);
  return sec;
}

function renderSop(sop, hit) {
  const m = sop.meta;
  ui.viewTitle.textContent = sop.title;
  append(clear(ui.viewMeta), [
    el('span', { class: 'badge cat' }, m.category),
    el('span', { class: 'badge ver' }, `v${m.version}`),
    m.audience === 'agent'
      ? el('span', { class: 'badge staff' }, '仅员工可见文档')
      : el('span', { class: 'badge public' }, '租客可见文档'),
    sop.sections.some((s) => s.internal) ? el('span', { class: 'badge internal' }, '含内部小节') : null,
  ]);
  const body = clear(ui.viewBody);
  body.appendChild(metaTable(sop));
  const matchedPaths = new Set((hit ? hit.sections : []).map((s) => (s.heading_path || []).join('\u0000')));
  const counter = { n: 0 }; // script lines are numbered through the whole document
  for (const s of sop.sections) {
    body.appendChild(renderSection(s, matchedPaths.has((s.heading_path || []).join('\u0000')), counter));
  }
}

export function initDrawer() {
  ui.viewClose.addEventListener('click', () => closeView());
  ui.backdrop.addEventListener('click', () => closeView());
}
