/* Result cards: one per SOP with matched sections, steps, escalation, time limits, copyable script lines and
   feedback buttons; selection with the keyboard. */

import { announce, announceSettled } from '../lib/announce.js';
import { api } from '../lib/api.js';
import { copyLine, scriptLine } from '../lib/clipboard.js';
import { $, $$, clear, el, icon } from '../lib/dom.js';
import { KIND_LABELS } from '../lib/labels.js';
import { learning } from '../lib/learning.js';
import { confClass, confTitle, isCueLine, renderText, withRefs } from '../lib/text.js';
import { closeView, internalBadge, loadSop, openView } from './drawer.js';
import { state, ui } from './state.js';

export function showMessage(text, kind = 'info', extra) {
  clear(ui.message);
  if (!text) {
    ui.message.hidden = true;
    return;
  }
  ui.message.className = `message notice ${kind}`;
  ui.message.append(text);
  if (extra) ui.message.append(extra);
  ui.message.hidden = false;
}

export function resetResults() {
  state.hits = [];
  state.queryId = null;
  ui.results.dataset.queryId = '';
  state.selected = -1;
  clear(ui.results);
  ui.took.textContent = '';
  ui.expansions.textContent = '';
}

/** Show a search response; `roundTripMs` is the time the browser waited for it. */
export function render(data, roundTripMs) {
  ui.empty.hidden = true;
  state.hits = data.results || [];
  state.queryId = data.query_id ?? null;
  ui.results.dataset.queryId = state.queryId ?? ''; // lib/learning.js links opens, copies and 👍 to this search
  clear(ui.results);
  const n = state.hits.length;
  ui.took.textContent = `${n} 条结果 · 用时 ${Math.round(data.took_ms)} ms`;
  ui.took.title = `服务端 ${data.took_ms} ms，含网络 ${Math.round(roundTripMs)} ms`;
  const exp = (data.expansions || []).map((e) => `${e.found} → ${e.synonyms.join('、')}`);
  ui.expansions.textContent = exp.length ? `同义词扩展：${exp.join('；')}` : '';
  ui.expansions.title = ui.expansions.textContent;
  if (!n) {
    state.selected = -1;
    state.openAfterSearch = false;
    announceSettled('results', '没有找到相关 SOP');
    showMessage(
      `没有找到与「${data.query}」相关的 SOP。换个说法试试，比如只输入关键的几个字（“漏水”“门卡”“退押金”）。`,
      'info',
    );
    return;
  }
  if (data.weak) {
    showMessage(
      '匹配较弱：下面的结果和输入的内容都不太对得上，可能知识库里没有这类情况（已记入培训师的缺口报告）。请核实后再用，或换个说法。',
      'warn',
    );
  } else showMessage('');
  state.weak = Boolean(data.weak);
  state.emergency = Boolean(data.emergency);
  state.learnedFirst = Boolean(data.learned_first);
  state.hits.forEach((hit, i) => {
    ui.results.appendChild(renderCard(hit, i));
  });
  select(0, { scroll: false });
  // The first card's name says 匹配较弱 itself; its confidence is left out so a changed figure alone is not said again
  announceSettled('results', `${n} 条结果，${cardName(state.hits[0], 0, false)}`);
  markInternalContent();
  if (state.openAfterSearch) {
    state.openAfterSearch = false;
    openView(state.selected);
  } else if (state.viewOpenFor) {
    closeView({ focusSearch: false });
  }
}

/** The SOP titles can arrive after the cards (they come with /v1/sops, loaded when a key is saved): cards whose text
    names another SOP by its id are drawn again, so it reads as that SOP's title (a CI run's cards came first). */
export function showRefs() {
  const names = (node) => typeof withRefs(node.dataset.text || node.textContent) !== 'string';
  const stale = $$('.result', ui.results).filter(
    (card) => !card.querySelector('.sop-ref') && $$('[data-text], .matched-text', card).some(names),
  );
  for (const card of stale) {
    const index = Number(card.dataset.index);
    card.replaceWith(renderCard(state.hits[index], index));
  }
  if (stale.length) {
    select(state.selected, { scroll: false });
    markInternalContent();
  }
}

const headingOf = (section) => {
  const path = section.heading_path || [];
  const rest = path.length > 1 ? path.slice(1) : path;
  return rest.join(' › ') || section.heading;
};
const oneLine = (text) =>
  text
    .split('\n')
    .map((l) => l.trim().replace(/^([-*•]|\d+[.、)])\s*/, ''))
    .filter(Boolean)
    .join(' ／ ');

/** An emergency procedure's badge; muted on a weak match without a danger in the words (a trial's 明天会不会下雨啊 got
    the flooding procedure under a red 紧急 badge). */
function urgentBadge() {
  if (state.weak && !state.emergency) {
    return el(
      'span',
      { class: 'badge urgent-muted', title: '应急处置类 SOP（本次匹配较弱，话里没有险情信号）' },
      '应急',
    );
  }
  return el('span', { class: 'badge urgent', title: '紧急处置：先保安全、按时限到场' }, '紧急');
}

/** The calibrated confidence (kb_service/search/confidence.py); the first result below the threshold says so. */
function confidenceBadge(hit, index) {
  if (hit.match_confidence === null || hit.match_confidence === undefined) return null;
  const pct = `${Math.round(hit.match_confidence * 100)}%`;
  if (index === 0 && state.weak) return el('span', { class: 'badge weak-badge', title: `置信度 ${pct}` }, '匹配较弱');
  // First for a danger in the words, or for words agents confirmed: a low figure there reads as doubt (a trial's
  // gas-leak card said 置信度 15%); say why it is first instead.
  if (index === 0 && state.emergency) {
    return el('span', { class: 'badge conf', title: `话里有险情信号，应急处置排在最前（置信度 ${pct}）` }, '险情优先');
  }
  if (index === 0 && state.learnedFirst) {
    return el('span', { class: 'badge conf', title: `坐席确认过的问法（置信度 ${pct}）` }, '坐席确认过');
  }
  // A later result's confidence is low by construction (it is measured against the first): "置信度 0%" on a
  // plausible second SOP read as "wrong"; it is an alternative. One at least as high as the first's figure read as
  // "the order is wrong" (a trial), yet ordering by it lost 2 of 150 held-out and 6 of 295 dev queries at R@1.
  // The same for a figure at or above any card above it: 92 %, 55 %, 76 % read as a wrong order too (a re-check).
  const first = state.weak || state.emergency || state.learnedFirst ? 1 : (state.hits[0]?.match_confidence ?? 0);
  const above = Math.min(first, ...state.hits.slice(1, index).map((h) => h.match_confidence ?? 1));
  if (index > 0 && (hit.match_confidence < 0.1 || hit.match_confidence >= above)) {
    const why = hit.match_confidence >= above ? '；排序另看各检索渠道的得分，第一条更常是对的' : '';
    return el('span', { class: 'badge cat', title: `备选结果（校准后的置信度 ${pct}${why}）` }, '备选');
  }
  return el(
    'span',
    { class: confClass(hit.match_confidence), title: confTitle(hit.match_confidence) },
    `置信度 ${pct}`,
  );
}

function cardHead(hit, index) {
  const open = () => {
    select(index, { scroll: false });
    openView(index);
  };
  const titleLink = el('a', { href: `#sop/${encodeURIComponent(hit.sop_id)}`, class: 'open-link' }, hit.title);
  titleLink.addEventListener('click', (ev) => {
    ev.preventDefault();
    open();
  });
  const openBtn = el('button', { type: 'button', class: 'btn small open-btn', title: '查看全文（Enter）' }, '查看全文');
  openBtn.addEventListener('click', open);
  return el(
    'header',
    { class: 'result-head' },
    el('span', { class: 'rank', 'aria-hidden': 'true' }, index + 1),
    el('h2', { class: 'result-title' }, titleLink),
    hit.urgent ? urgentBadge() : null,
    el('span', { class: 'badge cat' }, hit.category),
    hit.version ? el('span', { class: 'badge ver', title: '文档版本' }, `v${hit.version}`) : null, // 0: a public view
    hit.audience === 'agent'
      ? el('span', { class: 'badge staff', title: '整份文档仅员工可见' }, '仅员工')
      : el('span', { class: 'badge public', title: '租客可见文档（内部小节除外）' }, '租客可见'),
    confidenceBadge(hit, index),
    el('span', { class: 'head-spacer' }),
    openBtn,
  );
}

/** Matching sections: heading (with a red 内部 badge for staff-only sections of public documents) + excerpt. */
function matchedSections(hit) {
  if (!hit.sections?.length) return null;
  return el(
    'div',
    { class: 'matched', 'aria-label': '匹配小节' },
    hit.sections.map((s) =>
      el(
        'div',
        { class: 'matched-row' },
        el(
          'span',
          { class: 'chip', title: KIND_LABELS[s.kind] || s.kind },
          headingOf(s),
          s.audience === 'agent' && hit.audience === 'public' ? internalBadge() : null,
        ),
        el('span', { class: 'matched-text', title: withRefs(s.text, { plain: true }) }, withRefs(oneLine(s.text))),
      ),
    ),
  );
}

/** Script lines as the SOP writes them: labels such as 安抚投诉人： kept (which line is for whom), the lines to say
    numbered for Alt+N. */
export function scriptList(hit) {
  const lines = hit.script_lines?.length ? hit.script_lines : hit.scripts;
  if (!lines.length) return el('div', { class: 'empty-field' }, '（本 SOP 没有标准话术）');
  const sayable = new Set(hit.scripts);
  let n = 0;
  return el(
    'ul',
    { class: 'script-list' },
    lines.map((line) =>
      sayable.has(line) && !isCueLine(line)
        ? scriptLine(line, { index: ++n })
        : el('li', { class: 'script-label', dataset: { text: line } }, el('span', { class: 'script-text' }, line)),
    ),
  );
}

const textBlock = (cls, title, texts) =>
  el(
    'section',
    { class: `block ${cls}` },
    el('h3', null, title),
    texts.map((t) => el('div', { class: 'text-block', dataset: { text: t } }, renderText(t))),
  );

// A card shows this many steps and script lines (labels included) before "展开": the first card then leaves room
// for the second on a 1366×768 screen (tests/test_browser.py checks it). Alt+N copies hidden lines too.
const SHOWN_STEPS = 4;
const SHOWN_SCRIPT_LINES = 4;

const SHOWN_ESCALATION = 2;
const SHOWN_TIME_LIMITS = 3;

/** Hide the items of `list` after the first `shown`, with a button that shows them (placed after the list when it
    is already in a block, else both are wrapped). */
function collapse(list, shown, noun) {
  const items = Array.from(list.children);
  const isLabel = (item) => item.classList.contains('script-label');
  let cut = shown;
  while (cut > 1 && cut < items.length && isLabel(items[cut - 1])) cut -= 1; // no label shown without its lines
  const extra = items.slice(cut);
  if (!extra.length) return list;
  for (const item of extra) item.hidden = true;
  // the labels of folded script lines say what is behind the button (a new agent did not know the leak card's
  // 告知进度 line was there); the count is of lines to say, labels apart
  const labels = extra
    .filter(isLabel)
    .map((item) => item.textContent.trim().replace(/[：:]$/, ''))
    .filter((label) => label && label.length <= 12);
  const named = labels.length ? `：${labels.slice(0, 3).join('、')}${labels.length > 3 ? '…' : ''}` : '';
  const count = extra.filter((item) => !isLabel(item)).length || extra.length;
  const more = el('button', { type: 'button', class: 'btn small more-btn' }, `展开其余 ${count} ${noun}${named}`);
  more.addEventListener('click', (ev) => {
    ev.stopPropagation();
    for (const item of extra) item.hidden = false;
    // The button goes: focus the first item it revealed, not the page (an accessibility review)
    extra[0].tabIndex = -1;
    extra[0].focus();
    more.remove();
  });
  if (list.parentNode) {
    list.after(more);
    return list;
  }
  return el('div', null, list, more);
}

/** A text block whose first list is collapsed after `shown` items. */
function shortBlock(cls, title, texts, shown) {
  const block = textBlock(cls, title, texts);
  const list = block.querySelector('.text-list');
  if (list) collapse(list, shown, '条');
  return block;
}

function cardBody(hit) {
  const steps = hit.steps.length
    ? collapse(
        el(
          'ol',
          { class: 'steps' },
          hit.steps.map((s) => el('li', { class: 'step', dataset: { text: s } }, withRefs(s))),
        ),
        SHOWN_STEPS,
        '步',
      )
    : el('div', { class: 'empty-field' }, '（本 SOP 没有写处理步骤）');
  const list = scriptList(hit);
  const scripts = list.tagName === 'UL' ? collapse(list, SHOWN_SCRIPT_LINES, '句') : list;
  const left = el(
    'div',
    { class: 'col col-left' },
    el('section', { class: 'block block-steps' }, el('h3', null, KIND_LABELS.steps), steps),
    hit.escalation.length
      ? shortBlock('block-escalation', KIND_LABELS.escalation, hit.escalation, SHOWN_ESCALATION)
      : null,
  );
  const right = el(
    'div',
    { class: 'col col-right' },
    hit.time_limits.length
      ? shortBlock('block-time', KIND_LABELS.time_limit, hit.time_limits, SHOWN_TIME_LIMITS)
      : null,
    el('section', { class: 'block block-scripts' }, el('h3', null, KIND_LABELS.script), scripts),
  );
  return el('div', { class: 'result-body' }, left, right);
}

function feedback(hit) {
  const up = el(
    'button',
    { type: 'button', class: 'vote-up', title: '有用', 'aria-label': '有用' },
    icon('up'),
    ' 有用',
  );
  const down = el(
    'button',
    { type: 'button', class: 'vote-down', title: '没用', 'aria-label': '没用' },
    icon('down'),
    ' 没用',
  );
  const voteMsg = el('span', { class: 'vote-msg', role: 'status', tabindex: '-1' });
  const queryId = state.queryId;
  const vote = async (value, btn) => {
    up.disabled = true;
    down.disabled = true;
    up.classList.remove('active');
    down.classList.remove('active');
    btn.classList.add('active');
    voteMsg.className = 'vote-msg';
    if (btn === document.activeElement) voteMsg.focus(); // a disabled button drops focus to the page
    voteMsg.textContent = '提交中…';
    try {
      const body = { sop_id: hit.sop_id, vote: value };
      if (queryId) body.query_id = queryId;
      const resp = await api('/v1/feedback', { method: 'POST', json: body });
      voteMsg.textContent =
        learning.voteText(resp) + (value === 1 && resp?.learned === 'learned' ? '（点错了？点「没用」撤销）' : '');
      // The other button takes a mis-click back: a trial's 👍 on the wrong card put that SOP first for the whole team,
      // and the agent who clicked could not undo it (a 👎 removes the pair it taught)
      (value === 1 ? down : up).disabled = false;
      document.dispatchEvent(new CustomEvent('kb:voted', { detail: { sopId: hit.sop_id, vote: value } }));
    } catch (err) {
      up.disabled = false;
      down.disabled = false;
      btn.classList.remove('active');
      voteMsg.className = 'vote-msg error';
      voteMsg.textContent = `反馈提交失败：${err.message}`;
    }
  };
  up.addEventListener('click', () => vote(1, up));
  down.addEventListener('click', () => vote(-1, down));
  return el(
    'footer',
    { class: 'result-foot' },
    el('span', null, '这条结果有用吗？'),
    up,
    down,
    voteMsg,
    el('span', { class: 'foot-path', title: '文件路径' }, hit.path),
  );
}

/** What a screen reader says for a card: its rank, title, category and badge (not its 1,000 characters). */
function cardName(hit, index, withBadge = true) {
  const text = confidenceBadge(hit, index)?.textContent;
  const badge = withBadge || text === '匹配较弱' || text === '险情优先' ? text : null;
  return `第 ${index + 1} 条：${hit.title}，${hit.category}${hit.urgent ? '，紧急' : ''}${badge ? `，${badge}` : ''}`;
}

/** A weak match's steps and lines stay folded until the agent asks for them: a half-typed sentence showed a full
    card of another SOP's wording to read out (a new agent's trial). An emergency is never folded. */
function weakFold(body) {
  if (!state.weak || state.emergency) return body;
  body.hidden = true;
  const open = el(
    'button',
    { type: 'button', class: 'btn small more-btn weak-open' },
    '匹配较弱，核实后再展开步骤和话术',
  );
  open.addEventListener('click', (ev) => {
    ev.stopPropagation();
    body.hidden = false;
    open.remove();
  });
  return el('div', { class: 'weak-fold' }, open, body);
}

function renderCard(hit, index) {
  // An article named by its rank and title, not an option: an option's name is its whole text (1,000+ characters read
  // per arrow key) and it may hold no buttons (an accessibility review)
  const card = el('article', {
    id: `result-${index}`,
    class: 'result',
    'aria-label': cardName(hit, index),
    dataset: { sopId: hit.sop_id, index: String(index) },
  });
  card.addEventListener('click', (ev) => {
    if (ev.target.closest('button, a, .script-line')) return;
    select(index);
  });
  card.addEventListener('dblclick', (ev) => {
    if (ev.target.closest('button, .script-line')) return;
    openView(index);
  });
  card.append(cardHead(hit, index));
  const matched = matchedSections(hit);
  if (matched) card.appendChild(matched);
  card.appendChild(weakFold(cardBody(hit)));
  if (hit.staff_only_sections?.length) {
    card.appendChild(
      el(
        'div',
        { class: 'staff-only' },
        internalBadge(),
        el('span', null, '含内部小节（不要告知租客）：'),
        el('span', { class: 'staff-only-items' }, hit.staff_only_sections.join('、')),
      ),
    );
  }
  card.appendChild(feedback(hit));
  return card;
}

function markInternal(node) {
  if (node.classList.contains('internal-item')) return;
  node.classList.add('internal-item');
  const badge = internalBadge('来自内部小节，不要告知租客');
  const btn = node.querySelector('.copy-btn');
  if (btn) node.insertBefore(badge, btn);
  else if (node.classList.contains('text-block')) node.insertBefore(badge, node.firstChild);
  else node.appendChild(badge);
}

/** Steps, scripts, time limits and escalation come flattened from all sections; mark those from [内部] ones. */
function markInternalContent() {
  state.hits.forEach((hit, index) => {
    if (!hit.staff_only_sections?.length) return;
    loadSop(hit)
      .then((sop) => {
        const card = ui.results.querySelector(`.result[data-index="${index}"]`);
        if (!card || card.dataset.sopId !== hit.sop_id || !sop) return;
        const internal = sop.sections.filter((s) => s.internal);
        const steps = new Set(internal.flatMap((s) => s.steps));
        const scripts = new Set(internal.flatMap((s) => s.scripts));
        const texts = new Set(internal.map((s) => s.text));
        for (const n of $$('.step', card)) if (steps.has(n.dataset.text)) markInternal(n);
        for (const n of $$('.script-line', card)) if (scripts.has(n.dataset.text)) markInternal(n);
        for (const n of $$('.text-block', card)) if (texts.has(n.dataset.text)) markInternal(n);
      })
      .catch(() => {
        /* the badge list below the card still warns about internal sections */
      });
  });
}

export function select(index, { scroll = true } = {}) {
  const cards = $$('.result', ui.results);
  if (!cards.length) {
    state.selected = -1;
    return;
  }
  const i = Math.max(0, Math.min(cards.length - 1, index));
  cards.forEach((c, j) => {
    c.classList.toggle('selected', j === i);
    c.setAttribute('aria-current', j === i ? 'true' : 'false');
  });
  state.selected = i;
  if (scroll) cards[i].scrollIntoView({ block: 'nearest', behavior: 'auto' });
}

export function move(delta) {
  if (!state.hits.length) return;
  const next = Math.max(0, Math.min(state.hits.length - 1, state.selected + delta));
  select(next);
  announce(`已选 ${cardName(state.hits[next], next)}。Enter 查看全文`); // focus stays in the search box
  if (state.viewOpenFor) openView(next);
}

/** Copy the n-th script line (1-based, cue lines not counted) of the selected result. */
export function copyNth(n) {
  // In call mode (the results hidden) Alt+N copies the pinned SOP's lines.
  const card = ui.results.hidden ? $('#call-pinned .pinned') : $('.result.selected', ui.results);
  if (!card) return;
  const lines = $$('.script-line:not(.is-label)', card);
  if (lines[n - 1]) {
    copyLine(lines[n - 1]);
    lines[n - 1].scrollIntoView({ block: 'nearest' });
  }
}
