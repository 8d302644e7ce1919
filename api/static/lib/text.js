/* Dates and SOP text as the pages show them. */

import { el } from './dom.js';

const pad = (n) => String(n).padStart(2, '0');

/** A local date as YYYY-MM-DD (the format of `review_by` and `updated`). */
export const isoDate = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
export const today = () => isoDate(new Date());
export const isOverdue = (reviewBy) => Boolean(reviewBy) && reviewBy < today();

export function formatTs(seconds) {
  const d = new Date(seconds * 1000);
  return `${isoDate(d)} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A script line that is only a cue such as "安全提醒：" (a bold label swallowed into the quote). */
export const isCueLine = (line) => /[：:]$/.test(line.trim()) && line.trim().length <= 14;

function listItem(line) {
  const ordered = /^(\d+)[.、)]\s*(.*)$/.exec(line);
  if (ordered) return { kind: 'ol', start: ordered[1], content: ordered[2] };
  const bullet = /^[-*•]\s+(.*)$/.exec(line);
  return bullet ? { kind: 'ul', start: '1', content: bullet[1] } : null;
}

/**
 * Render a section's plain text (as the parser produced it: "1. step", "- bullet", quote lines, paragraphs)
 * as lists and paragraphs. `scripts` (optional Set) marks which lines are script lines (rendered by
 * `renderScript(line)`). `internal` (optional Set) marks lines that come from a staff-only section.
 */
export function renderText(text, { scripts, renderScript, internal } = {}) {
  const frag = document.createDocumentFragment();
  let list = null;
  let listKind = '';
  let scriptList = null;
  for (const rawLine of String(text || '').split('\n')) {
    const line = rawLine.trim();
    if (line && scripts?.has(line) && renderScript) {
      list = null;
      if (!scriptList) scriptList = frag.appendChild(el('ul', { class: 'script-list' }));
      scriptList.appendChild(renderScript(line));
      continue;
    }
    scriptList = null;
    const item = line ? listItem(line) : null;
    if (!item) {
      list = null;
      if (line) frag.appendChild(el('p', { class: 'text-para' }, line));
      continue;
    }
    if (!list || listKind !== item.kind) {
      list = frag.appendChild(el(item.kind, { class: 'text-list' }));
      if (item.kind === 'ol' && item.start !== '1') list.start = Number(item.start);
      listKind = item.kind;
    }
    list.appendChild(el('li', { class: internal?.has(item.content) ? 'internal-item' : null }, item.content));
  }
  return frag;
}
