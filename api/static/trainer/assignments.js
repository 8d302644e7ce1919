/* Training assignments (培训任务) in the training tab: ask named agents to pass a category's exam or finish a practice
   round on chosen SOPs by a date, and see who has done it (POST/GET/DELETE /v1/practice/assignments). The people
   table's often-missed SOPs fill the form in one click: a training need found on the job becomes a task. */

import { api } from '../lib/api.js';
import { $, append, clear, el } from '../lib/dom.js';
import { roleLabel } from '../lib/labels.js';
import { formatTs, isoDate } from '../lib/text.js';
import { box } from './sections.js';
import { state, summaryOf } from './state.js';

const pct = (v) => (v === null || v === undefined ? '—' : `${Math.round(v * 100)}%`);
const STATUS = {
  open: ['未完成', 'badge'],
  overdue: ['已逾期', 'badge overdue'],
  done: ['已完成', 'badge public'],
  withdrawn: ['已撤下', 'badge'],
};

// What the form is asked to show when it is built (a click on 布置练习 beside a person's often-missed SOPs)
let prefill = null;

function inAWeek() {
  const d = new Date();
  d.setDate(d.getDate() + 7);
  return isoDate(d);
}

/** The end of the chosen day in the trainer's time zone, as Unix seconds. */
const endOfDay = (value) => Math.floor(new Date(`${value}T23:59:59`).getTime() / 1000);

function taskText(a) {
  // titles in 《》: they hold 「、」 themselves (a trial could not tell how many SOPs a task named)
  const sops = a.sops.length ? `·${a.sops.map((s) => `《${s.title || `${s.sop_id}（已删除）`}》`).join('')}` : '';
  return a.kind === 'exam'
    ? `考试·${a.category}（${a.size} 题）`
    : `练习·${a.category || '全部分类'}${sops}·${a.size} 题`;
}

/** A task's row: who, what, when, by whom and why, then `more` cells. */
function row(a, ...more) {
  return el(
    'tr',
    { dataset: { status: a.status } },
    el('td', { class: 'nowrap' }, a.who),
    el('td', null, taskText(a)),
    el('td', { class: 'nowrap' }, formatTs(a.due_ts).slice(0, 10)),
    el('td', null, a.assigned_by),
    el('td', null, a.note || '—'),
    ...more,
  );
}

function list(rows, reload, msg) {
  const withdraw = (a) =>
    el(
      'button',
      {
        type: 'button',
        class: 'btn small',
        onclick: async () => {
          if (!window.confirm(`撤下给 ${a.who} 的任务「${taskText(a)}」？`)) return;
          try {
            await api(`/v1/practice/assignments/${encodeURIComponent(a.assignment_id)}`, { method: 'DELETE' });
            msg.textContent = `已撤下：${a.who} 的「${taskText(a)}」`;
            reload();
          } catch (err) {
            msg.textContent = err.message;
          }
        },
      },
      '撤下',
    );
  const [label, cls] = [(a) => STATUS[a.status]?.[0] || a.status, (a) => STATUS[a.status]?.[1] || 'badge'];
  const order = { overdue: 0, open: 1, done: 2 };
  const sorted = [...rows].sort((x, y) => (order[x.status] ?? 3) - (order[y.status] ?? 3) || x.due_ts - y.due_ts);
  return box({
    id: 'training-assignments',
    title: '培训任务',
    count: `${rows.filter((a) => a.status !== 'done').length} 项未完成`,
    head: ['人员', '任务', '截止', '布置人', '说明', '状态', '尝试 / 最好成绩', ''].map((h) => [h]),
    rows: sorted.map((a) =>
      row(
        a,
        el(
          'td',
          { class: 'nowrap' },
          el('span', { class: cls(a) }, label(a)),
          a.done_ts ? el('div', { class: 'faint' }, formatTs(a.done_ts)) : null,
          a.retired && a.status !== 'done'
            ? el('div', { class: 'faint' }, '已无法进行（分类无文档或考试已撤下），请撤下')
            : null,
        ),
        el('td', null, a.attempts ? `${a.attempts} 次 / ${pct(a.best_score)}` : '—'),
        el('td', null, a.status === 'done' ? '' : withdraw(a)),
      ),
    ),
    empty: '还没有布置任务：在上面选人、选考试或练习、定截止日期。',
    wide: true,
  });
}

function withdrawnList(rows) {
  return box({
    id: 'training-assignments-withdrawn',
    title: '已撤下的培训任务',
    count: `${rows.length} 项`,
    head: ['人员', '任务', '截止', '布置人', '说明', '撤下时间'].map((h) => [h]),
    rows: rows.map((a) => row(a, el('td', { class: 'nowrap' }, a.withdrawn_ts ? formatTs(a.withdrawn_ts) : '—'))),
    empty: '',
    wide: true,
  });
}

function sopPicker(category, picked) {
  const chosen = () => [...picker.querySelectorAll('input[type=checkbox]:checked')].map((b) => b.value);
  const label = (n) => (n ? `只练：已选 ${n} 份 SOP` : '只练其中几份 SOP（不选：整个分类）');
  const summary = el('summary', null, label(picked.length));
  const boxes = state.sops
    .filter((x) => !category || x.category === category)
    .map((x) =>
      el(
        'label',
        { class: 'exam-sop' },
        el('input', { type: 'checkbox', value: x.sop_id, checked: picked.includes(x.sop_id) }),
        category ? x.title : `${x.title}（${x.category}）`,
      ),
    );
  const picker = el('details', { id: 'assign-sops', open: picked.length > 0 }, summary, ...boxes);
  picker.addEventListener('change', () => {
    summary.textContent = label(chosen().length);
  });
  picker.chosen = chosen;
  return picker;
}

/** The form and the list of assignments; `examCats`: categories with an exam set. */
export function assignmentsPanel(categories, examCats, onChange = () => {}) {
  const wanted = prefill;
  prefill = null;
  const kind = el(
    'select',
    { id: 'assign-kind', 'aria-label': '任务类型' },
    el('option', { value: 'practice' }, '练习'),
    el('option', { value: 'exam' }, '考试'),
  );
  const cat = el('select', { id: 'assign-category', 'aria-label': '分类' });
  const size = el('input', {
    id: 'assign-size',
    type: 'number',
    min: '1',
    max: '20',
    value: '5',
    'aria-label': '题数',
  });
  const due = el('input', { id: 'assign-due', type: 'date', value: inAWeek(), min: isoDate(new Date()) });
  due.setAttribute('aria-label', '截止日期');
  const note = el('input', {
    id: 'assign-note',
    type: 'text',
    maxlength: '500',
    placeholder: '说明（可选）：为什么要练',
    'aria-label': '说明',
  });
  const who = el('div', { id: 'assign-people', class: 'assign-people' }, '正在读取人员…');
  const sopsBox = el('div', { class: 'exam-saved-line' });
  const msg = el('span', { id: 'assign-message', class: 'muted', role: 'status' });
  const listBox = el('div', { id: 'assign-list' });
  let picker = sopPicker(null, []);

  const fillCategories = () => {
    const exam = kind.value === 'exam';
    const names = exam ? examCats : ['', ...categories];
    clear(cat).append(...names.map((c) => el('option', { value: c }, c || '全部分类')));
    if (exam && !names.length) cat.append(el('option', { value: '' }, '（还没有设置考试）'));
    size.disabled = exam;
    showSops([]);
  };
  const showSops = (picked) => {
    picker = sopPicker(cat.value || null, picked);
    clear(sopsBox).append(kind.value === 'exam' ? '' : picker);
  };
  kind.addEventListener('change', fillCategories);
  cat.addEventListener('change', () => showSops([]));
  fillCategories();

  const chosenPeople = () => [...who.querySelectorAll('input[name=assignee]:checked')].map((b) => b.value);
  api('/v1/practice/assignees')
    .then((people) => {
      const boxes = people.map((p) =>
        el(
          'label',
          { class: 'exam-sop' },
          el('input', {
            type: 'checkbox',
            name: 'assignee',
            value: p.name,
            dataset: { role: p.role },
            checked: Boolean(wanted?.people.includes(p.name)),
          }),
          p.role === 'agent' ? p.name : `${p.name}（${roleLabel(p.role)}）`,
        ),
      );
      const all = el('input', { type: 'checkbox', id: 'assign-all-agents' });
      all.addEventListener('change', () => {
        for (const b of who.querySelectorAll('input[name=assignee][data-role=agent]')) b.checked = all.checked;
      });
      // lib/dom.js append(): the DOM's own append prints an array as [object HTMLLabelElement]
      append(clear(who), [
        people.length
          ? [el('label', { class: 'exam-sop' }, all, el('strong', null, '全部坐席')), ...boxes]
          : '还没有坐席或培训师账号（管理员在「账号」里新建）。',
      ]);
    })
    .catch((err) => {
      who.textContent = `无法读取人员：${err.message}`;
    });
  if (wanted) {
    kind.value = 'practice';
    fillCategories();
    const cats = new Set(wanted.sops.map((id) => summaryOf(id)?.category).filter(Boolean));
    cat.value = cats.size === 1 ? [...cats][0] : '';
    showSops(wanted.sops);
    const titles = wanted.sops.map((id) => `《${summaryOf(id)?.title || id}》`);
    // why, for the agent (a re-check found it empty); the misses come from practice and exams, not calls (a trial)
    note.value = `练习和考试中常找错：${titles.join('')}`.slice(0, 500);
    msg.textContent = `已按 ${wanted.people.join('、')} 练习和考试中常找错的 SOP 填好，确认截止日期后点「布置」。`;
  }

  // A task set or withdrawn also changes the people table's 培训任务 column (a trial read 「—」 there until 刷新)
  const changed = () => reload().then(onChange);
  const reload = async () => {
    try {
      clear(listBox).append(list(await api('/v1/practice/assignments'), changed, msg), withdrawnLink());
    } catch (err) {
      listBox.textContent = `无法读取培训任务：${err.message}`;
    }
  };
  // Withdrawn tasks stay on record: listed on request, below the others
  const withdrawnLink = () => {
    const shown = el('div', { id: 'assign-withdrawn' });
    const link = el('button', { type: 'button', class: 'btn small' }, '查看已撤下的任务');
    link.addEventListener('click', async () => {
      try {
        const rows = await api('/v1/practice/assignments?status=withdrawn');
        clear(shown).append(rows.length ? withdrawnList(rows) : el('p', { class: 'muted' }, '没有撤下过的任务。'));
        link.remove();
      } catch (err) {
        shown.textContent = `无法读取已撤下的任务：${err.message}`;
      }
    });
    return el('div', { class: 'exam-saved-line' }, link, shown);
  };
  const assign = el('button', { type: 'button', class: 'btn primary', id: 'assign-submit' }, '布置');
  assign.addEventListener('click', async () => {
    const people = chosenPeople();
    const problems = [
      people.length ? '' : '请勾选至少一个人',
      due.value && due.checkValidity() ? '' : '请选今天或以后的截止日期',
      kind.value === 'exam' && !cat.value ? '请先在上面设置一个分类的考试' : '',
      kind.value === 'practice' && !size.checkValidity() ? '题数应为 1–20 道' : '',
    ].filter(Boolean);
    if (problems.length) {
      msg.textContent = `${problems.join('；')}。`;
      return;
    }
    const body = { kind: kind.value, people, due_ts: endOfDay(due.value), note: note.value.trim() };
    if (cat.value) body.category = cat.value;
    if (kind.value === 'practice') {
      body.size = Number(size.value);
      const sops = picker.chosen();
      if (sops.length) body.sops = sops;
    }
    try {
      const made = await api('/v1/practice/assignments', { method: 'POST', json: body });
      const extended = made.filter((a) => a.existed).map((a) => a.who);
      const certified = made.filter((a) => a.certified).map((a) => a.who);
      msg.textContent =
        `已布置给 ${made.map((a) => a.who).join('、')}：${taskText(made[0])}，${due.value} 前完成` +
        (extended.length ? `（${extended.join('、')} 已有同样的任务，只更新了截止日期和说明）` : '') +
        (certified.length ? `（${certified.join('、')} 已有该分类的有效认证，任务要求再考一次）` : '');
      // The next task starts from no one ticked and no note (a re-check assigned a second task to the first people)
      for (const b of who.querySelectorAll('input[type=checkbox]')) b.checked = false;
      note.value = '';
      changed();
    } catch (err) {
      msg.textContent = err.message;
    }
  });
  reload();
  return el(
    'div',
    { class: 'box wide', id: 'assign-panel' },
    el('h3', null, '布置培训任务'),
    el('div', { class: 'gap-toolbar' }, kind, '分类', cat, '题数', size, '截止', due, note, assign, msg),
    sopsBox,
    el('div', { class: 'exam-saved-line' }, '布置给：', who),
    listBox,
  );
}

/** Open the form for these people and SOPs (the people table's 布置练习), rebuilding the tab with `reload`. */
export function assignPracticeOf(person, sopIds, reload) {
  prefill = { people: [person], sops: sopIds };
  reload().then(() => $('#assign-panel')?.scrollIntoView({ block: 'start' }));
}
