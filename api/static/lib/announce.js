/* What a screen reader should hear without moving focus: one polite live region per page (an accessibility review:
   new cases, a tenant's reply, the number of results and a changed call suggestion were silent). */

let region = null;
let timer = null;

/** Speak `text` once (politely, after what the reader is saying); the same text twice in a row is spoken again. */
export function announce(text) {
  if (!region) {
    region = document.createElement('div');
    region.className = 'sr-only';
    region.id = 'announcer';
    region.setAttribute('role', 'status');
    region.setAttribute('aria-live', 'polite');
    document.body.appendChild(region);
  }
  region.textContent = '';
  clearTimeout(timer);
  // A change after the region was emptied is what readers announce; the delay lets them see both.
  timer = setTimeout(() => {
    region.textContent = text;
  }, 60);
}

/** Speak `text` after `ms` of quiet under `key` (results arriving while the agent types are announced once). */
const settled = new Map();
export function announceSettled(key, text, ms = 800) {
  clearTimeout(settled.get(key));
  settled.set(
    key,
    setTimeout(() => announce(text), ms),
  );
}
