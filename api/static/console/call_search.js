/* Call mode's own search: when the suggestions miss what the tenant asks about (a side question, a word the
   recogniser got wrong), the agent types a few words and pins a result, with its steps, clocks and questions like a
   suggestion (a trial: call mode hid the search, so a SOP the transcript never brought up could not be pinned). */

import { api } from '../lib/api.js';
import { clear, el } from '../lib/dom.js';
import { percent } from '../lib/text.js';

const SHOWN = 5;

/** The form and its results; `callId()` is the call followed (pins are recorded on it), `pin(item)` pins a card. */
export function callSearch({ callId, pin }) {
  const input = el('input', {
    id: 'call-search',
    type: 'search',
    autocomplete: 'off',
    maxlength: '200',
    placeholder: '建议里没有？输入关键词搜索，回车',
    'aria-label': '通话中搜索 SOP',
  });
  const status = el('p', { class: 'faint call-search-status', role: 'status' });
  const list = el('ul', { id: 'call-search-results', class: 'call-search-results', 'aria-label': '搜索结果' });
  let seq = 0;

  const choose = async (hit, button) => {
    const id = callId();
    if (!id) {
      status.textContent = '先跟随一通电话，再固定搜索到的 SOP。';
      return;
    }
    button.disabled = true;
    try {
      // the pin is recorded as the call's outcome and comes back as a card with the SOP's clocks and questions
      const recorded = await api(`/v1/assist/${encodeURIComponent(id)}/pins`, {
        method: 'POST',
        json: { sop_id: hit.sop_id },
      });
      if (callId() !== id) return; // the agent moved to another call meanwhile
      pin(recorded.item, { recorded: true });
      clear(list);
      input.value = '';
      status.textContent = `已固定：${hit.title}`;
    } catch (err) {
      status.textContent = `没能固定：${err.message}`;
    } finally {
      button.disabled = false;
    }
  };

  const row = (hit) => {
    const button = el('button', { type: 'button', class: 'btn small pin-btn' }, '固定');
    button.addEventListener('click', () => choose(hit, button));
    return el(
      'li',
      { class: `call-search-hit${hit.weak ? ' weak' : ''}`, dataset: { sopId: hit.sop_id } },
      el('span', { class: 'call-search-title' }, hit.title),
      el('span', { class: 'faint' }, ` ${hit.category || ''} · ${percent(hit.match_confidence)}`),
      button,
    );
  };

  const run = async () => {
    const query = input.value.trim();
    if (!query) return;
    const mine = ++seq;
    status.textContent = '搜索中…';
    try {
      const data = await api('/v1/search', { method: 'POST', json: { query, top_k: SHOWN, audience: 'agent' } });
      if (mine !== seq) return;
      const hits = data.results || [];
      clear(list).append(...hits.map(row));
      status.textContent = !hits.length
        ? `没有找到与「${query}」相关的 SOP`
        : data.weak
          ? '匹配较弱：结果和输入的内容不太对得上，请核实后再固定'
          : '';
    } catch (err) {
      if (mine === seq) status.textContent = `搜索失败：${err.message}`;
    }
  };

  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.isComposing) {
      ev.preventDefault();
      run();
    } else if (ev.key === 'Escape') {
      input.value = '';
      clear(list);
      status.textContent = '';
    }
  });
  return el('div', { class: 'call-search' }, input, status, list);
}
