// Sessions: the list of sessions, and one session as its turns, oldest first.

import { api, paths } from './api.js';
import { h, replace, toast } from './dom.js';
import * as fmt from './format.js';
import { preview } from './messages.js';
import { scoreChips } from './list.js';

export class SessionsView {
  constructor(ctx, search) {
    this.ctx = ctx;
    this.search = search;
    this.root = h('section', { class: 'view view-sessions' }, h('p', { class: 'loading', text: 'Loading sessions…' }));
  }

  show(container) { container.appendChild(this.root); this.load(); }

  hide() { this.root.remove(); }

  async load() {
    try {
      const params = new URLSearchParams(this.search);
      if (!params.has('limit')) params.set('limit', '200');
      const { sessions } = await api.sessions(params);
      this.links = [];
      const rows = sessions.map((s) => {
        const link = h('a', { href: paths.session(s.session_id), text: s.session_id });
        this.links.push(link);
        return h('tr', { on: { click: (e) => { if (!e.target.closest('a')) this.ctx.navigate(paths.session(s.session_id)); } } },
          h('td', { class: 'col-name' }, link),
          h('td', { class: 'num', text: fmt.count(s.stats.count) }),
          h('td', { class: 'col-time', text: fmt.time(s.first) }),
          h('td', { class: 'col-time col-opt', text: fmt.time(s.last) }),
          h('td', { class: 'num col-opt', text: `${fmt.count(s.stats.input_tokens)} / ${fmt.count(s.stats.output_tokens)}` }),
          h('td', { class: 'num', text: fmt.cost(s.stats.cost_nano_usd) }),
          h('td', { class: 'num col-opt', text: s.stats.failed_steps ? fmt.count(s.stats.failed_steps) : '' }));
      });
      replace(this.root,
        h('h1', { text: 'Sessions' }),
        sessions.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'traces' },
          h('thead', null, h('tr', null, h('th', { text: 'Session' }), h('th', { class: 'num', text: 'Runs' }),
            h('th', { class: 'col-time', text: 'First' }), h('th', { class: 'col-time col-opt', text: 'Last' }),
            h('th', { class: 'num col-opt', text: 'Tokens in / out' }), h('th', { class: 'num', text: 'Cost' }),
            h('th', { class: 'num col-opt', text: 'Failed steps' }))),
          h('tbody', null, rows)))
          : h('p', { class: 'empty', text: 'No sessions yet: runs join a session through session_id (OpenTelemetry session.id or gen_ai.conversation.id).' }));
      this.selected = -1;
    } catch (e) {
      replace(this.root, h('p', { class: 'empty', text: `Could not load sessions: ${e.message}` }));
    }
  }

  onKey(e) {
    if (!this.links || !this.links.length) return false;
    const rows = this.links.map((l) => l.closest('tr'));
    const move = (d) => {
      if (rows[this.selected]) rows[this.selected].classList.remove('selected');
      this.selected = Math.max(0, Math.min(rows.length - 1, this.selected + d));
      rows[this.selected].classList.add('selected');
      rows[this.selected].scrollIntoView({ block: 'nearest' });
    };
    if (e.key === 'j' || e.key === 'ArrowDown') { move(1); return true; }
    if (e.key === 'k' || e.key === 'ArrowUp') { move(-1); return true; }
    if (e.key === 'Enter' && this.links[this.selected]) { this.ctx.navigate(this.links[this.selected].getAttribute('href')); return true; }
    return false;
  }
}

/** The input a run started from and the output it ended with, from its steps. */
function turnText(trace) {
  const steps = trace.steps || [];
  const input = steps.find((s) => s.input !== undefined && (s.kind === 'llm_call' || s.kind === 'agent'))
    || steps.find((s) => s.input !== undefined);
  const output = [...steps].reverse().find((s) => s.output !== undefined && (s.kind === 'llm_call' || s.kind === 'agent'))
    || [...steps].reverse().find((s) => s.output !== undefined);
  return { input: input ? preview(input.input) : '', output: output ? preview(output.output) : '' };
}

export class SessionView {
  constructor(ctx, sessionId) {
    this.ctx = ctx;
    this.sessionId = sessionId;
    this.root = h('section', { class: 'view view-session' }, h('p', { class: 'loading', text: 'Loading session…' }));
  }

  show(container) { container.appendChild(this.root); this.load(); }

  hide() {
    if (this.observer) this.observer.disconnect();
    this.root.remove();
  }

  async load() {
    try {
      const { turns } = await api.session(this.sessionId);
      const total = turns.reduce((n, t) => n + (t.cost_nano_usd || 0), 0);
      this.observer = new IntersectionObserver((entries) => {
        for (const entry of entries) {
          if (!entry.isIntersecting) continue;
          this.observer.unobserve(entry.target);
          this.fill(entry.target);
        }
      }, { rootMargin: '200px' });
      const cards = turns.map((t, i) => {
        const card = h('article', { class: ['turn', t.status === 'error' && 'turn-error'], dataset: { runId: t.run_id } },
          h('div', { class: 'turn-head' },
            h('span', { class: 'turn-no', text: `#${i + 1}` }),
            h('a', { href: paths.trace(t.run_id), class: 'name', text: t.name || t.run_id }),
            h('span', { class: `status status-${t.status || 'unset'}` }, h('span', { class: 'dot' }), h('span', { class: 'status-text', text: t.status || 'unset' })),
            h('span', { class: 'muted small', text: `${fmt.time(t.created_at)} · ${fmt.ms(t.total_ms)} · ${fmt.count(t.steps)} steps · ${fmt.cost(t.cost_nano_usd)}` }),
            scoreChips(t.scores)),
          h('div', { class: 'turn-io' },
            h('div', { class: 'msg role-user' }, h('div', { class: 'role', text: 'input' }), h('div', { class: 'msg-text turn-input muted', text: '…' })),
            h('div', { class: 'msg role-assistant' }, h('div', { class: 'role', text: 'output' }), h('div', { class: 'msg-text turn-output muted', text: '…' }))));
        this.observer.observe(card);
        return card;
      });
      replace(this.root,
        h('p', { class: 'back' }, h('a', { href: '/sessions', text: '← Sessions' })),
        h('h1', null, 'Session ', h('code', { text: this.sessionId })),
        h('p', { class: 'muted', text: `${turns.length} turn${turns.length === 1 ? '' : 's'} · ${fmt.cost(total)}` }),
        h('div', { class: 'turns' }, cards));
    } catch (e) {
      replace(this.root, h('p', { class: 'empty', text: `Could not load the session: ${e.message}` }));
      toast(e.message, 'error');
    }
  }

  /** Loads one turn's trace when its card scrolls into view. */
  async fill(card) {
    try {
      const { trace } = await api.trace(card.dataset.runId);
      const { input, output } = turnText(trace);
      const inNode = card.querySelector('.turn-input');
      const outNode = card.querySelector('.turn-output');
      inNode.textContent = input || '(no input recorded)';
      outNode.textContent = output || '(no output recorded)';
      inNode.classList.toggle('muted', !input);
      outNode.classList.toggle('muted', !output);
    } catch (e) {
      card.querySelector('.turn-input').textContent = `could not load: ${e.message}`;
    }
  }

  onKey() { return false; }
}
