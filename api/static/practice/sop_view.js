/* The practice page's view of a SOP after a round: what a mistake's 查看 SOP opens under the review. */

import { api } from '../lib/api.js';
import { clear, el } from '../lib/dom.js';

const LIST_MARKER = /^\s*(?:[-*+•]|\d+[.)、])\s*/;

/** The SOP in `box`: its steps, scripts, time limits, escalation and FAQ (what a mistake's review opens). */
export async function showSop(box, sopId) {
  box.hidden = false;
  clear(box).append(el('p', { class: 'faint' }, '正在加载…'));
  try {
    const sop = await api(`/v1/sops/${encodeURIComponent(sopId)}`);
    clear(box).append(el('h3', {}, sop.title));
    for (const s of sop.sections) {
      if (!['steps', 'script', 'time_limit', 'escalation'].includes(s.kind)) continue;
      const lines = s.steps.length ? s.steps : s.scripts.length ? s.scripts : s.text.split('\n');
      // Steps are a sequence (numbered); the other parts' lines carry their own "- " markers in the text.
      const items = lines.map((t) => t.replace(LIST_MARKER, '').trim()).filter(Boolean);
      box.append(
        el('h4', {}, s.heading),
        el(
          s.kind === 'steps' ? 'ol' : 'ul',
          {},
          items.map((t) => el('li', {}, t)),
        ),
      );
    }
    const faq = sop.sections.flatMap((s) => s.qa || []);
    if (faq.length) {
      // Some questions are answered only here (停电冰箱里的东西坏了能赔吗？).
      box.append(
        el('h4', {}, '常见问题'),
        el(
          'dl',
          { class: 'sop-faq' },
          faq.flatMap((q) => [el('dt', {}, q.question), el('dd', {}, q.answer)]),
        ),
      );
    }
  } catch (err) {
    clear(box).append(el('p', { class: 'notice error' }, err.message));
  }
}
