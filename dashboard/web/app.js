// The page's shell: a hash route (#/ or #/workloads/NAME?namespace=NS) picks a
// view; the view is refreshed every 2 s (the rate the server reads the
// proxies) while the tab is visible.
import * as workloads from './workloads.js';
import * as workload from './workload.js';
import { el } from './format.js';

const REFRESH_MS = 2000;
const main = document.getElementById('view');
const status = document.getElementById('status');
const nsInput = document.getElementById('namespace');
const crumbsNav = document.getElementById('crumbs');

let current;
let timer;
let inflight;

function parseRoute() {
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
  const namespace = new URLSearchParams(query).get('namespace') || nsInput.value || 'default';
  const m = /^\/workloads\/([^/]+)$/.exec(path);
  return m ? { view: 'workload', name: decodeURIComponent(m[1]), namespace } : { view: 'workloads', namespace };
}

function crumbs(parts) {
  crumbsNav.replaceChildren(...parts.flatMap(([label, href], i) => [i > 0 ? ' / ' : '', href ? el('a', { href }, label) : label]));
}

async function refresh() {
  clearTimeout(timer);
  inflight?.abort();
  const view = current;
  const ac = (inflight = new AbortController());
  try {
    await view.refresh(ac.signal);
    status.textContent = `updated ${new Date().toLocaleTimeString([], { hour12: false })}`;
    status.className = 'status';
  } catch (e) {
    if (ac.signal.aborted) return;
    status.textContent = e.message;
    status.className = 'status error';
  }
  if (view === current && !document.hidden) timer = setTimeout(refresh, REFRESH_MS);
}

function route() {
  current?.unmount();
  const r = parseRoute();
  nsInput.value = r.namespace;
  const ctx = { namespace: r.namespace, crumbs };
  current = r.view === 'workload' ? workload.mount(main, ctx, r.name) : workloads.mount(main, ctx);
  void refresh();
}

nsInput.addEventListener('change', () => {
  location.hash = `#/?namespace=${encodeURIComponent(nsInput.value.trim() || 'default')}`;
});
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) void refresh();
});
window.addEventListener('hashchange', route);
route();
