// Every node the viewer shows is built here, from text: attributes are set one by one,
// text goes through textContent, and no HTML string is ever parsed. Data from a trace
// can therefore never become markup, whatever it contains.

const SVG_NS = 'http://www.w3.org/2000/svg';

function apply(node, attrs) {
  if (!attrs) return node;
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'on') {
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    } else if (key === 'text') {
      node.textContent = String(value);
    } else if (key === 'class') {
      node.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    } else if (key === 'dataset') {
      for (const [k, v] of Object.entries(value)) node.dataset[k] = String(v);
    } else if (key === 'style') {
      // CSSOM properties, which a strict CSP allows (a style attribute it would not).
      for (const [k, v] of Object.entries(value)) node.style.setProperty(k, String(v));
    } else if (/^on/i.test(key)) {
      throw new Error(`refusing inline handler attribute ${key}`);
    } else if (value === true) {
      node.setAttribute(key, '');
    } else {
      node.setAttribute(key, String(value));
    }
  }
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
  return node;
}

/** An HTML element: h('a', {href, class, on: {click}}, 'text', childNode, [more]). */
export function h(tag, attrs, ...children) {
  return append(apply(document.createElement(tag), attrs), children);
}

/** An SVG element, same shape as h(). */
export function svg(tag, attrs, ...children) {
  return append(apply(document.createElementNS(SVG_NS, tag), attrs), children);
}

/** Removes every child of node. */
export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

/** Replaces the children of node. */
export function replace(node, ...children) {
  clear(node);
  return append(node, children);
}

const ICONS = {
  up: 'M2 10h4v11H2zM8 10l4-8c1.6 0 2.6 1.1 2.3 2.7L13.6 9H20c1.2 0 2.1 1.1 1.8 2.3l-1.6 7.9c-.2 1-1 1.8-2 1.8H8z',
  down: 'M2 3h4v11H2zM8 14l4 8c1.6 0 2.6-1.1 2.3-2.7L13.6 15H20c1.2 0 2.1-1.1 1.8-2.3l-1.6-7.9c-.2-1-1-1.8-2-1.8H8z',
  chevron: 'M9 6l6 6-6 6',
  copy: 'M8 8h12v12H8zM4 16V4h12',
  trash: 'M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3',
  error: 'M12 3l10 18H2zM12 10v5M12 18v.5',
};

/** A small inline icon; `filled` icons use the current color as fill. */
export function icon(name, filled = false) {
  return svg('svg', { class: 'icon', viewBox: '0 0 24 24', 'aria-hidden': 'true' },
    svg('path', {
      d: ICONS[name],
      fill: filled ? 'currentColor' : 'none',
      stroke: filled ? 'none' : 'currentColor',
      'stroke-width': '2', 'stroke-linecap': 'round', 'stroke-linejoin': 'round',
    }));
}

/** Calls fn after `ms` without another call: text search runs once typing pauses. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** True when a key event belongs to a text field, where letters are typed, not commands. */
export function isTyping(event) {
  const t = event.target;
  return t instanceof HTMLElement &&
    (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName));
}

let toastTimer = null;
/** A short message at the bottom of the window. */
export function toast(message, kind = 'info') {
  const node = document.getElementById('toast');
  if (!node) return;
  node.textContent = message;
  node.className = `toast-${kind}`;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { node.hidden = true; }, kind === 'error' ? 8000 : 3500);
}

/** Copies text to the clipboard, with a fallback where the async API is unavailable. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = h('textarea', { class: 'offscreen' });
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand('copy');
    area.remove();
  }
  toast('Copied to the clipboard');
}
