/* The calls going on now (GET /v1/calls/live), as buttons above call mode's columns: the agent picks the call to
   follow instead of typing its id (a team lead's trial: there was no list of live calls). */

import { api } from '../lib/api.js';
import { clear, el } from '../lib/dom.js';

const REFRESH_MS = 3000; // a trial saw a new call missing and another's topic out of date at 10 s
const SHOWN = 8;

const minutesSince = (seconds) => Math.max(0, Math.round((Date.now() / 1000 - seconds) / 60));

/** The list in `box`: `current()` is the call followed now (left out), `follow(id)` follows another. */
export function liveCalls(box, { current, follow }) {
  let timer = null;
  const item = (c) =>
    el(
      'button',
      {
        type: 'button',
        class: 'btn small call-live-item',
        dataset: { callId: c.call_id },
        title: `已通话 ${minutesSince(c.started)} 分钟，${c.segments} 段转写`,
        onclick: () => follow(c.call_id),
      },
      c.urgent ? el('span', { class: 'badge urgent' }, '紧急') : null,
      c.call_id,
      el('span', { class: 'faint' }, ` · ${c.topic || (c.weak ? '匹配较弱' : '还没有推荐')}`),
    );
  const refresh = async () => {
    let calls;
    try {
      calls = await api('/v1/calls/live');
    } catch (_) {
      return; // no staff key, or the service is busy: what is shown stays
    }
    const others = calls.filter((c) => c.call_id !== current());
    box.hidden = timer === null || !others.length;
    clear(box).append(el('span', { class: 'faint' }, '进行中的通话：'), ...others.slice(0, SHOWN).map(item));
  };
  return {
    start() {
      if (timer !== null) return;
      timer = setInterval(refresh, REFRESH_MS);
      refresh();
    },
    stop() {
      clearInterval(timer);
      timer = null;
      box.hidden = true;
    },
    refresh,
  };
}
