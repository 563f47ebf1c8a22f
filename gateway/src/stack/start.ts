/**
 * `npm start`: runs every service of the stack as its own process on the embedded defaults
 * (SQLite, in-memory pub/sub, the backend emulators), waits until each answers its health check,
 * prints where to find them, and stops them all on Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { SERVICES, type ServiceSpec } from './services.ts';

const root = resolve(import.meta.dirname, '../../..');
const children: { spec: ServiceSpec; child: ChildProcess }[] = [];
let stopping = false;

function stopAll(code: number) {
  if (stopping) return;
  stopping = true;
  for (const { child } of children) child.kill('SIGTERM');
  const force = setTimeout(() => {
    for (const { child } of children) child.kill('SIGKILL');
  }, 5000);
  force.unref();
  Promise.all(
    children.map(
      ({ child }) => new Promise((done) => (child.exitCode !== null ? done(null) : child.once('exit', done))),
    ),
  ).then(() => process.exit(code));
}

async function waitHealthy(spec: ServiceSpec, child: ChildProcess, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`${spec.name} exited with code ${child.exitCode} while starting`);
    try {
      const response = await fetch(`http://127.0.0.1:${spec.port}${spec.health}`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((done) => setTimeout(done, 200));
  }
  throw new Error(
    `${spec.name} did not answer http://127.0.0.1:${spec.port}${spec.health} within ${timeoutMs / 1000}s`,
  );
}

process.on('SIGINT', () => stopAll(0));
process.on('SIGTERM', () => stopAll(0));

const runnable = SERVICES.filter((spec) => existsSync(resolve(root, spec.entry)));
const missing = SERVICES.filter((spec) => !runnable.includes(spec));
console.log('Starting the SRCNet execution stack (SQLite, in-memory pub/sub, backend emulators):');
for (const spec of SERVICES) {
  console.log(
    `  ${spec.name.padEnd(22)} :${spec.port}  ${runnable.includes(spec) ? spec.entry : '(not built yet)'}`,
  );
}

for (const spec of runnable) {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', spec.entry], {
    cwd: root,
    env: { ...process.env, ...spec.env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.push({ spec, child });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`${spec.name} stopped (${signal ?? `exit code ${code}`}); stopping the stack`);
      stopAll(1);
    }
  });
  try {
    await waitHealthy(spec, child);
  } catch (error) {
    console.error((error as Error).message);
    stopAll(1);
    break;
  }
}
if (!stopping) {
  console.log('\nReady:');
  for (const { spec } of children) console.log(`  ${spec.name.padEnd(22)} http://127.0.0.1:${spec.port}`);
  if (missing.length)
    console.log(`Not part of this build yet: ${missing.map((spec) => spec.name).join(', ')}`);
  console.log('Ctrl-C stops everything.');
}
