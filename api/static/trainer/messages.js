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
    // 「“健身房几点开门” → community-rules、access-lost-key」 (a trial read it whole, quotes doubled, ids for names)
    const row = /^“(.*)” → (.*)$/.exec(d);
    if (row) return { query: row[1], top: row[2] === '（无结果）' ? [] : row[2].split('、') };
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

/** What a publish, delete or rollback did to the questions people asked lately (the result's `impact`): those whose
 * first SOP changed or whose tenants' answer is no longer public, most asked first, or that none did. A trial's deletion and new SOP moved questions silently. */
export function impactNote(impact) {
  if (!impact?.compared) return null;
  if (!impact.moved_total) {
    return el('div', { class: 'impact' }, `近期常问的 ${impact.compared} 个问题，第一条结果都没有变。`);
  }
  const name = (id, title) => (id ? `《${title || id}》` : '无结果');
  const rows = impact.moved.map((m) =>
    el(
      'li',
      null,
      `「${m.query}」`,
      el('span', { class: 'faint' }, `（${m.audience === 'public' ? '租客' : '坐席'}·近 30 天 ${m.asked} 次）`),
      // the same SOP first, but some of its sections are no longer public (a trial made one 内部)
      m.section_gone
        ? `：仍是${name(m.after, m.after_title)}，但它的「${m.section_gone}」已不再对租客公开，请确认租客还能得到答案`
        : `：${name(m.before, m.before_title)} → ${name(m.after, m.after_title)}`,
      // a phrasing agents confirmed keeps taking their search to the SOP it was taught for (a re-check's split)
      m.learned
        ? el(
            'div',
            { class: 'faint' },
            '坐席确认过的问法：检索仍会把它带到原来的文档，不对请在该文档的「学到的问法」里删掉',
          )
        : null,
    ),
  );
  const more = impact.moved_total > impact.moved.length ? `（列出前 ${impact.moved.length} 个）` : '';
  return el(
    'div',
    { class: 'impact' },
    el('strong', null, `近期常问的 ${impact.compared} 个问题中，${impact.moved_total} 个的结果变了${more}：`),
    el('ul', null, rows),
    el('div', { class: 'faint' }, '请确认这些问题现在找到的是对的文档；不对的，调整内容、标签或示例后再发布。'),
  );
}

/** A 「第 N 行」 button that opens a document (`open`, async) and then selects that line of it in the editor. */
export function lineButton(line, open) {
  const go = el(
    'button',
    { type: 'button', class: 'linkish issue-line', title: '打开文档并选中这一行' },
    `第 ${line} 行`,
  );
  go.addEventListener('click', async () => {
    await open();
    showLine(line);
  });
  return go;
}
