// Table-driven fuzzing of classify and detect. Random, mutated and valid inputs are
// checked (1) purely: classify never throws and a verdict never changes once reached,
// and (2) over real loopback sockets at every split point: detect agrees with classify
// on the whole input, and every byte comes back, in order, after detection.
// Failures print the seed: rerun with DETECT_FUZZ_SEED=<seed> to reproduce.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { classify, detect, type Verdict } from './index.js';
import { captureClientHello, helloLayout, Loopback, prng, readAll, received, reframe } from './testkit.js';

const seed = Number(process.env.DETECT_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32));
const random = prng(seed);
const int = (n: number): number => Math.floor(random() * n); // 0 ≤ int(n) < n
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

interface Case {
  name: string;
  input: Buffer;
  maxBytes: number;
}

/** One random edit: flip a bit, overwrite, insert or delete a byte, or rewrite a length field. */
function mutate(input: Buffer, lengthFields: number[]): Buffer {
  const b = Buffer.from(input);
  const at = int(Math.max(b.length, 1));
  switch (int(5)) {
    case 0:
      if (b.length > 0) b[at] ^= 1 << int(8);
      return b;
    case 1:
      if (b.length > 0) b[at] = int(256);
      return b;
    case 2:
      return Buffer.concat([b.subarray(0, at), Buffer.from([int(256)]), b.subarray(at)]);
    case 3:
      return Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
    default: {
      const field = lengthFields.length > 0 ? pick(lengthFields) : at;
      if (field + 2 > b.length) return b;
      const delta = pick([-2, -1, 1, 2, 0x100, -0x100]);
      b.writeUInt16BE(pick([0, 0xffff, (b.readUInt16BE(field) + delta) & 0xffff]), field);
      return b;
    }
  }
}

const TEXT = Buffer.from("GETPOSTPRI */HTTP/1.012 \r\n\r\nSM\t\0?=&%~!#$'*+-.^_`|azAZ09\x16\x03\x01\xff");
function randomInput(): Buffer {
  const length = int(48);
  const text = random() < 0.5;
  return Buffer.from(Array.from({ length }, () => (text ? TEXT[int(TEXT.length)]! : int(256))));
}

function corpus(web: Buffer, bare: Buffer): Case[] {
  const layout = helloLayout(web);
  const helloLengths = [3, 7, layout.suites, layout.extensions, ...layout.ext.values(), ...[...layout.ext.values()].map((p) => p + 2)];
  const h2 = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0', 'latin1');
  const http = [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.from('POST /x?y=1 HTTP/1.0\r\nContent-Length: 0\r\n\r\n'), Buffer.from('get /~a HTTP/1.1\r\n\r\n')];
  const valid = [web, bare, reframe(web, [1 + int(web.length - 7)]), h2, ...http];
  const cases: Case[] = valid.map((input, i) => ({ name: `valid #${i}`, input, maxBytes: 8192 }));
  cases.push({ name: 'hello over a small maxBytes', input: web, maxBytes: 64 });
  for (let i = 0; i < 20; i++) {
    let input = web;
    for (let k = 1 + int(3); k > 0; k--) input = mutate(input, helloLengths);
    cases.push({ name: `mutated hello #${i}`, input, maxBytes: random() < 0.8 ? 8192 : 100 + int(400) });
  }
  for (let i = 0; i < 60; i++) cases.push({ name: `mutated text #${i}`, input: mutate(pick([h2, ...http]), []), maxBytes: 8192 });
  for (let i = 0; i < 200; i++) cases.push({ name: `random #${i}`, input: randomInput(), maxBytes: random() < 0.9 ? 8192 : 1 + int(24) });
  return cases;
}

const hex = (b: Buffer): string => b.toString('hex');

describe(`fuzz (seed ${seed}; rerun with DETECT_FUZZ_SEED=${seed})`, () => {
  let cases: Case[];
  let net: Loopback;
  before(async () => {
    const web = await captureClientHello({ servername: 'web.default.svc', ALPNProtocols: ['h2', 'http/1.1'] });
    const bare = await captureClientHello({});
    cases = corpus(web, bare);
    net = await Loopback.open();
  });
  after(() => net.close());

  it('classify: total, and a verdict once reached holds for every longer prefix', () => {
    for (const { name, input } of cases) {
      for (const maxBytes of [8192, 100, 24, 16, 1]) {
        let decided: Verdict | undefined;
        for (let n = 0; n <= input.length; n++) {
          const v = classify(input.subarray(0, n), maxBytes);
          if (decided !== undefined) assert.deepEqual(v, decided, `seed ${seed} ${name} maxBytes ${maxBytes} prefix ${n} of ${hex(input)}`);
          else if (v.kind !== 'need-more') decided = v;
        }
        if (input.length >= maxBytes) assert.notEqual(decided, undefined, `seed ${seed} ${name}: need-more past maxBytes`);
      }
    }
  });

  it('detect: at every split point agrees with classify and replays every byte', async (t) => {
    const runs: Array<{ c: Case; split: number }> = [];
    for (const c of cases) for (let split = 0; split <= c.input.length; split++) runs.push({ c, split });
    const failures: string[] = [];
    const tally = new Map<string, number>();

    async function one({ c, split }: { c: Case; split: number }): Promise<void> {
      const { client, server } = await net.pair();
      const detected = detect(server, { timeoutMs: 5_000, maxBytes: c.maxBytes });
      if (split > 0) {
        client.write(c.input.subarray(0, split));
        await received(server, split); // so detection sees the first part on its own
      }
      client.end(c.input.subarray(split));
      const result = await detected;
      const replay = await readAll(server);
      const whole = classify(c.input, c.maxBytes);
      // Undecidable input ends with the client's FIN: detect must say eof.
      const expected = whole.kind === 'need-more' ? { kind: 'opaque', reason: 'eof' } : whole;
      const label = `${result.kind}${result.kind === 'opaque' ? `/${result.reason}` : ''}`;
      tally.set(label, (tally.get(label) ?? 0) + 1);
      if (!isDeepStrictEqual(result, expected)) failures.push(`${c.name} split ${split}: detect ${JSON.stringify(result)}, classify ${JSON.stringify(whole)}; input ${hex(c.input)}`);
      if (!replay.equals(c.input)) failures.push(`${c.name} split ${split}: replayed ${hex(replay)}; input ${hex(c.input)}`);
    }

    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < runs.length) await one(runs[next++]!);
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    t.diagnostic(`${runs.length} connections from ${cases.length} inputs: ${[...tally].map(([k, v]) => `${k} ${v}`).join(', ')}`);
    assert.deepEqual(failures.slice(0, 10), [], `seed ${seed}: ${failures.length} failures`);
  });
});
