/* Trainer workspace: the selected SOP's practice utterances (练习问法) — where each comes from, and withdrawing one
   that came from use (an agent's search, a learned phrasing) from practice and exams. Examples and FAQ questions
   are the document's own: they change by editing it. A SOP with few utterances (a terse knowledge base without
   examples) gets suggested tenant phrasings from the colloquial lexicon, which the trainer ticks and adds to the
   SOP's examples as one published version. */
import { api } from '../lib/api.js';
import { $, clear, el } from '../lib/dom.js';
import { learning } from '../lib/learning.js';

const SOURCE = { example: '示例问法', faq: '常见问答', learned: '学到的问法', log: '坐席检索' };
let token = 0;

export function initDrills() {
  document.addEventListener('kb:doc-selected', (ev) => load(ev.detail.id, ev.detail.exists));
}

async function load(id, exists) {
  const mine = ++token;
  const note = $('#drills-note');
  clear($('#drills-list'));
  $('#drills-suggested')?.remove();
  $('#drills-title').textContent = '练习问法';
  if (!id || !exists) {
    note.textContent = id ? '这份 SOP 未发布，没有练习问法。' : '选择一份 SOP 后显示练习和考试会用到的租客说法。';
    return;
  }
  note.textContent = '正在加载…';
  let pool;
  try {
    pool = await api(`/v1/sops/${encodeURIComponent(id)}/drills`);
  } catch (err) {
    if (mine === token) note.textContent = `无法加载练习问法：${err.message}`;
    return;
  }
  if (mine === token) show(id, pool);
}

function show(id, pool) {
  $('#drills-suggested')?.remove();
  const live = pool.filter((u) => !u.withdrawn).length;
  $('#drills-title').textContent = `练习问法（${live}）`;
  $('#drills-note').textContent = pool.length
    ? '练习和考试从这些说法里出题。来自使用的说法（坐席检索、学到的问法）不合适时可撤下；示例问法和常见问答请编辑 SOP 修改。'
    : '还没有练习问法：在文件头补充 examples（示例问法）或加常见问答后发布，练习和考试才会出到这份 SOP。';
  if (added?.id === id && live >= FEW) {
    $('#drills-note').textContent = `${added.text}。${$('#drills-note').textContent}`;
    added = null;
  }
  const list = clear($('#drills-list'));
  for (const u of pool) list.appendChild(item(id, u));
  if (live < FEW) suggest(id, list);
}

const FEW = 3; // a SOP with fewer practice utterances than this gets suggestions
// What the last addition said ({ id, text }): the list is rebuilt after a publish, and the confirmation went with it
let added = null;

/** Suggested tenant phrasings (GET …/drills/suggested) to tick and add to the SOP's examples (POST …/examples). */
async function suggest(id, list) {
  const mine = token;
  let got;
  try {
    got = await api(`/v1/sops/${encodeURIComponent(id)}/drills/suggested`);
  } catch {
    return; // suggestions are a help, the list above stands without them
  }
  if (mine !== token || !got.phrasings.length) return;
  const msg = el('div', { class: 'learned-msg', role: 'status' }, added?.id === id ? added.text : '');
  if (added?.id === id) added = null; // said once, after the rebuild
  const boxes = got.phrasings.map((p) => el('input', { type: 'checkbox', value: p }));
  const add = el('button', { type: 'button', class: 'btn small', id: 'drills-add' }, '加入示例问法并发布');
  const publish = async (force) => {
    const phrasings = boxes.filter((b) => b.checked).map((b) => b.value);
    if (!phrasings.length) {
      msg.textContent = '请先勾选确实在说这份 SOP 的说法';
      return;
    }
    add.disabled = true;
    clear(msg).className = 'learned-msg';
    msg.textContent = '正在发布新版本…';
    try {
      const r = await api(`/v1/sops/${encodeURIComponent(id)}/examples`, {
        method: 'POST',
        json: { phrasings, force },
      });
      msg.textContent = `已加入 ${phrasings.length} 条示例问法，发布为 v${r.version}`;
      added = { id, text: msg.textContent };
      if (learning.reload) learning.reload(id);
    } catch (err) {
      add.disabled = false;
      msg.className = 'learned-msg error';
      msg.textContent = err.message;
      if (err.code === 'example_regression' && !force) {
        const again = el('button', { type: 'button', class: 'btn small' }, '仍然加入');
        again.addEventListener('click', () => publish(true));
        msg.append(' ', again);
      }
    }
  };
  add.addEventListener('click', () => publish(false));
  list.after(
    el(
      'div',
      { id: 'drills-suggested', class: 'drills-suggested' },
      el(
        'div',
        { class: 'faint' },
        '建议的租客说法（口语词库）：勾选确实在说这份 SOP 的，加入示例问法后练习和考试就能出题。',
      ),
      el(
        'ul',
        { class: 'suggested-list' },
        boxes.map((b) => el('li', {}, el('label', {}, b, ` ${b.value}`))),
      ),
      add,
      msg,
    ),
  );
}

function item(id, u) {
  const msg = el('div', { class: 'learned-msg', role: 'status' });
  const fromUse = u.source === 'learned' || u.source === 'log';
  const button = fromUse
    ? el('button', { type: 'button', class: `btn small${u.withdrawn ? '' : ' danger'}` }, u.withdrawn ? '恢复' : '撤下')
    : null;
  button?.addEventListener('click', async () => {
    button.disabled = true;
    const path = `/v1/sops/${encodeURIComponent(id)}/drills/withdrawn`;
    try {
      const pool = u.withdrawn
        ? await api(`${path}?prompt=${encodeURIComponent(u.prompt)}`, { method: 'DELETE' })
        : await api(path, { method: 'POST', json: { prompt: u.prompt } });
      show(id, pool);
    } catch (err) {
      button.disabled = false;
      msg.className = 'learned-msg error';
      msg.textContent = err.message;
    }
  });
  return el(
    'li',
    { class: `learned-item drill-item${u.withdrawn ? ' withdrawn' : ''}`, 'data-source': u.source },
    el('div', { class: 'learned-text' }, u.prompt),
    el(
      'div',
      { class: 'learned-meta faint' },
      SOURCE[u.source] || u.source,
      u.withdrawn ? ' · 已撤出练习和考试' : '',
      button ? ' ' : '',
      button,
    ),
    msg,
  );
}
