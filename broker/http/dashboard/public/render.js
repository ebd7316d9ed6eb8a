// HTML building for the dashboard. Every interpolated value is escaped (topic names, group names, owners and config
// values are user input); only fragments built by `html` itself pass through unescaped.

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** A fragment produced by `html`: trusted because its parts were escaped when it was built. */
class SafeHtml {
  constructor(text) { this.text = text; }
  toString() { return this.text; }
}

function part(value) {
  if (value instanceof SafeHtml) return value.text;
  if (value === null || value === undefined || value === false) return '';
  if (Array.isArray(value)) return value.map(part).join('');
  return escapeHtml(value);
}

/** Tagged template: `html\`<td>${name}</td>\`` escapes `name`; nested `html` fragments and arrays of them are kept. */
export function html(strings, ...values) {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += part(values[i]) + strings[i + 1];
  return new SafeHtml(out);
}

/** Replaces the content of `element` with a fragment built by `html`. */
export function show(element, fragment) {
  if (!(fragment instanceof SafeHtml)) throw new TypeError('show() takes a fragment built by html``');
  element.innerHTML = fragment.text;
}

const INT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const RATE = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1, minimumFractionDigits: 1 });
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export const fmt = {
  /** Integers, also 64-bit ones that arrive as decimal strings. */
  int(n) {
    if (n === null || n === undefined) return '—';
    if (typeof n === 'string' && /^-?\d+$/.test(n)) return BigInt(n).toLocaleString('en-US');
    return typeof n === 'number' ? INT.format(n) : String(n);
  },
  bytes(n) {
    if (typeof n !== 'number' || !Number.isFinite(n)) return n === undefined || n === null ? '—' : String(n);
    let v = n;
    let u = 0;
    while (Math.abs(v) >= 1024 && u < UNITS.length - 1) { v /= 1024; u++; }
    return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${UNITS[u]}`;
  },
  rate(n) { return typeof n === 'number' && Number.isFinite(n) ? RATE.format(n) : '—'; },
  duration(seconds) {
    if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return '—';
    let s = Math.floor(seconds);
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (d > 0) return `${d}d ${h}h ${m}m`;
    if (h > 0) return `${h}h ${m}m ${s}s`;
    return m > 0 ? `${m}m ${s}s` : `${s}s`;
  },
};

/** A table: `columns` are `{ label, cell(row) → value or fragment, num? }`; `empty` is shown when there are no rows. */
export function table(columns, rows, empty = 'Nothing to show.') {
  if (rows.length === 0) return html`<p class="empty">${empty}</p>`;
  return html`<table>
    <thead><tr>${columns.map((c) => html`<th class="${c.num ? 'num' : ''}">${c.label}</th>`)}</tr></thead>
    <tbody>${rows.map((row) => html`<tr>${columns.map((c) =>
      html`<td class="${c.num ? 'num' : ''}">${c.cell(row)}</td>`)}</tr>`)}</tbody>
  </table>`;
}

/** Any JSON value as nested key/value lists (the config's shape is the server's business, not the page's). */
export function keyValues(value) {
  if (value === null || value === undefined) return html`<span class="muted">—</span>`;
  if (Array.isArray(value)) {
    if (value.length === 0) return html`<span class="muted">[]</span>`;
    if (value.every((v) => v === null || typeof v !== 'object')) return html`${value.map(String).join(', ')}`;
    return html`<ol class="kv-list">${value.map((v) => html`<li>${keyValues(v)}</li>`)}</ol>`;
  }
  if (typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 0) return html`<span class="muted">{}</span>`;
    return html`<dl class="kv">${keys.map((k) => html`<dt>${k}</dt><dd>${keyValues(value[k])}</dd>`)}</dl>`;
  }
  if (value === '') return html`<span class="muted">(empty)</span>`;
  return html`<span class="value">${String(value)}</span>`;
}
