// One way to show each quantity, used by every view.

const INT = new Intl.NumberFormat('en-US');

/** Nano-USD (integer) as dollars: $1.23 from a dollar up, $0.0123 below, <$0.0001 for dust. */
export function cost(nano) {
  const n = Number(nano) || 0;
  if (n === 0) return '$0';
  const usd = n / 1e9;
  const abs = Math.abs(usd);
  if (abs < 0.0001) return usd < 0 ? '-<$0.0001' : '<$0.0001';
  const digits = abs >= 1 ? 2 : 4;
  const text = abs.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return `${usd < 0 ? '-' : ''}$${text}`;
}

/** A token or step count with thousands separators; 1.2M past a million. */
export function count(n) {
  const v = Number(n) || 0;
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  return INT.format(v);
}

/** A count in a few characters: 950, 12.3k, 4.5M. */
export function compact(n) {
  const v = Number(n) || 0;
  if (Math.abs(v) >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (Math.abs(v) >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  return INT.format(v);
}

/** Milliseconds as a duration: 0.4 ms, 312 ms, 4.21 s, 3m 05s, 2h 01m. */
export function ms(value) {
  const v = Number(value) || 0;
  if (v < 1) return v === 0 ? '0 ms' : `${v.toFixed(2)} ms`;
  if (v < 1000) return `${Math.round(v)} ms`;
  if (v < 60_000) return `${(v / 1000).toFixed(2)} s`;
  const s = Math.round(v / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Microseconds as a duration. */
export function us(value) {
  return ms((Number(value) || 0) / 1000);
}

/** RFC 3339 with up to 9 fractional digits to microseconds since the epoch (exact). */
export function micros(ts) {
  if (typeof ts !== 'string') return null;
  const m = /^(.*?:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return null;
  const seconds = Date.parse(m[1] + m[3]);
  if (Number.isNaN(seconds)) return null;
  const fraction = (m[2] || '').padEnd(6, '0').slice(0, 6);
  return seconds * 1000 + Number(fraction);
}

function pad(n) { return String(n).padStart(2, '0'); }

/** A timestamp in local time: 2026-12-07 18:23:13. */
export function time(ts) {
  const us = micros(ts);
  if (us === null) return ts ? String(ts) : '';
  const d = new Date(us / 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A timestamp in local time without the year when it is this year: 12-07 18:23:13. */
export function shortTime(ts) {
  const us = micros(ts);
  if (us === null) return ts ? String(ts) : '';
  const d = new Date(us / 1000);
  const full = time(ts);
  return d.getFullYear() === new Date().getFullYear() ? full.slice(5) : full;
}

/** How long ago: 12s ago, 5m ago, 3h ago, 4d ago. */
export function ago(ts) {
  const us = micros(ts);
  if (us === null) return '';
  const s = Math.round((Date.now() - us / 1000) / 1000);
  if (s < 0) return 'in the future';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

/** A metadata or attribute value as one line of text. */
export function value(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** Model names of a summary, most called first. */
export function models(summary) {
  return Object.entries(summary.models || {})
    .sort((a, b) => (b[1].calls || 0) - (a[1].calls || 0))
    .map(([name]) => name);
}

/** Percentage with one decimal. */
export function percent(part, whole) {
  if (!whole) return '0%';
  return `${((100 * part) / whole).toFixed(1)}%`;
}
