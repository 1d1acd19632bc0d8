// Identity errors with stable codes; errors from certifyOnce keep their own
// (MESH_API_UNREACHABLE, MESH_API_REFUSED, …).
export type IdentityErrorCode = 'MESH_IDENTITY_TOKEN' | 'MESH_IDENTITY_FAILED';

export class IdentityError extends Error {
  constructor(readonly code: IdentityErrorCode, message: string) {
    super(message);
    this.name = 'IdentityError';
  }
}

/** Any failure, as `{ code, message }`: unknown throws become MESH_IDENTITY_FAILED. */
export function identityFailure(e: unknown): Error & { code: string } {
  if (e instanceof Error && typeof (e as { code?: unknown }).code === 'string') return e as Error & { code: string };
  return new IdentityError('MESH_IDENTITY_FAILED', e instanceof Error ? e.message : String(e));
}
