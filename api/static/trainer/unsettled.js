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

// (writer_busy: another writer held the index, so the service did nothing and says so)
export const uncertain = (err) => UNCERTAIN.has(err.status) && err.code !== 'writer_busy';

/** What became of a publish of `id` built on `base` (undefined for a new SOP): {state: 'published', version},
    {state: 'not'}, {state: 'other', version, author} (a newer version is someone else's), or null while the service
    cannot say. Reading the source first settles this replica's interrupted publish. */
// What each action leaves as the newest history entry when it went through, and how the trainer calls it.
const ACTIONS = {
  publish: { label: '发布', went: (a) => a !== 'delete', again: 'republish-btn' },
  delete: { label: '删除', went: (a) => a === 'delete', again: 'redo-delete-btn' },
  rollback: { label: '回滚', went: (a) => a === 'rollback', again: 'redo-rollback-btn' },
};

/** What became of a publish (or delete, rollback: `kind`) of `id` built on `base` (undefined for a new SOP):
    {state: 'published', version}, {state: 'not'}, {state: 'other', version, author} (a newer version is someone
    else's), or null while the service cannot say. Reading the source first settles this replica's interrupted
    publish (a deleted SOP has none: 404, and its history still says). */
export async function outcome(id, base, kind = 'publish') {
  let history;
  try {
    try {
      await api(`${sopPath(id)}/source`);
    } catch (err) {
      if (err.status !== 404) throw err;
    }
    history = await api(`${sopPath(id)}/history`);
  } catch (err) {
    return err.status === 404 ? { state: 'not' } : null;
  }
  const newest = history.reduce((a, b) => (b.version > (a?.version ?? -1) ? b : a), null);
  if (!newest || newest.version <= (base ?? 0)) return { state: 'not' };
  if (state.name && newest.author !== state.name) return { state: 'other', ...newest };
  if (!ACTIONS[kind].went(newest.action)) return { state: 'not' };
  return { state: 'published', version: newest.version };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Ask until the service says (or GIVE_UP_MS pass), telling the trainer meanwhile; then the outcome as a message.
    `done(version)` reloads an action that went through; `retry()` does it again. An operator's trial left a delete
    and a rollback whose answers were lost reported as failed, as publishes were before. */
export async function settle(id, base, { done, retry, conflict }, kind = 'publish') {
  const { label, again } = ACTIONS[kind];
  setMsg(
    notice(
      'warn',
      el('span', { class: 'spinner' }),
      el('strong', null, ` ${label}结果未确认：`),
      `与服务的连接中断了（服务可能正在重启）。正在向服务确认这次${label}是否生效，请不要关闭页面……`,
    ),
  );
  const deadline = Date.now() + GIVE_UP_MS;
  let found = await outcome(id, base, kind);
  while (found === null && Date.now() < deadline) {
    await sleep(POLL_MS);
    found = await outcome(id, base, kind);
  }
  if (found === null) {
    const ask = button('settle-again-btn', `确认${label}结果`, () => settle(id, base, { done, retry, conflict }, kind));
    setMsg(
      notice(
        'error',
        el('strong', null, `仍无法确认${label}结果：服务暂时无法访问。`),
        el(
          'div',
          null,
          `${kind === 'publish' ? '您的修改仍在编辑器里。' : ''}服务恢复后请点“确认${label}结果”，确认之前不要重复${label}。`,
        ),
        el('div', { class: 'actions' }, ask),
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
        el('strong', null, `未${label}：服务中断时这次${label}没有完成，已经撤销。`),
        el('div', null, kind === 'publish' ? '您的修改仍在编辑器里，可以直接重新发布。' : `可以直接重新${label}。`),
        el('div', { class: 'actions' }, button(again, `重新${label}`, retry)),
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
