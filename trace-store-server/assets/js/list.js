// The trace list: newest first, filters in the query string, keyset paging, and new
// runs polled every 2 s and slipped in at the top without moving what the user reads.

import { api, paths } from './api.js';
import { h, icon, replace, toast } from './dom.js';
import * as fmt from './format.js';
import { filterBar, fromSearch } from './filters.js';

const PAGE = 50;
const POLL_MS = 2000;

function statusCell(status) {
  const s = status || 'unset';
  return h('td', { class: 'col-status' },
    h('span', { class: `status status-${s}`, title: s }, h('span', { class: 'dot' }), h('span', { class: 'status-text', text: s })));
}

/** Score chips: thumbs for user_feedback, name=value for the rest. */
export function scoreChips(scores) {
  return Object.entries(scores || {}).map(([name, v]) => {
    if (name === 'user_feedback') {
      const up = v >= 1;
      return h('span', { class: `score ${up ? 'score-up' : 'score-down'}`, title: `user_feedback = ${v}` },
        icon(up ? 'up' : 'down', true));
    }
    return h('span', { class: 'score', title: name }, `${name} ${Number.isInteger(v) ? v : v.toFixed(2)}`);
  });
}

export class ListView {
  constructor(ctx) {
    this.ctx = ctx;
    this.root = h('section', { class: 'view view-list' });
    this.search = null;
    this.rows = [];
    this.next = null;
    this.selected = -1;
    this.pending = 0;
    this.generation = 0;
    this.poller = null;
  }

  /** Shows the list for `search` (a query string); keeps rows if the filter is unchanged. */
  show(container, search) {
    const params = fromSearch(search);
    const key = params.toString();
    container.appendChild(this.root);
    if (key !== this.key) {
      this.key = key;
      this.params = params;
      this.build();
      this.load();
    } else {
      window.scrollTo(0, this.scrollY || 0);
    }
    this.startPolling();
  }

  hide() {
    this.scrollY = window.scrollY;
    this.stopPolling();
    this.root.remove();
  }

  build() {
    const bar = filterBar(this.params, (params, { typing, structural }) => this.filterChanged(params, typing, structural));
    this.bar = bar;
    this.countNode = h('span', { class: 'muted', 'aria-live': 'polite' });
    this.pill = h('button', { type: 'button', class: 'pill', hidden: true, on: { click: () => window.scrollTo({ top: 0, behavior: 'smooth' }) } });
    this.tbody = h('tbody');
    const pinned = this.ctx.pinned;
    const head = h('tr', null,
      h('th', { class: 'col-status', text: 'Status' }), h('th', { text: 'Name' }),
      h('th', { class: 'col-time', text: 'Start' }), h('th', { class: 'num', text: 'Duration' }),
      h('th', { class: 'num col-opt', text: 'Steps' }), h('th', { class: 'num col-opt', text: 'Tokens in/out', title: 'Input / output tokens' }),
      h('th', { class: 'num', text: 'Cost' }), h('th', { class: 'col-opt col-wide', text: 'Models' }),
      h('th', { class: 'col-opt col-wide', text: 'Session' }),
      pinned.map((k) => h('th', { class: 'col-opt col-wide col-meta', text: k })),
      h('th', { class: 'col-opt', text: 'Scores' }));
    this.table = h('table', { class: 'traces' }, h('thead', null, head), this.tbody);
    this.more = h('button', { type: 'button', class: 'load-more', hidden: true, on: { click: () => this.loadMore() } }, 'Load more');
    this.empty = h('p', { class: 'empty', hidden: true });
    replace(this.root,
      bar.node,
      h('div', { class: 'list-head' }, this.countNode, this.pill),
      h('div', { class: 'table-wrap' }, this.table),
      this.empty, this.more);
  }

  filterChanged(params, typing, structural) {
    this.params = params;
    this.key = params.toString();
    const url = `/${this.key ? `?${this.key}` : ''}`;
    if (typing) history.replaceState(null, '', url);
    else history.pushState(null, '', url);
    if (structural) {
      this.build();
    }
    this.load();
  }

  apiParams(extra) {
    const p = new URLSearchParams(this.params);
    for (const [k, v] of Object.entries(extra)) p.set(k, v);
    return p;
  }

  async load() {
    const generation = ++this.generation;
    this.rows = [];
    this.selected = -1;
    this.pending = 0;
    this.pill.hidden = true;
    this.countNode.textContent = 'Loading…';
    try {
      const [page, total] = await Promise.all([
        api.traces(this.apiParams({ limit: PAGE })),
        api.count(this.params).catch(() => null),
      ]);
      if (generation !== this.generation) return;
      this.rows = page.traces;
      this.next = page.next;
      replace(this.tbody, this.rows.map((s) => this.row(s)));
      this.countNode.textContent = total ? `${fmt.count(total.count)} run${total.count === 1 ? '' : 's'}` : '';
      this.updateFooter();
    } catch (e) {
      if (generation !== this.generation) return;
      this.countNode.textContent = '';
      replace(this.tbody);
      this.empty.hidden = false;
      this.empty.textContent = `Could not load traces: ${e.message}`;
      toast(e.message, 'error');
    }
  }

  async loadMore() {
    if (!this.next) return;
    const generation = this.generation;
    this.more.disabled = true;
    try {
      const page = await api.traces(this.apiParams({ limit: PAGE, after: this.next }));
      if (generation !== this.generation) return;
      const known = new Set(this.rows.map((r) => r.run_id));
      const fresh = page.traces.filter((s) => !known.has(s.run_id));
      this.rows.push(...fresh);
      this.tbody.append(...fresh.map((s) => this.row(s)));
      this.next = page.next;
      this.updateFooter();
    } catch (e) {
      toast(e.message, 'error');
    } finally {
      this.more.disabled = false;
    }
  }

  updateFooter() {
    this.more.hidden = !this.next;
    this.empty.hidden = this.rows.length > 0;
    this.empty.textContent = this.params.toString()
      ? 'No run matches this filter.'
      : 'No traces yet. Send OTLP spans to /v1/traces, or run `trace-store demo`.';
  }

  row(s) {
    const open = () => this.ctx.navigate(paths.trace(s.run_id));
    const tr = h('tr', {
      class: [s.status === 'error' && 'row-error'], dataset: { runId: s.run_id },
      on: {
        click: (e) => { if (!e.target.closest('a, button')) open(); },
      },
    },
      statusCell(s.status),
      h('td', { class: 'col-name' },
        h('a', { href: paths.trace(s.run_id), class: 'name', text: s.name || '(unnamed)' }),
        h('div', { class: 'run-id muted', title: s.run_id, text: s.run_id },
          s.parent_run_id ? h('span', { class: 'tag', title: `started by ${s.parent_run_id}`, text: 'sub-run' }) : null)),
      h('td', { class: 'col-time', title: `${fmt.time(s.created_at)} (${fmt.ago(s.created_at)})`, text: fmt.shortTime(s.created_at) }),
      h('td', { class: 'num', text: fmt.ms(s.total_ms) }),
      h('td', { class: 'num col-opt' }, fmt.count(s.steps),
        s.failed_steps ? h('span', { class: 'badge-error', title: `${s.failed_steps} failed step(s)`, text: `${s.failed_steps} failed` }) : null),
      h('td', { class: 'num col-opt', text: `${fmt.count(s.input_tokens)} / ${fmt.count(s.output_tokens)}` }),
      h('td', { class: 'num', text: fmt.cost(s.cost_nano_usd) }),
      h('td', { class: 'col-opt col-wide ellipsis', text: fmt.models(s).join(', ') }),
      h('td', { class: 'col-opt col-wide ellipsis' },
        s.session_id ? h('a', { href: paths.session(s.session_id), title: s.session_id, text: s.session_id }) : null),
      this.ctx.pinned.map((k) => {
        const has = s.metadata && Object.hasOwn(s.metadata, k);
        const v = has ? fmt.value(s.metadata[k]) : '';
        return h('td', { class: 'col-opt col-wide col-meta ellipsis' }, has
          ? h('button', {
            type: 'button', class: 'link', title: `Filter ${k} = ${v}`, text: v,
            on: { click: () => this.addMeta(k, s.metadata[k]) },
          })
          : null);
      }),
      h('td', { class: 'col-opt col-scores' }, scoreChips(s.scores)));
    return tr;
  }

  addMeta(key, value) {
    const params = new URLSearchParams(this.params);
    params.set(`meta.${key}`, typeof value === 'string' ? value : JSON.stringify(value));
    this.filterChanged(params, false, true);
  }

  /** Moves the keyboard selection by `delta` rows. */
  move(delta) {
    const rows = this.tbody.rows;
    if (!rows.length) return;
    const at = Math.max(0, Math.min(rows.length - 1, this.selected + delta));
    this.select(at);
  }

  select(at) {
    const rows = this.tbody.rows;
    if (rows[this.selected]) rows[this.selected].classList.remove('selected');
    this.selected = at;
    const row = rows[at];
    if (!row) return;
    row.classList.add('selected');
    row.scrollIntoView({ block: 'nearest' });
  }

  onKey(e) {
    switch (e.key) {
      case 'j': case 'ArrowDown': this.move(1); break;
      case 'k': case 'ArrowUp': this.move(-1); break;
      case 'Enter': {
        const row = this.tbody.rows[this.selected];
        if (!row) return false;
        this.ctx.navigate(paths.trace(row.dataset.runId));
        break;
      }
      case '/': this.bar.focusSearch(); break;
      default: return false;
    }
    return true;
  }

  startPolling() {
    this.stopPolling();
    this.poller = setInterval(() => {
      if (document.visibilityState === 'visible' && this.root.isConnected) this.poll();
    }, POLL_MS);
    this.onScroll = () => { if (window.scrollY < 8) { this.pill.hidden = true; this.pending = 0; } };
    window.addEventListener('scroll', this.onScroll, { passive: true });
  }

  stopPolling() {
    clearInterval(this.poller);
    this.poller = null;
    if (this.onScroll) window.removeEventListener('scroll', this.onScroll);
  }

  async poll() {
    if (this.polling) return;
    this.polling = true;
    const generation = this.generation;
    try {
      const newest = this.rows[0];
      const extra = { limit: 100 };
      // `since` is inclusive, so the newest row comes back too: it is updated in place
      // (a running run that finished), and everything newer is inserted above it.
      if (newest) extra.since = newest.created_at;
      const page = await api.traces(this.apiParams(extra));
      if (generation !== this.generation) return;
      this.merge(page.traces);
    } catch {
      // A failed poll is retried at the next tick; the list the user reads stays.
    } finally {
      this.polling = false;
    }
  }

  merge(traces) {
    const byId = new Map(this.rows.map((r, i) => [r.run_id, i]));
    const fresh = [];
    for (const s of traces) {
      const at = byId.get(s.run_id);
      if (at === undefined) { fresh.push(s); continue; }
      if (JSON.stringify(this.rows[at]) !== JSON.stringify(s)) {
        this.rows[at] = s;
        const old = this.tbody.rows[at];
        const row = this.row(s);
        if (old.classList.contains('selected')) row.classList.add('selected');
        old.replaceWith(row);
      }
    }
    if (!fresh.length) return;
    const scrolled = window.scrollY;
    const before = this.table.offsetHeight;
    const nodes = fresh.map((s) => { const r = this.row(s); r.classList.add('row-new'); return r; });
    this.tbody.prepend(...nodes);
    this.rows.unshift(...fresh);
    if (this.selected >= 0) this.selected += fresh.length;
    this.empty.hidden = true;
    if (scrolled > 8) {
      // Keep the rows the user was reading where they were on screen.
      window.scrollTo(0, scrolled + this.table.offsetHeight - before);
      this.pending += fresh.length;
      this.pill.textContent = `↑ ${this.pending} new run${this.pending === 1 ? '' : 's'}`;
      this.pill.hidden = false;
    }
    const text = this.countNode.textContent;
    const m = /^([\d,]+) run/.exec(text);
    if (m) {
      const n = Number(m[1].replace(/,/g, '')) + fresh.length;
      this.countNode.textContent = `${fmt.count(n)} run${n === 1 ? '' : 's'}`;
    }
  }
}
