// One trace: header with totals, links, scores and actions; the step tree and
// waterfall; the panel of the selected step.

import { api, paths } from './api.js';
import { h, icon, replace, toast, copyText } from './dom.js';
import * as fmt from './format.js';
import { StepTree } from './tree.js';
import { stepPanel } from './panel.js';
import { scoreChips } from './list.js';
import { confirmDialog } from './dialogs.js';

const FEEDBACK = 'user_feedback';

function stat(label, value, cls) {
  return h('div', { class: ['stat', cls] }, h('span', { class: 'stat-label', text: label }), h('span', { class: 'stat-value', text: value }));
}

function runLink(summary) {
  return h('a', { href: paths.trace(summary.run_id), class: 'run-link' },
    h('span', { class: `status status-${summary.status || 'unset'}` }, h('span', { class: 'dot' })),
    summary.name || summary.run_id,
    h('span', { class: 'muted small', text: ` ${fmt.time(summary.created_at)}` }));
}

export class DetailView {
  constructor(ctx, runId) {
    this.ctx = ctx;
    this.runId = runId;
    this.root = h('section', { class: 'view view-detail' }, h('p', { class: 'loading', text: 'Loading trace…' }));
    this.tree = null;
  }

  show(container) {
    container.appendChild(this.root);
    this.load();
  }

  hide() {
    clearTimeout(this.refresher);
    this.root.remove();
  }

  async load() {
    try {
      const data = await api.trace(this.runId);
      performance.mark('trace-fetched');
      this.data = data;
      this.render();
      this.followIfRunning();
    } catch (e) {
      replace(this.root,
        h('p', { class: 'back' }, h('a', { href: '/', 'data-nav': true, text: '← Traces' })),
        h('div', { class: 'empty' }, e.status === 404 ? `No run ${this.runId} in this store.` : `Could not load the run: ${e.message}`));
    }
  }

  render() {
    const { trace, summary, children } = this.data;
    document.title = `${trace.name || trace.run_id} · trace-store`;
    this.panel = h('aside', { class: 'panel', tabindex: '-1', 'aria-label': 'Selected step' },
      h('p', { class: 'muted panel-hint', text: 'Select a step to see its messages, arguments, usage and attributes.' }));
    this.tree = new StepTree(trace, (i) => this.showStep(i));
    const firstError = this.tree.firstError();
    const toolbar = h('div', { class: 'toolbar' },
      firstError >= 0 ? h('button', {
        type: 'button', class: 'danger-ghost', id: 'jump-error',
        on: { click: () => { this.tree.reveal(this.tree.firstError()); this.tree.viewport.focus(); } },
      }, icon('error'), ' Jump to first error') : null,
      h('button', { type: 'button', class: 'ghost', on: { click: () => this.tree.setAll(true) } }, 'Expand all'),
      h('button', { type: 'button', class: 'ghost', on: { click: () => this.tree.setAll(false) } }, 'Collapse all'));
    this.tree.node.prepend(toolbar);
    replace(this.root,
      this.header(trace, summary, children),
      h('div', { class: 'detail-split' }, this.tree.node, this.panel));
    this.tree.render();
    // Read by the browser tests to report time-to-interactive of a trace.
    performance.mark('trace-interactive');
    if (trace.steps && trace.steps.length === 0) {
      replace(this.panel, h('p', { class: 'muted', text: 'This run recorded no steps.' }));
    }
  }

  header(trace, summary, children) {
    const models = fmt.models(summary);
    const meta = Object.entries(trace.metadata || {});
    const links = [];
    if (trace.parent_run_id) {
      links.push(h('div', { class: 'link-row' }, h('span', { class: 'muted', text: 'Parent run ' }),
        h('a', { href: paths.trace(trace.parent_run_id), class: 'parent-link', text: trace.parent_run_id })));
    }
    if (trace.session_id) {
      links.push(h('div', { class: 'link-row' }, h('span', { class: 'muted', text: 'Session ' }),
        h('a', { href: paths.session(trace.session_id), text: trace.session_id })));
    }
    if (children && children.length) {
      links.push(h('div', { class: 'link-row children' }, h('span', { class: 'muted', text: `Child runs (${children.length}) ` }),
        children.map(runLink)));
    }
    this.scoreNode = h('span', { class: 'scores' }, scoreChips(summary.scores));
    return h('header', { class: 'detail-head' },
      h('div', { class: 'title-row' },
        h('a', { href: '/', class: 'back-link', title: 'Back to the list (Esc)', text: '←', on: { click: (e) => { e.preventDefault(); this.ctx.back(); } } }),
        h('h1', { title: trace.name || trace.run_id, text: trace.name || '(unnamed run)' }),
        h('span', { class: `status status-${trace.status || 'unset'}` }, h('span', { class: 'dot' }), h('span', { class: 'status-text', text: trace.status || 'unset' })),
        this.scoreNode),
      h('div', { class: 'run-id muted' }, trace.run_id,
        h('button', { type: 'button', class: 'icon-button', title: 'Copy run id', 'aria-label': 'Copy run id', on: { click: () => copyText(trace.run_id) } }, icon('copy'))),
      h('div', { class: 'stats-row' },
        stat('Started', fmt.time(trace.created_at)),
        stat('Duration', fmt.ms(summary.total_ms)),
        stat('Steps', fmt.count(summary.steps)),
        summary.failed_steps ? stat('Failed', fmt.count(summary.failed_steps), 'stat-error') : null,
        stat('Tokens in / out', `${fmt.count(summary.input_tokens)} / ${fmt.count(summary.output_tokens)}`),
        stat('Cost', fmt.cost(summary.cost_nano_usd)),
        models.length ? stat('Models', models.join(', ')) : null),
      trace.error ? h('div', { class: 'error-box', role: 'alert' },
        h('strong', { text: `${trace.error.type || 'Error'}: ` }), trace.error.message || '',
        trace.error.stacktrace ? h('details', null, h('summary', { text: 'Stack trace' }), h('pre', { class: 'json', text: trace.error.stacktrace })) : null) : null,
      meta.length ? h('div', { class: 'chips meta' }, meta.map(([k, v]) => h('a', {
        class: 'chip', href: `/?${new URLSearchParams([[`meta.${k}`, fmt.value(v)]])}`, title: `List runs with ${k} = ${fmt.value(v)}`,
      }, h('span', { class: 'muted', text: `${k} ` }), fmt.value(v)))) : null,
      links,
      h('div', { class: 'actions' },
        this.feedback(trace),
        h('span', { class: 'spacer' }),
        h('button', { type: 'button', class: 'ghost', on: { click: () => copyText(JSON.stringify(trace, null, 2)) } }, icon('copy'), ' Copy trace JSON'),
        h('button', { type: 'button', class: 'danger-ghost', id: 'delete-run', on: { click: () => this.remove() } }, icon('trash'), ' Delete run')));
  }

  feedback(trace) {
    const existing = (trace.scores || []).find((s) => s.name === FEEDBACK && !s.step_id && (s.source || 'human') === 'human');
    this.current = existing ? existing.value : undefined;
    const note = h('input', { type: 'text', class: 'note', name: 'note', placeholder: 'Add a note about this run', maxlength: '2000' });
    note.value = (existing && existing.comment) || '';
    const up = h('button', { type: 'button', class: ['thumb', 'thumb-up', this.current >= 1 && 'active'], title: 'Good run', 'aria-label': 'Thumbs up', 'aria-pressed': String(this.current >= 1) }, icon('up', true));
    const down = h('button', { type: 'button', class: ['thumb', 'thumb-down', this.current === 0 && 'active'], title: 'Bad run', 'aria-label': 'Thumbs down', 'aria-pressed': String(this.current === 0) }, icon('down', true));
    const save = async (value) => {
      const body = { name: FEEDBACK, source: 'human' };
      if (value !== undefined) body.value = value;
      const comment = note.value.trim();
      if (comment) body.comment = comment;
      if (body.value === undefined && !body.comment) return;
      try {
        const { summary } = await api.addScore(trace.run_id, body);
        this.current = value;
        up.classList.toggle('active', value >= 1); up.setAttribute('aria-pressed', String(value >= 1));
        down.classList.toggle('active', value === 0); down.setAttribute('aria-pressed', String(value === 0));
        replace(this.scoreNode, scoreChips(summary.scores));
        this.ctx.invalidateList();
        toast('Feedback saved');
      } catch (e) {
        toast(`Could not save the score: ${e.message}`, 'error');
      }
    };
    up.addEventListener('click', () => save(1));
    down.addEventListener('click', () => save(0));
    const saveNote = h('button', { type: 'button', class: 'ghost', on: { click: () => save(this.current) } }, 'Save note');
    note.addEventListener('keydown', (e) => { if (e.key === 'Enter') save(this.current); });
    return h('div', { class: 'feedback' }, h('span', { class: 'muted', text: 'Feedback' }), up, down, note, saveNote);
  }

  /**
   * While the run is still running, refetches it every 2 s and redraws when it grew,
   * keeping the selected step, the folds and the scroll position.
   */
  followIfRunning() {
    if (this.data.trace.status !== 'running') return;
    this.refresher = setTimeout(async () => {
      if (!this.root.isConnected) return;
      try {
        const data = await api.trace(this.runId);
        const before = this.data.summary;
        const changed = JSON.stringify(before) !== JSON.stringify(data.summary);
        // Never redraw under someone typing a note; the next tick catches up.
        const typing = this.root.querySelector('.detail-head').contains(document.activeElement);
        if (changed && this.root.isConnected && !typing) {
          const { selected, expanded } = this.tree;
          const scroll = this.tree.viewport.scrollTop;
          this.data = data;
          this.render();
          expanded.forEach((open, i) => { if (i < this.tree.expanded.length) this.tree.expanded[i] = open; });
          this.tree.refresh();
          this.tree.viewport.scrollTop = scroll;
          if (selected >= 0 && selected < (data.trace.steps || []).length) this.tree.select(selected);
        }
      } catch {
        // The next tick retries; a deleted run simply stops updating.
      }
      this.followIfRunning();
    }, 2000);
  }

  showStep(i) {
    const offset = this.tree.startUs[i] - this.tree.t0;
    replace(this.panel, stepPanel(this.data.trace, i, offset));
    this.panel.scrollTop = 0;
  }

  async remove() {
    const { trace } = this.data;
    const ok = await confirmDialog({
      title: 'Delete this run?',
      message: `"${trace.name || trace.run_id}" (${trace.run_id}) and its ${trace.steps ? trace.steps.length : 0} steps will be removed from the store. This cannot be undone.`,
      confirm: 'Delete run', danger: true,
    });
    if (!ok) return;
    try {
      const { deleted } = await api.deleteTrace(trace.run_id);
      toast(deleted ? 'Run deleted' : 'The run was already gone');
      this.ctx.invalidateList();
      this.ctx.navigate('/');
    } catch (e) {
      toast(`Could not delete: ${e.message}`, 'error');
    }
  }

  onKey(e) {
    if (!this.tree) return false;
    if (e.key === 'e' && this.tree.firstError() >= 0) { this.tree.reveal(this.tree.firstError()); return true; }
    if (e.key === 'Enter' && this.tree.selected >= 0) { this.panel.focus(); return true; }
    return this.tree.onKey(e);
  }
}
