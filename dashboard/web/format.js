// Numbers as `mesh stat` prints them, and the DOM helpers every view uses.
// Text goes in with textContent only: tap rows carry paths and authorities
// from the traffic, which must never be read as markup.

/** @param {number | undefined} v ms */
export const ms = (v) => (v === undefined || v === null ? '-' : `${v < 10 ? v.toFixed(1) : Math.round(v)}ms`);
/** @param {number | undefined} v 0..1 */
export const percent = (v) => (v === undefined || v === null ? '-' : `${(v * 100).toFixed(2)}%`);
/** @param {number | undefined} v */
export const rps = (v) => (v === undefined || v === null ? '-' : `${v.toFixed(1)}rps`);

/** The operators' traffic light: green at 99% and up, amber at 95%, red below. */
export function successClass(v) {
  if (v === undefined || v === null) return 'dim';
  return v >= 0.99 ? 'ok' : v >= 0.95 ? 'warn' : 'bad';
}

/** @param {number} us */
export function micros(us) {
  if (us === undefined || us === null) return '-';
  return us < 1000 ? `${us}µs` : us < 1_000_000 ? `${(us / 1000).toFixed(us < 10_000 ? 1 : 0)}ms` : `${(us / 1e6).toFixed(2)}s`;
}

/**
 * A small element builder: el('td', { class: 'num', dataset: { col: 'rps' } }, '1.0rps').
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {...(Node | string)} children
 */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children) e.append(c);
  return e;
}

/** A table with upper-case headers (kubectl's), in a panel; returns the panel and its tbody. */
export function table(id, headers) {
  const tbody = el('tbody');
  const head = el('tr', {}, ...headers.map(([label, cls]) => el('th', { class: cls }, label)));
  const panel = el('div', { class: 'panel' }, el('table', { id }, el('thead', {}, head), tbody));
  return { panel, tbody };
}

export function emptyRow(cols, text) {
  return el('tr', { class: 'empty-row' }, el('td', { class: 'empty', colspan: cols }, text));
}
