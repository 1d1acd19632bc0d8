// The live tap of one workload: the tap service's req / rsp / end events
// merged into one row per request (newest first), opaque connections' open /
// close likewise, with Start and Stop. Only the last MAX_ROWS rows are kept:
// a busy workload must not grow the tab without end.
import * as api from './api.js';
import { el, emptyRow, micros, table } from './format.js';

const MAX_ROWS = 200;
const HEADERS = [['TIME'], ['POD'], ['DIR'], ['FROM'], ['TO'], ['TLS'], ['METHOD'], ['AUTHORITY'], ['PATH'], ['STATUS', 'num'], ['LATENCY', 'num'], ['DURATION', 'num'], ['BYTES', 'num']];

const statusClass = (s) => (s >= 500 ? 'bad' : s >= 400 ? 'warn' : 'ok');
const time = (at) => new Date(at).toLocaleTimeString([], { hour12: false }) + `.${String(at % 1000).padStart(3, '0')}`;

export function tapView(ctx, resource) {
  const { panel, tbody } = table('tap', HEADERS);
  panel.classList.add('tap-panel');
  const button = el('button', { id: 'tap-toggle', class: 'start', type: 'button' }, 'Start');
  const path = el('input', { id: 'tap-path', placeholder: 'path prefix, e.g. /api', size: 22, spellcheck: 'false' });
  const note = el('span', { class: 'meta', id: 'tap-note' });
  const root = el('section', {}, el('div', { class: 'toolbar' }, el('h2', {}, 'Live requests'), note, path, button), panel);
  tbody.append(emptyRow(HEADERS.length, 'Press Start to watch requests as they happen.'));

  /** @type {Map<string, Record<string, HTMLElement>>} cells of the rows still shown, by event id */
  const rows = new Map();
  let source;

  const cell = (col, cls, text = '-') => el('td', { class: cls, dataset: { col } }, text);
  const addRow = (tr, id, cells) => {
    tbody.querySelector('.empty-row')?.remove();
    tbody.prepend(tr);
    if (id !== undefined) rows.set(id, cells);
    while (tbody.rows.length > MAX_ROWS) {
      const last = tbody.rows[tbody.rows.length - 1];
      if (last.dataset.id) rows.delete(last.dataset.id);
      last.remove();
    }
  };
  const marker = (text) => addRow(el('tr', { class: 'marker' }, el('td', { colspan: HEADERS.length }, text)));

  const onEvent = (e) => {
    switch (e.kind) {
      case 'watching':
        note.textContent = `watching ${e.pods.map((p) => p.pod).join(', ')}`;
        return;
      case 'proxyError':
        return marker(`${e.namespace}/${e.pod}: ${e.message}`);
      case 'dropped':
        return marker(`${e.count} events dropped (${e.by === 'dashboard' ? 'this tab was slower than the traffic' : 'over the rate limit or a slow watcher'})`);
      case 'req':
      case 'open': {
        const c = {
          time: cell('time', 'mono', time(e.at)),
          pod: cell('pod', 'mono', e.pod),
          dir: cell('dir', '', e.proxy === 'in' ? 'in' : 'out'),
          src: cell('src', 'mono', e.src),
          dst: cell('dst', 'mono', e.dst),
          tls: cell('tls', e.tls === 'true' ? 'ok' : 'dim', e.tls),
          method: cell('method', 'mono', e.kind === 'req' ? e.method : 'TCP'),
          authority: cell('authority', 'mono', e.kind === 'req' ? e.authority : e.sni ?? ''),
          path: cell('path', 'mono path', e.kind === 'req' ? e.path : e.protocol),
          status: cell('status', 'num'),
          latency: cell('latency', 'num'),
          duration: cell('duration', 'num'),
          bytes: cell('bytes', 'num'),
        };
        if (e.kind === 'req') c.path.title = e.path;
        const tr = el('tr', { dataset: { id: e.id, kind: e.kind } }, ...Object.values(c));
        return addRow(tr, e.id, c);
      }
      case 'rsp': {
        const c = rows.get(e.id);
        if (!c) return;
        c.status.textContent = String(e.status);
        c.status.className = `num ${statusClass(e.status)}`;
        c.latency.textContent = micros(e.latencyUs);
        return;
      }
      case 'end':
      case 'close': {
        const c = rows.get(e.id);
        if (!c) return;
        c.duration.textContent = micros(e.durationUs);
        c.bytes.textContent = e.kind === 'end' ? String(e.responseBytes) : `${e.bytesIn}/${e.bytesOut}`;
        if (e.kind === 'end' && e.grpcStatus !== undefined) c.status.textContent += ` grpc=${e.grpcStatus}`;
        if (e.error) {
          c.status.textContent = `${c.status.textContent === '-' ? '' : `${c.status.textContent} `}${e.error}`;
          c.status.className = 'num bad';
        }
        rows.delete(e.id);
        return;
      }
    }
  };

  const stop = (why) => {
    source?.close();
    source = undefined;
    button.textContent = 'Start';
    button.className = 'start';
    if (why) note.textContent = why;
  };
  const start = () => {
    source = api.tap(ctx.namespace, resource, { path: path.value.trim() });
    button.textContent = 'Stop';
    button.className = 'stop';
    note.textContent = 'connecting…';
    source.onmessage = (m) => onEvent(JSON.parse(m.data));
    source.addEventListener('end', (m) => {
      const e = JSON.parse(m.data);
      stop(`stopped: ${e.message} [${e.code}]`);
    });
    // The dashboard went away or refused: say so once rather than let EventSource retry in a loop.
    source.onerror = () => {
      if (source) stop('stopped: the dashboard closed the stream');
    };
  };
  button.addEventListener('click', () => (source ? stop('stopped') : start()));
  return { root, stop: () => stop() };
}
