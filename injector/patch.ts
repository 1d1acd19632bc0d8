// RFC 6902 JSON Patch, the one operation the injector needs (`add`), written
// so the webhook's answer and `mesh inject --manual` are the same edit: the
// webhook sends the operations, the CLI applies them to the YAML it read.
export interface AddOperation {
  op: 'add';
  /** RFC 6901 pointer; the last token may be an index or "-" (append). */
  path: string;
  value: unknown;
}
export type PatchOperation = AddOperation;

export class PatchError extends Error {
  readonly code = 'MESH_INJECT_PATCH';
  constructor(message: string) {
    super(message);
    this.name = 'PatchError';
  }
}

/** "/" and "~" inside a key ("mesh.io/inject") are escaped: "mesh.io~1inject". */
export function pointer(tokens: readonly (string | number)[]): string {
  return tokens.map((t) => `/${String(t).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

export function parsePointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`"${path}" is not a JSON pointer`);
  return path.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Applies the operations to a copy of `doc`, as an API server would. */
export function applyPatch<T>(doc: T, ops: readonly PatchOperation[]): T {
  const root = structuredClone(doc) as unknown;
  for (const op of ops) {
    const tokens = parsePointer(op.path);
    const last = tokens.pop();
    if (last === undefined) throw new PatchError('cannot add at the document root');
    let parent: unknown = root;
    for (const t of tokens) {
      parent = Array.isArray(parent) ? parent[Number(t)] : (parent as Record<string, unknown> | undefined)?.[t];
      if (typeof parent !== 'object' || parent === null) throw new PatchError(`${op.path}: ${pointer(tokens)} does not exist`);
    }
    const value = structuredClone(op.value);
    if (Array.isArray(parent)) {
      const index = last === '-' ? parent.length : Number(last);
      if (!Number.isInteger(index) || index < 0 || index > parent.length) throw new PatchError(`${op.path}: index out of range`);
      parent.splice(index, 0, value);
    } else {
      (parent as Record<string, unknown>)[last] = value;
    }
  }
  return root as T;
}
