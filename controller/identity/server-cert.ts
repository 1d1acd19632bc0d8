// The identity service's own TLS certificate. Proxies call it before they hold
// any certificate, so it cannot be verified by a proxy's identity; they verify
// it against the trust anchor and this one name, which the service issues to
// itself from the issuer at start-up and renews, like any workload's leaf.
import { createCsr, issueLeaf, tlsKeyPem, type Signer } from '../../ca/index.js';
import type { Log } from '../../shared/log.js';

export { CONTROL_PLANE_NAMESPACE, IDENTITY_SERVICE_ACCOUNT, identityServerName } from './names.js';

export interface ServerCert {
  /** Leaf then issuer. */
  chainPem: string;
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
}

export async function issueServerCert(issuer: Signer, serverName: string, lifetimeMs: number, now: Date): Promise<ServerCert> {
  const csr = await createCsr(serverName);
  const leaf = await issueLeaf({ issuer, csr: csr.der, identity: serverName, lifetimeMs, now });
  return { chainPem: leaf.chainPem, keyPem: tlsKeyPem(csr.privateKey), notBefore: leaf.notBefore, notAfter: leaf.notAfter };
}

const RETRY_MS = 10_000;

/** Renews at 70% of the certificate's life, as proxies do; retries every 10 s on failure. */
export function keepServerCertFresh(options: {
  current: ServerCert;
  renew(): Promise<ServerCert>;
  install(cert: ServerCert): void;
  failed(error: unknown): void;
  now(): Date;
}): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let current = options.current;
  const untilDue = (): number => {
    const life = current.notAfter.getTime() - current.notBefore.getTime();
    return current.notBefore.getTime() + life * 0.7 - options.now().getTime();
  };
  const arm = (ms: number): void => {
    if (stopped) return;
    // setTimeout's limit is ~24.8 days: a longer wait wakes up, finds it is not due, and waits again.
    timer = setTimeout(tick, Math.min(Math.max(ms, 0), 2 ** 31 - 1));
    timer.unref();
  };
  const tick = (): void => {
    if (untilDue() > 0) return arm(untilDue());
    options.renew().then(
      (cert) => {
        current = cert;
        options.install(cert);
        arm(Math.max(RETRY_MS, untilDue()));
      },
      (e: unknown) => {
        options.failed(e);
        arm(RETRY_MS);
      },
    );
  };
  arm(Math.max(RETRY_MS, untilDue()));
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** A control-plane service's own leaf, as every service keeps it: issued at start-up, renewed into its API server. */
export interface OwnServerCert {
  /** The current certificate (it changes at renewal). */
  current(): ServerCert;
  /** Installs each renewal into `api` (new connections get it); stop() ends the renewals. */
  renewInto(api: { setCertificate(certPem: string, keyPem: string): void }): { stop(): void };
}

export async function ownServerCert(o: { issuer: Signer; serverName: string; lifetimeMs: number; now: () => Date; log: Log }): Promise<OwnServerCert> {
  const renew = () => issueServerCert(o.issuer, o.serverName, o.lifetimeMs, o.now());
  let cert = await renew();
  return {
    current: () => cert,
    renewInto: (api) =>
      keepServerCertFresh({
        current: cert,
        renew,
        install: (fresh) => {
          cert = fresh;
          api.setCertificate(fresh.chainPem, fresh.keyPem);
          o.log.info('server certificate renewed', { name: o.serverName, notAfter: fresh.notAfter.toISOString() });
        },
        failed: (e) => o.log.error('server certificate renewal failed', { error: (e as Error).message }),
        now: o.now,
      }),
  };
}
