/* Trainer workspace: the selected SOP's practice utterances (练习问法) — where each comes from, and withdrawing one
   that came from use (an agent's search, a learned phrasing) from practice and exams. Examples and FAQ questions
   are the document's own: they change by editing it. */
import { api } from '../lib/api.js';
import { $, clear, el } from '../lib/dom.js';

const SOURCE = { example: '示例问法', faq: '常见问答', learned: '学到的问法', log: '坐席检索' };
let token = 0;

export function initDrills() {
  document.addEventListener('kb:doc-selected', (ev) => load(ev.detail.id, ev.detail.exists));
}

async function load(id, exists) {
  const mine = ++token;
  const note = $('#drills-note');
  clear($('#drills-list'));
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
  const live = pool.filter((u) => !u.withdrawn).length;
  $('#drills-title').textContent = `练习问法（${live}）`;
  $('#drills-note').textContent = pool.length
    ? '练习和考试从这些说法里出题。来自使用的说法（坐席检索、学到的问法）不合适时可撤下；示例问法和常见问答请编辑 SOP 修改。'
    : '还没有练习问法：在文件头补充 examples（示例问法）或加常见问答后发布，练习和考试才会出到这份 SOP。';
  const list = clear($('#drills-list'));
  for (const u of pool) list.appendChild(item(id, u));
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
