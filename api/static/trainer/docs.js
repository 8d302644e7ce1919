/* The document list and the editor: a document loads as the exact text of its file (GET …/source), unpublished
   edits are kept per document (and across a reload of the tab) until they are published or discarded. */

import { api } from '../lib/api.js';
import { $$, append, clear, el } from '../lib/dom.js';
import { learning } from '../lib/learning.js';
import { formatTs, isOverdue, isoDate } from '../lib/text.js';
import { setMsg } from './messages.js';
import { sopPath, state, summaryOf, ui } from './state.js';
import { searchText } from './text_search.js';

const DRAFTS_KEY = 'kb.trainer.drafts';
const loadedHooks = []; // run after a document (or a new one) is in the editor

/** Run `fn` whenever the editor has loaded a document. */
export function onDocLoaded(fn) {
  loadedHooks.push(fn);
}

// ---- document list -------------------------------------------------------------------------------------
let listRetry = null;
let listLoads = 0; // only the latest load renders: an earlier answer arriving late (e.g. a 401 from before the key
// was saved) must not replace the list it already rendered

export async function loadList() {
  clearTimeout(listRetry);
  const mine = ++listLoads;
  try {
    // Deleted SOPs are a trainer's: an agent's key or none would only get a 403 logged in the browser (a trial)
    const trainer = state.role === 'trainer' || state.role === 'admin';
    const deletedSops = trainer ? api('/v1/deleted-sops').catch(() => []) : Promise.resolve([]);
    const [sops, deleted] = await Promise.all([api('/v1/sops'), deletedSops]);
    if (mine !== listLoads) return;
    state.sops = sops;
    state.deleted = deleted; // listed last, to open and restore (a trial could not find a deleted SOP again)
  } catch (err) {
    if (mine !== listLoads) return;
    clear(ui.docList).appendChild(el('li', { class: 'empty-row' }, `无法加载文档列表：${err.message}`));
    if (err.status === 503) listRetry = setTimeout(loadList, 2000);
    return;
  }
  const cats = [...new Set(state.sops.map((s) => s.category))].sort((a, b) => a.localeCompare(b, 'zh-CN'));
  const current = ui.docCategory.value;
  clear(ui.docCategory).appendChild(el('option', { value: '' }, '全部分类'));
  for (const c of cats) ui.docCategory.appendChild(el('option', { value: c }, c));
  ui.docCategory.value = cats.includes(current) ? current : '';
  renderList();
}

function listItem(s) {
  const late = isOverdue(s.review_by);
  const review = s.review_by
    ? el(
        'span',
        { class: 'review', title: late ? '复核日期已过' : '复核日期' },
        late ? `复核过期 ${s.review_by}` : `复核 ${s.review_by}`,
      )
    : null;
  const item = el(
    'li',
    {
      class: `doc-item${late ? ' overdue' : ''}${s.sop_id === state.selected ? ' active' : ''}`,
      dataset: { sopId: s.sop_id },
      tabindex: '0',
      role: 'button',
      title: s.path,
    },
    el('div', { class: 'doc-item-title' }, s.title),
    el(
      'div',
      { class: 'doc-item-meta' },
      el('span', { class: 'mono' }, s.sop_id),
      s.version ? el('span', null, `v${s.version}`) : null, // 0: a view without a key hides versions
      el('span', null, s.audience === 'public' ? '租客可见' : '仅员工'),
      review,
    ),
  );
  return opensDoc(item, s.sop_id);
}

/** A list row that opens its document on a click, Enter or Space. */
function opensDoc(item, id) {
  item.addEventListener('click', () => selectDoc(id));
  item.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === ' ') {
      ev.preventDefault();
      selectDoc(id);
    }
  });
  return item;
}

function deletedItem(d) {
  const item = el(
    'li',
    {
      class: `doc-item deleted${d.sop_id === state.selected ? ' active' : ''}`,
      dataset: { sopId: d.sop_id },
      tabindex: '0',
      role: 'button',
      title: '已删除：打开后点「发布」或在历史中回滚即可恢复',
    },
    el('div', { class: 'doc-item-title' }, d.title),
    el(
      'div',
      { class: 'doc-item-meta' },
      el('span', { class: 'mono' }, d.sop_id),
      el('span', null, `v${d.version} 删除 · ${d.author} · ${formatTs(d.ts)}`),
    ),
  );
  return opensDoc(item, d.sop_id);
}

function renderList() {
  const q = ui.docFilter.value.trim().toLowerCase();
  const cat = ui.docCategory.value;
  const matches = (s) =>
    s.title.toLowerCase().includes(q) || s.sop_id.includes(q) || s.tags.some((t) => t.toLowerCase().includes(q));
  const shown = state.sops.filter((s) => (!cat || s.category === cat) && (!q || matches(s)));
  clear(ui.docList);
  const overdue = state.sops.filter((s) => isOverdue(s.review_by)).length;
  ui.docCount.textContent = `${shown.length} / ${state.sops.length} 份${overdue ? `，${overdue} 份复核过期` : ''}`;
  let group = null;
  for (const s of shown) {
    if (s.category !== group) {
      group = s.category;
      ui.docList.appendChild(el('li', { class: 'doc-group', 'aria-hidden': 'true' }, group));
    }
    ui.docList.appendChild(listItem(s));
  }
  const gone = (state.deleted || []).filter(
    (d) => !cat && (!q || d.title.toLowerCase().includes(q) || d.sop_id.includes(q)),
  );
  if (gone.length) {
    ui.docList.appendChild(el('li', { class: 'doc-group', 'aria-hidden': 'true' }, '已删除（打开后可恢复）'));
    for (const d of gone) ui.docList.appendChild(deletedItem(d));
  }
  if (!shown.length && !gone.length) {
    const empty = state.sops.length ? '没有符合筛选条件的文档' : '暂无文档';
    ui.docList.appendChild(el('li', { class: 'empty-row' }, empty));
  }
  const text = ui.docFilter.value.trim();
  if (text) {
    // The filter reads titles, ids and tags; a rule's wording is in the text (a trial's 「30 分钟」 found nothing)
    const find = el(
      'button',
      { type: 'button', class: 'linkish', id: 'text-search-btn' },
      `在所有文档正文中查找「${text}」`,
    );
    find.addEventListener('click', () => searchText(text));
    ui.docList.appendChild(el('li', { class: 'text-search-row' }, find));
  }
}

// ---- editor state --------------------------------------------------------------------------------------
const dirty = () => ui.editor.value !== state.loadedText;

export function keepDraft() {
  if (state.selected && dirty()) state.drafts.set(state.selected, { text: ui.editor.value, base: state.base });
  else if (state.selected) state.drafts.delete(state.selected);
}

function setNote(...nodes) {
  const content = nodes.filter(Boolean);
  ui.docNote.hidden = !content.length;
  append(clear(ui.docNote), content);
}

export function updateStatus() {
  ui.editorStatus.textContent = dirty() ? '● 有未发布的修改' : '';
}

function metaBadges(s) {
  const badges = [
    el('span', { class: 'badge cat' }, s.category),
    s.audience === 'public'
      ? el('span', { class: 'badge public' }, '租客可见')
      : el('span', { class: 'badge staff' }, '仅员工'),
  ];
  if (s.review_by) {
    badges.push(
      isOverdue(s.review_by)
        ? el('span', { class: 'badge overdue' }, `复核过期 ${s.review_by}`)
        : el('span', { class: 'faint' }, `复核 ${s.review_by}`),
    );
  }
  if (s.updated) badges.push(el('span', { class: 'faint' }, `更新 ${s.updated}`));
  return badges;
}

export function renderHeader() {
  const s = state.selected ? summaryOf(state.selected) : null;
  ui.docTitle.textContent = s ? s.title : state.selected || '新建 SOP';
  const meta = clear(ui.docMeta);
  if (state.selected) meta.appendChild(el('span', { class: 'mono' }, state.selected));
  if (state.base !== null && state.base !== undefined) {
    const title = '发布时以此版本为基准（base_version）';
    meta.appendChild(el('span', { class: 'badge ver', title }, `基于 v${state.base}`));
  }
  if (s) append(meta, metaBadges(s));
  else if (state.selected && !state.exists) meta.appendChild(el('span', { class: 'badge overdue' }, '已删除 / 未发布'));
  // Without a trainer's key (an agent's, or trial mode, where every caller is an agent) these would only fail: say so.
  const trainer = state.role === 'trainer';
  ui.deleteBtn.disabled = !state.exists || !trainer;
  ui.historyBtn.disabled = !state.selected || !trainer;
  ui.publishBtn.disabled = !trainer;
  ui.previewBtn.disabled = !trainer;
  for (const b of [ui.deleteBtn, ui.historyBtn, ui.publishBtn, ui.previewBtn]) {
    b.title = trainer ? '' : '需要培训师密钥（右上角 API 密钥）';
  }
  for (const n of $$('.doc-item', ui.docList)) n.classList.toggle('active', n.dataset.sopId === state.selected);
}

function finishLoading(notes) {
  setNote(...notes.flatMap((n, i) => [i ? el('br') : null, n]));
  renderHeader();
  for (const fn of loadedHooks) fn();
  updateStatus();
}

// ---- loading a document --------------------------------------------------------------------------------
/** The editor's text for a document: its file as it is (live), or its last content before it was deleted. */
async function documentText(id, history) {
  const latest = history.length ? history[history.length - 1] : null;
  if (summaryOf(id)) {
    const source = await api(`${sopPath(id)}/source`);
    return { text: source.content, base: source.version, notes: [] };
  }
  if (!latest) return { text: '', base: null, notes: [] };
  // Deleted: offer the last content for re-publishing; rollback is in the history list.
  const last = [...history].reverse().find((r) => r.action !== 'delete');
  const text = last ? (await api(`${sopPath(id)}/versions/${last.version}`)).content : '';
  const note = `这份文档已在 v${latest.version} 删除。编辑器中是删除前的最后内容；点「发布」或在右侧历史中「回滚到此版本」即可恢复。`;
  return { text, base: latest.version, notes: [note] };
}

function loadError(err, what) {
  if (err.status === 403 || err.status === 401) return `查看${what}需要培训师密钥。`;
  return `无法加载${what}：${err.message}`;
}

export async function selectDoc(id, { keepMessage = false, discardDraft = false } = {}) {
  if (id === state.selected && !discardDraft && !keepMessage) return;
  keepDraft();
  const token = ++state.loadToken;
  state.selected = id;
  state.exists = Boolean(summaryOf(id));
  if (!keepMessage) setMsg();
  clear(ui.lower);
  setNote();
  renderHeader();
  ui.editor.value = '';
  ui.editor.placeholder = '正在加载…';
  ui.editor.disabled = true;
  const notes = [];
  let history = [];
  let denied = false;
  try {
    history = await api(`${sopPath(id)}/history`);
  } catch (err) {
    denied = err.status === 403 || err.status === 401; // an agent's key: the history panel says so, not 「还没有历史版本」
    if (err.status !== 404 && !denied) notes.push(loadError(err, '历史版本'));
  }
  if (token !== state.loadToken) return;
  state.history = history;
  state.historyDenied = denied;
  let loaded = { text: '', base: summaryOf(id)?.version ?? null, notes: [] };
  try {
    loaded = await documentText(id, history);
  } catch (err) {
    notes.push(loadError(err, '文档原文'));
  }
  if (token !== state.loadToken) return;
  state.base = loaded.base;
  state.loadedText = loaded.text;
  notes.push(...loaded.notes);
  ui.editor.disabled = false;
  ui.editor.placeholder = '';
  const draft = discardDraft ? null : state.drafts.get(id);
  if (discardDraft) state.drafts.delete(id);
  ui.editor.value = draft ? draft.text : loaded.text;
  if (draft) {
    const discard = el('button', { type: 'button', class: 'btn small' }, '放弃修改，重新加载');
    discard.addEventListener('click', () => selectDoc(id, { discardDraft: true }));
    notes.push(el('span', null, `已恢复您尚未发布的修改（基于 v${draft.base}）。 `, discard));
  }
  finishLoading(notes);
  document.dispatchEvent(new CustomEvent('kb:doc-selected', { detail: { id, exists: state.exists } })); // lib/learning.js
}

/** Reload the list and the document after a publish, delete or rollback (the server's text wins). */
export async function reloadDoc(id) {
  state.drafts.delete(id);
  await loadList();
  await selectDoc(id, { keepMessage: true, discardDraft: true });
}

// A learned phrasing promoted to the SOP's examples is a new version (lib/learning.js).
learning.reload = reloadDoc;

// ---- a new document ------------------------------------------------------------------------------------
function newTemplate() {
  const d = new Date();
  const review = new Date(d.getTime() + 180 * 86400000);
  return `---
id: new-sop-id
title: 新的 SOP 标题
category: 报修
audience: agent
tags: [关键词1, 关键词2]
owner:
updated: ${isoDate(d)}
review_by: ${isoDate(review)}
# examples: 发布时作为回归测试的查询（必须能在前 3 名找到本 SOP）
# examples:
#   - 租客可能会怎么说
---
# 新的 SOP 标题

## 适用场景
- 什么情况下使用这份 SOP；租客常说："……"

## 处理步骤
1. 第一步
2. 第二步

## 标准话术
> 您好，这里是${state.company || '（公司名）'}客服，……

## 时限要求
- 接报后 5 分钟内建单。

## 升级处理
- 什么情况下升级给谁。
`;
}

function newDoc() {
  keepDraft();
  state.loadToken += 1;
  state.selected = null;
  state.base = null;
  state.exists = false;
  state.history = [];
  state.loadedText = '';
  ui.editor.value = newTemplate();
  setMsg();
  document.dispatchEvent(new CustomEvent('kb:doc-selected', { detail: { id: null, exists: false } }));
  clear(ui.lower);
  finishLoading([
    '新建 SOP：把文件头里的 id 改成唯一的英文 id（小写字母、数字、连字符），写好内容后先「预览切块」，再「发布」。',
  ]);
  ui.editor.focus();
}

// ---- drafts across a reload of the tab -----------------------------------------------------------------
function restoreDrafts() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(DRAFTS_KEY) || '[]');
    if (!Array.isArray(saved)) return;
    for (const [id, d] of saved) if (d && typeof d.text === 'string') state.drafts.set(id, d);
  } catch (_) {
    /* unreadable drafts are dropped */
  }
}

function saveDrafts() {
  keepDraft();
  try {
    sessionStorage.setItem(DRAFTS_KEY, JSON.stringify([...state.drafts]));
  } catch (_) {
    /* storage full or disabled: drafts live as long as the tab */
  }
}

export function initDocs() {
  ui.docFilter.addEventListener('input', renderList);
  ui.docCategory.addEventListener('change', renderList);
  ui.editor.addEventListener('input', updateStatus);
  ui.newBtn.addEventListener('click', newDoc);
  ui.editor.disabled = false;
  // Unpublished edits survive a reload of this tab (sessionStorage), without a "leave page?" prompt.
  restoreDrafts();
  window.addEventListener('pagehide', saveDrafts);
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) saveDrafts();
  });
}
