/* Script lines an agent copies with one click (or Alt+N in the console). */

import { $$, el } from './dom.js';
import { isCueLine } from './text.js';

function fallbackCopy(text) {
  const ta = document.createElement('textarea');
  ta.value = text;
  ta.setAttribute('readonly', '');
  ta.setAttribute('aria-hidden', 'true');
  ta.style.cssText = 'position:fixed;top:0;left:-9999px;width:1px;height:1px;opacity:0;';
  const active = document.activeElement;
  document.body.appendChild(ta);
  ta.select();
  ta.setSelectionRange(0, text.length);
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch (_) {
    ok = false;
  }
  document.body.removeChild(ta);
  if (active && typeof active.focus === 'function') active.focus({ preventScroll: true });
  return ok;
}

export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_) {
      /* fall through */
    }
  }
  return fallbackCopy(text);
}

/** A script line element: `.script-line` with the text, a `.copy-btn` and transient `.copy-done` feedback. */
export function scriptLine(line, { index, internal } = {}) {
  const cue = isCueLine(line);
  const li = el('li', {
    class: `script-line${cue ? ' is-label' : ''}${internal ? ' internal-item' : ''}`,
    dataset: { text: line },
  });
  if (index !== undefined && !cue) li.appendChild(el('span', { class: 'script-num', title: `Alt+${index}` }, index));
  li.appendChild(el('span', { class: 'script-text' }, line));
  if (internal) li.appendChild(el('span', { class: 'badge internal', title: '来自内部小节，不要念给租客' }, '内部'));
  const btn = el(
    'button',
    { type: 'button', class: 'copy-btn', title: '复制这句话术', 'aria-label': `复制：${line}` },
    '复制',
  );
  btn.addEventListener('click', (ev) => {
    ev.stopPropagation();
    copyLine(li);
  });
  li.appendChild(btn);
  return li;
}

export async function copyLine(li) {
  const ok = await copyText(li.dataset.text || '');
  if (ok) li.dispatchEvent(new CustomEvent('kb:copied', { bubbles: true })); // lib/learning.js records the copy
  for (const n of $$('.copy-done', li)) n.remove();
  const done = el('span', { class: 'copy-done', role: 'status' }, ok ? '已复制' : '复制失败，请手动选择文字');
  if (!ok) done.style.color = 'var(--danger)';
  li.appendChild(done);
  clearTimeout(li._copyTimer);
  li._copyTimer = setTimeout(() => done.remove(), 2500);
  return ok;
}
