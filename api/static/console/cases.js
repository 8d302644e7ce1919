/* Agent console: the 待接入 queue of tenants' hand-over cases — take a case, see the conversation and the suggested
 * SOP, reply (the reply appears in the tenant's chat widget), close. Polls while the page is open. 已关闭 lists the
 * latest closed cases, to read back a conversation after a tenant calls again (a trial's closed case vanished). */

import { announce } from '../lib/announce.js';
import { api } from '../lib/api.js';
import { clear, controlKey, el, findControl, isEditable } from '../lib/dom.js';
import { learning } from '../lib/learning.js';
import { alertNew, alertToggle } from './alert.js';

const POLL_MS = 4000;
const STATUS = { open: '待接入', taken: '处理中', closed: '已关闭' };
const RATED = { 1: '满意', '-1': '不满意' };
// No webhook configured: nothing to say (未对接外部工单系统 on every case read as an error to a supervisor's agents)
const DELIVERY = { pending: '推送重试中', delivered: '已推送', failed: '推送失败', none: '' };
const AUTHOR = { tenant: '租客', bot: '智能客服', agent: '坐席', system: '系统' };

// `body` is redrawn on every poll; `form` (the reply being typed) is kept while the same case stays taken.
const view = {
  current: null,
  timer: null,
  toggle: null,
  alert: null, // 提醒：开/关: new cases ring (alert.js)
  panel: null,
  list: null,
  detail: null,
  body: null,
  form: null,
  notice: null, // the latest refusal of an action on a case ({caseId, note}): shown until another action works
  drafts: new Map(), // case id → a reply not sent when the case went to another agent (kept, shown, restored)
  role: null,
  me: null, // the caller's name (whoami): a case another agent holds offers no reply box
  closing: null,
  closingTimer: null,
  others: null, // how many other held cases have unread messages (said when it grows)
  said: new Map(), // case_id → how many messages of the open case a screen reader has been told of
  seen: new Map(), // case_id → the updated_at the agent last saw (a later one on a case they hold: a new message)
  history: false, // 已关闭 shown instead of the queue
  tabs: null,
  filter: null, // narrows 已关闭 by phone, room, name, number or question
  asked: 0, // the latest 已关闭 lookup sent
  heading: null, // the panel's heading: focus goes there when it opens and after a case is closed
};

/** A case the caller holds that changed since they last looked: the tenant wrote again. A case seen for the first
 * time (the page was just opened) is taken as read. */
function unread(c) {
  if (c.status !== 'taken' || (view.me && c.taken_by !== view.me)) return false;
  if (!view.seen.has(c.case_id)) view.seen.set(c.case_id, c.updated_at);
  const looking = c.case_id === view.current && !view.panel.hidden;
  return !looking && c.updated_at > view.seen.get(c.case_id);
}

const time = (ts) => new Date(ts * 1000).toLocaleString('zh-CN', { hour12: false });
/** The number the tenant was given (widget-handover.js caseNumber): the case id's first six characters. */
const caseNumber = (c) => c.case_id.slice(0, 6).toUpperCase();

const asked = (c) => c.urgent_question || c.question; // the words that raised it to urgent, else the first
/** 待接入, or 处理中 with who holds the case. */
const statusText = (c) =>
  `${STATUS[c.status] || c.status}${c.status === 'taken' && c.taken_by ? `（${holder(c.taken_by)}）` : ''}`;

/** An account's name as is; a service key (`agent:c1419c`) as its role and fingerprint. */
function holder(by) {
  const [role, print] = by.split(':');
  if (print === undefined) return by;
  return `${role === 'trainer' ? '培训师' : '坐席'}密钥 ${print}`;
}

/** How long a case nobody has taken has waited, marked once past its priority's first-reply target (a trial's
 * lift emergency waited 6 minutes against 5 with nothing on the queue to say so). */
function waited(c, targets) {
  if (c.status !== 'open') return null;
  const s = Math.max(0, Date.now() / 1000 - c.created_at);
  const text = s < 60 ? `已等 ${Math.round(s)} 秒` : `已等 ${Math.floor(s / 60)} 分钟`;
  const late = targets?.[c.priority] !== undefined && s > targets[c.priority];
  return el('span', { class: `case-wait${late ? ' case-overdue' : ''}`, text: late ? `${text} · 已超时` : text });
}

function caseItem(c, targets) {
  const name = c.contact?.name || '';
  const room = c.contact?.room || '';
  // the phone's last digits tell apart two closed cases a lookup by 尾号 found (a trial opened each to see)
  const digits = String(c.contact?.phone || '').replace(/\D/g, '');
  const tail = c.status === 'closed' && digits.length >= 4 ? ` 尾号${digits.slice(-4)}` : '';
  return el(
    'li',
    { class: `case-item${c.case_id === view.current ? ' active' : ''}`, dataset: { caseId: c.case_id } },
    el(
      'button',
      // The case's conversation comes into view (on a busy queue it opened below the list, behind the reply box)
      { type: 'button', class: 'case-open', onclick: () => openCase(c.case_id).then(showDetail).then(opened) },
      c.priority === 'urgent' ? el('span', { class: 'case-urgent', text: '紧急' }) : null,
      c.complaint ? el('span', { class: 'case-complaint', text: '投诉' }) : null, // a supervisor's trial: looked normal
      unread(c) ? el('span', { class: 'case-unread', text: '新消息' }) : null,
      // The tenant's rating of a closed case: a supervisor calls the unhappy ones back (a trial found no way to)
      c.rating ? el('span', { class: `case-rating ${c.rating > 0 ? 'good' : 'bad'}`, text: RATED[c.rating] }) : null,
      el('span', { class: 'case-status', text: statusText(c) }),
      el('span', { class: 'case-question', text: asked(c), title: c.question }), // the emergency, if one raised it
      el('span', {
        class: 'case-meta',
        text:
          `编号 ${caseNumber(c)} · ` +
          (c.status === 'closed' && c.closed_at
            ? `${room} ${name}${tail} · 关闭于 ${time(c.closed_at)}${c.taken_by ? ` · ${holder(c.taken_by)}` : ''}`
            : `${room} ${name} · ${time(c.created_at)}`),
      }),
      waited(c, targets),
    ),
  );
}

/** The key's role (from the key bar): only staff have a queue, so a page without a key asks for none. */
export function setCasesRole(role, name = null) {
  view.role = role;
  view.me = name;
  if (!view.toggle) return;
  if (role === 'agent' || role === 'trainer') refreshQueue().catch(() => {});
  else view.toggle.hidden = view.alert.hidden = true;
}

async function refreshQueue() {
  if (view.role !== 'agent' && view.role !== 'trainer') return;
  let data;
  try {
    data = await api('/v1/cases');
  } catch (err) {
    view.toggle.hidden = err.status === 401 || err.status === 403; // tenants (no key) have no queue
    view.alert.hidden = view.toggle.hidden;
    return;
  }
  view.toggle.hidden = false;
  view.alert.hidden = false;
  alertNew(data.cases);
  const waiting = data.cases.filter((c) => c.status === 'open').length;
  const fresh = data.cases.filter(unread).length;
  view.toggle.textContent = `待接入 ${waiting}${fresh ? ` · 新消息 ${fresh}` : ''}`;
  view.toggle.classList.toggle('has-waiting', waiting > 0 || fresh > 0);
  const urgent = data.cases.filter((c) => c.priority === 'urgent' && c.status === 'open').length;
  view.toggle.classList.toggle('has-urgent', urgent > 0);
  // An agent working in another window sees it in the tab's title (a supervisor's trial: only the red counter changed)
  view.title = view.title ?? document.title;
  const counts = [urgent ? `紧急 ${urgent}` : '', waiting ? `待接入 ${waiting}` : ''].filter(Boolean).join(' · ');
  document.title = counts ? `（${counts}）${view.title}` : view.title;
  // A tenant wrote again in a case the agent holds but is not looking at (the open one is said by sayNew)
  const others = data.cases.filter((c) => unread(c) && c.case_id !== view.current).length;
  if (others > (view.others ?? others)) announce(`其他请求有新消息：${others} 条`);
  view.others = others;
  if (view.history) return refreshHistory();
  keepingFocus(view.list, () => {
    clear(view.list).append(...data.cases.map((c) => caseItem(c, data.targets_s)));
    if (!data.cases.length) view.list.append(el('li', { class: 'muted', text: '暂无转人工请求' }));
  });
}

/** The latest closed cases (newest first), narrowed by what the agent types: a number, a phone number or its last
 * digits, a room, a name, a question's words (the server looks through all of them, not only the latest 200). */
async function refreshHistory() {
  const words = view.filter.value.trim();
  view.asked += 1; // a slower answer to earlier typing is not shown over a newer one
  const asked = view.asked;
  const data = await api(`/v1/cases?status=closed${words ? `&q=${encodeURIComponent(words)}` : ''}`);
  if (asked !== view.asked) return;
  clear(view.list).append(...data.cases.map((c) => caseItem(c)));
  if (!data.cases.length)
    view.list.append(el('li', { class: 'muted', text: words ? '没有符合的已关闭请求' : '暂无已关闭的请求' }));
}

/** 进行中 | 已关闭 above the list. */
function tabs() {
  const tab = (label, history) =>
    el('button', {
      type: 'button',
      class: `case-tab${view.history === history ? ' active' : ''}`,
      'aria-pressed': String(view.history === history),
      dataset: { history: String(history) },
      text: label,
      onclick: () => {
        view.history = history;
        view.filter.hidden = !history;
        for (const b of view.tabs.querySelectorAll('.case-tab')) {
          const on = b.dataset.history === String(history);
          b.classList.toggle('active', on);
          b.setAttribute('aria-pressed', String(on));
        }
        refreshQueue().catch(() => {});
      },
    });
  return el('div', { class: 'case-tabs', role: 'group' }, tab('进行中', false), tab('已关闭', true));
}

/** The tenant's contact details on one or two lines (王五 · 3栋1101 · 电话 137…): a trial's 1366×768 screen had the
 * five-row list of them, and the suggested SOP under it, below the reply box. */
function contactLines(c) {
  const contact = c.contact || {};
  const rows = [
    ['姓名', contact.name],
    ['房号', contact.room],
    ['电话', contact.phone],
    ['方便联系', contact.best_time],
    ...Object.entries(contact.extra || {}),
  ].filter(([, v]) => v);
  return el(
    'p',
    { class: 'case-contact' },
    rows.map(([k, v]) => el('span', { class: 'case-field' }, el('span', { class: 'muted', text: `${k} ` }), v)),
  );
}

function suggested(c) {
  if (!c.sop_id) return el('p', { class: 'muted', text: '没有匹配的 SOP' });
  const search = () => {
    const box = document.getElementById('search');
    box.value = asked(c);
    box.dispatchEvent(new Event('input'));
  };
  return el(
    'p',
    { class: 'case-sop' },
    '建议 SOP：',
    el('strong', { text: c.sop_title || c.sop_id }),
    ' ',
    el('button', {
      type: 'button',
      class: 'btn case-view-sop',
      onclick: () => learning.openSop(c.sop_id),
      text: '查看 SOP',
    }),
    ' ',
    el('button', { type: 'button', class: 'btn', onclick: search, text: '检索此问题' }),
  );
}

function replyForm(c) {
  const hint = el('span', { class: 'case-hint faint', id: `reply-hint-${c.case_id}`, text: 'Ctrl+Enter 发送' });
  const text = el('textarea', {
    class: 'case-reply',
    maxLength: 1000,
    rows: 3,
    placeholder: '回复租客…（Ctrl+Enter 发送）',
    'aria-label': '回复租客', // not the placeholder alone, which goes once the agent types (an accessibility review)
    'aria-describedby': hint.id,
  });
  text.value = view.drafts.get(c.case_id) || ''; // taken back: what was typed before is there again
  view.drafts.delete(c.case_id);
  const note = el('span', { class: 'case-note', role: 'status' });
  // Ctrl/Cmd+Enter sends, as in the chat tools agents use; Enter alone keeps a new line.
  text.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey) && !ev.isComposing) {
      ev.preventDefault();
      text.form?.requestSubmit();
    }
  });
  const send = async (ev) => {
    ev.preventDefault();
    if (!text.value.trim()) return;
    try {
      await api(`/v1/cases/${encodeURIComponent(c.case_id)}/messages`, { method: 'POST', json: { text: text.value } });
      text.value = '';
      await openCase(c.case_id);
    } catch (err) {
      note.textContent = err.message;
    }
  };
  const lines = el('div', { class: 'case-lines' });
  if (c.sop_id) scriptLines(c.sop_id, text, lines);
  return el(
    'form',
    { class: 'case-form', onsubmit: send, dataset: { caseId: c.case_id } },
    lines,
    text,
    el('button', { class: 'btn primary', text: '发送' }),
    hint,
    note,
  );
}

/** The suggested SOP's script lines (话术), each a button that puts the exact wording into the reply where the cursor
 * is: the agent answers in writing with the words the company trains for the call. */
async function scriptLines(sopId, text, box) {
  let sop;
  try {
    sop = await api(`/v1/sops/${encodeURIComponent(sopId)}`);
  } catch {
    return; // the reply works without them
  }
  // Lines of a staff-only ([内部]) script section are guidance, not words for a tenant (a security review sent one)
  const said = sop.sections.filter((s) => s.kind === 'script' && !s.internal).flatMap((s) => s.scripts || []);
  if (!said.length) return;
  const insert = (line) => {
    const at = text.selectionStart ?? text.value.length;
    const end = text.selectionEnd ?? at;
    text.value = text.value.slice(0, at) + line + text.value.slice(end);
    text.focus();
    text.setSelectionRange(at + line.length, at + line.length);
  };
  box.append(
    el('span', { class: 'case-lines-title', text: '话术（点击插入回复）：' }),
    ...said
      .slice(0, 8)
      .map((line) =>
        el('button', { type: 'button', class: 'case-line', title: line, onclick: () => insert(line), text: line }),
      ),
  );
}

/** In place of the reply box on a case another agent holds. */
function heldBy(c) {
  return el(
    'div',
    { class: 'case-form case-held', dataset: { caseId: c.case_id } },
    el('p', { class: 'muted', text: `${c.taken_by} 正在处理这个请求，只有接手的人能回复租客。` }),
    view.drafts.has(c.case_id)
      ? el('p', {
          class: 'case-draft',
          text: `您没发出的回复（已保留，接回后可继续发送）：${view.drafts.get(c.case_id)}`,
        })
      : null,
    takeOver(c),
  );
}

/** Taking over a case another agent holds: a deliberate click, never a side effect. */
const takeOver = (c) =>
  el('button', {
    type: 'button',
    class: 'btn case-take-over',
    // Asked first: the other agent may be typing to the tenant right now (a supervisor's trial lost a reply that way)
    onclick: () => {
      if (window.confirm(`${c.taken_by || '其他坐席'} 正在处理这个请求。仍要接管？接管后对方不能再回复租客。`)) {
        act(c, 'take', { force: true });
      }
    },
    text: '仍要接管',
  });

async function act(c, action, json = {}) {
  try {
    await api(`/v1/cases/${encodeURIComponent(c.case_id)}/${action}`, { method: 'POST', json });
  } catch (err) {
    // 409: closed meanwhile, or another agent took it first (they may be talking to the tenant): taking it over is
    // a deliberate second click.
    const over = err.status === 409 && action === 'take' && c.status !== 'closed' ? takeOver(c) : null;
    // An emergency the tenant reported in the case has no reply yet: closing anyway is a deliberate second click
    const closeAnyway =
      err.status === 409 && action === 'close' && !json.force && err.message.includes('仍要关闭')
        ? el(
            'button',
            { type: 'button', class: 'btn danger', onclick: () => act(c, 'close', { force: true }) },
            '仍要关闭',
          )
        : null;
    // The case as it is now, above it the refusal (a trial's detail still said 待接入 with a live 接入 button)
    if (err.status === 409) await openCase(c.case_id).catch(() => {});
    const note = el('p', { class: 'case-error', role: 'alert', text: err.message }, over, closeAnyway);
    view.notice = { caseId: c.case_id, note }; // kept over the queue's refresh (a re-check: it vanished after 2 s)
    view.body.prepend(note);
    refreshQueue().catch(() => {}); // the queue shows who holds it now (it kept showing 待接入 · 接入)
    return;
  }
  view.notice = null;
  await openCase(c.case_id);
  await refreshQueue();
  // The button is gone: focus the reply box after 接入, the queue's heading after 关闭 (it fell to the page)
  if (action === 'take') {
    showDetail(); // the case's head, contact and SOP in sight above the reply box, not the queue
    view.form?.querySelector?.('.case-reply')?.focus({ preventScroll: true });
  }
  if (action === 'close') {
    announce('已关闭，租客会看到会话已结束');
    view.heading.focus();
  }
}

const CONFIRM_MS = 5000;
const CLOSE = '关闭';
const CONFIRM_CLOSE = '确认关闭？租客将看到会话已结束';

/** Closing ends the tenant's conversation: the first click asks, a second one within 5 s closes; the button counts
 * the seconds down and says when the question lapsed (a trial: it reverted without a word). The question survives the
 * view's refresh: `view.closing` names the case being asked about, `view.closingUntil` when it lapses. */
function closeButton(c) {
  const asking = view.closing === c.case_id;
  const button = el('button', {
    class: `btn case-close${asking ? ' danger' : ''}`,
    text: asking ? confirmLabel() : CLOSE,
  });
  button.addEventListener('click', () => {
    if (view.closing === c.case_id) {
      stopAsking();
      act(c, 'close');
      return;
    }
    view.closing = c.case_id;
    view.closingUntil = Date.now() + CONFIRM_MS;
    button.textContent = confirmLabel();
    button.classList.add('danger');
    clearInterval(view.closingTimer);
    view.closingTimer = setInterval(tickClose, 250);
  });
  return button;
}

function confirmLabel() {
  const left = Math.max(1, Math.ceil((view.closingUntil - Date.now()) / 1000));
  return `${CONFIRM_CLOSE}（${left} 秒内再点一次）`;
}

function stopAsking() {
  view.closing = null;
  clearInterval(view.closingTimer);
}

function tickClose() {
  const shown = view.body.querySelector('.case-close');
  if (Date.now() < view.closingUntil) {
    if (shown) shown.textContent = confirmLabel();
    return;
  }
  stopAsking();
  if (shown) {
    shown.textContent = CLOSE;
    shown.classList.remove('danger');
  }
  announce('未关闭：确认已超时');
}

/** A screen reader hears the tenant's new messages in the case the agent has open (the view is redrawn on every poll,
    so a live region inside it would say nothing or everything). */
function sayNew(c) {
  const before = view.said.get(c.case_id);
  view.said.set(c.case_id, c.messages.length);
  if (before === undefined) return;
  const fresh = c.messages.slice(before).filter((m) => m.author === 'tenant');
  if (fresh.length) announce(`租客回复：${fresh.map((m) => m.text).join('；')}`);
}

/** Redraws `box` (every poll redraws the queue and the open case) with keyboard focus kept on the same control: the
    same case's button in the list, the same button of the case (a re-check: focus fell to the page every 4 s). */
function keepingFocus(box, draw) {
  const at = document.activeElement;
  const key = at && at !== box && box.contains(at) ? controlKey(at, box) : null;
  draw();
  findControl(key, box)?.focus({ preventScroll: true });
}

const opened = () => announce(`已打开请求：${view.body.querySelector('h3')?.textContent || ''}`);
const showDetail = () => {
  view.detail?.scrollIntoView({ block: 'start' });
  fitConversation();
};

const heldByOther = (c) => Boolean(c.status === 'taken' && c.taken_by && view.me && c.taken_by !== view.me);

async function openCase(caseId) {
  view.current = caseId;
  const c = await api(`/v1/cases/${encodeURIComponent(caseId)}`);
  view.seen.set(c.case_id, c.updated_at); // read: the agent sees the conversation
  const delivery = DELIVERY[c.delivery.status] ?? c.delivery.status;
  const head = el(
    'div',
    { class: 'case-head' },
    el('h3', { text: c.urgent_question ? `${c.urgent_question}（首次提问：${c.question}）` : c.question }),
    el('span', { class: 'case-status', text: delivery ? `${statusText(c)} · ${delivery}` : statusText(c) }),
    c.status === 'open'
      ? el('button', { class: 'btn primary case-take', onclick: () => act(c, 'take'), text: '接入' })
      : null,
    // Not on a case another agent holds (the server refuses an agent's close there; supervisors may close any)
    c.status !== 'closed' && (view.role === 'trainer' || !heldByOther(c)) ? closeButton(c) : null,
  );
  sayNew(c);
  const messages = el(
    'ol',
    { class: 'case-messages', 'aria-label': '会话记录' },
    c.messages.map((m) => {
      // The chat before the hand-over is the widget's copy, sent with the form: its bot lines are what the tenant's
      // page says it was told, not a record of this service (a tenant can send anything).
      const reported = m.author === 'bot' && m.created_at === c.created_at;
      const who = reported ? '智能客服（租客端记录，未核实）' : AUTHOR[m.author] || m.author;
      return el(
        'li',
        { class: `case-msg by-${m.author}${reported ? ' reported' : ''}` },
        el('b', { text: `${who}：` }),
        m.text,
      );
    }),
  );
  // The conversation right under the question, its newest line in sight (a trial found the tenant's new message
  // below the contact block, the SOP row and the scripts at 1366×768); an agent reading back keeps the place.
  const before = view.body.querySelector('.case-messages');
  const reading = before && before.scrollHeight - before.scrollTop - before.clientHeight > 40;
  const kept = before?.dataset.caseId === c.case_id && reading ? before.scrollTop : null;
  messages.dataset.caseId = c.case_id;
  // Who and which SOP (a line each) above it, so that all of it is in sight beside the reply box at 1366×768
  const panelTop = view.panel.scrollTop; // drawn again, the body is empty for a moment: the panel keeps its place
  keepingFocus(view.body, () => clear(view.body).append(head, contactLines(c), suggested(c), messages));
  view.panel.classList.add('has-case'); // the queue above it shrinks to a few lines
  if (view.notice?.caseId === c.case_id && c.status !== 'closed') view.body.prepend(view.notice.note);
  messages.scrollTop = kept ?? messages.scrollHeight;
  view.panel.scrollTop = panelTop;
  // Another agent holds the case: no reply box (the server refuses the reply), but who holds it and 仍要接管
  const theirs = heldByOther(c);
  const replying = view.form?.tagName === 'FORM' && view.form.dataset.caseId === c.case_id;
  const keep = replying && c.status === 'taken' && !theirs;
  if (!keep) {
    const draft = view.form?.querySelector?.('.case-reply')?.value.trim();
    if (draft) view.drafts.set(view.form.dataset.caseId, draft);
    view.form?.remove();
    view.form = theirs ? heldBy(c) : c.status === 'taken' ? replyForm(c) : null;
    if (view.form) view.detail.append(view.form);
  }
  fitConversation(kept);
  requestAnimationFrame(() => fitConversation(kept)); // and once laid out (the panel may have just opened)
}

const MIN_CONVERSATION = 60; // px: two short lines

/** The conversation ends where the reply box begins, scrolled to its newest line (or where the agent reads back): a
    supervisor's trial at 1366×768 read the newest of six messages hidden behind the script lines. */
function fitConversation(kept = null) {
  const list = view.body.querySelector('.case-messages');
  if (!list || !view.form || view.panel.hidden) return;
  // the reply box sticks to the panel's foot: what of the list it covers, the list gives up (the panel's scroll
  // moves as the list shrinks, so measured again), down to two lines
  const covered = () => Math.ceil(list.getBoundingClientRect().bottom - view.form.getBoundingClientRect().top + 8);
  for (let i = 0; i < 3 && covered() > 0 && list.clientHeight > MIN_CONVERSATION; i++) {
    list.style.maxHeight = `${Math.max(list.clientHeight - covered(), MIN_CONVERSATION)}px`;
  }
  list.scrollTop = kept ?? list.scrollHeight;
}

/** Open the queue with focus on its heading (it was 57 Tab stops from the toggle), or close it back to the toggle. */
function showPanel(open) {
  view.panel.hidden = !open;
  view.toggle.setAttribute('aria-expanded', String(open));
  document.body.classList.toggle('cases-open', open); // the SOP drawer opens beside the panel
  if (open) {
    refreshQueue();
    view.heading.focus();
  } else view.toggle.focus();
}

export function initCases() {
  view.toggle = el('button', {
    type: 'button',
    id: 'cases-toggle',
    class: 'cases-toggle',
    hidden: true,
    text: '待接入',
    'aria-expanded': 'false',
    'aria-controls': 'cases',
  });
  view.list = el('ul', { class: 'case-list' });
  view.tabs = tabs();
  view.filter = el('input', {
    type: 'search',
    class: 'case-filter',
    maxlength: '64',
    placeholder: '按电话（尾号）、房号、姓名、编号或问题查找',
    'aria-label': '查找已关闭的请求',
    hidden: true,
  });
  view.filter.addEventListener('input', () => refreshHistory().catch(() => {}));
  view.body = el('div', { class: 'case-body' });
  view.heading = el('h2', { text: '转人工请求', tabindex: '-1' });
  view.detail = el('div', { class: 'case-detail' }, view.body);
  view.panel = el(
    'aside',
    { id: 'cases', class: 'cases-panel', hidden: true, 'aria-label': '转人工请求' },
    el(
      'div',
      { class: 'cases-head' },
      view.heading,
      el('button', { type: 'button', class: 'btn small cases-close', text: '收起', onclick: () => showPanel(false) }),
    ),
    view.tabs,
    view.filter,
    view.list,
    view.detail,
  );
  view.toggle.addEventListener('click', () => showPanel(view.panel.hidden));
  // Escape closes the panel (the SOP drawer first, when it is open: the page's own Escape does that)
  view.panel.addEventListener('keydown', (ev) => {
    // Not from the reply box or the filter (Escape there is the agent's, and ends an IME candidate list)
    if (ev.key !== 'Escape' || ev.isComposing || isEditable(ev.target)) return;
    if (!document.getElementById('sop-view')?.hidden) return;
    ev.stopPropagation();
    showPanel(false);
  });
  view.alert = alertToggle();
  document.querySelector('.topbar-spacer').after(view.toggle, view.alert);
  document.body.append(view.panel);
  const tick = async () => {
    await refreshQueue().catch(() => {});
    if (view.current && !view.panel.hidden) await openCase(view.current).catch(() => {});
    view.timer = setTimeout(tick, POLL_MS);
  };
  tick();
}
