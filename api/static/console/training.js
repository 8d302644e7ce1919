/* Training in the agent console: change cards to acknowledge (变更确认), the categories the agent is certified for,
   and each search's outcome (copy / open / re-search / give up, with the time from the first keystroke) reported
   for the trainers' training-needs report. Everything here is best effort: it never disturbs a call. */

import { api } from '../lib/api.js';
import { $, append, clear, el } from '../lib/dom.js';
import { withRefs } from '../lib/text.js';

const box = $('#training-box');
const cards = $('#change-cards');
const certs = $('#certs');
let staff = false;

function diffPart(part) {
  return el(
    'div',
    { class: 'change-part' },
    el('div', { class: 'change-label' }, part.label),
    el(
      'ul',
      { class: 'change-lines' },
      part.lines.map((l) =>
        l.op === '='
          ? // the same words, only now staff-only or public: not a new price or step (a trial read struck lines);
            // the note first, as changeRefs keeps a line's first node
            el(
              'li',
              { class: `moved ${l.moved}`, dataset: { text: l.text } },
              el('span', { class: 'moved-note' }, l.moved === 'internal' ? '改为内部：不要告知租客' : '改为可告知租客'),
              withRefs(l.text),
            )
          : l.superseded_by
            ? el(
                'li',
                { class: 'add superseded', title: `v${l.superseded_by} 又改了这一行` },
                `+ ${l.text}`,
                el('span', { class: 'faint' }, `（已被 v${l.superseded_by} 修改）`),
              )
            : el(
                'li',
                { class: l.op === '+' ? 'add' : l.op === '-' ? 'del' : 'ctx', dataset: { text: l.text } },
                `${l.op === ' ' ? ' ' : l.op} `,
                // another SOP named by its id reads as its title, as on the search cards (a training manager's trial)
                withRefs(l.text),
              ),
      ),
    ),
  );
}

/** What a card changed, for its folded title line: two cards of one SOP read the same (a trial's re-check). */
function what(change) {
  const parts = change.parts.map((p) => {
    const changed = p.lines.filter((l) => l.op !== ' ');
    const moved = changed.length && changed.every((l) => l.op === '=');
    return moved ? `${p.label}改为${changed[0].moved === 'internal' ? '内部' : '公开'}` : p.label;
  });
  return parts.length ? ` · 改了：${parts.join('、')}` : '';
}

/** A change card; all but the first come folded (their title line only), so several cards do not push the search
    results below the fold. */
function card(change, open) {
  // a rollback's card corrects what the versions it took back taught (a trial's mistaken 2-minute rule)
  const undone = (change.undoes || []).map((v) => `v${v}`).join('、');
  const kind = undone ? `更正（撤回 ${undone} 的修改）` : change.version === 1 ? '新增 SOP' : 'SOP 已更新'; // v1 read 已更新
  const head = [
    el('strong', {}, `${kind}：${change.title}`),
    el('span', { class: 'faint' }, ` v${change.version} · ${change.author}${change.version > 1 ? what(change) : ''}`),
  ];
  const node = el(
    'details',
    { class: 'change-card', dataset: { changeId: change.change_id }, open },
    el('summary', {}, ...head),
    change.parts.map(diffPart),
  );
  const ack = el('button', { type: 'button', class: 'btn small primary' }, '我已了解');
  ack.addEventListener('click', async () => {
    ack.disabled = true;
    try {
      await api(`/v1/changes/${encodeURIComponent(change.change_id)}/ack`, { method: 'POST', json: {} });
      const wasOpen = node.open;
      node.remove();
      if (queued.length) cards.insertBefore(card(queued.shift(), false), cards.querySelector('.more-changes'));
      drawMore();
      // the next card unfolds where this one was read (a trial had to find 「我已了解」 in a folded card)
      if (wasOpen && cards.firstElementChild) cards.firstElementChild.open = true;
      box.hidden = !cards.childElementCount && !certs.childElementCount;
    } catch (err) {
      ack.disabled = false;
      ack.title = err.message;
    }
  });
  node.append(ack);
  return node;
}

const pending = $('#change-pending');

function searching(on) {
  const n = cards.querySelectorAll('.change-card').length + queued.length;
  box.classList.toggle('searching', on);
  pending.hidden = !on || !n;
  pending.textContent = n ? `${n} 条 SOP 更新待确认（清空搜索框后查看）` : '';
}

const SHOWN = 5; // change cards drawn at once: the rest wait in `queued`, counted, drawn as cards are acknowledged
let queued = [];

/** 还有 N 条 under the cards while more wait (a trial's sixth card waited unseen until one was acknowledged). */
function drawMore() {
  cards.querySelector('.more-changes')?.remove();
  if (queued.length)
    cards.append(el('p', { class: 'faint more-changes' }, `还有 ${queued.length} 条变更待确认，确认上面的之后显示`));
}
let refreshes = 0; // the latest refresh: two at once (the key checked, a key saved in another tab) showed all twice

/** Change lines drawn before the SOP titles came: another SOP's id in them now reads as its title. */
export function changeRefs() {
  for (const li of cards.querySelectorAll('.change-lines li[data-text]')) {
    const shown = withRefs(li.dataset.text);
    if (typeof shown === 'string' || li.querySelector('.sop-ref')) continue;
    const op = li.firstChild;
    append(clear(li), [op, shown]); // `shown`: text and buttons (an array, which replaceChildren would print)
  }
}

export async function refreshTraining(role) {
  staff = Boolean(role) && role !== 'public';
  const asked = ++refreshes;
  queued = [];
  clear(cards);
  clear(certs);
  box.hidden = true;
  if (!staff) return;
  try {
    const [changes, exams, tasks] = await Promise.all([
      api('/v1/changes'),
      api('/v1/practice/exams'),
      api('/v1/practice/assignments', { query: { status: 'todo' } }).catch(() => []),
    ]);
    if (asked !== refreshes) return; // a later refresh draws it
    clear(cards);
    clear(certs);
    changes.slice(0, SHOWN).forEach((c, i) => {
      cards.append(card(c, i === 0));
    });
    queued = changes.slice(SHOWN);
    drawMore();
    const mine = exams.filter((x) => x.certified);
    const lapsed = exams.filter((x) => x.expired);
    if (mine.length) {
      // Node.append stringifies an array ("[object HTMLSpanElement]"): spread the badges.
      certs.append(
        '已认证：',
        ...mine.map((x) =>
          x.changed_since
            ? el(
                'span',
                { class: 'badge warn', title: `认证后本分类 SOP 有 ${x.changed_since} 处变更，建议到练习页重考` },
                `${x.category}（有更新）`,
              )
            : el('span', { class: 'badge public' }, x.category),
        ),
      );
    }
    if (lapsed.length) {
      certs.append(
        mine.length ? ' ' : '',
        '认证已过期（请到练习页重考）：',
        ...lapsed.map((x) => el('span', { class: 'badge warn' }, x.category)),
      );
    }
    if (tasks.length) {
      // A trainer's assignments still to do, overdue ones named (they are done on the practice page)
      const late = tasks.filter((a) => a.status === 'overdue').length;
      certs.append(
        certs.childElementCount ? ' ' : '',
        el(
          'a',
          { href: '/practice', class: late ? 'badge overdue' : 'badge warn', id: 'tasks-due' },
          `培训任务 ${tasks.length} 项待完成${late ? `（${late} 项已逾期）` : ''}`,
        ),
      );
    }
    box.hidden = !cards.childElementCount && !certs.childElementCount;
  } catch (_) {
    /* accounts or training unavailable: the console works without */
  }
}

// ---- on-the-job search outcomes ------------------------------------------------------------------------
const episode = { start: null, opened: null, done: false, text: '' };

function report(outcome, sopId, keepalive = false) {
  if (!staff || episode.start === null || episode.done) return;
  episode.done = true;
  const queryId = Number($('#results')?.dataset?.queryId || 0) || undefined;
  const body = { outcome, ms: Math.round(performance.now() - episode.start) };
  if (sopId) body.sop_id = sopId;
  if (queryId) body.query_id = queryId;
  if (keepalive) {
    const key = localStorage.getItem('kb.apiKey') || '';
    fetch('/v1/practice/activity', {
      method: 'POST',
      keepalive: true,
      headers: { 'Content-Type': 'application/json', ...(key ? { Authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify(body),
    }).catch(() => {});
    return;
  }
  api('/v1/practice/activity', { method: 'POST', json: body }).catch(() => {});
}

/** Two queries are one search being typed when one begins with the other's first characters (门 → 门锁没电了, 空调 →
 * 空调不制冷); a query typed over the old one (select all, type) is a new search. */
const sameSearch = (a, b) => {
  const n = Math.min(2, a.length, b.length);
  return a.slice(0, n) === b.slice(0, n);
};

export function initTraining(search) {
  search.addEventListener('input', () => {
    const text = search.value.trim();
    // A search is on: the change cards give way to one line, so the results are not pushed down mid-call (a trial:
    // four folded cards put the gas-leak card halfway down a 768-pixel screen); they come back with an empty box
    if (text) for (const open of cards.querySelectorAll('details.change-card[open]')) open.open = false;
    searching(Boolean(text));
    const open = episode.start !== null && !episode.done;
    if (!text) {
      // a cleared box ends what the next search could answer for (it also ends a call)
      document.dispatchEvent(new CustomEvent('kb:searched-again', { detail: { queryId: null } }));
      if (open) report(episode.opened ? 'open' : 'research', episode.opened);
      episode.start = null;
    } else if (open && episode.text && !sameSearch(episode.text, text)) {
      // A new search without clearing the box: the last one ended in the SOP opened, or in searching again
      const queryId = Number($('#results')?.dataset?.queryId || 0);
      if (!episode.opened && queryId) {
        // left unused for other words: what the agent uses next may answer its words too (lib/learning.js); not
        // after clearing the box, which also ends a call
        document.dispatchEvent(new CustomEvent('kb:searched-again', { detail: { queryId } }));
      }
      report(episode.opened ? 'open' : 'research', episode.opened);
      Object.assign(episode, { start: performance.now(), opened: null, done: false });
    } else if (episode.start === null || episode.done) {
      Object.assign(episode, { start: performance.now(), opened: null, done: false });
    }
    episode.text = text;
  });
  // 👍 on a result or in the drawer: the search found what the agent needed (only copying a line counted before)
  document.addEventListener('kb:voted', (ev) => {
    if (ev.detail.vote > 0) report('open', ev.detail.sopId);
  });
  document.addEventListener('kb:sop-opened', (ev) => {
    episode.opened = ev.detail.sopId;
  });
  document.addEventListener('kb:copied', (ev) => {
    const holder = ev.target.closest?.('[data-sop-id]');
    report('copy', holder?.dataset?.sopId);
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden' && episode.start !== null && !episode.done) {
      report(episode.opened ? 'open' : 'abandon', episode.opened, true);
    }
  });
}
