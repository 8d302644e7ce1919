/* Notices under the editor and the server's error messages made readable. */

import { append, clear, el } from '../lib/dom.js';
import { ui } from './state.js';

export const notice = (kind, ...children) => el('div', { class: `notice ${kind}` }, ...children);
export const spinnerNote = (text) => el('div', { class: 'faint' }, el('span', { class: 'spinner' }), ` ${text}`);

/** Replace the message under the editor buttons (nothing = clear it). */
export function setMsg(...nodes) {
  append(clear(ui.publishMsg), nodes);
}

/** "文档有错误 / invalid SOP: a.md:3: 错误: …；a.md:9: 警告: …" -> ["a.md:3: 错误: …", …] */
export function splitIssues(message) {
  const body = message.replace(/^[^:]*invalid SOP:\s*/, '');
  return body
    .split(/；(?=[^\s；]+?:\d+: )/)
    .map((s) => s.trim())
    .filter(Boolean);
}

export const issueClass = (text) => (/:\s*警告:/.test(text) ? 'warning' : 'error');

/** Select line `line` (1-based) of the editor and scroll it into view, a third from the top. */
export function showLine(line) {
  const editor = ui.editor;
  const lines = editor.value.split('\n');
  const n = Math.min(Math.max(line, 1), lines.length);
  const start = lines.slice(0, n - 1).reduce((sum, l) => sum + l.length + 1, 0);
  editor.focus();
  editor.setSelectionRange(start, start + lines[n - 1].length);
  const height = Number.parseFloat(getComputedStyle(editor).lineHeight) || 20;
  editor.scrollTop = Math.max(0, (n - 1) * height - editor.clientHeight / 3);
}

/** "a.md:12: 错误: …" as 「第 12 行 · 错误: …」, a button that shows that line in the editor (the file name is the
 * editor's own document, or preview.md for a draft: no help to a trainer). */
function issueItem(text) {
  const found = /^[^\s:]+:(\d+):\s*(.*)$/s.exec(text);
  if (!found) return el('li', { class: issueClass(text) }, text);
  const line = Number(found[1]);
  const go = el(
    'button',
    { type: 'button', class: 'linkish issue-line', title: '在编辑器中选中这一行' },
    `第 ${line} 行`,
  );
  go.addEventListener('click', () => showLine(line));
  return el('li', { class: issueClass(text), title: text }, go, ` · ${found[2]}`);
}

export const issueList = (issues) => el('ul', { class: 'issues' }, issues.map(issueItem));

/** Python-repr failure details of example_regression -> readable rows. */
export function regressionRows(err) {
  return (err.details || []).map((d) => {
    const q = /'query':\s*(['"])(.*?)\1/.exec(d);
    if (!q) return { query: d, top: null };
    const top = /'top':\s*\[(.*?)\]/.exec(d);
    const ids = top
      ? top[1]
          .split(',')
          .map((s) => s.trim().replace(/^['"]|['"]$/g, ''))
          .filter(Boolean)
      : [];
    return { query: q[2], top: ids };
  });
}

/** The `id:` of the front matter, or null. */
export function frontMatterId(text) {
  const m = /^\uFEFF?---\s*\n([\s\S]*?)\n(?:---|\.\.\.)\s*(?:\n|$)/.exec(text.replace(/\r\n?/g, '\n'));
  if (!m) return null;
  // the whole value, spaces and all: 「id: QC_Parcel 2」 is an invalid id, not a missing one (a trial was told 缺少 id)
  const id = /^id\s*:[ \t]*(.*?)[ \t]*(?:#.*)?$/m.exec(m[1]);
  const value = id ? id[1].replace(/^(["'])(.*)\1$/, '$2').trim() : '';
  return value || null;
}
