/* The training-needs report (培训缺口): per person, per SOP and per category, weekly trends (server-rendered SVG),
   every exam attempt, who acknowledged which change, exam pass marks per category, CSV export. */

import { api, downloadFile } from '../lib/api.js';
import { $, clear, el } from '../lib/dom.js';
import { roleLabel } from '../lib/labels.js';
import { formatTs, today } from '../lib/text.js';
import { assignmentsPanel, assignPracticeOf } from './assignments.js';
import { examForm } from './exam_form.js';
import { notice, spinnerNote } from './messages.js';
import { box } from './sections.js';
import { agentTable } from './service.js';
import { state, summaryOf } from './state.js';
import { onTabShown } from './tabs.js';

const out = () => $('#training-report');
const pct = (v) => (v === null || v === undefined ? '—' : `${Math.round(v * 100)}%`);
const secs = (ms) => (ms === null || ms === undefined ? '—' : `${(ms / 1000).toFixed(1)} s`);

function table(id, title, head, rows, empty) {
  return box({ id, title, count: `${rows.length} 行`, head: head.map((h) => [h]), rows, empty, wide: true });
}

const row = (...cells) =>
  el(
    'tr',
    null,
    cells.map((c) => el('td', null, c)),
  );

/** The window the tab reports on (a trial could not produce "this week's training": it was always 12 weeks). */
function trainingRange() {
  const days = Number($('#training-range')?.value || 84);
  return { since: Math.floor(Date.now() / 1000 - days * 86400) };
}

async function trend(person) {
  const query = person ? { ...trainingRange(), person } : trainingRange();
  const resp = await api('/v1/practice/report/trend.svg', { raw: true, query });
  const svg = await resp.text();
  // A data: URL (allowed by the page's CSP for images): the SVG is shown as an image, never run as a document.
  return el('img', {
    class: 'trend',
    alt: person ? `${person} 的每周趋势` : '每周趋势',
    src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`,
  });
}

// One person's latest rounds: exams with their result against the pass mark, failed attempts included.
async function sessionsOf(person) {
  let rounds;
  try {
    rounds = await api('/v1/practice/report/sessions', { query: { person, limit: 20 } });
  } catch (err) {
    return el('p', { class: 'muted' }, `无法读取练习记录：${err.message}`);
  }
  const verdict = (x) => {
    if (!x.exam) return '—';
    if (!x.finished) return '未完成';
    if (x.passed === null) return '未设及格线';
    if (x.passed && x.certified === false) return uncertified();
    return el('span', { class: `badge ${x.passed ? 'public' : 'overdue'}` }, x.passed ? '通过' : '未通过');
  };
  const detail = el('div', { id: 'training-session-review' });
  const review = (x) =>
    el(
      'button',
      {
        type: 'button',
        class: 'btn small',
        title: '每道题的问法、此人选的 SOP 和正确的 SOP',
        onclick: () => showReview(detail, person, x),
      },
      '每题',
    );
  const list = table(
    'training-sessions',
    `${person} 最近的练习和考试`,
    ['时间', '类型', '分类', '找对 SOP', '得分', '考试结果', ''],
    rounds.map((x) =>
      row(
        formatTs(x.ts),
        x.exam ? '考试' : '练习',
        x.category || '全部',
        `${x.correct} / ${x.total}`,
        x.score === null ? '未完成' : pct(x.score),
        verdict(x),
        review(x),
      ),
    ),
    `${person} 还没有练习或考试记录。`,
  );
  return [list, detail];
}

/** One person's hand-over cases in the same window: first replies, closures, satisfaction and complaint closure, so
    a person's training and their service figures read on one page (a training lead's trial found them in two tabs). */
async function serviceOf(person) {
  try {
    const r = await api('/v1/reports/service', { query: trainingRange() });
    return agentTable(
      r.agents.find((a) => a.name === person),
      `${person} 的在岗服务（转人工工单）`,
    );
  } catch (err) {
    return el('p', { class: 'muted' }, `无法读取服务指标：${err.message}`);
  }
}

/** A second stage answered wrong: what the person chose beside what was right (a training lead's trial saw only ✗). */
function secondStage(d) {
  if (d.followup_correct !== false) return d.followup_correct ? '✓' : '—';
  const chosen = d.chosen_line || (d.chosen_order ? d.chosen_order.join(' → ') : null);
  const right = d.right_line || (d.right_order ? d.right_order.join(' → ') : null);
  return el(
    'div',
    { class: 'second-stage' },
    el('div', null, '✗'),
    chosen ? el('div', { class: 'faint' }, `选了：${chosen}`) : null,
    right ? el('div', null, `应为：${right}`) : null,
  );
}

// One round question by question, for coaching: what was asked, what the person chose, what was right.
async function showReview(target, person, round) {
  let items;
  try {
    items = await api(`/v1/practice/sessions/${encodeURIComponent(round.session_id)}`);
  } catch (err) {
    clear(target).append(notice('error', `无法读取这一轮：${err.message}`));
    return;
  }
  const titleOf = (id) => (id ? summaryOf(id)?.title || id : '—');
  const mark = (ok) => (ok === null || ok === undefined ? '—' : ok ? '✓' : '✗');
  clear(target).append(
    table(
      'training-session-items',
      `${person} · ${formatTs(round.ts)} ${round.exam ? '考试' : '练习'}（${round.category || '全部'}）每题`,
      ['问法', '此人选的 SOP', '正确的 SOP', '找对', '第二步'],
      items.map((d) =>
        row(
          d.prompt,
          d.answered ? titleOf(d.answered_sop_id) : '未作答',
          d.answered ? d.expected_title || titleOf(d.expected_sop_id) : '—',
          d.answered ? mark(d.correct) : '—',
          secondStage(d),
        ),
      ),
      '这一轮没有题目。',
    ),
  );
  target.scrollIntoView({ block: 'nearest' });
}

// What each column counts, on hover (a trial found most of them unexplained)
const HEADS = [
  ['姓名', ''],
  ['角色', ''],
  ['练习题数', '练习和考试中答过的题数（合计）'],
  ['找对率', '练习和考试中第一步找对 SOP 的比例（第二步另见「第二步正确率」）'],
  ['用时中位数', '找到 SOP 的用时中位数'],
  ['第二步正确率', '选话术、排步骤的正确率'],
  ['在岗检索', '控制台上报的检索次数'],
  ['检索成功率', '检索后查看或复制了结果的比例（其余为重搜或放弃）'],
  ['复制话术用时', '从第一次按键到复制话术的用时中位数'],
  ['未确认变更', '还需确认的 SOP 变更数'],
  ['培训任务', '布置给此人、还未完成的任务（括号里是已过截止日期的）'],
  ['认证', '有效认证；设了考试的分类里，所选时间范围内未通过、未完成或（坐席）未参加的也列出'],
];

/** A person's exams where they hold no valid certification: failed (best score), unfinished, or not sat. */
function examGaps(p, attempts, examCats) {
  if (p.role !== 'agent' && p.role !== 'trainer') return '';
  const mine = attempts.filter((x) => x.who === p.name && !p.certified.includes(x.category));
  const failed = new Map();
  const unfinished = new Set();
  for (const x of mine) {
    if (x.finished && x.passed === false) failed.set(x.category, Math.max(failed.get(x.category) ?? 0, x.score ?? 0));
    else if (!x.finished) unfinished.add(x.category);
  }
  const sat = new Set(mine.map((x) => x.category));
  // Not sat: agents only (trainers may sit an exam, and then their result shows, but nobody expects them to)
  const notSat =
    p.role === 'agent'
      ? examCats.filter((c) => !p.certified.includes(c) && !sat.has(c) && !p.expired?.includes(c))
      : [];
  const open = [...unfinished].filter((c) => !failed.has(c));
  return [
    failed.size ? `未通过：${[...failed].map(([c, best]) => `${c}（最高 ${pct(best)}）`).join('、')}` : '',
    open.length ? `未完成：${open.join('、')}` : '',
    notSat.length ? `未参加：${notSat.join('、')}` : '',
  ]
    .filter(Boolean)
    .join('；');
}

function people(r, examCats) {
  return table(
    'training-people',
    '人员',
    [
      ...HEADS.map(([text, title]) => (title ? el('span', { title }, text) : text)),
      '练习和考试中常找错的 SOP',
      // Feedback on the documents, not a measure of the person (a trial read it among the performance columns)
      el('span', { title: '此人对检索结果点 👎 的比例：反映文档的问题，不是个人表现' }, '对 SOP 的点踩比例'),
    ],
    r.people.map((p) => {
      const name = el(
        'button',
        { type: 'button', class: 'linkish', title: '查看此人的每周趋势和练习、考试记录' },
        p.name,
      );
      name.addEventListener('click', async () => {
        const chart = $('#training-trend');
        const [image, rounds, service] = await Promise.all([trend(p.name), sessionsOf(p.name), serviceOf(p.name)]);
        clear(chart).append(image, service, ...[rounds].flat());
        // the panel is screens above the table: brought into view, or the click seemed to do nothing (a trial)
        chart.scrollIntoView({ block: 'start' });
      });
      // one per line: titles hold 「、」 themselves (a trial could not tell where one ended)
      const missed = Object.entries(p.missed_sops || {}).map(([id, n]) =>
        el('div', null, `${summaryOf(id)?.title || id}×${n}`),
      );
      // A need found becomes a task in one click: a practice round on these SOPs for this person
      if (missed.length && (p.role === 'agent' || p.role === 'trainer')) {
        const ids = Object.keys(p.missed_sops).filter((id) => summaryOf(id));
        missed.push(
          el(
            'button',
            {
              type: 'button',
              class: 'btn small',
              title: '给此人布置一轮只练这些 SOP 的练习',
              onclick: () => assignPracticeOf(p.name, ids, loadTraining),
            },
            '布置练习',
          ),
        );
      }
      return row(
        el('span', { class: 'nowrap' }, name),
        el('span', { class: 'nowrap' }, roleLabel(p.role)), // 培训师 wrapped over two lines at 1366 px (a trial)
        p.drills,
        pct(p.accuracy),
        p.too_fast
          ? el(
              'span',
              {
                class: 'badge overdue too-fast',
                title: `${p.too_fast} 题用时不足 1 秒：多半不是在练习页上作答，用时和正确率不可信`,
              },
              `${secs(p.median_ms)} ⚠ ${p.too_fast} 题过快`,
            )
          : secs(p.median_ms),
        pct(p.followup_accuracy),
        p.searches,
        pct(p.search_success),
        secs(p.median_copy_ms),
        p.unacknowledged_changes,
        p.assignments_open
          ? el(
              'span',
              { class: p.assignments_overdue ? 'badge overdue' : 'badge' },
              `${p.assignments_open} 项未完成${p.assignments_overdue ? `（${p.assignments_overdue} 项逾期）` : ''}`,
            )
          : '—',
        [
          p.certified
            .map((c) => (p.changed_since?.[c] ? `${c}（认证后 ${p.changed_since[c]} 处变更，建议重考）` : c))
            .join('、'),
          p.expired?.length ? `已过期：${p.expired.join('、')}` : '',
          examGaps(p, r.exams, examCats),
        ]
          .filter(Boolean)
          .join('；') || '—',
        missed.length ? missed : '—',
        pct(p.thumbs_down_rate),
      );
    }),
    '还没有人练习或上报检索。',
  );
}

function sops(r) {
  return table(
    'training-sops',
    'SOP（最薄弱的在前）',
    [
      'SOP',
      '分类',
      '练习题数',
      '找对率',
      '第二步正确率',
      '用时中位数',
      '常被误选为',
      // What each on-the-job column counts (a trial read 100 % beside 0 % as a contradiction)
      el(
        'span',
        { title: '控制台上报的检索结局里，落在这份 SOP 上的查看或复制所占比例（其余为重搜、放弃）' },
        '在岗检索成功率',
      ),
      el('span', { title: '查询日志中把这份 SOP 排在第一的坐席检索次数' }, '日志检索（排第一）'),
      el(
        'span',
        { title: '这些检索之后坐席查看或复制了这份 SOP 的比例（复制下面其他 SOP 的话术不算）' },
        '其后查看/复制',
      ),
      '点踩',
    ],
    r.sops.map((s) =>
      row(
        s.title,
        s.category,
        s.drills,
        pct(s.accuracy),
        pct(s.followup_accuracy),
        secs(s.median_ms),
        Object.entries(s.confused_with)
          .map(([k, v]) => `${summaryOf(k)?.title || k}×${v}`)
          .join('、') || '—',
        pct(s.search_success),
        s.logged_searches,
        pct(s.logged_success),
        s.thumbs_down,
      ),
    ),
    '暂无数据。',
  );
}

function categories(r) {
  return table(
    'training-categories',
    '分类',
    ['分类', '练习题数', '找对率', '用时中位数', '已认证'],
    r.categories.map((c) =>
      row(c.category, c.drills, pct(c.accuracy), secs(c.median_ms), c.certified.join('、') || '—'),
    ),
    '暂无数据。',
  );
}

/** An exam at or above its mark that certified nobody: withdrawn, or its category lost its last SOP, by then (a
 * trial saw such an attempt listed as 通过). */
const uncertified = () =>
  el('span', { class: 'badge', title: '交卷时这门考试已撤下，或该分类已没有 SOP，不计认证' }, '达到及格线，未计认证');

/** Every exam started in the report's window, newest first: who passed, who failed and who has not finished. */
function exams(r) {
  const verdict = (x) =>
    !x.finished
      ? el('span', { class: 'badge' }, '未完成')
      : x.passed === null
        ? '—'
        : x.passed && x.certified === false
          ? uncertified()
          : el(
              'span',
              { class: x.passed ? 'badge public' : 'badge staff' },
              // failed at the mark under the every-second-stage rule: say which rule (a trial read 80 % of 80 % 未通过)
              x.passed ? '通过' : x.every_stage && x.score >= x.pass_mark ? '未通过（第二步须全对）' : '未通过',
            );
  return table(
    'training-exams',
    '考试记录',
    ['时间', '人员', '分类', '题数', '得分', '及格线', '结果'],
    [...r.exams]
      .reverse()
      .map((x) => row(formatTs(x.ts), x.who, x.category, x.size, pct(x.score), pct(x.pass_mark), verdict(x))),
    '期间没有人参加考试。',
  );
}

function changes(list) {
  return table(
    'training-changes',
    '变更确认',
    ['变更', '时间', '发布人', '已确认', '未确认'],
    list.map((c) =>
      row(
        // a rollback's card and the cards it withdrew say so (a trial read three cards for one net change)
        el(
          'span',
          null,
          `${c.title} v${c.version}`,
          c.undoes?.length
            ? el('span', { class: 'badge' }, `更正（撤回 ${c.undoes.map((v) => `v${v}`).join('、')} 的修改）`)
            : null,
          c.withdrawn_by ? el('span', { class: 'badge' }, `已由 v${c.withdrawn_by} 回滚撤回`) : null,
        ),
        formatTs(c.ts),
        c.author,
        c.acknowledged.map((a) => a.name).join('、') || '—',
        c.pending.join('、') || '—',
      ),
    ),
    '还没有需要确认的变更。',
  );
}

export async function loadTraining() {
  const box = out();
  clear(box).append(spinnerNote('正在生成培训缺口报告…'));
  try {
    const [r, status, set] = await Promise.all([
      api('/v1/practice/report', { query: trainingRange() }),
      api('/v1/changes/status'),
      api('/v1/practice/exams').catch(() => []),
    ]);
    const cats = [...new Set(state.sops.map((s) => s.category))].sort();
    const chart = el('div', { id: 'training-trend', class: 'box wide' }, await trend());
    const examCats = set.map((e) => e.category);
    let table = people(r, examCats);
    const refreshPeople = async () => {
      const fresh = people(await api('/v1/practice/report', { query: trainingRange() }), examCats);
      table.replaceWith(fresh);
      table = fresh;
    };
    clear(box).append(
      examForm(cats),
      assignmentsPanel(cats, examCats, () => refreshPeople().catch(() => {})),
      chart,
      table,
      sops(r),
      categories(r),
      exams(r),
      changes(status),
    );
  } catch (err) {
    clear(box).append(notice('error', `无法生成培训缺口报告：${err.message}`));
  }
}

async function exportCsv() {
  try {
    await downloadFile('/v1/practice/report.csv', `kb-training-report-${today()}.csv`, { query: trainingRange() });
  } catch (err) {
    clear(out()).append(notice('error', `导出失败：${err.message}`));
  }
}

export function initTraining() {
  $('#training-refresh').addEventListener('click', loadTraining);
  $('#training-range').addEventListener('change', loadTraining);
  $('#training-csv').addEventListener('click', exportCsv);
  onTabShown('training', loadTraining);
}
