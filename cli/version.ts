// The version every artifact carries (package.json's), and the image built from this tree.
import { readFileSync } from 'node:fs';

export const meshVersion: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The Dockerfile's image, tagged with the version (docker build -t mesh:VERSION .; see the Dockerfile). */
export const meshImage = `mesh:${meshVersion}`;
