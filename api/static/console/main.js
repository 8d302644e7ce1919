/* Agent console: search-as-you-type, keyboard navigation, copyable scripts, full SOP drawer, feedback. */

import { api } from '../lib/api.js';
import { $$, isEditable } from '../lib/dom.js';
import { initKeyBar } from '../lib/keybar.js';
import { singleKeysOn, singleKeysToggle } from '../lib/shortcuts.js';
import { sopRefs } from '../lib/text.js';
import { initCall } from './call.js';
import { initCases, setCasesRole } from './cases.js';
import { closeView, initDrawer, openView } from './drawer.js';
import { copyNth, move, render, resetResults, showMessage, showRefs } from './results.js';
import { state, ui } from './state.js';
import { changeRefs, initTraining, refreshTraining } from './training.js';

const DEBOUNCE_MS = 150;
const TOP_K = 5;

const setBusy = (busy) => {
  ui.busy.hidden = !busy;
};

function cancelInFlight() {
  if (state.controller) state.controller.abort();
  state.controller = null;
  state.seq += 1; // anything still on its way is now stale
  setBusy(false);
}

const pending = () => state.timer !== null || state.controller !== null;

function scheduleSearch() {
  clearTimeout(state.timer);
  if (!ui.search.value.trim()) {
    cancelInFlight();
    resetResults();
    showMessage('');
    ui.empty.hidden = false;
    return;
  }
  state.timer = setTimeout(runSearch, DEBOUNCE_MS);
}

function showSearchError(err, query) {
  state.openAfterSearch = false;
  resetResults();
  ui.empty.hidden = true;
  if (err.status === 503) {
    showMessage(`${err.message}（2 秒后自动重试）`, 'warn');
    setTimeout(() => {
      if (ui.search.value.trim() === query) runSearch();
    }, 2000);
  } else if (err.status === 401) {
    showMessage('API 密钥无效，请检查后重新输入（右上角「API 密钥」）。', 'error');
  } else {
    showMessage(err.message || '检索失败', 'error');
  }
}

async function runSearch() {
  clearTimeout(state.timer);
  state.timer = null;
  const query = ui.search.value.trim(); // the box's maxLength (from /v1/whoami) keeps it within the server's limit
  if (!query) return;
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  const seq = ++state.seq;
  state.controller = controller;
  setBusy(true);
  const started = performance.now();
  try {
    const data = await api('/v1/search', {
      method: 'POST',
      json: { query, top_k: TOP_K, audience: 'agent' },
      signal: controller.signal,
    });
    if (seq !== state.seq) return; // an out-of-order (older) response
    state.controller = null;
    setBusy(false);
    render(data, performance.now() - started);
  } catch (err) {
    if (err && err.name === 'AbortError') return;
    if (seq !== state.seq) return;
    state.controller = null;
    setBusy(false);
    showSearchError(err, query);
  }
}

function onEscape(ev, inSearch) {
  if (state.viewOpenFor) {
    ev.preventDefault();
    closeView();
  } else if (inSearch && ui.search.value) {
    ev.preventDefault();
    ui.search.value = '';
    scheduleSearch();
  }
}

function onEnter(ev, inSearch) {
  if (ev.target.closest?.('button, a')) return; // let buttons and links do their own thing
  ev.preventDefault();
  if (inSearch && pending()) {
    // The agent pressed Enter before the results for the latest text arrived: open them when they do.
    state.openAfterSearch = true;
    if (state.timer !== null) runSearch();
    return;
  }
  if (state.selected >= 0) openView(state.selected);
}

function onKeydown(ev) {
  if (ev.isComposing || ev.keyCode === 229) return;
  const target = ev.target;
  const inSearch = target === ui.search;
  const editable = isEditable(target);
  // "/" focuses the search (the key bar says so); in an empty search box it is that key, not a query's first character.
  const slashKey = ev.key === '/' && !ev.ctrlKey && !ev.metaKey && !ev.altKey && singleKeysOn();
  if (slashKey && (!editable || (inSearch && !ui.search.value))) {
    ev.preventDefault();
    ui.search.focus();
    ui.search.select();
    return;
  }
  if (ev.key === 'Escape') {
    onEscape(ev, inSearch);
    return;
  }
  if (ev.altKey && !ev.ctrlKey && !ev.metaKey && /^Digit[1-9]$/.test(ev.code)) {
    ev.preventDefault();
    copyNth(Number(ev.code.slice(5)));
    return;
  }
  if (editable && !inSearch) return; // typing in another field
  if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
    if (!state.hits.length) return;
    ev.preventDefault();
    move(ev.key === 'ArrowDown' ? 1 : -1);
  } else if (ev.key === 'Enter' && (inSearch || target === document.body || target.closest?.('.result'))) {
    onEnter(ev, inSearch);
  } else if ((ev.key === 'PageDown' || ev.key === 'PageUp') && state.viewOpenFor && inSearch) {
    ev.preventDefault();
    ui.viewBody.scrollBy({ top: (ev.key === 'PageDown' ? 1 : -1) * ui.viewBody.clientHeight * 0.85 });
  }
}

/** The empty state's example buttons: the knowledge base's own example queries (one per category, up to four),
    so a company's console never suggests the sample SOPs' words; the built-in ones stay when it has none. */
async function loadExamples() {
  try {
    const sops = await api('/v1/sops');
    sopRefs.titles = new Map(sops.map((s) => [s.sop_id, s.title])); // SOP ids in SOP text shown by their titles
    showRefs(); // cards drawn before the titles came
    changeRefs();
    const byCategory = new Map();
    for (const s of sops) if (s.example && !byCategory.has(s.category)) byCategory.set(s.category, s.example);
    const picked = [...byCategory.values()].slice(0, 4);
    if (picked.length < 2) return;
    const buttons = $$('.example');
    buttons.forEach((btn, i) => {
      btn.hidden = i >= picked.length;
      if (i < picked.length) btn.textContent = picked[i];
    });
    ui.search.placeholder = `输入租客说的话，例如：${picked[0]}`; // this knowledge base's words, not the samples'
  } catch (_) {
    /* the built-in examples stay */
  }
}

const keyBar = initKeyBar({
  messages: { missing: '未设置 API 密钥（目前只能检索租客可见内容）' },
  onRole: (info) => {
    state.role = info.error ? null : info.role;
    ui.trainerLink.hidden = state.role !== 'trainer';
    refreshTraining(state.role);
    setCasesRole(state.role, !info.error && info.account ? info.name : null); // named accounts hold cases
    state.sopCache.clear();
    sopRefs.titles = new Map(); // another key may read other SOPs: their titles come again with the examples
    if (state.role && state.role !== 'public') loadExamples();
    // A new key can change what is visible: refresh the current results.
    if (ui.search.value.trim()) runSearch();
  },
});

document.addEventListener('keydown', onKeydown);
singleKeysToggle(document.getElementById('single-keys'));
ui.search.addEventListener('compositionstart', () => {
  state.composing = true;
});
ui.search.addEventListener('compositionend', () => {
  state.composing = false;
  scheduleSearch();
});
ui.search.addEventListener('input', (ev) => {
  if (state.composing || ev.isComposing) return;
  if (state.viewOpenFor) closeView({ focusSearch: false });
  scheduleSearch();
});
for (const btn of $$('.example')) {
  btn.addEventListener('click', () => {
    ui.search.value = btn.textContent.trim();
    ui.search.focus();
    runSearch();
  });
}
initDrawer();
initTraining(ui.search);
// Call mode replaces the search while a call is followed; the search comes back as it was.
initCall({
  onToggle: (active) => {
    for (const node of [ui.search.closest('.search-area'), ui.results]) node.hidden = active;
    document.body.classList.toggle('in-call', active); // the search's own controls go too (结果里没有？: a trial)
    if (active) {
      ui.empty.hidden = true;
      ui.message.hidden = true;
    } else {
      ui.empty.hidden = Boolean(state.hits.length || ui.search.value.trim());
      ui.search.focus();
    }
  },
});
initCases();

ui.search.focus();
keyBar.check();
window.addEventListener('pageshow', () => {
  if (document.activeElement === document.body) ui.search.focus();
});
