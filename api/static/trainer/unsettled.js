/* A publish whose answer never arrived (the connection dropped, the service restarted mid-publish, the database went
   away): the workspace asks the service what became of it instead of calling it failed. An operator's trial killed
   the service mid-publish; the trainer read 发布失败 although the version had gone live, and a second try then
   met a conflict with their own version. The service completes or undoes such a publish when it is back. */

import { api } from '../lib/api.js';
import { el } from '../lib/dom.js';
import { notice, setMsg } from './messages.js';
import { sopPath, state } from './state.js';

// No answer, or one that says the publish may be under way or cut off: only the service can say what happened.
const UNCERTAIN = new Set([0, 500, 502, 503, 504]);
const POLL_MS = 2000;
const GIVE_UP_MS = 90_000;

export const uncertain = (err) => UNCERTAIN.has(err.status);

/** What became of a publish of `id` built on `base` (undefined for a new SOP): {state: 'published', version},
    {state: 'not'}, {state: 'other', version, author} (a newer version is someone else's), or null while the service
    cannot say. Reading the source first settles this replica's interrupted publish. */
export async function outcome(id, base) {
  let history;
  try {
    await api(`${sopPath(id)}/source`);
    history = await api(`${sopPath(id)}/history`);
  } catch (err) {
    return err.status === 404 ? { state: 'not' } : null;
  }
  const newest = history.reduce((a, b) => (b.version > (a?.version ?? -1) ? b : a), null);
  if (!newest || newest.version <= (base ?? 0) || newest.action === 'delete') return { state: 'not' };
  if (state.name && newest.author !== state.name) return { state: 'other', ...newest };
  return { state: 'published', version: newest.version };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Ask until the service says (or GIVE_UP_MS pass), telling the trainer meanwhile; then the outcome as a message.
    `done(version)` reloads a publish that went live; `retry()` publishes again. */
export async function settle(id, base, { done, retry, conflict }) {
  setMsg(
    notice(
      'warn',
      el('span', { class: 'spinner' }),
      el('strong', null, ' 发布结果未确认：'),
      '与服务的连接中断了（服务可能正在重启）。正在向服务确认这次发布是否生效，请不要关闭页面……',
    ),
  );
  const deadline = Date.now() + GIVE_UP_MS;
  let found = await outcome(id, base);
  while (found === null && Date.now() < deadline) {
    await sleep(POLL_MS);
    found = await outcome(id, base);
  }
  if (found === null) {
    const again = button('settle-again-btn', '确认发布结果', () => settle(id, base, { done, retry, conflict }));
    setMsg(
      notice(
        'error',
        el('strong', null, '仍无法确认发布结果：服务暂时无法访问。'),
        el('div', null, '您的修改仍在编辑器里。服务恢复后请点“确认发布结果”，确认之前不要重复发布。'),
        el('div', { class: 'actions' }, again),
      ),
    );
  } else if (found.state === 'published') {
    await done(found.version);
  } else if (found.state === 'other') {
    setMsg(conflict({ message: `最新版本 v${found.version} 由 ${found.author} 发布。` }));
  } else {
    setMsg(
      notice(
        'error',
        el('strong', null, '未发布：服务中断时这次发布没有完成，已经撤销。'),
        el('div', null, '您的修改仍在编辑器里，可以直接重新发布。'),
        el('div', { class: 'actions' }, button('republish-btn', '重新发布', retry)),
      ),
    );
  }
}

function button(id, label, onclick) {
  const b = el('button', { type: 'button', class: 'btn small', id }, label);
  b.addEventListener('click', () => {
    b.disabled = true;
    onclick();
  });
  return b;
}
