// Writing the identity directory: every file with its mode set exactly
// (whatever the umask or an older file's mode), each replaced by a rename so a
// reader never sees half a key.
import { chmod, lstat, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface FileToWrite {
  name: string;
  text: string;
  /** 0o600 for private keys. */
  mode: number;
}

/** Which of `names` already exist in `dir`. */
export async function existingFiles(dir: string, names: readonly string[]): Promise<string[]> {
  const found = await Promise.all(
    names.map(async (name) => {
      try {
        await lstat(join(dir, name));
        return name;
      } catch {
        return undefined;
      }
    }),
  );
  return found.filter((n): n is string => n !== undefined);
}

export async function writeFiles(dir: string, files: readonly FileToWrite[]): Promise<void> {
  // A directory we create holds private keys: the owner's alone.
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const f of files) {
    const final = join(dir, f.name);
    const temp = join(dir, `.${f.name}.${process.pid}.tmp`);
    try {
      await writeFile(temp, f.text, { mode: f.mode, flag: 'wx' });
      await chmod(temp, f.mode);
      await rename(temp, final);
    } catch (e) {
      await rm(temp, { force: true });
      throw e;
    }
  }
}

/** "0600" */
export const modeString = (mode: number): string => mode.toString(8).padStart(4, '0');
