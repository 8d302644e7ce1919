/* Single-key shortcuts (/ to search, P to pin a call suggestion) can be turned off, for speech input and stray key
   presses (WCAG 2.1.4; an accessibility review). Kept in this browser; on unless turned off. Keys with Alt stay. */

const KEY = 'kb-single-keys';

export const singleKeysOn = () => localStorage.getItem(KEY) !== 'off';

/** The button that turns them on and off (its words say the state; aria-pressed too). */
export function singleKeysToggle(button) {
  const label = () => {
    const on = singleKeysOn();
    button.textContent = on ? '单键快捷键：开' : '单键快捷键：关';
    button.setAttribute('aria-pressed', String(on));
  };
  button.addEventListener('click', () => {
    localStorage.setItem(KEY, singleKeysOn() ? 'off' : 'on');
    label();
  });
  label();
}
