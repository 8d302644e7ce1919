/* 我的培训任务 on the practice page: what a trainer assigned to the signed-in person (GET /v1/practice/assignments),
   overdue first, each with the button that starts it (the category's exam, or the practice round it asks for). */

import { api } from '../lib/api.js';
import { clear, el } from '../lib/dom.js';

const dateOf = (ts) => new Date(ts * 1000).toLocaleDateString('zh-CN');
const ORDER = { overdue: 0, open: 1, done: 2 };

function what(a) {
  if (a.kind === 'exam') return `通过“${a.category}”考试（${a.size} 题）`;
  const sops = a.sops.filter((s) => s.title).map((s) => s.title);
  return `练习 ${a.size} 题：${sops.length ? sops.join('、') : a.category || '全部分类'}`;
}

/** Fill `list` (hidden with `heading` when nothing is assigned); `start(assignment)` begins one. */
export async function loadTasks(list, heading, start) {
  const rows = await api('/v1/practice/assignments');
  rows.sort((x, y) => (ORDER[x.status] ?? 3) - (ORDER[y.status] ?? 3) || x.due_ts - y.due_ts);
  clear(list);
  list.hidden = heading.hidden = rows.length === 0;
  for (const a of rows) {
    const done = a.status === 'done';
    const badge = done
      ? el('span', { class: 'badge public' }, `已完成 ${dateOf(a.done_ts)}`)
      : el(
          'span',
          { class: a.status === 'overdue' ? 'badge overdue' : 'badge warn' },
          `${a.status === 'overdue' ? '已逾期' : '截止'} ${dateOf(a.due_ts)}`,
        );
    list.append(
      el(
        'li',
        { dataset: { assignmentId: a.assignment_id, status: a.status } },
        badge,
        ` ${what(a)}`,
        a.note ? el('span', { class: 'faint' }, `（${a.assigned_by}：${a.note}）`) : null,
        a.attempts && !done ? el('span', { class: 'faint' }, ` 已参加 ${a.attempts} 次`) : null,
        done
          ? null
          : a.retired // its category's documents were all deleted, or its exam withdrawn (a trial, a re-check)
            ? el('span', { class: 'faint' }, '（无法进行：本分类的文档已删除或考试已撤下，请找培训师撤下这项任务）')
            : el(
                'button',
                { type: 'button', class: 'btn small', onclick: () => start(a) },
                a.kind === 'exam' ? '参加考试' : '开始练习',
              ),
      ),
    );
  }
}
