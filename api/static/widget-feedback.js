/*
 * 租客在线客服挂件 · 回答反馈 / the chat widget's 👍/👎 under an answer, loaded by widget.js when its panel first opens
 * (one classic script, same origin as widget.js): KbChatWidget._feedback = {votes}. A vote is sent as feedback on the
 * answer's source SOP (POST /v1/feedback); 没帮助 also offers a person at once. Hooks: .kb-votes, .kb-vote-up,
 * .kb-vote-down, .kb-vote-note. Styles: /widget.css (widget.js).
 */
(() => {
  if (!window.KbChatWidget || window.KbChatWidget._feedback) return;

  /** The vote row for an answer from `sopId` (`queryId` from /v1/chat); `onDown` runs when the tenant says 没帮助. */
  function votes(ctx, sopId, queryId, onDown) {
    const { h, icon, button, post } = ctx;
    const row = h('div', 'kb-votes');
    const up = button('kb-vote-up', '有帮助');
    const down = button('kb-vote-down', '没帮助');
    up.append(icon('up'), '有帮助');
    down.append(icon('down'), '没帮助');
    const note = h('span', 'kb-vote-note');
    note.setAttribute('role', 'status');
    note.tabIndex = -1;
    const vote = async (value, btn) => {
      if (btn.matches(':focus')) note.focus({ preventScroll: true }); // a disabled button drops focus to the host page
      up.disabled = true;
      down.disabled = true;
      btn.classList.add('kb-active');
      note.textContent = '';
      try {
        const body = { sop_id: sopId, vote: value };
        if (typeof queryId === 'number' && queryId > 0) body.query_id = queryId;
        await post('/v1/feedback', body);
        note.textContent = value > 0 ? '感谢您的反馈！' : '感谢反馈，我们会改进这个回答。';
      } catch (_) {
        up.disabled = false;
        down.disabled = false;
        btn.classList.remove('kb-active');
        note.textContent = '反馈提交失败，请稍后再试';
      }
    };
    up.addEventListener('click', () => vote(1, up));
    down.addEventListener('click', () => {
      vote(-1, down);
      onDown(); // not helped: offer a person at once
    });
    row.append(h('span', null, '这个回答有帮助吗？'), up, down, note);
    return row;
  }

  window.KbChatWidget._feedback = { votes };
})();
