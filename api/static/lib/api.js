/* Calls to the knowledge-base API with the API key stored in this browser. */

const KEY_STORAGE = 'kb.apiKey';
let memoryKey = ''; // used when the browser refuses storage

export function getKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || '';
  } catch (_) {
    return memoryKey;
  }
}

export function setKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch (_) {
    /* storage disabled: the key lives for this page only */
  }
  memoryKey = key;
}

/** Calls `changed()` when another tab of this browser saves or clears the key (every page uses the latest one). */
export function onKeyChange(changed) {
  window.addEventListener('storage', (ev) => {
    if (ev.key === KEY_STORAGE || ev.key === null) changed();
  });
}

export class ApiError extends Error {
  constructor(status, code, message, details, retryAfter) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details || [];
    this.retryAfter = retryAfter;
  }
}

const FALLBACK_MESSAGES = {
  0: '无法连接知识库服务，请检查网络后重试',
  401: 'API 密钥无效，请检查后重新输入',
  403: '当前密钥没有权限执行此操作',
  404: '找不到请求的内容',
  413: '内容过大',
  429: '请求太频繁，请稍后再试',
  500: '服务器内部错误，请稍后再试',
  502: '服务暂时不可用，请稍后再试',
  503: '服务正在加载，请稍后再试',
};

function withQuery(path, query) {
  if (!query) return path;
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
  const s = qs.toString();
  return s ? path + (path.includes('?') ? '&' : '?') + s : path;
}

/** The server's messages are Chinese, then " / " and the same in English for API clients: pages show the Chinese
 * (a trainer's trial read 「… / a trainer API key is required」 in the console). */
export function chineseOf(message) {
  const at = message.lastIndexOf(' / ');
  if (at <= 0) return message;
  const tail = message.slice(at + 3);
  const ascii = tail.replace(/[^\x20-\x7e]/g, '').length;
  return /[a-z]{3}/i.test(tail) && ascii >= tail.length * 0.8 ? message.slice(0, at) : message;
}

async function errorOf(resp) {
  let code = `http_${resp.status}`;
  let message = FALLBACK_MESSAGES[resp.status] || `请求失败（HTTP ${resp.status}）`;
  let details = [];
  try {
    const data = await resp.json();
    if (data?.error) {
      code = data.error.code || code;
      message = chineseOf(data.error.message || message);
      details = Array.isArray(data.error.details) ? data.error.details : [];
    }
  } catch (_) {
    /* not JSON */
  }
  const retry = parseInt(resp.headers.get('Retry-After') || '', 10);
  return new ApiError(resp.status, code, message, details, Number.isFinite(retry) ? retry : undefined);
}

/**
 * Call the API. Options: method, json (object sent as JSON), text (sent as Markdown), signal, raw (return the
 * Response), query (object of query parameters). Throws ApiError with the server's Chinese+English message.
 */
export async function api(path, opts = {}) {
  const { method = 'GET', json, text, signal, raw = false, query } = opts;
  const headers = { Accept: 'application/json' };
  const key = getKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (text !== undefined) {
    headers['Content-Type'] = 'text/markdown; charset=utf-8';
    body = text;
  }
  let resp;
  try {
    resp = await fetch(withQuery(path, query), {
      method,
      headers,
      body,
      signal,
      cache: 'no-store',
      credentials: 'same-origin',
    });
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network', FALLBACK_MESSAGES[0]);
  }
  if (!resp.ok) throw await errorOf(resp);
  if (raw) return resp;
  if (resp.status === 204) return null;
  return resp.json();
}

/** The caller's role: {role, auth} or {error: 'invalid'|'network'|'other', message}. */
export async function whoami() {
  try {
    return await api('/v1/whoami');
  } catch (err) {
    if (err.status === 401) return { error: 'invalid', message: err.message };
    return { error: err.status === 0 ? 'network' : 'other', message: err.message };
  }
}

/** Download what `path` returns (e.g. a CSV report) as a file named `filename`, with the key like any call. */
export async function downloadFile(path, filename, opts = {}) {
  const resp = await api(path, { ...opts, raw: true });
  const url = URL.createObjectURL(await resp.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
