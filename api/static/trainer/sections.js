// Report sections of the trainer workspace (gap report, training report): a heading with a count and a table.
import { el } from '../lib/dom.js';

const emptyRow = (cols, text) => el('tr', null, el('td', { colspan: String(cols), class: 'empty-row' }, text));

/** A report section: heading, count note and a table (or `body` when given). */
export function box({ id, title, count, head, rows, empty, body, wide = false }) {
  const content =
    body ||
    el(
      'table',
      { class: 'grid' },
      el(
        'thead',
        null,
        el(
          'tr',
          null,
          head.map(([label, cls]) => el('th', { class: cls || null }, label)),
        ),
      ),
      el('tbody', null, rows.length ? rows : emptyRow(head.length, empty)),
    );
  return el(
    'section',
    { class: wide ? 'box wide' : 'box', id },
    el('h3', null, title, el('span', { class: 'count' }, count)),
    wide ? el('div', { class: 'table-wrap' }, content) : content,
  );
}
