// A sparkline: the last minutes of one number as a small inline SVG, drawn
// from the history the page keeps (the API answers only "now").
const NS = 'http://www.w3.org/2000/svg';

/**
 * @param {Array<number | undefined>} values oldest first; gaps are skipped
 * @param {{ width?: number, height?: number, title?: string }} [o]
 */
export function sparkline(values, o = {}) {
  const width = o.width ?? 120;
  const height = o.height ?? 22;
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('role', 'img');
  if (o.title) {
    const t = document.createElementNS(NS, 'title');
    t.textContent = o.title;
    svg.append(t);
  }
  const points = values.map((v, i) => [i, v]).filter(([, v]) => typeof v === 'number' && Number.isFinite(v));
  if (points.length < 2) return svg;
  // The scale starts at zero: a flat line at 1 rps should not look like a cliff.
  const max = Math.max(...points.map(([, v]) => v)) || 1;
  const n = Math.max(values.length - 1, 1);
  const x = (i) => ((i / n) * (width - 2) + 1).toFixed(1);
  const y = (v) => (height - 2 - (v / max) * (height - 4)).toFixed(1);
  const d = points.map(([i, v], k) => `${k === 0 ? 'M' : 'L'}${x(i)},${y(v)}`).join(' ');
  const area = document.createElementNS(NS, 'path');
  area.setAttribute('class', 'area');
  area.setAttribute('d', `${d} L${x(points.at(-1)[0])},${height - 1} L${x(points[0][0])},${height - 1} Z`);
  const line = document.createElementNS(NS, 'path');
  line.setAttribute('class', 'line');
  line.setAttribute('d', d);
  svg.append(area, line);
  return svg;
}
