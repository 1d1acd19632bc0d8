// Renewal of the identity service's own certificate, on a fake clock.
import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { keepServerCertFresh, type ServerCert } from './server-cert.js';

const cert = (fromMs: number, lifeMs: number): ServerCert => ({
  chainPem: `chain@${fromMs}`,
  keyPem: 'key',
  notBefore: new Date(fromMs),
  notAfter: new Date(fromMs + lifeMs),
});

const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

describe('server certificate renewal', () => {
  it('renews at 70% of the life, then again at 70% of the new one; retries every 10 s after a failure', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const LIFE = 1000_000;
      let now = 0;
      const installed: string[] = [];
      const errors: string[] = [];
      let fail = false;
      const fresh = keepServerCertFresh({
        current: cert(0, LIFE),
        renew: async () => (fail ? Promise.reject(new Error('issuer expired')) : cert(now, LIFE)),
        install: (c) => void installed.push(c.chainPem),
        failed: (e) => void errors.push((e as Error).message),
        now: () => new Date(now),
      });
      const advance = async (ms: number): Promise<void> => {
        now += ms;
        mock.timers.tick(ms);
        await settle();
      };
      await advance(699_999);
      assert.deepEqual(installed, [], 'not before 70%');
      await advance(1);
      assert.deepEqual(installed, ['chain@700000']);
      fail = true;
      await advance(700_000);
      assert.deepEqual(errors, ['issuer expired']);
      fail = false;
      await advance(9_999);
      assert.equal(installed.length, 1, 'retry waits 10 s');
      await advance(1);
      assert.deepEqual(installed, ['chain@700000', 'chain@1410000']);
      fresh.stop();
      await advance(10 * LIFE);
      assert.equal(installed.length, 2, 'nothing after stop');
    } finally {
      mock.timers.reset();
    }
  });
});
