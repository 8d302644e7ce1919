/* Shared helpers of the staff pages (agent console and trainer workspace): API calls with the stored key,
   DOM building, clipboard, key bar. Exposes one global: window.KB. */
(() => {
  'use strict';

  const KEY_STORAGE = 'kb.apiKey';
  const KB = {};

  // ---- API key storage ---------------------------------------------------------------------------
  KB.getKey = () => {
    try { return localStorage.getItem(KEY_STORAGE) || ''; } catch (_) { return KB._memoryKey || ''; }
  };
  KB.setKey = (key) => {
    try {
      if (key) localStorage.setItem(KEY_STORAGE, key); else localStorage.removeItem(KEY_STORAGE);
    } catch (_) { /* storage disabled: the key lives for this page only */ }
    KB._memoryKey = key;
  };

  // ---- API calls ---------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, code, message, details, retryAfter) {
      super(message);
      this.name = 'ApiError';
      this.status = status;
      this.code = code;
      this.details = details || [];
      this.retryAfter = retryAfter;
    }
  }
  KB.ApiError = ApiError;

  const FALLBACK_MESSAGES = {
    0: '无法连接知识库服务，请检查网络后重试',
    401: 'API 密钥无效，请检查后重新输入',
    403: '当前密钥没有权限执行此操作',
    404: '找不到请求的内容',
    413: '内容过大',
    429: '请求太频繁，请稍后再试',
    500: '服务器内部错误，请稍后再试',
    502: '服务暂时不可用，请稍后再试',
    503: '服务正在加载，请稍后再试',
  };

  /**
   * Call the API. Options: method, json (object sent as JSON), text (sent as Markdown), signal, raw (return the
   * Response), query (object of query parameters). Throws ApiError with the server's Chinese+English message.
   */
  KB.api = async (path, opts = {}) => {
    const { method = 'GET', json, text, signal, raw = false, query } = opts;
    const headers = { Accept: 'application/json' };
    const key = KB.getKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    let body;
    if (json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(json);
    } else if (text !== undefined) {
      headers['Content-Type'] = 'text/markdown; charset=utf-8';
      body = text;
    }
    let url = path;
    if (query) {
      const qs = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
      const s = qs.toString();
      if (s) url += (url.includes('?') ? '&' : '?') + s;
    }
    let resp;
    try {
      resp = await fetch(url, { method, headers, body, signal, cache: 'no-store', credentials: 'same-origin' });
    } catch (err) {
      if (err && err.name === 'AbortError') throw err;
      throw new ApiError(0, 'network', FALLBACK_MESSAGES[0]);
    }
    if (!resp.ok) {
      let code = `http_${resp.status}`;
      let message = FALLBACK_MESSAGES[resp.status] || `请求失败（HTTP ${resp.status}）`;
      let details = [];
      try {
        const data = await resp.json();
        if (data && data.error) {
          code = data.error.code || code;
          message = data.error.message || message;
          details = Array.isArray(data.error.details) ? data.error.details : [];
        }
      } catch (_) { /* not JSON */ }
      const retry = parseInt(resp.headers.get('Retry-After') || '', 10);
      throw new ApiError(resp.status, code, message, details, Number.isFinite(retry) ? retry : undefined);
    }
    if (raw) return resp;
    if (resp.status === 204) return null;
    return resp.json();
  };

  /** The caller's role: {role, auth} or {error: 'invalid'|'network'|..., message}. */
  KB.whoami = async () => {
    try {
      return await KB.api('/v1/whoami');
    } catch (err) {
      if (err.status === 401) return { error: 'invalid', message: err.message };
      return { error: err.status === 0 ? 'network' : 'other', message: err.message };
    }
  };

  // ---- DOM helpers -------------------------------------------------------------------------------
  /** el('div', {class: 'x', onclick: fn, dataset: {a: 1}}, child, 'text', [more]) — text is never parsed as HTML. */
  KB.el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === 'class') node.className = v;
        else if (k === 'dataset') Object.assign(node.dataset, v);
        else if (k === 'text') node.textContent = v;
        else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
        else if (k in node && typeof v !== 'string') node[k] = v;
        else node.setAttribute(k, v === true ? '' : String(v));
      }
    }
    KB.append(node, children);
    return node;
  };
  KB.append = (node, children) => {
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      if (Array.isArray(c)) KB.append(node, c);
      else node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  };
  KB.clear = (node) => { while (node.firstChild) node.removeChild(node.firstChild); return node; };
  KB.$ = (sel, root = document) => root.querySelector(sel);
  KB.$$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  KB.isEditable = (target) => {
    if (!target || !(target instanceof Element)) return false;
    if (target.isContentEditable) return true;
    const tag = target.tagName;
    if (tag === 'TEXTAREA' || tag === 'SELECT') return true;
    if (tag === 'INPUT') {
      const type = (target.getAttribute('type') || 'text').toLowerCase();
      return !['button', 'submit', 'reset', 'checkbox', 'radio', 'range', 'color', 'file'].includes(type);
    }
    return false;
  };

  /** Small inline icons (emoji fonts are missing on some desktops). */
  const ICONS = {
    up: 'M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z',
    down: 'M15 3H6c-.83 0-1.54.5-1.84 1.22l-3.02 7.05c-.09.23-.14.47-.14.73v2c0 1.1.9 2 2 2h6.31l-.95 4.57-.03.32c0 .41.17.79.44 1.06L9.83 23l6.59-6.59c.36-.36.58-.86.58-1.41V5c0-1.1-.9-2-2-2zm4 0v12h4V3h-4z',
  };
  KB.icon = (name) => {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('width', '14');
    svg.setAttribute('height', '14');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('class', `icon icon-${name}`);
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', ICONS[name]);
    path.setAttribute('fill', 'currentColor');
    svg.appendChild(path);
    return svg;
  };

  // ---- text helpers ------------------------------------------------------------------------------
  KB.KIND_LABELS = {
    scenario: '适用场景', steps: '处理步骤', script: '标准话术', time_limit: '时限', notes: '注意事项',
    escalation: '升级', faq: '常见问题', plain: '普通小节', overview: '概览', qa: '问答', examples: '示例问法',
  };
  KB.today = () => {
    const d = new Date();
    const pad = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  };
  KB.isOverdue = (reviewBy) => Boolean(reviewBy) && reviewBy < KB.today();
  KB.formatTs = (seconds) => {
    const d = new Date(seconds * 1000);
    const pad = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  };
  /** A script line that is only a cue such as "安全提醒：" (a bold label swallowed into the quote). */
  KB.isCueLine = (line) => /[：:]$/.test(line.trim()) && line.trim().length <= 14;

  /**
   * Render a section's plain text (as the parser produced it: "1. step", "- bullet", quote lines, paragraphs)
   * as lists and paragraphs. `scripts` (optional Set) marks which lines are script lines (rendered by
   * `renderScript(line)`). `internal` (optional Set) marks lines that come from a staff-only section.
   */
  KB.renderText = (text, { scripts, renderScript, internal } = {}) => {
    const frag = document.createDocumentFragment();
    let list = null;
    let listKind = '';
    let scriptList = null;
    const close = () => { list = null; listKind = ''; };
    for (const rawLine of String(text || '').split('\n')) {
      const line = rawLine.trim();
      if (!line) { close(); scriptList = null; continue; }
      if (scripts && scripts.has(line) && renderScript) {
        close();
        if (!scriptList) { scriptList = KB.el('ul', { class: 'script-list' }); frag.appendChild(scriptList); }
        scriptList.appendChild(renderScript(line));
        continue;
      }
      scriptList = null;
      const ordered = /^(\d+)[.、)]\s*(.*)$/.exec(line);
      const bullet = /^[-*•]\s+(.*)$/.exec(line);
      if (ordered || bullet) {
        const kind = ordered ? 'ol' : 'ul';
        if (!list || listKind !== kind) {
          list = KB.el(kind, { class: 'text-list' });
          if (ordered && ordered[1] !== '1') list.start = Number(ordered[1]);
          listKind = kind;
          frag.appendChild(list);
        }
        const content = ordered ? ordered[2] : bullet[1];
        list.appendChild(KB.el('li', { class: internal && internal.has(content) ? 'internal-item' : null }, content));
      } else {
        close();
        frag.appendChild(KB.el('p', { class: 'text-para' }, line));
      }
    }
    return frag;
  };

  // ---- clipboard ---------------------------------------------------------------------------------
  const fallbackCopy = (text) => {
    const ta = document.createElement('textarea');
    ta.value = text;
    ta.setAttribute('readonly', '');
    ta.setAttribute('aria-hidden', 'true');
    ta.style.cssText = 'position:fixed;top:0;left:-9999px;width:1px;height:1px;opacity:0;';
    const active = document.activeElement;
    document.body.appendChild(ta);
    ta.select();
    ta.setSelectionRange(0, text.length);
    let ok = false;
    try { ok = document.execCommand('copy'); } catch (_) { ok = false; }
    document.body.removeChild(ta);
    if (active && typeof active.focus === 'function') active.focus({ preventScroll: true });
    return ok;
  };
  KB.copyText = async (text) => {
    if (navigator.clipboard && window.isSecureContext) {
      try { await navigator.clipboard.writeText(text); return true; } catch (_) { /* fall through */ }
    }
    return fallbackCopy(text);
  };

  /** A script line element: `.script-line` with the text, a `.copy-btn` and transient `.copy-done` feedback. */
  KB.scriptLine = (line, { index, internal } = {}) => {
    const cue = KB.isCueLine(line);
    const li = KB.el('li', {
      class: 'script-line' + (cue ? ' is-label' : '') + (internal ? ' internal-item' : ''),
      dataset: { text: line },
    });
    if (index !== undefined && !cue) li.appendChild(KB.el('span', { class: 'script-num', title: `Alt+${index}` }, index));
    li.appendChild(KB.el('span', { class: 'script-text' }, line));
    if (internal) li.appendChild(KB.el('span', { class: 'badge internal', title: '来自内部小节，不要念给租客' }, '内部'));
    const btn = KB.el('button', { type: 'button', class: 'copy-btn', title: '复制这句话术', 'aria-label': `复制：${line}` }, '复制');
    btn.addEventListener('click', (ev) => { ev.stopPropagation(); KB.copyLine(li); });
    li.appendChild(btn);
    return li;
  };
  KB.copyLine = async (li) => {
    const ok = await KB.copyText(li.dataset.text || '');
    if (ok) li.dispatchEvent(new CustomEvent('kb:copied', { bubbles: true })); // learning.js records the copy
    KB.$$('.copy-done', li).forEach((n) => n.remove());
    const done = KB.el('span', { class: 'copy-done', role: 'status' }, ok ? '已复制' : '复制失败，请手动选择文字');
    if (!ok) done.style.color = 'var(--danger)';
    li.appendChild(done);
    clearTimeout(li._copyTimer);
    li._copyTimer = setTimeout(() => done.remove(), 2500);
    return ok;
  };

  // ---- key bar -----------------------------------------------------------------------------------
  /**
   * Wire the `#api-key` / `#save-key` / `#auth-msg` key bar. `onRole(info)` is called with the whoami result
   * after load and after every save. `messages.missing` customises the "no key" text for the page.
   */
  KB.initKeyBar = ({ onRole, messages = {} } = {}) => {
    const input = KB.$('#api-key');
    const save = KB.$('#save-key');
    const msg = KB.$('#auth-msg');
    input.value = KB.getKey();
    const show = (text, cls) => { msg.textContent = text; msg.className = `auth-msg ${cls}`; };
    const check = async () => {
      show('正在验证…', 'trial');
      const info = await KB.whoami();
      const hasKey = Boolean(KB.getKey());
      if (info.error === 'invalid') show('API 密钥无效，请检查后重新输入', 'error');
      else if (info.error) show(info.message || '无法连接知识库服务', 'error');
      else if (!info.auth) show('本地试用模式（未启用认证）', 'trial');
      else if (!hasKey || info.role === 'public') show(messages.missing || '未设置 API 密钥', 'warn');
      else show(info.role === 'trainer' ? '已验证：培训师密钥' : '已验证：坐席密钥', 'ok');
      msg.title = info.error ? (info.message || '') : '';
      if (onRole) onRole(info);
      return info;
    };
    const doSave = () => {
      KB.setKey(input.value.trim());
      input.value = KB.getKey();
      return check();
    };
    save.addEventListener('click', doSave);
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') { ev.preventDefault(); doSave(); }
    });
    return { check };
  };

  window.KB = KB;
})();
