import { randomUUID } from 'node:crypto';
import type { WireFile, WireJob } from '../../src/preparedata/mapping.ts';
import type { CallbackRegistration, Did, StageState } from '../../src/preparedata/types.ts';
import type { Catalogue, SiteConfig } from '../catalogue.ts';
import type { Random } from '@srcnet/service-kit';
import type { SourceRef, StagingStore, StorageAreaConfig } from './storage.ts';

/** A refusal the HTTP layer turns into a response with this status and detail. */
export class StagingError extends Error {
  override name = 'StagingError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface StagingEngineOptions {
  catalogue: Catalogue;
  store: StagingStore;
  areas: readonly StorageAreaConfig[];
  sites: Readonly<Record<string, SiteConfig>>;
  defaultSite: SiteConfig;
  /** Simulated seconds per real second for transfers; lifetimes stay in real time. */
  timeScale: number;
  /** Each transfer's speed is bandwidth share * (1 ± jitter), drawn once when it starts. */
  jitter: number;
  /** Chance that a transfer fails part-way with a transfer error. */
  transferErrorRate: number;
  random: Random;
  tickMs: number;
  /** Told about every state change and every change of bytes done. */
  onChange(job: Job, type: 'state' | 'progress'): void;
  now?: () => number;
}

export interface SubmitInput {
  owner: string;
  areaId: string;
  dids: Did[];
  urls: string[];
  lifetimeSeconds: number;
  parentNamespace?: string;
  callback?: CallbackRegistration;
}

/** What a restarted service does with transfers it was running (see docs/preparedata-callbacks.md). */
export type RestartPolicy = 'restart' | 'fail';

export interface Job {
  id: string;
  owner: string;
  areaId: string;
  lifetimeSeconds: number;
  parentNamespace?: string;
  callback?: CallbackRegistration;
  createdAt: number;
  updatedAt: number;
  startedAt: number | null;
  completedAt: number | null;
  expiresAt: number;
  state: StageState;
  message: string | null;
  bytesDone: number;
  bytesTotal: number;
  files: StagedFile[];
  /** Last callback sequence number used; kept across restarts like the rest of the job. */
  sequence: number;
}

interface StagedFile {
  job: Job;
  source: SourceRef;
  key: string;
  sizeBytes: number;
  site: string | null;
  state: StageState;
  bytesDone: number;
  localPath: string | null;
  message: string | null;
  startedAt: number | null;
  completedAt: number | null;
  inFlightAtStart: number | null;
  transfer: Transfer | null;
}

/** One copy of one source into one area, shared by every job that wants it meanwhile. */
interface Transfer {
  area: Area;
  key: string;
  label: string;
  sizeBytes: number;
  site: Site;
  path: string;
  progress: number;
  speedFactor: number;
  failAtBytes: number | null;
  startedAt: number | null;
  inFlightAtStart: number | null;
  files: Set<StagedFile>;
}

interface Site {
  name: string;
  config: SiteConfig;
  active: Transfer[];
  queue: Transfer[];
}

interface Present {
  path: string;
  sizeBytes: number;
  holders: Set<Job>;
}

interface Area {
  config: StorageAreaConfig;
  present: Map<string, Present>;
  transfers: Map<string, Transfer>;
}

export interface StagingSnapshot {
  jobs: number;
  jobsByState: Partial<Record<StageState, number>>;
  sites: Record<string, { active: number; queued: number }>;
  areas: Record<string, { capacityBytes: number; usedBytes: number; reservedBytes: number }>;
  transfersStarted: number;
  transfersFailed: number;
}

const FINAL: ReadonlySet<StageState> = new Set(['FAILED', 'RELEASED', 'EXPIRED']);

const TRANSFER_ERRORS = [
  'checksum mismatch (ADLER32) after copy',
  'connection reset by the source storage element',
  'source storage element did not answer within the transfer timeout',
];

function sourceKey(source: SourceRef): string {
  return source.kind === 'did' ? `${source.namespace}:${source.name}` : source.url;
}

function sourceLabel(source: SourceRef): string {
  return source.kind === 'did' ? `DID ${source.namespace}:${source.name}` : `URL ${source.url}`;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/**
 * The staging service's state and its one clock: a single ticker advances every transfer and
 * expires lifetimes, whatever the number of jobs.
 */
export class StagingEngine {
  private readonly jobs = new Map<string, Job>();
  /** Jobs that can still change; the ticker looks only at these. */
  private readonly live = new Set<Job>();
  private readonly sites = new Map<string, Site>();
  private readonly areas = new Map<string, Area>();
  private readonly now: () => number;
  private readonly ticker: NodeJS.Timeout;
  private lastTick: number;
  private closed = false;
  private suspended = false;
  private transfersStarted = 0;
  private transfersFailed = 0;

  constructor(private readonly options: StagingEngineOptions) {
    this.now = options.now ?? Date.now;
    for (const config of options.areas)
      this.areas.set(config.id, { config, present: new Map(), transfers: new Map() });
    options.store.createAreaFolders(options.areas);
    this.lastTick = this.now();
    this.ticker = setInterval(() => this.tick(), options.tickMs);
    this.ticker.unref();
  }

  submit(input: SubmitInput): Job {
    if (!this.areas.has(input.areaId))
      throw new StagingError(
        422,
        `to_storage_area_uuid ${JSON.stringify(input.areaId)} is not a storage area of this service (known: ${[
          ...this.areas.keys(),
        ].join(', ')})`,
      );
    const now = this.now();
    const job: Job = {
      id: randomUUID(),
      owner: input.owner,
      areaId: input.areaId,
      lifetimeSeconds: input.lifetimeSeconds,
      createdAt: now,
      updatedAt: now,
      startedAt: null,
      completedAt: null,
      expiresAt: now + input.lifetimeSeconds * 1000,
      state: 'QUEUED',
      message: null,
      bytesDone: 0,
      bytesTotal: 0,
      files: [],
      sequence: 0,
    };
    if (input.parentNamespace !== undefined) job.parentNamespace = input.parentNamespace;
    if (input.callback) job.callback = input.callback;
    const sources: SourceRef[] = [
      ...input.dids.map((did): SourceRef => ({ kind: 'did', namespace: did.namespace, name: did.name })),
      ...input.urls.map((url): SourceRef => ({ kind: 'url', url })),
    ];
    const seen = new Set<string>();
    for (const source of sources) {
      const key = sourceKey(source);
      if (seen.has(key)) continue;
      seen.add(key);
      job.files.push({
        job,
        source,
        key,
        sizeBytes: 0,
        site: null,
        state: 'QUEUED',
        bytesDone: 0,
        localPath: null,
        message: null,
        startedAt: null,
        completedAt: null,
        inFlightAtStart: null,
        transfer: null,
      });
    }
    this.jobs.set(job.id, job);
    this.live.add(job);
    this.options.onChange(job, 'state');
    // Resolved after the submit is answered, as a service that queues requests would.
    setImmediate(() => this.admit(job));
    return job;
  }

  get(owner: string, id: string): Job | undefined {
    const job = this.jobs.get(id);
    return job && job.owner === owner ? job : undefined;
  }

  /** The job, or a 404 that does not tell another user's job from a missing one. */
  require(owner: string, id: string): Job {
    const job = this.get(owner, id);
    if (!job) throw new StagingError(404, `staging job ${id} not found`);
    return job;
  }

  /** Sets the remaining lifetime, counted from now as Rucio rule lifetimes are. */
  extend(owner: string, id: string, lifetimeSeconds: number): Job {
    const job = this.require(owner, id);
    if (FINAL.has(job.state))
      throw new StagingError(
        409,
        `staging job ${id} is ${job.state}; only QUEUED, STAGING or COMPLETED jobs can be extended`,
      );
    const now = this.now();
    job.lifetimeSeconds = lifetimeSeconds;
    job.expiresAt = now + lifetimeSeconds * 1000;
    job.updatedAt = now;
    return job;
  }

  /** Ends the job and removes its files; a job that has already ended is returned unchanged. */
  release(owner: string, id: string): Job {
    const job = this.require(owner, id);
    if (!FINAL.has(job.state)) this.end(job, 'RELEASED');
    return job;
  }

  /**
   * What a restarted service still knows: jobs, staged files, lifetimes and registrations live in
   * its database. Transfers it was running are gone; they start again from zero or fail.
   */
  restart(policy: RestartPolicy): void {
    this.suspended = false;
    this.lastTick = this.now();
    const touched = new Set<Job>();
    for (const site of this.sites.values()) {
      const interrupted = [...site.active, ...site.queue];
      site.active = [];
      site.queue = [];
      for (const transfer of interrupted) {
        // An earlier failure in this loop may have left it without files: then it is already gone.
        if (transfer.files.size === 0) continue;
        for (const file of transfer.files) touched.add(file.job);
        if (policy === 'fail') {
          this.failTransfer(transfer, 'interrupted by a restart of the staging service');
          continue;
        }
        transfer.progress = 0;
        transfer.startedAt = null;
        transfer.inFlightAtStart = null;
        for (const file of transfer.files) {
          file.state = 'QUEUED';
          file.bytesDone = 0;
          file.startedAt = null;
          file.inFlightAtStart = null;
        }
        site.queue.push(transfer);
      }
    }
    for (const site of this.sites.values()) this.pump(site);
    for (const job of touched) this.refresh(job);
  }

  /** Stops the clock while the service is down; `restart` starts it again. */
  suspend(): void {
    this.suspended = true;
  }

  snapshot(): StagingSnapshot {
    const jobsByState: Partial<Record<StageState, number>> = {};
    for (const job of this.jobs.values()) jobsByState[job.state] = (jobsByState[job.state] ?? 0) + 1;
    const sites: StagingSnapshot['sites'] = {};
    for (const site of this.sites.values())
      sites[site.name] = { active: site.active.length, queued: site.queue.length };
    const areas: StagingSnapshot['areas'] = {};
    for (const [id, area] of this.areas)
      areas[id] = {
        capacityBytes: area.config.capacityBytes,
        usedBytes: this.used(area),
        reservedBytes: this.reserved(area),
      };
    return {
      jobs: this.jobs.size,
      jobsByState,
      sites,
      areas,
      transfersStarted: this.transfersStarted,
      transfersFailed: this.transfersFailed,
    };
  }

  close(): void {
    this.closed = true;
    clearInterval(this.ticker);
  }

  toWire(job: Job): WireJob {
    return {
      job_id: job.id,
      state: job.state,
      message: job.message,
      to_storage_area_uuid: job.areaId,
      lifetime: job.lifetimeSeconds,
      bytes_done: job.bytesDone,
      bytes_total: job.bytesTotal,
      created_at: new Date(job.createdAt).toISOString(),
      updated_at: new Date(job.updatedAt).toISOString(),
      started_at: iso(job.startedAt),
      completed_at: iso(job.completedAt),
      expires_at: new Date(job.expiresAt).toISOString(),
      files: job.files.map((file): WireFile => ({
        source: file.key,
        namespace: file.source.kind === 'did' ? file.source.namespace : null,
        name: file.source.kind === 'did' ? file.source.name : null,
        url: file.source.kind === 'url' ? file.source.url : null,
        source_site: file.site,
        state: file.state,
        bytes_done: file.bytesDone,
        bytes_total: file.sizeBytes,
        local_path: file.localPath,
        message: file.message,
        started_at: iso(file.startedAt),
        completed_at: iso(file.completedAt),
        in_flight_at_start: file.inFlightAtStart,
      })),
    };
  }

  // ---- admission: catalogue look-up, capacity, transfers

  private admit(job: Job): void {
    if (this.closed || job.state !== 'QUEUED') return;
    const area = this.areas.get(job.areaId)!;
    const missing: string[] = [];
    for (const file of job.files) {
      const { catalogue } = this.options;
      const entry =
        file.source.kind === 'did'
          ? catalogue.findDid(file.source.namespace, file.source.name)
          : catalogue.findUrl(file.source.url);
      if (entry) file.sizeBytes = entry.sizeBytes;
      else {
        missing.push(sourceLabel(file.source));
        file.message = 'not found at the source';
      }
    }
    job.bytesTotal = job.files.reduce((sum, file) => sum + file.sizeBytes, 0);
    if (missing.length > 0) {
      this.fail(job, `${missing.join(', ')} ${missing.length === 1 ? 'was' : 'were'} not found`);
      return;
    }
    const needed = job.files
      .filter((file) => !area.present.has(file.key) && !area.transfers.has(file.key))
      .reduce((sum, file) => sum + file.sizeBytes, 0);
    const free = area.config.capacityBytes - this.used(area) - this.reserved(area);
    if (needed > free) {
      this.fail(
        job,
        `storage area ${area.config.id} is full: the job needs ${needed} more bytes but only ${Math.max(
          0,
          free,
        )} of ${area.config.capacityBytes} bytes are free`,
      );
      return;
    }
    const sitesToPump = new Set<Site>();
    for (const file of job.files) {
      const present = area.present.get(file.key);
      if (present) {
        present.holders.add(job);
        this.completeFile(file, present.path);
        continue;
      }
      const transfer = area.transfers.get(file.key) ?? this.createTransfer(area, file);
      transfer.files.add(file);
      file.transfer = transfer;
      file.site = transfer.site.name;
      if (transfer.startedAt !== null) this.startFile(file, transfer);
      sitesToPump.add(transfer.site);
    }
    for (const site of sitesToPump) this.pump(site);
    this.refresh(job);
  }

  private createTransfer(area: Area, file: StagedFile): Transfer {
    const site = this.chooseSite(file.source);
    const transfer: Transfer = {
      area,
      key: file.key,
      label: sourceLabel(file.source),
      sizeBytes: file.sizeBytes,
      site,
      path: this.options.store.pathFor(area.config.id, file.source),
      progress: 0,
      speedFactor: 1,
      failAtBytes: null,
      startedAt: null,
      inFlightAtStart: null,
      files: new Set(),
    };
    area.transfers.set(file.key, transfer);
    site.queue.push(transfer);
    return transfer;
  }

  /** The replica whose site is least loaded for its size, then the fastest: roughly "nearest". */
  private chooseSite(source: SourceRef): Site {
    if (source.kind === 'url') return this.site(new URL(source.url).hostname);
    const entry = this.options.catalogue.findDid(source.namespace, source.name)!;
    const candidates = entry.replicas.map((replica) => this.site(replica.rse));
    const load = (site: Site) => (site.active.length + site.queue.length) / site.config.maxInFlight;
    return candidates.reduce((best, site) =>
      load(site) < load(best) ||
      (load(site) === load(best) && site.config.bandwidthBytesPerSecond > best.config.bandwidthBytesPerSecond)
        ? site
        : best,
    );
  }

  private site(name: string): Site {
    let site = this.sites.get(name);
    if (!site) {
      site = { name, config: this.options.sites[name] ?? this.options.defaultSite, active: [], queue: [] };
      this.sites.set(name, site);
    }
    return site;
  }

  /** Starts queued transfers while the site has free slots. */
  private pump(site: Site): void {
    while (site.active.length < site.config.maxInFlight && site.queue.length > 0) {
      const transfer = site.queue.shift()!;
      const { random, jitter, transferErrorRate } = this.options;
      transfer.inFlightAtStart = site.active.length;
      transfer.startedAt = this.now();
      transfer.speedFactor = 1 + jitter * (2 * random() - 1);
      transfer.failAtBytes = random() < transferErrorRate ? Math.floor(random() * transfer.sizeBytes) : null;
      site.active.push(transfer);
      this.transfersStarted++;
      for (const file of transfer.files) this.startFile(file, transfer);
    }
  }

  private startFile(file: StagedFile, transfer: Transfer): void {
    file.state = 'STAGING';
    file.startedAt = transfer.startedAt;
    file.inFlightAtStart = transfer.inFlightAtStart;
  }

  private completeFile(file: StagedFile, path: string): void {
    const now = this.now();
    file.state = 'COMPLETED';
    file.bytesDone = file.sizeBytes;
    file.localPath = path;
    file.startedAt ??= now;
    file.completedAt = now;
    file.transfer = null;
  }

  // ---- the clock

  private tick(): void {
    const now = this.now();
    const seconds = ((now - this.lastTick) / 1000) * this.options.timeScale;
    this.lastTick = now;
    if (this.suspended) return;
    const touched = new Set<Job>();
    for (const site of this.sites.values()) {
      if (site.active.length === 0) continue;
      const share = site.config.bandwidthBytesPerSecond / site.active.length;
      for (const transfer of [...site.active]) {
        // A failure earlier in this loop may have cancelled it (its jobs failed).
        if (!site.active.includes(transfer)) continue;
        transfer.progress = Math.min(
          transfer.sizeBytes,
          transfer.progress + share * transfer.speedFactor * seconds,
        );
        for (const file of transfer.files) {
          file.bytesDone = Math.floor(transfer.progress);
          touched.add(file.job);
        }
        if (transfer.failAtBytes !== null && transfer.progress >= transfer.failAtBytes) {
          const reason = TRANSFER_ERRORS[Math.floor(this.options.random() * TRANSFER_ERRORS.length)]!;
          this.failTransfer(transfer, reason);
        } else if (transfer.progress >= transfer.sizeBytes) this.finishTransfer(transfer);
      }
      this.pump(site);
    }
    for (const job of touched) this.refresh(job);
    for (const job of this.live) if (job.expiresAt <= now) this.end(job, 'EXPIRED');
  }

  private detachTransfer(transfer: Transfer): void {
    const site = transfer.site;
    site.active = site.active.filter((t) => t !== transfer);
    site.queue = site.queue.filter((t) => t !== transfer);
    transfer.area.transfers.delete(transfer.key);
  }

  private finishTransfer(transfer: Transfer): void {
    try {
      this.options.store.materialise(transfer.path, transfer.sizeBytes);
    } catch (error) {
      this.failTransfer(transfer, `could not write ${transfer.path}: ${(error as Error).message}`);
      return;
    }
    this.detachTransfer(transfer);
    const present: Present = { path: transfer.path, sizeBytes: transfer.sizeBytes, holders: new Set() };
    transfer.area.present.set(transfer.key, present);
    for (const file of transfer.files) {
      present.holders.add(file.job);
      this.completeFile(file, transfer.path);
    }
  }

  private failTransfer(transfer: Transfer, reason: string): void {
    this.detachTransfer(transfer);
    this.transfersFailed++;
    const message = `transfer of ${transfer.label} from ${transfer.site.name} failed: ${reason}`;
    for (const file of transfer.files) {
      file.state = 'FAILED';
      file.message = message;
      file.transfer = null;
    }
    for (const job of new Set([...transfer.files].map((file) => file.job))) this.fail(job, message);
    this.pump(transfer.site);
  }

  // ---- job state

  /** Derives the job's state and totals from its files, and reports what changed. */
  private refresh(job: Job): void {
    if (FINAL.has(job.state)) return;
    const now = this.now();
    const bytesDone = job.files.reduce((sum, file) => sum + file.bytesDone, 0);
    const state: StageState = job.files.every((file) => file.state === 'COMPLETED')
      ? 'COMPLETED'
      : job.files.some((file) => file.state === 'STAGING' || file.state === 'COMPLETED')
        ? 'STAGING'
        : 'QUEUED';
    const progressed = bytesDone !== job.bytesDone;
    job.bytesDone = bytesDone;
    if (state !== job.state) {
      job.state = state;
      job.updatedAt = now;
      if (state !== 'QUEUED') job.startedAt ??= now;
      if (state === 'COMPLETED') job.completedAt = now;
      this.options.onChange(job, 'state');
    } else if (progressed) {
      job.updatedAt = now;
      this.options.onChange(job, 'progress');
    }
  }

  /** A failed job holds nothing: what it staged is removed at once, whatever its lifetime. */
  private fail(job: Job, message: string): void {
    for (const file of job.files) {
      if (file.state === 'FAILED') continue;
      if (file.state === 'COMPLETED') {
        file.state = 'RELEASED';
        file.message = 'removed because the job failed';
      } else {
        file.state = 'FAILED';
        file.message ??= 'not staged because the job failed';
      }
    }
    this.finish(job, 'FAILED', message);
  }

  private end(job: Job, state: 'RELEASED' | 'EXPIRED'): void {
    for (const file of job.files) if (file.state !== 'FAILED') file.state = state;
    this.finish(job, state, state === 'EXPIRED' ? `lifetime of ${job.lifetimeSeconds} s ended` : null);
  }

  private finish(job: Job, state: StageState, message: string | null): void {
    for (const file of job.files) {
      if (file.transfer) {
        const transfer = file.transfer;
        transfer.files.delete(file);
        file.transfer = null;
        if (transfer.files.size === 0) {
          this.detachTransfer(transfer);
          this.pump(transfer.site);
        }
      }
      if (file.localPath) {
        const area = this.areas.get(job.areaId)!;
        const present = area.present.get(file.key);
        present?.holders.delete(job);
        if (present && present.holders.size === 0) {
          area.present.delete(file.key);
          this.options.store.remove(present.path);
        }
        file.localPath = null;
      }
    }
    job.state = state;
    job.message = message;
    job.updatedAt = this.now();
    this.live.delete(job);
    this.options.onChange(job, 'state');
  }

  private used(area: Area): number {
    let bytes = 0;
    for (const present of area.present.values()) bytes += present.sizeBytes;
    return bytes;
  }

  private reserved(area: Area): number {
    let bytes = 0;
    for (const transfer of area.transfers.values()) bytes += transfer.sizeBytes;
    return bytes;
  }
}
