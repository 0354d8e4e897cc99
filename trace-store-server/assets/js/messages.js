// Chat messages in the shapes producers write them: OpenAI-style
// [{role, content, tool_calls}], Anthropic content blocks, OpenTelemetry GenAI
// messages with parts, {messages: [...]}, {choices: [{message}]}, and plain strings.
// Anything else is shown as JSON by the caller.

import { h } from './dom.js';

export const PREVIEW_CHARS = 2000;

/** Text, clipped to PREVIEW_CHARS with a "Show all" button. */
export function clipped(text, tag = 'div', cls = 'msg-text') {
  const node = h(tag, { class: cls });
  if (text.length <= PREVIEW_CHARS) {
    node.textContent = text;
    return node;
  }
  node.textContent = text.slice(0, PREVIEW_CHARS);
  const kb = (text.length / 1024).toFixed(1);
  const more = h('button', {
    type: 'button', class: 'show-all', text: `… show all (${kb} KB)`,
    on: { click: () => { node.textContent = text; } },
  });
  node.appendChild(more);
  return node;
}

/** JSON pretty-printed and clipped; strings holding JSON are unpacked first. */
export function jsonBlock(value) {
  let v = value;
  if (typeof v === 'string') {
    const t = v.trim();
    if ((t.startsWith('{') || t.startsWith('[')) && t.length < 5e6) {
      try { v = JSON.parse(t); } catch { /* plain text */ }
    }
    if (typeof v === 'string') return clipped(v, 'pre', 'json');
  }
  return clipped(JSON.stringify(v, null, 2) ?? String(v), 'pre', 'json');
}

function textOf(content) {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  return null;
}

/** One part: {type: 'text'|'tool_call'|'tool_result'|'json', ...}. */
function parts(content) {
  const text = textOf(content);
  if (text !== null) return text ? [{ type: 'text', text }] : [];
  if (!Array.isArray(content)) return [{ type: 'json', value: content }];
  return content.map((p) => {
    if (typeof p === 'string') return { type: 'text', text: p };
    if (!p || typeof p !== 'object') return { type: 'json', value: p };
    switch (p.type) {
      case 'text': case 'input_text': case 'output_text':
        return { type: 'text', text: String(p.text ?? p.content ?? '') };
      case 'tool_call': // GenAI semconv
        return { type: 'tool_call', name: p.name, id: p.id, args: p.arguments };
      case 'tool_use': // Anthropic
        return { type: 'tool_call', name: p.name, id: p.id, args: p.input };
      case 'tool_call_response':
        return { type: 'tool_result', id: p.id, value: p.response ?? p.result };
      case 'tool_result':
        return { type: 'tool_result', id: p.tool_use_id ?? p.id, value: p.content };
      case 'reasoning': case 'thinking':
        return { type: 'text', text: String(p.content ?? p.thinking ?? p.text ?? ''), reasoning: true };
      default:
        return { type: 'json', value: p };
    }
  });
}

function message(m) {
  const out = parts(m.parts ?? m.content);
  for (const call of m.tool_calls || []) {
    const fn = call.function || call;
    out.push({ type: 'tool_call', name: fn.name, id: call.id, args: fn.arguments });
  }
  if (m.function_call) out.push({ type: 'tool_call', name: m.function_call.name, args: m.function_call.arguments });
  const role = String(m.role || 'message');
  if (role === 'tool' && out.length && out.every((p) => p.type === 'text')) {
    return { role, parts: [{ type: 'tool_result', id: m.tool_call_id, value: out.map((p) => p.text).join('\n') }] };
  }
  return { role, name: m.name, parts: out, finish: m.finish_reason };
}

function isMessage(v) {
  return v && typeof v === 'object' && !Array.isArray(v) && typeof v.role === 'string' &&
    ('content' in v || 'parts' in v || 'tool_calls' in v);
}

/** The messages in a step's input or output, or null when it holds none. */
export function normalize(value) {
  if (typeof value === 'string') return [{ role: null, parts: [{ type: 'text', text: value }] }];
  if (!value || typeof value !== 'object') return null;
  if (Array.isArray(value)) {
    if (value.length && value.every(isMessage)) return value.map(message);
    return null;
  }
  if (isMessage(value)) return [message(value)];
  if (Array.isArray(value.messages) && value.messages.every(isMessage)) {
    const list = value.messages.map(message);
    if (typeof value.system === 'string') list.unshift({ role: 'system', parts: [{ type: 'text', text: value.system }] });
    return list;
  }
  if (Array.isArray(value.choices) && value.choices.every((c) => c && isMessage(c.message))) {
    return value.choices.map((c) => message({ ...c.message, finish_reason: c.finish_reason }));
  }
  if (typeof value.prompt === 'string') return [{ role: 'user', parts: [{ type: 'text', text: value.prompt }] }];
  if (typeof value.completion === 'string') return [{ role: 'assistant', parts: [{ type: 'text', text: value.completion }] }];
  return null;
}

function renderPart(p) {
  switch (p.type) {
    case 'text':
      return clipped(p.text, 'div', p.reasoning ? 'msg-text reasoning' : 'msg-text');
    case 'tool_call':
      return h('div', { class: 'tool-call' },
        h('div', { class: 'tool-call-head' }, h('span', { class: 'kind kind-tool_call', text: 'CALL' }),
          h('code', { text: p.name || '(unnamed tool)' }), p.id ? h('span', { class: 'muted small', text: p.id }) : null),
        p.args === undefined ? null : jsonBlock(p.args));
    case 'tool_result':
      return h('div', { class: 'tool-call' },
        h('div', { class: 'tool-call-head' }, h('span', { class: 'kind kind-tool_result', text: 'RESULT' }),
          p.id ? h('span', { class: 'muted small', text: p.id }) : null),
        jsonBlock(p.value));
    default:
      return jsonBlock(p.value);
  }
}

/** The messages as chat bubbles. */
export function renderMessages(list) {
  return h('div', { class: 'messages' }, list.map((m) => h('div', { class: ['msg', m.role && `role-${/^[a-z_]+$/.test(m.role) ? m.role : 'other'}`] },
    m.role ? h('div', { class: 'role' }, m.role, m.name ? h('span', { class: 'muted', text: ` · ${m.name}` }) : null,
      m.finish ? h('span', { class: 'muted small', text: ` · ${m.finish}` }) : null) : null,
    m.parts.length ? m.parts.map(renderPart) : h('div', { class: 'muted small', text: '(empty)' }))));
}

/** A short text preview of an input or output (session turns). */
export function preview(value, chars = 280) {
  const list = normalize(value);
  let text;
  if (list) {
    const last = list.filter((m) => m.parts.some((p) => p.type === 'text')).pop() || list[list.length - 1];
    text = last ? last.parts.map((p) => (p.type === 'text' ? p.text : p.type === 'tool_call' ? `→ ${p.name}(…)` : '')).join(' ') : '';
  } else {
    text = JSON.stringify(value) ?? '';
  }
  return text.length > chars ? `${text.slice(0, chars)}…` : text;
}
