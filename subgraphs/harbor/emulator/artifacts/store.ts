/**
 * Projects, repositories and artifacts: what Harbor keeps in its database. Survives restart().
 */
import { isDigest } from '../../src/registry/reference.ts';
import type { ContentStore, StoredManifest } from './content.ts';

/** A failure with the HTTP status and Harbor error code to answer with. */
export class HarborFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HarborFailure';
  }
}

export interface ProjectRecord {
  id: number;
  name: string;
  /** Set for proxy-cache projects. */
  registryId?: number;
  public: boolean;
  metadata: Record<string, string>;
  ownerName: string;
  creationTime: Date;
  updateTime: Date;
}

export interface TagRecord {
  id: number;
  name: string;
  pushTime: Date;
  pullTime?: Date;
}

export interface ArtifactRecord {
  id: number;
  digest: string;
  projectId: number;
  repositoryId: number;
  pushTime: Date;
  pullTime?: Date;
  tags: TagRecord[];
}

export interface RepositoryRecord {
  id: number;
  projectId: number;
  /** Full name, project included: `library/ivoa/oligia-webtop`. */
  name: string;
  creationTime: Date;
  updateTime: Date;
  pullCount: number;
  artifacts: Map<string, ArtifactRecord>;
}

const PROJECT_NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

export interface NewProject {
  name: string;
  public?: boolean;
  registryId?: number;
  metadata?: Record<string, string>;
  ownerName?: string;
}

export class ArtifactStore {
  readonly projects = new Map<number, ProjectRecord>();
  readonly repositories = new Map<string, RepositoryRecord>();
  private nextId = { project: 1, repository: 1, artifact: 1, tag: 1 };

  constructor(readonly content: ContentStore) {}

  createProject(input: NewProject): ProjectRecord {
    if (!(input.name.length >= 1 && input.name.length <= 255 && PROJECT_NAME.test(input.name)))
      throw new HarborFailure(
        400,
        'BAD_REQUEST',
        `project_name ${JSON.stringify(input.name)} must be 1-255 lower-case letters and digits, joined by . _ or -`,
      );
    if (this.projectByName(input.name))
      throw new HarborFailure(409, 'CONFLICT', `The project named ${input.name} already exists`);
    const now = new Date();
    const isPublic = input.public ?? input.metadata?.public === 'true';
    const project: ProjectRecord = {
      id: this.nextId.project++,
      name: input.name,
      ...(input.registryId ? { registryId: input.registryId } : {}),
      public: isPublic,
      metadata: { ...input.metadata, public: String(isPublic) },
      ownerName: input.ownerName ?? 'admin',
      creationTime: now,
      updateTime: now,
    };
    this.projects.set(project.id, project);
    return project;
  }

  projectByName(name: string): ProjectRecord | undefined {
    for (const project of this.projects.values()) if (project.name === name) return project;
    return undefined;
  }

  /** Harbor's `project_name_or_id`: digits mean an id unless the caller says it sent a name. */
  findProject(nameOrId: string, isName: boolean): ProjectRecord | undefined {
    if (!isName && /^\d+$/.test(nameOrId)) return this.projects.get(Number(nameOrId));
    return this.projectByName(nameOrId);
  }

  repositoriesOf(projectId: number): RepositoryRecord[] {
    return [...this.repositories.values()].filter((repository) => repository.projectId === projectId);
  }

  /** The project a full repository name belongs to (its first path component). */
  projectOf(fullName: string): ProjectRecord | undefined {
    return this.projectByName(fullName.split('/')[0]!);
  }

  private repository(project: ProjectRecord, fullName: string): RepositoryRecord {
    let repository = this.repositories.get(fullName);
    if (!repository) {
      const now = new Date();
      repository = {
        id: this.nextId.repository++,
        projectId: project.id,
        name: fullName,
        creationTime: now,
        updateTime: now,
        pullCount: 0,
        artifacts: new Map(),
      };
      this.repositories.set(fullName, repository);
    }
    return repository;
  }

  /**
   * Stores a manifest (already in the content store) as an artifact of the repository, and
   * points `tag` at it when given (moving the tag off any other artifact).
   */
  put(
    fullName: string,
    manifest: StoredManifest,
    tag?: string,
  ): { artifact: ArtifactRecord; created: boolean } {
    const project = this.projectOf(fullName);
    if (!project) throw new HarborFailure(404, 'NOT_FOUND', `project ${fullName.split('/')[0]} not found`);
    const repository = this.repository(project, fullName);
    const now = new Date();
    let artifact = repository.artifacts.get(manifest.digest);
    const created = !artifact;
    if (!artifact) {
      artifact = {
        id: this.nextId.artifact++,
        digest: manifest.digest,
        projectId: project.id,
        repositoryId: repository.id,
        pushTime: now,
        tags: [],
      };
      repository.artifacts.set(manifest.digest, artifact);
    }
    if (tag && !artifact.tags.some((t) => t.name === tag)) {
      for (const other of repository.artifacts.values())
        other.tags = other.tags.filter((t) => t.name !== tag);
      artifact.tags.push({ id: this.nextId.tag++, name: tag, pushTime: now });
    }
    repository.updateTime = now;
    return { artifact, created };
  }

  /**
   * The artifact a tag or digest names. A digest must be the artifact's own: a reference whose
   * digest does not match anything stored is simply not found, as in Harbor.
   */
  resolve(
    fullName: string,
    reference: string,
  ): { repository: RepositoryRecord; artifact: ArtifactRecord; manifest: StoredManifest } | undefined {
    const repository = this.repositories.get(fullName);
    if (!repository) return undefined;
    let artifact: ArtifactRecord | undefined;
    if (isDigest(reference)) artifact = repository.artifacts.get(reference);
    else
      for (const candidate of repository.artifacts.values())
        if (candidate.tags.some((t) => t.name === reference)) artifact = candidate;
    const manifest = artifact && this.content.manifests.get(artifact.digest);
    return artifact && manifest ? { repository, artifact, manifest } : undefined;
  }

  /** Records a pull, as Harbor does for `pull_time` and the repository's pull count. */
  touch(fullName: string, artifact: ArtifactRecord, tag?: string): void {
    const now = new Date();
    artifact.pullTime = now;
    const record = tag ? artifact.tags.find((t) => t.name === tag) : undefined;
    if (record) record.pullTime = now;
    const repository = this.repositories.get(fullName);
    if (repository) repository.pullCount += 1;
  }

  delete(fullName: string, digest: string): ArtifactRecord | undefined {
    const repository = this.repositories.get(fullName);
    const artifact = repository?.artifacts.get(digest);
    if (!repository || !artifact) return undefined;
    repository.artifacts.delete(digest);
    if (repository.artifacts.size === 0) this.repositories.delete(fullName);
    return artifact;
  }

  /** Digests referenced as children by an index in the repository (Harbor does not list them). */
  childDigests(repository: RepositoryRecord): Set<string> {
    const children = new Set<string>();
    for (const artifact of repository.artifacts.values()) {
      const manifest = this.content.manifests.get(artifact.digest);
      if (manifest?.manifest.kind === 'index')
        for (const child of manifest.manifest.manifests) children.add(child.digest);
    }
    return children;
  }
}
