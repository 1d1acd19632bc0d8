// The inventory service's one method, raw bytes in and out (no .proto to ship).
import type { ServiceDefinition } from '@grpc/grpc-js';

const raw = (b: Buffer): Buffer => b;

export const inventoryService: ServiceDefinition = {
  reserve: {
    path: '/mesh.demo.Inventory/Reserve',
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  },
};
