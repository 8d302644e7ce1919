/*
 * 租客在线客服挂件 · 转人工 / the chat widget's hand-over, loaded by widget.js on demand (one classic script).
 *
 * KbChatWidget._handover.start(ctx) (no global of its own): shows the short contact form (name, room, phone, best time and the matched SOP's
 * own questions, `answer.handover_fields`) in the widget's message list, opens a case (POST /v1/cases), then polls
 * the case's messages with its token (X-Case-Token) and shows the agent's replies (.kb-msg.kb-bot.kb-agent). While
 * the case is open, what the tenant types goes to the agent. Hooks: .kb-case-form, .kb-case-submit, .kb-agent.
 */
(() => {
  if (!window.KbChatWidget || window.KbChatWidget._handover) return;
  const POLL_MS = 3000;
  const TOKEN_KEY = 'kb-chat-widget.case';
  const CSS = `
.kb-case-form { align-self: stretch; display: flex; flex-direction: column; gap: 6px; padding: 10px;
  background: #fff; border: 1px solid #e3e7ec; border-radius: 10px; font-size: 13px; }
.kb-case-form label { display: flex; flex-direction: column; gap: 2px; color: #5b6570; }
.kb-case-form input { font: inherit; padding: 5px 8px; border: 1px solid #cfd6de; border-radius: 6px; color: #1f2328; }
.kb-case-submit { font: inherit; padding: 6px; border: 0; border-radius: 6px; background: var(--kb-color);
  color: var(--kb-on-color); cursor: pointer; }
.kb-case-note { color: #8a1c13; min-height: 1em; }
.kb-agent { border-color: var(--kb-color); }
.kb-agent::before { content: "人工客服"; display: block; font-size: 12px; color: #5b6570; }
`;

  const request = async (ctx, method, path, token, body) => {
    const headers = { Accept: 'application/json', 'X-Case-Token': token };
    if (body) headers['Content-Type'] = 'application/json';
    const resp = await fetch(ctx.apiBase + path, {
      method,
      mode: 'cors',
      credentials: 'omit',
      cache: 'no-store',
      headers,
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!resp.ok) throw new Error(String(resp.status));
    return resp.json();
  };

  const field = (ctx, label, name, attrs) => {
    const wrap = ctx.h('label', null, label);
    const input = ctx.h('input');
    input.name = name;
    Object.assign(input, attrs || {});
    wrap.appendChild(input);
    return { wrap, input };
  };

  function addStyles(node) {
    const root = node.getRootNode();
    if (root.querySelector?.('style[data-kb-case]')) return;
    const style = document.createElement('style');
    style.setAttribute('data-kb-case', '');
    style.textContent = CSS;
    (root.host ? root : document.head).appendChild(style);
  }

  function follow(ctx, caseId, token) {
    let after = 0;
    let timer = null;
    const list = ctx.messages;
    const poll = async () => {
      try {
        const data = await request(
          ctx,
          'GET',
          `/v1/cases/${encodeURIComponent(caseId)}/messages?after=${after}`,
          token,
        );
        for (const m of data.messages) {
          after = Math.max(after, m.seq);
          if (m.author === 'agent') list.add('bot', m.text, 'kb-agent');
          else if (m.author === 'system') list.add('bot', m.text, 'kb-handoff');
        }
        if (data.status === 'closed') {
          ctx.caseSend = null;
          return;
        }
      } catch (_) {
        /* the next poll tries again */
      }
      timer = setTimeout(poll, POLL_MS);
    };
    ctx.caseSend = async (text, typing) => {
      typing.remove();
      try {
        const m = await request(ctx, 'POST', `/v1/cases/${encodeURIComponent(caseId)}/messages`, token, { text });
        after = Math.max(after, m.seq);
      } catch (_) {
        list.add('bot', '消息发送失败，请稍后再试', 'kb-error');
      }
      return true;
    };
    if (timer === null) poll();
  }

  function start(ctx) {
    const list = ctx.messages;
    const box = ctx.h('form', 'kb-case-form');
    const intro = list.add('bot', '请留下联系方式，客服会尽快联系您：', 'kb-handoff');
    addStyles(intro);
    const extra = Array.isArray(ctx.data?.handover_fields) ? ctx.data.handover_fields.slice(0, 6) : [];
    const fields = [
      field(ctx, '姓名', 'name', { required: true, maxLength: 40 }),
      field(ctx, '房号', 'room', { required: true, maxLength: 40 }),
      field(ctx, '手机号', 'phone', { required: true, maxLength: 30, type: 'tel', pattern: '[0-9+\\-\\(\\) ]{5,30}' }),
      field(ctx, '方便联系的时间', 'best_time', { maxLength: 40 }),
      ...extra.map((label) => field(ctx, label, `extra:${label}`, { maxLength: 200 })),
    ];
    const note = ctx.h('div', 'kb-case-note');
    const submit = ctx.h('button', 'kb-case-submit', '提交，转人工客服');
    submit.type = 'submit';
    for (const f of fields) box.appendChild(f.wrap);
    box.append(note, submit);
    intro.after(box);
    list.scrollDown();
    box.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const contact = { extra: {} };
      for (const f of fields) {
        const v = f.input.value.trim();
        if (f.input.name.startsWith('extra:')) {
          if (v) contact.extra[f.input.name.slice(6)] = v;
        } else contact[f.input.name] = v;
      }
      submit.disabled = true;
      note.textContent = '';
      try {
        const body = { session_id: ctx.sessionId, question: ctx.question, contact, conversation: ctx.turns.slice(-20) };
        const made = await ctx.post('/v1/cases', body);
        try {
          sessionStorage.setItem(TOKEN_KEY, JSON.stringify({ id: made.case_id, token: made.token }));
        } catch (_) {
          /* private mode: the case lives as long as the page */
        }
        box.remove();
        const wait = made.priority === 'urgent' ? '已优先为您转接，' : '';
        list.add('bot', `${wait}客服已收到您的请求（编号 ${made.case_id}），回复会显示在这里。`, 'kb-handoff');
        follow(ctx, made.case_id, made.token);
      } catch (err) {
        submit.disabled = false;
        note.textContent = err?.kind === 'rate' ? '提交太频繁，请稍后再试' : '提交失败，请检查填写内容后重试';
      }
    });
  }

  window.KbChatWidget._handover = { start };
})();
