/** The JSON Harbor answers with for projects, repositories and artifacts (swagger definitions). */
import type { Artifact } from '../../src/harbor/types.ts';
import type { ArtifactRecord, ArtifactStore, ProjectRecord, RepositoryRecord } from './store.ts';

/** Harbor's zero time, shown for things never pulled. */
const NEVER = '0001-01-01T00:00:00.000Z';

export function projectView(store: ArtifactStore, project: ProjectRecord): Record<string, unknown> {
  return {
    project_id: project.id,
    owner_id: 1,
    name: project.name,
    ...(project.registryId ? { registry_id: project.registryId } : {}),
    creation_time: project.creationTime.toISOString(),
    update_time: project.updateTime.toISOString(),
    deleted: false,
    owner_name: project.ownerName,
    togglable: true,
    current_user_role_id: 1,
    current_user_role_ids: [1],
    repo_count: store.repositoriesOf(project.id).length,
    metadata: { ...project.metadata },
  };
}

export function repositoryView(store: ArtifactStore, repository: RepositoryRecord): Record<string, unknown> {
  const children = store.childDigests(repository);
  return {
    id: repository.id,
    project_id: repository.projectId,
    name: repository.name,
    description: '',
    artifact_count: [...repository.artifacts.values()].filter(
      (a) => !children.has(a.digest) || a.tags.length > 0,
    ).length,
    pull_count: repository.pullCount,
    creation_time: repository.creationTime.toISOString(),
    update_time: repository.updateTime.toISOString(),
  };
}

export function artifactView(
  store: ArtifactStore,
  repository: RepositoryRecord,
  artifact: ArtifactRecord,
  withTag = true,
): Artifact {
  const stored = store.content.manifests.get(artifact.digest)!;
  const manifest = stored.manifest;
  const projectName = repository.name.split('/')[0]!;
  const repositoryPath = repository.name.slice(projectName.length + 1);
  const base = `/api/v2.0/projects/${projectName}/repositories/${encodeURIComponent(encodeURIComponent(repositoryPath))}/artifacts/${artifact.digest}`;
  const mediaType = manifest.kind === 'image' ? manifest.config.mediaType : manifest.mediaType;
  return {
    id: artifact.id,
    type: 'IMAGE',
    media_type: mediaType,
    manifest_media_type: stored.mediaType,
    artifact_type: mediaType,
    project_id: artifact.projectId,
    repository_id: artifact.repositoryId,
    repository_name: repository.name,
    digest: artifact.digest,
    size: store.content.size(artifact.digest),
    push_time: artifact.pushTime.toISOString(),
    pull_time: artifact.pullTime?.toISOString() ?? NEVER,
    extra_attrs:
      manifest.kind === 'image' ? (stored.attrs ?? store.content.attrsFromConfig(manifest) ?? {}) : {},
    annotations: {},
    references:
      manifest.kind === 'index'
        ? manifest.manifests.map((child) => ({
            parent_id: artifact.id,
            child_id: repository.artifacts.get(child.digest)?.id ?? 0,
            child_digest: child.digest,
            ...(child.platform ? { platform: child.platform } : {}),
            ...(child.urls ? { urls: child.urls } : {}),
            ...(child.annotations ? { annotations: child.annotations } : {}),
          }))
        : null,
    tags: withTag
      ? artifact.tags.map((tag) => ({
          id: tag.id,
          repository_id: artifact.repositoryId,
          artifact_id: artifact.id,
          name: tag.name,
          push_time: tag.pushTime.toISOString(),
          pull_time: tag.pullTime?.toISOString() ?? NEVER,
          immutable: false,
        }))
      : null,
    labels: null,
    ...(manifest.kind === 'image'
      ? { addition_links: { build_history: { href: `${base}/additions/build_history`, absolute: false } } }
      : {}),
  } as Artifact;
}
