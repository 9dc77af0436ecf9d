// app: the console's shell — sign-in, navigation (one URL per page, so
// reload and back/forward work), the error banner, and live updates: a
// long-poll of GET /api/v1/changes tells which kinds of records changed, and
// the page on screen re-reads what it shows.

import * as api from './api.js';
import { h, replace } from './dom.js';
import statusPage from './page-status.js';
import managementPage from './page-management.js';
import rulesPage from './page-rules.js';
import objectsPage from './page-objects.js';
import alertsPage from './page-alerts.js';
import nodesPage from './page-nodes.js';
import detectionsPage from './page-detections.js';

const NAV = [
  ['/status', 'Protection status', statusPage],
  ['/management', 'Protection management', managementPage],
  ['/objects', 'Network objects', objectsPage],
  ['/alerts', 'Alerts', alertsPage],
  ['/detections', 'Detections', detectionsPage],
  ['/nodes', 'Nodes', nodesPage],
];
const FEED_WAIT = 25; // seconds a change long-poll waits
// ms: a page is re-read at least this often (page.every overrides it), since
// derived states (a node going offline, "N s ago") change without any write.
const REREAD_EVERY = 30000;
const HEARTBEAT_GAP = 5000; // ms: heartbeats alone re-read a page at most this often

const main = document.getElementById('main');
const shell = { role: null, page: null, feed: null };

// ---- the banner: failures the user should see ---------------------------

function banner(message, kind = 'error') {
  const box = document.getElementById('banner');
  replace(box, message ? h(`div.banner.${kind}`, h('span', message),
    h('button.icon', { type: 'button', 'aria-label': 'Dismiss', onclick: () => replace(box) }, '×')) : null);
}

function toast(message) {
  const box = document.getElementById('toast');
  replace(box, h('div.toast', message));
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => replace(box), 4000);
}

api.onFailure((e) => {
  if (e.status === 401 && shell.role) {
    signOut('Your token is no longer accepted: sign in again.');
  } else if (e.status === 403) {
    banner(`Not allowed (403): ${e.message}`);
  } else if (e.status === 0 || e.status >= 500) {
    banner(e.message);
  }
});

// ---- routing --------------------------------------------------------------

function route(path) {
  if (path === '/' || path === '') return { path: '/status', page: statusPage, params: {} };
  const m = path.match(/^\/management\/([^/]+)$/);
  if (m) return { path: '/management', page: rulesPage, params: { cluster: decodeURIComponent(m[1]) } };
  const hit = NAV.find(([p]) => p === path);
  return hit ? { path: hit[0], page: hit[2], params: {} } : null;
}

export function navigate(url, replaceState = false) {
  if (replaceState) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  render();
}

// Internal links go through the router (a modified click opens a new tab as usual).
document.addEventListener('click', (ev) => {
  const a = ev.target.closest('a[href]');
  if (!a || a.target || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || a.hasAttribute('download')) return;
  ev.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
});
window.addEventListener('popstate', () => render());

function query() {
  return Object.fromEntries(new URLSearchParams(location.search));
}

// Writes a page's filters into the address bar (no new history entry).
function setQuery(q) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const s = p.toString();
  history.replaceState(null, '', location.pathname + (s ? `?${s}` : ''));
}

function nav(current) {
  return h('nav', { 'aria-label': 'Console' }, h('ul', NAV.map(([p, label]) =>
    h('li', h('a', { href: p, 'aria-current': p === current ? 'page' : null }, label)))));
}

function header(current) {
  const top = document.getElementById('top');
  replace(top,
    h('a.brand', { href: '/status' }, h('img', { src: '/assets/favicon.svg', alt: '', width: 22, height: 22 }), 'Moat'),
    shell.role ? nav(current) : null,
    shell.role ? h('div.who',
      h('span', { class: `role role-${shell.role}` }, shell.role === 'admin' ? 'admin' : 'viewer (read-only)'),
      h('button', { type: 'button', onclick: () => signOut() }, 'Sign out')) : null);
}

async function render() {
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  if (shell.page) {
    shell.page.destroy?.();
    shell.page = null;
  }
  banner(null);
  if (!shell.role) {
    header(null);
    signInForm();
    return;
  }
  const r = route(location.pathname);
  if (!r) {
    header(null);
    document.title = 'Not found · Moat';
    replace(main, h('h1', 'Not found'), h('p', 'This page does not exist. ', h('a', { href: '/status' }, 'Protection status')));
    return;
  }
  if (location.pathname === '/') history.replaceState(null, '', `/status${location.search}`);
  header(r.path);
  replace(main);
  const ctx = {
    main,
    params: r.params,
    query: query(),
    setQuery,
    navigate,
    canWrite: shell.role === 'admin',
    toast,
    banner,
    // Runs a change (`run` calls the API), says `done` when it worked, shows a
    // refusal in the banner (401, 403, 5xx and unreachable already are), re-reads the page.
    async act(run, done) {
      try {
        await run();
        if (done) toast(done);
      } catch (e) {
        if (!(e instanceof api.ApiError)) throw e;
        if (e.status >= 400 && e.status < 500 && e.status !== 401 && e.status !== 403) banner(e.message);
      }
      ctx.reread();
    },
  };
  ctx.reread = () => reread(page);
  const page = r.page(ctx);
  shell.page = page;
  document.title = `${page.title} · Moat`;
  page.lastRead = 0;
  await reread(page);
  if (document.activeElement === document.body) main.focus({ preventScroll: true });
}

// Re-reads the page on screen, one read at a time (a change during a read
// schedules one more). `why` is what moved: topics of the change feed, or
// 'timer'; page.refresh(whys) gets them all (null: everything, as on a first read).
async function reread(page, why) {
  if (page !== shell.page) return;
  if (why === undefined) page.whyAll = true;
  else (page.whys ||= new Set()).add(why);
  if (page.reading) {
    page.again = true;
    return;
  }
  page.reading = true;
  const whys = page.whyAll ? null : page.whys;
  page.whyAll = false;
  page.whys = new Set();
  try {
    await page.refresh(whys);
  } catch (e) {
    // The banner shows API failures (api.onFailure); anything else is a bug of the console.
    if (!(e instanceof api.ApiError)) console.error('console: reading the page failed:', e);
  } finally {
    page.reading = false;
    page.lastRead = Date.now();
  }
  if (page.again) {
    page.again = false;
    reread(page, 'again');
  }
}

function changed(topics) {
  const page = shell.page;
  if (!page) return;
  const wants = page.topics || [];
  const hit = topics.some((t) => t !== 'heartbeats' && wants.includes(t));
  const beat = topics.includes('heartbeats') && wants.includes('heartbeats');
  if (hit) {
    for (const t of topics) if (wants.includes(t)) reread(page, t);
  } else if (beat && !page.beatTimer) {
    const wait = Math.max(0, HEARTBEAT_GAP - (Date.now() - page.lastRead));
    page.beatTimer = setTimeout(() => {
      page.beatTimer = null;
      reread(page, 'heartbeats');
    }, wait);
  }
}

// ---- live updates -----------------------------------------------------------

function startFeed() {
  const feed = { stop: false, ctl: new AbortController() };
  shell.feed = feed;
  (async () => {
    let cursor = null;
    while (!feed.stop) {
      try {
        // beat: heartbeats alone answer at most every HEARTBEAT_GAP (thousands of agents
        // move them every few milliseconds); any other change answers at once.
        const q = cursor ? { cursor, wait: FEED_WAIT, beat: HEARTBEAT_GAP / 1000 } : {};
        const r = await api.get('/changes', q, { signal: feed.ctl.signal, quiet: true });
        if (cursor && r.changed.length) changed(r.changed);
        cursor = r.cursor;
      } catch (e) {
        if (feed.stop) return;
        if (e instanceof api.ApiError && e.status === 401) {
          signOut('Your token is no longer accepted: sign in again.');
          return;
        }
        await new Promise((res) => setTimeout(res, 2000));
      }
    }
  })();
  feed.timer = setInterval(() => {
    const p = shell.page;
    if (p && !document.hidden && !p.reading && Date.now() - p.lastRead >= (p.every || REREAD_EVERY)) reread(p, 'timer');
  }, 1000);
}

function stopFeed() {
  if (!shell.feed) return;
  shell.feed.stop = true;
  shell.feed.ctl.abort();
  clearInterval(shell.feed.timer);
  shell.feed = null;
}

// ---- signing in -----------------------------------------------------------

async function whoami() {
  const r = await api.get('/whoami', undefined, { quiet: true });
  return r.role;
}

function signInForm(message) {
  document.title = 'Sign in · Moat';
  const tokenInput = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, 'aria-describedby': 'token-err token-hint', spellcheck: 'false' });
  const err = h('div.error', { id: 'token-err', role: 'alert' }, message || '');
  const form = h('form.signin', {
    novalidate: true,
    onsubmit: async (ev) => {
      ev.preventDefault();
      const t = tokenInput.value.trim();
      if (!t) {
        err.textContent = 'Enter a token.';
        tokenInput.setAttribute('aria-invalid', 'true');
        tokenInput.focus();
        return;
      }
      api.setToken(t);
      try {
        shell.role = await whoami();
      } catch (e) {
        api.clearToken();
        err.textContent = e.status === 401 ? 'This token is not accepted.' : e.message;
        tokenInput.setAttribute('aria-invalid', 'true');
        tokenInput.focus();
        return;
      }
      startFeed();
      const next = location.pathname === '/' ? '/status' : location.pathname + location.search;
      navigate(next, true);
    },
  },
  h('h1', 'Sign in to Moat'),
  h('div.field',
    h('label', { for: 'token' }, 'Token'),
    tokenInput,
    h('div.hint', { id: 'token-hint' }, 'An admin or viewer token from ', h('code', 'moat-server token create'), '. It is kept for this browser tab only.'),
    err),
  h('button.primary', { type: 'submit' }, 'Sign in'));
  replace(main, form);
  tokenInput.focus();
}

function signOut(message) {
  stopFeed();
  api.clearToken();
  shell.role = null;
  if (shell.page) {
    shell.page.destroy?.();
    shell.page = null;
  }
  for (const d of document.querySelectorAll('dialog')) d.close();
  header(null);
  banner(null);
  signInForm(message);
}

async function start() {
  if (api.token()) {
    try {
      shell.role = await whoami();
      startFeed();
    } catch {
      api.clearToken();
      shell.role = null;
    }
  }
  render();
}

start();
