#![recursion_limit = "256"]
//! Berth's container engine. The guest agent is a thin binary over this library; the
//! same code runs inside the VM and natively on Linux.

pub mod build;
pub mod container;
pub mod content;
pub mod docker;
pub mod events;
pub mod files;
pub mod filters;
#[doc(hidden)]
pub mod fuzzing;
pub mod grpc;
pub mod ids;
pub mod image;
pub mod network;
pub mod registry;
pub mod snapshot;
pub mod system;
pub mod time;
pub mod volume;

use std::path::PathBuf;
use std::sync::Arc;

pub use events::{EventBus, EventRecord};

/// Where the engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Inside Berth's VM.
    Vm,
    /// Directly on a Linux host.
    Native,
}

impl Placement {
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Vm => "vm",
            Placement::Native => "native",
        }
    }
}

/// Settings the engine starts with.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub placement: Placement,
    /// The engine's state directory.
    pub root_dir: PathBuf,
}

/// The engine: state shared by every API it serves.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Held for the engine's life: one engine per state directory.
    _lock: RootLock,
    config: EngineConfig,
    events: Arc<EventBus>,
    images: Arc<image::Images>,
    containers: Arc<container::Containers>,
    volumes: Arc<volume::Volumes>,
    networks: Arc<network::Networks>,
}

/// Why the engine could not open its state.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("another Berth engine{} is using {}: stop it first (two engines on one state directory would undo each other's work)", .pid.map(|p| format!(" (pid {p})")).unwrap_or_default(), .root.display())]
    Locked { root: PathBuf, pid: Option<u32> },
    #[error("cannot lock the engine's state directory {}", .root.display())]
    Lock { root: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Images(#[from] image::OpenError),
    #[error(transparent)]
    Containers(#[from] container::ContainerError),
    #[error(transparent)]
    Volumes(#[from] volume::VolumeError),
    #[error(transparent)]
    Networks(#[from] network::NetworkError),
}

impl OpenError {
    pub fn kind(&self) -> berth_proto::ErrorKind {
        match self {
            OpenError::Locked { .. } => berth_proto::ErrorKind::Conflict,
            OpenError::Lock { .. } => berth_proto::ErrorKind::Internal,
            OpenError::Images(e) => e.kind(),
            OpenError::Containers(e) => e.kind(),
            OpenError::Volumes(e) => e.kind(),
            OpenError::Networks(e) => e.kind(),
        }
    }
}

impl Engine {
    /// Opens the engine's stores under `config.root_dir`.
    /// First of all it locks the directory: opening sweeps `tmp/` and `ingest/`, and
    /// recovery settles containers, which would wreck a running engine's work.
    pub fn open(config: EngineConfig) -> Result<Engine, OpenError> {
        let lock = RootLock::take(&config.root_dir)?;
        let registries = registry::RegistryConfig::load(&config.root_dir.join("daemon.json")).map_err(image::OpenError::from)?;
        let events = Arc::new(EventBus::new(256));
        let images = Arc::new(image::Images::open(&config.root_dir, registries)?.publishing_to(events.clone()));
        images.take_trust_policy_from(&config.root_dir.join("daemon.json"))?;
        let volumes = Arc::new(volume::Volumes::open(&config.root_dir)?.publishing_to(events.clone()));
        let networks = Arc::new(network::Networks::open(&config.root_dir)?.publishing_to(events.clone()));
        let containers = Arc::new(container::Containers::open(
            &config.root_dir,
            images.clone(),
            volumes.clone(),
            networks.clone(),
            events.clone(),
            container::RuntimeConfig::from_env(),
        )?);
        Ok(Engine { inner: Arc::new(Inner { _lock: lock, config, events, images, containers, volumes, networks }) })
    }

    /// Adopts the containers that kept running while no engine was up, and settles the
    /// rest. Call once, after `open`, inside the runtime.
    pub async fn recover(&self) {
        let running_on_networks = self
            .inner
            .containers
            .list()
            .unwrap_or_default()
            .iter()
            .any(|c| c.state.status.is_running() && c.state.network.as_ref().is_some_and(|n| !n.endpoints.is_empty()));
        if self.inner.networks.needed_at_start(running_on_networks).unwrap_or(true) {
            if let Err(e) = self.inner.networks.ready().await {
                tracing::error!("networks are not ready: {}", berth_proto::error_chain(&e));
            }
        }
        self.inner.containers.recover().await;
    }

    pub fn networks(&self) -> &network::Networks {
        &self.inner.networks
    }

    pub fn volumes(&self) -> &volume::Volumes {
        &self.inner.volumes
    }

    pub fn containers(&self) -> &Arc<container::Containers> {
        &self.inner.containers
    }

    /// The gRPC service for `berth.v1.Volumes`.
    pub fn volumes_service(&self) -> berth_proto::v1::volumes_server::VolumesServer<grpc::volumes::VolumesApi> {
        berth_proto::v1::volumes_server::VolumesServer::new(grpc::volumes::VolumesApi::new(self.inner.volumes.clone(), self.inner.images.clone()))
    }

    /// The gRPC service for `berth.v1.Networks`.
    pub fn networks_service(&self) -> berth_proto::v1::networks_server::NetworksServer<grpc::networks::NetworksApi> {
        berth_proto::v1::networks_server::NetworksServer::new(grpc::networks::NetworksApi::new(self.inner.networks.clone(), self.inner.containers.clone()))
    }

    /// The gRPC service for `berth.v1.Containers`.
    pub fn containers_service(&self) -> berth_proto::v1::containers_server::ContainersServer<grpc::containers::ContainersApi> {
        berth_proto::v1::containers_server::ContainersServer::new(grpc::containers::ContainersApi::new(self.inner.containers.clone()))
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    pub fn events(&self) -> &EventBus {
        &self.inner.events
    }

    pub fn images(&self) -> &image::Images {
        &self.inner.images
    }

    /// The gRPC service for `berth.v1.Images`.
    pub fn images_service(&self) -> berth_proto::v1::images_server::ImagesServer<grpc::images::ImagesApi> {
        berth_proto::v1::images_server::ImagesServer::new(grpc::images::ImagesApi::new(self.inner.images.clone(), self.inner.containers.clone()))
    }

    /// The gRPC service for `berth.v1.System`.
    pub fn system_service(&self) -> berth_proto::v1::system_server::SystemServer<grpc::system::SystemApi> {
        berth_proto::v1::system_server::SystemServer::new(grpc::system::SystemApi::new(self.clone()))
    }
}

pub use berth_proto::error_chain;

/// A crash point for the tests of crash consistency: when `BERTH_FAILPOINT` names
/// `name`, the engine aborts there (as a kill -9 would stop it). Unset, it costs one
/// environment lookup.
pub fn failpoint(name: &str) {
    if std::env::var_os("BERTH_FAILPOINT").is_some_and(|v| v == name) {
        eprintln!("berth: failpoint {name}: aborting");
        std::process::abort();
    }
}

/// An exclusive `flock` on `<root>/engine.lock`, which holds the pid of its engine.
/// The kernel drops it when the process ends, however it ends, so a crashed engine
/// never blocks the next.
#[derive(Debug)]
struct RootLock {
    /// Holding the open file is holding the lock.
    _file: std::fs::File,
}

impl RootLock {
    fn take(root: &std::path::Path) -> Result<RootLock, OpenError> {
        use std::io::{Read, Seek, Write};
        use std::os::fd::AsRawFd;
        let path = root.join("engine.lock");
        let lock_err = |source| OpenError::Lock { root: root.to_owned(), source };
        let mut file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(lock_err)?;
        // SAFETY: flock on a descriptor this function owns; it touches no memory.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(lock_err(e));
            }
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(OpenError::Locked { root: root.to_owned(), pid: pid.trim().parse().ok() });
        }
        file.set_len(0).and_then(|()| file.rewind()).and_then(|()| writeln!(file, "{}", std::process::id())).map_err(lock_err)?;
        Ok(RootLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_second_lock_on_one_root_is_refused_with_the_holder() {
        let root = std::env::temp_dir().join(format!("berth-lock-{}", std::process::id()));
        std::fs::create_dir_all(&root).expect("root");
        let first = super::RootLock::take(&root).expect("first lock");
        // flock locks belong to the open file description: a second open is a second
        // contender even in one process.
        match super::RootLock::take(&root) {
            Err(super::OpenError::Locked { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("second lock: {other:?}"),
        }
        drop(first);
        super::RootLock::take(&root).expect("the lock is free once its holder is gone");
        let _ = std::fs::remove_dir_all(&root);
    }
}
