// The injector's JSON Patch applied to a YAML document in place, so that
// `mesh inject --manual` makes exactly the webhook's edit while the rest of the
// document (comments, key order, quoting) stays as the user wrote it.
import { isMap, isSeq, type Document, type Node } from 'yaml';
import { parsePointer, type PatchOperation } from '../injector/patch.js';

export class YamlPatchError extends Error {
  readonly code = 'MESH_INJECT_PATCH';
  constructor(message: string) {
    super(message);
    this.name = 'YamlPatchError';
  }
}

export function applyPatchToYaml(doc: Document, base: readonly (string | number)[], ops: readonly PatchOperation[]): void {
  for (const op of ops) {
    const tokens = parsePointer(op.path);
    const last = tokens.pop()!;
    const parentPath = [...base, ...tokens.map((t, i) => (isSeq(doc.getIn([...base, ...tokens.slice(0, i)], true)) ? Number(t) : t))];
    const parent = parentPath.length === 0 ? doc.contents : (doc.getIn(parentPath, true) as Node | undefined);
    const value = doc.createNode(op.value);
    if (isSeq(parent)) {
      // An empty flow list (`volumes: []`) grows as a block list, as a person would write it.
      if (parent.flow && parent.items.length === 0) parent.flow = false;
      const index = last === '-' ? parent.items.length : Number(last);
      if (index === 0 && parent.items.length > 0 && parent.commentBefore) {
        // A comment above the first item belongs to that item, not to what we put in front of it.
        (parent.items[0] as Node).commentBefore = parent.commentBefore;
        parent.commentBefore = undefined;
      }
      parent.items.splice(index, 0, value);
    } else if (isMap(parent)) {
      if (parent.flow && parent.items.length === 0) parent.flow = false;
      parent.set(last, value);
    } else {
      throw new YamlPatchError(`${op.path}: the document has no ${parentPath.join('.')} to add to`);
    }
  }
}
