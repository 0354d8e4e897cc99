// The side panel of one step, built only when that step is selected.

import { h, icon, copyText } from './dom.js';
import * as fmt from './format.js';
import { normalize, renderMessages, jsonBlock, clipped } from './messages.js';
import { kindTag, stepTitle } from './tree.js';

function section(title, ...body) {
  return h('section', { class: 'panel-section' }, h('h3', { text: title }), body);
}

function facts(pairs) {
  const rows = pairs.filter(([, v]) => v !== undefined && v !== null && v !== '');
  if (!rows.length) return null;
  return h('dl', { class: 'facts' }, rows.map(([k, v]) => [h('dt', { text: k }), h('dd', null, v)]));
}

function ioSection(title, value, isTool) {
  if (value === undefined) return null;
  const messages = isTool ? null : normalize(value);
  return section(title, messages ? renderMessages(messages) : jsonBlock(value));
}

function errorBox(error) {
  if (!error) return null;
  return h('div', { class: 'error-box', role: 'alert' },
    h('strong', { text: error.type ? `${error.type}: ` : 'Error: ' }), error.message || '',
    error.stacktrace ? h('details', null, h('summary', { text: 'Stack trace' }), clipped(error.stacktrace, 'pre', 'json')) : null);
}

function usage(step) {
  const u = step.usage || {};
  const source = (step.attributes && step.attributes['cost.source']) || (step.cost_nano_usd ? 'reported by the producer' : '');
  const rows = [
    ['Input tokens', u.input_tokens ? fmt.count(u.input_tokens) : ''],
    ['Output tokens', u.output_tokens ? fmt.count(u.output_tokens) : ''],
    ['Cache read', u.cache_read_input_tokens ? fmt.count(u.cache_read_input_tokens) : ''],
    ['Cache write', u.cache_creation_input_tokens ? fmt.count(u.cache_creation_input_tokens) : ''],
    ['Reasoning', u.reasoning_tokens ? fmt.count(u.reasoning_tokens) : ''],
    ['Cost', step.cost_nano_usd ? fmt.cost(step.cost_nano_usd) : ''],
    ['Cost source', step.cost_nano_usd ? fmt.value(source) : ''],
  ];
  const body = facts(rows);
  return body ? section('Usage and cost', body) : null;
}

function attributes(attrs) {
  const entries = Object.entries(attrs || {});
  if (!entries.length) return null;
  return section(`Attributes (${entries.length})`, h('table', { class: 'attrs' }, h('tbody', null,
    entries.map(([k, v]) => h('tr', null, h('th', { text: k }),
      h('td', null, v !== null && typeof v === 'object' ? jsonBlock(v) : clipped(fmt.value(v), 'span', 'attr-text')))))));
}

/** The panel for step `index` of `trace`; `startUs` is its start in µs since the run began. */
export function stepPanel(trace, index, offsetUs) {
  const step = trace.steps[index];
  const isTool = step.kind === 'tool_call' || Boolean(step.tool);
  const scores = (trace.scores || []).filter((s) => s.step_id && s.step_id === step.id);
  return h('div', { class: 'panel-body', dataset: { index } },
    h('div', { class: 'panel-head' },
      kindTag(step.kind), h('h2', { title: stepTitle(step), text: stepTitle(step) }),
      h('span', { class: `status status-${step.status || 'unset'}` }, h('span', { class: 'dot' }), h('span', { class: 'status-text', text: step.status || 'unset' })),
      h('button', {
        type: 'button', class: 'ghost', title: 'Copy this step as JSON',
        on: { click: () => copyText(JSON.stringify(step, null, 2)) },
      }, icon('copy'), ' JSON')),
    errorBox(step.error),
    facts([
      ['Started', step.started_at ? `${fmt.time(step.started_at)} (+${fmt.us(offsetUs)})` : ''],
      ['Duration', fmt.us(step.duration_us)],
      ['Model', step.model],
      ['Provider', step.provider],
      ['Tool', step.tool ? step.tool.name : ''],
      ['Tool call id', step.tool ? step.tool.call_id : ''],
      ['Step id', step.id],
      ['Parent step', step.parent_id],
    ]),
    usage(step),
    ioSection(isTool ? 'Arguments' : 'Input', step.input, isTool),
    ioSection(isTool ? 'Result' : 'Output', step.output, isTool),
    scores.length ? section('Scores', facts(scores.map((s) => [s.name, `${s.value ?? s.label ?? ''}${s.comment ? ` · ${s.comment}` : ''}`]))) : null,
    attributes(step.attributes));
}
