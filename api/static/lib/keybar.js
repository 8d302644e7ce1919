/* The `#api-key` / `#save-key` / `#auth-msg` key bar of the staff pages. */

import { getKey, onKeyChange, setKey, whoami } from './api.js';
import { $ } from './dom.js';

function describe(info, messages) {
  if (info.error === 'invalid') return ['API 密钥无效，请检查后重新输入', 'error'];
  if (info.error) return [info.message || '无法连接知识库服务', 'error'];
  if (!info.auth) return ['本地试用模式（未启用认证）', 'trial'];
  if (!getKey() || info.role === 'public') return [messages.missing || '未设置 API 密钥', 'warn'];
  const role = info.admin ? '管理员' : info.role === 'trainer' ? '培训师' : '坐席';
  const who = info.name && !info.name.includes(':') ? `${info.name}（${role}）` : `${role}密钥`;
  return [`已验证：${who}`, 'ok'];
}

/**
 * Wire the key bar. `onRole(info)` is called with the whoami result after load and after every save.
 * `messages.missing` customises the "no key" text for the page. Returns {check}.
 */
export function initKeyBar({ onRole, messages = {} } = {}) {
  const input = $('#api-key');
  const msg = $('#auth-msg');
  input.value = getKey();
  const show = (text, cls) => {
    msg.textContent = text;
    msg.className = `auth-msg ${cls}`;
  };
  let latest = 0; // a check started later wins: an earlier, slower answer (e.g. for no key) must not undo it
  const check = async (note = '') => {
    const mine = ++latest;
    show('正在验证…', 'trial');
    const info = await whoami();
    if (mine !== latest) return info;
    if (info.max_query_chars) {
      // The server's limit (KB_MAX_QUERY_CHARS), defined once there: query boxes are marked data-query-box.
      for (const box of document.querySelectorAll('[data-query-box]')) box.maxLength = info.max_query_chars;
    }
    const [text, cls] = describe(info, messages);
    show(info.error ? text : text + note, cls);
    msg.title = info.error ? info.message || '' : '';
    if (onRole) onRole(info);
    return info;
  };
  const save = () => {
    setKey(input.value.trim());
    input.value = getKey();
    return check();
  };
  $('#save-key').addEventListener('click', save);
  // Another tab saved another key: requests from this page now carry it, so the badge says who that is (a trial's
  // practice round went to the trainer whose key another tab saved, under a badge still naming the agent)
  onKeyChange(() => {
    input.value = getKey();
    return check('（密钥已在其他标签页更换）');
  });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') {
      ev.preventDefault();
      save();
    }
  });
  return { check };
}
