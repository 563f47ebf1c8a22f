import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'srcnet-pack-'));
const run = (command: string, args: string[], cwd: string) =>
  execFileSync(command, args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, npm_config_loglevel: 'error' },
  });

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('packaging', () => {
  it('npm pack gives tarballs that install into an empty project and work there', () => {
    for (const workspace of ['@srcnet/execution-step-schema', '@srcnet/execution-step-client']) {
      run('npm', ['pack', '--workspace', workspace, '--pack-destination', work, '--silent'], root);
    }
    const tarballs = readdirSync(work).filter((name) => name.endsWith('.tgz'));
    expect(tarballs).toHaveLength(2);

    const project = join(work, 'consumer');
    run('mkdir', ['-p', project], work);
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    );
    run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', ...tarballs.map((t) => join(work, t))],
      project,
    );
    writeFileSync(
      join(project, 'use.mjs'),
      `
      import { validateExecutionRequest, upgradeExecutionRequest, KINDS } from '@srcnet/execution-step-schema';
      import { RequestOffersDocument, createExecutionClient } from '@srcnet/execution-step-client';
      import { readFileSync } from 'node:fs';
      import { createRequire } from 'node:module';
      const require = createRequire(import.meta.url);
      const request = { executable: { kind: 'https://www.purl.org/ivoa.net/EB/schema/v1.0/types/executable/jupyter-notebook-1.0', location: 'https://example.org/n.ipynb' } };
      const good = validateExecutionRequest(request);
      const bad = validateExecutionRequest({ executable: { kind: KINDS.DockerContainer, privileged: 'yes' } });
      const old = upgradeExecutionRequest({ computer: { type: 'https://www.purl.org/ivoa.net/EB/schema/types/computer/simple-compute-resource-1.0' } });
      const jsonSchema = JSON.parse(readFileSync(require.resolve('@srcnet/execution-step-schema/json-schema/execution-request.schema.json'), 'utf8'));
      const client = createExecutionClient({ url: 'http://127.0.0.1:9/graphql' });
      console.log(JSON.stringify({
        good: good.ok, canonical: good.ok && good.value.executable.kind,
        bad: bad.ok ? [] : bad.issues.map((i) => i.path),
        upgraded: old.document.compute.kind,
        schemaTitle: jsonSchema.title,
        operation: RequestOffersDocument.definitions[0].name.value,
        client: typeof client.request,
      }));
      `,
    );
    const output = JSON.parse(run('node', ['use.mjs'], project));
    expect(output).toEqual({
      good: true,
      canonical:
        'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/executable/jupyter-notebook.yaml',
      bad: ['/executable/privileged'],
      upgraded:
        'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/compute/simple-compute-resource.yaml',
      schemaTitle: 'ExecutionRequest',
      operation: 'RequestOffers',
      client: 'function',
    });
  }, 180_000);
});
