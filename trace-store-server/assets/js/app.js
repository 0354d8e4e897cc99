// The viewer's entry point: routing by path, the global keys, and shared context.

import { api, captureToken } from './api.js';
import { clear, isTyping, toast } from './dom.js';
import { ListView } from './list.js';
import { DetailView } from './detail.js';
import { SessionsView, SessionView } from './sessions.js';
import { StatsView } from './stats.js';
import { purgeDialog } from './dialogs.js';

const main = document.getElementById('view');
let current = null;
let list = null;
let cameFromList = false;

// Errors the page did not expect still reach the user (and the browser tests).
window.addEventListener('unhandledrejection', (e) => {
  toast(`Unexpected error: ${e.reason && e.reason.message ? e.reason.message : e.reason}`, 'error');
});

const ctx = {
  pinned: [],
  navigate(path) {
    if (path === location.pathname + location.search) return;
    history.pushState(null, '', path);
    route();
  },
  /** Esc and "← Traces": back to the list as it was, or to a fresh one. */
  back() {
    if (cameFromList) history.back();
    else ctx.navigate('/');
  },
  /** The list is stale (a score changed, a run was deleted): reload it next time. */
  invalidateList() { if (list) list.key = null; },
};

function setTab(tab) {
  for (const a of document.querySelectorAll('[data-tab]')) {
    if (a.dataset.tab === tab) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function decodeTail(path, prefix) {
  try { return decodeURIComponent(path.slice(prefix.length)); } catch { return path.slice(prefix.length); }
}

function route() {
  const path = location.pathname;
  const previous = current;
  if (current) current.hide();
  else clear(main);
  cameFromList = previous !== null && previous === list;
  document.title = 'trace-store';
  if (path.startsWith('/trace/')) {
    setTab('list');
    current = new DetailView(ctx, decodeTail(path, '/trace/'));
    current.show(main);
  } else if (path.startsWith('/session/')) {
    setTab('sessions');
    current = new SessionView(ctx, decodeTail(path, '/session/'));
    current.show(main);
  } else if (path === '/sessions') {
    setTab('sessions');
    current = new SessionsView(ctx, location.search);
    current.show(main);
  } else if (path === '/stats') {
    setTab('stats');
    current = new StatsView(ctx, location.search);
    current.show(main);
  } else {
    setTab('list');
    if (!list) list = new ListView(ctx);
    current = list;
    list.show(main, location.search);
  }
  if (current !== list) window.scrollTo(0, 0);
}

// Same-origin links change the view without reloading the page.
document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey || a.target) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  e.preventDefault();
  ctx.navigate(url.pathname + url.search);
});

window.addEventListener('popstate', route);

document.addEventListener('keydown', (e) => {
  if (e.defaultPrevented || e.metaKey || e.ctrlKey || e.altKey) return;
  if (document.querySelector('dialog[open]')) return;
  if (isTyping(e)) return;
  if (current && current.onKey && current.onKey(e)) { e.preventDefault(); return; }
  if (e.key === 'Escape' && current !== list) { e.preventDefault(); ctx.back(); return; }
  if (e.key === '/' && current !== list) { e.preventDefault(); ctx.navigate('/'); list.bar.focusSearch(); }
});

document.getElementById('purge-button').addEventListener('click', () => purgeDialog(() => {
  ctx.invalidateList();
  route();
}));

async function loadConfig() {
  try {
    const config = await api.config();
    ctx.pinned = Array.isArray(config.pinned_metadata) ? config.pinned_metadata.slice(0, 3) : [];
    const store = document.getElementById('store-name');
    store.textContent = config.store || '';
    store.title = `Store: ${config.store || ''}  ·  trace-store ${config.version || ''}`;
  } catch (e) {
    toast(e.message, 'error');
  }
}

async function start() {
  captureToken();
  const config = loadConfig();
  // Only the list needs the config first (its pinned columns); a trace, a session or
  // the stats start loading at once.
  if (location.pathname === '/') await config;
  route();
  await config;
  document.documentElement.dataset.ready = 'true';
}

start();
