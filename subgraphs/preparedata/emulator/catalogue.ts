/**
 * What the emulated data lake holds: DIDs with their size and replicas (as Rucio would answer),
 * and plain URL sources with their size (as a HEAD request would answer).
 */

export interface Replica {
  /** Rucio Storage Element; transfers from it use that site's bandwidth and slots. */
  rse: string;
  url?: string;
}

export interface DidEntry {
  namespace: string;
  name: string;
  sizeBytes: number;
  replicas: Replica[];
  checksum?: { type: string; value: string };
}

export interface UrlEntry {
  url: string;
  sizeBytes: number;
}

export interface CatalogueContents {
  dids: DidEntry[];
  urls: UrlEntry[];
}

/** How fast a source site delivers and how many transfers it runs at once. */
export interface SiteConfig {
  /** Shared by the site's running transfers. */
  bandwidthBytesPerSecond: number;
  /** Transfers beyond this wait in the site's queue. */
  maxInFlight: number;
}

function checkSize(sizeBytes: number, where: string): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0)
    throw new RangeError(`${where}.sizeBytes must be a non-negative integer (got ${sizeBytes})`);
}

export class Catalogue {
  private readonly dids = new Map<string, DidEntry>();
  private readonly urls = new Map<string, UrlEntry>();

  constructor(contents: Partial<CatalogueContents> = {}) {
    for (const did of contents.dids ?? []) this.addDid(did);
    for (const url of contents.urls ?? []) this.addUrl(url);
  }

  /** Adds or replaces a DID. */
  addDid(entry: DidEntry): void {
    const where = `did ${entry.namespace}:${entry.name}`;
    if (!entry.namespace || !entry.name)
      throw new RangeError(`${where}: namespace and name must be non-empty`);
    checkSize(entry.sizeBytes, where);
    if (!Array.isArray(entry.replicas) || entry.replicas.length === 0)
      throw new RangeError(`${where}.replicas must name at least one RSE`);
    this.dids.set(`${entry.namespace}:${entry.name}`, structuredClone(entry));
  }

  removeDid(namespace: string, name: string): boolean {
    return this.dids.delete(`${namespace}:${name}`);
  }

  findDid(namespace: string, name: string): DidEntry | undefined {
    return this.dids.get(`${namespace}:${name}`);
  }

  /** Adds or replaces a URL source. */
  addUrl(entry: UrlEntry): void {
    checkSize(entry.sizeBytes, `url ${entry.url}`);
    new URL(entry.url); // throws on a malformed URL, naming it
    this.urls.set(entry.url, { ...entry });
  }

  removeUrl(url: string): boolean {
    return this.urls.delete(url);
  }

  findUrl(url: string): UrlEntry | undefined {
    return this.urls.get(url);
  }

  toJSON(): CatalogueContents {
    return { dids: [...this.dids.values()], urls: [...this.urls.values()] };
  }
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/**
 * The reference examples' data: example-009's test file with its four replicas, and the sizes that
 * example-011 asks estimates for (25 KiB, 25 MiB, 25 GiB) as separate DIDs, since one DID has one
 * size. Bandwidths are plausible orders of magnitude, not measurements.
 */
export function defaultCatalogue(): CatalogueContents {
  const example011 = (suffix: string, sizeBytes: number, rses: string[]): DidEntry => ({
    namespace: 'testing',
    name: `zrq-test-example-011-${suffix}`,
    sizeBytes,
    replicas: rses.map((rse) => ({ rse })),
  });
  return {
    dids: [
      {
        namespace: 'testing',
        name: 'zrq-test-20250509-082506',
        sizeBytes: 29,
        checksum: { type: 'ADLER32', value: '6c9f06a7' },
        replicas: [
          {
            rse: 'SPSRC_STORM',
            url: 'davs://rucio.espsrc.iaa.csic.es:443/disk/dev/deterministic/testing/7a/98/zrq-test-20250509-082506',
          },
          {
            rse: 'STFC_STORM',
            url: 'davs://storm.srcnet.skao.int:443/sa/deterministic/testing/7a/98/zrq-test-20250509-082506',
          },
          {
            rse: 'SWESRC-OSO-T1',
            url: 'davs://xrootd-01.swesrc.chalmers.se:1094/data/rse/testing/7a/98/zrq-test-20250509-082506',
          },
          {
            rse: 'SWESRC-OSO-T0',
            url: 'davs://xrootd-02.swesrc.chalmers.se:1094/data/rse/testing/7a/98/zrq-test-20250509-082506',
          },
        ],
      },
      example011('25KiB', 25 * KiB, ['SPSRC_STORM', 'JPSRC_STORM', 'AUSRC_STORM']),
      example011('25MiB', 25 * MiB, ['SPSRC_STORM', 'JPSRC_STORM']),
      example011('25GiB', 25 * GiB, ['SPSRC_STORM', 'JPSRC_STORM']),
      example011('5GiB-remote', 5 * GiB, ['JPSRC_STORM', 'AUSRC_STORM']),
    ],
    urls: [
      // example-009's DataLink #this link to the same test file.
      {
        url: 'https://storm.srcnet.skao.int:443/sa/deterministic/testing/7a/98/zrq-test-20250509-082506',
        sizeBytes: 29,
      },
      {
        url: 'https://storm.srcnet.skao.int:443/sa/deterministic/testing/example/cube-2GiB.fits',
        sizeBytes: 2 * GiB,
      },
    ],
  };
}

export const DEFAULT_SITE: SiteConfig = { bandwidthBytesPerSecond: 100 * MiB, maxInFlight: 4 };

export function defaultSites(): Record<string, SiteConfig> {
  return {
    SPSRC_STORM: { bandwidthBytesPerSecond: 1 * GiB, maxInFlight: 4 },
    STFC_STORM: { bandwidthBytesPerSecond: 400 * MiB, maxInFlight: 4 },
    'SWESRC-OSO-T1': { bandwidthBytesPerSecond: 200 * MiB, maxInFlight: 2 },
    'SWESRC-OSO-T0': { bandwidthBytesPerSecond: 200 * MiB, maxInFlight: 2 },
    JPSRC_STORM: { bandwidthBytesPerSecond: 80 * MiB, maxInFlight: 2 },
    AUSRC_STORM: { bandwidthBytesPerSecond: 50 * MiB, maxInFlight: 2 },
    'storm.srcnet.skao.int': { bandwidthBytesPerSecond: 200 * MiB, maxInFlight: 4 },
  };
}
