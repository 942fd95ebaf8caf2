#![recursion_limit = "256"]
//! Berth's container engine. The guest agent is a thin binary over this library; the
//! same code runs inside the VM and natively on Linux.

pub mod container;
pub mod content;
pub mod docker;
pub mod events;
pub mod image;
pub mod network;
pub mod registry;
pub mod snapshot;
pub mod system;
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
            OpenError::Images(e) => e.kind(),
            OpenError::Containers(e) => e.kind(),
            OpenError::Volumes(e) => e.kind(),
            OpenError::Networks(e) => e.kind(),
        }
    }
}

impl Engine {
    /// Opens the engine's stores under `config.root_dir`.
    pub fn open(config: EngineConfig) -> Result<Engine, OpenError> {
        let registries = registry::RegistryConfig::load(&config.root_dir.join("daemon.json")).map_err(image::OpenError::from)?;
        let images = Arc::new(image::Images::open(&config.root_dir, registries)?);
        let events = Arc::new(EventBus::new(256));
        let volumes = Arc::new(volume::Volumes::open(&config.root_dir)?);
        let networks = Arc::new(network::Networks::open(&config.root_dir)?);
        let containers = Arc::new(container::Containers::open(
            &config.root_dir,
            images.clone(),
            volumes.clone(),
            networks.clone(),
            events.clone(),
            container::RuntimeConfig::from_env(),
        )?);
        Ok(Engine { inner: Arc::new(Inner { config, events, images, containers, volumes, networks }) })
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
    pub fn volumes_service(&self) -> berth_proto::v1::volumes_server::VolumesServer<volume::api::VolumesApi> {
        berth_proto::v1::volumes_server::VolumesServer::new(volume::api::VolumesApi::new(self.inner.volumes.clone(), self.inner.images.clone()))
    }

    /// The gRPC service for `berth.v1.Networks`.
    pub fn networks_service(&self) -> berth_proto::v1::networks_server::NetworksServer<network::api::NetworksApi> {
        berth_proto::v1::networks_server::NetworksServer::new(network::api::NetworksApi::new(
            self.inner.networks.clone(),
            self.inner.containers.clone(),
            self.inner.events.clone(),
        ))
    }

    /// The gRPC service for `berth.v1.Containers`.
    pub fn containers_service(
        &self,
    ) -> berth_proto::v1::containers_server::ContainersServer<container::api::ContainersApi> {
        berth_proto::v1::containers_server::ContainersServer::new(container::api::ContainersApi::new(self.inner.containers.clone()))
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
    pub fn images_service(&self) -> berth_proto::v1::images_server::ImagesServer<image::api::ImagesApi> {
        berth_proto::v1::images_server::ImagesServer::new(image::api::ImagesApi::new(
            self.inner.images.clone(),
            self.inner.events.clone(),
        ))
    }

    /// The gRPC service for `berth.v1.System`.
    pub fn system_service(
        &self,
    ) -> berth_proto::v1::system_server::SystemServer<system::SystemApi> {
        berth_proto::v1::system_server::SystemServer::new(system::SystemApi::new(self.clone()))
    }
}

pub use berth_proto::error_chain;
