// The page's files, served as they are in the repository (dashboard/web/):
// plain HTML, CSS and ES modules, so nothing is built for the browser and
// nothing is fetched from anywhere but this server.
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the page's files are: the source tree's dashboard/web, found from this
 * module's place in dist/ (dist/dashboard/static.js → ../../dashboard/web), which
 * holds in a clone after `npm run build` and in the image (which copies it).
 */
export const WEB_ROOT = fileURLToPath(new URL('../../dashboard/web/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

/** Serves `urlPath` from `root`; false when there is no such file (the caller answers 404). */
export async function serveStatic(root: string, urlPath: string, res: ServerResponse): Promise<boolean> {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath === '/' ? '/index.html' : urlPath);
  } catch {
    return false;
  }
  // normalize() folds ../ away; a path that still leaves the root is refused, not resolved.
  const path = normalize(join(root, rel));
  if (!path.startsWith(root.endsWith(sep) ? root : root + sep)) return false;
  const type = TYPES[extname(path)];
  if (type === undefined) return false;
  let body: Buffer;
  try {
    body = await readFile(path);
  } catch {
    return false;
  }
  // The files change only with the dashboard itself: revalidating each load keeps an upgraded page consistent.
  res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
  res.end(body);
  return true;
}
