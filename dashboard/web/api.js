// The dashboard server's API, as the page uses it.

/** GET a JSON answer; a refusal becomes an Error carrying the server's { code, message }. */
export async function getJson(path, signal) {
  const res = await fetch(path, { signal, headers: { accept: 'application/json' } });
  const body = await res.json().catch(() => ({ code: 'MESH_DASHBOARD_BAD_RESPONSE', message: `${path} answered ${res.status} without JSON` }));
  if (!res.ok) throw Object.assign(new Error(`${body.message} [${body.code}]`), { code: body.code });
  return body;
}

export const workloads = (namespace, signal) => getJson(`/api/workloads?namespace=${encodeURIComponent(namespace)}`, signal);
export const edges = (namespace, name, signal) => getJson(`/api/workloads/${encodeURIComponent(name)}/edges?namespace=${encodeURIComponent(namespace)}`, signal);

/** The tap of a resource as an EventSource (the caller closes it). */
export function tap(namespace, resource, filter = {}) {
  const q = new URLSearchParams({ namespace, resource });
  if (filter.path) q.set('path', filter.path);
  if (filter.method) q.set('method', filter.method);
  return new EventSource(`/api/tap?${q}`);
}
