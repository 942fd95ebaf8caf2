//! `RUN --mount`, as BuildKit gives it: a cache folder kept between builds (by id,
//! shared, locked or private), files bound from the context, a stage or an image
//! (read-only unless `rw`, and then the writes are thrown away), a fresh tmpfs. None of
//! them is part of the step's layer: the mount points the runtime had to make are taken
//! out again. Secrets and ssh have no provider here (the classic API has no session), so
//! an optional one is skipped, as BuildKit skips one not given, and a required one fails.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use berth_dockerfile::{Mount, MountType, Sharing};

use super::BuildError;
use crate::container::changes::RootMount;
use crate::container::record::TmpfsMount;
use crate::container::{Containers, CreateRequest, MountRequest};
use crate::image::ImageRecord;

/// Where an image or stage to bind from comes from, once the builder has found it.
pub(super) type Source = ImageRecord;

/// The mounts of one RUN, ready for its container, and what to undo after.
#[derive(Default)]
pub(super) struct Prepared {
    pub mounts: Vec<MountRequest>,
    pub tmpfs: Vec<TmpfsMount>,
    /// What the mounts add to the step's cache key: each mount as asked, and for binds
    /// the checksum of the bound context files or the id of the bound image.
    pub key: String,
    /// The targets, for finding the mount points the runtime makes.
    pub targets: Vec<String>,
    /// Containers of bound images (never started), with their roots held mounted.
    helpers: Vec<(String, RootMount)>,
    /// Copies made for `rw` binds of the context, and private caches.
    scratch: Vec<PathBuf>,
    _locks: Vec<tokio::sync::OwnedMutexGuard<()>>,
}

impl Prepared {
    /// A host file bound read-only at `target` (a RUN heredoc's script); its key is the
    /// step's own text already.
    pub fn add_file(&mut self, file: &Path, target: &str) {
        self.bind(file, target.to_owned(), true);
    }

    /// A bind of `source` at `target` in the step's container.
    fn bind(&mut self, source: &Path, target: String, read_only: bool) {
        self.mounts.push(MountRequest { kind: "bind".into(), source: source.display().to_string(), target: target.clone(), read_only, ..Default::default() });
        self.targets.push(target);
    }

    /// Lets go of what the mounts held: helper containers, copies, cache locks.
    pub async fn release(self, containers: &Arc<Containers>) {
        let Prepared { helpers, scratch, .. } = self;
        for (id, root) in helpers {
            drop(root);
            if let Err(e) = containers.remove(&id, true, false).await {
                tracing::warn!(container = %id, "cannot remove a RUN mount's helper container: {}", crate::error_chain(&e));
            }
        }
        for dir in scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The folder that holds a cache mount's files between builds.
pub(crate) fn cache_root(images: &crate::image::Images) -> PathBuf {
    images.home().join("build-mounts")
}

/// One lock per cache folder, for `sharing=locked` and `private`.
fn cache_lock(path: &Path) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    locks.entry(path.to_owned()).or_default().clone()
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> BuildError {
    move |source| BuildError::Io { what, source }
}

/// A mount's target: absolute, relative ones against the working directory.
fn target_of(mount: &Mount, working_dir: &str) -> Result<String, BuildError> {
    let Some(target) = mount.target.as_deref().filter(|t| !t.is_empty()) else {
        return Err(BuildError::Invalid("RUN --mount: a target is required".into()));
    };
    let target = if target.starts_with('/') { target.to_owned() } else { format!("{}/{target}", working_dir.trim_end_matches('/')) };
    if target.split('/').any(|p| p == "..") || target.trim_end_matches('/').is_empty() {
        return Err(BuildError::Invalid(format!("RUN --mount: invalid target {target:?}")));
    }
    Ok(target)
}

impl Prepared {
    /// Prepares `mounts` (their words already expanded). `stage_image` finds a stage or
    /// image named by `from`; `context` is the build's context folder; `scratch_dir`
    /// holds copies the build throws away.
    pub async fn new(
        containers: &Arc<Containers>,
        mounts: &[Mount],
        working_dir: &str,
        context: &Path,
        scratch_dir: &Path,
        mut stage_image: impl FnMut(&str) -> Option<Source>,
    ) -> Result<Prepared, BuildError> {
        let mut prepared = Prepared::default();
        let result = prepared.add_all(containers, mounts, working_dir, context, scratch_dir, &mut stage_image).await;
        match result {
            Ok(()) => Ok(prepared),
            Err(e) => {
                prepared.release(containers).await;
                Err(e)
            }
        }
    }

    async fn add_all(
        &mut self,
        containers: &Arc<Containers>,
        mounts: &[Mount],
        working_dir: &str,
        context: &Path,
        scratch_dir: &Path,
        stage_image: &mut impl FnMut(&str) -> Option<Source>,
    ) -> Result<(), BuildError> {
        for (n, mount) in mounts.iter().enumerate() {
            match mount.kind {
                MountType::Secret | MountType::Ssh => {
                    let what = if mount.kind == MountType::Secret { "secret" } else { "ssh" };
                    if mount.required {
                        let id = mount.id.clone().or_else(|| mount.target.clone()).unwrap_or_else(|| "default".into());
                        return Err(BuildError::Invalid(format!(
                            "RUN --mount=type={what}: {what} {id} is required but Berth's builder has no {what} to give (the classic build API carries none)"
                        )));
                    }
                    // Not given, not required: BuildKit runs the step without it.
                    continue;
                }
                MountType::Tmpfs => {
                    let target = target_of(mount, working_dir)?;
                    let mut options = String::from("mode=1777");
                    if let Some(size) = mount.size {
                        options.push_str(&format!(",size={size}"));
                    }
                    self.key.push_str(&format!("tmpfs {target} {options}\n"));
                    self.tmpfs.push(TmpfsMount { target: target.clone(), options, read_only: false });
                    self.targets.push(target);
                }
                MountType::Cache => {
                    let target = target_of(mount, working_dir)?;
                    if mount.from.is_some() {
                        return Err(BuildError::Invalid(
                            "RUN --mount=type=cache,from=...: seeding a cache from a stage is not supported by Berth's builder yet".into(),
                        ));
                    }
                    let id = mount.id.clone().unwrap_or_else(|| target.clone());
                    let name = {
                        use sha2::Digest as _;
                        format!("{:x}", sha2::Sha256::digest(id.as_bytes()))
                    };
                    let root = cache_root(containers.images());
                    let mut dir = root.join(&name);
                    let lock = cache_lock(&dir);
                    match mount.sharing {
                        Sharing::Shared => {}
                        Sharing::Locked => self._locks.push(lock.lock_owned().await),
                        Sharing::Private => match lock.try_lock_owned() {
                            Ok(guard) => self._locks.push(guard),
                            // In use: a cache of this step's own, thrown away after.
                            Err(_) => {
                                dir = scratch_dir.join(format!("private-cache-{n}"));
                                self.scratch.push(dir.clone());
                            }
                        },
                    }
                    if std::fs::symlink_metadata(&dir).is_err() {
                        make_cache_dir(&dir, mount)?;
                    }
                    self.key.push_str(&format!("cache {target} {id} {:?}\n", mount.readonly));
                    self.bind(&dir, target, mount.readonly);
                }
                MountType::Bind => {
                    let target = target_of(mount, working_dir)?;
                    let source = mount.source.clone().unwrap_or_default();
                    let (host, identity) = match mount.from.as_deref().filter(|f| !f.is_empty()) {
                        None => {
                            let host = crate::files::resolve_in_root(context, &source)
                                .map_err(|_| BuildError::Invalid(format!("RUN --mount=type=bind: {source:?} is not in the build context")))?;
                            let relative = host.strip_prefix(context).unwrap_or(Path::new("")).to_path_buf();
                            let checksum = super::context::checksum(context, &[relative])?;
                            (host, format!("context:{checksum}"))
                        }
                        Some(from) => {
                            let image =
                                stage_image(from).ok_or_else(|| BuildError::Invalid(format!("RUN --mount=type=bind,from={from}: no such stage or image")))?;
                            let request =
                                CreateRequest { image: image.id.to_string(), cmd: vec!["true".into()], entrypoint: Some(Vec::new()), ..Default::default() };
                            let record = containers.create(request).await?;
                            let held = containers.hold_root(&record.id).await;
                            let root = match held {
                                Ok(root) => root,
                                Err(e) => {
                                    let _ = containers.remove(&record.id, true, false).await;
                                    return Err(e.into());
                                }
                            };
                            let host = crate::files::resolve_in_root(&root.path, &source);
                            self.helpers.push((record.id.clone(), root));
                            let host = host.map_err(|_| BuildError::Invalid(format!("RUN --mount=type=bind,from={from}: {source:?} does not exist there")))?;
                            (host, format!("image:{}", image.id))
                        }
                    };
                    // Writes to a context bind are thrown away: they go to a copy.
                    let host = if !mount.readonly && mount.from.is_none() {
                        let copy = scratch_dir.join(format!("bind-{n}"));
                        std::fs::create_dir_all(&copy).map_err(io(format!("make {}", copy.display())))?;
                        self.scratch.push(copy.clone());
                        let inside = copy.join("source");
                        if host.is_dir() {
                            std::fs::create_dir(&inside).map_err(io(format!("make {}", inside.display())))?;
                            crate::files::copy_tree(&host, &inside).map_err(|e| BuildError::Invalid(crate::error_chain(&e)))?;
                        } else {
                            std::fs::copy(&host, &inside).map_err(io(format!("copy {}", host.display())))?;
                        }
                        inside
                    } else {
                        host
                    };
                    self.key.push_str(&format!("bind {target} {identity} {source} {:?}\n", mount.readonly));
                    self.bind(&host, target, mount.readonly);
                }
            }
        }
        Ok(())
    }
}

/// A new cache folder, with the mount's owner and mode (root's 0755 by default).
fn make_cache_dir(dir: &Path, mount: &Mount) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(io(format!("make the cache folder {}", dir.display())))?;
    std::os::unix::fs::lchown(dir, Some(mount.uid.unwrap_or(0)), Some(mount.gid.unwrap_or(0))).map_err(io(format!("own {}", dir.display())))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mount.mode.unwrap_or(0o755))).map_err(io(format!("set the mode of {}", dir.display())))
}

/// For each target, the first part of its path the image does not have, and the target,
/// both relative to the root with links resolved: where the runtime will make a mount
/// point. Targets the image has are left out.
pub(super) fn stubs(root: &Path, targets: &[String]) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for target in targets {
        let mut resolved = PathBuf::new();
        let mut sofar = String::new();
        let mut first_missing: Option<PathBuf> = None;
        for part in target.split('/').filter(|p| !p.is_empty() && *p != ".") {
            sofar.push('/');
            sofar.push_str(part);
            if first_missing.is_some() {
                resolved.push(part);
                continue;
            }
            match crate::files::resolve_in_root(root, &sofar) {
                Ok(real) => resolved = real.strip_prefix(root).unwrap_or(Path::new("")).to_path_buf(),
                Err(_) => {
                    resolved.push(part);
                    first_missing = Some(resolved.clone());
                }
            }
        }
        if let Some(first) = first_missing {
            out.push((first, resolved));
        }
    }
    out
}

/// The bytes cache mounts hold, and removes them all (`builder prune`).
pub(crate) fn prune_caches(images: &crate::image::Images) -> u64 {
    let root = cache_root(images);
    let bytes = crate::volume::dir_size(&root);
    let _ = std::fs::remove_dir_all(&root);
    bytes
}
