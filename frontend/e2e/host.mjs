// Starts the real `nexa` host on the repository's spin.toml with a fresh
// state directory (its own SQLite database and key-value store) on a free
// port, and stops it afterwards. The components and the dashboard are built
// through spin.toml's build commands (`nexa up --build`), exactly as the
// README's first command does.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dirname, '../..');

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.unref();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

/** The `nexa` binary, built once if it is not there yet. */
function nexaBinary() {
  const metadata = JSON.parse(
    execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], {
      cwd: repoRoot,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    }),
  );
  const binary = join(metadata.target_directory, 'release', 'nexa');
  if (!existsSync(binary)) {
    execFileSync('cargo', ['build', '--release', '--bin', 'nexa'], { cwd: repoRoot, stdio: 'inherit' });
  }
  return binary;
}

/**
 * Starts a host and resolves once it answers. `variables` become
 * `SPIN_VARIABLE_*` environment variables, consulted after the runtime config's
 * providers (Spin's order): use them for variables the dev config does not set.
 */
export async function startHost({ variables = {} } = {}) {
  const port = await freePort();
  const stateDir = mkdtempSync(join(tmpdir(), 'nexa-e2e-'));
  // A free admin port: nothing else may hold the default one.
  const env = { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info', NEXA_ADMIN_LISTEN: '127.0.0.1:0' };
  for (const [name, value] of Object.entries(variables)) {
    env[`SPIN_VARIABLE_${name.toUpperCase()}`] = String(value);
  }
  const child = spawn(
    nexaBinary(),
    [
      'up',
      '--build',
      '--from', join(repoRoot, 'spin.toml'),
      '--runtime-config-file', join(repoRoot, 'runtime-config.dev.toml'),
      '--state-dir', stateDir,
      '--listen', `127.0.0.1:${port}`,
    ],
    { cwd: repoRoot, env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr.on('data', (chunk) => {
    log += chunk;
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15 * 60 * 1000; // a cold build compiles wasmtime's artifacts
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`nexa exited with ${child.exitCode} before serving:\n${log}`);
    }
    try {
      const response = await fetch(`${url}/health`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nexa did not start in time:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    log: () => log,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
