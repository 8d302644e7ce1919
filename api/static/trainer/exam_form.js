/* The exam form of the training tab: pass mark, size, validity, retake wait and the SOPs an exam asks, beside what
   each category (or the ticked SOPs) can set (GET /v1/practice/supply). */

import { api } from '../lib/api.js';
import { append, clear, el } from '../lib/dom.js';
import { docLink } from './gaps.js';
import { state } from './state.js';

const pct = (v) => (v === null || v === undefined ? '—' : `${Math.round(v * 100)}%`);

// The category the exam form shows, kept when the tab is rebuilt (刷新, after a publish) so a trainer setting several
// categories' exams in turn is not sent back to the first one.
let examCategory = null;

export function examForm(categoriesList) {
  const cat = el(
    'select',
    { id: 'exam-category', 'aria-label': '考试分类' },
    categoriesList.map((c) => el('option', { value: c }, c)),
  );
  if (categoriesList.includes(examCategory)) cat.value = examCategory;
  const mark = el('input', {
    id: 'exam-mark',
    type: 'number',
    min: '1',
    max: '100',
    value: '80',
    'aria-label': '及格线（%）',
  });
  const size = el('input', { id: 'exam-size', type: 'number', min: '1', max: '20', value: '10', 'aria-label': '题数' });
  const days = el('input', {
    id: 'exam-days',
    type: 'number',
    min: '1',
    max: '3650',
    placeholder: '长期',
    'aria-label': '认证有效期（天，留空为长期有效）',
  });
  // A wait after a failed attempt (a trial passed by memory: 60 % → 40 % → 100 % in 12 minutes)
  const retake = el('input', {
    id: 'exam-retake',
    type: 'number',
    min: '0',
    max: '10080',
    placeholder: '0',
    'aria-label': '未通过后多少分钟才能重考（0 或留空为马上可以）',
  });
  // Emergencies: a score of 80 % may hide the wrong script line or step order, the part that keeps people safe.
  const everyStage = el('input', { id: 'exam-every-stage', type: 'checkbox' });
  const everyLabel = el(
    'label',
    { title: '得分够也不行：选话术、排步骤每一题都要答对（适合紧急事件）' },
    everyStage,
    '第二步须全对',
  );
  const msg = el('span', { id: 'exam-message', class: 'muted', role: 'status' });
  const saved = el('span', { id: 'exam-saved', class: 'faint' });
  // What the category can set (GET /v1/practice/supply): a trial set exams one category at a time to learn that most
  // could ask 0–4 questions, and that SOPs without examples or FAQ questions are never drilled.
  const supplyLine = el('div', { id: 'exam-supply', class: 'exam-saved-line faint' });
  const supply = new Map();
  const showSupply = () => {
    const all = supply.get(cat.value);
    if (!all) {
      clear(supplyLine);
      return;
    }
    // Ticked SOPs: what they alone can set (a trial ticked 3 of 10 and still read the whole category's figures)
    const picked = chosenSops();
    const within = (list) => list.filter((b) => !picked.length || picked.includes(b.sop_id));
    const s = picked.length
      ? {
          ...all,
          exam_ready: picked.reduce((n, id) => n + (all.ready_by_sop?.[id] || 0), 0),
          bare: within(all.bare),
          unstaged: within(all.unstaged || []),
        }
      : all;
    const bare = s.bare.length
      ? [
          `；${s.bare.length} 份 SOP 还没有问法，练习和考试都出不到（打开后在文件头补充 examples 再发布）：`,
          s.bare.flatMap((b, i) => [i ? '、' : '', docLink(b.sop_id, b.title)]),
        ]
      : '';
    // A trial: SOPs whose utterances have no second stage are asked only after the staged ones, so rarely at all
    const unstaged = s.unstaged?.length
      ? [
          `；${s.unstaged.length} 份 SOP 出不了第二步（话术里没有回应这些问法的句子，也没有连续三步以上、不分情况的步骤可排顺序），考试先出有第二步的题，这些 SOP 很少出到（可补一句回应租客这种说法的话术）：`,
          s.unstaged.flatMap((b, i) => [i ? '、' : '', docLink(b.sop_id, b.title)]),
        ]
      : '';
    // lib/dom.js append(): the links come as an array (the DOM's own append printed [object HTMLButtonElement])
    append(clear(supplyLine), [
      el(
        'strong',
        null,
        `“${s.category}”${picked.length ? `中所选 ${picked.length} 份 SOP ` : ''}可出考试题 ${s.exam_ready} 道`,
      ),
      picked.length ? '' : `（${s.sops} 份 SOP，练习问法 ${s.utterances} 条）`,
      bare,
      unstaged,
    ]);
  };
  // Which SOPs of the category the exam asks (a training lead's trial: to examine the leak procedure just changed, the
  // whole 报修 category had to be set); none ticked: the whole category
  const scope = el('div', { id: 'exam-scope', class: 'exam-saved-line' });
  const chosenSops = () => [...scope.querySelectorAll('input[type=checkbox]:checked')].map((b) => b.value);
  const scopeText = (n) => (n ? `出题范围：已选 ${n} 份 SOP` : '出题范围：整个分类（可只勾选其中几份 SOP）');
  const showScope = (picked) => {
    const summary = el('summary', null, scopeText(picked.length));
    const boxes = state.sops
      .filter((x) => x.category === cat.value)
      .map((x) =>
        el(
          'label',
          { class: 'exam-sop' },
          el('input', { type: 'checkbox', value: x.sop_id, checked: picked.includes(x.sop_id) }),
          x.title,
        ),
      );
    const details = el('details', { open: picked.length > 0 }, summary, ...boxes);
    details.addEventListener('change', () => {
      summary.textContent = scopeText(chosenSops().length);
      showSupply();
    });
    clear(scope).append(details);
  };
  const exams = new Map(); // category → the exam as saved
  const withdraw = el(
    'button',
    { type: 'button', class: 'btn small', id: 'exam-withdraw', disabled: true },
    '撤下考试',
  );
  withdraw.addEventListener('click', async () => {
    if (!window.confirm(`撤下“${cat.value}”的考试？已有的通过记录保留，但不再算作有效认证。`)) return;
    try {
      await api(`/v1/practice/exams/${encodeURIComponent(cat.value)}`, { method: 'DELETE' });
      exams.delete(cat.value);
      showSaved();
      msg.textContent = `已撤下：${cat.value} 的考试`;
    } catch (err) {
      msg.textContent = err.message;
    }
  });
  const showSaved = () => {
    const e = exams.get(cat.value);
    mark.value = e ? String(Math.round(e.pass_mark * 100)) : '80';
    size.value = e ? String(e.size) : '10';
    days.value = e?.valid_days ? String(e.valid_days) : '';
    everyStage.checked = Boolean(e?.every_stage);
    retake.value = e?.retake_minutes ? String(e.retake_minutes) : '';
    withdraw.disabled = !e;
    showScope(e?.sops || []);
    const validity = (x) =>
      (x.sops?.length ? `·${x.sops.length} 份 SOP` : '') +
      (x.valid_days ? `·${x.valid_days} 天有效` : '') +
      (x.every_stage ? '·第二步须全对' : '') +
      (x.retake_minutes ? `·未通过 ${x.retake_minutes} 分钟后可重考` : '');
    saved.textContent = exams.size
      ? `已设考试：${[...exams.values()].map((x) => `${x.category} ${pct(x.pass_mark)}·${x.size} 题${validity(x)}`).join('；')}`
      : '还没有设置任何考试。';
    msg.textContent = e ? '' : `“${cat.value}”还没有考试（下面是默认值）。`;
    const s = supply.get(cat.value);
    if (!e && s) size.value = String(Math.max(1, Math.min(10, s.exam_ready)));
    showSupply();
  };
  cat.addEventListener('change', () => {
    examCategory = cat.value;
    showSaved();
  });
  api('/v1/practice/exams')
    .then((list) => {
      for (const e of list) exams.set(e.category, e);
      // An exam whose category lost its last SOP stays listed, to be withdrawn (a trial could not reach it)
      for (const e of list.filter((x) => x.retired && !categoriesList.includes(x.category))) {
        cat.append(el('option', { value: e.category }, `${e.category}（文档已全部删除）`));
      }
      // Opened afresh, the form shows a category that has an exam: it showed the first category's defaults, one
      // click from setting an exam nobody meant (a training manager's trial)
      const first = categoriesList.find((c) => exams.has(c));
      if (examCategory === null && first && !exams.has(cat.value)) cat.value = first;
      showSaved();
    })
    .catch((err) => {
      saved.textContent = `无法读取已设的考试：${err.message}`;
    });
  api('/v1/practice/supply')
    .then((list) => {
      for (const s of list) supply.set(s.category, s);
      for (const o of cat.options) {
        const s = supply.get(o.value);
        if (s) o.textContent = `${o.value}（题库 ${s.exam_ready} 题）`;
      }
      // Not showSaved(): it draws the SOP ticks anew, and a trainer ticking them before the figures came lost them
      const s = supply.get(cat.value);
      if (!exams.get(cat.value) && s) size.value = String(Math.max(1, Math.min(10, s.exam_ready)));
      showSupply();
    })
    .catch((err) => {
      supplyLine.textContent = `无法读取可出题数：${err.message}`;
    });
  const save = el('button', { type: 'button', class: 'btn' }, '设置考试');
  save.addEventListener('click', async () => {
    // Each field that is wrong, by name (a trial: one sentence for any of them did not say which)
    const rules = [
      [mark, true, '及格线应为 1–100（%）'],
      [size, true, '题数应为 1–20 道'],
      [days, false, '有效期应为 1–3650 天或留空'],
      [retake, false, '重考间隔应为 0–10080 分钟或留空'],
    ];
    const wrong = rules.filter(([f, needed]) => (needed && !f.value) || !f.checkValidity());
    if (wrong.length) {
      msg.textContent = `${wrong.map(([, , text]) => text).join('；')}。`;
      wrong[0][0].focus();
      return;
    }
    try {
      const body = { pass_mark: Number(mark.value) / 100, size: Number(size.value) };
      if (days.value) body.valid_days = Number(days.value);
      if (everyStage.checked) body.every_stage = true;
      if (retake.value) body.retake_minutes = Number(retake.value);
      const sops = chosenSops();
      if (sops.length) body.sops = sops;
      const r = await api(`/v1/practice/exams/${encodeURIComponent(cat.value)}`, { method: 'PUT', json: body });
      exams.set(r.category, r);
      examCategory = r.category; // kept when the tab is rebuilt
      showSaved();
      const validity =
        (r.sops?.length ? `，只从 ${r.sops.length} 份 SOP 出题` : '') +
        (r.valid_days ? `，认证 ${r.valid_days} 天有效` : '，认证长期有效') +
        (r.every_stage ? '，第二步须全对' : '') +
        (r.retake_minutes ? `，未通过 ${r.retake_minutes} 分钟后可重考` : '');
      msg.textContent = `已设置：${r.category} 及格线 ${pct(r.pass_mark)}，${r.size} 题${validity}（已开考的按原及格线判定）`;
    } catch (err) {
      msg.textContent = err.message;
    }
  });
  return el(
    'div',
    { class: 'gap-toolbar' },
    '考试：',
    cat,
    '及格线 %',
    mark,
    '题数',
    size,
    '有效期（天）',
    days,
    '重考间隔（分钟）',
    retake,
    everyLabel,
    save,
    withdraw,
    msg,
    el('div', { class: 'exam-saved-line' }, saved),
    scope,
    supplyLine,
  );
}
