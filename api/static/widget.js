/*
 * 安居优寓 SOP 知识库 · 租客在线客服挂件 / embeddable tenant chat widget.
 *
 *   <script src="https://kb.example.com/widget.js" data-title="在线客服" data-color="#1f6feb" async></script>
 *
 * Attributes (data-api, -welcome, -placeholder, -position, -offset-bottom, -launcher), the JS API
 * (window.KbChatWidget: open, close, toggle, ask, version), the `kb-handover` and `kb-unread` events, the stable CSS
 * hooks inside the open shadow root and the hand-over: docs/handover.md ("Embedding the widget"). Everything lives in
 * the shadow root of one host element (<div id="kb-chat-widget">). The widget never sends an API key: tenants are
 * anonymous and only ever see public content. Styles: /widget.css from the API's origin, adopted into the shadow root
 * (no inline styles). /widget-handover.js (same origin) holds the contact form, the case and the agent's replies.
 */
(() => {
  if (window.KbChatWidget) return; // loaded twice

  const VERSION = '1.0';
  const DEFAULT_COLOR = '#1f6feb';
  const MAX_CHARS = 300;
  const TIMEOUT_MS = 20000;
  const SESSION_KEY = 'kb-chat-widget.session';
  const CASE_KEY = 'kb-chat-widget.case';
  const RATE_KEY = 'kb-chat-widget.rate'; // a closed case not rated yet (widget-handover.js)
  const HANDOFF_FALLBACK = '这个问题需要人工客服为您处理。'; // no case exists yet: nothing says 转接 as done
  const TO_PERSON = '好的，马上为您安排人工客服。';
  // A message that only asks for a person (punctuation and spaces aside): 转人工, 人工客服, 找人工, 我要人工, and said
  // impatiently after answers that did not help: 不行，我要找人工 / 我就要人工！！ / 算了直接转人工
  const PERSON =
    /^(不行|算了|那|那就|还是|直接|快|赶紧)*(请|麻烦)?(你)?(帮我|给我)?(我要|我想|我就要|我就想|就要|要|能|可以|能不能)?(转|找|接|转接|联系)?(人工|真人|活人|客服)(客服|服务)?(吧|啊|呀|吗|么)?$/;
  const wantsPerson = (q) => PERSON.test(q.replace(/[\s，。！？、,.!?~～]/g, ''));
  // An answer that sends the tenant to a person (请联系管家了解…): the way to one is offered under it (a trial)
  const refers = (a) => /(联系|找|咨询|询问)(您的|你的)?(管家|客服|前台|门店)/.test(String(a || '').split('（来源')[0]);

  // ---- configuration from the <script> tag ------------------------------------------------------------
  const script =
    document.currentScript ||
    (() => {
      const all = document.querySelectorAll('script[src]');
      for (let i = all.length - 1; i >= 0; i -= 1) {
        if (/\/widget\.js(?:[?#]|$)/.test(all[i].src)) return all[i];
      }
      return null;
    })();
  const attr = (name, fallback) => {
    const v = script?.getAttribute(`data-${name}`)?.trim();
    return v || fallback;
  };
  const apiBase = (() => {
    const explicit = attr('api', '');
    try {
      if (explicit) return new URL(explicit, location.href).href.replace(/\/+$/, '');
      if (script?.src) return new URL(script.src, location.href).origin;
    } catch (_) {
      /* fall through */
    }
    return location.origin;
  })();
  const supportsColor = (c) => {
    try {
      return Boolean(window.CSS?.supports?.('color', c));
    } catch (_) {
      return false;
    }
  };
  const color = (() => {
    const c = attr('color', DEFAULT_COLOR);
    return supportsColor(c) ? c : DEFAULT_COLOR;
  })();
  const title = attr('title', '在线客服');
  const welcome = attr('welcome', '您好！我是在线智能客服，报修、缴费、门禁、退租等问题都可以问我。'); // no company's name: the host page's data-welcome gives its own
  const placeholder = attr('placeholder', '请输入您的问题…');
  const left = attr('position', 'right') === 'left';

  // ---- session id (per browser tab) -------------------------------------------------------------------
  const newSessionId = () => {
    const bytes = new Uint8Array(12);
    if (window.crypto?.getRandomValues) crypto.getRandomValues(bytes);
    else for (let i = 0; i < bytes.length; i += 1) bytes[i] = Math.floor(Math.random() * 256);
    return `w-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
  };
  let memorySession = null;
  const sessionId = () => {
    try {
      let id = sessionStorage.getItem(SESSION_KEY);
      if (!id || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
        id = newSessionId();
        sessionStorage.setItem(SESSION_KEY, id);
      }
      return id;
    } catch (_) {
      memorySession = memorySession || newSessionId();
      return memorySession;
    }
  };

  // ---- tiny DOM helpers ---------------------------------------------------------------------------------
  const h = (tag, cls, text) => {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = text;
    return n;
  };
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const ICONS = {
    chat: 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01z',
    close: 'M6.4 5L12 10.6 17.6 5 19 6.4 13.4 12 19 17.6 17.6 19 12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z',
    agent:
      'M12 2a8 8 0 0 0-8 8v5a3 3 0 0 0 3 3h1v-7H6v-1a6 6 0 0 1 12 0v1h-2v7h2v1h-5v2h5a2 2 0 0 0 2-2v-1.2A3 3 0 0 0 20 15v-5a8 8 0 0 0-8-8z',
    up: 'M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z',
    down: 'M15 3H6c-.83 0-1.54.5-1.84 1.22l-3.02 7.05c-.09.23-.14.47-.14.73v2c0 1.1.9 2 2 2h6.31l-.95 4.57-.03.32c0 .41.17.79.44 1.06L9.83 23l6.59-6.59c.36-.36.58-.86.58-1.41V5c0-1.1-.9-2-2-2zm4 0v12h4V3h-4z',
  };
  const icon = (name, size) => {
    const make = (tag, attrs) => {
      const n = document.createElementNS(SVG_NS, tag);
      for (const [k, v] of Object.entries(attrs)) if (v) n.setAttribute(k, v);
      return n;
    };
    const svg = make('svg', { viewBox: '0 0 24 24', 'aria-hidden': 'true', width: size, height: size });
    svg.appendChild(make('path', { d: ICONS[name], fill: 'currentColor', 'fill-rule': 'evenodd' }));
    return svg;
  };

  // ---- network ------------------------------------------------------------------------------------------
  class ChatError extends Error {
    constructor(kind, status, retryAfter) {
      super(kind);
      this.kind = kind;
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }
  const post = async (path, body) => {
    const controller = typeof AbortController === 'function' ? new AbortController() : null;
    const timer = controller ? setTimeout(() => controller.abort(), TIMEOUT_MS) : null;
    let resp;
    try {
      resp = await fetch(apiBase + path, {
        method: 'POST',
        mode: 'cors',
        credentials: 'omit',
        cache: 'no-store',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, // never an Authorization header
        body: JSON.stringify(body),
        signal: controller ? controller.signal : undefined,
      });
    } catch (err) {
      throw new ChatError(err && err.name === 'AbortError' ? 'timeout' : 'network', 0);
    } finally {
      if (timer) clearTimeout(timer);
    }
    if (!resp.ok) {
      const retry = parseInt(resp.headers.get('Retry-After') || '', 10);
      throw new ChatError(resp.status === 429 ? 'rate' : 'http', resp.status, Number.isFinite(retry) ? retry : null);
    }
    return resp.json();
  };
  const FAILED = {
    rate: (err) => `提问太频繁，请稍后再试${err.retryAfter ? `（约 ${err.retryAfter} 秒后）。` : '。'}`,
    timeout: () => '网络有点慢，暂时没有收到回复，请稍后再试。',
    network: () => '网络好像出了点问题，请检查网络连接后再试。',
    503: () => '客服系统正在启动，请稍后再试。',
    422: () => '抱歉，这个问题我没能看懂，请换个简短的说法再试。',
  };
  const errorText = (err) =>
    (FAILED[err.kind] || FAILED[err.status === 413 ? 422 : err.status])?.(err) ||
    '抱歉，客服系统暂时出了点问题，请稍后再试。';

  // ---- build the widget -------------------------------------------------------------------------------
  /** The host element (the launcher's fixed 56x56 box) with an open shadow root, or null if already mounted. */
  function createHost() {
    let host = document.getElementById('kb-chat-widget');
    if (host?.shadowRoot) return null; // already mounted by another copy
    if (!host) {
      host = document.createElement('div');
      host.id = 'kb-chat-widget';
      document.body.appendChild(host);
    }
    if (left) host.setAttribute('data-kb-side', 'left'); // widget.css places the host (:host rules)
    // Above the host app's own bottom bar (a phone trial: the launcher covered its 我的 tab), or no launcher at all
    // when the host opens the chat from its own button (KbChatWidget.open())
    const offset = parseInt(attr('offset-bottom', ''), 10);
    if (offset >= 0 && offset < 400) host.style.setProperty('--kb-offset-bottom', `${offset}px`);
    if (attr('launcher', '') === 'none') host.setAttribute('data-kb-launcher', 'none');
    return host.attachShadow({ mode: 'open' });
  }

  /**
   * widget.css (next to the API) in the shadow root, fetched and adopted as a constructed stylesheet: a host page's
   * CSP governs <link> and <style> (style-src), not constructed sheets, and a host of another origin may not name ours
   * there. A <link> where constructed sheets are missing or the fetch fails. The widget shows once styled.
   */
  function addStyles(root, wrap) {
    const url = `${apiBase}/widget.css`;
    const show = () => {
      wrap.hidden = false;
    };
    const link = () => {
      const tag = h('link');
      tag.rel = 'stylesheet';
      tag.href = url;
      tag.onload = show;
      tag.onerror = show;
      root.prepend(tag);
    };
    if (!('adoptedStyleSheets' in root) || typeof CSSStyleSheet !== 'function') return link();
    fetch(url, { mode: 'cors', credentials: 'omit' })
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(String(r.status)))))
      .then((css) => {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(css);
        root.adoptedStyleSheets = [sheet];
        show();
      })
      .catch(link);
  }

  /** The brand colour (through the CSSOM, which no CSP blocks), and readable text on it: dark on light colours. */
  function pickTextColor(wrap) {
    wrap.style.setProperty('--kb-color', color);
    try {
      const probe = h('span');
      probe.style.color = color;
      wrap.appendChild(probe);
      const m = /rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(getComputedStyle(probe).color);
      probe.remove();
      if (m && (0.299 * m[1] + 0.587 * m[2] + 0.114 * m[3]) / 255 > 0.7) {
        wrap.style.setProperty('--kb-on-color', '#1f2328');
      }
    } catch (_) {
      /* keep white */
    }
  }

  const button = (cls, label, text) => {
    const b = h('button', cls, text);
    b.type = 'button';
    if (label) b.setAttribute('aria-label', label);
    return b;
  };
  const partCtx = { h, icon, button, post }; // what widget-feedback.js builds with

  function buildHeader() {
    const header = h('div', 'kb-header');
    const avatar = h('div', 'kb-avatar', title.slice(0, 1));
    avatar.setAttribute('aria-hidden', 'true');
    const heading = h('div', 'kb-heading');
    heading.append(h('h2', 'kb-title', title), h('div', 'kb-subtitle', '智能客服 · 7×24 小时在线')); // a heading
    const closeBtn = button('kb-close', '关闭');
    closeBtn.title = '关闭';
    closeBtn.appendChild(icon('close', 20));
    header.append(avatar, heading, closeBtn);
    return { header, closeBtn };
  }

  function buildForm() {
    const form = h('form', 'kb-form');
    form.setAttribute('novalidate', '');
    const input = h('input', 'kb-input');
    input.type = 'text';
    input.placeholder = placeholder;
    input.autocomplete = 'off';
    input.setAttribute('aria-label', '输入您的问题');
    input.setAttribute('enterkeyhint', 'send');
    const send = h('button', 'kb-send', '发送');
    send.type = 'submit';
    form.append(input, send);
    return { form, input, send };
  }

  /** The launcher button and the (hidden) chat panel with its parts. */
  function buildPanel(wrap) {
    const launcher = button('kb-launcher', `打开${title}`);
    launcher.setAttribute('aria-expanded', 'false');
    launcher.title = title;
    launcher.appendChild(icon('chat'));
    const panel = h('div', 'kb-panel');
    panel.hidden = true;
    panel.setAttribute('role', 'dialog');
    panel.tabIndex = -1;
    panel.setAttribute('aria-label', title);
    panel.lang = 'zh-CN'; // read with a Chinese voice on a host page in another language
    const { header, closeBtn } = buildHeader();
    const list = h('div', 'kb-messages');
    list.setAttribute('role', 'log');
    list.setAttribute('aria-live', 'polite');
    const { form, input, send } = buildForm();
    // How much may still be typed, shown near the limit: a long paste is kept whole and not sent until it fits (a
    // trial: a maxlength cut a pasted 400-character message at 300 without a word)
    const limit = h('div', 'kb-limit');
    limit.hidden = true;
    limit.setAttribute('role', 'status');
    const footer = h('div', 'kb-footer', '回答由知识库自动生成，仅供参考');
    const human = button('kb-human', '转人工客服', '转人工'); // always there (hidden while a case is open)
    footer.append(h('span', 'kb-human-sep', ' · '), human); // the separator goes with the button
    panel.append(header, list, limit, form, footer);
    wrap.append(panel, launcher);
    return { launcher, panel, closeBtn, list, form, input, send, human, limit };
  }

  /** A Markdown list item's 「- 」 read as a bullet (a trial: answers began with a literal 「- 」). */
  const bulleted = (text) => text.replace(/^- /gm, '• ');

  // ---- messages ---------------------------------------------------------------------------------------
  function createMessages(list) {
    const scrollDown = () => {
      list.scrollTop = list.scrollHeight;
    };
    // Who says it, for a screen reader (an accessibility review: the log ran the tenant's and the bot's words together)
    const said = (who, cls = '') =>
      h('span', 'kb-sr', who === 'user' ? '我说：' : /agent/.test(cls) ? '' : '智能客服：');
    const add = (who, text, extraClass) => {
      const msg = h('div', `kb-msg kb-${who}${extraClass ? ` ${extraClass}` : ''}`);
      msg.append(said(who, extraClass), h('div', 'kb-text', text)); // a person's reply has its own label
      list.appendChild(msg);
      scrollDown();
      return msg;
    };
    const answer = (data, onDown) => {
      if (data.handoff) {
        const msg = h('div', `kb-msg kb-bot kb-handoff${data.urgent ? ' kb-urgent' : ''}`);
        msg.setAttribute('role', 'status');
        const phone = data.urgent ? data.emergency_phone : null;
        const text = bulleted(withoutPhone(String(data.answer || '').trim(), phone)); // no raw 「- 」 (a phone trial)
        msg.append(said('bot'), icon('agent'), h('div', 'kb-text', text || HANDOFF_FALLBACK));
        list.appendChild(msg);
        scrollDown();
        return msg;
      }
      const source = Array.isArray(data.sources) && data.sources.length ? data.sources[0] : null;
      // The answer ends with its own "（来源：…）" note, the source line shown below: the widget shows it once.
      const cite = source ? `（来源：《${source.title}》· ${source.section}）` : null;
      let text = String(data.answer || '').trim();
      if (cite && text.endsWith(cite)) text = text.slice(0, -cite.length).trim();
      const msg = add('bot', bulleted(text) || '（没有找到相关内容）');
      if (data.full_text) {
        // The answer shows the lines of a long section that answer the question; the tenant can unfold the rest.
        const more = button('kb-more', '查看完整内容', '查看完整内容');
        more.addEventListener('click', () => {
          const full = msg.querySelector('.kb-text');
          full.setAttribute('aria-live', 'off'); // read once, on focus: not again from the chat log (a review)
          full.textContent = bulleted(String(data.full_text).trim());
          full.tabIndex = -1;
          full.focus(); // the button goes: focus stays in the chat (it fell to the host page)
          more.remove();
        });
        msg.appendChild(more);
      }
      if (source) {
        // an answer in parts (押金什么时候退？…扣哪些钱) cites each part's source in its text: no line for one of them
        if (data.sources.length === 1)
          msg.appendChild(h('div', 'kb-source', `来源：《${source.title}》· ${source.section}`));
        withPart('feedback', (fb) => {
          const row = fb.votes(partCtx, source.sop_id, data.query_id, () => onDown?.(msg));
          msg.insertBefore(row, msg.querySelector('.kb-offer')); // above a way to a person offered meanwhile
          scrollDown();
        });
      }
      scrollDown();
      return msg;
    };
    /** A visible way to a person under `msg` (one at a time: a later offer replaces it). */
    const offer = (msg, toPerson) => {
      for (const old of list.querySelectorAll('.kb-offer')) old.remove();
      const row = h('div', 'kb-offer', '没有解决您的问题？');
      const b = button('kb-human-offer', '转人工客服', '转人工');
      b.addEventListener('click', () => toPerson());
      row.appendChild(b);
      msg.appendChild(row);
      scrollDown();
    };
    const typing = () => {
      const node = h('div', 'kb-typing');
      node.setAttribute('aria-label', '正在输入');
      node.append(h('span'), h('span'), h('span'));
      list.appendChild(node);
      scrollDown();
      return node;
    };
    return { add, answer, typing, scrollDown, offer };
  }

  /** Loads /widget-<part>.js (handover, feedback) once, then calls back with its interface (KbChatWidget._<part>). */
  const waiting = { handover: [], feedback: [] };
  function withPart(part, cb) {
    const loaded = () => window.KbChatWidget[`_${part}`];
    if (loaded()) return cb(loaded());
    waiting[part].push(cb);
    if (waiting[part].length > 1) return;
    const tag = document.createElement('script');
    tag.src = `${apiBase}/widget-${part}.js`;
    tag.onload = () => {
      for (const next of waiting[part].splice(0)) if (loaded()) next(loaded());
    };
    tag.onerror = () => waiting[part].splice(0);
    document.head.appendChild(tag);
  }
  const withHandover = (cb) => withPart('handover', cb);

  /** The hand-over: the host page's channel (it cancels `kb-handover`), else the companion script's form. */
  function handover(ctx) {
    const detail = { question: ctx.question, sessionId: ctx.sessionId, answer: ctx.data, conversation: ctx.turns };
    const ev = new CustomEvent('kb-handover', { detail, cancelable: true });
    if (window.dispatchEvent(ev)) return withHandover((hv) => hv.start(ctx));
    // The host opened its own channel: no form comes below (an integrator's page read 请在下方留下… with none)
    const text = [...(ctx.list?.querySelectorAll('.kb-handoff .kb-text') || [])].pop();
    if (text) text.textContent = text.textContent.replace(/请在下方留下[^。]*。/, '').trim();
  }

  /** A case this tab opened before (widget-handover.js keeps it in sessionStorage): resume it after a reload. */
  function resumeCase(ctx) {
    try {
      if (sessionStorage.getItem(CASE_KEY) || sessionStorage.getItem(RATE_KEY)) withHandover((hv) => hv.resume(ctx));
    } catch (_) {
      /* no storage: nothing to resume */
    }
  }

  /** ask(question): one question at a time; resolves true when it was sent. */
  function createAsk(messages, send) {
    let pending = false;
    const turns = [];
    const ctx = { h, icon, post, apiBase, messages, turns, sessionId: sessionId(), caseSend: null, withoutPhone };
    const last = { question: '', data: {}, key: '', streak: 0 }; // the last question the chat answered
    // To a person: the case is about the tenant's last real question, with the conversation as it is.
    const toPerson = (fallback) => {
      last.streak = 0;
      handover(Object.assign(ctx, { question: last.question || fallback || '转人工', data: last.data, asked: true }));
    };
    ctx.toPerson = toPerson; // widget-handover.js offers it after a 不满意
    const answered = (q, data) => {
      const src = data.sources?.[0];
      const key = src && !data.handoff ? `${src.sop_id}|${src.section}|${data.answer}` : '';
      const repeated = key !== '' && key === last.key; // the same passage again: it did not help
      Object.assign(last, { data, key, streak: data.handoff ? 0 : last.streak + 1 });
      if (!repeated) last.question = q; // a follow-up that got the same passage: the case is about the first one
      if (data.urgent && data.emergency_phone) withHandover((hv) => hv.emergency(ctx, data.emergency_phone));
      return repeated || last.streak > 2; // or a third answer in a row: the tenant keeps asking
    };
    // Words that did not reach the service (a restart, no network) go back in the box to send again, unless the
    // tenant has typed something else meanwhile
    const unsent = (q) => {
      const input = send.form?.querySelector('.kb-input');
      if (input && !input.value.trim()) input.value = q;
    };
    const ask = async (question) => {
      const q = String(question || '')
        .trim()
        .slice(0, MAX_CHARS);
      if (!q || pending) return false;
      pending = true;
      send.disabled = true;
      messages.add('user', q);
      const typing = messages.typing();
      try {
        // A case is open: the question goes to the agent. When the case was closed meanwhile, it goes to the chat
        // (水还在漏！ typed just after the agent closed the case is answered, and flagged urgent, not dropped).
        const sent = ctx.caseSend && (await ctx.caseSend(q, typing));
        if (sent === 'unsent') unsent(q);
        if (sent) return true;
        if (ctx.toForm?.(q, typing)) return true; // contact details typed beside the open form (widget-handover.js)
        if (wantsPerson(q)) {
          typing.remove(); // asked for a person: no chat answer, straight to the form
          messages.add('bot', TO_PERSON, 'kb-handoff');
          turns.push({ role: 'tenant', text: q }, { role: 'bot', text: TO_PERSON });
          toPerson(q);
          return true;
        }
        const data = await post('/v1/chat', { question: q, session_id: sessionId() });
        typing.remove();
        const msg = messages.answer(data, (m) => messages.offer(m, toPerson));
        turns.push({ role: 'tenant', text: q }, { role: 'bot', text: String(data.answer || '').slice(0, 1000) });
        const stuck = answered(q, data);
        if (data.handoff) handover(Object.assign(ctx, { question: q, data, asked: false }));
        else if (stuck || data.complaint || refers(data.answer)) messages.offer(msg, toPerson); // a complaint too
      } catch (err) {
        typing.remove();
        messages.add('bot', errorText(err), 'kb-error');
        unsent(q);
      } finally {
        pending = false;
        send.disabled = false;
      }
      return true;
    };
    return { ask, busy: () => pending, ctx, toPerson };
  }

  /** An urgent answer without its first line 紧急电话：… when the banner above the messages shows that number (a
   * link to call): it was on screen twice. */
  function withoutPhone(answer, phone) {
    const line = phone ? `紧急电话：${phone}` : null;
    return line && answer.startsWith(line) ? answer.slice(line.length).trim() : answer;
  }

  // ---- interactions -------------------------------------------------------------------------------------
  function wire(parts, messages, asker) {
    const { launcher, panel, closeBtn, form, input, list, human, limit } = parts;
    const open = () => {
      // The greeting is styled like an answer but is not a .kb-bot message (those are replies to questions); a
      // resumed conversation brings its own.
      if (!list.querySelector('.kb-welcome')) messages.add('welcome', welcome);
      panel.hidden = false;
      launcher.setAttribute('aria-expanded', 'true');
      launcher.setAttribute('aria-label', `关闭${title}`);
      launcher.replaceChildren(icon('close'));
      messages.scrollDown();
      // A phone's keyboard would cover the welcome or the agent's reply before the tenant has read it
      // (the panel itself then: focus left on the launcher it covers, Escape did nothing: a re-check)
      setTimeout(() => (matchMedia('(pointer: coarse)').matches ? panel : input).focus(), 0);
      // the service hours, no unread count, Back closes a full-screen panel (widget-handover.js)
      withHandover((hv) => hv.opened(asker.ctx));
      withPart('feedback', () => {}); // ready before the first answer
    };
    const close = () => {
      asker.ctx.closed?.();
      panel.hidden = true;
      launcher.setAttribute('aria-expanded', 'false');
      launcher.setAttribute('aria-label', `打开${title}`);
      launcher.replaceChildren(icon('chat'));
    };
    const toggle = () => (panel.hidden ? open() : close());
    const fits = () => {
      const n = [...input.value.trim()].length; // characters as the server counts them, not UTF-16 units
      const over = n - MAX_CHARS;
      limit.hidden = n <= MAX_CHARS - 30;
      limit.classList.toggle('kb-over', over > 0);
      limit.textContent =
        over > 0 ? `超出 ${over} 字：请精简，或分几次发送（每次 ${MAX_CHARS} 字以内）` : `还可输入 ${MAX_CHARS - n} 字`;
      input.setAttribute('aria-invalid', String(over > 0));
      return over <= 0;
    };
    const submit = () => {
      const q = input.value;
      if (!q.trim() || asker.busy()) return;
      if (!fits()) return input.focus(); // kept as typed, the note says what to do
      input.value = '';
      fits();
      asker.ask(q);
    };
    input.addEventListener('input', fits);
    launcher.addEventListener('click', toggle);
    human.addEventListener('click', () => asker.toPerson());
    closeBtn.addEventListener('click', () => {
      close();
      launcher.focus();
    });
    panel.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && !ev.isComposing) {
        ev.stopPropagation();
        close();
        launcher.focus();
      }
    });
    input.addEventListener('keydown', (ev) => {
      // Enter sends; Enter that confirms an IME candidate does not.
      if (ev.key === 'Enter' && !ev.isComposing && ev.keyCode !== 229) {
        ev.preventDefault();
        submit();
      }
    });
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      submit();
    });
    return { open, close, toggle };
  }

  function mount() {
    const root = createHost();
    if (!root) return;
    const wrap = h('div', left ? 'kb-root kb-left' : 'kb-root');
    wrap.hidden = true; // until widget.css applies
    root.appendChild(wrap);
    addStyles(root, wrap);
    pickTextColor(wrap);
    const parts = buildPanel(wrap);
    const messages = createMessages(parts.list);
    const asker = createAsk(messages, parts.send);
    const { open, close, toggle } = wire(parts, messages, asker);
    Object.assign(asker.ctx, { list: parts.list, panel: parts.panel, launcher: parts.launcher, title, open, close });
    resumeCase(asker.ctx);
    Object.assign(api, { open, close, toggle });
    api.ask = (q) => {
      if (parts.panel.hidden) open();
      return asker.ask(q);
    };
  }

  const api = {
    version: VERSION,
    apiBase,
    open() {},
    close() {},
    toggle() {},
    ask: () => Promise.resolve(false),
  };
  window.KbChatWidget = api;

  if (document.body) mount();
  else document.addEventListener('DOMContentLoaded', mount, { once: true });
})();
