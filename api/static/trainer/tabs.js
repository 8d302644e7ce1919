/* The tabs (documents, hit test, gap report, training, service figures, accounts for admins), kept in the URL's hash. */

import { $ } from '../lib/dom.js';

const TABS = ['docs', 'hittest', 'gaps', 'training', 'service', 'accounts'];
const shownHooks = new Map(); // tab -> functions to run when it is shown

/** Run `fn` every time tab `name` is shown. */
export function onTabShown(name, fn) {
  shownHooks.set(name, [...(shownHooks.get(name) || []), fn]);
}

export const currentTab = () => TABS.find((t) => $(`#tab-${t}`).getAttribute('aria-selected') === 'true') || 'docs';

export function showTab(name, { updateHash = true } = {}) {
  const shown = TABS.includes(name) ? name : 'docs';
  for (const t of TABS) {
    const on = t === shown;
    $(`#tab-${t}`).setAttribute('aria-selected', on ? 'true' : 'false');
    $(`#tab-${t}`).tabIndex = on ? 0 : -1;
    $(`#panel-${t}`).hidden = !on;
  }
  if (updateHash && location.hash !== `#${shown}`) history.replaceState(null, '', `#${shown}`);
  for (const fn of shownHooks.get(shown) || []) fn();
}

export function initTabs() {
  for (const t of TABS) $(`#tab-${t}`).addEventListener('click', () => showTab(t));
  $('.tabs').addEventListener('keydown', (ev) => {
    if (ev.key !== 'ArrowRight' && ev.key !== 'ArrowLeft') return;
    const i = TABS.indexOf(currentTab());
    const next = TABS[(i + (ev.key === 'ArrowRight' ? 1 : TABS.length - 1)) % TABS.length];
    showTab(next);
    $(`#tab-${next}`).focus();
  });
  window.addEventListener('hashchange', () => showTab(location.hash.slice(1), { updateHash: false }));
}
