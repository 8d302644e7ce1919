/* Accounts (admins only): list, add (the key is shown once), change role, disable, enable, rotate. */

import { api } from '../lib/api.js';
import { $, clear, el } from '../lib/dom.js';
import { ROLE_LABELS, roleLabel } from '../lib/labels.js';
import { formatTs } from '../lib/text.js';
import { notice } from './messages.js';
import { onTabShown } from './tabs.js';

const ROLES = ['agent', 'trainer', 'admin']; // what an account can be (keys of KB_API_KEYS have their own)
let me = null; // the signed-in admin's name: the server refuses to disable that account
let keyOf = null; // whose key is on screen

function showKey(name, key) {
  const box = $('#account-key');
  keyOf = name;
  clear(box).append(
    notice('ok', `${name} 的密钥（只显示这一次，请交给本人保存）：`),
    el('code', { class: 'new-key', id: 'new-key' }, key),
  );
}

async function act(name, action, json = {}) {
  try {
    const r = await api(`/v1/users/${encodeURIComponent(name)}/${action}`, { method: 'POST', json });
    if (r.key) showKey(name, r.key);
    else if (keyOf === name && action === 'disable') {
      // a key on screen of an account just disabled is void: it does not stay there (a trial)
      keyOf = null;
      clear($('#account-key')).append(notice('ok', `${name} 已停用，刚才显示的密钥已失效。`));
    }
    loadAccounts();
  } catch (err) {
    clear($('#account-key')).append(notice('error', err.message));
  }
}

export async function loadAccounts() {
  const body = $('#account-rows');
  try {
    const list = await api('/v1/users');
    clear(body);
    for (const a of list) {
      const buttons = [
        a.active
          ? el(
              'button',
              {
                type: 'button',
                class: 'btn small danger',
                disabled: a.name === me,
                title: a.name === me ? '不能停用自己正在使用的账号' : undefined,
                onclick: () => act(a.name, 'disable'),
              },
              '停用',
            )
          : el('button', { type: 'button', class: 'btn small', onclick: () => act(a.name, 'enable') }, '启用'),
        el('button', { type: 'button', class: 'btn small', onclick: () => act(a.name, 'rotate') }, '换密钥'),
      ];
      body.append(
        el(
          'tr',
          { dataset: { name: a.name } },
          el('td', null, a.name),
          el('td', null, roleCell(a)),
          el('td', null, a.active ? '在用' : '已停用'),
          el('td', null, formatTs(a.created_ts)),
          el('td', null, buttons),
        ),
      );
    }
  } catch (err) {
    clear(body).append(el('tr', null, el('td', { colspan: '5' }, err.message)));
  }
}

/** The account's role: a choice for others (the same key and records keep the new rights within seconds); one's own
 * role is shown only (the server refuses to change it). */
function roleCell(a) {
  if (a.name === me) return roleLabel(a.role);
  const select = el(
    'select',
    {
      class: 'role-select',
      'aria-label': `${a.name} 的角色`,
      title: '改变角色：密钥、练习记录和认证都保留',
      onchange: () => {
        const label = roleLabel(select.value);
        if (window.confirm(`把 ${a.name} 的角色改为「${label}」？密钥和记录不变，几秒内生效。`)) {
          act(a.name, 'role', { role: select.value });
        } else {
          select.value = a.role;
        }
      },
    },
    ...ROLES.map((value) => el('option', { value, selected: value === a.role }, ROLE_LABELS[value])),
  );
  return select;
}

/** Who is signed in (from whoami), so that their own row offers no 停用. */
export function setAccountsUser(name) {
  me = name || null;
}

export function initAccounts() {
  $('#account-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = $('#account-name').value.trim();
    try {
      const r = await api('/v1/users', { method: 'POST', json: { name, role: $('#account-role').value } });
      showKey(r.name, r.key);
      $('#account-name').value = '';
      loadAccounts();
    } catch (err) {
      clear($('#account-key')).append(notice('error', err.message));
    }
  });
  onTabShown('accounts', loadAccounts);
}
