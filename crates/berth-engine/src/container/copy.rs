//! `cp` with a container: its root filesystem with its volumes and binds mounted at
//! their targets, seen through the chrooted copy helper (`crate::files::helper`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::files::helper::{archive_dir, helper_main, PathStat, HELPER_FLAG};
use crate::files::helper::{run_helper, Bind, Job, Op, EXIT_CONFLICT, EXIT_INVALID, EXIT_NO_PATH};

use super::{rootfs, ContainerError, Containers};

impl Containers {
    /// Runs `op` in the container's `cp` view: its root (mounted for the duration when
    /// it is stopped) with its volumes and binds at their targets, under its lock.
    async fn in_cp_view(self: &Arc<Self>, key: &str, op: Op, input: Option<&Path>) -> Result<Vec<u8>, ContainerError> {
        let path = match &op {
            Op::Stat { path } | Op::Archive { path, .. } => path.clone(),
            Op::Extract { dest, .. } => dest.clone(),
        };
        let record = self.find(key)?;
        let lock = self.lock_of(&record.id);
        let _guard = lock.lock().await;
        let record = self.store.get(&record.id)?.ok_or_else(|| ContainerError::NotFound(key.to_owned()))?;
        let root = self.root_mount(&record).await?;
        // A stopped container's options volumes (tmpfs, bind) are mounted for the copy,
        // counted under a user of their own.
        let user = format!("{}/cp", record.id);
        let running = record.state.status.is_running();
        let mut held = Vec::new();
        let mut binds = Vec::new();
        let mut failed = None;
        for mount in &record.host_config.mounts {
            let source = if mount.kind == "volume" {
                if !running {
                    if let Err(e) = self.volumes.mount_for(&mount.source, &user) {
                        failed = Some(ContainerError::Invalid(berth_proto::error_chain(&e)));
                        break;
                    }
                    held.push(mount.source.clone());
                }
                self.volumes.data_dir(&mount.source)
            } else {
                PathBuf::from(&mount.source)
            };
            binds.push(Bind { source, target: mount.target.clone(), read_only: mount.read_only });
        }
        let result = match failed {
            Some(e) => Err(e),
            None => run_helper(&Job { root: root.path.clone(), binds, op }, input).await.map_err(|e| match e.code {
                EXIT_NO_PATH => ContainerError::NoPath { path, container: record.name.clone() },
                EXIT_CONFLICT => ContainerError::Conflict(format!("container {}: {}", record.name, e.message)),
                EXIT_INVALID => ContainerError::Invalid(format!("copying with container {}: {}", record.name, e.message)),
                _ => ContainerError::Io { what: format!("copy with container {}", record.name), source: std::io::Error::other(e.message) },
            }),
        };
        for volume in held {
            self.volumes.release_for(&volume, &user);
        }
        drop(root);
        result
    }

    /// `path`'s facts inside the container (docker's `HEAD .../archive`).
    pub async fn stat_path(self: &Arc<Self>, key: &str, path: &str) -> Result<PathStat, ContainerError> {
        let out = self.in_cp_view(key, Op::Stat { path: path.to_owned() }, None).await?;
        parse_stat(&out)
    }

    /// `cp` out: a tar of `path` into `out`, and its facts.
    pub async fn archive_with_stat(self: &Arc<Self>, key: &str, path: &str, out: &Path) -> Result<PathStat, ContainerError> {
        let stat = self.in_cp_view(key, Op::Archive { path: path.to_owned(), out: out.to_path_buf() }, None).await?;
        parse_stat(&stat)
    }

    /// `cp` in: the tar at `archive` unpacked at `dest` (into it when it is a
    /// directory, else as that name in its parent), into volumes and binds as well.
    /// Owners as the archive says; with `to_container_user` (docker's `copyUIDGID`,
    /// `cp -a`) the container's configured user owns everything, when it has one.
    pub async fn extract(self: &Arc<Self>, key: &str, dest: &str, archive: &Path, to_container_user: bool) -> Result<(), ContainerError> {
        let record = self.find(key)?;
        if record.host_config.read_only {
            return Err(ContainerError::Conflict(format!("container {} has a read-only root filesystem", record.name)));
        }
        let owner = if to_container_user && !record.config.user.is_empty() {
            let user = record.config.user.clone();
            let user = self.with_root(key, move |root, _| Ok(rootfs::resolve_user(root, &user)?)).await?;
            Some((user.uid, user.gid))
        } else {
            None
        };
        self.in_cp_view(key, Op::Extract { dest: dest.to_owned(), owner }, Some(archive)).await.map(|_| ())
    }
}

fn parse_stat(out: &[u8]) -> Result<PathStat, ContainerError> {
    serde_json::from_slice(out).map_err(|e| ContainerError::Io { what: "read the copy helper's answer".to_owned(), source: std::io::Error::other(e) })
}
