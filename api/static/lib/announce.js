/* What a screen reader should hear without moving focus (an accessibility review: new cases, a tenant's reply, the
   number of results and a changed call suggestion were silent). Each message is a new line of a polite log, so a
   later one never replaces one not yet read (a re-check heard a tenant's 烟越来越大了 replaced by search results half
   a second later); urgent ones go to an assertive region. */

const KEEP = 5; // lines kept in each region
const regions = {};

function region(urgent) {
  const key = urgent ? 'urgent' : 'polite';
  if (!regions[key]) {
    const r = document.createElement('div');
    r.className = 'sr-only';
    r.id = urgent ? 'announcer-urgent' : 'announcer';
    r.setAttribute('role', urgent ? 'alert' : 'log');
    r.setAttribute('aria-live', urgent ? 'assertive' : 'polite');
    document.body.appendChild(r);
    regions[key] = r;
  }
  return regions[key];
}

/** Say `text` once; `urgent` interrupts what the reader is saying (an emergency, a tenant's message). */
export function announce(text, { urgent = false } = {}) {
  const r = region(urgent);
  const line = document.createElement('div');
  line.textContent = text;
  r.appendChild(line);
  while (r.childElementCount > KEEP) r.firstElementChild.remove();
}

/** Say `text` after `ms` of quiet under `key`, and only when it differs from what was said last under that key
    (results arriving word by word as the agent types in pinyin are said once, not once per word). */
const pending = new Map();
const said = new Map();
export function announceSettled(key, text, ms = 1500) {
  clearTimeout(pending.get(key));
  pending.set(
    key,
    setTimeout(() => {
      if (said.get(key) === text) return;
      said.set(key, text);
      announce(text);
    }, ms),
  );
}
