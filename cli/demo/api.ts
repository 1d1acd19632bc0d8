// The demo's api: GET /orders/N reserves the item over gRPC (the inventory
// service, two replicas behind one virtual address, balanced by the mesh),
// records every 5th order in PostgreSQL (opaque TCP through the mesh), and
// fails 1 order in 20 with a 503 so the success rate has something to show.
//   node api.js PORT INVENTORY_ADDR:PORT POSTGRES_ADDR:PORT
import { createServer } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { inventoryService } from './inventory-service.js';
import { pgQuery } from './pg.js';

const [port, inventory, postgres] = process.argv.slice(2);
const Client = grpc.makeGenericClientConstructor(inventoryService, 'Inventory');
const client = new Client(inventory!, grpc.credentials.createInsecure()) as unknown as {
  reserve(req: Buffer, o: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Buffer) => void): void;
};
const colon = postgres!.lastIndexOf(':');
const [pgHost, pgPort] = [postgres!.slice(0, colon), Number(postgres!.slice(colon + 1))];

const reserve = (item: string): Promise<{ replica: string }> =>
  new Promise((resolve, reject) =>
    client.reserve(Buffer.from(item), { deadline: Date.now() + 3000 }, (err, res) => (err ? reject(err) : resolve(JSON.parse(res!.toString()) as { replica: string }))),
  );

createServer((req, res) => {
  const m = /^\/orders\/(\d+)/.exec(req.url ?? '');
  const reply = (status: number, body: object): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  if (m === null) return reply(404, { error: 'try /orders/N' });
  const n = Number(m[1]);
  if (n % 20 === 19) return reply(503, { error: 'flaky on purpose', order: n });
  (async () => {
    const r = await reserve(`item-${n}`);
    const db = n % 5 === 0 ? await pgQuery(pgHost, pgPort, `select 'order ${n} recorded at ' || now()::time(0)`) : undefined;
    reply(200, { order: n, inventory: r.replica, ...(db === undefined ? {} : { db }) });
  })().catch((e: Error) => reply(502, { error: e.message, order: n }));
}).listen({ host: '::', port: Number(port) }, () => console.log(`listening :${port}`));
