// The step tree beside a waterfall. Only the rows in view are in the DOM (a trace of
// 5,000 steps renders about forty), so opening, scrolling and folding stay instant.

import { h, icon, replace } from './dom.js';
import * as fmt from './format.js';

const ROW = 28;
const OVERSCAN = 12;

const KIND_LABELS = {
  llm_call: 'LLM', tool_call: 'TOOL', tool_selection: 'PICK', retrieval: 'RAG', embedding: 'EMB',
  agent: 'AGENT', chain: 'CHAIN', guardrail: 'GUARD', cache_hit: 'CACHE', memory: 'MEM', error: 'ERR',
};

/** The label shown for a step: its name, else its tool, model or kind. */
export function stepTitle(step) {
  return step.name || (step.tool && step.tool.name) || step.model || step.kind || 'step';
}

export function kindTag(kind) {
  const known = Object.hasOwn(KIND_LABELS, kind);
  return h('span', { class: `kind kind-${known ? kind : 'other'}`, title: kind, text: known ? KIND_LABELS[kind] : String(kind).slice(0, 5).toUpperCase() });
}

/**
 * The step forest, read as core's `Trace::parent_indices` reads it: an unknown or
 * missing parent makes a root, a duplicated id names its last step, and a parent
 * chain that loops is cut at its first-recorded step.
 */
export function buildForest(steps) {
  const n = steps.length;
  const lastById = new Map();
  steps.forEach((s, i) => { if (s.id !== undefined && s.id !== null) lastById.set(s.id, i); });
  const parent = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const p = steps[i].parent_id;
    if (p === undefined || p === null) continue;
    const at = lastById.get(p);
    if (at !== undefined && at !== i) parent[i] = at;
  }
  // Cut loops: walk up from each unresolved step; a walk that meets itself is a loop.
  const state = new Uint8Array(n); // 0 new, 1 on the current walk, 2 done
  for (let i = 0; i < n; i++) {
    if (state[i]) continue;
    const walk = [];
    let at = i;
    while (at !== -1 && state[at] === 0) { state[at] = 1; walk.push(at); at = parent[at]; }
    if (at !== -1 && state[at] === 1) {
      const loop = walk.slice(walk.indexOf(at));
      parent[Math.min(...loop)] = -1;
    }
    for (const w of walk) state[w] = 2;
  }
  const children = Array.from({ length: n }, () => []);
  const roots = [];
  for (let i = 0; i < n; i++) (parent[i] === -1 ? roots : children[parent[i]]).push(i);
  return { parent, children, roots };
}

export class StepTree {
  /** `trace`: the trace; `onSelect(index)`: a step was chosen. */
  constructor(trace, onSelect) {
    this.trace = trace;
    this.steps = trace.steps || [];
    this.onSelect = onSelect;
    const { parent, children, roots } = buildForest(this.steps);
    this.parent = parent;
    this.children = children;
    this.roots = roots;
    const byStart = (a, b) => (this.start(a) - this.start(b)) || (a - b);
    this.computeTimes();
    for (const list of children) list.sort(byStart);
    roots.sort(byStart);
    this.depth = new Int32Array(this.steps.length);
    this.failedLeaf = new Uint8Array(this.steps.length);
    this.order = [];
    this.walk();
    this.expanded = new Uint8Array(this.steps.length);
    // Roots open, deeper spans folded: the outline of a 5,000-step run fits a screen.
    for (const i of this.roots) this.expanded[i] = 1;
    this.selected = -1;
    this.build();
    // Rows are drawn once the tree is in the page and has a height (render()).
    this.computeVisible();
  }

  start(i) { return this.startUs[i]; }

  computeTimes() {
    const n = this.steps.length;
    const created = fmt.micros(this.trace.created_at) ?? 0;
    this.startUs = new Float64Array(n);
    let t0 = created;
    let t1 = fmt.micros(this.trace.ended_at) ?? created;
    const parsed = this.steps.map((s) => fmt.micros(s.started_at));
    for (let i = 0; i < n; i++) {
      // A step with no start time sits at its parent's start, or the run's.
      let at = parsed[i];
      let p = this.parent[i];
      while (at === null && p !== -1) { at = parsed[p]; p = this.parent[p]; }
      this.startUs[i] = at ?? created;
      t0 = Math.min(t0, this.startUs[i]);
      t1 = Math.max(t1, this.startUs[i] + (this.steps[i].duration_us || 0));
    }
    this.t0 = t0;
    this.span = Math.max(1, t1 - t0);
  }

  /** Depth-first order, depths, and which failed steps have no failed descendant. */
  walk() {
    const stack = [...this.roots].reverse().map((i) => [i, 0]);
    const hasFailedBelow = new Uint8Array(this.steps.length);
    while (stack.length) {
      const [i, d] = stack.pop();
      this.depth[i] = d;
      this.order.push(i);
      const kids = this.children[i];
      for (let k = kids.length - 1; k >= 0; k--) stack.push([kids[k], d + 1]);
    }
    for (let k = this.order.length - 1; k >= 0; k--) {
      const i = this.order[k];
      const failed = this.steps[i].status === 'error';
      if (failed && !hasFailedBelow[i]) this.failedLeaf[i] = 1;
      const p = this.parent[i];
      if (p !== -1 && (failed || hasFailedBelow[i])) hasFailedBelow[p] = 1;
    }
  }

  build() {
    this.axis = h('div', { class: 'axis' });
    this.header = h('div', { class: 'tree-row tree-head' },
      h('div', { class: 'c-name', text: `Steps (${fmt.count(this.steps.length)})` }),
      h('div', { class: 'c-num', text: 'Duration' }),
      h('div', { class: 'c-num c-opt', text: 'Tokens' }),
      h('div', { class: 'c-num c-opt', text: 'Cost' }),
      h('div', { class: 'c-bar' }, this.axis));
    this.spacer = h('div', { class: 'tree-spacer' });
    this.viewport = h('div', {
      class: 'tree-body', tabindex: '0', role: 'tree', 'aria-label': 'Steps',
      on: { scroll: () => this.schedule() },
    }, this.spacer);
    this.node = h('div', { class: 'tree' }, this.header, this.viewport);
    if (typeof ResizeObserver === 'function') {
      new ResizeObserver(() => this.schedule()).observe(this.viewport);
    }
  }

  /** Ticks about every 70 px of the bar column, labelled 0 ms, 500ms, 1.5s, ... */
  drawAxis() {
    const width = this.axis.clientWidth;
    if (width === this.axisWidth) return;
    this.axisWidth = width;
    const spanMs = this.span / 1000;
    const rough = spanMs / Math.max(1, Math.min(6, Math.floor(width / 70)));
    const pow = 10 ** Math.floor(Math.log10(Math.max(rough, 1e-3)));
    const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= rough) || pow * 10;
    const ticks = [];
    for (let t = 0; t <= spanMs + 1e-9; t += step) {
      const left = (100 * t) / spanMs;
      if (left > 94) break;
      const label = t < 1000 ? `${Math.round(t)}ms` : `${+(t / 1000).toFixed(2)}s`;
      ticks.push(h('span', { class: 'tick', style: { left: `${left}%` }, text: label }));
    }
    replace(this.axis, ticks);
  }

  /** Recomputes the visible rows and draws them. */
  refresh() {
    this.computeVisible();
    this.render();
  }

  /** Visible rows: the depth-first order without the descendants of folded steps. */
  computeVisible() {
    const visible = [];
    let skipDepth = Infinity;
    for (const i of this.order) {
      const d = this.depth[i];
      if (d > skipDepth) continue;
      skipDepth = Infinity;
      visible.push(i);
      if (!this.expanded[i] && this.children[i].length) skipDepth = d;
    }
    this.visible = visible;
    this.position = new Map(visible.map((i, at) => [i, at]));
    this.spacer.style.height = `${visible.length * ROW}px`;
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = null; this.render(); });
  }

  render() {
    this.drawAxis();
    const top = this.viewport.scrollTop;
    const height = this.viewport.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
    const last = Math.min(this.visible.length, Math.ceil((top + height) / ROW) + OVERSCAN);
    const rows = [];
    for (let at = first; at < last; at++) rows.push(this.row(this.visible[at], at));
    replace(this.spacer, rows);
  }

  row(i, at) {
    const s = this.steps[i];
    const kids = this.children[i].length;
    const open = this.expanded[i] === 1;
    const failed = s.status === 'error';
    const left = (100 * (this.startUs[i] - this.t0)) / this.span;
    const width = (100 * (s.duration_us || 0)) / this.span;
    const tokens = (s.usage && (s.usage.input_tokens || s.usage.output_tokens))
      ? `${fmt.count(s.usage.input_tokens || 0)}/${fmt.count(s.usage.output_tokens || 0)}` : '';
    const toggle = kids
      ? h('button', {
        type: 'button', class: ['toggle', open && 'open'], tabindex: '-1',
        'aria-label': `${open ? 'Collapse' : 'Expand'} ${stepTitle(s)}`,
        on: { click: (e) => { e.stopPropagation(); this.toggle(i); } },
      }, icon('chevron'))
      : h('span', { class: 'toggle-space' });
    return h('div', {
      class: ['tree-row', 'step', failed && 'row-error', s.status === 'running' && 'row-running', i === this.selected && 'selected'],
      role: 'treeitem', 'aria-level': String(this.depth[i] + 1), 'aria-expanded': kids ? String(open) : null,
      'aria-selected': String(i === this.selected),
      dataset: { index: i, kind: s.kind },
      style: { top: `${at * ROW}px` },
      on: { click: () => this.select(i) },
    },
      h('div', { class: 'c-name', style: { 'padding-left': `${6 + this.depth[i] * 14}px` } },
        toggle, kindTag(s.kind),
        h('span', { class: 'step-name', title: stepTitle(s), text: stepTitle(s) }),
        failed ? h('span', { class: 'err-mark', title: 'failed' }, icon('error')) : null,
        kids && !open ? h('span', { class: 'muted small', text: `+${kids}` }) : null),
      h('div', { class: 'c-num', text: fmt.us(s.duration_us) }),
      h('div', { class: 'c-num c-opt', text: tokens }),
      h('div', { class: 'c-num c-opt', text: s.cost_nano_usd ? fmt.cost(s.cost_nano_usd) : '' }),
      h('div', { class: 'c-bar' },
        h('span', {
          class: ['bar', `bar-${s.kind}`, failed && 'bar-error'],
          title: `${stepTitle(s)}: ${fmt.us(s.duration_us)} at +${fmt.us(this.startUs[i] - this.t0)}`,
          style: { left: `${Math.min(left, 99.5)}%`, width: `max(2px, ${width}%)` },
        })));
  }

  toggle(i, open = !this.expanded[i]) {
    if (!this.children[i].length) return;
    this.expanded[i] = open ? 1 : 0;
    this.refresh();
  }

  setAll(open) {
    this.expanded.fill(open ? 1 : 0);
    this.refresh();
  }

  /** Unfolds the ancestors of i, selects it and scrolls it into view. */
  reveal(i) {
    let changed = false;
    for (let p = this.parent[i]; p !== -1; p = this.parent[p]) {
      if (!this.expanded[p]) { this.expanded[p] = 1; changed = true; }
    }
    if (changed) this.refresh();
    this.select(i);
  }

  select(i) {
    this.selected = i;
    const at = this.position.get(i);
    if (at !== undefined) {
      const top = at * ROW;
      const vp = this.viewport;
      if (top < vp.scrollTop) vp.scrollTop = top;
      else if (top + ROW > vp.scrollTop + vp.clientHeight) vp.scrollTop = top + ROW - vp.clientHeight;
    }
    this.render();
    this.onSelect(i);
  }

  firstError() {
    return this.order.find((i) => this.failedLeaf[i] === 1) ?? -1;
  }

  onKey(e) {
    const at = this.position.get(this.selected) ?? -1;
    const go = (pos) => {
      const clamped = Math.max(0, Math.min(this.visible.length - 1, pos));
      if (this.visible.length) this.select(this.visible[clamped]);
    };
    switch (e.key) {
      case 'j': case 'ArrowDown': go(at + 1); return true;
      case 'k': case 'ArrowUp': go(at - 1); return true;
      case 'Home': go(0); return true;
      case 'End': go(this.visible.length - 1); return true;
      case 'ArrowRight': case 'l':
        if (this.selected < 0) return false;
        if (this.children[this.selected].length && !this.expanded[this.selected]) this.toggle(this.selected, true);
        else go(at + 1);
        return true;
      case 'ArrowLeft': case 'h':
        if (this.selected < 0) return false;
        if (this.expanded[this.selected] && this.children[this.selected].length) this.toggle(this.selected, false);
        else if (this.parent[this.selected] !== -1) this.select(this.parent[this.selected]);
        return true;
      case ' ':
        if (this.selected < 0) return false;
        this.toggle(this.selected);
        return true;
      default: return false;
    }
  }
}
