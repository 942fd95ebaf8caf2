//! Containers: records in `containers.db`, root filesystems as overlays over the
//! image's snapshots, processes run by the OCI runtime (crun; runc works too) under a
//! per-container `berth-monitor` that owns stdio, the json-file log and the exit
//! status, so containers outlive an engine restart and are adopted again.
//!
//! Layout under `<root>/containers/<id>/`: `config.json` (the OCI bundle's config),
//! `rootfs/` (the overlay mount), `upper/` and `work/` (the writable layer),
//! `files/` (hosts, hostname, resolv.conf), and what the monitor writes:
//! `container.log`, `exit.json`, `monitor.pid`, `init.pid`, `runtime.log`,
//! `attach.sock`.

pub mod attach;
pub mod caps;
pub mod changes;
mod commit;
pub mod copy;
mod create;
pub mod detach;
mod exec;
mod exit;
pub mod health;
pub mod inspect;
mod lifecycle;
pub mod logs;
mod netconnect;
pub mod record;
pub mod rootfs;
mod runnable;
pub mod seccomp;
pub mod signal;
pub mod spec;
pub mod stats;
mod update;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_proto::ErrorKind;

pub use changes::ChangeKind;
pub use commit::CommitOptions;
pub use create::{CreateRequest, MountRequest};
pub use exec::{resize_terminal, ExecInfo, ExecRequest, ExecSession, ExecStreams};
pub use logs::{LogLine, LogsQuery};
pub use record::{ContainerRecord, Status, Store, StoreError};
pub use update::UpdateRequest;

use crate::events::EventBus;
use crate::image::Images;

/// Every container operation's error. Messages follow docker's where users know them.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("No such container: {0}")]
    NotFound(String),
    #[error("multiple containers ({1}) match the prefix {0:?}")]
    Ambiguous(String, usize),
    #[error("no such image: {0}")]
    NoImage(String),
    #[error("No such exec instance: {0}")]
    NoExec(String),
    #[error("could not find the file {path} in container {container}")]
    NoPath { path: String, container: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("container {0} is paused, unpause the container before stopping or killing it")]
    Paused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Rootfs(#[from] rootfs::RootfsError),
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error(transparent)]
    Image(#[from] crate::image::CatalogError),
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    #[error(transparent)]
    Commit(#[from] crate::image::CommitError),
    #[error(transparent)]
    Trust(#[from] crate::image::TrustError),
    #[error("the OCI runtime failed: {0}")]
    Runtime(String),
    /// The command is nowhere or cannot be run, as the container's files show.
    #[error("{}", .0.message)]
    CannotRun(runnable::NotRunnable),
    #[error("cannot {what}")]
    Io { what: String, source: std::io::Error },
}

impl ContainerError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ContainerError::NotFound(_) | ContainerError::NoExec(_) | ContainerError::NoImage(_) | ContainerError::NoPath { .. } => ErrorKind::NotFound,
            ContainerError::Ambiguous(..) | ContainerError::Invalid(_) | ContainerError::CannotRun(_) => ErrorKind::InvalidArgument,
            ContainerError::Conflict(_) | ContainerError::NotRunning(_) | ContainerError::Paused(_) => ErrorKind::Conflict,
            ContainerError::Store(e) => e.kind(),
            ContainerError::Rootfs(e) => e.kind(),
            ContainerError::Network(e) => e.kind(),
            ContainerError::Commit(e) => e.kind(),
            ContainerError::Trust(e) => e.kind(),
            ContainerError::Runtime(_) | ContainerError::Spec(_) | ContainerError::Image(_) | ContainerError::Io { .. } => ErrorKind::Internal,
        }
    }

    /// The same failure, for another party waiting on the operation (its kind and words
    /// kept; the runtime's own words not wrapped twice).
    fn for_waiter(&self) -> ContainerError {
        match self {
            ContainerError::CannotRun(why) => ContainerError::CannotRun(why.clone()),
            ContainerError::Runtime(inner) => ContainerError::Runtime(inner.clone()),
            other => match other.kind() {
                ErrorKind::InvalidArgument => ContainerError::Invalid(other.to_string()),
                ErrorKind::Conflict => ContainerError::Conflict(other.to_string()),
                _ => ContainerError::Runtime(other.to_string()),
            },
        }
    }

    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ContainerError {
        let what = what.into();
        move |source| ContainerError::Io { what, source }
    }
}

/// How the engine runs containers.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The runtimes `--runtime` may name, the default first (`crun`, or `BERTH_RUNTIME`,
    /// named by its file name), then runc when it is installed.
    pub runtimes: Vec<(String, PathBuf)>,
    /// `berth-monitor` (next to the engine's binary, or `BERTH_MONITOR`).
    pub monitor: PathBuf,
    /// The init `--init` runs at PID 1: `BERTH_INIT`, else the monitor when it is
    /// statically linked (it has an init mode and then runs in any image), else a static
    /// `docker-init` or `tini-static` on the PATH.
    pub init: Option<PathBuf>,
    /// In the VM, the host folders shared into it (`BERTH_SHARES`, `:`-separated): a
    /// bind source must be inside one. Empty natively: every host path is there.
    pub shares: Vec<PathBuf>,
    /// What `host-gateway` and `host.docker.internal` stand for when set
    /// (`BERTH_HOST_GATEWAY_IP`; in the VM the host's loopback as QEMU offers it);
    /// otherwise the container network's gateway.
    pub host_gateway: Option<std::net::Ipv4Addr>,
    /// In the VM, where the host's end of the engine's Docker socket is
    /// (`BERTH_HOST_DOCKER_SOCKET`): a bind of it is a bind of the engine's own socket.
    pub host_docker_socket: Option<PathBuf>,
    /// The VM's host is Windows (`BERTH_HOST_OS=windows`): docker's `/c/src` spelling
    /// of `C:\src` is read as a Windows path too.
    pub windows_host: bool,
}

impl RuntimeConfig {
    pub fn from_env() -> RuntimeConfig {
        let runtime = std::env::var_os("BERTH_RUNTIME").map(PathBuf::from).unwrap_or_else(|| find_in_path("crun"));
        let monitor = std::env::var_os("BERTH_MONITOR").map(PathBuf::from).unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(|dir| dir.join("berth-monitor")))
                .filter(|p| p.exists())
                .unwrap_or_else(|| find_in_path("berth-monitor"))
        });
        // A static init found on the host serves too: dockerd's own (`docker-init`) or
        // tini's static build (Debian's `tini` package), both called as docker calls them.
        let init = std::env::var_os("BERTH_INIT").map(PathBuf::from).or_else(|| {
            std::iter::once(monitor.clone()).chain(["docker-init", "tini-static"].into_iter().map(find_in_path)).find(|candidate| is_static_elf(candidate))
        });
        let shares = std::env::var("BERTH_SHARES").unwrap_or_default().split(':').filter(|s| s.starts_with('/')).map(PathBuf::from).collect();
        let host_gateway = std::env::var("BERTH_HOST_GATEWAY_IP").ok().and_then(|ip| ip.parse().ok());
        let default_name = runtime.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "crun".to_owned());
        let mut runtimes = vec![(default_name, runtime)];
        for name in KNOWN_RUNTIMES {
            let path = find_in_path(name);
            if !runtimes.iter().any(|(known, _)| known == name) && path.is_file() {
                runtimes.push(((*name).to_owned(), path));
            }
        }
        let host_docker_socket = std::env::var_os("BERTH_HOST_DOCKER_SOCKET").filter(|s| !s.is_empty()).map(PathBuf::from);
        let windows_host = std::env::var("BERTH_HOST_OS").is_ok_and(|os| os == "windows");
        RuntimeConfig { runtimes, monitor, init, shares, host_gateway, host_docker_socket, windows_host }
    }

    /// The default runtime's name (what inspect says when `--runtime` was not given).
    pub fn default_name(&self) -> &str {
        &self.runtimes[0].0
    }

    /// The runtime `--runtime NAME` names ("" for the default), or docker's refusal, or
    /// the reason a runtime Berth knows is not installed where the engine runs.
    pub fn resolve(&self, name: &str) -> Result<(&str, &Path), String> {
        let name = if name.is_empty() { self.default_name() } else { name };
        if let Some((known, path)) = self.runtimes.iter().find(|(known, _)| known == name) {
            return Ok((known, path));
        }
        if KNOWN_RUNTIMES.contains(&name) {
            return Err(format!("the runtime {name} is not installed where Berth's engine runs (available: {})", self.names().join(", ")));
        }
        Err(format!("Unknown runtime specified {name}"))
    }

    /// The names of the runtimes `--runtime` may take, the default first.
    pub fn names(&self) -> Vec<&str> {
        self.runtimes.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// The bind source as the engine sees it: a Windows host path is the VM's path of
    /// its drive's share (`C:\src` is `/mnt/host/c/src`), and the host's end of the
    /// engine's Docker socket is the engine's own socket (in the VM, `/var/run/docker.sock`).
    pub fn bind_source(&self, source: &str) -> String {
        match &self.host_docker_socket {
            Some(host) if Path::new(source) == host => VM_DOCKER_SOCKETS[0].to_owned(),
            _ => berth_proto::mounts::windows_path_in_vm(source, self.windows_host).unwrap_or_else(|| source.to_owned()),
        }
    }

    /// Refuses a bind source the engine cannot see as the user's: in the VM, one
    /// outside every share would be an empty folder of the VM's, never the user's
    /// files. The engine's own socket is the VM's, as on Docker Desktop.
    pub fn check_bind_source(&self, source: &str) -> Result<(), String> {
        if self.shares.is_empty() || VM_DOCKER_SOCKETS.contains(&source) || self.shares.iter().any(|s| Path::new(source).starts_with(s)) {
            return Ok(());
        }
        let shares: Vec<String> = self.shares.iter().map(|s| s.display().to_string()).collect();
        Err(format!(
            "mounts denied: the path {source} is not shared from the host into Berth's VM; shared folders: {} (add one with `berth settings set shares`)",
            shares.join(", ")
        ))
    }
}

/// The engine's Docker API socket in the VM (the agent binds the second; the image
/// links the first to it), as on Docker Desktop.
const VM_DOCKER_SOCKETS: &[&str] = &["/var/run/docker.sock", "/run/docker.sock"];

/// The OCI runtimes Berth can drive (their command lines are alike).
const KNOWN_RUNTIMES: &[&str] = &["crun", "runc"];

/// Whether `path` is an ELF executable without a program interpreter (static).
fn is_static_elf(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else { return false };
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap_or([0; 8])) as usize;
    let (entsize, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).all(|i| {
        let at = phoff + i * entsize;
        bytes.get(at..at + 4).is_some_and(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]) != 3)
    })
}

fn find_in_path(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|p| p.is_file()))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Facts about the machine that shape every container's config.
#[derive(Debug, Clone)]
struct HostFacts {
    held_caps: BTreeSet<String>,
    cgroup_v2: bool,
    swap_accounting: bool,
    cpus: usize,
    /// What block I/O settings the kernel's controller takes.
    blkio: spec::BlkioSupport,
    /// overlay writes no metadata-only copies or directory redirects (module
    /// parameters), so an upper folder reads the same under any stack.
    plain_overlay_upper: bool,
    /// `/` is the initramfs (the VM): pivot_root cannot leave it, so the runtime is
    /// told `--no-pivot` (as docker's DOCKER_RAMDISK does). The VM holds nothing but
    /// the engine and its containers.
    root_is_ramfs: bool,
}

impl HostFacts {
    fn probe() -> HostFacts {
        let cgroup_v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let swap_accounting = if cgroup_v2 { true } else { Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() };
        HostFacts {
            held_caps: caps::held(),
            cgroup_v2,
            swap_accounting,
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            blkio: spec::BlkioSupport::probe(cgroup_v2),
            plain_overlay_upper: {
                let param =
                    |name: &str| std::fs::read_to_string(format!("/sys/module/overlay/parameters/{name}")).map(|v| v.trim().to_owned()).unwrap_or_default();
                param("metacopy") == "N" && matches!(param("redirect_dir").as_str(), "N" | "off" | "follow" | "nofollow")
            },
            root_is_ramfs: std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|info| {
                info.lines().any(|l| {
                    let fields: Vec<&str> = l.split(' ').collect();
                    let fstype = fields.iter().position(|f| *f == "-").and_then(|i| fields.get(i + 1)).copied();
                    fields.get(4) == Some(&"/") && fstype == Some("rootfs")
                })
            }),
        }
    }
}

/// Callers waiting for a container's live output from its first byte (docker's
/// attach-then-start).
type PendingAttach = tokio::sync::oneshot::Sender<Result<std::os::unix::net::UnixStream, ContainerError>>;

/// The engine's containers.
#[derive(Debug)]
pub struct Containers {
    root: PathBuf,
    runtime_root: PathBuf,
    store: Store,
    images: Arc<Images>,
    volumes: Arc<crate::volume::Volumes>,
    networks: Arc<crate::network::Networks>,
    events: Arc<EventBus>,
    runtime: RuntimeConfig,
    facts: HostFacts,
    /// One lock per container: state changes of one container never interleave.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Container ids whose state changed (feeds `wait` and `logs -f`).
    changes: tokio::sync::broadcast::Sender<String>,
    pending_attach: Mutex<HashMap<String, Vec<PendingAttach>>>,
    /// Exec sessions, whichever API made them.
    execs: exec::ExecSessions,
    /// The last exit codes of removed containers, for `wait --condition removed`
    /// callers that see the record gone (bounded).
    removed_exit_codes: Mutex<std::collections::VecDeque<(String, i32)>>,
}

impl Containers {
    /// Opens `<root>/containers.db` and `<root>/containers/`. Call [`Containers::recover`]
    /// once the engine runs, to adopt the containers that kept running.
    pub fn open(
        root: &Path,
        images: Arc<Images>,
        volumes: Arc<crate::volume::Volumes>,
        networks: Arc<crate::network::Networks>,
        events: Arc<EventBus>,
        runtime: RuntimeConfig,
    ) -> Result<Containers, ContainerError> {
        let dir = root.join("containers");
        std::fs::create_dir_all(&dir).map_err(ContainerError::io(format!("create {}", dir.display())))?;
        let runtime_root = root.join("runtime");
        std::fs::create_dir_all(&runtime_root).map_err(ContainerError::io(format!("create {}", runtime_root.display())))?;
        let store = Store::open(&root.join("containers.db"))?;
        let (changes, _) = tokio::sync::broadcast::channel(1024);
        let containers = Containers {
            root: dir,
            runtime_root,
            store,
            images,
            volumes,
            networks,
            events,
            runtime,
            facts: HostFacts::probe(),
            locks: Mutex::new(HashMap::new()),
            changes,
            pending_attach: Mutex::new(HashMap::new()),
            execs: exec::ExecSessions::default(),
            removed_exit_codes: Mutex::new(std::collections::VecDeque::new()),
        };
        containers.sweep_unfinished_creates();
        for record in containers.store.list()? {
            containers.images.mark_used(&record.image_id, &record.id);
            for mount in record.host_config.mounts.iter().filter(|m| m.kind == "volume") {
                containers.volumes.mark_used(&mount.source, &record.id);
                if record.state.status.is_running() {
                    containers.volumes.note_mounted_for(&mount.source, &record.id);
                }
            }
        }
        Ok(containers)
    }

    /// The images containers are made from (the builder commits its steps there).
    pub fn images(&self) -> &Arc<Images> {
        &self.images
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The container's directory.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// The container's cgroup, relative to each hierarchy's root: under Berth's own, or
    /// under its `--cgroup-parent` (absolute or not, from the root, as dockerd's
    /// cgroupfs driver places it).
    pub fn cgroup_path(record: &ContainerRecord) -> String {
        let parent = record.host_config.extras.cgroup_parent.trim_matches('/');
        if parent.is_empty() {
            format!("/berth/{}", record.id)
        } else {
            format!("/{parent}/{}", record.id)
        }
    }

    fn lock_of(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id.to_owned()).or_default().clone()
    }

    /// Finds a container by id, name or unique id prefix.
    pub fn find(&self, key: &str) -> Result<ContainerRecord, ContainerError> {
        match self.store.find(key)? {
            Ok(Some(record)) => Ok(record),
            Ok(None) => Err(ContainerError::NotFound(key.to_owned())),
            Err(n) => Err(ContainerError::Ambiguous(key.to_owned(), n)),
        }
    }

    /// A fresh file name in the engine's `tmp/` (for archives passing through).
    pub fn scratch_file(&self, what: &str) -> PathBuf {
        self.images.scratch_file(what)
    }

    pub fn list(&self) -> Result<Vec<ContainerRecord>, ContainerError> {
        Ok(self.store.list()?)
    }

    fn changed(&self, id: &str) {
        let _ = self.changes.send(id.to_owned());
    }

    fn publish(&self, record: &ContainerRecord, action: &str, extra: &[(&str, String)]) {
        let mut attributes: Vec<(String, String)> =
            vec![("id".to_owned(), record.id.clone()), ("name".to_owned(), record.name.clone()), ("image".to_owned(), record.config.image.clone())];
        for (key, value) in &record.config.labels {
            attributes.push((key.clone(), value.clone()));
        }
        for (key, value) in extra {
            attributes.push(((*key).to_owned(), value.clone()));
        }
        self.events.publish("container", action, attributes);
    }

    /// The OCI runtime that runs `record` (its `--runtime`, else the default) and that
    /// runtime's state folder. Each runtime keeps its state apart: the default's in
    /// `<root>/runtime`, another's in `<root>/runtime-NAME`.
    fn oci_runtime(&self, record: &ContainerRecord) -> (PathBuf, PathBuf) {
        let name = &record.host_config.extras.runtime;
        match self.runtime.resolve(name) {
            Ok((resolved, path)) if resolved == self.runtime.default_name() => (path.to_owned(), self.runtime_root.clone()),
            Ok((resolved, path)) => (path.to_owned(), self.runtime_root.with_file_name(format!("runtime-{resolved}"))),
            // One uninstalled since create: its calls fail in its name.
            Err(_) => (PathBuf::from(name), self.runtime_root.with_file_name(format!("runtime-{name}"))),
        }
    }

    fn runtime_command(&self, record: &ContainerRecord) -> tokio::process::Command {
        let (path, root) = self.oci_runtime(record);
        let mut command = tokio::process::Command::new(path);
        command.arg("--root").arg(root);
        command.stdin(std::process::Stdio::null());
        command
    }

    /// Runs `<runtime> --root R <args>` for `record`; the error carries the runtime's own
    /// message.
    async fn runtime(&self, record: &ContainerRecord, args: &[&str]) -> Result<(), ContainerError> {
        let mut command = self.runtime_command(record);
        let path = PathBuf::from(command.as_std().get_program());
        let output = command.args(args).output().await.map_err(|e| ContainerError::Runtime(format!("cannot run {}: {e}", path.display())))?;
        if output.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            Err(ContainerError::Runtime(format!("{} {}: {}", path.display(), args.join(" "), stderr.trim())))
        }
    }

    /// Whether the runtime still holds state for `record` (a crash left it).
    fn runtime_state_exists(&self, record: &ContainerRecord) -> bool {
        self.oci_runtime(record).1.join(&record.id).exists()
    }

    /// What a create succeeded with but could not give as asked (docker's `Warnings`).
    pub fn create_warnings(&self, record: &ContainerRecord) -> Vec<String> {
        let mut warnings = Vec::new();
        if record.host_config.resources.memory > 0 && record.host_config.resources.memory_swap != 0 && !self.facts.swap_accounting {
            warnings.push("your kernel does not support swap limit capabilities or the cgroup is not mounted; memory limited without swap".to_owned());
        }
        // dockerd's words for what the block I/O controller cannot apply here.
        let blkio = &record.host_config.extras.blkio;
        if !self.facts.blkio.weight {
            if blkio.weight > 0 {
                warnings.push("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.".to_owned());
            }
            if !blkio.weight_device.is_empty() {
                warnings.push("Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.".to_owned());
            }
        }
        if !self.facts.blkio.throttle {
            for (list, what) in [
                (&blkio.read_bps, "BPS Block I/O read"),
                (&blkio.write_bps, "BPS Block I/O write"),
                (&blkio.read_iops, "IOPS Block I/O read"),
                (&blkio.write_iops, "IOPS Block I/O write"),
            ] {
                if !list.is_empty() {
                    warnings.push(format!("Your kernel does not support {what} limit or the cgroup is not mounted. Block I/O limit discarded."));
                }
            }
        }
        if record.host_config.extras.oom_kill_disable && self.facts.cgroup_v2 {
            warnings.push("Your kernel does not support OomKillDisable. OomKillDisable discarded.".to_owned());
        } else if record.host_config.extras.oom_kill_disable && record.host_config.resources.memory == 0 {
            warnings.push(
                "OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".to_owned(),
            );
        }
        warnings
    }

    /// The runtimes `--runtime` may name and their binaries, the default first.
    pub fn runtimes(&self) -> &[(String, PathBuf)] {
        &self.runtime.runtimes
    }
}

pub(crate) use crate::ids::new_id;
pub use crate::time::now_rfc3339;
