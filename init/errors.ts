// Every way mesh-init can refuse or fail, with a stable code. Usage problems
// (the caller can fix the input) exit 2; failures while applying exit 1.
export type InitErrorCode =
  | 'MESH_INIT_BAD_FLAG'
  | 'MESH_INIT_BAD_PORT'
  | 'MESH_INIT_BAD_CIDR'
  | 'MESH_INIT_NO_IPTABLES'
  | 'MESH_INIT_NO_CAP_NET_ADMIN'
  | 'MESH_INIT_RULE_REJECTED'
  | 'MESH_INIT_COMMAND_FAILED'
  | 'MESH_INIT_ROLLBACK_FAILED';

const usageCodes: ReadonlySet<InitErrorCode> = new Set([
  'MESH_INIT_BAD_FLAG',
  'MESH_INIT_BAD_PORT',
  'MESH_INIT_BAD_CIDR',
  'MESH_INIT_NO_IPTABLES',
  'MESH_INIT_NO_CAP_NET_ADMIN',
]);

export class InitError extends Error {
  constructor(readonly code: InitErrorCode, message: string) {
    super(message);
    this.name = 'InitError';
  }

  get exitCode(): number {
    return usageCodes.has(this.code) ? 2 : 1;
  }
}
