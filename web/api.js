// api: the console's only way to the server — fetch() to /api/v1 on this
// origin with the bearer token. The token is kept in sessionStorage for this
// browser tab's session: not a cookie, so the browser never sends it by
// itself and there is no cross-site request forgery to defend against.

const KEY = 'moat.token';

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(t) {
  sessionStorage.setItem(KEY, t);
}

export function clearToken() {
  sessionStorage.removeItem(KEY);
}

// An answer that was not 2xx: `status` and the API's errors [{field, message}].
export class ApiError extends Error {
  constructor(status, errors) {
    super(errors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join('; ') || `HTTP ${status}`);
    this.status = status;
    this.errors = errors;
  }
}

const listeners = new Set();
// fn(ApiError) for every failed request (the shell shows 401 and 403).
export function onFailure(fn) {
  listeners.add(fn);
}

function query(q) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q || {})) {
    if (v !== undefined && v !== null && v !== '') p.set(k, v);
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

// opts.text: the body is sent as text/plain as it is, and the answer is
// returned as text (a threat list); opts.absent: statuses that answer null.
export async function request(method, path, body, q, opts = {}) {
  const headers = { Accept: opts.text ? 'text/plain, application/json' : 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers['Content-Type'] = opts.text ? 'text/plain; charset=utf-8' : 'application/json';
  let r;
  try {
    r = await fetch(`/api/v1${path}${query(q)}`, {
      method,
      headers,
      body: body === undefined || opts.text ? body : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      signal: opts.signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    const err = new ApiError(0, [{ field: '', message: `the server cannot be reached (${e.message})` }]);
    if (!opts.quiet) for (const fn of listeners) fn(err);
    throw err;
  }
  const text = await r.text();
  if (opts.absent && opts.absent.includes(r.status)) return null;
  if (r.ok && opts.text && method === 'GET') return text;
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!r.ok) {
    const errors = data && Array.isArray(data.errors) ? data.errors : [{ field: '', message: text || r.statusText }];
    const err = new ApiError(r.status, errors);
    if (!opts.quiet) for (const fn of listeners) fn(err);
    throw err;
  }
  return data;
}

export const get = (path, q, opts) => request('GET', path, undefined, q, opts);
export const post = (path, body, q, opts) => request('POST', path, body, q, opts);
export const put = (path, body, opts) => request('PUT', path, body, undefined, opts);
export const patch = (path, body, opts) => request('PATCH', path, body, undefined, opts);
export const del = (path, opts) => request('DELETE', path, undefined, undefined, opts);
// A text body (PUT) and a text answer (GET; null for a status in `absent`, e.g. [404]).
export const putText = (path, text) => request('PUT', path, text, undefined, { text: true });
export const getText = (path, absent) => request('GET', path, undefined, undefined, { text: true, absent });

// Every item of a paged list (the API pages by 1000 at most).
export async function getAll(path, q) {
  const items = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await get(path, { ...q, limit: 1000, offset });
    items.push(...page.items);
    if (items.length >= page.total || page.items.length === 0) return items;
  }
}

export const enc = encodeURIComponent;
