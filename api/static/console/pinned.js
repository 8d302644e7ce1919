/* The pinned SOP of a call: countdowns for its time limits, its steps as a checklist the agent ticks, what to ask the
   tenant next and its script lines (with their labels), and a button to its full text in the drawer. */

import { announce } from '../lib/announce.js';
import { el } from '../lib/dom.js';
import { learning } from '../lib/learning.js';
import { withRefs } from '../lib/text.js';

const TICK_MS = 1000;
let ticker = null;

const two = (n) => String(n).padStart(2, '0');

function remaining(ms) {
  const s = Math.max(0, Math.round(Math.abs(ms) / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}:${two(m)}:${two(s % 60)}` : `${two(m)}:${two(s % 60)}`;
}

/** Update every countdown on the page from its deadline (ms since epoch) and full span. */
function tick() {
  const clocks = document.querySelectorAll('.countdown[data-due]');
  if (!clocks.length) {
    clearInterval(ticker);
    ticker = null;
    return;
  }
  const now = Date.now();
  for (const c of clocks) paint(c, now);
}

const toldLate = new Set(); // the limits whose running out was said (due time and label)

/** One running countdown as it stands at `now`. */
function paint(c, now) {
  const left = Number(c.dataset.due) - now;
  const span = Number(c.dataset.span);
  const time = c.querySelector('.countdown-time');
  time.textContent = left >= 0 ? remaining(left) : `超时 ${remaining(left)}`;
  c.classList.toggle('soon', left >= 0 && left < span * 0.2);
  // The moment a limit runs out is said, urgently (a re-check: 超时 appeared with nothing announced)
  const label = c.querySelector('.countdown-label')?.textContent || '';
  if (left < 0 && c.isConnected && !toldLate.has(`${c.dataset.due}|${label}`)) {
    toldLate.add(`${c.dataset.due}|${label}`); // once per limit, not at every redraw of the pinned SOP
    announce(`时限已到：${label}`, { urgent: true });
  }
  c.classList.toggle('late', left < 0);
}

/** When a limit's countdown started (ms), or undefined while it waits for the agent (`pinned.started`: index → ms):
    one counted from the call runs from when the tenant raised the topic; one counted from a later event (到场后 2
    小时内, 结案后 24 小时内) from when the agent starts it; one for a circumstance (冬季：, 夜间：, 无人被困的故障) only
    once the agent says it applies, and then from the call (a trial's water heater ran 冬季 and 其他月份 side by side). */
function startOf(pinned, d, i) {
  if (d.starts === 'event') return pinned.started.get(i);
  if (d.starts === 'case') return pinned.started.has(i) || inPeriod(d.period) ? pinned.since : undefined;
  return pinned.since;
}

/** Whether now falls in a circumstance's months or hours (冬季（11 月–次年 3 月）, 夜间（22:00–7:00）): such a limit
    starts by itself in its period (a trial in December clicked 适用 on 冬季 while 其他月份 waited beside it). */
function inPeriod(period, now = new Date()) {
  if (period?.months) return period.months.includes(now.getMonth() + 1);
  if (!period?.minutes) return false;
  const [start, end] = period.minutes;
  const m = now.getHours() * 60 + now.getMinutes();
  return start < end ? m >= start && m < end : m >= start || m < end;
}

/** What decided a circumstance's limit by the calendar or the clock, said beside its label. */
const periodNote = (d, running) =>
  d.period
    ? el(
        'span',
        { class: 'faint countdown-period' },
        running
          ? `（按当前${d.period.months ? '月份' : '时间'}适用）`
          : `（现在不在此${d.period.months ? '月份' : '时段'}）`,
      )
    : null;

/** One time limit: running, done, or waiting for its event or circumstance. */
function countdown(pinned, d, i) {
  const span = d.minutes * 60000;
  const start = startOf(pinned, d, i);
  const time = el('span', { class: 'countdown-time' }, remaining(span));
  const label = el('span', { class: 'countdown-label' }, d.label);
  pinned.met ??= new Map();
  pinned.dropped ??= new Map();
  if (pinned.dropped.has(i)) {
    // not this call's (a lift stopped with nobody inside: its rescue limits): no clock, no 超时, one click back
    time.textContent = '不适用';
    const back = el('button', { type: 'button', class: 'btn small countdown-undrop', title: '恢复计时' }, '恢复');
    const item = el('li', { class: 'countdown dropped', title: '已标为不适用' }, time, label, back);
    back.addEventListener('click', () => {
      pinned.dropped.delete(i);
      item.replaceWith(countdown(pinned, d, i));
      if (ticker === null) ticker = setInterval(tick, TICK_MS);
    });
    return item;
  }
  if (start !== undefined && pinned.met.has(i)) {
    // done in time or not, the clock stops and says how long it took (a trial's 1-minute step went red after it)
    const took = pinned.met.get(i) - start;
    time.textContent = `✓ ${remaining(took)}`;
    return el('li', { class: `countdown met${took > span ? ' late' : ''}`, title: '已完成，用时' }, time, label);
  }
  if (start !== undefined) {
    const running = el(
      'li',
      { class: 'countdown', dataset: { due: String(start + span), span: String(span) } },
      time,
      label,
      d.starts === 'case' && !pinned.started.has(i) ? periodNote(d, true) : null,
    );
    paint(running, Date.now()); // the time left now, not the full span until the next tick (a trial saw 05:00 → 04:53)
    // verbs, not states: a trial read 「超时 01:21 … [已完成]」 as done
    running.append(
      stamp(pinned.met, 'countdown-met', '这项时限已做到：停止计时', '完成', running, pinned, d, i),
      stamp(pinned.dropped, 'countdown-drop', '这项时限不适用于这通电话：停止计时', '不适用', running, pinned, d, i),
    );
    return running;
  }
  const [kind, title, text] =
    d.starts === 'case'
      ? ['waiting case', '只在所写情形下计时：属实时从来电起计时', '适用']
      : ['waiting', '该事件发生时开始计时', '开始计时'];
  const item = el('li', { class: `countdown ${kind}` }, time, label, periodNote(d, false));
  item.append(stamp(pinned.started, 'countdown-start', title, text, item, pinned, d, i));
  return item;
}

/** A countdown's button that records now in `moments` (started, met, dropped) and draws the countdown again. */
function stamp(moments, cls, title, text, item, pinned, d, i) {
  const button = el('button', { type: 'button', class: `btn small ${cls}`, title }, text);
  button.addEventListener('click', () => {
    moments.set(i, Date.now());
    item.replaceWith(countdown(pinned, d, i));
    if (ticker === null) ticker = setInterval(tick, TICK_MS);
  });
  return button;
}

function countdowns(pinned) {
  const limits = pinned.item.deadlines || [];
  if (!limits.length) return el('p', { class: 'muted' }, '本 SOP 没有写分钟或小时的时限。');
  pinned.started ??= new Map();
  const list = el(
    'ul',
    { class: 'countdowns', 'aria-label': '时限倒计时' },
    limits.map((d, i) => countdown(pinned, d, i)),
  );
  if (ticker === null) ticker = setInterval(tick, TICK_MS);
  return list;
}

function checklist(pinned) {
  const steps = pinned.item.steps || [];
  if (!steps.length) return el('p', { class: 'muted' }, '（本 SOP 没有写处理步骤）');
  const progress = el('span', { class: 'faint checklist-progress' });
  const update = () => {
    progress.textContent = `已完成 ${pinned.done.size} / ${steps.length}`;
  };
  const list = el(
    'ol',
    { class: 'checklist', 'aria-label': '处理步骤清单' },
    steps.map((step, i) => {
      const box = el('input', { type: 'checkbox', id: `step-${i}`, checked: pinned.done.has(i) });
      box.addEventListener('change', () => {
        if (box.checked) pinned.done.add(i);
        else pinned.done.delete(i);
        box.closest('li').classList.toggle('done', box.checked);
        // the question this step asks is asked: struck in 接下来问租客 too (a trial saw ticked steps listed there)
        for (const ask of box.closest('.pinned')?.querySelectorAll(`.ask-list li[data-step="${i}"]`) ?? []) {
          ask.classList.toggle('done', box.checked);
        }
        update();
      });
      // The step inside its label: read once, as the checkbox's name (an accessibility review heard it twice)
      const text = withRefs(step, { plain: true }); // another SOP by its title, not its id
      box.setAttribute('aria-label', text); // the text beside it is for the eye only: read once, as its name
      return el(
        'li',
        { class: pinned.done.has(i) ? 'done' : null },
        el('label', null, box, el('span', { 'aria-hidden': 'true' }, text)),
      );
    }),
  );
  update();
  return el('div', null, progress, list);
}

function askNext(pinned) {
  const questions = pinned.item.ask_next || [];
  if (!questions.length) return null;
  return el(
    'section',
    { class: 'block ask-next' },
    el('h4', null, '接下来问租客'),
    el(
      'ul',
      { class: 'ask-list' },
      questions.map((q) => {
        const step = (pinned.item.steps || []).findIndex((s) => s.startsWith(q));
        const done = step >= 0 && pinned.done.has(step);
        return el('li', { class: done ? 'done' : null, dataset: step >= 0 ? { step: String(step) } : {} }, q);
      }),
    ),
  );
}

/** The limit of `pin` that runs out first (not done, not marked 不适用), as {d, due, span}; null when none runs. */
function soonest(pin) {
  pin.started ??= new Map();
  const running = (pin.item.deadlines || [])
    .map((d, i) => ({ d, i, start: startOf(pin, d, i), span: d.minutes * 60000 }))
    .filter((x) => x.start !== undefined && !pin.met?.has(x.i) && !pin.dropped?.has(x.i));
  const first = running.sort((a, b) => a.start + a.span - (b.start + b.span))[0];
  return first ? { d: first.d, due: first.start + first.span, span: first.span } : null;
}

/** The call's other pinned SOPs, each with its limit that runs out first, a running countdown, and a button back to
    it: a second topic pinned no longer hides the first one's clocks (a trial lost a leak's 30-minute dispatch). */
export function otherPins(pins, current, pick) {
  const rows = [...pins.values()]
    .filter((p) => p !== current)
    .map((p) => {
      const next = soonest(p);
      const back = el('button', { type: 'button', class: 'btn small other-pin-back' }, '切回');
      back.addEventListener('click', () => pick(p.item));
      const label = el('span', { class: 'countdown-label' }, next ? `${p.item.title}：${next.d.label}` : p.item.title);
      if (!next) return el('li', { class: 'other-pin' }, label, back);
      const time = el('span', { class: 'countdown-time' });
      const row = el(
        'li',
        { class: 'countdown other-pin', dataset: { due: String(next.due), span: String(next.span) } },
        time,
        label,
        back,
      );
      paint(row, Date.now());
      return row;
    });
  if (!rows.length) return null;
  if (ticker === null) ticker = setInterval(tick, TICK_MS);
  return el(
    'section',
    { class: 'block other-pins', 'aria-label': '本通电话其他已固定的 SOP' },
    el('h4', null, '本通电话其他已固定'),
    el('ul', { class: 'countdowns' }, rows),
  );
}

/** The pinned SOP's view; `scriptList(hit)` renders script lines as the result cards do (labels kept). */
export function pinnedView(pinned, scriptList) {
  const item = pinned.item;
  const root = el(
    'div',
    { class: 'pinned', dataset: { sopId: item.sop_id } },
    el(
      'header',
      { class: 'pinned-head' },
      el('h3', null, item.title),
      item.urgent ? el('span', { class: 'badge urgent', title: '紧急处置：先保安全、按时限到场' }, '紧急') : null,
      el('span', { class: 'badge cat' }, item.category),
      el('span', { class: 'badge ver', title: '文档版本' }, `v${item.version}`),
      // The checklist shows steps, limits and script lines; the rest (电话排查, fee tables, 注意…) is in the full text
      el(
        'button',
        {
          type: 'button',
          class: 'btn small pinned-full',
          title: '打开这份 SOP 的全文（电话排查、收费标准、注意事项等）',
          onclick: () => learning.openSop?.(item.sop_id),
        },
        '查看全文',
      ),
    ),
    // the countdowns stay in sight while the column scrolls to a step or a copied line (a trial's lift call lost its
    // 1-minute limit off screen after Alt+1)
    el('section', { class: 'block block-limits' }, el('h4', null, '时限'), countdowns(pinned)),
    askNext(pinned),
    el('section', { class: 'block' }, el('h4', null, '处理步骤'), checklist(pinned)),
    el('section', { class: 'block block-scripts' }, el('h4', null, '标准话术'), scriptList(item)),
  );
  return root;
}
