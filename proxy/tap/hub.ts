// The tap hub: an exchange observer that turns requests into tap events for
// whoever is watching. With nobody watching it costs one length check per
// request and keeps no state. With watchers, each request is matched against
// each watcher's filter and rate; a matched request's events (req, rsp, end)
// go to that watcher only, as JSON lines encoded once per event.
//
// A watcher that cannot keep up never slows traffic or grows memory: its
// write() says false when its transport is full; from then on its events are
// counted and dropped until it drains, and it then gets one `dropped` event
// with the count. Requests over its maxRps are dropped (and counted) the same way.
import { performance } from 'node:perf_hooks';
import type { TapEvent, TapFilter } from '../../contract/tap.js';
import { TAP_DEFAULT_MAX_RPS, TAP_MAX_RPS } from '../../contract/tap.js';
import type { ConnContext } from '../context.js';
import type { ExchangeObserver, ExchangeView } from '../forward/forwarder.js';
import { connectionMatches, matchesFilter, requestAuthority, requestPath } from './filter.js';

/** Where one watcher's lines go (an HTTP/2 stream in the tap server). */
export interface TapSink {
  /** One NDJSON line; false when the sink is full (call TapWatcher.drained() when it is not). */
  write(line: string): boolean;
}

/** A watcher's rate: a token bucket of maxRps, refilled continuously, one second deep. */
class Rate {
  #tokens: number;
  #at: number;
  constructor(readonly perSecond: number, now: number) {
    this.#tokens = perSecond;
    this.#at = now;
  }
  take(now: number): boolean {
    this.#tokens = Math.min(this.perSecond, this.#tokens + ((now - this.#at) * this.perSecond) / 1000);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

export class TapWatcher {
  /** Events not delivered since the last `dropped` marker. */
  dropped = 0;
  /** The sink said it was full: drop until drained(). */
  #full = false;
  readonly #rate: Rate;
  closed = false;

  constructor(
    readonly filter: TapFilter,
    maxRps: number | undefined,
    private readonly sink: TapSink,
    now: number,
  ) {
    const rps = maxRps === undefined || !Number.isFinite(maxRps) || maxRps <= 0 ? TAP_DEFAULT_MAX_RPS : Math.min(maxRps, TAP_MAX_RPS);
    this.#rate = new Rate(rps, now);
  }

  /** Whether a new request (or connection) is admitted: within the rate and the sink not full. */
  admit(now: number): boolean {
    if (this.#full || !this.#rate.take(now)) {
      this.dropped++;
      return false;
    }
    return true;
  }

  send(e: TapEvent): void {
    this.sendLine(JSON.stringify(e));
  }

  sendLine(line: string): void {
    if (this.closed) return;
    if (this.#full) {
      this.dropped++;
      return;
    }
    if (this.dropped > 0) {
      const n = this.dropped;
      this.dropped = 0;
      this.sink.write(`{"kind":"dropped","count":${n}}`);
    }
    if (!this.sink.write(line)) this.#full = true;
  }

  /** The sink has room again: the next event is preceded by the count of what was dropped. */
  drained(): void {
    this.#full = false;
  }
}

/** A tapped opaque stream. */
export interface OpaqueTap {
  id: string;
  watchers: TapWatcher[];
  startedAt: number;
}

/** A tapped exchange: its id and the watchers that took its `req`. */
interface Tapped {
  id: string;
  watchers: TapWatcher[];
  rsp: boolean;
}

export class TapHub implements ExchangeObserver {
  readonly watchers: TapWatcher[] = [];
  readonly #tapped = new Map<ExchangeView, Tapped>();
  #next = 0;

  /** `run` tells ids of this proxy run from another's: "<run>:<n>". */
  constructor(private readonly run: string) {}

  watch(filter: TapFilter, maxRps: number | undefined, sink: TapSink): TapWatcher {
    const w = new TapWatcher(filter, maxRps, sink, performance.now());
    this.watchers.push(w);
    return w;
  }

  unwatch(w: TapWatcher): void {
    w.closed = true;
    const i = this.watchers.indexOf(w);
    if (i >= 0) this.watchers.splice(i, 1);
    // Exchanges in flight forget it as they end; no scan here.
  }

  get tappedInFlight(): number {
    return this.#tapped.size;
  }

  newId(): string {
    return `${this.run}:${this.#next++}`;
  }

  onRequest(x: ExchangeView): void {
    const ws = this.watchers;
    if (ws.length === 0) return; // the cost of tap when nobody watches
    let taken: TapWatcher[] | undefined;
    const now = performance.now();
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i]!;
      if (matchesFilter(w.filter, x) && w.admit(now)) (taken ??= []).push(w);
    }
    if (taken === undefined) return;
    const t: Tapped = { id: this.newId(), watchers: taken, rsp: false };
    this.#tapped.set(x, t);
    const r = x.request;
    const line = JSON.stringify({
      kind: 'req',
      ...placeOf(t.id, x.ctx),
      method: r.method,
      scheme: r.scheme ?? 'http',
      authority: requestAuthority(r),
      path: requestPath(r),
      at: Date.now(),
    } satisfies TapEvent);
    for (const w of taken) w.sendLine(line);
  }

  onResponse(x: ExchangeView): void {
    if (this.#tapped.size === 0) return; // nothing tapped: no lookup
    const t = this.#tapped.get(x);
    if (t === undefined) return;
    this.#rsp(t, x);
  }

  onEnd(x: ExchangeView): void {
    if (this.#tapped.size === 0) return;
    const t = this.#tapped.get(x);
    if (t === undefined) return;
    this.#tapped.delete(x);
    // A response the proxy made itself (502/504) has no onResponse: its head is reported here.
    if (!t.rsp && x.status > 0) this.#rsp(t, x);
    const e: TapEvent = { kind: 'end', id: t.id, durationUs: micros(performance.now() - x.startedAt), responseBytes: x.responseBytes };
    if (x.grpcStatus !== undefined) e.grpcStatus = x.grpcStatus;
    if (x.error !== undefined) e.error = x.error.code;
    const line = JSON.stringify(e);
    for (const w of t.watchers) w.sendLine(line);
  }

  /** An opaque stream began: an `open` event to watchers that want opaque streams; what closeOpaque() needs. */
  openOpaque(ctx: ConnContext, protocol: string): OpaqueTap | undefined {
    const ws = this.watchers;
    if (ws.length === 0) return undefined;
    let taken: TapWatcher[] | undefined;
    const now = performance.now();
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i]!;
      if (w.filter.opaque !== false && opaqueMatches(w.filter, ctx) && w.admit(now)) (taken ??= []).push(w);
    }
    if (taken === undefined) return undefined;
    const id = this.newId();
    const sni = (ctx.metrics.labels as { sni?: string }).sni;
    const e: TapEvent = { kind: 'open', ...placeOf(id, ctx), protocol, at: Date.now() };
    if (sni !== undefined) e.sni = sni;
    const line = JSON.stringify(e);
    for (const w of taken) w.sendLine(line);
    return { id, watchers: taken, startedAt: now };
  }

  closeOpaque(t: OpaqueTap, bytesIn: number, bytesOut: number, error: string | undefined): void {
    const e: TapEvent = { kind: 'close', id: t.id, durationUs: micros(performance.now() - t.startedAt), bytesIn, bytesOut };
    if (error !== undefined) e.error = error;
    const line = JSON.stringify(e);
    for (const w of t.watchers) w.sendLine(line);
  }

  #rsp(t: Tapped, x: ExchangeView): void {
    t.rsp = true;
    const line = JSON.stringify({ kind: 'rsp', id: t.id, status: x.status, latencyUs: micros((x.respondedAt || performance.now()) - x.startedAt) } satisfies TapEvent);
    for (const w of t.watchers) w.sendLine(line);
  }
}

export function placeOf(id: string, ctx: ConnContext): { id: string; proxy: 'in' | 'out'; src: string; dst: string; tls: string; clientId?: string; serverId?: string } {
  const l = ctx.metrics.labels as { tls?: string; client_id?: string; server_id?: string };
  const p: { id: string; proxy: 'in' | 'out'; src: string; dst: string; tls: string; clientId?: string; serverId?: string } = {
    id,
    proxy: ctx.direction === 'inbound' ? 'in' : 'out',
    src: ctx.src,
    dst: ctx.targetAddr,
    tls: l.tls ?? 'no_identity',
  };
  const client = ctx.clientId ?? l.client_id;
  const server = ctx.peerIdentity ?? l.server_id;
  if (client !== undefined) p.clientId = client;
  if (server !== undefined) p.serverId = server;
  return p;
}

/** Request-level filters (method, path, authority) say nothing about a TCP stream: only a filter without them takes it. */
function opaqueMatches(f: TapFilter, ctx: ConnContext): boolean {
  return f.method === undefined && f.pathPrefix === undefined && f.authority === undefined && connectionMatches(f, ctx);
}

const micros = (ms: number): number => Math.max(0, Math.round(ms * 1000));
