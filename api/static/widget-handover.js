/*
 * 租客在线客服挂件 · 转人工 / the chat widget's hand-over, loaded by widget.js on demand (one classic script):
 * KbChatWidget._handover = {start, resume, emergency, received, opened} — the contact form and the case (POST
 * /v1/cases), following it (its messages polled with X-Case-Token, kept per tab in sessionStorage for a reload), the
 * emergency banner (.kb-emergency), and what each opening of the panel does. docs/handover.md describes it all.
 * Hooks: .kb-case-form, .kb-case-submit, .kb-agent, .kb-author, .kb-emergency. Styles: /widget.css (widget.js).
 */
(() => {
  if (!window.KbChatWidget || window.KbChatWidget._handover) return;
  const POLL_MS = 3000;
  const CASE_KEY = 'kb-chat-widget.case';
  const RATE_KEY = 'kb-chat-widget.rate'; // a closed case not rated yet: asked again after a reload
  const MAX_SHOWN = 80; // messages kept for a reload
  const MAX_TEXT = 2000;
  // The case was deleted, is not this tenant's, or what was kept is malformed (the widget's own messages are valid).
  const GONE = new Set([401, 403, 404, 422]);
  const ENDED = '本次人工服务已结束，您可以继续向智能客服提问。';
  const FULL_SCREEN = '(max-width: 480px), (max-height: 500px)'; // widget.css's full-screen panel
  const LIVE = { sub: '人工客服 · 回复会显示在这里', ph: '给客服留言…', label: '给客服留言' };
  const caseError = (status) => Object.assign(new Error(`HTTP ${status}`), { status });
  // A form's id, and its own secret key: a repeat with the key gets the case back from another network (Wi-Fi to 4G)
  const hex = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, '0'));
  const newRequest = () => ({ id: `f-${Date.now().toString(36)}-${hex(4).join('')}`, key: hex(16).join('') });
  const request = async (ctx, method, path, token, body) => {
    const headers = { Accept: 'application/json', 'X-Case-Token': token };
    if (body) headers['Content-Type'] = 'application/json';
    const init = { method, mode: 'cors', credentials: 'omit', cache: 'no-store', headers };
    const resp = await fetch(ctx.apiBase + path, body ? { ...init, body: JSON.stringify(body) } : init);
    if (!resp.ok) throw caseError(resp.status);
    return resp.json();
  };

  // ---- the open case, kept per tab ----------------------------------------------------------------------
  const kept = {
    read() {
      try {
        const v = JSON.parse(sessionStorage.getItem(CASE_KEY) || 'null');
        if (v && typeof v.id === 'string' && typeof v.token === 'string') return v;
      } catch (_) {
        /* unreadable: forgotten below */
      }
      kept.clear();
      return null;
    },
    // private mode or full: the case lives as long as the page; nothing kept: nothing to clear
    write: (v) => stored(() => sessionStorage.setItem(CASE_KEY, JSON.stringify(v))),
    clear: () => stored(() => sessionStorage.removeItem(CASE_KEY)),
  };
  function stored(fn) {
    try {
      fn();
    } catch (_) {
      /* see kept */
    }
  }

  /** The messages on screen as plain data (restored with textContent, never as HTML). */
  function snapshot(list) {
    const one = (n, sel) => n.querySelector(`:scope > ${sel}`)?.textContent || undefined;
    return Array.from(list.querySelectorAll(':scope > .kb-msg'))
      .slice(-MAX_SHOWN)
      .map((n) => ({
        c: n.className,
        t: (one(n, '.kb-text') || '').slice(0, MAX_TEXT),
        w: n.dataset.at || undefined, // when a person wrote it
        s: one(n, '.kb-source'),
        i: n.querySelector(':scope > svg') ? 1 : undefined, // the hand-over notice's icon
      }));
  }

  /** 人工客服 · 14:05 above a person's reply, also after a reload (a phone trial). `at`: HH:MM, kept with it. */
  function agentLabel(ctx, msg, at) {
    const label = ctx.h('div', 'kb-author');
    label.append(ctx.icon('agent'), at ? `人工客服 · ${at}` : '人工客服');
    if (at) msg.dataset.at = at;
    msg.prepend(label);
    return msg;
  }

  const clock = (ts) => new Date(ts * 1000).toLocaleTimeString('zh-CN', { hour: '2-digit', minute: '2-digit' });

  /** Puts the kept messages back at the top of the list (before anything shown since the page loaded). */
  function restore(ctx, shown) {
    const nodes = (Array.isArray(shown) ? shown : []).map((m) => {
      const classes = String(m.c || '')
        .split(/\s+/)
        .filter((c) => /^kb-[a-z-]+$/.test(c) && c !== 'kb-msg'); // added below: a reload grew kb-msg kb-msg …
      const msg = ctx.h('div', ['kb-msg', ...classes].join(' '));
      const who = classes.includes('kb-user') ? '我说：' : classes.includes('kb-agent') ? null : '智能客服：';
      if (who) msg.appendChild(ctx.h('span', 'kb-sr', who)); // who said it, as when it was first shown
      if (m.i) msg.appendChild(ctx.icon('agent'));
      msg.appendChild(ctx.h('div', 'kb-text', String(m.t || '')));
      if (m.s) msg.appendChild(ctx.h('div', 'kb-source', String(m.s)));
      return classes.includes('kb-agent') ? agentLabel(ctx, msg, /^\d{1,2}:\d{2}$/.test(m.w || '') ? m.w : null) : msg;
    });
    ctx.list.prepend(...nodes);
    for (const n of [...ctx.list.querySelectorAll('.kb-welcome')].slice(1)) n.remove();
    ctx.messages.scrollDown();
  }

  /** Keeps the case and the conversation on screen in sessionStorage while it is open. */
  function keep(ctx, state) {
    let queued = false;
    const save = () => {
      queued = false;
      const shown = snapshot(ctx.list);
      if (state.live)
        kept.write({ ...state, live: undefined, open: !ctx.panel.hidden, shown, unseen: ctx.unseen || 0 });
    };
    const later = () => {
      if (!queued) setTimeout(save, 0);
      queued = true;
    };
    const watch = new MutationObserver(later);
    watch.observe(ctx.list, { childList: true });
    watch.observe(ctx.panel, { attributes: true, attributeFilter: ['hidden'] });
    save();
    return { later, stop: () => watch.disconnect() };
  }

  // ---- while a case is open: the header, the input and the emergency banner ------------------------------
  /** A person is handling the conversation (on), or the chat answers again (off). */
  function setLive(ctx, on) {
    const sub = ctx.panel.querySelector('.kb-subtitle');
    const input = ctx.panel.querySelector('.kb-input');
    if (!sub || !input) return;
    ctx.normal = ctx.normal || { sub: sub.textContent, ph: input.placeholder, label: input.getAttribute('aria-label') };
    const v = on ? LIVE : ctx.normal;
    ctx.panel.classList.toggle('kb-live', on);
    sub.textContent = v.sub;
    input.placeholder = v.ph;
    input.setAttribute('aria-label', v.label);
  }

  /** The emergency number(s) above the messages, each phone number a tel: link (24小时值班 is text: see withCalls). */
  function emergency(ctx, phone) {
    const text = String(phone || '').slice(0, 80);
    if (!text) return;
    ctx.phone = text;
    let bar = ctx.panel.querySelector('.kb-emergency');
    if (!bar) {
      bar = ctx.h('div', 'kb-emergency');
      bar.setAttribute('role', 'alert');
      ctx.list.before(bar);
    }
    bar.replaceChildren('紧急电话：', ...withCalls(ctx, text));
  }

  /** `text` with each phone number in it a tel: link (a run of fewer than three digits, or one followed by a unit, as
   * 24小时, is text): the banner, and a receipt that names the number (a phone trial could not tap it there). */
  const SERVICE = { 110: ' 报警', 119: ' 火警', 120: ' 急救', 122: ' 交通事故' };
  function withCalls(ctx, text) {
    const nodes = [];
    let at = 0;
    for (const m of text.matchAll(/\+?\d[\d-]*\d/g)) {
      const after = text.slice(m.index + m[0].length);
      if (m[0].replace(/\D/g, '').length < 3 || /^\s*(?:小时|个小时|分钟|天|点|号|楼|层|位|h\b)/i.test(after)) continue;
      // the case number (编号 AD4728, 05E054) is no phone (a re-check got tel:4728)
      if (/编号\s*[0-9A-F]*$/i.test(text.slice(0, m.index)) || /^[a-f]/i.test(after)) continue;
      const link = ctx.h('a', 'kb-tel', m[0]);
      link.href = `tel:${m[0].replace(/-/g, '')}`;
      link.setAttribute('aria-label', `拨打 ${m[0]}${SERVICE[m[0]] || ''}`); // what the number is for
      nodes.push(text.slice(at, m.index), link);
      at = m.index + m[0].length;
    }
    nodes.push(text.slice(at));
    return nodes;
  }

  function clearEmergency(ctx) {
    ctx.phone = null;
    ctx.panel.querySelector('.kb-emergency')?.remove();
  }

  // ---- following a case ---------------------------------------------------------------------------------
  /** Polls the case and sends what the tenant types to it until it is closed or gone; `first`: a resumed case's
   * kept messages, shown once the server has answered for it. */
  function follow(ctx, state, first) {
    let keeper = null;
    const begin = () => {
      if (keeper) return;
      first?.();
      setLive(ctx, true);
      keeper = keep(ctx, state);
    };
    const end = () => {
      state.live = false;
      ctx.caseSend = null;
      keeper?.stop();
      kept.clear();
      setLive(ctx, false);
      clearEmergency(ctx);
    };
    const path = `/v1/cases/${encodeURIComponent(state.id)}/messages`;
    const poll = async () => {
      if (!state.live) return;
      try {
        const data = await request(ctx, 'GET', `${path}?after=${state.after}`, state.token);
        begin();
        for (const m of data.messages) {
          state.after = Math.max(state.after, m.seq);
          if (m.author === 'agent') {
            agentLabel(ctx, ctx.messages.add('bot', m.text, 'kb-agent'), clock(m.created_at));
            ctx.messages.scrollDown(); // with its label: the bubble's last line in view (a phone trial)
            if (ctx.panel.hidden) unread(ctx, (ctx.unseen || 0) + 1);
          } else if (m.author === 'system') ctx.messages.add('bot', m.text, 'kb-handoff');
        }
        requeue(state.receipt, data);
        keeper.later();
        if (data.status === 'closed') {
          end();
          return rate(ctx, state);
        }
      } catch (err) {
        if (GONE.has(err.status)) return end(); // quietly: nothing was shown for it yet, or it simply stops
        begin(); // a network error: show what was kept and try again
      }
      setTimeout(poll, POLL_MS);
    };
    // The tenant's own messages are shown as typed; the poll skips them: `after` only follows the poll.
    ctx.caseSend = async (text, typing) => {
      try {
        const sent = await request(ctx, 'POST', path, state.token, { text });
        typing.remove();
        if (sent.urgent) {
          // An emergency reported while waiting: the number in the banner and what to do now, at once.
          state.phone = sent.emergency_phone || state.phone;
          if (state.phone) emergency(ctx, state.phone);
          const said =
            sent.answer && ctx.messages.add('bot', ctx.withoutPhone(sent.answer, state.phone), 'kb-handoff kb-urgent');
          said?.scrollIntoView({ block: 'start' }); // its first lines say what to do now (a phone trial saw its end)
        }
      } catch (err) {
        if (GONE.has(err.status) || err.status === 409) {
          end();
          ctx.messages.add('bot', ENDED, 'kb-handoff');
          if (err.status === 409) rate(ctx, state); // closed as the tenant typed: still asked (a trial never was)
          typing.parentNode?.appendChild(typing); // the dots stay below, for the chat's answer
          return false;
        }
        typing.remove();
        ctx.messages.add('bot', err.status === 429 ? '发送太频繁，请稍后再试' : '消息发送失败，请稍后再试', 'kb-error');
        return 'unsent'; // widget.js puts the words back in the box (a restart lost a trial's follow-up)
      }
      return true;
    };
    if (!first) begin();
    poll();
  }

  /** After a person closed the case: 满意 / 不满意, once (the service report's satisfaction, a training lead's ask). */
  function rate(ctx, state) {
    // a reload before rating asks again (a trial's lost it), after the conversation (a trial's reload lost the reply)
    const pending = { id: state.id, token: state.token, shown: state.shown ?? snapshot(ctx.list) };
    stored(() => sessionStorage.setItem(RATE_KEY, JSON.stringify(pending)));
    const msg = ctx.messages.add('bot', '本次人工服务您满意吗？', 'kb-rating');
    const text = msg.querySelector('.kb-text');
    const row = ctx.h('div', 'kb-rate-row');
    for (const [label, value] of [
      ['满意', 1],
      ['不满意', -1],
    ]) {
      const b = ctx.h('button', `kb-rate ${value > 0 ? 'kb-rate-up' : 'kb-rate-down'}`, label);
      b.type = 'button';
      b.addEventListener('click', async () => {
        try {
          await request(ctx, 'POST', `/v1/cases/${encodeURIComponent(state.id)}/rating`, state.token, {
            rating: value,
          });
          text.textContent = value > 0 ? '感谢您的评价！' : '感谢您的评价，我们会改进。';
          // Not satisfied: a way back to a person at once (a trial's 不满意 led nowhere)
          if (value < 0 && ctx.toPerson) ctx.messages.offer(msg, ctx.toPerson);
          stored(() => sessionStorage.setItem(RATE_KEY, JSON.stringify({ ...pending, rated: true })));
          for (const x of row.querySelectorAll('.kb-rate')) x.setAttribute('aria-pressed', String(x === b));
        } catch (_) {
          text.textContent = '评价没有发送成功，请稍后再试。';
        }
      });
      row.appendChild(b);
    }
    msg.appendChild(row);
    ctx.messages.scrollDown(); // the buttons in view, not cut by the input (a phone trial)
  }

  /** The closed case kept by rate() (`rated`: the tenant has rated it), or null. */
  function unrated() {
    try {
      const v = JSON.parse(sessionStorage.getItem(RATE_KEY) || 'null');
      return v && typeof v.id === 'string' && typeof v.token === 'string' ? v : null;
    } catch (_) {
      return null;
    }
  }

  function resume(ctx) {
    const pending = unrated(); // a closed case: its conversation, and 满意 / 不满意 once
    if (pending && !kept.read() && !ctx.list.querySelector('.kb-rating')) {
      restore(ctx, pending.shown);
      if (!pending.rated) rate(ctx, pending);
    }
    const saved = kept.read();
    if (!saved || ctx.caseSend) return;
    const after = Number.isInteger(saved.after) && saved.after >= 0 ? saved.after : 0;
    const phone = typeof saved.phone === 'string' ? saved.phone : undefined;
    const state = { id: saved.id, token: saved.token, after, live: true, phone };
    follow(ctx, state, () => {
      takeEarlierForm(ctx.list); // a form shown while the script loaded: the case is already open
      restore(ctx, saved.shown);
      if (phone) emergency(ctx, phone);
      if (saved.open) ctx.open();
      else if (Number.isInteger(saved.unseen) && saved.unseen > 0) unread(ctx, Math.min(saved.unseen, 99)); // kept
    });
  }

  // ---- the contact form ---------------------------------------------------------------------------------
  const field = (ctx, typed, label, name, attrs) => {
    // The caption and its required mark on one line, the input below (the mark sat on a line of its own)
    const caption = ctx.h('span', 'kb-label', label);
    if (attrs?.required) caption.appendChild(ctx.h('span', 'kb-req', ' *'));
    const wrap = ctx.h('label');
    wrap.dataset.label = label;
    wrap.appendChild(caption);
    // The question as a box that shows it whole (a phone trial read 20 characters of a long one in a line)
    const input = ctx.h(name === 'question' ? 'textarea' : 'input');
    if (name === 'question') input.rows = 3;
    input.name = name;
    Object.assign(input, attrs || {});
    input.value = typed[name] || '';
    wrap.appendChild(input);
    return { wrap, input };
  };

  /** Removes an earlier form (and its intro), returning what was typed in it by field name. */
  function takeEarlierForm(list) {
    const typed = {};
    for (const box of list.querySelectorAll('.kb-case-form')) {
      for (const input of box.querySelectorAll('input, textarea')) {
        // the question filled in for the tenant follows their newest one (a trial's second case kept the first)
        if (input.value !== input.dataset.filled) typed[input.name] = input.value;
      }
      const intro = box.previousElementSibling;
      if (intro?.classList.contains('kb-case-intro')) intro.remove();
      box.remove();
    }
    return typed;
  }

  function buildForm(ctx) {
    const typed = takeEarlierForm(ctx.list);
    const extra = Array.isArray(ctx.data?.handover_fields) ? ctx.data.handover_fields.slice(0, 6) : [];
    const f = (label, name, attrs) => field(ctx, typed, label, name, attrs);
    // An emergency asks only where and how to reach the tenant: every second counts.
    const urgent = Boolean(ctx.data?.urgent);
    // What the case is about: the tenant's last question, correctable, required (转人工 tells nothing), not urgent.
    const about = urgent ? null : f('需要帮助的问题', 'question', { maxLength: 300, required: true });
    if (about && !about.input.value) about.input.value = onlyAsksPerson(ctx.question) ? '' : ctx.question || '';
    if (about) about.input.dataset.filled = about.input.value;
    const fields = [
      ...(about ? [about] : []),
      f(urgent ? '姓名（可不填）' : '姓名', 'name', { required: !urgent, maxLength: 40, autocomplete: 'name' }),
      f('房号', 'room', { required: true, maxLength: 40 }),
      f('手机号', 'phone', PHONE_FIELD),
      f('方便联系的时间', 'best_time', { maxLength: 40 }),
      ...extra.map((label) => f(label, `extra:${label}`, { maxLength: 200 })),
    ];
    const box = ctx.h('form', 'kb-case-form');
    box.noValidate = true; // checked below, with messages in Chinese beside the form (not the browser's bubble)
    box.setAttribute('aria-label', '转人工联系表'); // a named form is a landmark a screen reader can jump to (a review)
    const note = Object.assign(ctx.h('div', 'kb-case-note'), { id: 'kb-case-note' });
    const submit = ctx.h('button', 'kb-case-submit', '提交，转人工客服');
    submit.type = 'submit';
    for (const f of fields) box.appendChild(f.wrap);
    box.append(note, submit);
    // While the tenant fills it in on a phone the chat's input steps aside (a phone trial had 77 px of form left)
    box.addEventListener('focusin', () => ctx.panel.classList.add('kb-filling'));
    box.addEventListener('focusout', () => ctx.panel.classList.remove('kb-filling'));
    return { box, fields, note, submit };
  }

  const contactOf = (fields) => {
    const contact = { extra: {} };
    for (const f of fields) {
      const v = f.input.value.trim();
      if (f.input.name === 'question') continue; // the case's question, not a contact detail
      if (f.input.name.startsWith('extra:')) {
        if (v) contact.extra[f.input.name.slice(6)] = v;
      } else contact[f.input.name] = v;
    }
    return contact;
  };

  /** 转人工, 不行，我要找人工, 请帮我转接人工客服: a request for a person and nothing about the need. */
  const onlyAsksPerson = (q) =>
    !String(q || '')
      .replace(/人工|客服|真人|联系|不行|算了|直接|一下|你好|您好|[请帮我要想找转接能吗就的给个\s，,。.！!？?~～]/g, '')
      .trim();

  const PHONE_HINT = '请填写正确的电话：11 位手机号或固定电话';
  const PHONE_PATTERN = '[0-9+\\-\\(\\) ]{5,30}';
  const PHONE_FIELD = { required: true, maxLength: 30, type: 'tel', autocomplete: 'tel', pattern: PHONE_PATTERN };
  /** The form's message names the field it is about, for a screen reader too (an accessibility review). */
  const refuse = (note, input, text) => {
    note.textContent = text;
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', note.id);
    input.focus();
  };
  /** A number an agent can call back: an 11-digit mobile (1…), or a landline of 7–12 digits. */
  const callable = (value) => {
    const digits = value.replace(/\D/g, '').replace(/^(0086|86)(?=1\d{10}$)/, '');
    return digits.startsWith('1') ? digits.length === 11 : digits.length >= 7 && digits.length <= 12;
  };
  // A phone, room, name or WeChat id typed into the chat's input while the form is open means the form (a trial)
  const CONTACT =
    /1[3-9]\d{9}|[一幺][三四五六七八九][零〇一幺二两三四五六七八九]{9}|^\W*[A-Za-z]?\d{1,2}\W?\d{2,4}\W*$|\d{3,4}\s*(?:室|房)|(?:房间|房号|电话|手机)[^，,。]{0,6}\d{3,}|我叫|姓名|微信号?\s*[:：是]?\s*[A-Za-z]/;
  const firstEmpty = (box) =>
    [...box.querySelectorAll('input, textarea')].find((i) => i.required && !i.value.trim()) ||
    box.querySelector('input');

  function start(ctx) {
    if (ctx.caseSend) return; // a case is open: what the tenant types goes to it, no second form
    ctx.toForm = (q, typing) => {
      const box = ctx.list.querySelector('.kb-case-form');
      if (!box || !CONTACT.test(q)) return false;
      typing.remove();
      const msg = ctx.messages.add(
        'bot',
        '请把联系方式填在上面的表单里，再点“提交”，客服会按表单联系您。',
        'kb-handoff',
      );
      firstEmpty(box)?.scrollIntoView({ block: 'center' });
      return Boolean(msg);
    };
    const { box, fields, note, submit } = buildForm(ctx);
    // Outside the service hours nobody answers soon (a re-check read 尽快 at night): when, from the hours line
    const later = ctx.inHours === false ? '客服上班后会联系您' : '客服会尽快联系您';
    const ask = ctx.data?.urgent ? '请留下房号和手机号，方便客服联系您：' : `请留下联系方式，${later}：`;
    const intro = ctx.messages.add('bot', ask, 'kb-handoff kb-case-intro');
    intro.after(box);
    // In an emergency the safety instruction stays in view (its first lines say what to do now); the form is below.
    const urgent = ctx.data?.urgent ? [...ctx.list.querySelectorAll('.kb-urgent')].pop() : null;
    if (urgent) urgent.scrollIntoView({ block: 'start' });
    else ctx.messages.scrollDown();
    // asked for a person: the keyboard goes to the form (a trial typed her name into the chat); a phone's stays shut
    if (ctx.asked && !matchMedia('(pointer: coarse)').matches) firstEmpty(box)?.focus({ preventScroll: true });
    let requestId = newRequest(); // sent again: one case
    box.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const empty = fields.find((f) => f.input.required && !f.input.value.trim());
      for (const f of fields) for (const a of ['aria-invalid', 'aria-describedby']) f.input.removeAttribute(a);
      if (empty) return refuse(note, empty.input, `请填写${empty.wrap.dataset.label}`);
      const phone = fields.find((f) => f.input.name === 'phone')?.input;
      // the server refuses it too (api/routes/cases.py Contact._callable)
      if (phone && !callable(phone.value)) return refuse(note, phone, PHONE_HINT);
      submit.disabled = true;
      note.textContent = '';
      try {
        const body = {
          session_id: ctx.sessionId,
          question: fields.find((f) => f.input.name === 'question')?.input.value.trim() || ctx.question,
          contact: contactOf(fields),
          conversation: ctx.turns.slice(-20),
          request_id: requestId.id, // a try after no answer gets the case the first one opened (an integrator's trial)
          request_key: requestId.key, // ... from another network too (Wi-Fi to 4G)
        };
        const made = await ctx.post('/v1/cases', body);
        box.remove();
        intro.remove(); // 请留下联系方式… pointed at nothing once the form was sent
        ctx.panel.classList.remove('kb-filling');
        const told = made.emergency_phone || ctx.phone;
        const receipt = { el: ctx.messages.add('bot', '', 'kb-handoff'), made, phone: told, ctx };
        receipt.el.querySelector('.kb-text').replaceChildren(...withCalls(ctx, received(made, told)));
        // An urgent case: the banner stays (outside service hours a normal case carries the number for the text only)
        const phone = (made.priority === 'urgent' && made.emergency_phone) || ctx.phone || undefined;
        if (phone) emergency(ctx, phone);
        follow(ctx, { id: made.case_id, token: made.token, after: 0, live: true, phone, receipt });
        ctx.panel.querySelector('.kb-input')?.focus({ preventScroll: true }); // 给客服留言, not the host page
      } catch (err) {
        submit.disabled = false;
        if (err?.status === 409) requestId = newRequest(); // its case closed, or opened elsewhere: a new request
        note.textContent = submitError(err, ctx.phone);
      }
    });
  }

  /** The receipt follows the queue while the tenant waits (前面还有 2 位 stayed at 2), no count once a person has it. */
  function requeue(receipt, data) {
    if (!receipt) return;
    const ahead = data.status === 'open' && Number.isInteger(data.ahead) ? data.ahead : null;
    if (ahead === (Number.isInteger(receipt.made.ahead) ? receipt.made.ahead : null)) return;
    receipt.made = { ...receipt.made, ahead };
    const text = receipt.el.querySelector('.kb-text');
    if (text) text.replaceChildren(...withCalls(receipt.ctx, received(receipt.made, receipt.phone)));
  }

  /** The case's number as a tenant reads it out: its first six characters (989a99e9e7c17c0e was hard to say). */
  const caseNumber = (made) =>
    String(made.case_id || '')
      .slice(0, 6)
      .toUpperCase();

  /** The receipt: the case's number, how soon a person answers (its priority's target), how many wait before. */
  function received(made, phone) {
    const urgent = made.priority === 'urgent';
    if (made.in_service_hours === false) {
      // Nobody answers at 3 a.m.: when a person will, where to call meanwhile (not beside 已优先为您转接: a trial)
      const hours = made.service_hours ? `（人工客服 ${made.service_hours}）` : '';
      const call = phone ? `${urgent ? '请立即' : '紧急情况请直接'}拨打 ${phone}；` : '';
      const what = urgent ? '紧急请求' : '请求';
      return `客服已收到您的${what}（编号 ${caseNumber(made)}）。现在是非工作时间${hours}，${call}客服上班后会第一时间回复您。回复会显示在这里。`;
    }
    const got = `${urgent ? '已优先为您转接，' : ''}客服已收到您的请求（编号 ${caseNumber(made)}）`;
    const minutes = Number.isInteger(made.reply_within_minutes) ? `，通常 ${made.reply_within_minutes} 分钟内回复` : '';
    const ahead = Number.isInteger(made.ahead) ? made.ahead : null;
    const queue = ahead === null ? '' : ahead > 0 ? `（前面还有 ${ahead} 位租客）` : '（您是下一位）';
    return `${got}${minutes}${queue}。回复会显示在这里；您离开页面后，客服也会按您留下的电话联系您。`;
  }

  /** Why the form was not sent: the tenant's input (422/413), too many tries, or the service (kept what was typed). */
  function submitError(err, phone) {
    if (err?.kind === 'rate') return '提交太频繁，请稍后再试';
    if (err?.status === 422 || err?.status === 413) return '提交失败，请检查填写内容后重试';
    if (err?.status === 409) return '这次提交没有成功，请再点一次提交';
    const call = phone ? `；紧急情况请直接拨打 ${phone}` : '';
    return `暂时无法提交，您填写的内容已保留，请稍后再点提交${call}`;
  }

  // ---- each opening of the panel ---------------------------------------------------------------------------
  /** widget.js calls it whenever the panel opens: no reply left unseen, the service hours under the title, and on a
   * phone's full-screen panel the Back button closes it (a phone trial's Back left the host page). */
  function opened(ctx) {
    unread(ctx, 0);
    hours(ctx);
    const full = matchMedia(FULL_SCREEN).matches; // the panel is all there is: a modal dialog, Tab goes round in it
    ctx.panel.setAttribute('aria-modal', String(full)); // (an accessibility review's Tab reached the host page)
    if (full && !ctx.trapped) ctx.panel.addEventListener('keydown', (ev) => trap(ctx, ev));
    ctx.trapped = ctx.trapped || full;
    if (ctx.pushed || !matchMedia(FULL_SCREEN).matches) return;
    history.pushState({ kbChat: true }, '');
    ctx.pushed = true;
    ctx.closed = () => {
      if (!ctx.pushed) return;
      ctx.pushed = false;
      if (history.state?.kbChat) history.back();
    };
    if (!ctx.popped) {
      ctx.popped = () => {
        if (ctx.pushed && !ctx.panel.hidden) {
          ctx.pushed = false;
          ctx.close();
        }
      };
      window.addEventListener('popstate', ctx.popped);
    }
  }

  function trap(ctx, ev) {
    if (ev.key !== 'Tab' || !matchMedia(FULL_SCREEN).matches) return;
    const items = [...ctx.panel.querySelectorAll('button, input, textarea, a[href]')].filter(
      (n) => n.offsetParent && !n.disabled,
    );
    const at = items.indexOf(ctx.panel.getRootNode().activeElement);
    const wrap = ev.shiftKey ? at <= 0 && items.length - 1 : at === items.length - 1 && 0;
    if (wrap === false || !items.length) return;
    ev.preventDefault();
    items[wrap].focus();
  }

  /** The agent's replies the tenant has not seen (the panel closed): a count on the launcher and a `kb-unread`
   * event for a host that opens the chat from its own button (a phone trial saw nothing change). */
  function unread(ctx, n) {
    if (n === (ctx.unseen || 0) && n === 0) return;
    ctx.unseen = n;
    if (n) ctx.launcher.dataset.unread = String(n);
    else delete ctx.launcher.dataset.unread;
    const label = n ? `打开${ctx.title}（${n} 条新回复）` : `打开${ctx.title}`;
    ctx.launcher.setAttribute('aria-label', ctx.panel.hidden ? label : `关闭${ctx.title}`); // read as it is now
    window.dispatchEvent(new CustomEvent('kb-unread', { detail: { count: n } }));
  }

  /** 人工客服 09:00–21:00 under the title before any question (a phone trial); asked at most once a minute. */
  function hours(ctx) {
    if (Date.now() - (ctx.hoursAsked || 0) < 60000) return;
    ctx.hoursAsked = Date.now();
    fetch(`${ctx.apiBase}/v1/service-hours`, { mode: 'cors', credentials: 'omit', cache: 'no-store' })
      .then((r) => (r.ok ? r.json() : null))
      .then((v) => {
        if (!v?.service_hours) return;
        const text = `人工客服 ${v.service_hours}${v.in_service_hours ? ' 在线' : '（现在可留言，上班后回复）'}`;
        ctx.inHours = v.in_service_hours; // the form's words (start)
        if (ctx.normal) ctx.normal.sub = text; // shown again when a case ends
        const sub = ctx.panel.querySelector('.kb-subtitle');
        if (sub && !ctx.panel.classList.contains('kb-live')) sub.textContent = text;
      })
      .catch(() => {});
  }

  window.KbChatWidget._handover = { start, resume, emergency, received, opened };
})();
