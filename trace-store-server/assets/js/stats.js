// Stats: totals, error rate, and cost and tokens by day and by model, drawn as SVG.

import { api } from './api.js';
import { h, svg, replace } from './dom.js';
import * as fmt from './format.js';
import { filterBar, fromSearch } from './filters.js';

const W = 640;
const H = 220;
const PAD = { l: 64, r: 12, t: 12, b: 34 };

/** The top of an axis with four gridlines at round values. */
function niceMax(v) {
  if (v <= 0) return 4;
  const rough = v / 4;
  const pow = 10 ** Math.floor(Math.log10(rough));
  return 4 * [1, 2, 2.5, 5, 10].map((m) => m * pow).find((m) => m >= rough);
}

/** Every UTC day from the first group to the last, empty days included. */
function fillDays(groups) {
  const byDay = new Map(groups.map((g) => [g.label, g.stats]));
  const days = [...byDay.keys()].sort();
  if (!days.length) return [];
  const out = [];
  const end = Date.parse(`${days[days.length - 1]}T00:00:00Z`);
  for (let t = Date.parse(`${days[0]}T00:00:00Z`); t <= end && out.length < 400; t += 86_400_000) {
    const label = new Date(t).toISOString().slice(0, 10);
    out.push({ label, stats: byDay.get(label) || { count: 0, cost_nano_usd: 0, input_tokens: 0, output_tokens: 0, by_status: {} } });
  }
  return out;
}

/** Vertical bars over time; `series` are stacked [{key, label, cls}]. */
function barChart({ title, rows, series, format }) {
  const innerW = W - PAD.l - PAD.r;
  const innerH = H - PAD.t - PAD.b;
  const totals = rows.map((r) => series.reduce((n, s) => n + (r[s.key] || 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const slot = innerW / Math.max(rows.length, 1);
  const bw = Math.max(2, Math.min(36, slot * 0.7));
  const nodes = [];
  for (let t = 0; t <= 4; t++) {
    const y = PAD.t + innerH - (innerH * t) / 4;
    nodes.push(svg('line', { x1: PAD.l, x2: W - PAD.r, y1: y, y2: y, class: 'grid' }));
    nodes.push(svg('text', { x: PAD.l - 6, y: y + 4, class: 'axis-label', 'text-anchor': 'end', text: format((max * t) / 4) }));
  }
  const labelEvery = Math.ceil(rows.length / 8);
  rows.forEach((r, i) => {
    const x = PAD.l + slot * i + (slot - bw) / 2;
    let y = PAD.t + innerH;
    for (const s of series) {
      const v = r[s.key] || 0;
      const bh = (innerH * v) / max;
      y -= bh;
      nodes.push(svg('rect', { x, y, width: bw, height: Math.max(0, bh), class: `bar-${s.cls}` },
        svg('title', { text: `${r.label}: ${s.label} ${format(v)}` })));
    }
    if (i % labelEvery === 0) {
      nodes.push(svg('text', { x: x + bw / 2, y: H - PAD.b + 16, class: 'axis-label', 'text-anchor': 'middle', text: r.short || r.label }));
    }
  });
  return chartCard(title, series, svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title }, nodes));
}

/** Horizontal bars per category (models). */
function hbarChart({ title, rows, series, format }) {
  const rowH = 26;
  const left = 150;
  const height = Math.max(rowH * rows.length + 24, 60);
  const innerW = W - left - 70;
  const totals = rows.map((r) => series.reduce((n, s) => n + (r[s.key] || 0), 0));
  const max = Math.max(...totals, 0) || 1;
  const nodes = [];
  rows.forEach((r, i) => {
    const y = 8 + i * rowH;
    nodes.push(svg('text', { x: left - 8, y: y + 15, class: 'axis-label', 'text-anchor': 'end', text: r.label.length > 22 ? `${r.label.slice(0, 21)}…` : r.label },
      svg('title', { text: r.label })));
    let x = left;
    for (const s of series) {
      const v = r[s.key] || 0;
      const w = (innerW * v) / max;
      nodes.push(svg('rect', { x, y: y + 3, width: Math.max(0, w), height: rowH - 8, class: `bar-${s.cls}` },
        svg('title', { text: `${r.label}: ${s.label} ${format(v)}` })));
      x += w;
    }
    nodes.push(svg('text', { x: x + 6, y: y + 15, class: 'axis-label', text: format(totals[i]) }));
  });
  return chartCard(title, series, svg('svg', { viewBox: `0 0 ${W} ${height}`, class: 'chart', role: 'img', 'aria-label': title }, nodes));
}

function chartCard(title, series, chart) {
  return h('figure', { class: 'card chart-card' },
    h('figcaption', null, h('span', { text: title }),
      series.length > 1 ? h('span', { class: 'legend' }, series.map((s) => h('span', { class: 'legend-item' }, h('span', { class: `swatch bar-${s.cls}` }), s.label))) : null),
    chart);
}

function card(label, value, cls) {
  return h('div', { class: ['card', 'kpi', cls] }, h('div', { class: 'stat-label', text: label }), h('div', { class: 'kpi-value', text: value }));
}

export class StatsView {
  constructor(ctx, search) {
    this.ctx = ctx;
    this.params = fromSearch(search);
    if (!this.params.has('since')) this.params.set('since', '30d');
    this.root = h('section', { class: 'view view-stats' });
    this.body = h('div', { class: 'stats-body' }, h('p', { class: 'loading', text: 'Loading stats…' }));
  }

  show(container) {
    container.appendChild(this.root);
    this.build();
    this.load();
  }

  build() {
    this.bar = filterBar(this.params, (params, { structural }) => {
      this.params = params;
      history.replaceState(null, '', `/stats?${params}`);
      if (structural) this.build();
      this.load();
    }, { searchHint: 'Only runs matching' });
    replace(this.root, h('h1', { text: 'Stats' }), this.bar.node, this.body);
  }

  hide() { this.root.remove(); }

  async load() {
    const generation = (this.generation = (this.generation || 0) + 1);
    try {
      const byDay = new URLSearchParams(this.params); byDay.set('group', 'day');
      const byModel = new URLSearchParams(this.params); byModel.set('group', 'model');
      const [days, models] = await Promise.all([api.stats(byDay), api.stats(byModel)]);
      if (generation !== this.generation) return;
      this.render(days, models);
    } catch (e) {
      replace(this.body, h('p', { class: 'empty', text: `Could not load stats: ${e.message}` }));
    }
  }

  render(days, models) {
    const t = days.total;
    const errors = (t.by_status && t.by_status.error) || 0;
    const dayRows = fillDays(days.groups).map((g) => ({
      label: g.label, short: g.label.slice(5),
      cost: g.stats.cost_nano_usd, input: g.stats.input_tokens, output: g.stats.output_tokens,
      ok: g.stats.count - ((g.stats.by_status && g.stats.by_status.error) || 0),
      error: (g.stats.by_status && g.stats.by_status.error) || 0,
    }));
    const modelRows = models.groups.map((g) => ({
      label: g.label, cost: g.stats.cost_nano_usd, input: g.stats.input_tokens, output: g.stats.output_tokens,
    })).sort((a, b) => b.cost - a.cost);
    if (!t.count) {
      replace(this.body, h('p', { class: 'empty', text: 'No runs match this filter.' }));
      return;
    }
    replace(this.body,
      h('div', { class: 'kpis' },
        card('Runs', fmt.count(t.count)),
        card('Error rate', fmt.percent(errors, t.count), errors ? 'kpi-error' : null),
        card('Failed steps', fmt.count(t.failed_steps || 0)),
        card('Cost', fmt.cost(t.cost_nano_usd)),
        card('Tokens in / out', `${fmt.compact(t.input_tokens)} / ${fmt.compact(t.output_tokens)}`),
        card('Avg duration', fmt.ms(t.total_ms / t.count))),
      h('div', { class: 'charts' },
        barChart({ title: 'Cost by day', rows: dayRows, series: [{ key: 'cost', label: 'cost', cls: 'cost' }], format: fmt.cost }),
        barChart({ title: 'Tokens by day', rows: dayRows, series: [{ key: 'input', label: 'input', cls: 'in' }, { key: 'output', label: 'output', cls: 'out' }], format: fmt.count }),
        barChart({ title: 'Runs and errors by day', rows: dayRows, series: [{ key: 'ok', label: 'not failed', cls: 'ok' }, { key: 'error', label: 'failed', cls: 'error' }], format: (v) => fmt.count(Math.round(v)) }),
        hbarChart({ title: 'Cost by model', rows: modelRows, series: [{ key: 'cost', label: 'cost', cls: 'cost' }], format: fmt.cost }),
        hbarChart({ title: 'Tokens by model', rows: [...modelRows].sort((a, b) => (b.input + b.output) - (a.input + a.output)), series: [{ key: 'input', label: 'input', cls: 'in' }, { key: 'output', label: 'output', cls: 'out' }], format: fmt.count })));
  }

  onKey(e) {
    if (e.key === '/') { this.bar.focusSearch(); return true; }
    return false;
  }
}
