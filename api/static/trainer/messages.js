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
export const issueList = (issues) =>
  el(
    'ul',
    { class: 'issues' },
    issues.map((i) => el('li', { class: issueClass(i) }, i)),
  );

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
  const id = /^id\s*:\s*["']?([^"'\s#]+)["']?\s*(?:#.*)?$/m.exec(m[1]);
  return id ? id[1] : null;
}
