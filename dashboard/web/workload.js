// One deployment's page: its own stat row with larger trends, its edges
// (who calls it, by client identity; whom it calls, by destination), and the
// live tap of its proxies.
import * as api from './api.js';
import { record, series } from './history.js';
import { el, emptyRow, ms, percent, rps, successClass, table } from './format.js';
import { sparkline } from './sparkline.js';
import { HEADERS, statRow } from './workloads.js';
import { tapView } from './tap-view.js';

const EDGE_HEADERS = [['PEER'], ['IDENTITY / ADDRESS'], ['SUCCESS', 'num'], ['RPS', 'num'], ['LATENCY_P50', 'num'], ['LATENCY_P95', 'num'], ['LATENCY_P99', 'num']];

function edgeRow(namespace, e, known) {
  const peer = known.has(e.peer) ? el('a', { href: `#/workloads/${encodeURIComponent(e.peer)}?namespace=${encodeURIComponent(namespace)}` }, e.peer) : e.peer;
  return el(
    'tr',
    { dataset: { peer: e.peer, requests: String(e.requests) }, title: `${e.requests} responses in the window` },
    el('td', { dataset: { col: 'peer' } }, peer),
    el('td', { class: 'mono dim', dataset: { col: 'identity' } }, e.identity !== undefined ? e.identity || '(none: plaintext)' : e.address ?? ''),
    el('td', { class: `num ${successClass(e.success)}`, dataset: { col: 'success' } }, percent(e.success)),
    el('td', { class: 'num', dataset: { col: 'rps' } }, rps(e.rps)),
    el('td', { class: 'num', dataset: { col: 'p50' } }, ms(e.p50)),
    el('td', { class: 'num', dataset: { col: 'p95' } }, ms(e.p95)),
    el('td', { class: 'num', dataset: { col: 'p99' } }, ms(e.p99)),
  );
}

export function mount(main, ctx, name) {
  const own = table('workload', HEADERS);
  const inbound = table('edges-inbound', EDGE_HEADERS);
  const outbound = table('edges-outbound', EDGE_HEADERS);
  const trends = el('div', { class: 'meta', id: 'trends' });
  const problems = el('div', { class: 'problems' });
  const tap = tapView(ctx, `deploy/${name}`);
  main.replaceChildren(
    el('h1', {}, name, el('span', { class: 'sub', id: 'pods' }, '')),
    problems,
    own.panel,
    trends,
    el('h2', {}, 'Inbound, by client'),
    inbound.panel,
    el('h2', {}, 'Outbound, by destination'),
    outbound.panel,
    tap.root,
  );
  ctx.crumbs([['Deployments', '#/'], [name]]);
  return {
    async refresh(signal) {
      const [w, e] = await Promise.all([api.workloads(ctx.namespace, signal), api.edges(ctx.namespace, name, signal)]);
      record(ctx.namespace, w.rows);
      const mine = w.rows.find((r) => r.name === name);
      own.tbody.replaceChildren(mine ? statRow(ctx.namespace, mine, false) : emptyRow(HEADERS.length, `${name} is gone from ${ctx.namespace}.`));
      const known = new Set(w.rows.map((r) => r.name));
      inbound.tbody.replaceChildren(...(e.inbound.length === 0 ? [emptyRow(EDGE_HEADERS.length, 'No inbound requests seen.')] : e.inbound.map((x) => edgeRow(ctx.namespace, x, known))));
      outbound.tbody.replaceChildren(...(e.outbound.length === 0 ? [emptyRow(EDGE_HEADERS.length, 'No outbound requests seen.')] : e.outbound.map((x) => edgeRow(ctx.namespace, x, known))));
      main.querySelector('#pods').textContent = `deployment in ${ctx.namespace} · pods ${e.pods.map((p) => `${p.pod}${p.identity ? '' : ' (not meshed)'}`).join(', ')}`;
      trends.replaceChildren(
        'RPS ', sparkline(series(ctx.namespace, name, 'rps'), { width: 220, height: 28, title: 'requests per second' }),
        '  P99 ', sparkline(series(ctx.namespace, name, 'p99'), { width: 220, height: 28, title: 'p99 latency, ms' }),
      );
      for (const s of trends.querySelectorAll('svg')) s.style.display = 'inline-block';
      problems.textContent = w.problems.join('; ');
    },
    unmount() {
      tap.stop();
    },
  };
}
