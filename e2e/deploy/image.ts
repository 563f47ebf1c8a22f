/**
 * What an image will hold and run, read from the repository without Docker: the final stage of a
 * Dockerfile, the files and packages its entry reaches at run time, `.dockerignore`, and the
 * lockfile's production packages.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

export const ROOT = resolve(import.meta.dirname, '../..');

export interface Dockerfile {
  /** The target stage's CMD, exec form. */
  cmd: string[];
  /** Sources the target stage and the stages it is built on copy from the build context (not from other stages), as written. */
  copies: string[];
  /** The target stage's HEALTHCHECK command, exec form. */
  healthcheck: string[];
  /** Packages installed beside the production ones (the RUNTIME_EXTRAS build argument). */
  extras: string[];
}

interface Instruction {
  keyword: string;
  args: string;
}

/** Reads the image a target of a Dockerfile builds (the last stage when no target is named). */
export function readDockerfile(path: string, target?: string): Dockerfile {
  const instructions: Instruction[] = readFileSync(path, 'utf8')
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
  const stages = new Map<string, { base: string; instructions: Instruction[] }>();
  let last: { base: string; instructions: Instruction[] } | undefined;
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [base = '', as, name] = instruction.args.split(/\s+/);
      last = { base, instructions: [] };
      stages.set(as?.toUpperCase() === 'AS' && name ? name : `#${stages.size}`, last);
    } else last?.instructions.push(instruction);
  }
  const targetStage = target === undefined ? last : stages.get(target);
  if (!targetStage) throw new Error(`${relative(ROOT, path)}: no stage named ${target}`);
  // The target's own instructions, then those of each stage it is built on.
  const chain: Instruction[] = [];
  for (let stage: typeof last = targetStage; stage; stage = stages.get(stage.base))
    chain.push(...stage.instructions);
  const execForm = (keyword: string, args: string) => {
    const json = args.slice(args.indexOf('['));
    try {
      return JSON.parse(json) as string[];
    } catch {
      throw new Error(`${relative(ROOT, path)}: ${keyword} must be in exec form (a JSON array)`);
    }
  };
  const cmd = chain.find((i) => i.keyword === 'CMD');
  const healthcheck = chain.find((i) => i.keyword === 'HEALTHCHECK');
  const extras = instructions
    .find((i) => i.keyword === 'ARG' && i.args.startsWith('RUNTIME_EXTRAS='))
    ?.args.replace(/^RUNTIME_EXTRAS="?([^"]*)"?$/, '$1');
  return {
    cmd: cmd ? execForm('CMD', cmd.args) : [],
    healthcheck: healthcheck ? execForm('HEALTHCHECK', healthcheck.args) : [],
    copies: chain
      .filter((i) => i.keyword === 'COPY' && !i.args.includes('--from='))
      .flatMap((i) =>
        i.args
          .split(/\s+/)
          .filter((part) => !part.startsWith('--'))
          .slice(0, -1),
      ),
    extras: extras ? extras.split(/\s+/).filter(Boolean) : [],
  };
}

/** Whether `.dockerignore` keeps a path (relative to the root) out of the build context. */
export function dockerIgnored(path: string): boolean {
  const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const parents = path.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  return patterns.some((pattern) => {
    const source = pattern
      .replace(/^\//, '')
      .split(/(\*\*\/|\*)/)
      .map((part) =>
        part === '**/' ? '(?:.*/)?' : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'),
      )
      .join('');
    const regex = new RegExp(`^${source}$`);
    return parents.some((parent) => regex.test(parent));
  });
}

interface Manifest {
  name: string;
  exports?: Record<string, string | { source?: string }>;
}

function workspaces(): Map<string, { dir: string; manifest: Manifest }> {
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] };
  return new Map(
    root.workspaces
      .filter((dir) => existsSync(join(ROOT, dir, 'package.json')))
      .map((dir) => {
        const manifest = JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as Manifest;
        return [manifest.name, { dir, manifest }];
      }),
  );
}

/** Module specifiers that remain at run time: `import type` and `export type` are erased. */
function runtimeSpecifiers(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (
      ts.isImportDeclaration(node) &&
      !node.importClause?.isTypeOnly &&
      ts.isStringLiteral(node.moduleSpecifier)
    )
      found.push(node.moduleSpecifier.text);
    else if (
      ts.isExportDeclaration(node) &&
      !node.isTypeOnly &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    )
      found.push(node.moduleSpecifier.text);
    else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteralLike(node.arguments[0])
    )
      found.push(node.arguments[0].text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

export interface RuntimeGraph {
  /** Source files the entry loads, relative to the root. */
  files: string[];
  /** Installed packages it imports, each with a file that imports it. */
  packages: Map<string, string>;
  /** Relative imports that name no file. */
  missing: string[];
}

/** The files and packages `node --conditions=source` loads from an entry, as tsx runs it. */
export function runtimeGraph(entry: string): RuntimeGraph {
  const packagesOfWorkspaces = workspaces();
  const files = new Set<string>();
  const packages = new Map<string, string>();
  const missing: string[] = [];
  const queue = [resolve(ROOT, entry)];
  while (queue.length > 0) {
    const file = queue.pop()!;
    const rel = relative(ROOT, file);
    if (files.has(rel)) continue;
    files.add(rel);
    if (!file.endsWith('.ts')) continue;
    for (const specifier of runtimeSpecifiers(file)) {
      if (isBuiltin(specifier)) continue;
      if (specifier.startsWith('.')) {
        const target = resolve(dirname(file), specifier);
        if (existsSync(target)) queue.push(target);
        else missing.push(`${specifier} (from ${rel})`);
        continue;
      }
      const name = specifier.startsWith('@')
        ? specifier.split('/').slice(0, 2).join('/')
        : specifier.split('/')[0]!;
      const workspace = packagesOfWorkspaces.get(name);
      if (!workspace) {
        if (!packages.has(name)) packages.set(name, rel);
        continue;
      }
      const subpath = `.${specifier.slice(name.length)}`;
      const exported = workspace.manifest.exports?.[subpath];
      const target = typeof exported === 'string' ? exported : exported?.source;
      if (target) queue.push(resolve(ROOT, workspace.dir, target));
      else missing.push(`${specifier} (from ${rel}): ${name} exports no ${subpath}`);
    }
  }
  return { files: [...files], packages, missing };
}

interface LockedPackage {
  version: string;
  dev?: boolean;
  devOptional?: boolean;
}
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, LockedPackage>;
};

/**
 * How the lockfile installs a package for a file that imports it (Node's lookup: the nearest
 * node_modules folder up from the file): `production`, `dev` (left out by `npm ci --omit=dev`),
 * or `absent`.
 */
export function installedAs(name: string, importer: string): 'production' | 'dev' | 'absent' {
  for (let dir = dirname(importer); ; dir = dirname(dir)) {
    const prefix = dir === '.' ? '' : `${dir}/`;
    const found = lock.packages[`${prefix}node_modules/${name}`];
    if (found) return found.dev || found.devOptional ? 'dev' : 'production';
    if (dir === '.' || dir === '/') return 'absent';
  }
}
