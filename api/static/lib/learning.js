/* Learning from use, in the staff pages.
 Agent console: records which SOP an agent opened and which script line they copied after a search
 (POST /v1/events), a 👍 from the full-SOP drawer, and a picker to mark the right SOP when it was not among the
 results. Trainer workspace: the learned phrasings of the selected SOP (who, when, how often confirmed) with
 remove and "add to examples", and the learned channel in the hit test. The pages' modules call `learning` (vote text, hit-test badge) and set its
 hooks `openSop` (console) and `reload` (trainer). */
import { api } from './api.js';
import { $, clear, el, icon } from './dom.js';
import { formatTs } from './text.js';

const ROLE_LABELS = { agent: '坐席', trainer: '培训师', public: '租客' };
const OUTCOME_TEXT = {
  // what it does: the same words or nearly the same (a trial's 我家→家里 plus 得→的 was not helped by a 👍)
  learned: '已记录：以后同样或几乎相同的问法会优先显示这份 SOP',
  confirmed: '已记录：这个问法再次被确认',
  rejected: '已记录：不再因为这个问法优先显示这份 SOP',
};
export const learning = { openSop: null, reload: null };

/** The text shown after a vote: what it taught agent search (or the plain thanks). */
learning.voteText = (resp) =>
  resp?.behind_emergency
    ? // a danger signal in the words: the emergency procedure stays first whatever was taught (a trial's 👍 said otherwise)
      '已记录：这句话带险情信号，相关的应急处置 SOP 仍会排在这份 SOP 前面'
    : (resp && OUTCOME_TEXT[resp.learned]) || '已记录，谢谢反馈';

/** "agent:3fa2c1" -> "坐席 3fa2c1" (a fingerprint of the key, never the key). */
learning.whoLabel = (who) => {
  const [role, print] = String(who || '').split(':');
  return `${ROLE_LABELS[role] || role}${print ? ` ${print}` : ''}`;
};

// ---- agent console ----------------------------------------------------------------------------------
const consolePage = $('#results') && $('#sop-view');
const sent = new Set(); // `${queryId}|${sopId}|${type}`: one event of a kind per SOP per search

const currentQueryId = () => {
  const id = Number($('#results')?.dataset?.queryId || 0);
  return id > 0 ? id : null;
};

// The search the agent left unused and asked again in other words (the console's episodes say so with
// kb:searched-again): an open or a copy within 90 s counts for its words too (the server checks the rest)
const REFORMULATED_MS = 90_000;
const missed = { queryId: null, at: 0 };
document.addEventListener('kb:searched-again', (ev) => {
  Object.assign(missed, { queryId: ev.detail.queryId, at: Date.now() });
});

learning.event = (type, sopId, queryId = currentQueryId()) => {
  if (!queryId || !sopId) return;
  const key = `${queryId}|${sopId}|${type}`;
  if (sent.has(key)) return;
  sent.add(key);
  const json = { query_id: queryId, sop_id: sopId, type };
  if (missed.queryId && missed.queryId !== queryId && Date.now() - missed.at < REFORMULATED_MS) {
    json.previous_query_id = missed.queryId;
  }
  // Best effort: a lost event must never disturb the agent on a call.
  api('/v1/events', { method: 'POST', json }).catch(() => sent.delete(key));
};

if (consolePage) {
  const drawer = $('#sop-view');
  document.addEventListener('kb:sop-opened', (ev) => {
    learning.event('open', ev.detail.sopId, ev.detail.queryId);
    renderDrawerFoot(ev.detail.sopId, ev.detail.queryId);
  });
  document.addEventListener('kb:copied', (ev) => {
    const holder = ev.target.closest?.('[data-sop-id]');
    if (holder) learning.event('copy', holder.dataset.sopId);
  });

  // A 👍 from the full SOP: also for a SOP the search did not return (opened from the picker below).
  const foot = el('footer', { class: 'drawer-foot learn-foot', hidden: true });
  drawer.appendChild(foot);

  function renderDrawerFoot(sopId, queryId) {
    clear(foot);
    foot.hidden = !queryId;
    if (!queryId) return;
    const msg = el('span', { class: 'vote-msg', role: 'status' });
    const up = el(
      'button',
      { type: 'button', class: 'vote-up', title: '这份 SOP 解决了刚才检索的问题' },
      icon('up'),
      ' 这份就是我要找的',
    );
    up.addEventListener('click', async () => {
      up.disabled = true;
      msg.className = 'vote-msg';
      msg.textContent = '提交中…';
      try {
        const resp = await api('/v1/feedback', { method: 'POST', json: { query_id: queryId, sop_id: sopId, vote: 1 } });
        up.classList.add('active');
        msg.textContent = learning.voteText(resp);
        document.dispatchEvent(new CustomEvent('kb:voted', { detail: { sopId, vote: 1 } })); // the search found it
      } catch (err) {
        up.disabled = false;
        msg.className = 'vote-msg error';
        msg.textContent = `反馈提交失败：${err.message}`;
      }
    });
    foot.append(el('span', { class: 'faint' }, '针对刚才的检索：'), up, msg);
  }

  // "Not among the results?": pick the right SOP from the whole list, open it, and 👍 it from the drawer.
  const results = $('#results');
  const picker = el('div', { class: 'learn-picker', hidden: true });
  const toggle = el('button', { type: 'button', class: 'btn small learn-pick-btn' }, '结果里没有？指定正确的 SOP');
  const bar = el('div', { class: 'learn-pick-bar', hidden: true }, toggle);
  results.after(bar, picker);
  let sops = null;

  const observer = new MutationObserver(() => {
    bar.hidden = !currentQueryId();
    if (bar.hidden) picker.hidden = true;
  });
  observer.observe(results, { attributes: true, attributeFilter: ['data-query-id'] });

  toggle.addEventListener('click', async () => {
    picker.hidden = !picker.hidden;
    if (picker.hidden) return;
    clear(picker).appendChild(el('div', { class: 'faint' }, el('span', { class: 'spinner' }), ' 正在加载 SOP 列表…'));
    try {
      sops = sops || (await api('/v1/sops'));
    } catch (err) {
      clear(picker).appendChild(el('div', { class: 'notice error' }, `无法加载 SOP 列表：${err.message}`));
      return;
    }
    renderPicker();
  });

  function renderPicker() {
    const input = el('input', {
      type: 'search',
      class: 'learn-pick-input',
      placeholder: '输入标题、标签或内容里的词筛选',
      'aria-label': '筛选 SOP',
    });
    const list = el('ul', { class: 'learn-pick-list' });
    const pickItem = (s, note) => {
      const item = el(
        'li',
        null,
        el(
          'button',
          { type: 'button', class: 'learn-pick-item' },
          el('span', { class: 'badge cat' }, s.category),
          ' ',
          s.title,
          ' ',
          el('span', { class: 'mono faint' }, s.sop_id),
          note ? el('span', { class: 'faint' }, ` ${note}`) : null,
        ),
      );
      item.firstChild.addEventListener('click', () => {
        if (learning.openSop) learning.openSop(s.sop_id);
      });
      return item;
    };
    let searchToken = 0;
    const fill = () => {
      const q = input.value.trim().toLowerCase();
      // Titles first, then ids and categories, then tags (访客 listed a parking SOP's tag above the visitor SOP)
      const rank = (s) => {
        if (!q || String(s.title).toLowerCase().includes(q)) return 0;
        if ([s.sop_id, s.category].some((t) => String(t).toLowerCase().includes(q))) return 1;
        return (s.tags || []).some((t) => String(t).toLowerCase().includes(q)) ? 2 : 3;
      };
      const shown = sops
        .map((s) => [rank(s), s])
        .filter(([r]) => r < 3)
        .sort((a, b) => a[0] - b[0])
        .map(([, s]) => s);
      clear(list);
      for (const s of shown.slice(0, 30)) list.appendChild(pickItem(s));
      if (!shown.length) list.appendChild(el('li', { class: 'faint none' }, '标题和标签里没有，正在查内容…'));
      const mine = ++searchToken;
      if (q.length < 2) return;
      // The words may be in the text only (a visitor SOP's script says 您朋友来住几天没问题): its search results too,
      // as a practice search (not logged: the picker is no tenant's question)
      setTimeout(async () => {
        if (mine !== searchToken) return;
        let found;
        try {
          found = await api('/v1/search', { method: 'POST', json: { query: q, top_k: 8, practice: true } });
        } catch (_) {
          return;
        }
        if (mine !== searchToken) return;
        list.querySelector('.none')?.remove();
        const listed = new Set(shown.slice(0, 30).map((s) => s.sop_id));
        const more = found.results.filter((h) => !listed.has(h.sop_id));
        for (const h of more) list.appendChild(pickItem(h, '（内容相关）'));
        if (!list.childElementCount) list.appendChild(el('li', { class: 'faint' }, '没有匹配的 SOP'));
      }, 250);
    };
    input.addEventListener('input', fill);
    clear(picker).append(
      el(
        'div',
        { class: 'faint' },
        '打开正确的 SOP 后，点抽屉底部的「这份就是我要找的」：以后同样或几乎相同的问法会优先显示它。',
      ),
      input,
      list,
    );
    fill();
    input.focus();
  }
}

// ---- trainer workspace: learned phrasings of the selected SOP -------------------------------------------
const box = $('#learned-box');
if (box) {
  const note = $('#learned-note');
  const list = $('#learned-list');
  let token = 0;

  document.addEventListener('kb:doc-selected', (ev) => load(ev.detail.id, ev.detail.exists));

  async function load(id, exists) {
    const mine = ++token;
    clear(list);
    if (!id || !exists) {
      note.textContent = id ? '这份 SOP 未发布，没有学到的问法。' : '选择一份 SOP 后显示坐席教会检索的问法。';
      return;
    }
    note.textContent = '正在加载…';
    let pairs;
    try {
      pairs = await api(`/v1/sops/${encodeURIComponent(id)}/learned`);
    } catch (err) {
      if (mine === token) note.textContent = `无法加载学到的问法：${err.message}`;
      return;
    }
    if (mine !== token) return;
    note.textContent = pairs.length
      ? `坐席用这些问法找到了这份 SOP（点「有用」或多次查看/复制），坐席检索时类似问法会优先显示它。`
      : '还没有学到的问法：坐席检索后对这份 SOP 点「有用」，或多次查看、复制它的话术，问法就会出现在这里。';
    for (const p of pairs) list.appendChild(renderPair(p, id));
  }

  /** Who confirmed it, when not only the one who taught it (a trial: a second agent's confirmation showed nowhere, and
      one agent's five 👍 read like five people's). */
  function confirmedBy(p) {
    const people = (p.confirmed_by || []).map(learning.whoLabel);
    if (p.confirmations < 2 || !people.length) return null;
    return ` · ${people.length} 人确认：${people.join('、')}`;
  }

  function renderPair(p, id) {
    const msg = el('div', { class: 'learned-msg', role: 'status' });
    const remove = el('button', { type: 'button', class: 'btn small danger' }, '删除');
    const promote = el('button', { type: 'button', class: 'btn small' }, '加入示例问法');
    remove.addEventListener('click', async () => {
      if (!window.confirm(`删除学到的问法「${p.phrasing}」？之后坐席检索不再因它优先显示这份 SOP。`)) return;
      remove.disabled = true;
      try {
        await api(`/v1/learned/${p.id}`, { method: 'DELETE' });
        load(id, true);
      } catch (err) {
        remove.disabled = false;
        msg.className = 'learned-msg error';
        msg.textContent = err.message;
      }
    });
    const doPromote = async (force) => {
      promote.disabled = true;
      clear(msg).className = 'learned-msg';
      msg.textContent = '正在发布新版本…';
      try {
        const r = await api(`/v1/learned/${p.id}/promote`, { method: 'POST', json: { force } });
        msg.textContent = `已加入示例问法，发布为 v${r.version}`;
        if (learning.reload) learning.reload(id);
      } catch (err) {
        promote.disabled = false;
        msg.className = 'learned-msg error';
        msg.textContent = err.message;
        if (err.code === 'example_regression' && !force) {
          const again = el('button', { type: 'button', class: 'btn small' }, '仍然加入');
          again.addEventListener('click', () => doPromote(true));
          msg.append(' ', again);
        }
      }
    };
    promote.addEventListener('click', () => doPromote(false));
    if (p.promoted_version) promote.disabled = true;
    if (!p.promotable) {
      // a trial was offered it for 「我是[房号]的[姓名]…」: the service refuses placeholders as a document's example
      promote.disabled = true;
      promote.title = '含有遮盖的个人信息（如 [姓名]），不能加入示例问法';
    }
    return el(
      'li',
      { class: 'learned-item' },
      el('div', { class: 'learned-text' }, p.phrasing),
      el(
        'div',
        { class: 'learned-meta faint' },
        learning.whoLabel(p.who),
        ' · ',
        formatTs(p.created_ts),
        ' · ',
        p.source === 'events' ? '多次查看/复制' : '点了有用',
        ' · ',
        el('b', null, `确认 ${p.confirmations} 次`),
        confirmedBy(p),
        p.confirmations > 1 ? ` · 最近 ${formatTs(p.updated_ts)}` : null,
      ),
      el(
        'div',
        { class: 'learned-actions' },
        promote,
        remove,
        p.promoted_version ? el('span', { class: 'badge ver' }, `已加入示例 v${p.promoted_version}`) : null,
      ),
      msg,
    );
  }
}

/** Hit test: what the learned channel did for a result (null when it did nothing). */
learning.hitBadge = (learned) => {
  if (!learned) return null;
  const text = learned.exact ? '学到的原问法' : `学到的相似问法 ${learned.similarity.toFixed(2)}`;
  return el(
    'span',
    {
      class: `learned-badge${learned.decided_top ? ' decided' : ''}`,
      title: `学到的问法「${learned.phrasing}」，相似度 ${learned.similarity.toFixed(3)}（向量 ${learned.cosine.toFixed(3)}，字面重合 ${learned.overlap.toFixed(3)}），确认 ${learned.confirmations} 次，加分 ${learned.boost.toFixed(3)}`,
    },
    text,
    learned.decided_top ? ' · 决定了第一名' : '',
  );
};
