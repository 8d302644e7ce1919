/* Publishing what is in the editor, deleting and rolling back, with readable refusals (conflict, regression,
   invalid document). */

import { api } from '../lib/api.js';
import { el } from '../lib/dom.js';
import { lineDiff } from '../lib/text.js';
import { reloadDoc, renderHeader } from './docs.js';
import { diffLines } from './history.js';
import { frontMatterId, impactNote, issueList, notice, regressionRows, setMsg, splitIssues } from './messages.js';
import { sopPath, state, summaryOf, ui } from './state.js';
import { settle, uncertain } from './unsettled.js';

const SOP_ID = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

function idOf(text) {
  const id = frontMatterId(text);
  if (!id) {
    setMsg(
      notice('error', '文件头缺少 id：第一行应为 ---，并写上 id: 小写英文-数字-连字符（例如 repair-leak-ceiling）。'),
    );
    return null;
  }
  if (!SOP_ID.test(id)) {
    setMsg(notice('error', `id “${id}” 无效：只能用小写英文字母、数字和连字符，例如 repair-leak-ceiling。`));
    return null;
  }
  return id;
}

function published(res, force, minor) {
  // the same text as the live version: nothing published (an operator's trial got a new version each time)
  if (res.action === 'unchanged')
    return notice('info', el('strong', null, `内容与当前版本 v${res.version} 相同，没有发布新版本。`));
  const items = [];
  if (res.minor) items.push('小改动：未生成变更卡片，坐席无需确认');
  else if (minor) items.push('改了数字，不算小改动：已照常给坐席发变更确认卡片');
  if (res.examples_checked) items.push(`${res.examples_checked} 条示例查询全部命中（前 3 名）`);
  if (force) items.push('已跳过示例查询回归检查（force）');
  items.push(`文件：${res.path}`);
  return notice(
    'ok',
    el('strong', null, `已发布 v${res.version}，用时 ${res.seconds.toFixed(1)} 秒`),
    el(
      'ul',
      null,
      items.map((t) => el('li', null, t)),
    ),
    res.warnings.length ? [el('div', null, '警告：'), issueList(res.warnings)] : null,
    impactNote(res.impact),
  );
}

/** A staff-only marker that does not count (## 内部备注（内部）) leaves the section public: publishing it puts an
 * internal phone number in front of tenants with one click; a time taken out of the time limits that other lines
 * still say goes live unseen. The check's warnings say so; publishing then needs a second yes. True when there is
 * nothing to confirm, or the trainer confirmed. */
async function publicMarkersConfirmed(text) {
  let issues;
  try {
    issues = (await api('/v1/preview', { method: 'POST', text })).issues || [];
  } catch {
    return true; // the publish itself checks the document and reports what fails
  }
  const stale = issues.filter((i) => /时限要求里的.*已经改了/.test(i));
  if (stale.length) {
    // a time limit changed and other lines still say the old one (a training lead's trial published it unseen)
    const where = stale.map((i) => `· ${i.replace(/^[^\s:]+:(\d+):\s*警告:\s*/, '第 $1 行：').split(' / ')[0]}`);
    if (!window.confirm(`时限要求改了，但这些行还写着原来的时间：\n\n${where.join('\n')}\n\n仍要发布吗？`)) {
      setMsg(notice('warn', '未发布：请把这些行的时间一并改好。'), issueList(stale));
      return false;
    }
  }
  const said = issues.filter((i) => /已改为内部，这一行仍对租客写着/.test(i));
  if (said.length) {
    // a section made staff-only whose sums FAQ answers and script lines still tell tenants (a trial)
    const where = said.map((i) => `· ${i.replace(/^[^\s:]+:(\d+):\s*警告:\s*/, '第 $1 行：').split(' / ')[0]}`);
    if (!window.confirm(`改为内部的小节里的金额，这些公开的行还写着：\n\n${where.join('\n')}\n\n仍要发布吗？`)) {
      setMsg(notice('warn', '未发布：请把这些行一并改为内部或删去金额。'), issueList(said));
      return false;
    }
  }
  const leaks = issues.filter((i) => /将对租客公开/.test(i));
  if (!leaks.length) return true;
  const lines = leaks.map((i) => `· ${i.replace(/^[^\s:]+:(\d+):\s*警告:\s*/, '第 $1 行：')}`).join('\n');
  const ok = window.confirm(
    `以下内容没有被标为仅员工可见，发布后租客可以看到：\n\n${lines}\n\n如只给员工看，请在标题末尾写 [内部]。仍要发布吗？`,
  );
  if (!ok) setMsg(notice('warn', '未发布：请检查上面列出的小节是否应仅员工可见。'), issueList(leaks));
  return ok;
}

export async function publish(force) {
  const text = ui.editor.value;
  if (!text.trim()) {
    setMsg(notice('warn', '编辑器是空的，没有可发布的内容。'));
    return;
  }
  const id = idOf(text);
  if (!id) return;
  const other = id === state.selected ? null : summaryOf(id);
  if (other) {
    // The id names another published SOP: publishing would replace it. The server refuses too (409 without
    // base_version); say why here, before anything is sent.
    setMsg(
      notice(
        'error',
        el('strong', null, `发布失败：id “${id}” 已被「${other.title}」（v${other.version}）使用。`),
        el('div', null, '新建 SOP 请换一个 id；要修改那份 SOP，请在左侧列表中打开它再编辑。'),
      ),
    );
    return;
  }
  if (!(await publicMarkersConfirmed(text))) return;
  const base = id === state.selected ? state.base : undefined;
  const minor = ui.minorCheck.checked;
  ui.publishBtn.disabled = true;
  setMsg(notice('info', el('span', { class: 'spinner' }), ' 正在发布：校验格式、重建索引、运行示例查询…'));
  try {
    const res = await api(sopPath(id), {
      method: 'PUT',
      text,
      query: { base_version: base, force: force ? 'true' : undefined, minor: minor ? 'true' : undefined },
    });
    state.loadedText = ui.editor.value; // published: not a draft of the previously selected document
    ui.minorCheck.checked = false; // one publish at a time: the next change notifies agents unless marked again
    await reloadDoc(id);
    setMsg(published(res, force, minor));
  } catch (err) {
    if (uncertain(err)) await settle(id, base, afterUncertain(id, text, force));
    else showPublishError(err, { retry: () => publish(true), action: '发布' });
  } finally {
    ui.publishBtn.disabled = false;
  }
}

/** What the workspace does once the service says what became of a publish whose answer never arrived. */
function afterUncertain(id, text, force) {
  return {
    done: async (version) => {
      state.loadedText = text;
      ui.minorCheck.checked = false;
      await reloadDoc(id);
      setMsg(
        notice(
          'info',
          el('strong', null, `已发布（v${version}）。`),
          '发布时与服务的连接中断了；向服务确认后，这次修改已经生效。',
        ),
      );
    },
    retry: () => publish(force),
    conflict: (err) => conflict(err, '发布'),
  };
}

/** What the trainer changed since the version they opened, as lines removed and added (null if it cannot be read). */
async function myChanges(id, base, mine) {
  if (!base) return null;
  try {
    const opened = await api(`${sopPath(id)}/versions/${base}`);
    const lines = lineDiff(opened.content, mine);
    return lines.length ? diffLines(`${lines.join('\n')}\n`) : null;
  } catch {
    return null;
  }
}

function conflict(err, action) {
  const reload = el('button', { type: 'button', class: 'btn small', id: 'reload-btn' }, '重新加载最新版本');
  const mine = ui.editor.value;
  const base = state.base;
  reload.addEventListener('click', async () => {
    const id = state.selected || frontMatterId(mine);
    if (!id) return;
    await reloadDoc(id);
    const changes = await myChanges(id, base, mine);
    const whole = el('details', null, el('summary', null, '查看我刚才的全文'), el('pre', { class: 'code' }, mine));
    const lead = changes
      ? `已加载最新版本。您相对打开时的 v${base} 改了下面这些行（- 删去，+ 新增），请在最新版本上重新改一遍：`
      : '已加载最新版本。您之前的修改在下方，可复制后重新合并：';
    setMsg(notice('info', lead, changes ? el('div', { class: 'my-changes' }, changes) : null, whole));
  });
  return notice(
    'warn',
    el(
      'strong',
      null,
      `${action}失败：在您打开之后，这份 SOP 已经保存过更新的版本（可能是同事，也可能是您在别的窗口）。`,
    ),
    el('div', null, err.message),
    el('div', null, '为避免覆盖对方的修改，请重新加载最新版本，把您的修改合并进去后再发布。'),
    el('div', { class: 'actions' }, reload),
  );
}

function regression(err, action, retry) {
  const rows = regressionRows(err);
  const forceBtn = el('button', { type: 'button', class: 'btn small danger', id: 'force-publish-btn' }, '仍然发布');
  forceBtn.addEventListener('click', () => {
    forceBtn.disabled = true;
    retry();
  });
  const named = (id) => `《${summaryOf(id)?.title || id}》`; // titles, as agents see them (a trial read ids)
  const top = (r) => (r.top ? ` → 目前前 3 名：${r.top.length ? r.top.map(named).join('') : '（无结果）'}` : '');
  const list = rows.length
    ? el(
        'ul',
        { class: 'issue-list' },
        rows.map((r) => el('li', null, `“${r.query}”`, top(r))),
      )
    : el('div', null, err.message);
  return notice(
    'error',
    el('strong', null, `${action}被拦下：修改后，下列示例查询在前 3 名里找不到这份 SOP。`),
    list,
    el('div', null, '请调整内容或文件头中的 examples；确认无误也可以强制发布。'),
    el('div', { class: 'actions' }, forceBtn),
  );
}

function showPublishError(err, { retry, action }) {
  if (err.status === 409) {
    setMsg(conflict(err, action));
  } else if (err.code === 'example_regression') {
    setMsg(regression(err, action, retry));
  } else if (err.code === 'writer_busy') {
    setMsg(notice('warn', el('strong', null, `${action}没有进行：`), err.message)); // a `kb ingest`, say; try again later
  } else if (err.status === 422) {
    const issues = err.code === 'http_422' || err.code === 'invalid_sop' ? splitIssues(err.message) : [];
    const detail = issues.length > 0 && issues[0] !== err.message ? issueList(issues) : el('div', null, err.message);
    setMsg(notice('error', el('strong', null, `${action}失败：文档有错误，请修改后再试。`), detail));
  } else {
    setMsg(notice('error', el('strong', null, `${action}失败：`), err.message));
  }
}

/** What the delete would take away, for the confirm dialog (a trial's dialog said only that history is kept);
 * empty when the check cannot be read (the delete itself still warns). */
async function deleteCosts(id) {
  let c;
  try {
    c = await api(`${sopPath(id)}/delete-check`);
  } catch {
    return '';
  }
  const lines = [];
  if (c.agent_searches || c.tenant_answers) {
    lines.push(
      `最近 30 天，坐席检索 ${c.agent_searches} 次把它排在第一，租客聊天 ${c.tenant_answers} 次由它回答；删除后这些问题会转到别的文档或转人工。`,
    );
  }
  if (c.learned) lines.push(`坐席确认过的 ${c.learned} 个问法会随它一起删除。`);
  if (c.mentioned_by.length) {
    lines.push(`这些文档的正文提到了它，请一并修改：${c.mentioned_by.map((m) => `「${m.title}」`).join('、')}。`);
  }
  for (const w of c.warnings) lines.push(`注意：${w}`);
  return lines.length ? `\n\n${lines.map((l) => `· ${l}`).join('\n')}` : '';
}

async function deleteDoc() {
  const id = state.selected;
  if (!id || !state.exists) return;
  const s = summaryOf(id);
  const costs = await deleteCosts(id);
  const question = `确定要删除「${s ? s.title : id}」（${id}）吗？\n\n删除后坐席和租客都搜不到它；历史版本会保留，可以回滚恢复。${costs}`;
  if (!window.confirm(question)) return;
  ui.deleteBtn.disabled = true;
  const base = state.base;
  const deleted = async (version, lost, res) => {
    await reloadDoc(id);
    setMsg(
      notice(
        lost ? 'info' : 'ok',
        el('strong', null, `已删除 ${id}（记录为 v${version}）。`),
        lost ? '删除时与服务的连接中断了；向服务确认后，删除已经生效。' : null,
        el('div', null, '需要恢复时，在右侧历史中选择一个版本「回滚到此版本」。'),
        (res?.warnings || []).map((w) => el('div', { class: 'warn-line' }, `注意：${w}`)),
        impactNote(res?.impact),
      ),
    );
  };
  try {
    const res = await api(sopPath(id), { method: 'DELETE', query: { base_version: base } });
    await deleted(res.version, false, res);
  } catch (err) {
    if (uncertain(err)) {
      const retry = () => deleteDoc();
      await settle(id, base, { done: (v) => deleted(v, true), retry, conflict: (e) => conflict(e, '删除') }, 'delete');
    } else showPublishError(err, { retry: () => {}, action: '删除' });
    renderHeader();
  }
}

export async function rollback(version, btn) {
  const id = state.selected;
  if (!id) return;
  // a deleted SOP is brought back, not rolled back (a training lead's trial read 「回滚」 for a restore)
  const restoring = !state.exists;
  const done = restoring ? `已恢复（用 v${version} 的内容）` : `已回滚到 v${version}`;
  const question = restoring
    ? `确定要恢复 ${id} 吗？\n\n会以 v${version} 的内容重新发布，坐席和租客立即可以找到它；删除记录保留在历史中。删除时一并清除的学到的问法不会恢复。`
    : `确定要把 ${id} 回滚到 v${version} 吗？\n\n会以 v${version} 的内容发布一个新版本，坐席和租客立即看到它；当前版本保留在历史中，可以再回滚回来。`;
  if (!window.confirm(question)) return;
  btn.disabled = true;
  setMsg(notice('info', el('span', { class: 'spinner' }), restoring ? ' 正在恢复…' : ` 正在回滚到 v${version}…`));
  // The old version goes through the same staff-marker check as a publish (a trial restored a deleted SOP whose
  // 「补偿标准（内部）」 section then showed to tenants, with one click)
  let old = null;
  try {
    old = await api(`${sopPath(id)}/versions/${version}`);
  } catch {
    /* the rollback itself reports what fails */
  }
  if (old && !(await publicMarkersConfirmed(old.content))) {
    btn.disabled = false;
    return;
  }
  const base = state.base ?? 0;
  try {
    const res = await api(`${sopPath(id)}/rollback`, {
      method: 'POST',
      json: { to_version: version, base_version: base },
    });
    await reloadDoc(id);
    setMsg(
      notice(
        'ok',
        el('strong', null, `${done}：发布为新版本 v${res.version}，用时 ${res.seconds.toFixed(1)} 秒。`),
        res.warnings.length ? issueList(res.warnings) : null,
        impactNote(res.impact),
      ),
    );
  } catch (err) {
    btn.disabled = false;
    if (!uncertain(err)) return showPublishError(err, { retry: () => {}, action: '回滚' });
    const settled = async (v) => {
      await reloadDoc(id);
      const what = restoring ? '恢复' : '回滚';
      const lost = `${what}时与服务的连接中断了；向服务确认后，${what}已经生效。`;
      setMsg(notice('info', el('strong', null, `${done}：发布为新版本 v${v}。`), lost));
    };
    const retry = () => rollback(version, btn);
    await settle(id, base, { done: settled, retry, conflict: (e) => conflict(e, '回滚') }, 'rollback');
  }
}

export function initPublish() {
  ui.publishBtn.addEventListener('click', () => publish(false));
  ui.deleteBtn.addEventListener('click', deleteDoc);
  // Keyboard: Ctrl/Cmd+S publishes, Ctrl/Cmd+Enter previews (while editing).
  ui.editor.addEventListener('keydown', (ev) => {
    if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === 's') {
      ev.preventDefault();
      publish(false);
    } else if ((ev.ctrlKey || ev.metaKey) && ev.key === 'Enter') {
      ev.preventDefault();
      ui.previewBtn.click();
    }
  });
}
