/* Practice page: a round of drills like real calls. The prompt appears, the clock runs, the trainee searches with the
   real search and picks a SOP (↑↓ Enter); then picks the script line (1–4) or orders the steps (digits, Enter).
   Answers are checked on the server; the review of mistakes opens the right SOP. */

import { api } from '../lib/api.js';
import { $, clear, el } from '../lib/dom.js';
import { initKeyBar } from '../lib/keybar.js';
import { formatTs } from '../lib/text.js';
import { showSop } from './sop_view.js';
import { loadTasks } from './tasks.js';

const DEBOUNCE_MS = 150;
const ui = {
  start: $('#start'),
  size: $('#p-size'),
  category: $('#p-category'),
  startBtn: $('#p-start'),
  exams: $('#p-exams'),
  tasks: $('#p-tasks'),
  tasksHead: $('#p-tasks-head'),
  mine: $('#p-mine'),
  message: $('#p-message'),
  drill: $('#drill'),
  progress: $('#d-progress'),
  clock: $('#d-clock'),
  prompt: $('#d-prompt'),
  search: $('#d-search'),
  results: $('#d-results'),
  feedback: $('#d-feedback'),
  stage: $('#d-stage'),
  hint: $('#d-hint'),
  summary: $('#summary'),
  title: $('#s-title'),
  score: $('#s-score'),
  mistakes: $('#s-mistakes'),
  sop: $('#s-sop'),
  again: $('#s-again'),
  retake: $('#s-retake'),
};
const round = {
  session: null,
  progress: null,
  index: 0,
  hits: [],
  selected: -1,
  shownAt: 0,
  phase: 'idle',
  timer: null,
  tick: null,
};

function say(text, kind = 'error') {
  ui.message.hidden = !text;
  ui.message.className = `notice ${kind}`;
  ui.message.textContent = text;
}

function show(section) {
  for (const s of [ui.start, ui.drill, ui.summary]) s.hidden = s !== section;
}

async function loadStart() {
  try {
    const sops = await api('/v1/sops');
    const cats = [...new Set(sops.map((s) => s.category))].sort();
    clear(ui.category).append(
      el('option', { value: '' }, '全部分类'),
      ...cats.map((c) => el('option', { value: c }, c)),
    );
    const exams = await api('/v1/practice/exams');
    takeable = new Set(exams.filter((x) => !x.retired).map((x) => x.category));
    clear(ui.exams);
    if (!exams.length) ui.exams.append(el('li', { class: 'faint' }, '培训师还没有设置考试。'));
    for (const x of exams) {
      ui.exams.append(
        el(
          'li',
          { dataset: { category: x.category } },
          el('span', { class: 'badge cat' }, x.category),
          `及格线 ${Math.round(x.pass_mark * 100)}%，${x.size} 题${x.valid_days ? `，认证 ${x.valid_days} 天有效` : ''}` +
            (x.every_stage ? '，第二步须全对' : ''),
          certBadge(x),
          x.retired // its documents were all deleted: starting it fails (a trainer's trial)
            ? el('span', { class: 'faint' }, '（本分类的文档已全部删除，暂时不能考试）')
            : el('button', { type: 'button', class: 'btn small', onclick: () => begin(x.category, true) }, '参加考试'),
        ),
      );
    }
    await Promise.all([loadMine(), tasks()]);
  } catch (err) {
    say(err.message);
  }
}

/** Whether the signed-in person holds this exam's certification: valid (until when), expired, or not yet. */
function certBadge(x) {
  if (x.certified) {
    const until = x.expires_ts ? `，${formatDate(x.expires_ts)} 到期` : '';
    // A pass judged against an earlier mark still counts; say which mark it met, so 85 % beside 及格线 90 % reads right.
    const earlier =
      x.certified_mark != null && x.certified_mark !== x.pass_mark
        ? `，按当时及格线 ${Math.round(x.certified_mark * 100)}%`
        : '';
    const badge = el('span', { class: 'badge public' }, `已认证（${Math.round(x.score * 100)}%${earlier}${until}）`);
    if (!x.changed_since) return badge;
    // The procedures examined have changed since the pass: the certificate still counts, a retake is advised.
    const note = `认证后本分类 SOP 有 ${x.changed_since} 处变更，建议重考`;
    return el('span', {}, badge, ' ', el('span', { class: 'badge warn', title: note }, note));
  }
  if (x.expired) return el('span', { class: 'badge warn' }, '认证已过期，请重考');
  return el('span', { class: 'badge' }, '未认证');
}

const formatDate = (ts) => new Date(ts * 1000).toLocaleDateString('zh-CN');

/** The same day's exam not handed in is continued by 参加考试 (a trial saw only 未完成 after a reload), unless that
 * exam can no longer be taken (withdrawn, or its category's documents deleted: a trial was told to click it). */
const unfinished = (r) => {
  if (!r.exam || Date.now() / 1000 - r.ts >= 86400) return '（未完成）';
  return takeable.has(r.category) ? '（未完成：再点「参加考试」接着答）' : '（未完成：这门考试现在不能参加）';
};
let takeable = new Set(); // the categories whose exam can be started now (loadStart)

/** An exam's verdict; one at or above its mark that certified nobody (withdrawn, or its category lost its last SOP,
 * by then) says so (a trial saw it listed as 通过). */
function verdictBadge(r) {
  if (r.passed && r.certified === false)
    return el(
      'span',
      { class: 'badge verdict', title: '交卷时这门考试已撤下，或该分类已没有 SOP，不计认证' },
      '达到及格线，未计认证',
    );
  return el('span', { class: r.passed ? 'badge public verdict' : 'badge verdict' }, r.passed ? '通过' : '未通过');
}

/** 我的练习记录: the signed-in person's own latest rounds (GET /v1/practice/mine). */
async function loadMine() {
  const rounds = await api('/v1/practice/mine?limit=10');
  clear(ui.mine);
  if (!rounds.length) ui.mine.append(el('li', { class: 'faint' }, '还没有练习记录。'));
  for (const r of rounds) {
    const second =
      r.second_total && r.second_correct !== null ? `，第二步 ${r.second_correct} / ${r.second_total}` : '';
    // An exam not handed in keeps its right answers to itself (null): how many are answered shows instead
    const found =
      r.correct === null ? ` 已答 ${r.answered} / ${r.total}` : ` 找对 SOP ${r.correct} / ${r.total}${second}`;
    ui.mine.append(
      el(
        'li',
        { dataset: { sessionId: r.session_id } },
        `${formatTs(r.ts)} `,
        el('span', { class: 'badge cat' }, r.category || '全部分类'),
        r.exam ? el('span', { class: 'badge' }, '考试') : null,
        found,
        r.finished ? `，得分 ${Math.round(r.score * 100)}%` : unfinished(r),
        // An exam's verdict against its category's current pass mark.
        r.exam && r.passed !== null && r.passed !== undefined ? verdictBadge(r) : null,
      ),
    );
  }
}

/** A trainer's assignment starts its exam, or the practice round it asks for (its category, SOPs and size). */
const tasks = () => loadTasks(ui.tasks, ui.tasksHead, (a) => begin(a.category, a.kind === 'exam', a.assignment_id));

async function begin(category = ui.category.value, exam = false, assignmentId = null) {
  say('');
  try {
    const body = assignmentId && !exam ? { assignment_id: assignmentId } : { size: Number(ui.size.value), exam };
    if (category && !body.assignment_id) body.category = category;
    round.session = await api('/v1/practice/sessions', { method: 'POST', json: body });
  } catch (err) {
    say(err.message);
    return;
  }
  // 开始练习 on a task whose round is under way continues it where it stopped (not a new attempt)
  round.index = round.session.answered || 0;
  round.progress = null;
  show(ui.drill);
  nextDrill();
  if (round.session.resumed)
    say(`继续上次未完成的这一轮：已答完 ${round.index} 题，从第 ${round.index + 1} 题接着答。`, 'info');
}

/** One rounding for the clock and the result: tenths of a second. */
const seconds = (ms) => (ms / 1000).toFixed(1);

function startClock() {
  clearInterval(round.tick);
  round.shownAt = performance.now();
  const limit = round.session.drills[round.index].seconds;
  const draw = () => {
    const ms = performance.now() - round.shownAt;
    ui.clock.textContent = `${seconds(ms)} s`;
    ui.clock.classList.toggle('late', ms >= limit * 1000);
  };
  draw();
  round.tick = setInterval(draw, 100);
}

function nextDrill() {
  const drills = round.session.drills;
  if (round.index >= drills.length) {
    finish();
    return;
  }
  const d = drills[round.index];
  round.phase = 'find';
  round.hits = [];
  round.selected = -1;
  ui.progress.textContent = `第 ${round.index + 1} / ${drills.length} 题${round.session.exam ? '（考试）' : ''}`;
  ui.prompt.textContent = `租客：“${d.prompt}”`;
  // An exam is a phone call: nothing to copy, the trainee searches in their own words (a trial passed the find
  // stage by pasting each prompt into the search)
  const exam = round.session.exam;
  ui.prompt.classList.toggle('no-copy', exam);
  ui.search.placeholder = exam
    ? '用自己的关键词检索 SOP（考试中不能粘贴租客原话）'
    : '检索 SOP（可以直接改写租客的话）';
  ui.search.value = '';
  ui.search.disabled = false;
  clear(ui.results);
  ui.feedback.hidden = true;
  ui.stage.hidden = true;
  ui.hint.textContent = '输入检索词，↑↓ 选择，Enter 作答';
  if (d.pending) {
    // the SOP was picked before the round was left: its second stage is still to answer (a trial's agent took a
    // call with it on screen, and the task could never be finished)
    ui.search.disabled = true;
    ui.clock.textContent = '';
    ui.feedback.hidden = false;
    ui.feedback.className = 'feedback';
    ui.feedback.textContent = '这一题上次已找过 SOP，接着答第二步';
    const stage = d.pending;
    d.pending = null;
    showStage(stage);
    return;
  }
  startClock();
  ui.search.focus();
}

/** Whether a query copies the tenant's words: most of its characters in runs of four or more taken from the
 *  prompt, or the whole prompt. An exam asks for the trainee's own keywords (a phone call has no text to copy). */
function copiesPrompt(query, prompt) {
  const q = query.replace(/[\s\p{P}]/gu, '');
  const p = prompt.replace(/[\s\p{P}]/gu, '');
  if (p.length >= 4 && q.includes(p)) return true; // the whole prompt, however short (a trial typed 「煤气味好大」)
  if (q.length < 8) return false;
  const copied = new Array(q.length).fill(false);
  for (let i = 0; i + 4 <= q.length; i++) {
    if (p.includes(q.slice(i, i + 4))) for (let j = i; j < i + 4; j++) copied[j] = true;
  }
  return copied.filter(Boolean).length >= 0.8 * q.length;
}

async function runSearch() {
  const query = ui.search.value.trim();
  const d = round.session?.drills[round.index];
  if (!query || (round.session?.exam && d && copiesPrompt(query, d.prompt))) {
    round.hits = [];
    drawResults();
    if (query) ui.hint.textContent = '考试中请提炼关键词检索，不要照抄租客原话';
    return;
  }
  try {
    const data = await api('/v1/search', {
      method: 'POST',
      json: { query, top_k: 5, audience: 'agent', practice: true },
    });
    if (ui.search.value.trim() !== query || round.phase !== 'find') return;
    round.hits = data.results;
    round.selected = round.hits.length ? 0 : -1;
    drawResults();
  } catch (err) {
    ui.hint.textContent = err.message;
  }
}

function drawResults() {
  clear(ui.results);
  round.hits.forEach((h, i) => {
    ui.results.append(
      el(
        'li',
        {
          role: 'option',
          class: i === round.selected ? 'selected' : '',
          'aria-selected': i === round.selected ? 'true' : 'false',
          dataset: { sopId: h.sop_id },
          onclick: () => answerFind(h.sop_id),
        },
        el('span', { class: 'badge cat' }, h.category),
        h.title,
      ),
    );
  });
}

async function post(body) {
  return api(`/v1/practice/sessions/${encodeURIComponent(round.session.session_id)}/answers`, {
    method: 'POST',
    json: body,
  });
}

async function answerFind(sopId) {
  if (round.phase !== 'find') return;
  round.phase = 'wait';
  clearInterval(round.tick);
  const d = round.session.drills[round.index];
  const ms = Math.round(performance.now() - round.shownAt);
  let out;
  try {
    out = await post({ drill_id: d.drill_id, sop_id: sopId, ms });
    round.progress = out.session;
  } catch (err) {
    round.phase = 'find';
    ui.hint.textContent = err.message;
    return;
  }
  ui.search.disabled = true;
  ui.clock.textContent = `${seconds(out.ms)} s`; // the time recorded (the server may cap it): the result says the same
  ui.feedback.hidden = false;
  if (out.correct === null) {
    // an exam: recorded, judged after the last question
    ui.feedback.className = 'feedback';
    ui.feedback.textContent = `已作答（${seconds(out.ms)} 秒）。考试交卷后公布对错和答案`;
  } else {
    ui.feedback.className = `feedback ${out.correct ? 'right' : 'wrong'}`;
    ui.feedback.textContent = out.correct
      ? `正确！${out.expected_title}（${seconds(out.ms)} 秒）`
      : `不对。正确的是：${out.expected_title}`;
    if (!out.correct) ui.feedback.append(...scenes(out));
  }
  if (out.next) showStage(out.next);
  else afterDrill();
}

/** After a wrong pick: what the right SOP and the one picked are each for (a trial's practice said only the right
    title, nothing to learn the difference from). */
function scenes(out) {
  const rows = [];
  if (out.expected_scene) rows.push(el('p', { class: 'scene' }, '正确的 SOP 适用于：', out.expected_scene));
  if (out.answered_title && out.answered_scene) {
    rows.push(el('p', { class: 'scene' }, `你选的「${out.answered_title}」适用于：`, out.answered_scene));
  }
  return rows;
}

function showStage(next) {
  round.phase = next.kind;
  round.stage = next;
  ui.stage.hidden = false;
  const items = next.kind === 'script' ? next.options : next.steps;
  clear(ui.stage).append(
    el('p', {}, el('strong', {}, next.question)),
    el(
      'ol',
      {},
      items.map((t) => el('li', {}, t)),
    ),
  );
  if (next.kind === 'order') {
    const input = el('input', {
      id: 'd-order',
      type: 'text',
      inputmode: 'numeric',
      placeholder: '如 2 1 3 或 213',
      'aria-label': '步骤顺序',
      maxLength: 60,
      'data-steps': String(items.length),
    });
    ui.stage.append(
      el('label', { for: 'd-order' }, '按正确顺序输入上面的序号（如 213 或 2 1 3），Enter 提交：'),
      input,
    );
    input.focus();
    ui.hint.textContent = '输入序号顺序后按 Enter';
  } else {
    ui.hint.textContent = `按 1–${items.length} 选择${next.question.includes('怎么回答') ? '回答' : '话术'}`;
    ui.stage.tabIndex = -1;
    ui.stage.focus();
  }
}

async function answerStage(body) {
  const d = round.session.drills[round.index];
  round.phase = 'wait';
  let out;
  try {
    out = await post({ drill_id: d.drill_id, stage: round.stage.kind, ...body });
    round.progress = out.session;
  } catch (err) {
    round.phase = round.stage.kind;
    ui.hint.textContent = err.message;
    return;
  }
  const lis = ui.stage.querySelectorAll('li');
  if (out.correct === null) {
    lis[body.choice]?.classList.add('chosen');
    ui.stage.append(el('p', { class: 'feedback' }, '已作答'));
    afterDrill();
    return;
  }
  if (out.expected_choice == null && out.expected_order == null) {
    // an exam's last question after a wrong pick: the stage came from the SOP picked, none of it right
    ui.stage.append(el('p', {}, 'SOP 选错了，这一步也不得分'));
  } else if (round.stage.kind === 'script') {
    lis[out.expected_choice]?.classList.add('right');
    if (!out.correct) lis[body.choice]?.classList.add('wrong');
  } else if (!out.correct) {
    ui.stage.append(el('p', {}, '正确顺序：', out.expected_order.map((i) => i + 1).join(' → ')));
  }
  ui.stage.append(
    el('p', { class: out.correct ? 'feedback right' : 'feedback wrong' }, out.correct ? '答对了' : '答错了'),
  );
  afterDrill();
}

function afterDrill() {
  round.phase = 'next';
  ui.hint.textContent = '按 Enter 进入下一题';
  ui.search.blur();
  // after the step-ordering stage the hint sat just below the fold at 1366×768 (a trial)
  ui.hint.scrollIntoView({ block: 'nearest' });
}

async function finish() {
  show(ui.summary);
  clear(ui.mistakes);
  ui.sop.hidden = true;
  let review = [];
  try {
    review = await api(`/v1/practice/sessions/${encodeURIComponent(round.session.session_id)}`);
  } catch (err) {
    ui.score.textContent = err.message;
    return;
  }
  const right = review.filter((r) => r.correct).length;
  const secondRight = review.filter((r) => r.followup_correct).length;
  const second = review.filter((r) => r.followup_correct !== null).length;
  ui.title.textContent = round.session.exam ? `考试完成：${round.session.category}` : '练习完成';
  // a second stage after a wrong pick scores nothing whatever is chosen (a trial read 1 / 6 as its own mistakes)
  const lost = review.filter((r) => r.correct === false && r.followup_correct === false).length;
  // only an exam's rule: in practice the right SOP's second stage follows a wrong pick and counts (a trial)
  const lostText = lost && round.session.exam ? `（其中 ${lost} 题 SOP 选错，第二步不得分）` : '';
  const secondText = second ? `，第二步答对 ${secondRight} / ${second}${lostText}` : '';
  ui.score.textContent = `找对 SOP ${right} / ${review.length} 题${secondText}`;
  const p = round.progress;
  // A failed exam can be sat again from here (a trial found only 再练一轮, which starts a practice round)
  ui.retake.hidden = !(round.session.exam && p?.finished && !p.certified);
  ui.retake.dataset.category = round.session.category || '';
  if (p?.finished && p.score !== null) {
    const pct = (x) => `${Math.round(x * 100)}%`;
    const exam = round.session.exam;
    const mark = round.session.pass_mark;
    const verdict = !exam
      ? null
      : p.certified
        ? el('span', { class: 'badge public', id: 's-verdict' }, `已通过，获得「${round.session.category}」认证`)
        : el('span', { class: 'badge staff', id: 's-verdict' }, mark === null ? '未设及格线，不计认证' : '未通过');
    const everyText = round.session.every_stage ? '，第二步须全对' : '';
    const markText = exam && mark !== null ? `（及格线 ${pct(mark)}${everyText}）` : '';
    // Under the every-stage rule a score at the mark fails on one wrong second stage: say which rule failed it.
    const stagesFailed =
      exam && round.session.every_stage && !p.certified && p.score >= (mark ?? 2) && secondRight < second;
    if (stagesFailed) verdict.textContent = '未通过：本考试要求第二步全部答对';
    ui.score.append(el('br'), el('span', { class: 'total' }, `得分 ${pct(p.score)}${markText} `, verdict));
  }
  // A mistake in either stage is reviewed: the wrong SOP, or the right SOP with the wrong script line or step order.
  const wrong = review.filter((r) => r.correct === false || r.followup_correct === false);
  if (!wrong.length) ui.mistakes.append(el('li', { class: 'faint' }, '没有错题。'));
  // an order under its label, or nothing
  const steps = (label, cls, order) =>
    order
      ? [
          el('div', { class: 'faint' }, label),
          el(
            'ol',
            { class: cls },
            order.map((t) => el('li', {}, t)),
          ),
        ]
      : [];
  for (const r of wrong) {
    const what = r.correct === false ? '正确 SOP：' : '话术或步骤顺序答错，复习：';
    ui.mistakes.append(
      el(
        'li',
        { class: 'mistake' },
        `“${r.prompt}” → ${what}${r.expected_title} `,
        el('button', { type: 'button', class: 'btn small', onclick: () => openSop(r.expected_sop_id) }, '查看 SOP'),
        // the SOP picked, beside the right one (a trial's review named only the right one)
        r.answered_title ? el('div', { class: 'faint chosen-sop' }, `你选的 SOP：${r.answered_title}`) : null,
        r.right_line ? el('div', { class: 'faint' }, `正确话术：${r.right_line}`) : null,
        // what was chosen beside it, to coach from (a trial's review showed only the right order, unlabelled)
        r.chosen_line ? el('div', { class: 'faint chosen-line' }, `你选的话术：${r.chosen_line}`) : null,
        ...steps('正确顺序：', 'right-order', r.right_order),
        ...steps('你排的顺序：', 'chosen-order', r.chosen_order),
      ),
    );
  }
  loadStart();
  ui.again.focus();
}

const openSop = (sopId) => showSop(ui.sop, sopId);

function onKeydown(ev) {
  if (ev.isComposing || ev.keyCode === 229) return;
  if (round.phase === 'find' && ev.target === ui.search) {
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      if (!round.hits.length) return;
      const n = round.hits.length;
      round.selected = (round.selected + (ev.key === 'ArrowDown' ? 1 : n - 1)) % n;
      drawResults();
    } else if (ev.key === 'Enter' && round.selected >= 0) {
      ev.preventDefault();
      answerFind(round.hits[round.selected].sop_id);
    }
  } else if (round.phase === 'script' && /^[1-9]$/.test(ev.key)) {
    const choice = Number(ev.key) - 1;
    if (choice < round.stage.options.length) answerStage({ choice });
  } else if (round.phase === 'order' && ev.key === 'Enter' && ev.target.id === 'd-order') {
    ev.preventDefault();
    // "3 1 2", "3,1,2" or, with fewer than ten steps, "312": each digit is one step.
    const typed = ev.target.value.trim();
    const parts =
      /^\d+$/.test(typed) && Number(ev.target.dataset.steps) < 10 ? typed.split('') : typed.match(/\d+/g) || [];
    const order = parts.map((x) => Number(x) - 1);
    const n = Number(ev.target.dataset.steps);
    // Each step once, by its number: anything else is a typing slip, said here, not a wrong answer or a raw 422
    const valid = order.length === n && new Set(order).size === n && order.every((i) => i >= 0 && i < n);
    if (!valid) {
      ui.hint.textContent = `请把 1–${n} 每个序号各输入一次（共 ${n} 个），如 ${[...Array(n).keys()].map((i) => i + 1).join(' ')}`;
      ev.target.select();
      return;
    }
    answerStage({ order });
  } else if (round.phase === 'next' && ev.key === 'Enter') {
    ev.preventDefault();
    round.index += 1;
    nextDrill();
  } else if (!ui.start.hidden && ev.key === 'Enter' && ev.target.tagName !== 'BUTTON' && ev.target.id !== 'api-key') {
    ev.preventDefault();
    begin();
  }
}

document.addEventListener('keydown', onKeydown);
// An exam's prompt cannot be copied nor pasted into the search (a phone call has no text to copy)
ui.prompt.addEventListener('copy', (ev) => {
  if (round.session?.exam) ev.preventDefault();
});
ui.search.addEventListener('paste', (ev) => {
  if (!round.session?.exam) return;
  ev.preventDefault();
  ui.hint.textContent = '考试中不能粘贴：请用自己的关键词检索';
});
ui.search.addEventListener('input', () => {
  if (round.phase === 'find') ui.hint.textContent = '输入检索词，↑↓ 选择，Enter 作答'; // no stale warning (a trial)
  clearTimeout(round.timer);
  round.timer = setTimeout(runSearch, DEBOUNCE_MS);
});
ui.startBtn.addEventListener('click', () => begin());
ui.again.addEventListener('click', () => {
  show(ui.start);
  tasks().catch((err) => say(err.message)); // a round just finished may have done an assignment
});
ui.retake.addEventListener('click', async () => {
  await begin(ui.retake.dataset.category, true);
  if (!ui.message.hidden) show(ui.start); // refused (the exam was withdrawn): the reason shows above the start form
});

const keyBar = initKeyBar({
  messages: { missing: '请输入您的坐席密钥' },
  onRole: (info) => {
    if (!info.error && info.role !== 'public') {
      say(''); // a key that works ends the "needs a key" warning at once
      loadStart();
    } else say('练习需要坐席或培训师密钥（右上角「API 密钥」）。', 'warn');
  },
});
show(ui.start);
keyBar.check();
