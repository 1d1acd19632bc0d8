// Just enough of PostgreSQL's wire protocol (v3) for the demo's api to run a
// query: startup as `postgres` with trust auth, one simple query, the first
// column of the first row back. A connection per query, so each is a fresh
// opaque TCP stream through the mesh (mTLS between the proxies).
import { connect } from 'node:net';

function startup(user: string, database: string): Buffer {
  const params = Buffer.from(`user\0${user}\0database\0${database}\0\0`, 'utf8');
  const b = Buffer.alloc(8 + params.length);
  b.writeInt32BE(b.length, 0);
  b.writeInt32BE(196608, 4); // protocol 3.0
  params.copy(b, 8);
  return b;
}

function message(type: string, body: Buffer): Buffer {
  const b = Buffer.alloc(5 + body.length);
  b.write(type, 0, 'latin1');
  b.writeInt32BE(4 + body.length, 1);
  body.copy(b, 5);
  return b;
}

export function pgQuery(host: string, port: number, sql: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    let buf = Buffer.alloc(0);
    let value: string | undefined;
    let sent = false;
    const fail = (e: Error): void => {
      s.destroy();
      reject(e);
    };
    s.setTimeout(timeoutMs, () => fail(new Error(`postgres: no answer within ${timeoutMs} ms`)));
    s.on('error', fail);
    s.on('connect', () => s.write(startup('postgres', 'postgres')));
    s.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 5) {
        const type = String.fromCharCode(buf[0]!);
        const len = buf.readInt32BE(1);
        if (buf.length < 1 + len) return;
        const body = buf.subarray(5, 1 + len);
        buf = buf.subarray(1 + len);
        switch (type) {
          case 'R':
            if (body.readInt32BE(0) !== 0) return fail(new Error('postgres: asks for a password (the demo runs it with trust auth)'));
            break;
          case 'E':
            return fail(new Error(`postgres: ${body.toString('utf8').split('\0').find((f) => f.startsWith('M'))?.slice(1) ?? 'error'}`));
          case 'D': {
            const n = body.readInt32BE(2);
            value ??= n < 0 ? '' : body.subarray(6, 6 + n).toString('utf8');
            break;
          }
          case 'Z':
            if (!sent) {
              sent = true;
              s.write(message('Q', Buffer.from(`${sql}\0`, 'utf8')));
            } else {
              s.end(message('X', Buffer.alloc(0)));
              resolve(value ?? '');
            }
            break;
        }
      }
    });
  });
}
