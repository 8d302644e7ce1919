/* Trainer workspace: documents (edit, preview, publish, delete, history, diff, rollback), hit test, gap report. */
(() => {
  'use strict';
  const KB = window.KB;
  const { el, $, $$, api, clear } = KB;

  const ACTION_LABELS = { import: '导入（文件夹原版）', publish: '发布', rollback: '回滚', delete: '删除' };
  const CHANNELS = [
    ['dense', '整体语义'],
    ['sent', '句子语义'],
    ['lex', '关键词'],
    ['py', '拼音'],
  ];
  const STAGE_LABELS = {
    embed: '查询向量化', lexical: '关键词/拼音编码', qdrant: '向量检索与融合', group: '按 SOP 归组',
    confidence: '置信度', explain: '各通道单独检索（解释）', learned: '学到的问法',
  };

  const state = {
    role: null,
    auth: true,
    sops: [],              // summaries from GET /v1/sops
    selected: null,        // sop_id being edited (null = new document)
    base: null,            // the version the editor content is based on (base_version for PUT)
    exists: false,         // the selected id is live in the catalog
    history: [],
    loadedText: '',        // editor content as loaded (to detect unpublished edits)
    drafts: new Map(),     // sop_id -> {text, base}: unpublished edits kept when switching documents
    loadToken: 0,
    gapsLoaded: false,
    lastReport: null,
  };

  const ui = {
    banner: $('#role-banner'),
    docList: $('#doc-list'),
    docFilter: $('#doc-filter'),
    docCategory: $('#doc-category'),
    docCount: $('#doc-count'),
    docTitle: $('#doc-title'),
    docMeta: $('#doc-meta'),
    docNote: $('#doc-note'),
    editor: $('#editor'),
    editorStatus: $('#editor-status'),
    publishBtn: $('#publish-btn'),
    previewBtn: $('#preview-btn'),
    historyBtn: $('#history-btn'),
    deleteBtn: $('#delete-btn'),
    publishMsg: $('#publish-msg'),
    lower: $('#lower-pane'),
    historyList: $('#history-list'),
    historyNote: $('#history-note'),
    hitForm: $('#hit-form'),
    hitQuery: $('#hit-query'),
    hitAudience: $('#hit-audience'),
    hitTopk: $('#hit-topk'),
    hitRun: $('#hit-run'),
    hitResults: $('#hit-results'),
    gapRange: $('#gap-range'),
    gapRefresh: $('#gap-refresh'),
    exportCsv: $('#export-csv'),
    gapSummary: $('#gap-summary'),
    gapReport: $('#gap-report'),
  };

  // ---- role ------------------------------------------------------------------------------------------
  const keyBar = KB.initKeyBar({
    messages: { missing: '未设置 API 密钥' },
    onRole: (info) => {
      state.role = info.error ? null : info.role;
      state.auth = info.error ? true : info.auth;
      let text = '';
      let cls = 'role-banner';
      if (info.error === 'invalid') { text = 'API 密钥无效，请检查后重新输入。'; cls += ' error'; }
      else if (info.error) { text = info.message || '无法连接知识库服务'; cls += ' error'; }
      else if (!info.auth) {
        text = '本地试用模式（未启用认证）：所有请求按坐席身份处理，发布、历史、预览和缺口报告需要配置 KB_API_KEYS 并使用培训师密钥；命中测试可用。';
      } else if (info.role !== 'trainer') {
        text = info.role === 'agent'
          ? '当前是坐席密钥：只能浏览文档。预览、发布、历史、命中测试和缺口报告需要培训师密钥。'
          : '未设置 API 密钥：请在右上角输入培训师密钥。';
      }
      ui.banner.textContent = text;
      ui.banner.className = cls;
      ui.banner.hidden = !text;
      loadList();
      if (state.gapsLoaded && currentTab() === 'gaps') loadGaps();
    },
  });

  // ---- tabs ------------------------------------------------------------------------------------------
  const TABS = ['docs', 'hittest', 'gaps'];
  const currentTab = () => TABS.find((t) => $(`#tab-${t}`).getAttribute('aria-selected') === 'true') || 'docs';
  function showTab(name, { updateHash = true } = {}) {
    if (!TABS.includes(name)) name = 'docs';
    for (const t of TABS) {
      const on = t === name;
      $(`#tab-${t}`).setAttribute('aria-selected', on ? 'true' : 'false');
      $(`#tab-${t}`).tabIndex = on ? 0 : -1;
      $(`#panel-${t}`).hidden = !on;
    }
    if (updateHash && location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
    if (name === 'gaps' && !state.gapsLoaded) loadGaps();
    if (name === 'hittest') ui.hitQuery.focus();
  }
  for (const t of TABS) $(`#tab-${t}`).addEventListener('click', () => showTab(t));
  $('.tabs').addEventListener('keydown', (ev) => {
    if (ev.key !== 'ArrowRight' && ev.key !== 'ArrowLeft') return;
    const i = TABS.indexOf(currentTab());
    const next = TABS[(i + (ev.key === 'ArrowRight' ? 1 : TABS.length - 1)) % TABS.length];
    showTab(next);
    $(`#tab-${next}`).focus();
  });
  window.addEventListener('hashchange', () => showTab(location.hash.slice(1), { updateHash: false }));

  // ---- helpers ----------------------------------------------------------------------------------------
  const notice = (kind, ...children) => el('div', { class: `notice ${kind}` }, ...children);
  const setMsg = (...nodes) => { clear(ui.publishMsg); KB.append(ui.publishMsg, nodes); };
  const summaryOf = (id) => state.sops.find((s) => s.sop_id === id) || null;

  /** "文档有错误 / invalid SOP: a.md:3: 错误: …；a.md:9: 警告: …" -> ["a.md:3: 错误: …", …] */
  function splitIssues(message) {
    const body = message.replace(/^[^:]*invalid SOP:\s*/, '');
    return body.split(/；(?=[^\s；]+?:\d+: )/).map((s) => s.trim()).filter(Boolean);
  }
  const issueClass = (text) => (/:\s*警告:/.test(text) ? 'warning' : 'error');
  const issueList = (issues) => el('ul', { class: 'issues' },
    issues.map((i) => el('li', { class: issueClass(i) }, i)));

  /** Python-repr failure details of example_regression -> readable rows. */
  function regressionRows(err) {
    const rows = [];
    for (const d of err.details || []) {
      const q = /'query':\s*(['"])(.*?)\1/.exec(d);
      const top = /'top':\s*\[(.*?)\]/.exec(d);
      if (q) {
        const ids = top ? top[1].split(',').map((s) => s.trim().replace(/^['"]|['"]$/g, '')).filter(Boolean) : [];
        rows.push({ query: q[2], top: ids });
      } else {
        rows.push({ query: d, top: null });
      }
    }
    return rows;
  }

  function frontMatterId(text) {
    const m = /^\uFEFF?---\s*\n([\s\S]*?)\n(?:---|\.\.\.)\s*(?:\n|$)/.exec(text.replace(/\r\n?/g, '\n'));
    if (!m) return null;
    const id = /^id\s*:\s*["']?([^"'\s#]+)["']?\s*(?:#.*)?$/m.exec(m[1]);
    return id ? id[1] : null;
  }

  // ---- Markdown reconstruction (for documents without a recorded version) -----------------------------
  const YAML_PLAIN = /^[\p{L}\p{N}_（(《“][^:#[\]{},&*!|>'"%@`\n]*$/u;
  function yamlScalar(value) {
    const s = String(value);
    if (!s) return '""';
    if (YAML_PLAIN.test(s) && !/^(true|false|yes|no|on|off|null|~)$/i.test(s) && !/^[\d.+-]/.test(s) && s.trim() === s) {
      return s;
    }
    return JSON.stringify(s);
  }
  function textToMd(text, scripts) {
    const blocks = [];
    let run = null;
    for (const raw of String(text || '').split('\n')) {
      const line = raw.trim();
      if (!line) { run = null; continue; }
      let type = 'p';
      if (scripts && scripts.has(line)) type = 'quote';
      else if (/^\d+[.)]\s/.test(line)) type = 'ol';
      else if (/^[-*+]\s/.test(line)) type = 'ul';
      const out = type === 'quote' ? `> ${line}` : line;
      if (run && run.type === type && type !== 'p') run.lines.push(out);
      else { run = { type, lines: [out] }; blocks.push(run); }
    }
    return blocks.map((b) => b.lines.join('\n')).join('\n\n');
  }
  function sopToMarkdown(sop) {
    const m = sop.meta;
    const fm = ['---', `id: ${m.id}`, `title: ${yamlScalar(m.title)}`, `category: ${yamlScalar(m.category)}`,
      `audience: ${m.audience}`];
    fm.push(`tags: [${(m.tags || []).map(yamlScalar).join(', ')}]`);
    fm.push(`version: ${m.version}`);
    if (m.owner) fm.push(`owner: ${yamlScalar(m.owner)}`);
    if (m.updated) fm.push(`updated: ${m.updated}`);
    if (m.review_by) fm.push(`review_by: ${m.review_by}`);
    if (m.examples && m.examples.length) { fm.push('examples:'); m.examples.forEach((e) => fm.push(`  - ${yamlScalar(e)}`)); }
    if (m.scope && m.scope.length) fm.push(`scope: [${m.scope.map(yamlScalar).join(', ')}]`);
    fm.push('---');
    const out = [fm.join('\n'), `# ${sop.title}`];
    let h2 = null;
    let h2Internal = false;
    sop.sections.forEach((s, i) => {
      const path = s.heading_path || [];
      if (i === 0 && s.level === 2 && s.heading === '简介' && s.kind === 'plain' && !s.internal) {
        out.push(textToMd(s.text)); // the introduction between the title and the first ## heading
        return;
      }
      if (s.level <= 2) {
        h2 = s.heading;
        h2Internal = s.internal;
        out.push(`## ${s.heading}${s.internal ? ' [内部]' : ''}`);
      } else {
        const parent = path.length >= 3 ? path[1] : null;
        if (parent && parent !== h2) { // a ## section whose content is all in ### sub-sections
          h2 = parent;
          h2Internal = s.internal;
          out.push(`## ${parent}${s.internal ? ' [内部]' : ''}`);
        }
        out.push(`${'#'.repeat(Math.min(s.level, 6))} ${s.heading}${s.internal && !h2Internal ? ' [内部]' : ''}`);
      }
      if (s.kind === 'faq' && s.qa && s.qa.length) {
        if (s.text) out.push(textToMd(s.text));
        for (const qa of s.qa) out.push(`### ${qa.question}`, textToMd(qa.answer));
      } else if (s.kind === 'script') {
        out.push(textToMd(s.text, new Set(s.scripts)));
      } else if (s.text) {
        out.push(textToMd(s.text));
      }
    });
    return out.filter((b) => b !== '').join('\n\n') + '\n';
  }

  function newTemplate() {
    const d = new Date();
    const pad = (n) => String(n).padStart(2, '0');
    const fmt = (x) => `${x.getFullYear()}-${pad(x.getMonth() + 1)}-${pad(x.getDate())}`;
    const review = new Date(d.getTime() + 180 * 86400000);
    return `---
id: new-sop-id
title: 新的 SOP 标题
category: 报修
audience: agent
tags: [关键词1, 关键词2]
owner:
updated: ${fmt(d)}
review_by: ${fmt(review)}
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
> 您好，这里是安居优寓客服，……

## 时限要求
- 接报后 5 分钟内建单。

## 升级处理
- 什么情况下升级给谁。
`;
  }

  // ---- document list ------------------------------------------------------------------------------------
  let listRetry = null;
  async function loadList() {
    clearTimeout(listRetry);
    try {
      state.sops = await api('/v1/sops');
    } catch (err) {
      clear(ui.docList).appendChild(el('li', { class: 'empty-row' }, `无法加载文档列表：${err.message}`));
      if (err.status === 503) listRetry = setTimeout(loadList, 2000);
      return;
    }
    const cats = [...new Set(state.sops.map((s) => s.category))].sort((a, b) => a.localeCompare(b, 'zh-CN'));
    const current = ui.docCategory.value;
    clear(ui.docCategory).appendChild(el('option', { value: '' }, '全部分类'));
    cats.forEach((c) => ui.docCategory.appendChild(el('option', { value: c }, c)));
    ui.docCategory.value = cats.includes(current) ? current : '';
    renderList();
  }

  function renderList() {
    const q = ui.docFilter.value.trim().toLowerCase();
    const cat = ui.docCategory.value;
    const shown = state.sops.filter((s) => (!cat || s.category === cat) && (!q
      || s.title.toLowerCase().includes(q) || s.sop_id.includes(q) || s.tags.some((t) => t.toLowerCase().includes(q))));
    clear(ui.docList);
    const overdue = state.sops.filter((s) => KB.isOverdue(s.review_by)).length;
    ui.docCount.textContent = `${shown.length} / ${state.sops.length} 份` + (overdue ? `，${overdue} 份复核过期` : '');
    let group = null;
    for (const s of shown) {
      if (s.category !== group) {
        group = s.category;
        ui.docList.appendChild(el('li', { class: 'doc-group', 'aria-hidden': 'true' }, group));
      }
      const late = KB.isOverdue(s.review_by);
      const item = el('li', {
        class: 'doc-item' + (late ? ' overdue' : '') + (s.sop_id === state.selected ? ' active' : ''),
        dataset: { sopId: s.sop_id },
        tabindex: '0',
        role: 'button',
        title: s.path,
      },
      el('div', { class: 'doc-item-title' }, s.title),
      el('div', { class: 'doc-item-meta' },
        el('span', { class: 'mono' }, s.sop_id),
        el('span', null, `v${s.version}`),
        s.audience === 'public' ? el('span', null, '租客可见') : el('span', null, '仅员工'),
        s.review_by ? el('span', { class: 'review', title: late ? '复核日期已过' : '复核日期' },
          late ? `复核过期 ${s.review_by}` : `复核 ${s.review_by}`) : null,
      ));
      item.addEventListener('click', () => selectDoc(s.sop_id));
      item.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); selectDoc(s.sop_id); } });
      ui.docList.appendChild(item);
    }
    if (!shown.length) ui.docList.appendChild(el('li', { class: 'empty-row' }, state.sops.length ? '没有符合筛选条件的文档' : '暂无文档'));
  }
  ui.docFilter.addEventListener('input', renderList);
  ui.docCategory.addEventListener('change', renderList);

  // ---- selecting / loading a document ---------------------------------------------------------------------
  const dirty = () => ui.editor.value !== state.loadedText;

  function keepDraft() {
    if (state.selected && dirty()) state.drafts.set(state.selected, { text: ui.editor.value, base: state.base });
    else if (state.selected) state.drafts.delete(state.selected);
  }

  function setNote(...nodes) {
    clear(ui.docNote);
    const content = nodes.filter(Boolean);
    ui.docNote.hidden = !content.length;
    KB.append(ui.docNote, content);
  }

  function renderHeader() {
    const s = state.selected ? summaryOf(state.selected) : null;
    ui.docTitle.textContent = s ? s.title : (state.selected ? state.selected : '新建 SOP');
    const meta = clear(ui.docMeta);
    if (state.selected) meta.appendChild(el('span', { class: 'mono' }, state.selected));
    if (state.base !== null && state.base !== undefined) {
      meta.appendChild(el('span', { class: 'badge ver', title: '发布时以此版本为基准（base_version）' }, `基于 v${state.base}`));
    }
    if (s) {
      meta.appendChild(el('span', { class: 'badge cat' }, s.category));
      meta.appendChild(s.audience === 'public' ? el('span', { class: 'badge public' }, '租客可见') : el('span', { class: 'badge staff' }, '仅员工'));
      if (s.review_by) {
        meta.appendChild(KB.isOverdue(s.review_by)
          ? el('span', { class: 'badge overdue' }, `复核过期 ${s.review_by}`)
          : el('span', { class: 'faint' }, `复核 ${s.review_by}`));
      }
      if (s.updated) meta.appendChild(el('span', { class: 'faint' }, `更新 ${s.updated}`));
    } else if (state.selected && !state.exists) {
      meta.appendChild(el('span', { class: 'badge overdue' }, '已删除 / 未发布'));
    }
    ui.deleteBtn.disabled = !state.exists;
    ui.historyBtn.disabled = !state.selected;
    $$('.doc-item', ui.docList).forEach((n) => n.classList.toggle('active', n.dataset.sopId === state.selected));
  }

  function updateStatus() {
    ui.editorStatus.textContent = dirty() ? '● 有未发布的修改' : '';
  }
  ui.editor.addEventListener('input', updateStatus);

  async function selectDoc(id, { keepMessage = false, discardDraft = false } = {}) {
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
    const summary = summaryOf(id);
    let history = [];
    let historyError = null;
    try {
      history = await api(`/v1/sops/${encodeURIComponent(id)}/history`);
    } catch (err) {
      historyError = err;
    }
    if (token !== state.loadToken) return;
    state.history = history;
    const latest = history.length ? history[history.length - 1] : null;
    const live = summary ? summary.version : 0;
    let text = '';
    const notes = [];
    try {
      if (latest && latest.action !== 'delete' && latest.version >= live) {
        const v = await api(`/v1/sops/${encodeURIComponent(id)}/versions/${latest.version}`);
        text = v.content;
        state.base = latest.version;
      } else if (summary) {
        const sop = await api(`/v1/sops/${encodeURIComponent(id)}`);
        text = sopToMarkdown(sop);
        state.base = Math.max(live, latest ? latest.version : 0);
        if (historyError && historyError.status !== 404) {
          notes.push('编辑器中是根据已索引内容还原的 Markdown（格式可能与原文件略有差异）。');
        } else if (!latest) {
          notes.push(`这份文档还没有通过工作台发布过，没有历史版本。编辑器中是根据已索引内容还原的 Markdown（格式可能与原文件略有差异），可作为修改起点；首次发布时，文件夹中的原始版本（v${live}）会先记入历史。`);
        } else {
          notes.push(`文件夹中的版本 v${live} 比工作台历史中最新的 v${latest.version} 新（可能有人直接修改了文件）。编辑器中是根据已索引内容还原的 Markdown。`);
        }
      } else if (latest) {
        // Deleted: offer the last content for re-publishing; rollback is in the history list.
        state.base = latest.version;
        const lastContent = [...history].reverse().find((r) => r.action !== 'delete');
        if (lastContent) text = (await api(`/v1/sops/${encodeURIComponent(id)}/versions/${lastContent.version}`)).content;
        notes.push(`这份文档已在 v${latest.version} 删除。编辑器中是删除前的最后内容；点「发布」或在右侧历史中「回滚到此版本」即可恢复。`);
      }
    } catch (err) {
      if (token !== state.loadToken) return;
      notes.push(`无法加载文档内容：${err.message}`);
    }
    if (token !== state.loadToken) return;
    if (historyError && historyError.status !== 404) {
      notes.push(`无法读取历史版本：${historyError.message}`);
    }
    state.loadedText = text;
    ui.editor.disabled = false;
    ui.editor.placeholder = '';
    const draft = discardDraft ? null : state.drafts.get(id);
    if (discardDraft) state.drafts.delete(id);
    if (draft) {
      ui.editor.value = draft.text;
      const discard = el('button', { type: 'button', class: 'btn small' }, '放弃修改，重新加载');
      discard.addEventListener('click', () => selectDoc(id, { discardDraft: true }));
      notes.push(el('span', null, `已恢复您尚未发布的修改（基于 v${draft.base}）。 `, discard));
    } else {
      ui.editor.value = text;
    }
    setNote(...notes.map((n, i) => [i ? el('br') : null, n]).flat());
    renderHeader();
    renderHistory();
    updateStatus();
    document.dispatchEvent(new CustomEvent('kb:doc-selected', { detail: { id, exists: state.exists } })); // learning.js
  }
  // learning.js: a learned phrasing promoted to the SOP's examples is a new version.
  KB.trainer = { reload: (id) => loadList().then(() => selectDoc(id, { keepMessage: true })) };

  ui.editor.disabled = false;
  $('#new-btn').addEventListener('click', () => {
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
    setNote('新建 SOP：把文件头里的 id 改成唯一的英文 id（小写字母、数字、连字符），写好内容后先「预览切块」，再「发布」。');
    renderHeader();
    renderHistory();
    updateStatus();
    ui.editor.focus();
  });

  // ---- history ------------------------------------------------------------------------------------------
  function renderHistory() {
    clear(ui.historyList);
    if (!state.selected) {
      ui.historyNote.textContent = '选择一份 SOP 后显示它的发布历史。';
      return;
    }
    if (!state.history.length) {
      ui.historyNote.textContent = '还没有历史版本：首次通过工作台发布时，会先把文件夹中的原始版本记入历史。';
      return;
    }
    ui.historyNote.textContent = `共 ${state.history.length} 个版本，最新在上。`;
    const records = state.history;
    const latest = records[records.length - 1];
    [...records].reverse().forEach((r) => {
      const idx = records.indexOf(r);
      const prev = idx > 0 ? records[idx - 1] : null;
      const isCurrent = r === latest && r.action !== 'delete';
      const hasContent = r.action !== 'delete';
      const rbTitle = !hasContent ? '删除记录没有内容，不能回滚到这里'
        : (isCurrent ? '这已是当前版本（回滚会以相同内容再发布一个新版本）' : `把 v${r.version} 的内容发布为新版本`);
      const viewBtn = el('button', { type: 'button', class: 'btn small view-btn', disabled: !hasContent }, '查看');
      const diffBtn = el('button', { type: 'button', class: 'btn small diff-btn', disabled: !prev }, '与上一版对比');
      const rbBtn = el('button', {
        type: 'button', class: 'btn small rollback-btn', disabled: !hasContent, title: rbTitle,
      }, '回滚到此版本');
      viewBtn.addEventListener('click', () => viewVersion(r.version));
      diffBtn.addEventListener('click', () => showDiff(prev.version, r.version));
      rbBtn.addEventListener('click', () => rollback(r.version, rbBtn));
      ui.historyList.appendChild(el('li', {
        class: 'history-item' + (isCurrent ? ' current' : ''),
        dataset: { version: String(r.version), action: r.action },
      },
      el('div', { class: 'hi-head' },
        el('b', null, `v${r.version}`),
        el('span', { class: 'badge' + (r.action === 'delete' ? ' overdue' : '') }, ACTION_LABELS[r.action] || r.action),
        isCurrent ? el('span', { class: 'badge public' }, '当前') : null,
      ),
      el('div', { class: 'hi-meta' }, `${KB.formatTs(r.ts)} · ${r.author}`),
      el('div', { class: 'hi-actions' }, viewBtn, diffBtn, rbBtn),
      ));
    });
  }

  async function refreshHistory() {
    if (!state.selected) return;
    try {
      state.history = await api(`/v1/sops/${encodeURIComponent(state.selected)}/history`);
    } catch (err) {
      state.history = [];
      ui.historyNote.textContent = `无法读取历史版本：${err.message}`;
      clear(ui.historyList);
      return;
    }
    renderHistory();
  }

  ui.historyBtn.addEventListener('click', async () => {
    await refreshHistory();
    $('.doc-history').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    const first = $('.history-item', ui.historyList);
    if (first) first.querySelector('button:not(:disabled)')?.focus();
  });

  async function viewVersion(version) {
    const id = state.selected;
    clear(ui.lower).appendChild(el('div', { class: 'faint' }, el('span', { class: 'spinner' }), ` 正在加载 v${version}…`));
    try {
      const v = await api(`/v1/sops/${encodeURIComponent(id)}/versions/${version}`);
      const load = el('button', { type: 'button', class: 'btn small' }, '载入编辑器');
      load.addEventListener('click', () => {
        ui.editor.value = v.content;
        updateStatus();
        setMsg(notice('info', `已把 v${version} 的内容载入编辑器；发布时仍以 v${state.base} 为基准。`));
        ui.editor.focus();
      });
      clear(ui.lower).append(
        el('h3', null, `v${version} 的内容`, el('span', { class: 'faint' }, `${ACTION_LABELS[v.action] || v.action} · ${KB.formatTs(v.ts)} · ${v.path}`),
          el('span', { class: 'spacer' }), load),
        el('pre', { class: 'code version-content' }, v.content),
      );
      ui.lower.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    } catch (err) {
      clear(ui.lower).appendChild(notice('error', `无法加载 v${version}：${err.message}`));
    }
  }

  async function showDiff(from, to) {
    const id = state.selected;
    clear(ui.lower).appendChild(el('div', { class: 'faint' }, el('span', { class: 'spinner' }), ' 正在对比…'));
    try {
      const diff = await api(`/v1/sops/${encodeURIComponent(id)}/diff`, { query: { from, to } });
      const pre = el('pre', { class: 'code diff' });
      if (!diff) pre.appendChild(el('span', null, '两个版本内容相同。'));
      for (const line of String(diff).replace(/\n$/, '').split('\n')) {
        let cls = '';
        if (line.startsWith('+++') || line.startsWith('---')) cls = 'file';
        else if (line.startsWith('@@')) cls = 'hunk';
        else if (line.startsWith('+')) cls = 'add';
        else if (line.startsWith('-')) cls = 'del';
        pre.appendChild(el('span', { class: cls || null }, line || ' '));
      }
      const adds = (String(diff).match(/^\+(?!\+\+)/gm) || []).length;
      const dels = (String(diff).match(/^-(?!--)/gm) || []).length;
      clear(ui.lower).append(
        el('h3', null, `v${from} → v${to} 的差异`, el('span', { class: 'faint' }, `+${adds} 行 / -${dels} 行`)),
        pre,
      );
      ui.lower.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    } catch (err) {
      clear(ui.lower).appendChild(notice('error', `无法对比：${err.message}`));
    }
  }

  // ---- preview ------------------------------------------------------------------------------------------
  ui.previewBtn.addEventListener('click', async () => {
    const text = ui.editor.value;
    if (!text.trim()) { setMsg(notice('warn', '编辑器是空的：请先选择一份 SOP 或粘贴 Markdown。')); return; }
    ui.previewBtn.disabled = true;
    clear(ui.lower).appendChild(el('div', { class: 'faint' }, el('span', { class: 'spinner' }), ' 正在切块…'));
    try {
      const p = await api('/v1/preview', { method: 'POST', text });
      renderPreview(p);
    } catch (err) {
      clear(ui.lower).appendChild(notice('error', `预览失败：${err.message}`));
    } finally {
      ui.previewBtn.disabled = false;
    }
  });

  function renderPreview(p) {
    const pane = clear(ui.lower);
    const errors = p.issues.filter((i) => issueClass(i) === 'error').length;
    pane.appendChild(el('h3', null, '预览切块',
      p.ok ? el('span', { class: 'faint' }, `${p.title}（${p.sop_id}）· ${p.chunks.length} 个切块`) : el('span', { class: 'badge overdue' }, '有错误，无法发布'),
      p.issues.length ? el('span', { class: 'faint' }, `${errors} 个错误，${p.issues.length - errors} 个警告`) : el('span', { class: 'badge public' }, '格式检查通过')));
    if (p.issues.length) pane.appendChild(issueList(p.issues));
    if (!p.chunks.length) return;
    const rows = p.chunks.map((c) => {
      const text = el('div', { class: 'chunk-text' }, c.text);
      const more = el('button', { type: 'button', class: 'linkish chunk-more' }, '展开');
      more.addEventListener('click', () => {
        const on = text.classList.toggle('expanded');
        more.textContent = on ? '收起' : '展开';
      });
      return el('tr', { class: 'chunk-row', dataset: { kind: c.kind } },
        el('td', null, (c.heading_path || []).slice(1).join(' › ') || c.heading_path.join(' › ')),
        el('td', null, KB.KIND_LABELS[c.kind] || c.kind),
        el('td', null, c.audience === 'public' ? el('span', { class: 'badge public' }, '租客可见') : el('span', { class: 'badge staff' }, '仅员工')),
        el('td', { class: 'num mono' }, c.line_start === c.line_end ? `${c.line_start}` : `${c.line_start}–${c.line_end}`),
        el('td', null, text, c.text.split('\n').length > 5 || c.text.length > 240 ? more : null),
        el('td', { class: 'gloss' }, c.glossary.length ? c.glossary.map((g) => el('div', { title: g }, g)) : el('span', { class: 'faint' }, '—')),
      );
    });
    pane.appendChild(el('div', { class: 'table-wrap' }, el('table', { class: 'grid preview-table', id: 'preview-table' },
      el('colgroup', null, ['16%', '8%', '9%', '7%', '38%', '22%'].map((w) => el('col', { style: `width:${w}` }))),
      el('thead', null, el('tr', null, ['小节路径', '类型', '可见范围', '行', '内容', '同义词扩展'].map((h, i) =>
        el('th', { class: i === 3 ? 'num' : null }, h)))),
      el('tbody', null, rows))));
  }

  // ---- publish ------------------------------------------------------------------------------------------
  ui.publishBtn.addEventListener('click', () => publish(false));

  async function publish(force) {
    const text = ui.editor.value;
    if (!text.trim()) { setMsg(notice('warn', '编辑器是空的，没有可发布的内容。')); return; }
    const id = frontMatterId(text);
    if (!id) {
      setMsg(notice('error', '文件头缺少 id：第一行应为 ---，并写上 id: 小写英文-数字-连字符（例如 repair-leak-ceiling）。'));
      return;
    }
    if (!/^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(id)) {
      setMsg(notice('error', `id “${id}” 无效：只能用小写英文字母、数字和连字符，例如 repair-leak-ceiling。`));
      return;
    }
    let base;
    if (id === state.selected) base = state.base;
    else if (summaryOf(id)) base = summaryOf(id).version;
    ui.publishBtn.disabled = true;
    setMsg(notice('info', el('span', { class: 'spinner' }), ' 正在发布：校验格式、重建索引、运行示例查询…'));
    try {
      const res = await api(`/v1/sops/${encodeURIComponent(id)}`, {
        method: 'PUT', text, query: { base_version: base, force: force ? 'true' : undefined },
      });
      state.drafts.delete(id);
      state.loadedText = ui.editor.value; // published: not a draft of the previously selected document
      const items = [];
      if (res.examples_checked) items.push(`${res.examples_checked} 条示例查询全部命中（前 3 名）`);
      if (force) items.push('已跳过示例查询回归检查（force）');
      items.push(`文件：${res.path}`);
      await loadList();
      await selectDoc(id, { keepMessage: true, discardDraft: true });
      setMsg(notice('ok',
        el('strong', null, `已发布 v${res.version}，用时 ${res.seconds.toFixed(1)} 秒`),
        el('ul', null, items.map((t) => el('li', null, t))),
        res.warnings.length ? [el('div', null, '警告：'), issueList(res.warnings)] : null,
      ));
    } catch (err) {
      showPublishError(err, { retry: () => publish(true), action: '发布' });
    } finally {
      ui.publishBtn.disabled = false;
    }
  }

  function showPublishError(err, { retry, action }) {
    if (err.status === 409) {
      const reload = el('button', { type: 'button', class: 'btn small', id: 'reload-btn' }, '重新加载最新版本');
      const mine = ui.editor.value;
      reload.addEventListener('click', async () => {
        const id = state.selected || frontMatterId(mine);
        if (!id) return;
        await loadList();
        await selectDoc(id, { keepMessage: true, discardDraft: true });
        setMsg(notice('info', '已加载最新版本。您之前的修改在下方，可复制后重新合并：',
          el('details', null, el('summary', null, '查看我刚才的修改'), el('pre', { class: 'code' }, mine))));
      });
      setMsg(notice('warn',
        el('strong', null, `${action}失败：有其他人已经保存了更新的版本。`),
        el('div', null, err.message),
        el('div', null, '为避免覆盖对方的修改，请重新加载最新版本，把您的修改合并进去后再发布。'),
        el('div', { class: 'actions' }, reload)));
      return;
    }
    if (err.code === 'example_regression') {
      const rows = regressionRows(err);
      const forceBtn = el('button', { type: 'button', class: 'btn small danger', id: 'force-publish-btn' }, '仍然发布（force）');
      forceBtn.addEventListener('click', () => { forceBtn.disabled = true; retry(); });
      setMsg(notice('error',
        el('strong', null, `${action}被拦下：修改后，下列示例查询在前 3 名里找不到这份 SOP。`),
        rows.length ? el('ul', { class: 'issue-list' }, rows.map((r) => el('li', null,
          `“${r.query}”`, r.top ? ` → 目前前 3 名：${r.top.length ? r.top.join('、') : '（无结果）'}` : ''))) : el('div', null, err.message),
        el('div', null, '请调整内容或文件头中的 examples；确认无误也可以强制发布。'),
        el('div', { class: 'actions' }, forceBtn)));
      return;
    }
    if (err.status === 422) {
      const issues = err.code === 'http_422' || err.code === 'invalid_sop' ? splitIssues(err.message) : [];
      setMsg(notice('error',
        el('strong', null, `${action}失败：文档有错误，请修改后再试。`),
        issues.length > 0 && issues[0] !== err.message ? issueList(issues) : el('div', null, err.message)));
      return;
    }
    setMsg(notice('error', el('strong', null, `${action}失败：`), err.message));
  }

  // ---- delete -------------------------------------------------------------------------------------------
  ui.deleteBtn.addEventListener('click', async () => {
    const id = state.selected;
    if (!id || !state.exists) return;
    const s = summaryOf(id);
    const ok = window.confirm(`确定要删除「${s ? s.title : id}」（${id}）吗？\n\n删除后坐席和租客都搜不到它；历史版本会保留，可以回滚恢复。`);
    if (!ok) return;
    ui.deleteBtn.disabled = true;
    try {
      const res = await api(`/v1/sops/${encodeURIComponent(id)}`, { method: 'DELETE', query: { base_version: state.base } });
      state.drafts.delete(id);
      await loadList();
      await selectDoc(id, { keepMessage: true, discardDraft: true });
      setMsg(notice('ok', el('strong', null, `已删除 ${id}（记录为 v${res.version}），用时 ${res.seconds.toFixed(1)} 秒。`),
        el('div', null, '需要恢复时，在右侧历史中选择一个版本「回滚到此版本」。')));
    } catch (err) {
      showPublishError(err, { retry: () => {}, action: '删除' });
      renderHeader();
    }
  });

  // ---- rollback -----------------------------------------------------------------------------------------
  async function rollback(version, btn) {
    const id = state.selected;
    if (!id) return;
    btn.disabled = true;
    setMsg(notice('info', el('span', { class: 'spinner' }), ` 正在回滚到 v${version}…`));
    try {
      const res = await api(`/v1/sops/${encodeURIComponent(id)}/rollback`, {
        method: 'POST', json: { to_version: version, base_version: state.base ?? 0 },
      });
      state.drafts.delete(id);
      await loadList();
      await selectDoc(id, { keepMessage: true, discardDraft: true });
      setMsg(notice('ok', el('strong', null, `已回滚到 v${version}：发布为新版本 v${res.version}，用时 ${res.seconds.toFixed(1)} 秒。`),
        res.warnings.length ? issueList(res.warnings) : null));
    } catch (err) {
      btn.disabled = false;
      showPublishError(err, { retry: () => {}, action: '回滚' });
    }
  }

  // Keyboard: Ctrl/Cmd+S publishes, Ctrl/Cmd+Enter previews (while editing).
  ui.editor.addEventListener('keydown', (ev) => {
    if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === 's') { ev.preventDefault(); publish(false); }
    else if ((ev.ctrlKey || ev.metaKey) && ev.key === 'Enter') { ev.preventDefault(); ui.previewBtn.click(); }
  });
  // Unpublished edits survive a reload of this tab (sessionStorage), without a "leave page?" prompt.
  const DRAFTS_KEY = 'kb.trainer.drafts';
  try {
    const saved = JSON.parse(sessionStorage.getItem(DRAFTS_KEY) || '[]');
    if (Array.isArray(saved)) saved.forEach(([id, d]) => { if (d && typeof d.text === 'string') state.drafts.set(id, d); });
  } catch (_) { /* ignore */ }
  const saveDrafts = () => {
    try { sessionStorage.setItem(DRAFTS_KEY, JSON.stringify([...state.drafts])); } catch (_) { /* ignore */ }
  };
  window.addEventListener('pagehide', () => { keepDraft(); saveDrafts(); });
  document.addEventListener('visibilitychange', () => { if (document.hidden) { keepDraft(); saveDrafts(); } });

  // ---- hit test -----------------------------------------------------------------------------------------
  let hitController = null;
  ui.hitForm.addEventListener('submit', (ev) => { ev.preventDefault(); runHitTest(); });

  async function runHitTest() {
    const query = ui.hitQuery.value.trim();
    if (!query) { ui.hitQuery.focus(); return; }
    if (hitController) hitController.abort();
    hitController = new AbortController();
    const controller = hitController;
    ui.hitRun.disabled = true;
    clear(ui.hitResults).appendChild(el('div', { class: 'faint' }, el('span', { class: 'spinner' }), ' 正在检索…'));
    try {
      const data = await api('/v1/search', {
        method: 'POST',
        json: { query, top_k: Number(ui.hitTopk.value), audience: ui.hitAudience.value, explain: true },
        signal: controller.signal,
      });
      if (controller !== hitController) return;
      renderHitTest(data);
    } catch (err) {
      if (err.name === 'AbortError') return;
      clear(ui.hitResults).appendChild(notice('error', err.status === 403 ? `${err.message}（命中测试需要培训师密钥）` : err.message));
    } finally {
      if (controller === hitController) ui.hitRun.disabled = false;
    }
  }

  function renderHitTest(data) {
    const box = clear(ui.hitResults);
    box.appendChild(el('div', { class: 'summary' },
      el('span', null, `查询「${data.query}」`),
      el('span', null, `${data.results.length} 个结果`),
      el('span', null, `总耗时 ${data.took_ms.toFixed(1)} ms`),
      data.generation ? el('span', { class: 'mono faint' }, `索引 ${data.generation}`) : null,
      data.query_id ? el('span', { class: 'faint' }, `查询编号 #${data.query_id}`) : null));
    // Channels with weight 0 are not searched at all and are absent from `explain.channels`.
    const used = new Set(data.results.flatMap((r) => Object.keys((r.explain && r.explain.channels) || {})));
    const known = new Set(CHANNELS.map(([k]) => k));
    const columns = [...CHANNELS, ...[...used].filter((k) => !known.has(k)).map((k) => [k, k])];
    const maxFused = Math.max(...data.results.map((r) => (r.explain ? r.explain.fused_score : r.score)), 0.0001);
    const rows = data.results.map((r, i) => {
      const ex = r.explain || { channels: {}, fused_score: r.score };
      const open = el('a', { href: '#docs' }, r.title);
      open.addEventListener('click', (ev) => { ev.preventDefault(); showTab('docs'); selectDoc(r.sop_id); });
      return el('tr', { class: 'hit-row', dataset: { sopId: r.sop_id } },
        el('td', { class: 'rank-cell' }, i + 1),
        el('td', { class: 'title-cell' }, open, el('span', { class: 'mono' }, `${r.sop_id} · v${r.version} · ${r.category}`),
          KB.learning ? KB.learning.hitBadge(ex.learned) : null),
        el('td', { class: 'num' }, ex.fused_score.toFixed(4), el('div', { class: 'bar', style: `width:${Math.round(100 * ex.fused_score / maxFused)}%` })),
        columns.map(([key]) => {
          const c = ex.channels[key];
          if (!used.has(key)) return el('td', { class: 'num chan none', title: '该通道权重为 0，本次检索未使用' }, '未启用');
          if (!c || c.rank === null || c.rank === undefined) return el('td', { class: 'num chan none', title: '该通道单独检索时的前几十名里没有这份 SOP' }, '—');
          return el('td', { class: 'num chan' + (c.rank === 1 ? ' top' : '') },
            el('span', { class: 'r' }, `#${c.rank}`), el('span', { class: 's' }, c.score === null ? '' : c.score.toFixed(4)));
        }),
        el('td', { class: 'sections-cell' }, r.sections.map((s) => el('div', null,
          (s.heading_path || []).slice(1).join(' › ') || s.heading, ' ',
          el('span', { class: 'faint' }, s.score.toFixed(3)),
          s.audience === 'agent' && r.audience === 'public' ? [' ', el('span', { class: 'badge internal' }, '内部')] : null))),
      );
    });
    const table = el('div', { class: 'table-wrap' }, el('table', { class: 'grid hit-table' },
      el('thead', null, el('tr', null,
        el('th', null, '排名'), el('th', null, 'SOP'), el('th', { class: 'num' }, '融合分数'),
        columns.map(([key, label]) => el('th', { class: 'num', title: `${label}通道单独检索时的排名和分数` }, `${label}`, el('br'), el('span', { class: 'faint mono' }, key))),
        el('th', null, '匹配小节'))),
      el('tbody', null, rows.length ? rows : el('tr', null, el('td', { colspan: String(4 + columns.length), class: 'empty-row' }, '没有结果')))));

    const exp = el('div', { class: 'box expansions-box' }, el('h3', null, '同义词扩展'),
      data.expansions.length
        ? el('ul', { class: 'text-list' }, data.expansions.map((e) => el('li', null, `${e.found} → ${e.synonyms.join('、')}`)))
        : el('div', { class: 'empty-row' }, '没有触发同义词扩展'));
    const stages = Object.entries(data.timings_ms || {});
    const timings = el('div', { class: 'box timings-box' }, el('h3', null, '各阶段耗时'),
      el('table', { class: 'grid' }, el('tbody', null,
        stages.map(([k, v]) => el('tr', null, el('td', null, STAGE_LABELS[k] || k, ' ', el('span', { class: 'faint mono' }, k)), el('td', { class: 'num' }, `${v.toFixed(1)} ms`))),
        el('tr', null, el('th', null, '总计'), el('th', { class: 'num' }, `${data.took_ms.toFixed(1)} ms`)))));
    box.appendChild(el('div', { class: 'hit-grid' }, table, el('div', { class: 'hit-side' }, exp, timings)));
  }

  // ---- gap report ---------------------------------------------------------------------------------------
  function gapRange() {
    const v = ui.gapRange.value;
    const now = Date.now() / 1000;
    if (v === 'today') {
      const d = new Date();
      d.setHours(0, 0, 0, 0);
      return { since: Math.floor(d.getTime() / 1000) };
    }
    return { since: Math.floor(now - Number(v) * 86400) };
  }

  let gapsToken = 0;
  async function loadGaps() {
    state.gapsLoaded = true;
    const token = ++gapsToken;
    ui.gapSummary.textContent = '';
    clear(ui.gapReport).appendChild(el('div', { class: 'faint' }, el('span', { class: 'spinner' }), ' 正在生成报告…'));
    try {
      const r = await api('/v1/reports/gaps', { query: gapRange() });
      if (token !== gapsToken) return;
      state.lastReport = r;
      renderGaps(r);
    } catch (err) {
      if (token !== gapsToken) return;
      clear(ui.gapReport).appendChild(notice('error', `无法生成缺口报告：${err.message}`));
    }
  }
  ui.gapRange.addEventListener('change', loadGaps);
  ui.gapRefresh.addEventListener('click', loadGaps);

  const titleOf = (id) => (summaryOf(id) ? summaryOf(id).title : id);
  const docLink = (id, label) => {
    const b = el('button', { type: 'button', class: 'linkish', title: `在「文档」中打开 ${id}` }, label || titleOf(id));
    b.addEventListener('click', () => { showTab('docs'); selectDoc(id); });
    return b;
  };
  const queryLink = (q) => {
    const b = el('button', { type: 'button', class: 'linkish', title: '在「命中测试」中测试这个问题' }, q);
    b.addEventListener('click', () => { showTab('hittest'); ui.hitQuery.value = q; runHitTest(); });
    return b;
  };
  const emptyRow = (cols, text) => el('tr', null, el('td', { colspan: String(cols), class: 'empty-row' }, text));

  function renderGaps(r) {
    const range = ui.gapRange.selectedOptions[0].textContent;
    ui.gapSummary.textContent = `${range}：共 ${r.total_queries} 次提问（${KB.formatTs(r.since)} 至 ${KB.formatTs(r.until)}）`;
    const pane = clear(ui.gapReport);

    pane.appendChild(el('section', { class: 'box wide', id: 'gap-unanswered' },
      el('h3', null, '未解决问题', el('span', { class: 'count' }, `${r.unanswered.length} 组（按意思归组：无结果、转人工、低置信度、被点踩）`)),
      el('div', { class: 'table-wrap' }, el('table', { class: 'grid' },
        el('thead', null, el('tr', null, el('th', null, '代表问题'), el('th', { class: 'num' }, '次数'), el('th', null, '原因'), el('th', null, '同组问法'))),
        el('tbody', null, r.unanswered.length ? r.unanswered.map((g) => el('tr', null,
          el('td', null, queryLink(g.representative)),
          el('td', { class: 'num' }, g.count),
          el('td', null, Object.entries(g.reasons).map(([k, n]) => el('span', { class: `reason r-${k}` }, `${k} ${n}`))),
          el('td', { class: 'examples-cell' }, g.examples.join(' ／ ')),
        )) : emptyRow(4, '这段时间没有未解决的问题'))))));

    pane.appendChild(el('section', { class: 'box', id: 'gap-top' },
      el('h3', null, '热门问题', el('span', { class: 'count' }, `前 ${r.top_queries.length} 个`)),
      el('table', { class: 'grid' },
        el('thead', null, el('tr', null, el('th', null, '问题'), el('th', { class: 'num' }, '次数'))),
        el('tbody', null, r.top_queries.length ? r.top_queries.map((q) => el('tr', null,
          el('td', null, queryLink(q.query)), el('td', { class: 'num' }, q.count))) : emptyRow(2, '这段时间没有提问')))));

    pane.appendChild(el('section', { class: 'box', id: 'gap-feedback' },
      el('h3', null, '反馈', el('span', { class: 'count' }, '按点踩数排序')),
      el('table', { class: 'grid' },
        el('thead', null, el('tr', null, el('th', null, 'SOP'), el('th', { class: 'num' }, '有用'), el('th', { class: 'num' }, '没用'))),
        el('tbody', null, r.feedback.length ? r.feedback.map((f) => el('tr', null,
          el('td', null, docLink(f.sop_id, f.title)), el('td', { class: 'num' }, f.up),
          el('td', { class: 'num', style: f.down ? 'color:var(--danger);font-weight:600' : null }, f.down))) : emptyRow(3, '这段时间没有反馈')))));

    pane.appendChild(el('section', { class: 'box', id: 'gap-never' },
      el('h3', null, '从未被检索到的 SOP', el('span', { class: 'count' }, `${r.never_found.length} 份（这段时间没有出现在任何查询的前 3 名）`)),
      r.never_found.length ? el('div', { class: 'chips' }, r.never_found.map((id) => docLink(id, `${titleOf(id)}（${id}）`)))
        : el('div', { class: 'empty-row' }, '所有 SOP 都被检索到过')));

    pane.appendChild(el('section', { class: 'box', id: 'gap-overdue' },
      el('h3', null, '复核过期', el('span', { class: 'count' }, `${r.review_overdue.length} 份`)),
      el('table', { class: 'grid' },
        el('thead', null, el('tr', null, el('th', null, 'SOP'), el('th', null, '复核日期'), el('th', null, '负责人'))),
        el('tbody', null, r.review_overdue.length ? r.review_overdue.map((d) => el('tr', null,
          el('td', null, docLink(d.sop_id, d.title)), el('td', { style: 'color:var(--danger)' }, d.review_by), el('td', null, d.owner || '—')))
          : emptyRow(3, '没有复核过期的 SOP')))));
  }

  ui.exportCsv.addEventListener('click', async () => {
    ui.exportCsv.disabled = true;
    try {
      const resp = await api('/v1/reports/gaps.csv', { query: gapRange(), raw: true });
      const blob = await resp.blob();
      const url = URL.createObjectURL(blob);
      const a = el('a', { href: url, download: `kb-gap-report-${KB.today()}.csv` });
      a.style.display = 'none';
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      ui.gapSummary.textContent = `导出失败：${err.message}`;
    } finally {
      ui.exportCsv.disabled = false;
    }
  });

  // ---- start --------------------------------------------------------------------------------------------
  renderHeader();
  showTab(location.hash.slice(1) || 'docs', { updateHash: false });
  keyBar.check();
})();
