//! The image builder: a Dockerfile (berth-dockerfile's frontend) run against the engine's
//! own content store, snapshots and runtime, as dockerd's classic builder runs it. Each
//! step makes an image on top of the last (`Images::create_image`): instructions that
//! only change the config make no layer; RUN runs in a container of the engine's (with
//! containers' defaults) and its changes become the layer; COPY and ADD write the files
//! into a container's root and take the same way out. Each step's image is remembered
//! under a cache key (the parent image, the step as history writes it, the checksum of
//! the files it copies), so an unchanged step is not run again.

pub mod context;
mod copy;
pub(crate) mod mounts;
mod stage;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use berth_proto::ErrorKind;

use crate::container::{ContainerError, Containers};
use crate::image::ImageRecord;

pub use stage::BuildEvent;

/// What a build is asked, as docker's `POST /build` has it.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The Dockerfile's path inside the context ("Dockerfile" by default).
    pub dockerfile: String,
    /// Names for the image (`-t`, several).
    pub tags: Vec<String>,
    /// `--build-arg`: a value, or none (then the environment's, which a daemon has not).
    pub build_args: BTreeMap<String, Option<String>>,
    /// `--label`, set on the image.
    pub labels: BTreeMap<String, String>,
    /// `--target`: the last stage to build.
    pub target: String,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--pull`: pull the base images even when present.
    pub pull: bool,
    /// RUN's network: "default" (the bridge), "none" or "host".
    pub network_mode: String,
    /// A registry login for base image pulls from any registry that `registry_creds`
    /// has none for.
    pub creds: Option<crate::registry::Credentials>,
    /// Registry logins by registry (keys as docker's config.json has them: a
    /// host[:port], Docker Hub's `https://index.docker.io/v1/`).
    pub registry_creds: BTreeMap<String, crate::registry::Credentials>,
}

impl BuildOptions {
    /// The login for pulling `image`: its registry's, else the general one.
    pub fn creds_for(&self, image: &str) -> Option<&crate::registry::Credentials> {
        let (registry, _) = crate::registry::search::split_term(image);
        let registry = registry.as_str();
        let hub = |key: &str| matches!(key, "docker.io" | "index.docker.io" | "registry-1.docker.io");
        self.registry_creds
            .iter()
            .find(|(key, _)| {
                let host = key.trim_start_matches("https://").trim_start_matches("http://");
                let host = host.split('/').next().unwrap_or(host);
                host == registry || (hub(host) && hub(registry))
            })
            .map(|(_, c)| c)
            .or(self.creds.as_ref())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("Cannot locate specified Dockerfile: {0}")]
    NoDockerfile(String),
    #[error("dockerfile parse error {0}")]
    Parse(String),
    #[error("{0}")]
    Invalid(String),
    #[error("failed to reach build target {0} in Dockerfile")]
    NoTarget(String),
    /// docker's own words for a RUN that fails.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    Failed { command: String, code: i32 },
    #[error("{step}: {source}")]
    Step { step: String, source: Box<BuildError> },
    #[error(transparent)]
    Context(#[from] context::ContextError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Image(#[from] crate::image::CommitError),
    #[error(transparent)]
    Catalog(#[from] crate::image::CatalogError),
    #[error(transparent)]
    Pull(#[from] crate::image::PullError),
    #[error("cannot {what}")]
    Io { what: String, source: std::io::Error },
}

impl BuildError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            BuildError::NoDockerfile(_) | BuildError::NoTarget(_) => ErrorKind::NotFound,
            BuildError::Parse(_) | BuildError::Invalid(_) | BuildError::Failed { .. } => ErrorKind::InvalidArgument,
            BuildError::Step { source, .. } => source.kind(),
            BuildError::Context(e) => e.kind(),
            BuildError::Container(e) => e.kind(),
            BuildError::Image(e) => e.kind(),
            BuildError::Pull(e) => e.kind(),
            BuildError::Catalog(_) | BuildError::Io { .. } => ErrorKind::Internal,
        }
    }

    /// A RUN's exit code, for docker's `errorDetail.code`.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            BuildError::Failed { code, .. } => Some(*code),
            BuildError::Step { source, .. } => source.exit_code(),
            _ => None,
        }
    }
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io { what: what.to_owned(), source }
}

/// `builder prune`: the build cache's step images (`Images::prune_build_cache`) and
/// RUN's cache mounts; the bytes freed by both.
pub fn prune_cache(images: &crate::image::Images) -> Result<crate::image::Pruned, crate::image::RemoveError> {
    let mut pruned = images.prune_build_cache()?;
    pruned.reclaimed_bytes += mounts::prune_caches(images);
    Ok(pruned)
}

/// A build's working folder (the unpacked context), removed when the build ends.
#[derive(Debug)]
pub struct Workspace {
    pub root: PathBuf,
}

impl Workspace {
    /// A new, empty folder under the engine's scratch space.
    pub fn new(containers: &Containers) -> Result<Workspace, BuildError> {
        let root = containers.images().scratch_file("build").with_extension("d");
        std::fs::create_dir_all(&root).map_err(io("make the build's folder"))?;
        Ok(Workspace { root })
    }

    /// Where the context is unpacked.
    pub fn context(&self) -> PathBuf {
        self.root.join("context")
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        // A context in memory goes with its tmpfs.
        let _ = crate::files::unmount(&self.context());
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A plain tar context at most this big is unpacked into memory (a tmpfs of its own):
/// a build reads its files once or twice, and thousands of small files written to disk
/// and removed again cost more than the build's own steps.
const MEMORY_CONTEXT: u64 = 64 << 20;

/// The context budget, unless `BERTH_BUILD_CONTEXT_LIMIT` (bytes) says otherwise.
const CONTEXT_LIMIT: u64 = 8 << 30;

/// The context budget in bytes (also a download's, for ADD of a URL).
fn context_limit() -> u64 {
    std::env::var("BERTH_BUILD_CONTEXT_LIMIT").ok().and_then(|v| v.parse().ok()).unwrap_or(CONTEXT_LIMIT)
}

/// Receives a build context (a tar, plain or gzip, in chunks) into a new workspace,
/// unpacked; the budget is checked as it comes. What the Docker API and gRPC both call.
pub async fn receive_context(
    containers: &Containers,
    chunks: impl futures::Stream<Item = Result<impl AsRef<[u8]>, std::io::Error>>,
) -> Result<Workspace, BuildError> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let limit = context_limit();
    let workspace = Workspace::new(containers)?;
    let archive = workspace.root.join("context.tar");
    // A context that fits the memory budget stays in memory as it comes; a bigger one
    // goes to a file (what was held first, then the rest).
    let mut held: Vec<u8> = Vec::new();
    let mut file: Option<tokio::fs::File> = None;
    // Its first bytes (gzip's magic), as received.
    let mut head: Vec<u8> = Vec::with_capacity(2);
    let received = {
        let mut received = 0u64;
        futures::pin_mut!(chunks);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(io("receive the build context"))?;
            if head.len() < 2 {
                head.extend(chunk.as_ref().iter().take(2 - head.len()));
            }
            received += chunk.as_ref().len() as u64;
            if received > limit {
                return Err(context::ContextError::TooLarge { limit }.into());
            }
            if file.is_none() && received > MEMORY_CONTEXT {
                let mut spill = tokio::fs::File::create(&archive).await.map_err(io("write the build context"))?;
                spill.write_all(&held).await.map_err(io("write the build context"))?;
                held = Vec::new();
                file = Some(spill);
            }
            match file.as_mut() {
                Some(f) => f.write_all(chunk.as_ref()).await.map_err(io("write the build context"))?,
                None => held.extend_from_slice(chunk.as_ref()),
            }
        }
        if let Some(f) = file.as_mut() {
            f.flush().await.map_err(io("write the build context"))?;
        }
        received
    };
    let in_memory = file.is_none();
    drop(file);
    let context = workspace.context();
    std::fs::create_dir_all(&context).map_err(io("make the build context's folder"))?;
    let gzip = head == [0x1f, 0x8b];
    if !gzip && received <= MEMORY_CONTEXT {
        // Room for every file's pages: a tar entry of a tiny file is 1 KiB, its file 4.
        let options = format!("mode=0755,size={}", 4 * received + (16 << 20));
        if let Err(e) = crate::container::rootfs::mount_tmpfs(&context, &options) {
            tracing::debug!("the build context stays on disk: {e}");
        }
    }
    let unpacked = {
        let (archive, context) = (archive.clone(), context.clone());
        tokio::task::spawn_blocking(move || -> Result<(), context::ContextError> {
            if in_memory {
                return context::unpack(std::io::Cursor::new(held), &context, limit);
            }
            let file = std::fs::File::open(&archive).map_err(|source| context::ContextError::Io { what: "read the build context".into(), source })?;
            context::unpack(file, &context, limit)
        })
        .await
        .map_err(|_| BuildError::Invalid("the build was interrupted".into()))?
    };
    let _ = std::fs::remove_file(&archive);
    unpacked?;
    Ok(workspace)
}

/// Builds the Dockerfile in the context unpacked in `workspace`; each line of output goes
/// to `events`. The image is named with every tag once the last step is done; a failure
/// leaves no container behind and names nothing.
pub async fn build(
    containers: &Arc<Containers>,
    workspace: &Workspace,
    options: &BuildOptions,
    events: &tokio::sync::mpsc::UnboundedSender<BuildEvent>,
) -> Result<ImageRecord, BuildError> {
    stage::Build::new(containers.clone(), workspace, options, events.clone())?.run().await
}
