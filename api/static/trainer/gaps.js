/* The gap report: unanswered questions grouped by meaning, what agents taught search (GET /v1/learned), the most
   asked ones, feedback, SOPs never found and SOPs overdue for review (GET /v1/reports/gaps, or as CSV). */

import { api, downloadFile } from '../lib/api.js';
import { clear, el } from '../lib/dom.js';
import { learning } from '../lib/learning.js';
import { formatTs, today } from '../lib/text.js';
import { selectDoc } from './docs.js';
import { runHitTest } from './hittest.js';
import { notice, spinnerNote } from './messages.js';
import { box } from './sections.js';
import { state, summaryOf, ui } from './state.js';
import { onTabShown, showTab } from './tabs.js';

function gapRange() {
  const v = ui.gapRange.value;
  if (v === 'today') {
    const d = new Date();
    d.setHours(0, 0, 0, 0);
    return { since: Math.floor(d.getTime() / 1000) };
  }
  return { since: Math.floor(Date.now() / 1000 - Number(v) * 86400) };
}

let gapsToken = 0;

// A report older than this is reloaded when its tab is shown again: searches made meanwhile (hit tests, agents'
// calls) belong in it.
const GAPS_FRESH_MS = 15000;
let gapsLoadedAt = 0;

// The server answers with its stored report at once and refreshes one older than a minute in the background: a
// report older than this is shown with its age and asked for again a moment later.
const STORED_STALE_S = 60;
const REFRESH_AFTER_MS = 3000;
// ... up to this many times: a refresh can take longer than one wait on a busy server (a trainer's trial saw
// 「共 0 次提问（统计于 839 秒前，正在更新…）」 stay until 刷新 was clicked).
const REFRESH_TRIES = 10;

export async function loadGaps(tries = 0) {
  const again = tries > 0;
  state.gapsLoaded = true;
  gapsLoadedAt = Date.now();
  const token = ++gapsToken;
  if (!again) {
    ui.gapSummary.textContent = '';
    clear(ui.gapReport).appendChild(spinnerNote('正在生成报告…'));
  }
  try {
    const range = gapRange();
    const [r, taught] = await Promise.all([api('/v1/reports/gaps', { query: range }), learnedSince(range.since)]);
    if (token !== gapsToken) return;
    renderGaps(r, taught);
    const age = Date.now() / 1000 - r.computed_at;
    if (age > STORED_STALE_S) {
      const more = tries < REFRESH_TRIES;
      ui.gapSummary.append(`（统计于 ${Math.round(age)} 秒前${more ? '，正在更新…' : ''}）`);
      if (more) setTimeout(() => token === gapsToken && loadGaps(tries + 1), REFRESH_AFTER_MS);
    }
  } catch (err) {
    if (token !== gapsToken) return;
    clear(ui.gapReport).appendChild(notice('error', `无法生成缺口报告：${err.message}`));
  }
}

const titleOf = (id) => summaryOf(id)?.title || id;

export function docLink(id, label) {
  const b = el('button', { type: 'button', class: 'linkish', title: `在「文档」中打开 ${id}` }, label || titleOf(id));
  b.addEventListener('click', () => {
    showTab('docs');
    selectDoc(id);
  });
  return b;
}

/** Opens the question in the hit test, as tenants see the knowledge base when only tenants asked it. */
function queryLink(q, tenantsOnly = false) {
  const view = tenantsOnly ? '租客视角' : '坐席视角';
  const b = el('button', { type: 'button', class: 'linkish', title: `在「命中测试」中以${view}测试这个问题` }, q);
  b.addEventListener('click', () => {
    showTab('hittest');
    ui.hitQuery.value = q;
    ui.hitAudience.value = tenantsOnly ? 'public' : 'agent';
    runHitTest();
  });
  return b;
}

function unanswered(r) {
  const rows = r.unanswered.map((g) =>
    el(
      'tr',
      null,
      el(
        'td',
        null,
        g.urgent
          ? el(
              'span',
              { class: 'badge warn urgent', title: '问题里有险情（煤气味、漏水、被困等）：请先补上处置' },
              '紧急',
            )
          : null,
        queryLink(g.representative, g.tenants > 0 && g.tenants >= g.count),
        g.tenants > 0
          ? el('span', { class: 'badge public', title: '提问的租客（匿名访客）数' }, `租客 ${g.tenants}`)
          : null,
        g.staff_answer
          ? el(
              'div',
              { class: 'staff-answer', title: '租客看不到员工文档：在公开文档中加一条常见问题，聊天就能回答' },
              '仅员工文档有答案：',
              docLink(g.staff_answer.sop_id, g.staff_answer.title),
              g.staff_answer.section ? `（仅员工小节「${g.staff_answer.section}」）` : '',
            )
          : null,
      ),
      el('td', { class: 'num' }, g.count),
      el(
        'td',
        // A weak search voted down counts once with two reasons (a trial read 次数 1 beside 匹配度低 1、点踩 1)
        { title: '同一次提问可以有几个原因（如匹配度低又被点踩），各原因的次数相加可能多于提问次数' },
        Object.entries(g.reasons).map(([k, n]) => el('span', { class: `reason r-${k}` }, `${k} ${n}`)),
      ),
      el('td', { class: 'examples-cell' }, g.examples.join(' ／ ')),
      el('td', null, markButton(g, true)),
    ),
  );
  return box({
    id: 'gap-unanswered',
    title: '未解决问题',
    count:
      `${r.unanswered.length} 组（按意思归组，紧急的在前：无结果、转人工、低置信度、租客已得到回答但置信度低、被点踩；已给出安全提示并转人工的紧急求助不算缺口）` +
      (r.left_out_questions
        ? `；另有 ${r.left_out_questions} 个问题未列入：同一访客最多计 20 个问题（防刷）。若所有租客经同一代理访问，请配置 KB_TRUSTED_PROXIES`
        : ''),
    head: [['代表问题'], ['次数', 'num'], ['原因'], ['同组问法'], ['']],
    rows,
    empty: '这段时间没有未解决的问题',
    wide: true,
  });
}

const markNote = (m) => `${m.who} ${formatTs(m.resolved_ts)} 标记已处理${m.note ? `：${m.note}` : ''}`;

/** 已处理 for a group dealt with (a training manager's trial fixed a gap and the report kept listing it), with a
    short note said inline, or 撤销 for one marked by mistake. A group marked and asked again since shows its mark:
    the fix may not have worked. */
function markButton(g, open) {
  const questions = [...new Set([g.representative, ...g.examples])];
  const reopened =
    open && g.resolved ? el('div', { class: 'faint reopened' }, `${markNote(g.resolved)}，之后又有人问`) : null;
  const cell = el('div', { class: 'gap-mark-cell' });
  const send = async (note, btn) => {
    btn.disabled = true;
    try {
      await api(`/v1/reports/gaps/${open ? 'resolved' : 'reopened'}`, { method: 'POST', json: { questions, note } });
      loadGaps();
    } catch (err) {
      btn.disabled = false;
      clear(cell).append(btn, el('div', { class: 'error-text' }, err.message));
    }
  };
  const btn = el(
    'button',
    {
      type: 'button',
      class: 'btn small gap-mark',
      title: open ? '这组问题已经处理（补了文档或常见问题）：之前的提问不再列出，再有人问会重新列出' : '撤销「已处理」',
    },
    open ? '标记已处理' : '撤销',
  );
  btn.addEventListener('click', () => {
    if (!open) return send('', btn);
    const note = el('input', { type: 'text', class: 'gap-note', maxLength: 200, placeholder: '怎么处理的（可不填）' });
    const ok = el('button', { type: 'button', class: 'btn small gap-mark-ok' }, '确定');
    ok.addEventListener('click', () => send(note.value.trim(), ok));
    note.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') ok.click();
      else if (ev.key === 'Escape') clear(cell).append(btn);
    });
    clear(cell).append(note, ok);
    note.focus();
  });
  cell.append(btn);
  return [cell, reopened];
}

const LEARNED_SHOWN = 50;

/** What agents taught search since `since` (a 👍, or repeated opens and copies), newest first; the report stands
    without it when learning is unavailable. */
async function learnedSince(since) {
  const days = Math.max(1, Math.ceil((Date.now() / 1000 - since) / 86400));
  try {
    const page = await api('/v1/learned', { query: { days, limit: LEARNED_SHOWN } });
    return { ...page, items: page.items.filter((p) => p.updated_ts >= since) };
  } catch (err) {
    return { error: err.message };
  }
}

/** A trainer's trial: what agents taught showed SOP by SOP only. Many phrasings for one SOP say its wording is not
    how people ask. */
function learned(taught) {
  if (taught.error) {
    return box({ id: 'gap-learned', title: '坐席教会检索的问法', count: '', body: notice('error', taught.error) });
  }
  const more = taught.total > taught.items.length ? `，显示最近 ${taught.items.length} 条，共 ${taught.total} 条` : '';
  return box({
    id: 'gap-learned',
    title: '坐席教会检索的问法',
    wide: true,
    count: `${taught.items.length} 条${more}（坐席检索后点了「有用」或多次查看、复制的 SOP；一份 SOP 的问法多，说明它的写法和大家的说法对不上）`,
    head: [['问法'], ['SOP'], ['确认', 'num'], ['教会它的'], ['最近']],
    rows: taught.items.map((p) =>
      el(
        'tr',
        null,
        el('td', null, queryLink(p.phrasing)),
        el('td', null, docLink(p.sop_id, p.title || p.sop_id)),
        el('td', { class: 'num' }, p.confirmations),
        el('td', null, learning.whoLabel(p.who)),
        el('td', null, formatTs(p.updated_ts)),
      ),
    ),
    empty: '这段时间坐席没有教会检索新的问法',
  });
}

function resolved(r) {
  return box({
    id: 'gap-resolved',
    title: '已处理',
    count: `${r.resolved.length} 组（标记之后没有人再问；再有人问会回到未解决问题）`,
    head: [['代表问题'], ['次数', 'num'], ['处理'], ['']],
    rows: r.resolved.map((g) =>
      el(
        'tr',
        null,
        el('td', null, queryLink(g.representative, g.tenants > 0 && g.tenants >= g.count)),
        el('td', { class: 'num' }, g.count),
        el('td', null, markNote(g.resolved)),
        el('td', null, markButton(g, false)),
      ),
    ),
    empty: '这段时间没有标记为已处理的问题',
  });
}

// Where the questions were asked, in the order a trainer reads them (服务指标's 聊天 count is the 租客聊天 one here)
const SOURCES = [
  ['search', '坐席检索'],
  ['chat', '租客聊天'],
  ['handover', '转人工请求'],
  ['console', '员工试用聊天'],
];

function bySource(counts) {
  const known = new Map(SOURCES);
  const parts = [...SOURCES.map(([k]) => k), ...Object.keys(counts || {}).filter((k) => !known.has(k))]
    .filter((k) => counts?.[k])
    .map((k) => `${known.get(k) || k} ${counts[k]}`);
  return parts.length ? `：${parts.join(' · ')}` : '';
}

function renderGaps(r, taught) {
  const range = ui.gapRange.selectedOptions[0].textContent;
  ui.gapSummary.textContent =
    `${range}：共 ${r.total_queries} 次提问${bySource(r.queries_by_source)}` +
    `（${formatTs(r.since)} 至 ${formatTs(r.until)}）`;
  const down = (f) => el('td', { class: 'num', style: f.down ? 'color:var(--danger);font-weight:600' : null }, f.down);
  const never = r.never_found.length
    ? el(
        'div',
        { class: 'chips' },
        r.never_found.map((id) => docLink(id, `${titleOf(id)}（${id}）`)),
      )
    : el('div', { class: 'empty-row' }, '所有 SOP 都被检索到过');
  clear(ui.gapReport).append(
    unanswered(r),
    ...(r.resolved?.length ? [resolved(r)] : []),
    learned(taught),
    box({
      id: 'gap-top',
      title: '热门问题',
      count: `前 ${r.top_queries.length} 个`,
      head: [['问题'], ['次数', 'num']],
      rows: r.top_queries.map((q) =>
        el('tr', null, el('td', null, queryLink(q.query)), el('td', { class: 'num' }, q.count)),
      ),
      empty: '这段时间没有提问',
    }),
    box({
      id: 'gap-feedback',
      title: '反馈',
      count: '按点踩数排序',
      head: [['SOP'], ['有用', 'num'], ['没用', 'num']],
      rows: r.feedback.map((f) =>
        el('tr', null, el('td', null, docLink(f.sop_id, f.title)), el('td', { class: 'num' }, f.up), down(f)),
      ),
      empty: '这段时间没有反馈',
    }),
    box({
      id: 'gap-never',
      title: '从未被检索到的 SOP',
      count: `${r.never_found.length} 份（这段时间没有出现在任何查询的前 3 名，也没有在通话中被推荐）`,
      body: never,
    }),
    box({
      id: 'gap-overdue',
      title: '复核过期',
      count: `${r.review_overdue.length} 份`,
      head: [['SOP'], ['复核日期'], ['负责人']],
      rows: r.review_overdue.map((d) =>
        el(
          'tr',
          null,
          el('td', null, docLink(d.sop_id, d.title)),
          el('td', { style: 'color:var(--danger)' }, d.review_by),
          el('td', null, d.owner || '—'),
        ),
      ),
      empty: '没有复核过期的 SOP',
    }),
  );
}

async function exportCsv() {
  ui.exportCsv.disabled = true;
  try {
    await downloadFile('/v1/reports/gaps.csv', `kb-gap-report-${today()}.csv`, { query: gapRange() });
  } catch (err) {
    ui.gapSummary.textContent = `导出失败：${err.message}`;
  } finally {
    ui.exportCsv.disabled = false;
  }
}

export function initGaps() {
  ui.gapRange.addEventListener('change', () => loadGaps());
  ui.gapRefresh.addEventListener('click', () => loadGaps());
  ui.exportCsv.addEventListener('click', exportCsv);
  onTabShown('gaps', () => {
    if (!state.gapsLoaded || Date.now() - gapsLoadedAt > GAPS_FRESH_MS) loadGaps();
  });
}
