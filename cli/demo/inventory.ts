// The demo's gRPC service, two replicas behind one name: Reserve answers with
// the replica that served it, so balancing shows in the api's answers.
//   node inventory.js PORT REPLICA
import * as grpc from '@grpc/grpc-js';
import { inventoryService } from './inventory-service.js';

const [port, replica] = process.argv.slice(2);
let served = 0;
const server = new grpc.Server();
server.addService(inventoryService, {
  reserve: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
    served++;
    cb(null, Buffer.from(JSON.stringify({ replica, item: call.request.toString(), served })));
  },
});
server.bindAsync(`[::]:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
  console.log(`listening :${port} ${replica}`);
});
