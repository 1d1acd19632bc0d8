// The first page: every deployment of the namespace with its stat row, as
// `mesh stat deploy` prints it, refreshed every 2 s, with a sparkline of its
// request rate from the page's own history.
import * as api from './api.js';
import { record, series } from './history.js';
import { el, emptyRow, ms, percent, rps, successClass, table } from './format.js';
import { sparkline } from './sparkline.js';

export const HEADERS = [['NAME'], ['MESHED'], ['SUCCESS', 'num'], ['RPS', 'num'], ['RPS TREND'], ['LATENCY_P50', 'num'], ['LATENCY_P95', 'num'], ['LATENCY_P99', 'num'], ['TCP_CONN', 'num']];

/** One stat row as table cells; `link` makes the name open the workload's page. */
export function statCells(namespace, r, link = true) {
  const name = link ? el('a', { href: `#/workloads/${encodeURIComponent(r.name)}?namespace=${encodeURIComponent(namespace)}` }, r.name) : r.name;
  return [
    el('td', { dataset: { col: 'name' } }, name),
    el('td', { class: 'mono', dataset: { col: 'meshed' } }, r.meshed),
    el('td', { class: `num ${successClass(r.success)}`, dataset: { col: 'success' } }, percent(r.success)),
    el('td', { class: 'num', dataset: { col: 'rps' } }, rps(r.rps)),
    el('td', { dataset: { col: 'trend' } }, sparkline(series(namespace, r.name, 'rps'), { title: `${r.name}: requests per second, last minutes` })),
    el('td', { class: 'num', dataset: { col: 'p50' } }, ms(r.p50)),
    el('td', { class: 'num', dataset: { col: 'p95' } }, ms(r.p95)),
    el('td', { class: 'num', dataset: { col: 'p99' } }, ms(r.p99)),
    el('td', { class: 'num', dataset: { col: 'tcp' } }, String(r.tcpConn)),
  ];
}

export function statRow(namespace, r, link = true) {
  // The exact counts behind the percentages, for whoever checks them (tests, curious operators: hover).
  return el('tr', { dataset: { name: r.name, requests: String(r.requests) }, title: `${r.requests} responses in the window` }, ...statCells(namespace, r, link));
}

export function mount(main, ctx) {
  const { panel, tbody } = table('workloads', HEADERS);
  const problems = el('div', { class: 'problems', id: 'problems' });
  const meta = el('div', { class: 'meta', id: 'window' });
  main.replaceChildren(el('h1', {}, 'Deployments', el('span', { class: 'sub' }, `namespace ${ctx.namespace}`)), problems, panel, meta);
  ctx.crumbs([['Deployments']]);
  return {
    async refresh(signal) {
      const v = await api.workloads(ctx.namespace, signal);
      record(ctx.namespace, v.rows);
      tbody.replaceChildren(...(v.rows.length === 0 ? [emptyRow(HEADERS.length, `No deployments in ${v.namespace}.`)] : v.rows.map((r) => statRow(v.namespace, r))));
      problems.textContent = v.problems.join('; ');
      meta.textContent = v.windowSeconds > 0 ? `Rates over the last ${Math.round(v.windowSeconds)}s, read from each meshed proxy every 2s.` : 'Reading the proxies: rates appear after the second reading.';
    },
    unmount() {},
  };
}
