// Request smuggling through both proxies: a body must reach the server in
// exactly one framing, whatever the method. Node's HTTP client frames a body
// by method (raw for GET, OPTIONS, DELETE), so a chunked body on those methods
// used to arrive unframed and the server read it as a second request.
//
// Then a corpus of ambiguous framings (RFC 9112 §6.3, §11.2): each one is
// refused by the client's proxy (400, or 431, and the connection closed) and
// the backend reads nothing of it, or it is forwarded as exactly one request
// with one framing and the body the client meant. The backend behind the
// proxies is deliberately lenient (it trims names, parses chunk sizes with
// parseInt), so anything ambiguous that got through would show up there.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, type Pod, type PodProcess } from './harness/index.js';
import { fixture, node } from './mesh.js';
import { meshedPodPair, type PodPair } from './pod-pair.js';

interface Seen {
  conn: number;
  method?: string;
  target?: string;
  host?: string;
  framing?: string;
  body?: string;
  error?: string;
  raw?: string;
  closed?: boolean;
  unread?: number;
}

interface RawResult {
  outcome: string;
  text: string;
}

const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex');
const hidden = 'GET /smuggled HTTP/1.1\r\nHost: evil\r\n\r\n';
const chunked = (body: string): string => `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
// A 200 from the raw backend ends with its count of requests on the connection;
// the proxies keep the connection open after it, so the client stops there.
const UNTIL_200 = '--until=^HTTP/1\\.1 200 [^]*?\\r\\n\\r\\n\\d+$';

/** What a strict proxy does with a case. */
type Expect =
  /** Answered by the client's proxy with this status and closed; the backend reads nothing of it. */
  | { refused: 400 | 431 }
  /** Exactly one request reaches the backend, framed this way, with this body. */
  | { forwarded: { framing: 'chunked' | 'length'; body: string } }
  /** Not HTTP/1 to the proxy's detection (no CRLF request line): relayed as TCP bytes, untouched. */
  | { opaque: true };

interface Case {
  name: string;
  /** The request; `id` names its Host and target so the backend's log can be attributed. */
  bytes: (id: string) => string;
  expect: Expect;
}

// Request heads: `id` is the target path and the Host's first label.
const line = (id: string, method = 'POST'): string => `${method} /${id} HTTP/1.1\r\nHost: ${id}.test\r\n`;
const smuggled = (id: string): string => `GET /${id}-smuggled HTTP/1.1\r\nHost: ${id}.smuggled\r\n\r\n`;
const chunkedPost = (id: string, te: string, body: string): string => `${line(id)}${te}\r\n\r\n${body}`;
const hello = chunked('hello');

const corpus: Case[] = [
  // §6.3 (3): both framings at once, either order. Refusing is what a proxy
  // that cannot know which one the next hop reads must do.
  { name: 'CL then TE', bytes: (id) => `${line(id)}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG`, expect: { refused: 400 } },
  { name: 'TE then CL', bytes: (id) => `${line(id)}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nsmuggle!\r\n0\r\n\r\n`, expect: { refused: 400 } },
  { name: 'CL with a case-mangled TE', bytes: (id) => `${line(id)}Content-Length: 5\r\ntRANSFER-eNCODING: chunked\r\n\r\n${hello}`, expect: { refused: 400 } },
  // §6.3 (5) and RFC 9110 §8.6: a repeated or listed Content-Length may be
  // collapsed or refused; a strict proxy refuses (its next hop may pick the other).
  { name: 'two Content-Length, same value', bytes: (id) => `${line(id)}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`, expect: { refused: 400 } },
  { name: 'two Content-Length, different values', bytes: (id) => `${line(id)}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`, expect: { refused: 400 } },
  { name: 'Content-Length list "5, 5"', bytes: (id) => `${line(id)}Content-Length: 5, 5\r\n\r\nhello`, expect: { refused: 400 } },
  { name: 'Content-Length "+5"', bytes: (id) => `${line(id)}Content-Length: +5\r\n\r\nhello`, expect: { refused: 400 } },
  // §6.3 (4): chunked not the final (only) coding of a request → 400.
  { name: 'TE xchunked', bytes: (id) => chunkedPost(id, 'Transfer-Encoding: xchunked', hello), expect: { refused: 400 } },
  { name: 'TE "chunked, identity"', bytes: (id) => chunkedPost(id, 'Transfer-Encoding: chunked, identity', hello), expect: { refused: 400 } },
  { name: 'TE "identity" then TE "chunked"', bytes: (id) => chunkedPost(id, 'Transfer-Encoding: identity\r\nTransfer-Encoding: chunked', hello), expect: { refused: 400 } },
  { name: 'TE chunked twice', bytes: (id) => chunkedPost(id, 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked', hello), expect: { refused: 400 } },
  { name: 'TE quoted "chunked"', bytes: (id) => chunkedPost(id, 'Transfer-Encoding: "chunked"', hello), expect: { refused: 400 } },
  // §5.1: whitespace between name and colon MUST be refused with 400.
  { name: 'TE with a space before the colon', bytes: (id) => chunkedPost(id, 'Transfer-Encoding : chunked', hello), expect: { refused: 400 } },
  // §5.2: obs-fold in a request → 400 (or unfold; strict refuses): a TE
  // spelled over two lines, one folded under a Content-Length, and a line
  // starting with a space right after the Host (folded into it).
  { name: 'TE value by obs-fold', bytes: (id) => chunkedPost(id, 'Transfer-Encoding:\r\n chunked', hello), expect: { refused: 400 } },
  { name: 'CL, and TE chunked by obs-fold', bytes: (id) => chunkedPost(id, 'Content-Length: 5\r\nTransfer-Encoding: x\r\n chunked', hello), expect: { refused: 400 } },
  { name: 'TE line indented (" Transfer-Encoding")', bytes: (id) => chunkedPost(id, ' Transfer-Encoding: chunked', hello), expect: { refused: 400 } },
  { name: 'obs-fold in an ordinary header', bytes: (id) => `${line(id, 'GET')}X-Note: one\r\n\ttwo\r\n\r\n`, expect: { refused: 400 } },
  // OWS around a value and the case of a name are not obfuscation (§5.5,
  // RFC 9110 §5.1): these are one chunked request each, read one way.
  { name: 'TE with extra leading space in the value', bytes: (id) => chunkedPost(id, 'Transfer-Encoding:   chunked', hello), expect: { forwarded: { framing: 'chunked', body: 'hello' } } },
  { name: 'TE with a tab before the value', bytes: (id) => chunkedPost(id, 'Transfer-Encoding:\tchunked', hello), expect: { forwarded: { framing: 'chunked', body: 'hello' } } },
  { name: 'TE name "Transfer-encoding"', bytes: (id) => chunkedPost(id, 'Transfer-encoding: chunked', hello), expect: { forwarded: { framing: 'chunked', body: 'hello' } } },
  { name: 'TE "TRANSFER-ENCODING: CHUNKED"', bytes: (id) => chunkedPost(id, 'TRANSFER-ENCODING: CHUNKED', hello), expect: { forwarded: { framing: 'chunked', body: 'hello' } } },
  // §2.2: bare LF and bare CR inside a head.
  { name: 'bare LF ending a header line', bytes: (id) => `${line(id, 'GET')}X-Note: a\nX-Other: b\r\n\r\n`, expect: { refused: 400 } },
  { name: 'bare LF ending the head', bytes: (id) => `${line(id)}Content-Length: 5\r\n\nhello`, expect: { refused: 400 } },
  { name: 'bare CR inside a header line', bytes: (id) => `${line(id, 'GET')}X-Note: a\rContent-Length: 5\r\n\r\nhello`, expect: { refused: 400 } },
  // A request line ending in a bare LF is not an HTTP/1 opening to the
  // proxy's detection: the connection is relayed as TCP bytes, one client
  // connection to one backend connection, so there is no request boundary
  // for the proxy and the backend to disagree on.
  { name: 'bare LF line endings throughout', bytes: (id) => `GET /${id} HTTP/1.1\nHost: ${id}.test\n\n`, expect: { opaque: true } },
  // Chunk sizes are 1*HEXDIG (§7.1): no prefix, sign, space; a size must be
  // countable; a chunk line ends in CRLF and its data is followed by CRLF.
  { name: 'chunk size "0x5"', bytes: (id) => chunkedPost(id, 'Transfer-Encoding: chunked', '0x5\r\nhello\r\n0\r\n\r\n'), expect: { refused: 400 } },
  { name: 'chunk size "+5"', bytes: (id) => chunkedPost(id, 'Transfer-Encoding: chunked', '+5\r\nhello\r\n0\r\n\r\n'), expect: { refused: 400 } },
  { name: 'chunk size " 5"', bytes: (id) => chunkedPost(id, 'Transfer-Encoding: chunked', ' 5\r\nhello\r\n0\r\n\r\n'), expect: { refused: 400 } },
  { name: 'chunk size "-5"', bytes: (id) => chunkedPost(id, 'Transfer-Encoding: chunked', '-5\r\nhello\r\n0\r\n\r\n'), expect: { refused: 400 } },
  { name: 'chunk size ffffffffffffffffff', bytes: (id) => chunkedPost(id, 'Transfer-Encoding: chunked', 'ffffffffffffffffff\r\nhello\r\n0\r\n\r\n'), expect: { refused: 400 } },
  { name: 'chunk extension ending in a bare LF', bytes: (id) => chunkedPost(id, 'Transfer-Encoding: chunked', `5;ext=1\nhello\r\n0\r\n\r\n${smuggled(id)}`), expect: { refused: 400 } },
  { name: 'chunk data not followed by CRLF', bytes: (id) => chunkedPost(id, 'Transfer-Encoding: chunked', `5\r\nhello0\r\n\r\n${smuggled(id)}`), expect: { refused: 400 } },
  { name: 'chunk longer than its size', bytes: (id) => chunkedPost(id, 'Transfer-Encoding: chunked', `3\r\nhello\r\n0\r\n\r\n${smuggled(id)}`), expect: { refused: 400 } },
  // A second request inside a body is body: one request, that body, whichever framing.
  { name: 'request hidden in a Content-Length body', bytes: (id) => `${line(id)}Content-Length: ${smuggled(id).length}\r\n\r\n${smuggled(id)}`, expect: { forwarded: { framing: 'length', body: 'SMUGGLED' } } },
  { name: 'request hidden in a GET body by length', bytes: (id) => `${line(id, 'GET')}Content-Length: ${smuggled(id).length}\r\n\r\n${smuggled(id)}`, expect: { forwarded: { framing: 'length', body: 'SMUGGLED' } } },
  { name: 'request hidden in a chunked body', bytes: (id) => chunkedPost(id, 'Transfer-Encoding: chunked', chunked(smuggled(id))), expect: { forwarded: { framing: 'chunked', body: 'SMUGGLED' } } },
  // After a refusal the connection is closed: what follows is never read as a request.
  { name: 'request pipelined behind a refused one', bytes: (id) => `${line(id)}Content-Length: 5\r\nContent-Length: 7\r\n\r\nhello${smuggled(id)}`, expect: { refused: 400 } },
  // Field syntax (RFC 9110 §5.1, §5.5): names are tokens, values have no controls.
  { name: 'NUL in a header value', bytes: (id) => `${line(id, 'GET')}X-Note: a\u0000b\r\n\r\n`, expect: { refused: 400 } },
  { name: 'header name with a space', bytes: (id) => `${line(id, 'GET')}X Note: a\r\n\r\n`, expect: { refused: 400 } },
  { name: 'header name with a control character', bytes: (id) => `${line(id, 'GET')}X\u0001Note: a\r\n\r\n`, expect: { refused: 400 } },
  // A head beyond the proxy's limit (64 KiB) is refused with 431, not cut and read on.
  { name: 'a 70 KB head', bytes: (id) => `${line(id, 'GET')}X-Big: ${'a'.repeat(70_000)}\r\n\r\n`, expect: { refused: 431 } },
];

for (const mode of ['plain', 'mtls'] as const) describe(`request smuggling (${mode})`, () => {
  let pair: PodPair | undefined;
  let a: Pod;
  let b: Pod;
  let backend: PodProcess;
  let proxyA: PodProcess;
  let proxyB: PodProcess;

  before(async () => {
    pair = await meshedPodPair(mode);
    ({ a, b, proxyA, proxyB } = pair);
    backend = b.spawn(node, [fixture('raw-backend.js'), '7070']);
    await backend.waitForLine(/^listening/);
  });
  after(async () => {
    await pair?.destroy();
  });

  const log = (): Seen[] => backend.lines().filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Seen);
  const requests = (): Seen[] => log().filter((s) => s.method !== undefined);
  const rawClient = async (bytes: string, ...flags: string[]): Promise<RawResult> => {
    // Long requests go by stdin: one argument holds at most 128 KiB.
    const long = bytes.length > 16_384;
    const r = await a.execOk(node, [fixture('raw-client.js'), b.ipv4, '7070', long ? '-' : hex(bytes), '--keep-open', ...flags], { uid: 1000, ...(long ? { input: hex(bytes) } : {}) });
    return JSON.parse(r.stdout.trim()) as RawResult;
  };
  const metric = async (pod: Pod, name: string, direction: string): Promise<number> => {
    const m = (await pod.execOk('curl', ['-sS', '--max-time', '5', 'http://127.0.0.1:4191/metrics'])).stdout;
    return m.split('\n').filter((l) => l.startsWith(`${name}{direction="${direction}"`)).reduce((t, l) => t + Number(l.split(' ').pop()), 0);
  };

  /** Sends raw bytes from A to B's backend; returns the client's view and every request the backend read. */
  // Each case names a Host of its own, and the backend's lines for it are read
  // once the backend has printed the first one (it prints before it answers).
  // The client keeps its side open: a proxy may drop the response to a client
  // that half-closed.
  const send = async (host: string, bytes: string): Promise<{ text: string; seen: Seen[] }> => {
    const from = backend.lines().length;
    const { text } = await rawClient(bytes, '--wait=1500', UNTIL_200);
    await backend.waitForLine(new RegExp(`"host":"${host}"`));
    const seen = backend.lines().slice(from).filter((l) => l.startsWith('{"conn":') && l.includes('"method"')).map((l) => JSON.parse(l) as Seen);
    return { text, seen };
  };

  for (const method of ['GET', 'OPTIONS', 'DELETE', 'POST']) {
    it(`${method} with a chunked body reaches the server as one request, its body framed`, async () => {
      const body = hidden;
      const host = `${method.toLowerCase()}.${mode}`;
      const { text, seen } = await send(host, `${method} / HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n${chunked(body)}`);
      assert.deepEqual(seen.map((s) => [s.method, s.target, s.body]), [[method, '/', body]], `backend saw: ${JSON.stringify(seen)}`);
      assert.equal(seen[0]!.framing, 'chunked');
      assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
      assert.equal(text.match(/HTTP\/1\.1 /g)?.length, 1, 'one response for one request');
    });
  }

  describe('corpus', () => {
    // Requests the backend read that belong to a case: its own, or the one it smuggles.
    const ofCase = (id: string): Seen[] => requests().filter((s) => s.host?.startsWith(`${id}.`) || s.target?.startsWith(`/${id}`));
    let errorsBefore = 0;
    before(async () => {
      errorsBefore = await metric(a, 'http_protocol_errors_total', 'outbound');
    });

    corpus.forEach((c, i) => {
      const id = `c${String(i).padStart(2, '0')}`;
      const expect = c.expect;
      it(`${c.name}: ${'refused' in expect ? `refused with ${expect.refused}` : 'forwarded' in expect ? `one request, ${expect.forwarded.framing}` : 'relayed as opaque bytes'}`, async () => {
        const bytes = c.bytes(id).replaceAll('SMUGGLED', smuggled(id));
        if ('refused' in expect) {
          // The proxy answers and closes at once: the wait only bounds a proxy that does not.
          const r = await rawClient(bytes, '--wait=3000');
          assert.match(r.text, new RegExp(`^HTTP/1\\.1 ${expect.refused} `), JSON.stringify(r));
          assert.equal(r.text.match(/HTTP\/1\.1 /g)?.length, 1, 'one response, nothing read after the refusal');
          assert.equal(r.outcome, 'closed', 'the connection is closed after the refusal');
          // Checked again once everything has settled, at the end of the corpus.
          assert.deepEqual(ofCase(id), [], 'the backend read nothing of it');
        } else if ('forwarded' in expect) {
          const r = await rawClient(bytes, '--wait=3000', UNTIL_200);
          assert.equal(r.outcome, 'matched', JSON.stringify(r));
          assert.equal(r.text.match(/HTTP\/1\.1 /g)?.length, 1, 'one response for one request');
          await backend.waitForLine(new RegExp(`"host":"${id}\\.test"`));
          const seen = ofCase(id);
          const body = expect.forwarded.body.replaceAll('SMUGGLED', smuggled(id));
          assert.deepEqual(seen.map((s) => [s.target, s.body]), [[`/${id}`, body]], `backend saw: ${JSON.stringify(seen)}`);
          assert.equal(seen[0]!.framing?.split(' ')[0], expect.forwarded.framing);
        } else {
          const r = await rawClient(bytes, '--wait=300');
          assert.equal(r.text, '', 'no HTTP answer from the proxy');
          // The backend reads the very bytes the client sent, on one connection.
          const got = await eventually(() => {
            const conn = log().find((s) => s.raw?.includes(`/${id} `))?.conn;
            assert.ok(conn !== undefined, 'bytes reached the backend');
            const raw = log().filter((s) => s.conn === conn && s.raw !== undefined).map((s) => s.raw).join('');
            assert.equal(raw, bytes);
            return raw;
          }, { what: `${id}'s bytes at the backend` });
          assert.equal(got, bytes);
          assert.deepEqual(ofCase(id), [], 'no request read from them');
        }
      });
    });

    it('afterwards: a normal request works, the refusals were counted, the backend never read a refused case', async () => {
      const { text, seen } = await send(`after.${mode}`, `GET /after HTTP/1.1\r\nHost: after.${mode}\r\n\r\n`);
      assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
      assert.equal(seen.length, 1);
      assert.equal(proxyA.child.exitCode, null, 'client proxy alive');
      assert.equal(proxyB.child.exitCode, null, 'server proxy alive');
      // Every refusal counted once, by the client's proxy; the server's proxy never saw a malformed request.
      const refused = corpus.filter((c) => 'refused' in c.expect).length;
      assert.equal(await metric(a, 'http_protocol_errors_total', 'outbound') - errorsBefore, refused);
      assert.equal(await metric(b, 'http_protocol_errors_total', 'inbound'), 0);
      // The normal request was read after every case was sent, along the same
      // path: what a refused case left behind has arrived by now. Bytes of one
      // that did reach the backend (a head forwarded before its body turned out
      // broken) must be on a connection that was cut with them unread.
      const all = log();
      for (const [i, c] of corpus.entries()) {
        if (!('refused' in c.expect)) continue;
        const id = `c${String(i).padStart(2, '0')}`;
        assert.deepEqual(ofCase(id), [], `${c.name}: the backend read nothing of it`);
        for (const conn of new Set(all.filter((s) => s.raw?.includes(`/${id}`)).map((s) => s.conn))) {
          await eventually(() => {
            const closed = log().find((s) => s.conn === conn && s.closed === true);
            assert.ok(closed !== undefined && closed.unread! > 0, `${c.name}: conn ${conn} cut with the request unread: ${JSON.stringify(log().filter((s) => s.conn === conn))}`);
          });
        }
      }
    });
  });
});
