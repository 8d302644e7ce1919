/* 服务指标: how fast agents first answer the tenants the chat handed over, closures, the queue waiting now and the
   chat's self-service share (GET /v1/reports/service), for the last 1, 7 or 30 days. */
import { api } from '../lib/api.js';
import { $, clear, el } from '../lib/dom.js';
import { notice, spinnerNote } from './messages.js';
import { box } from './sections.js';
import { onTabShown } from './tabs.js';

const pct = (v) => (v === null || v === undefined ? '—' : `${Math.round(v * 100)}%`);
const PRIORITY = { urgent: '紧急', normal: '普通' };

/** Seconds as an agent reads a wait: 45 秒, 12 分钟, 2.5 小时. */
export function duration(s) {
  if (s === null || s === undefined) return '—';
  if (s < 60) return `${Math.round(s)} 秒`;
  // Under ten minutes to the second: 169 s read as 「2 分钟」 against a 5-minute target (a supervisor's trial)
  if (s < 600 && Math.round(s) % 60) return `${Math.floor(Math.round(s) / 60)} 分 ${Math.round(s) % 60} 秒`;
  if (s < 3600) return `${Math.floor(s / 60)} 分钟`;
  return `${(s / 3600).toFixed(1)} 小时`;
}

const cells = (f) => [
  f.cases,
  f.answered,
  pct(f.within_target),
  duration(f.median_first_reply_s),
  duration(f.p90_first_reply_s),
  f.closed,
  f.closed_after_one_reply,
  duration(f.median_close_s),
  f.rated ? `${pct(f.satisfaction)}（${f.rated} 个评价）` : '—',
];
const HEAD = [
  '工单',
  '已回复',
  '目标内首次回复*',
  '首次回复中位数',
  'P90',
  '已关闭',
  '一次回复即关闭',
  '关闭用时中位数',
  '满意度（租客评价）',
];
const NOTE = '* 占已回复的工单和已超时仍未回复的工单；还在目标时间内等待的不计。';
/** A person's complaints and how many are closed (complaint closure per agent, as a training lead asked). */
export const complaintCell = (a) => (a.complaints ? `${a.complaints_closed} / ${a.complaints}` : '—');
const COMPLAINTS = '投诉已关闭 / 投诉';

/** One agent's row of the service figures, with the head it goes under (the training tab's person view). */
export function agentTable(a, title) {
  return box({
    id: 'training-person-service',
    title,
    count: a ? `${a.cases} 个工单` : '0 个工单',
    head: [...HEAD, COMPLAINTS].map((h) => [h]),
    rows: a
      ? [
          el(
            'tr',
            null,
            [...cells(a), complaintCell(a)].map((c) => el('td', null, c)),
          ),
        ]
      : [],
    empty: '这段时间没有接转人工工单。',
    wide: true,
  });
}
const row = (label, f) =>
  el(
    'tr',
    null,
    [label, ...cells(f)].map((c) => el('td', null, c)),
  );

function render(r) {
  const targets = Object.entries(r.targets_s)
    .map(([p, s]) => `${PRIORITY[p] || p} ${duration(s)}`)
    .join('，');
  const w = r.waiting;
  const queue = el(
    'p',
    { id: 'service-waiting', class: w.over_target ? 'notice warn' : 'muted' },
    w.cases
      ? `现在有 ${w.cases} 个工单等待首次回复（紧急 ${w.urgent}），最久已等 ${duration(w.oldest_wait_s)}，` +
          `${w.over_target} 个已超过目标时间。`
      : '现在没有等待首次回复的工单。',
  );
  const chat = el(
    'p',
    { id: 'service-chat', class: 'muted' },
    r.chat_questions
      ? // 转人工 N read as N cases beside a table of fewer (a trial): these are replies that offered a person
        `租客聊天共 ${r.chat_questions} 个问题，自助答复 ${pct(r.chat_self_served)}，` +
          `未能答复、建议转人工 ${r.chat_handed_over} 个（租客不一定提交了工单，工单见下表）` +
          (r.chat_voted_down
            ? `，答复后租客点了「没帮助」${r.chat_voted_down} 个（不算自助答复，请到缺口报告查看）`
            : '') +
          (r.chat_followed_by_case ? `，答复后 10 分钟内又转人工 ${r.chat_followed_by_case} 个（不算自助答复）` : '') +
          (r.chat_low_confidence
            ? `，置信度低的答复 ${r.chat_low_confidence} 个（不算自助答复，缺口报告里标为「已答·置信度低」，请核对）`
            : '') +
          '。'
      : '这段时间聊天没有问题。',
  );
  const rows = [row('全部', r.overall), ...Object.entries(r.by_priority).map(([p, f]) => row(PRIORITY[p] || p, f))];
  // The tenants' complaints among them: their response and closure (a training lead looked for complaint closure)
  if (r.complaints?.cases) rows.push(row('其中投诉', r.complaints));
  const agents = r.agents.map((a) =>
    el(
      'tr',
      null,
      [a.name, ...cells(a), complaintCell(a)].map((c) => el('td', null, c)),
    ),
  );
  return [
    queue,
    chat,
    el('p', { class: 'faint' }, NOTE),
    box({
      id: 'service-overall',
      title: `转人工工单（首次回复目标：${targets}）`,
      count: `${r.overall.cases} 个`,
      head: [[''], ...HEAD.map((h) => [h])],
      rows,
      empty: '没有工单',
      wide: true,
    }),
    box({
      id: 'service-agents',
      title: '按接单坐席',
      count: `${agents.length} 人`,
      head: [['坐席'], ...[...HEAD, COMPLAINTS].map((h) => [h])],
      rows: agents,
      empty: '这段时间没有坐席接单。',
      wide: true,
    }),
  ];
}

export async function loadService() {
  const out = $('#service-report');
  const days = Number($('#service-range').value);
  clear(out).append(spinnerNote('正在统计服务指标…'));
  try {
    const r = await api('/v1/reports/service', { query: { since: Date.now() / 1000 - days * 86400 } });
    clear(out).append(...render(r));
  } catch (err) {
    clear(out).append(notice('error', `无法读取服务指标：${err.message}`));
  }
}

export function initService() {
  $('#service-refresh').addEventListener('click', loadService);
  $('#service-range').addEventListener('change', loadService);
  onTabShown('service', loadService);
}
