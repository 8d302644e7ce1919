/* Agent console: a new hand-over case is heard, not only seen (an evening supervisor's trial: agents on a call, the
 * console behind another window, noticed an urgent case minutes late — only a counter and the tab title changed).
 *
 * A case that appears in the queue after the page loaded rings: an urgent one always (three rising tones), a normal
 * one only while the console is out of sight (one tone). With the browser's permission (asked for the first time the
 * agent turns 提醒 on), an out-of-sight console also shows a system notification that brings the console back.
 * 提醒 on/off is kept in this browser (localStorage `kb-case-alert`, on unless turned off). */

import { announce } from '../lib/announce.js';
import { el } from '../lib/dom.js';

const KEY = 'kb-case-alert';
const URGENT = [660, 880, 1100];
const NORMAL = [660];
const TONE_S = 0.18;

const state = { known: null, audio: null, button: null };

const enabled = () => localStorage.getItem(KEY) !== 'off';

/** Tones from the Web Audio API (no sound file to serve or cache). */
function ring(freqs) {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return;
  state.audio = state.audio || new Ctx();
  const ctx = state.audio;
  if (ctx.state === 'suspended') ctx.resume().catch(() => {});
  freqs.forEach((f, i) => {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    const at = ctx.currentTime + i * (TONE_S + 0.06);
    osc.frequency.value = f;
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.25, at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + TONE_S);
    osc.connect(gain).connect(ctx.destination);
    osc.start(at);
    osc.stop(at + TONE_S + 0.02);
  });
}

function notify(c) {
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  const urgent = c.priority === 'urgent';
  const n = new Notification(urgent ? '紧急转人工请求' : '新的转人工请求', {
    body: `${c.contact?.room || ''} ${c.question || ''}`.trim().slice(0, 80),
    tag: `kb-case-${c.case_id}`,
    requireInteraction: urgent,
  });
  n.onclick = () => {
    window.focus();
    n.close();
  };
}

/** The queue as polled: ring for the open cases not seen before (none on the first poll: the page just opened), and
    say them to a screen reader whether or not 提醒 is on (an accessibility review: only the tab title changed). */
export function alertNew(cases) {
  const open = cases.filter((c) => c.status === 'open');
  const fresh = state.known ? open.filter((c) => !state.known.has(c.case_id)) : [];
  state.known = new Set([...(state.known || []), ...cases.map((c) => c.case_id)]);
  if (fresh.length) {
    const said = fresh.map((c) => `${c.priority === 'urgent' ? '紧急' : ''}转人工请求：${c.question}`);
    announce(`新的${said.join('；')}`, { urgent: fresh.some((c) => c.priority === 'urgent') });
  }
  if (!fresh.length || !enabled()) return;
  const urgent = fresh.some((c) => c.priority === 'urgent');
  if (urgent || document.hidden) ring(urgent ? URGENT : NORMAL);
  if (document.hidden) for (const c of fresh) notify(c);
}

function label() {
  const on = enabled();
  state.button.textContent = on ? '提醒：开' : '提醒：关'; // words, not 🔔: a re-check's browser had no emoji font
  state.button.setAttribute('aria-pressed', String(on));
  state.button.title = on
    ? '新的紧急请求响铃；控制台不在前台时，新的普通请求也响铃并弹出系统通知。点击关闭'
    : '新的转人工请求不响铃、不通知。点击打开';
}

/** 提醒 beside the queue's toggle: turns the alert on or off (and asks for notifications when turned on). */
export function alertToggle() {
  state.button = el('button', { type: 'button', class: 'cases-alert', hidden: true });
  state.button.addEventListener('click', () => {
    localStorage.setItem(KEY, enabled() ? 'off' : 'on');
    label();
    if (enabled()) {
      ring(NORMAL); // the agent hears what a new case sounds like (and the click unlocks the browser's audio)
      if ('Notification' in window && Notification.permission === 'default') Notification.requestPermission();
    }
  });
  label();
  return state.button;
}
