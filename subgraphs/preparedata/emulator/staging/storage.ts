import { createHash } from 'node:crypto';
import { closeSync, ftruncateSync, mkdirSync, openSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import path from 'node:path';

export interface StorageAreaConfig {
  /** What clients name as the target (the DM API's storage area uuid). */
  id: string;
  /** Submissions that would need more than what is free fail with "storage full". */
  capacityBytes: number;
}

/** A staged source: a DID or a URL. */
export type SourceRef = { kind: 'did'; namespace: string; name: string } | { kind: 'url'; url: string };

const SAFE = /^[A-Za-z0-9._-]+$/;

/** One path segment from arbitrary text; altered text gets a hash suffix so that two never collide. */
function segment(text: string): string {
  if (SAFE.test(text) && text !== '.' && text !== '..') return text;
  const cleaned = text.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_') || '_';
  return `${cleaned}-${createHash('sha256').update(text).digest('hex').slice(0, 8)}`;
}

/**
 * Staged files on the local disk, one folder per storage area. Files are sparse: they have the
 * source's size but occupy no blocks, so a 25 GiB DID costs nothing to "stage".
 */
export class StagingStore {
  constructor(readonly root: string) {}

  areaFolder(areaId: string): string {
    return path.join(this.root, segment(areaId));
  }

  /** Deterministic like a Rucio RSE: one path per source per area, shared by every job. */
  pathFor(areaId: string, source: SourceRef): string {
    if (source.kind === 'did')
      return path.join(
        this.areaFolder(areaId),
        segment(source.namespace),
        ...source.name.split('/').map(segment),
      );
    const url = new URL(source.url);
    const parts = url.pathname
      .split('/')
      .filter(Boolean)
      .map((part) => segment(decodeURIComponent(part)));
    if (parts.length === 0 || url.pathname.endsWith('/')) parts.push('index');
    return path.join(this.areaFolder(areaId), 'url', segment(url.host), ...parts);
  }

  materialise(file: string, sizeBytes: number): void {
    mkdirSync(path.dirname(file), { recursive: true });
    const fd = openSync(file, 'w');
    try {
      ftruncateSync(fd, sizeBytes);
    } finally {
      closeSync(fd);
    }
  }

  /** Removes the file and the folders it leaves empty, up to the area folder. */
  remove(file: string): void {
    rmSync(file, { force: true });
    const stop = path.resolve(this.root);
    for (
      let dir = path.dirname(file);
      dir.startsWith(stop + path.sep) && dir !== stop;
      dir = path.dirname(dir)
    ) {
      if (path.dirname(dir) === stop) break; // keep the area folder itself
      try {
        if (readdirSync(dir).length > 0) break;
        rmdirSync(dir);
      } catch {
        break;
      }
    }
  }

  createAreaFolders(areas: readonly StorageAreaConfig[]): void {
    for (const area of areas) mkdirSync(this.areaFolder(area.id), { recursive: true });
  }
}
