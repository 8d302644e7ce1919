/* Agent console: search-as-you-type, keyboard navigation, copyable scripts, full SOP drawer, feedback. */
(() => {
  'use strict';
  const { el, $, $$, api, clear } = window.KB;
  const KB = window.KB;

  const DEBOUNCE_MS = 150;
  const TOP_K = 5;

  const ui = {
    search: $('#search'),
    busy: $('#busy'),
    took: $('#took'),
    expansions: $('#expansions'),
    empty: $('#empty-state'),
    message: $('#message'),
    results: $('#results'),
    trainerLink: $('#trainer-link'),
    view: $('#sop-view'),
    viewTitle: $('#sop-view-title'),
    viewMeta: $('#sop-view-meta'),
    viewBody: $('#sop-view-body'),
    viewClose: $('#sop-view-close'),
    backdrop: $('#sop-backdrop'),
  };

  const state = {
    role: null,
    hits: [],
    queryId: null,
    selected: -1,
    seq: 0,            // sequence number of the latest request sent
    controller: null,  // AbortController of the request in flight
    timer: null,       // debounce timer
    composing: false,  // an IME composition is in progress
    openAfterSearch: false,
    viewOpenFor: null, // sop_id shown in the drawer
    sopCache: new Map(), // `${id}@${version}` -> Promise<Sop>
  };

  // ---- auth ------------------------------------------------------------------------------------------
  const keyBar = KB.initKeyBar({
    messages: { missing: '未设置 API 密钥（目前只能检索租客可见内容）' },
    onRole: (info) => {
      state.role = info.error ? null : info.role;
      ui.trainerLink.hidden = state.role !== 'trainer';
      state.sopCache.clear();
      // A new key can change what is visible: refresh the current results.
      if (ui.search.value.trim()) runSearch();
    },
  });

  // ---- searching ---------------------------------------------------------------------------------------
  const setBusy = (busy) => { ui.busy.hidden = !busy; };

  const showMessage = (text, kind = 'info', extra) => {
    clear(ui.message);
    if (!text) { ui.message.hidden = true; return; }
    ui.message.className = `message notice ${kind}`;
    ui.message.append(text);
    if (extra) ui.message.append(extra);
    ui.message.hidden = false;
  };

  const resetResults = () => {
    state.hits = [];
    state.queryId = null;
    ui.results.dataset.queryId = '';
    state.selected = -1;
    clear(ui.results);
    ui.took.textContent = '';
    ui.expansions.textContent = '';
  };

  const scheduleSearch = () => {
    clearTimeout(state.timer);
    const query = ui.search.value.trim();
    if (!query) {
      cancelInFlight();
      resetResults();
      showMessage('');
      ui.empty.hidden = false;
      return;
    }
    state.timer = setTimeout(runSearch, DEBOUNCE_MS);
  };

  const cancelInFlight = () => {
    if (state.controller) state.controller.abort();
    state.controller = null;
    state.seq += 1; // anything still on its way is now stale
    setBusy(false);
  };

  const pending = () => state.timer !== null || state.controller !== null;

  async function runSearch() {
    clearTimeout(state.timer);
    state.timer = null;
    const query = ui.search.value.trim().slice(0, 500);
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
      state.openAfterSearch = false;
      resetResults();
      ui.empty.hidden = true;
      if (err.status === 503) {
        showMessage(`${err.message}（2 秒后自动重试）`, 'warn');
        setTimeout(() => { if (ui.search.value.trim() === query) runSearch(); }, 2000);
      } else if (err.status === 401) {
        showMessage('API 密钥无效，请检查后重新输入（右上角「API 密钥」）。', 'error');
      } else {
        showMessage(err.message || '检索失败', 'error');
      }
    }
  }

  function render(data, roundTripMs) {
    ui.empty.hidden = true;
    state.hits = data.results || [];
    state.queryId = data.query_id ?? null;
    ui.results.dataset.queryId = state.queryId ?? ''; // learning.js links opens, copies and 👍 to this search
    clear(ui.results);
    const n = state.hits.length;
    ui.took.textContent = `${n} 条结果 · 用时 ${Math.round(data.took_ms)} ms`;
    ui.took.title = `服务端 ${data.took_ms} ms，含网络 ${Math.round(roundTripMs)} ms`;
    const exp = (data.expansions || []).map((e) => `${e.found} → ${e.synonyms.join('、')}`);
    ui.expansions.textContent = exp.length ? `同义词扩展：${exp.join('；')}` : '';
    if (!n) {
      state.selected = -1;
      state.openAfterSearch = false;
      showMessage(`没有找到与「${data.query}」相关的 SOP。换个说法试试，比如只输入关键的几个字（“漏水”“门卡”“退押金”）。`, 'info');
      return;
    }
    showMessage('');
    state.hits.forEach((hit, i) => ui.results.appendChild(renderCard(hit, i)));
    select(0, { scroll: false });
    markInternalContent();
    if (state.openAfterSearch) {
      state.openAfterSearch = false;
      openView(state.selected);
    } else if (state.viewOpenFor) {
      closeView({ focusSearch: false });
    }
  }

  // ---- result cards --------------------------------------------------------------------------------
  const headingOf = (section) => {
    const path = section.heading_path || [];
    const rest = path.length > 1 ? path.slice(1) : path;
    return rest.join(' › ') || section.heading;
  };
  const oneLine = (text) => text.split('\n').map((l) => l.trim().replace(/^([-*•]|\d+[.、)])\s*/, ''))
    .filter(Boolean).join(' ／ ');
  const internalBadge = (title) => el('span', { class: 'badge internal', title: title || '仅员工可见，不要告知租客' }, '内部');

  function renderCard(hit, index) {
    const card = el('article', {
      id: `result-${index}`,
      class: 'result',
      role: 'option',
      'aria-selected': 'false',
      dataset: { sopId: hit.sop_id, index: String(index) },
    });
    card.addEventListener('click', (ev) => {
      if (ev.target.closest('button, a, .script-line')) return;
      select(index);
    });
    card.addEventListener('dblclick', (ev) => {
      if (ev.target.closest('button, .script-line')) return;
      openView(index);
    });

    const titleLink = el('a', { href: `#sop/${encodeURIComponent(hit.sop_id)}`, class: 'open-link' }, hit.title);
    titleLink.addEventListener('click', (ev) => { ev.preventDefault(); select(index, { scroll: false }); openView(index); });
    const openBtn = el('button', { type: 'button', class: 'btn small open-btn', title: '查看全文（Enter）' }, '查看全文');
    openBtn.addEventListener('click', () => { select(index, { scroll: false }); openView(index); });
    card.appendChild(el('header', { class: 'result-head' },
      el('span', { class: 'rank', 'aria-hidden': 'true' }, index + 1),
      el('h2', { class: 'result-title' }, titleLink),
      el('span', { class: 'badge cat' }, hit.category),
      el('span', { class: 'badge ver', title: '文档版本' }, `v${hit.version}`),
      hit.audience === 'agent'
        ? el('span', { class: 'badge staff', title: '整份文档仅员工可见' }, '仅员工')
        : el('span', { class: 'badge public', title: '租客可见文档（内部小节除外）' }, '租客可见'),
      el('span', { class: 'head-spacer' }),
      openBtn,
    ));

    // Matching sections: heading (with a red 内部 badge for staff-only sections of public documents) + excerpt.
    if (hit.sections && hit.sections.length) {
      const matched = el('div', { class: 'matched', 'aria-label': '匹配小节' });
      for (const s of hit.sections) {
        const internal = s.audience === 'agent' && hit.audience === 'public';
        matched.appendChild(el('div', { class: 'matched-row' },
          el('span', { class: 'chip', title: KB.KIND_LABELS[s.kind] || s.kind }, headingOf(s), internal ? internalBadge() : null),
          el('span', { class: 'matched-text', title: s.text }, oneLine(s.text)),
        ));
      }
      card.appendChild(matched);
    }

    const left = el('div', { class: 'col col-left' });
    const right = el('div', { class: 'col col-right' });

    // Steps.
    const stepsBlock = el('section', { class: 'block block-steps' }, el('h3', null, '处理步骤'));
    if (hit.steps.length) {
      stepsBlock.appendChild(el('ol', { class: 'steps' },
        hit.steps.map((s) => el('li', { class: 'step', dataset: { text: s } }, s))));
    } else {
      stepsBlock.appendChild(el('div', { class: 'empty-field' }, '（本 SOP 没有写处理步骤）'));
    }
    left.appendChild(stepsBlock);

    // Escalation (升级).
    if (hit.escalation.length) {
      const block = el('section', { class: 'block block-escalation' }, el('h3', null, '升级'));
      for (const t of hit.escalation) block.appendChild(el('div', { class: 'text-block', dataset: { text: t } }, KB.renderText(t)));
      left.appendChild(block);
    }

    // Time limits (时限).
    if (hit.time_limits.length) {
      const block = el('section', { class: 'block block-time' }, el('h3', null, '时限'));
      for (const t of hit.time_limits) block.appendChild(el('div', { class: 'text-block', dataset: { text: t } }, KB.renderText(t)));
      right.appendChild(block);
    }

    // Scripts (话术), one copy button each.
    const scriptsBlock = el('section', { class: 'block block-scripts' }, el('h3', null, '话术'));
    if (hit.scripts.length) {
      let n = 0;
      scriptsBlock.appendChild(el('ul', { class: 'script-list' },
        hit.scripts.map((line) => KB.scriptLine(line, { index: KB.isCueLine(line) ? undefined : ++n }))));
    } else {
      scriptsBlock.appendChild(el('div', { class: 'empty-field' }, '（本 SOP 没有标准话术）'));
    }
    right.appendChild(scriptsBlock);
    card.appendChild(el('div', { class: 'result-body' }, left, right));

    // Staff-only sections of the document.
    if (hit.staff_only_sections && hit.staff_only_sections.length) {
      card.appendChild(el('div', { class: 'staff-only' },
        internalBadge(),
        el('span', null, '含内部小节（不要告知租客）：'),
        el('span', { class: 'staff-only-items' }, hit.staff_only_sections.join('、')),
      ));
    }

    // Feedback.
    const up = el('button', { type: 'button', class: 'vote-up', title: '有用', 'aria-label': '有用' }, KB.icon('up'), ' 有用');
    const down = el('button', { type: 'button', class: 'vote-down', title: '没用', 'aria-label': '没用' }, KB.icon('down'), ' 没用');
    const voteMsg = el('span', { class: 'vote-msg', role: 'status' });
    const queryId = state.queryId;
    const vote = async (value, btn) => {
      up.disabled = true; down.disabled = true;
      btn.classList.add('active');
      voteMsg.className = 'vote-msg';
      voteMsg.textContent = '提交中…';
      try {
        const body = { sop_id: hit.sop_id, vote: value };
        if (queryId) body.query_id = queryId;
        const resp = await api('/v1/feedback', { method: 'POST', json: body });
        voteMsg.textContent = KB.learning ? KB.learning.voteText(resp) : '已记录，谢谢反馈';
      } catch (err) {
        up.disabled = false; down.disabled = false;
        btn.classList.remove('active');
        voteMsg.className = 'vote-msg error';
        voteMsg.textContent = `反馈提交失败：${err.message}`;
      }
    };
    up.addEventListener('click', () => vote(1, up));
    down.addEventListener('click', () => vote(-1, down));
    card.appendChild(el('footer', { class: 'result-foot' },
      el('span', null, '这条结果有用吗？'), up, down, voteMsg,
      el('span', { class: 'foot-path', title: '文件路径' }, hit.path),
    ));
    return card;
  }

  /** Steps, scripts, time limits and escalation come flattened from all sections; mark those from [内部] ones. */
  function markInternalContent() {
    state.hits.forEach((hit, index) => {
      if (!hit.staff_only_sections || !hit.staff_only_sections.length) return;
      loadSop(hit).then((sop) => {
        const card = ui.results.querySelector(`.result[data-index="${index}"]`);
        if (!card || card.dataset.sopId !== hit.sop_id || !sop) return;
        const internal = sop.sections.filter((s) => s.internal);
        const steps = new Set(internal.flatMap((s) => s.steps));
        const scripts = new Set(internal.flatMap((s) => s.scripts));
        const texts = new Set(internal.map((s) => s.text));
        const mark = (node) => {
          if (node.classList.contains('internal-item')) return;
          node.classList.add('internal-item');
          const badge = internalBadge('来自内部小节，不要告知租客');
          const btn = node.querySelector('.copy-btn');
          if (btn) node.insertBefore(badge, btn);
          else if (node.classList.contains('text-block')) node.insertBefore(badge, node.firstChild);
          else node.appendChild(badge);
        };
        $$('.step', card).forEach((n) => { if (steps.has(n.dataset.text)) mark(n); });
        $$('.script-line', card).forEach((n) => { if (scripts.has(n.dataset.text)) mark(n); });
        $$('.text-block', card).forEach((n) => { if (texts.has(n.dataset.text)) mark(n); });
      }).catch(() => { /* the badge list below the card still warns about internal sections */ });
    });
  }

  function loadSop(hit) {
    const key = `${hit.sop_id}@${hit.version}`;
    if (!state.sopCache.has(key)) {
      const p = api(`/v1/sops/${encodeURIComponent(hit.sop_id)}`);
      p.catch(() => state.sopCache.delete(key));
      state.sopCache.set(key, p);
    }
    return state.sopCache.get(key);
  }

  // ---- selection & keyboard -----------------------------------------------------------------------
  function select(index, { scroll = true } = {}) {
    const cards = $$('.result', ui.results);
    if (!cards.length) { state.selected = -1; return; }
    const i = Math.max(0, Math.min(cards.length - 1, index));
    cards.forEach((c, j) => {
      c.classList.toggle('selected', j === i);
      c.setAttribute('aria-selected', j === i ? 'true' : 'false');
    });
    state.selected = i;
    ui.search.setAttribute('aria-activedescendant', cards[i].id);
    if (scroll) cards[i].scrollIntoView({ block: 'nearest', behavior: 'auto' });
  }

  function move(delta) {
    if (!state.hits.length) return;
    const next = Math.max(0, Math.min(state.hits.length - 1, state.selected + delta));
    select(next);
    if (state.viewOpenFor) openView(next);
  }

  function copyNth(n) {
    const card = $('.result.selected', ui.results);
    if (!card) return;
    const lines = $$('.script-line:not(.is-label)', card);
    if (lines[n - 1]) {
      KB.copyLine(lines[n - 1]);
      lines[n - 1].scrollIntoView({ block: 'nearest' });
    }
  }

  document.addEventListener('keydown', (ev) => {
    if (ev.isComposing || ev.keyCode === 229) return;
    const target = ev.target;
    const inSearch = target === ui.search;
    const editable = KB.isEditable(target);
    if (ev.key === '/' && !editable && !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
      ev.preventDefault();
      ui.search.focus();
      ui.search.select();
      return;
    }
    if (ev.key === 'Escape') {
      if (state.viewOpenFor) {
        ev.preventDefault();
        closeView();
      } else if (inSearch && ui.search.value) {
        ev.preventDefault();
        ui.search.value = '';
        scheduleSearch();
      }
      return;
    }
    if (ev.altKey && !ev.ctrlKey && !ev.metaKey && /^Digit[1-9]$/.test(ev.code)) {
      ev.preventDefault();
      copyNth(Number(ev.code.slice(5)));
      return;
    }
    if (editable && !inSearch) return;
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      if (!state.hits.length) return;
      ev.preventDefault();
      move(ev.key === 'ArrowDown' ? 1 : -1);
    } else if (ev.key === 'Enter' && (inSearch || target === document.body || target.closest?.('.result'))) {
      if (target.closest?.('button, a')) return; // let buttons and links do their own thing
      ev.preventDefault();
      if (inSearch && pending()) {
        // The agent pressed Enter before the results for the latest text arrived: open them when they do.
        state.openAfterSearch = true;
        if (state.timer !== null) runSearch();
        return;
      }
      if (state.selected >= 0) openView(state.selected);
    } else if ((ev.key === 'PageDown' || ev.key === 'PageUp') && state.viewOpenFor && inSearch) {
      ev.preventDefault();
      const body = ui.viewBody;
      body.scrollBy({ top: (ev.key === 'PageDown' ? 1 : -1) * body.clientHeight * 0.85 });
    }
  });

  ui.search.addEventListener('compositionstart', () => { state.composing = true; });
  ui.search.addEventListener('compositionend', () => { state.composing = false; scheduleSearch(); });
  ui.search.addEventListener('input', (ev) => {
    if (state.composing || ev.isComposing) return;
    if (state.viewOpenFor) closeView({ focusSearch: false });
    scheduleSearch();
  });

  $$('.example').forEach((btn) => btn.addEventListener('click', () => {
    ui.search.value = btn.textContent.trim();
    ui.search.focus();
    runSearch();
  }));

  // ---- full SOP drawer ---------------------------------------------------------------------------------
  ui.viewClose.addEventListener('click', () => closeView());
  ui.backdrop.addEventListener('click', () => closeView());

  function closeView({ focusSearch = true } = {}) {
    state.viewOpenFor = null;
    ui.view.hidden = true;
    ui.backdrop.hidden = true;
    if (focusSearch) ui.search.focus();
  }

  function openView(index) {
    const hit = state.hits[index];
    if (hit) showSop(hit.sop_id, hit.title, () => loadSop(hit), hit);
  }

  /** The full SOP in the drawer: a result's, or (KB.console.openSop) one the agent picked because the search missed it. */
  async function showSop(sopId, title, load, hit) {
    if (state.viewOpenFor === sopId && !ui.view.hidden) return;
    state.viewOpenFor = sopId;
    ui.view.hidden = false;
    ui.backdrop.hidden = false;
    ui.view.dataset.sopId = sopId;
    ui.viewTitle.textContent = title;
    clear(ui.viewMeta);
    clear(ui.viewBody).appendChild(el('div', { class: 'drawer-loading' }, el('span', { class: 'spinner' }), ' 正在加载全文…'));
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
  KB.console = { openSop: (sopId) => showSop(sopId, sopId, () => api(`/v1/sops/${encodeURIComponent(sopId)}`), null) };

  function renderSop(sop, hit) {
    const m = sop.meta;
    ui.viewTitle.textContent = sop.title;
    KB.append(clear(ui.viewMeta), [
      el('span', { class: 'badge cat' }, m.category),
      el('span', { class: 'badge ver' }, `v${m.version}`),
      m.audience === 'agent'
        ? el('span', { class: 'badge staff' }, '仅员工可见文档')
        : el('span', { class: 'badge public' }, '租客可见文档'),
      sop.sections.some((s) => s.internal) ? el('span', { class: 'badge internal' }, '含内部小节') : null,
    ]);
    const body = clear(ui.viewBody);
    const rows = [];
    const row = (label, value) => { if (value) rows.push(el('tr', null, el('th', null, label), el('td', null, value))); };
    row('负责人', m.owner);
    row('更新日期', m.updated);
    if (m.review_by) {
      row('复核日期', KB.isOverdue(m.review_by)
        ? el('span', { class: 'badge overdue' }, `${m.review_by}（已过期，内容可能需要更新）`) : m.review_by);
    }
    row('标签', m.tags && m.tags.length ? m.tags.join('、') : '');
    row('适用范围', m.scope && m.scope.length ? m.scope.join('、') : '');
    row('文件', el('span', { class: 'mono' }, sop.path));
    body.appendChild(el('table', { class: 'meta-table' }, el('tbody', null, rows)));

    const matchedPaths = new Set((hit ? hit.sections : []).map((s) => (s.heading_path || []).join('\u0000')));
    let n = 0;
    for (const s of sop.sections) {
      const matched = matchedPaths.has((s.heading_path || []).join('\u0000'));
      const sec = el('section', {
        class: `sop-section kind-${s.kind} level-${s.level}` + (s.internal ? ' internal' : '') + (matched ? ' matched' : ''),
        dataset: { kind: s.kind, internal: String(s.internal) },
      });
      const H = s.level >= 3 ? 'h4' : 'h3';
      sec.appendChild(el(H, null,
        s.heading,
        s.internal ? internalBadge('内部小节：仅员工可见，不要告知租客') : null,
        s.kind !== 'plain' && !s.heading.includes(KB.KIND_LABELS[s.kind])
          ? el('span', { class: 'kind-tag' }, KB.KIND_LABELS[s.kind]) : null,
        matched ? el('span', { class: 'match-tag' }, '匹配') : null,
      ));
      if (s.internal) sec.appendChild(el('div', { class: 'internal-note' }, '以下为内部信息，仅供员工参考，不要念给或转发给租客。'));
      if (s.kind === 'script') {
        const scripts = new Set(s.scripts);
        sec.appendChild(KB.renderText(s.text, {
          scripts,
          renderScript: (line) => KB.scriptLine(line, { index: KB.isCueLine(line) ? undefined : ++n, internal: s.internal }),
        }));
      } else if (s.kind === 'faq' && s.qa && s.qa.length) {
        if (s.text) sec.appendChild(KB.renderText(s.text));
        sec.appendChild(el('dl', { class: 'qa' }, s.qa.map((qa) => [
          el('dt', null, qa.question),
          el('dd', null, KB.renderText(qa.answer)),
        ])));
      } else {
        sec.appendChild(KB.renderText(s.text));
      }
      body.appendChild(sec);
    }
  }

  // ---- start -------------------------------------------------------------------------------------------
  ui.search.focus();
  keyBar.check();
  window.addEventListener('pageshow', () => { if (document.activeElement === document.body) ui.search.focus(); });
})();
