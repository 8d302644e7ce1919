/* Call mode (通话中): follow a live call's transcript over WS /v1/assist, show the suggested SOPs as they arrive,
   pin one (key P) to get its steps as a checklist, countdowns for its time limits and what to ask next. */

import { announce } from '../lib/announce.js';
import { api } from '../lib/api.js';
import { $, clear, el, isEditable } from '../lib/dom.js';
import { singleKeysOn } from '../lib/shortcuts.js';
import { confClass, confTitle, percent, withRefs } from '../lib/text.js';
import { callSearch } from './call_search.js';
import { liveCalls } from './live_calls.js';
import { otherPins, pinnedView } from './pinned.js';
import { scriptList } from './results.js';

const RECONNECT_MS = 2000;
const SILENCE_MS = 20000; // no transcript this long after following a call: the id may be wrong
const CALL_ID = /^[A-Za-z0-9._:-]{1,100}$/; // kb_service/assist/context.py CALL_ID
const RECONNECT_MAX_MS = 15000;
const SAVED = 'kb-call'; // sessionStorage: the followed call's pins, ticks and started countdowns (kept on reload)
const SPEAKER = { tenant: '租客', agent: '坐席' };
const CONFIDENT = 0.422; // the weak-match threshold (kb_service/search/confidence.py): below it only an emergency is not weak

const call = {
  active: false,
  socket: null,
  callId: '',
  items: [],
  pinned: null, // the pinned suggestion (an item), with its pin time
  pins: new Map(), // sop_id → every SOP pinned in this call, its ticks and started countdowns kept when pinned again
  weak: false,
  retry: null,
  backoff: RECONNECT_MS,
  topicStarted: null, // ms: when the call's current topic began (the server's clock), what call time limits count from
  agentSaid: [], // the agent's final turns: what they asked already
};

let ui = null;

function build() {
  const panel = $('#call-panel');
  const idInput = el('input', {
    id: 'call-id',
    type: 'text',
    autocomplete: 'off',
    spellcheck: 'false',
    maxlength: '100',
    placeholder: '通话编号，例如 replay-1',
    'aria-label': '通话编号',
  });
  const follow = el('button', { id: 'call-follow', type: 'button', class: 'btn primary' }, '跟随通话');
  const status = el('span', { id: 'call-status', class: 'call-status', role: 'status', 'aria-live': 'polite' });
  const transcript = el('ol', { id: 'call-transcript', class: 'call-transcript', 'aria-label': '实时转写' });
  // Not a live region: it is redrawn on every segment, and a reader spoke all three cards over the tenant each time
  // (an accessibility review); a new first suggestion and a weak match are said once (renderSuggestions)
  const cards = el('div', {
    id: 'call-suggestions',
    class: 'call-suggestions',
    role: 'region',
    'aria-label': '推荐 SOP',
    tabindex: '-1',
  });
  const weak = el('div', { id: 'call-weak', class: 'notice warn call-weak', hidden: true });
  const pinned = el('div', { id: 'call-pinned', class: 'call-pinned' });
  const live = el('div', { id: 'call-live', class: 'call-live', hidden: true });
  // Before any call is followed: where calls come from (a new agent's trial saw three empty columns and a box)
  const waiting = el(
    'p',
    { id: 'call-waiting', class: 'muted' },
    '通话的实时转写由电话平台推送过来。有通话进行时，上方会列出「进行中的通话」，点一下即可跟随；也可以输入通话编号。',
    '还没有接入电话平台时，可以用 kb assist replay 回放一段录音转写来演示（见 docs/assist.md）。',
  );
  clear(panel);
  panel.append(
    el('div', { class: 'call-bar' }, el('label', { for: 'call-id' }, '通话'), idInput, follow, status),
    live,
    el(
      'div',
      { class: 'call-grid' },
      el('section', { class: 'call-col' }, el('h2', null, '实时转写'), transcript, waiting),
      el(
        'section',
        { class: 'call-col' },
        el('h2', null, '推荐 SOP ', el('small', { class: 'faint' }, '按 P 固定第一条')),
        weak,
        cards,
        callSearch({ callId: () => call.callId, pin: pinItem }),
      ),
      el('section', { class: 'call-col' }, el('h2', null, '已固定'), pinned),
    ),
  );
  follow.addEventListener('click', () => watch(idInput.value.trim()));
  idInput.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') {
      ev.preventDefault();
      watch(idInput.value.trim());
    }
  });
  // Ticks and started countdowns are saved after pinned.js has applied them (the events bubble up here).
  pinned.addEventListener('change', () => save());
  pinned.addEventListener('click', (ev) => {
    if (ev.target.closest?.('.countdown-start, .countdown-met, .countdown-drop, .countdown-undrop')) save();
  });
  const lives = liveCalls(live, {
    current: () => call.callId,
    follow: (callId) => {
      idInput.value = callId;
      watch(callId).then(() => lives.refresh());
    },
  });
  return { panel, idInput, status, transcript, cards, weak, pinned, lives };
}

function setStatus(text, kind = '') {
  if (ui.status.textContent !== text) ui.status.textContent = text; // the same line again is not said again
  ui.status.className = `call-status ${kind}`;
}

async function socketUrl() {
  const { ticket } = await api('/v1/assist/ticket', { method: 'POST', json: {} });
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/v1/assist?ticket=${encodeURIComponent(ticket)}`;
}

async function connect() {
  if (call.socket && call.socket.readyState <= WebSocket.OPEN) return call.socket;
  const url = await socketUrl();
  const socket = new WebSocket(url);
  call.socket = socket;
  socket.addEventListener('message', (ev) => onMessage(JSON.parse(ev.data)));
  socket.addEventListener('close', () => {
    if (call.socket !== socket) return;
    call.socket = null;
    if (call.active && call.callId) {
      ui.cards.classList.add('stale'); // what is shown may be out of date until the call is followed again
      retryLater();
    }
  });
  await new Promise((resolve, reject) => {
    socket.addEventListener('open', resolve, { once: true });
    socket.addEventListener('error', () => reject(new Error('无法连接通话辅助服务')), { once: true });
  });
  return socket;
}

/** Follow the call again after a dropped connection, sooner at first, then every 15 s (a server restart). */
function retryLater() {
  setStatus(`连接已断开，${Math.round(call.backoff / 1000)} 秒后重连…（显示的内容可能已过时）`, 'warn');
  clearTimeout(call.retry);
  call.retry = setTimeout(() => watch(call.callId), call.backoff);
  call.backoff = Math.min(call.backoff * 2, RECONNECT_MAX_MS);
}

async function watch(callId) {
  if (!callId) {
    setStatus('请输入通话编号', 'error');
    ui.idInput.focus();
    return;
  }
  if (!CALL_ID.test(callId)) {
    // the server's rule, said in words (a trial read a regular expression on the screen)
    setStatus('通话编号只能含英文字母、数字和 . _ : -（不能有空格或汉字），最长 100 个字符', 'error');
    ui.idInput.focus();
    return;
  }
  // Following a call: the id box lets go of the keyboard, so P pins instead of typing into it; focus goes to the
  // suggestions, not the page (an accessibility review)
  if (document.activeElement === ui.idInput || document.activeElement === $('#call-follow')) ui.cards.focus();
  if (call.callId && call.callId !== callId && call.socket?.readyState === WebSocket.OPEN) {
    call.socket.send(JSON.stringify({ type: 'unwatch', call_id: call.callId }));
  }
  if (call.callId !== callId) {
    resetCall();
    call.callId = callId;
    $('#call-waiting')?.remove();
    if (!restore()) adoptPins(callId);
    history.replaceState(null, '', `#call/${encodeURIComponent(callId)}`); // a reload follows the same call
  }
  clearTimeout(call.retry);
  setStatus('连接中…');
  try {
    const socket = await connect();
    socket.send(JSON.stringify({ type: 'watch', call_id: callId }));
    call.backoff = RECONNECT_MS;
    ui.cards.classList.remove('stale');
    setStatus(`正在跟随通话 ${callId}，等待转写…`, 'ok');
    // a mistyped or finished call waits for ever without a word (a trial): say what to check after a while
    clearTimeout(call.silence);
    call.silence = setTimeout(() => {
      if (call.callId === callId && !ui.transcript.childElementCount)
        setStatus(`还没有收到通话 ${callId} 的转写：请核对通话编号；通话开始说话后会自动显示`, 'warn');
    }, SILENCE_MS);
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      setStatus('API 密钥无效或未设置，无法进入通话辅助', 'error');
    } else if (call.active && call.callId === callId) {
      retryLater(); // the server is restarting or unreachable: keep trying
    } else {
      setStatus(err.message, 'error');
    }
  }
}

const savedKey = (callId) => `${SAVED}:${callId}`;

/** The call's pins, ticks and started countdowns, kept in this tab so a reload does not lose them. */
function save() {
  const pins = [...call.pins.values()].map((p) => ({
    item: p.item,
    since: p.since,
    done: [...p.done],
    started: [...(p.started ?? new Map())],
    met: [...(p.met ?? new Map())],
    dropped: [...(p.dropped ?? new Map())],
  }));
  const saved = { callId: call.callId, pinned: call.pinned?.item.sop_id ?? null, pins };
  try {
    // one entry per call: following another call and back finds its pins as they were (a trial lost a gas pin)
    sessionStorage.setItem(savedKey(call.callId), JSON.stringify(saved));
  } catch {
    // storage full or disabled: the call goes on without it
  }
}

function restore() {
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(savedKey(call.callId)) || 'null');
  } catch {
    saved = null;
  }
  if (!saved || saved.callId !== call.callId) return false;
  for (const p of saved.pins || []) {
    const pin = {
      item: p.item,
      since: p.since,
      done: new Set(p.done),
      started: new Map(p.started),
      met: new Map(p.met || []),
      dropped: new Map(p.dropped || []),
    };
    call.pins.set(p.item.sop_id, pin);
  }
  call.pinned = call.pins.get(saved.pinned) ?? null;
  renderPinned();
  return true;
}

/** A call this tab has not followed before: the SOPs agents pinned on it elsewhere (another tab, a colleague) come
    from the server, the last one pinned here (a trial's team lead following a call saw nothing pinned). */
async function adoptPins(callId) {
  let outcome;
  try {
    outcome = await api(`/v1/assist/${encodeURIComponent(callId)}`);
  } catch {
    return; // an unknown call (nobody pinned yet) or the server away: nothing to take over
  }
  const pins = (outcome.pins || []).filter((p) => p.item);
  if (call.callId !== callId || call.pins.size || !pins.length) return; // moved on, or pinned here meanwhile
  const topic = outcome.topic_started_ts ? outcome.topic_started_ts * 1000 : Number.POSITIVE_INFINITY;
  for (const p of pins) {
    const since = Math.min(p.ts * 1000, topic);
    call.pins.set(p.sop_id, { item: p.item, since, done: new Set(), started: new Map() });
  }
  const last = pins[pins.length - 1];
  call.pinned = call.pins.get(last.sop_id);
  renderPinned();
  save();
  announce(`已接上这通电话固定的 SOP：${last.item.title}（${last.who} 固定）`);
}

function resetCall() {
  call.items = [];
  call.pinned = null;
  call.pins = new Map();
  call.topicStarted = null;
  call.agentSaid = [];
  clear(ui.transcript);
  clear(ui.cards);
  ui.weak.hidden = true;
  renderPinned();
}

function onMessage(msg) {
  if (msg.call_id && msg.call_id !== call.callId) return;
  if (msg.type === 'transcript') {
    if (msg.topic_started_ts) call.topicStarted = msg.topic_started_ts * 1000;
    renderTranscript(msg.segments || []);
  } else if (msg.type === 'suggestions') renderSuggestions(msg);
  else if (msg.type === 'ended') setStatus(`通话 ${call.callId} 已结束`, '');
  else if (msg.type === 'error') setStatus(msg.message, 'error');
}

const pairs = (text) => {
  const t = String(text).replace(/[\s\p{P}]/gu, '');
  return new Set(Array.from({ length: Math.max(0, t.length - 1) }, (_, i) => t.slice(i, i + 2)));
};

/** Strike in 接下来问租客 what the agent has asked already: most of a question's character pairs in one of the agent's
    turns (a trial's list kept 「您现在在哪里？周边安全吗？」 after the agent had asked it). */
function markAsked() {
  const said = call.agentSaid.map(pairs);
  for (const li of ui.pinned.querySelectorAll('.ask-list li')) {
    const q = pairs(li.textContent);
    const asked = said.some((s) => {
      const shared = [...q].filter((p) => s.has(p)).length;
      return shared >= 4 && shared >= 0.6 * Math.min(q.size, s.size);
    });
    li.classList.toggle('asked', asked);
    li.title = asked ? '坐席已经问过' : '';
  }
}

function renderTranscript(segments) {
  call.agentSaid = segments.filter((s) => s.speaker === 'agent' && s.final).map((s) => s.text);
  markAsked();
  // The column scrolls, not the list: follow the latest words unless the agent has scrolled up to read back
  const col = ui.transcript.parentElement;
  const following = !col || col.scrollHeight - col.scrollTop - col.clientHeight < 40;
  clear(ui.transcript);
  for (const s of segments) {
    ui.transcript.appendChild(
      el(
        'li',
        {
          class: `turn turn-${s.speaker}${s.final ? '' : ' partial'}${s.topic_start ? ' topic-start' : ''}`,
          title: s.final ? '' : '正在说…',
        },
        el('span', { class: 'who' }, SPEAKER[s.speaker] || s.speaker),
        el('span', { class: 'said' }, s.text),
      ),
    );
  }
  setStatus(`正在跟随通话 ${call.callId}`, 'ok');
  if (col && following) col.scrollTop = col.scrollHeight;
}

/** The lowest figure of the cards above `index` (the first's, or 1 when it is missing). */
const above = (index) =>
  Math.min(call.items[0].match_confidence ?? 1, ...call.items.slice(1, index).map((it) => it.match_confidence ?? 1));

function suggestionCard(item, index, outranked = false) {
  const pin = el(
    'button',
    { type: 'button', class: 'btn small pin-btn', title: index === 0 ? '固定（P）' : '固定' },
    '固定',
  );
  pin.addEventListener('click', () => pinItem(item));
  const open = el('a', { href: `#sop/${encodeURIComponent(item.sop_id)}`, class: 'open-link' }, item.title);
  open.addEventListener('click', (ev) => {
    ev.preventDefault();
    pinItem(item);
  });
  const firstSection = item.sections?.[0];
  return el(
    'article',
    { class: `call-card${item.weak ? ' weak' : ''}${item.urgent ? ' urgent' : ''}`, dataset: { sopId: item.sop_id } },
    el(
      'header',
      { class: 'call-card-head' },
      el('span', { class: 'rank' }, index + 1),
      el('h3', null, open),
      item.urgent ? el('span', { class: 'badge urgent', title: '紧急处置：先保安全、按时限到场' }, '紧急') : null,
      el('span', { class: 'badge cat' }, item.category),
      item.weak
        ? el('span', { class: 'badge weak-badge', title: `置信度 ${percent(item.match_confidence)}` }, '匹配较弱')
        : index === 0 && item.urgent && ((item.match_confidence ?? 1) < CONFIDENT || outranked)
          ? // first for a danger in the tenant's words: a low figure there reads as doubt (a trial's 11 %), and one
            // below the next card's reads as a wrong order (a trial's 50 % above 76 %)
            el(
              'span',
              { class: 'badge conf', title: `话里有险情信号（置信度 ${percent(item.match_confidence)}）` },
              '险情优先',
            )
          : index > 0 && !call.items[0].urgent && (item.match_confidence ?? 0) >= above(index)
            ? // a figure above a card above it reads as a wrong order; the ranking is the better guide (search)
              el(
                'span',
                { class: 'badge cat', title: `备选（校准后的置信度 ${percent(item.match_confidence)}）` },
                '备选',
              )
            : el(
                'span',
                { class: confClass(item.match_confidence), title: confTitle(item.match_confidence) },
                percent(item.match_confidence),
              ),
      pin,
    ),
    firstSection
      ? el('p', { class: 'call-card-text' }, withRefs(firstSection.text.split('\n')[0], { plain: true }))
      : null,
  );
}

function renderSuggestions(msg) {
  const before = call.items[0]?.sop_id;
  const wasWeak = call.weak;
  call.items = msg.items || [];
  call.weak = Boolean(msg.weak);
  const first = call.items[0];
  if (first && first.sop_id !== before) {
    announce(`新建议：${first.title}${first.urgent ? '（紧急）' : ''}${call.weak ? '，匹配较弱' : ''}`);
  } else if (first && call.weak && !wasWeak) announce('匹配较弱：请先问清情况');
  clear(ui.cards);
  const next = Math.max(0, ...call.items.slice(1).map((it) => it.match_confidence ?? 0));
  const outranked = call.items.length > 1 && (call.items[0].match_confidence ?? 1) < next;
  call.items.forEach((item, i) => {
    ui.cards.appendChild(suggestionCard(item, i, outranked));
  });
  ui.weak.hidden = !(call.weak && call.items.length);
  ui.weak.textContent = '匹配较弱：租客说的内容和这些 SOP 都不太对得上，请先问清情况，或切回检索手动查找。';
  if (!call.items.length) ui.cards.appendChild(el('p', { class: 'muted' }, '还没有建议：等租客说明情况。'));
  if (msg.topic_changed) setStatus(`通话 ${call.callId}：话题已切换`, 'ok');
  emergencyAlert();
}

/** An emergency first among the suggestions while another SOP is pinned: said where the agent is reading, with a
    button to pin it (a trial's gas smell arrived mid-call and the pinned column kept the water-heater steps). */
function emergencyAlert() {
  const shown = ui.pinned.querySelector('.call-alert')?.dataset.sop;
  for (const old of ui.pinned.querySelectorAll('.call-alert')) old.remove();
  const first = call.items[0];
  if (!call.pinned || !first?.urgent || first.sop_id === call.pinned.item.sop_id) return;
  // A new emergency is shown from the top of the column, however far the agent had scrolled (a trial had copied a
  // script line low in the pinned SOP, and the notice arrived out of sight); it then stays at the top (call.css).
  if (shown !== first.sop_id) toColumnTop();
  ui.pinned.prepend(
    el(
      'div',
      { class: 'call-alert', role: 'alert', 'data-sop': first.sop_id },
      el('strong', null, '紧急：'),
      `「${first.title}」已排在建议第一位。`,
      el('button', { type: 'button', class: 'btn small danger', onclick: () => pinItem(first) }, '固定它（P）'),
    ),
  );
}

/** `recorded`: the server has the pin already (call mode's search pins through it). */
function pinItem(item, { recorded = false } = {}) {
  if (call.pinned?.item.sop_id === item.sop_id) return;
  // A call that goes back to an earlier topic gets that SOP's ticks and countdowns back, not a fresh list.
  const before = call.pins.get(item.sop_id);
  // A time limit counted from the call (接电话后 1 分钟内) runs from when the tenant raised this topic, not from
  // the pin: an agent who pins a minute in sees the minute gone.
  const since = Math.min(call.topicStarted ?? Date.now(), Date.now());
  call.pinned = before ?? { item, since, done: new Set(), started: new Map() };
  call.pins.set(item.sop_id, call.pinned);
  renderPinned();
  toColumnTop(); // a new pin is read from its title and first steps, not from where the last one was scrolled
  announce(`已固定：${item.title}`);
  save();
  if (recorded) return;
  // The call's outcome for the platform and supervisors (GET /v1/assist/<id>); a failure costs the agent nothing.
  api(`/v1/assist/${encodeURIComponent(call.callId)}/pins`, { method: 'POST', json: { sop_id: item.sop_id } }).catch(
    () => {},
  );
}

/** The pinned column scrolled back to its top. */
function toColumnTop() {
  const col = ui.pinned.closest('.call-col');
  if (col) col.scrollTop = 0;
}

function renderPinned() {
  clear(ui.pinned);
  if (!call.pinned) {
    ui.pinned.appendChild(
      el('p', { class: 'muted' }, '按 P 或点击「固定」，把建议的 SOP 固定在这里：步骤清单、时限倒计时、追问清单。'),
    );
    return;
  }
  ui.pinned.appendChild(pinnedView(call.pinned, scriptList));
  const others = otherPins(call.pins, call.pinned, pinItem);
  if (others) ui.pinned.prepend(others);
  markAsked();
  emergencyAlert();
}

function onKeydown(ev) {
  if (!call.active || ev.ctrlKey || ev.metaKey || ev.altKey || ev.isComposing) return;
  if (isEditable(ev.target)) return; // a ticked checkbox keeps P (a trial's P did nothing after a tick)
  if ((ev.key === 'p' || ev.key === 'P') && singleKeysOn()) {
    if (!call.items.length) return;
    ev.preventDefault();
    const first = call.items[0];
    // a weak first card asks for a second P (a trial pinned 续租办理 on a call about restaurants without a word)
    if (first.weak && call.pinned?.item.sop_id !== first.sop_id && call.weakAsked !== first.sop_id) {
      call.weakAsked = first.sop_id;
      setStatus(`第一条「${first.title}」匹配较弱：确认是这份 SOP 再按一次 P 固定`, 'error');
      announce('第一条匹配较弱，再按一次 P 固定');
      return;
    }
    call.weakAsked = null;
    pinItem(first);
  }
}

/** Show or hide call mode; `onToggle(active)` lets the console hide its search while a call is followed. */
export function initCall({ onToggle }) {
  const toggle = $('#call-toggle');
  ui = build();
  renderPinned();
  const set = (active) => {
    call.active = active;
    ui.panel.hidden = !active;
    toggle.setAttribute('aria-pressed', active ? 'true' : 'false');
    toggle.classList.toggle('active', active);
    onToggle(active);
    if (active) ui.lives.start();
    else ui.lives.stop();
    if (active) ui.idInput.focus();
    // out of call mode a reload stays out (a trial's address kept #call/<id>); back in, the call is in it again
    if (!active && location.hash.startsWith('#call/'))
      history.replaceState(null, '', location.pathname + location.search);
    if (active && call.callId) history.replaceState(null, '', `#call/${encodeURIComponent(call.callId)}`);
  };
  toggle.addEventListener('click', () => set(!call.active));
  document.addEventListener('keydown', onKeydown);
  // `/#call/<id>` follows that call, on load or when a link or the address bar changes the hash later.
  const followHash = () => {
    const fromHash = /^#call\/(.+)$/.exec(location.hash);
    if (!fromHash) return;
    set(true);
    ui.idInput.value = decodeURIComponent(fromHash[1]);
    watch(ui.idInput.value);
  };
  window.addEventListener('hashchange', followHash);
  followHash();
}
