// Every way the CA can refuse, with a stable code. Callers switch on the code:
// the CLI prints the message (it says what to fix), the identity service maps
// codes to gRPC/HTTP statuses and metrics labels.
export type CaErrorCode =
  // Certificates and keys handed to us (bring your own CA, files on disk).
  | 'MESH_CA_BAD_PEM'
  | 'MESH_CA_UNSUPPORTED_KEY'
  | 'MESH_CA_KEY_MISMATCH'
  | 'MESH_CA_NOT_A_CA'
  | 'MESH_CA_EXPIRED'
  | 'MESH_CA_NOT_YET_VALID'
  | 'MESH_CA_CHAIN_BROKEN'
  // Names.
  | 'MESH_CA_BAD_IDENTITY'
  // Certificate signing requests from proxies.
  | 'MESH_CA_BAD_CSR'
  | 'MESH_CA_CSR_SIGNATURE'
  | 'MESH_CA_CSR_SANS'
  | 'MESH_CA_IDENTITY_MISMATCH'
  // Service-account tokens.
  | 'MESH_CA_TOKEN_MALFORMED'
  | 'MESH_CA_TOKEN_SIGNATURE'
  | 'MESH_CA_TOKEN_ISSUER'
  | 'MESH_CA_TOKEN_AUDIENCE'
  | 'MESH_CA_TOKEN_EXPIRED'
  | 'MESH_CA_TOKEN_NOT_YET_VALID';

export class CaError extends Error {
  constructor(readonly code: CaErrorCode, message: string) {
    super(message);
    this.name = 'CaError';
  }
}

export function isCaError(e: unknown, code?: CaErrorCode): e is CaError {
  return e instanceof CaError && (code === undefined || e.code === code);
}
