// The filter of the list, sessions and stats views. It lives in the page's query string
// with the API's own parameter names, so a view can be shared, reloaded, and passed to
// the API unchanged.

import { h, debounce } from './dom.js';

const SIMPLE = ['text', 'name', 'status', 'session', 'parent', 'since', 'until', 'min_steps', 'max_steps', 'score'];
const ADVANCED = ['name', 'session', 'parent', 'until', 'min_steps', 'max_steps'];

/** The filter parameters of a query string (paging and unknown keys dropped). */
export function fromSearch(search) {
  const source = new URLSearchParams(search);
  const params = new URLSearchParams();
  for (const [key, value] of source) {
    if (value === '') continue;
    if (SIMPLE.includes(key) || key.startsWith('meta.')) params.append(key, value);
  }
  return params;
}

/** Splits `NAME:MIN..MAX`. */
export function parseScore(text) {
  const m = /^(.*):([^:]*)\.\.([^:]*)$/.exec(text || '');
  return m ? { name: m[1], min: m[2], max: m[3] } : { name: '', min: '', max: '' };
}

const FEEDBACK = [
  ['', 'Any feedback'],
  ['user_feedback:1..', 'Thumbs up'],
  ['user_feedback:..0', 'Thumbs down'],
  ['user_feedback:..', 'Any rated'],
];

const SINCE = [['', 'Any time'], ['15m', 'Last 15 min'], ['1h', 'Last hour'], ['24h', 'Last 24 h'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days']];
const STATUS = [['', 'Any status'], ['ok', 'ok'], ['error', 'error'], ['running', 'running'], ['unset', 'unset']];

function select(options, current, onChange, label) {
  const node = h('select', { 'aria-label': label, on: { change: () => onChange(node.value) } },
    options.map(([v, text]) => h('option', { value: v, text })));
  if (current && !options.some(([v]) => v === current)) {
    node.appendChild(h('option', { value: current, text: current }));
  }
  node.value = current || '';
  return node;
}

function field(label, input) {
  return h('label', { class: 'field' }, h('span', { text: label }), input);
}

/**
 * The filter bar. `onChange(params, {typing})` gets the new filter; `typing` is true
 * for the debounced text search (the caller replaces the history entry then).
 */
export function filterBar(initial, onChange, { searchHint = 'Search names, messages, tools, metadata' } = {}) {
  let params = new URLSearchParams(initial);
  // `structural` changes (metadata chips, clear) need the bar rebuilt; others keep it,
  // and with it the focus and the caret of whoever is typing.
  let clearButton = null;
  const emit = (typing = false, structural = false) => {
    if (clearButton) clearButton.hidden = [...params.keys()].length === 0;
    onChange(new URLSearchParams(params), { typing, structural });
  };
  const set = (key, value, typing) => {
    if (value === '' || value === null || value === undefined) params.delete(key);
    else params.set(key, value);
    emit(typing);
  };

  const search = h('input', {
    type: 'search', class: 'search', id: 'search', placeholder: `${searchHint}  ( / )`,
    'aria-label': 'Search', autocomplete: 'off', spellcheck: 'false',
  });
  search.value = params.get('text') || '';
  const runSearch = debounce(() => set('text', search.value.trim(), true), 250);
  search.addEventListener('input', runSearch);
  search.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { search.blur(); e.stopPropagation(); }
    if (e.key === 'Enter') set('text', search.value.trim(), true);
  });

  const advancedSet = ADVANCED.some((k) => params.has(k)) ||
    (params.has('score') && !FEEDBACK.some(([v]) => v === params.get('score')));
  const more = h('div', { class: 'filters-more', hidden: !advancedSet });
  const moreButton = h('button', {
    type: 'button', class: 'ghost', 'aria-expanded': String(advancedSet),
    on: { click: () => { more.hidden = !more.hidden; moreButton.setAttribute('aria-expanded', String(!more.hidden)); } },
  }, 'More filters');

  const text = (key, label, attrs = {}) => {
    const input = h('input', { type: 'text', name: key, autocomplete: 'off', ...attrs });
    input.value = params.get(key) || '';
    input.addEventListener('change', () => set(key, input.value.trim()));
    return field(label, input);
  };

  const score = parseScore(params.get('score'));
  const scoreName = h('input', { type: 'text', name: 'score_name', placeholder: 'user_feedback' });
  const scoreMin = h('input', { type: 'number', name: 'score_min', step: 'any', class: 'narrow' });
  const scoreMax = h('input', { type: 'number', name: 'score_max', step: 'any', class: 'narrow' });
  scoreName.value = score.name; scoreMin.value = score.min; scoreMax.value = score.max;
  const scoreChanged = () => {
    const name = scoreName.value.trim();
    set('score', name ? `${name}:${scoreMin.value}..${scoreMax.value}` : '');
  };
  for (const input of [scoreName, scoreMin, scoreMax]) input.addEventListener('change', scoreChanged);

  const metaInput = h('input', {
    type: 'text', name: 'meta', placeholder: 'key=value', autocomplete: 'off',
    on: { keydown: (e) => { if (e.key === 'Enter') addMeta(); } },
  });
  const addMeta = () => {
    const m = /^([^=]+)=(.*)$/.exec(metaInput.value.trim());
    if (!m) { metaInput.setCustomValidity('write key=value'); metaInput.reportValidity(); return; }
    metaInput.setCustomValidity('');
    params.set(`meta.${m[1].trim()}`, m[2].trim());
    emit(false, true);
  };

  more.append(
    text('name', 'Name'), text('session', 'Session'), text('parent', 'Parent run'),
    text('until', 'Until', { placeholder: '2026-12-01T00:00:00Z or 2h' }),
    text('min_steps', 'Min steps', { type: 'number', min: '0', class: 'narrow' }),
    text('max_steps', 'Max steps', { type: 'number', min: '0', class: 'narrow' }),
    h('div', { class: 'field' }, h('span', { text: 'Metadata' }),
      h('div', { class: 'inline' }, metaInput, h('button', { type: 'button', on: { click: addMeta } }, 'Add'))),
    h('div', { class: 'field' }, h('span', { text: 'Score (name, min, max)' }),
      h('div', { class: 'inline' }, scoreName, scoreMin, scoreMax)),
  );

  const chips = [];
  for (const [key, value] of params) {
    if (!key.startsWith('meta.')) continue;
    chips.push(h('span', { class: 'chip' }, `${key.slice(5)} = ${value}`,
      h('button', {
        type: 'button', class: 'chip-x', 'aria-label': `Remove filter ${key.slice(5)}`, text: '×',
        on: { click: () => { params.delete(key); emit(false, true); } },
      })));
  }
  clearButton = h('button', {
    type: 'button', class: 'ghost', hidden: [...params.keys()].length === 0,
    on: { click: () => { params = new URLSearchParams(); emit(false, true); } },
  }, 'Clear');
  const bar = h('div', { class: 'filters' },
    h('div', { class: 'filters-main' },
      search,
      select(STATUS, params.get('status'), (v) => set('status', v), 'Status'),
      select(SINCE, params.get('since'), (v) => set('since', v), 'Since'),
      select(FEEDBACK, FEEDBACK.some(([v]) => v === params.get('score')) ? params.get('score') : '',
        (v) => set('score', v), 'Feedback'),
      moreButton,
      clearButton),
    chips.length ? h('div', { class: 'chips' }, chips) : null,
    more);
  return { node: bar, search, focusSearch: () => { search.focus(); search.select(); } };
}
