// The workload's certificate: a key made in memory, certified, held, and
// renewed before it runs out. Linkerd's schedule: renew at 70% of the
// certificate's life (clamped 10 s .. 24 h); on failure retry with jittered
// exponential backoff while the current certificate keeps serving.
//
//   start → [new key + CSR → certify] ─ok→ hold; emit 'certified'; wait refreshDelay ─┐
//                  ▲                  └fail→ emit 'failed'; wait backoff ─────────────┤
//                  └────────────────────────────────────────────────────────────────────┘
import { createCsr, tlsKeyPem } from '../../ca/index.js';
import { systemClock, type Clock } from './clock.js';
import { identityFailure } from './errors.js';
import { Backoff, DEFAULT_BACKOFF, MAX_REFRESH_MS, MIN_REFRESH_MS, refreshDelayMs, type BackoffOptions } from './schedule.js';

export interface WorkloadCert {
  identity: string;
  /** Leaf then issuer, PEM: node:tls's `cert`. */
  chainPem: string;
  /** PKCS#8 PEM of the in-memory key: node:tls's `key`. Never written anywhere. */
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
}

export interface CertifyAnswer {
  chainPem: string;
  notBefore: Date;
  notAfter: Date;
}

/** One round trip to the identity service (identity-service.ts), or a fake in tests. */
export type CertifyFn = (request: { identity: string; csrDer: Uint8Array }) => Promise<CertifyAnswer>;

export interface WorkloadKey {
  csrDer: Uint8Array;
  keyPem: string;
}

export type NewKeyFn = (identity: string) => Promise<WorkloadKey>;

/** A fresh P-256 key and a CSR for exactly `identity`, both in memory. */
export async function newWorkloadKey(identity: string): Promise<WorkloadKey> {
  const csr = await createCsr(identity);
  return { csrDer: csr.der, keyPem: tlsKeyPem(csr.privateKey) };
}

export interface IdentityEvents {
  /** A new certificate is held; the TLS layer swaps its SecureContext here. */
  certified: (cert: WorkloadCert, refreshInMs: number) => void;
  /** An attempt failed; the previous certificate, if any, is still current. */
  failed: (error: Error & { code: string }, retryInMs: number) => void;
}

export interface IdentityManagerOptions {
  identity: string;
  certify: CertifyFn;
  newKey?: NewKeyFn;
  clock?: Clock;
  random?: () => number;
  backoff?: BackoffOptions;
  minRefreshMs?: number;
  maxRefreshMs?: number;
}

export class IdentityManager {
  readonly identity: string;
  readonly #certify: CertifyFn;
  readonly #newKey: NewKeyFn;
  readonly #clock: Clock;
  readonly #backoff: Backoff;
  readonly #minRefreshMs: number;
  readonly #maxRefreshMs: number;
  readonly #listeners: { [K in keyof IdentityEvents]: Set<IdentityEvents[K]> } = { certified: new Set(), failed: new Set() };
  #current: WorkloadCert | undefined;
  #timer: unknown;
  #state: 'idle' | 'running' | 'stopped' = 'idle';

  constructor(o: IdentityManagerOptions) {
    this.identity = o.identity;
    this.#certify = o.certify;
    this.#newKey = o.newKey ?? newWorkloadKey;
    this.#clock = o.clock ?? systemClock;
    this.#backoff = new Backoff(o.backoff ?? DEFAULT_BACKOFF, o.random ?? Math.random);
    this.#minRefreshMs = o.minRefreshMs ?? MIN_REFRESH_MS;
    this.#maxRefreshMs = o.maxRefreshMs ?? MAX_REFRESH_MS;
  }

  /** The certificate held now: possibly expired if the service has been unreachable that long. */
  current(): WorkloadCert | undefined {
    return this.#current;
  }

  /** Linkerd's rule: not ready until the first certificate is held. */
  ready(): boolean {
    return this.#current !== undefined;
  }

  on<K extends keyof IdentityEvents>(event: K, listener: IdentityEvents[K]): () => void {
    this.#listeners[event].add(listener);
    return () => void this.#listeners[event].delete(listener);
  }

  /** Certifies at once, then keeps renewing until stop(). */
  start(): void {
    if (this.#state !== 'idle') return;
    this.#state = 'running';
    this.#run();
  }

  stop(): void {
    this.#state = 'stopped';
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #run(): void {
    this.#timer = undefined;
    // A listener that throws is a bug in the proxy: surface it, do not swallow it in a promise.
    this.#attempt().catch((e: unknown) => process.nextTick(() => { throw e; }));
  }

  #schedule(ms: number): void {
    this.#timer = this.#clock.setTimeout(() => this.#run(), ms);
  }

  async #attempt(): Promise<void> {
    let cert: WorkloadCert;
    try {
      // A fresh key every time: a leaked key dies with its certificate.
      const key = await this.#newKey(this.identity);
      const answer = await this.#certify({ identity: this.identity, csrDer: key.csrDer });
      cert = { identity: this.identity, chainPem: answer.chainPem, keyPem: key.keyPem, notBefore: answer.notBefore, notAfter: answer.notAfter };
    } catch (e) {
      if (this.#state !== 'running') return;
      const retryIn = this.#backoff.next();
      this.#schedule(retryIn);
      for (const l of this.#listeners.failed) l(identityFailure(e), retryIn);
      return;
    }
    if (this.#state !== 'running') return;
    this.#current = cert;
    this.#backoff.reset();
    const refreshIn = refreshDelayMs(cert.notBefore, cert.notAfter, this.#clock.now(), this.#minRefreshMs, this.#maxRefreshMs);
    this.#schedule(refreshIn);
    for (const l of this.#listeners.certified) l(cert, refreshIn);
  }
}
