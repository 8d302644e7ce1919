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

/** A share (0.87) as a whole percentage (87%); none as 0%. */
export const percent = (p) => `${Math.round((p || 0) * 100)}%`;

/** A script line that is only a cue such as "安全提醒：" (a bold label swallowed into the quote). */
export const isCueLine = (line) => /[：:]$/.test(line.trim()) && line.trim().length <= 14;

/** The confidence badge's class and title: green from LIKELY up; below, an amber "possible" (the calibrated figure
    is the chance the SOP is the one needed: a new agent's trial read 44 % in green as "this is right"). */
const LIKELY = 0.7;
export const confClass = (p) => ((p ?? 0) >= LIKELY ? 'badge conf' : 'badge conf mid');
export const confTitle = (p) =>
  (p ?? 0) >= LIKELY ? '校准后的置信度：这份 SOP 正是所需的可能性' : '置信度一般：可能是这份 SOP，请先和租客核对情况';

// Another SOP named in a SOP's text, by its id (「按 repair-electric-lighting 处理」) or by its title in 《》
// (「参照《燃气泄漏应急处置》」): a button that opens it, showing its title. The console fills `sopRefs` (titles:
// id → title of the SOPs the key may read; open(id, title)).
export const sopRefs = { titles: new Map(), open: null };
const SOP_REF = /(?<![a-z0-9-])[a-z0-9]+(?:-[a-z0-9]+)+(?![a-z0-9-])|《([^《》\n]{2,60})》/g;
const plainTitle = (t) => t.replace(/[\s\p{P}]/gu, '');
let byTitle = { from: null, ids: new Map() }; // plain title → id, made again when the titles change

/** The id and title a match names: an id the key may read, or a title in 《》 that is one of theirs. */
function named(m) {
  if (!m[1]) return sopRefs.titles.has(m[0]) ? [m[0], sopRefs.titles.get(m[0])] : null;
  if (byTitle.from !== sopRefs.titles) {
    byTitle = { from: sopRefs.titles, ids: new Map([...sopRefs.titles].map(([id, t]) => [plainTitle(t), id])) };
  }
  const id = byTitle.ids.get(plainTitle(m[1]));
  return id ? [id, sopRefs.titles.get(id)] : null;
}

/** `text` as children for `el`: each SOP it names a button with that SOP's title, the rest plain text; `plain`:
    the titles as text (inside a checkbox's label, where a button would toggle the box). */
export function withRefs(text, { plain = false } = {}) {
  const s = String(text ?? '');
  if (!sopRefs.titles.size || !sopRefs.open) return s;
  if (plain) return s.replace(SOP_REF, (...m) => (named(m) ? `《${named(m)[1]}》` : m[0]));
  const out = [];
  let last = 0;
  for (const m of s.matchAll(SOP_REF)) {
    const found = named(m);
    if (!found) continue;
    const [id, title] = found;
    const open = (ev) => {
      ev.stopPropagation(); // a click inside a result card opens this SOP, not the card's
      sopRefs.open(id, title);
    };
    out.push(
      s.slice(last, m.index),
      el('button', { type: 'button', class: 'sop-ref', title: id, onclick: open }, `《${title}》`),
    );
    last = m.index + m[0].length;
  }
  return out.length ? [...out, s.slice(last)] : s;
}

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
      if (line) frag.appendChild(el('p', { class: 'text-para' }, withRefs(line)));
      continue;
    }
    if (!list || listKind !== item.kind) {
      list = frag.appendChild(el(item.kind, { class: 'text-list' }));
      if (item.kind === 'ol' && item.start !== '1') list.start = Number(item.start);
      listKind = item.kind;
    }
    list.appendChild(el('li', { class: internal?.has(item.content) ? 'internal-item' : null }, withRefs(item.content)));
  }
  return frag;
}

/** The lines `b` removes (-) and adds (+) against `a`, in order (a longest common subsequence of lines): what a
 * trainer changed in the editor since the version they opened, shown after a publish conflict (a trial had only the
 * whole text to find their own change in). */
export function lineDiff(a, b) {
  const x = a.split('\n');
  const y = b.split('\n');
  const common = Array.from({ length: x.length + 1 }, () => new Array(y.length + 1).fill(0));
  for (let i = x.length - 1; i >= 0; i--) {
    for (let j = y.length - 1; j >= 0; j--) {
      common[i][j] = x[i] === y[j] ? common[i + 1][j + 1] + 1 : Math.max(common[i + 1][j], common[i][j + 1]);
    }
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i] === y[j]) {
      i++;
      j++;
    } else if (j >= y.length || (i < x.length && common[i + 1][j] >= common[i][j + 1])) {
      out.push(`-${x[i++]}`);
    } else {
      out.push(`+${y[j++]}`);
    }
  }
  return out;
}
