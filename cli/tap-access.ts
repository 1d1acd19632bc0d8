// How `mesh tap`, `mesh stat` and `mesh dashboard` reach the tap service: its
// URL, the trust anchors its certificate must chain to, and the trust domain
// that names it. One set of flags (and environment defaults) for all three.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { TAP_SERVICE_PORT } from '../contract/tap.js';
import { UsageError } from './command.js';

export interface TapAccessFlags {
  tapUrl: string;
  trustAnchors?: string;
  trustDomain: string;
}

export interface TapAccess {
  tapUrl: string;
  trustAnchorsPem: string;
  trustDomain: string;
}

export function addTapAccessOptions(cmd: Command, what = 'the tap service'): Command {
  return cmd
    .option('--tap-url <url>', what, process.env.MESH_TAP_URL ?? `https://127.0.0.1:${TAP_SERVICE_PORT}`)
    .option('--trust-anchors <file>', 'PEM the tap service\'s certificate must chain to (default: $MESH_TRUST_ANCHORS)')
    .option('--trust-domain <domain>', 'the mesh\'s trust domain', process.env.MESH_TRUST_DOMAIN ?? 'cluster.local');
}

/** The flags checked: a URL, and anchors that can be read (a UsageError names what is wrong). */
export function tapAccess(f: TapAccessFlags): TapAccess {
  const anchors = f.trustAnchors ?? process.env.MESH_TRUST_ANCHORS;
  if (anchors === undefined) throw new UsageError('--trust-anchors (or MESH_TRUST_ANCHORS) is required: the tap service is verified against it');
  try {
    new URL(f.tapUrl);
  } catch {
    throw new UsageError(`--tap-url: "${f.tapUrl}" is not a URL`);
  }
  return { tapUrl: f.tapUrl, trustAnchorsPem: readFileSync(anchors, 'utf8'), trustDomain: f.trustDomain };
}
