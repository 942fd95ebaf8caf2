//! The VM's lifecycle: QEMU with direct kernel boot, vsock to the agent, QMP to stop it.
//!
//! A VM started by one Berth process (the CLI, the app) is found by any other through
//! its record in `$BERTH_HOME/vm/state.json`.

pub mod accel;
pub mod guest;
pub mod image;
pub mod qemu;
pub mod qmp;
pub mod state;
pub mod status;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use berth_proto::ErrorKind;
use tokio::process::{Child, Command};

use crate::agent::{self, AgentClient, AgentEndpoint, WaitError};
use crate::home::BerthHome;
use accel::{Accel, AccelChoice, Verdict};
pub use image::{Arch, VmImage};
use qemu::{QemuArgs, VsockDevice};
use state::VmRecord;
pub use status::{EngineVersion, VmState};

/// The guest CID when vhost-device-vsock is used (it is private to that device).
const HYBRID_GUEST_CID: u32 = 3;
/// Longest unix socket path we accept (sun_path is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 100;

/// How to start the VM.
#[derive(Debug, Clone)]
pub struct VmConfig {
    pub image: VmImage,
    /// The guest's architecture (`BERTH_VM_ARCH`; the host's by default).
    pub arch: Arch,
    pub qemu: PathBuf,
    /// vsock, or the serial mux where the host has no vsock.
    pub transport: Transport,
    /// vhost-device-vsock, when vsock is used and the host has no vhost-vsock; `None`
    /// uses AF_VSOCK.
    pub vhost_device_vsock: Option<PathBuf>,
    pub accel: AccelChoice,
    pub cpus: u32,
    pub mem_mib: u32,
    /// How long the agent may take to answer under the accelerator that boots.
    pub boot_timeout: Duration,
    /// How long a hardware accelerator may take before it counts as unusable.
    pub hardware_probe_timeout: Duration,
    /// The engine's state disk; without one the state lives in the VM's memory.
    pub data_disk: Option<guest::DataDisk>,
    /// Host folders shared into the VM at the same paths (needs `virtiofsd`).
    pub shares: Vec<PathBuf>,
    /// virtiofs (needs `virtiofsd`) or 9p (QEMU's own).
    pub share_transport: guest::ShareTransport,
    pub share_cache: guest::ShareCache,
    pub virtiofsd: Option<PathBuf>,
    /// The engine's environment in the VM (`BERTH_*` settings).
    pub guest_env: Vec<(String, String)>,
    /// The engine's `daemon.json` in the VM.
    pub daemon_json: Option<serde_json::Value>,
    /// A free-page-reporting balloon.
    pub balloon: bool,
}

impl VmConfig {
    /// The configuration from the environment: `BERTH_VM_IMAGE`, `BERTH_QEMU`,
    /// `BERTH_VHOST_DEVICE_VSOCK`, `BERTH_ACCEL`, `BERTH_VM_CPUS`, `BERTH_VM_MEMORY_MIB`,
    /// `BERTH_BOOT_TIMEOUT_SECS`.
    pub fn from_env() -> Result<VmConfig, StartError> {
        let image = VmImage::locate()?;
        let arch = match std::env::var("BERTH_VM_ARCH") {
            Ok(text) if !text.is_empty() => Arch::parse(&text).map_err(StartError::InvalidConfig)?,
            _ => Arch::host(),
        };
        let qemu = match std::env::var_os("BERTH_QEMU") {
            Some(path) => PathBuf::from(path),
            None => find_program(arch.qemu_program()).ok_or(StartError::QemuMissing { program: arch.qemu_program().to_owned() })?,
        };
        check_arch(arch, &image, &qemu)?;
        let (transport, vhost_device_vsock) = transport_from_env()?;
        let accel = AccelChoice::parse(&std::env::var("BERTH_ACCEL").unwrap_or_default()).map_err(StartError::InvalidConfig)?;
        let number = |name: &str, default: u64| -> Result<u64, StartError> {
            match std::env::var(name) {
                Ok(text) => text.parse().map_err(|_| StartError::InvalidConfig(format!("{name}={text:?} is not a number"))),
                Err(_) => Ok(default),
            }
        };
        Ok(VmConfig {
            image,
            arch,
            qemu,
            transport,
            vhost_device_vsock,
            accel,
            cpus: u32::try_from(number("BERTH_VM_CPUS", 1)?).unwrap_or(1).max(1),
            mem_mib: u32::try_from(number("BERTH_VM_MEMORY_MIB", 1024)?).unwrap_or(1024).max(128),
            boot_timeout: Duration::from_secs(number("BERTH_BOOT_TIMEOUT_SECS", 60)?),
            hardware_probe_timeout: Duration::from_secs(3),
            data_disk: None,
            shares: Vec::new(),
            share_transport: guest::ShareTransport::Virtiofs,
            share_cache: guest::ShareCache::default(),
            virtiofsd: None,
            guest_env: Vec::new(),
            daemon_json: None,
            balloon: false,
        })
    }
}

/// Refuses a VM whose image or QEMU is for another architecture, before anything boots:
/// an arm64 image on qemu-system-x86_64 would hang without a word.
fn check_arch(arch: Arch, image: &VmImage, qemu: &Path) -> Result<(), StartError> {
    if let Some(built) = image.arch().filter(|built| *built != arch) {
        return Err(StartError::InvalidConfig(format!(
            "the VM image in {} is for {built}, but the VM is {arch} (BERTH_VM_ARCH); build one with `cargo xtask vm-image --arch {arch}` or set BERTH_VM_IMAGE",
            image.dir.display()
        )));
    }
    let name = qemu.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let other = [Arch::X86_64, Arch::Arm64].into_iter().find(|a| *a != arch && name.starts_with(a.qemu_program()));
    if let Some(other) = other {
        return Err(StartError::InvalidConfig(format!("{} emulates {other}, but the VM is {arch}: use {}", qemu.display(), arch.qemu_program())));
    }
    Ok(())
}

/// How the host reaches the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// AF_VSOCK, or vhost-device-vsock's unix socket (Linux hosts).
    Vsock,
    /// One virtio-serial port carrying a mux of streams (every host QEMU runs on).
    Serial,
}

/// The transport `BERTH_TRANSPORT` asks for (`vsock`, `serial`, or `auto`: vsock where
/// the host has it, else serial), with the vhost-device-vsock program vsock needs here
/// (`BERTH_VHOST_DEVICE_VSOCK`, else found on PATH) when the kernel has no vhost-vsock.
pub fn transport_from_env() -> Result<(Transport, Option<PathBuf>), StartError> {
    let vhost_program = std::env::var_os("BERTH_VHOST_DEVICE_VSOCK").map(PathBuf::from).or_else(|| find_program("vhost-device-vsock"));
    choose_transport(&std::env::var("BERTH_TRANSPORT").unwrap_or_default(), host_has_vhost_vsock(), vhost_program.filter(|_| cfg!(target_os = "linux")))
}

/// The transport for `asked`, given whether the kernel has vhost-vsock and where
/// vhost-device-vsock is (only Linux runs it).
fn choose_transport(asked: &str, kernel_vsock: bool, vhost_program: Option<PathBuf>) -> Result<(Transport, Option<PathBuf>), StartError> {
    match asked.trim() {
        "vsock" | "" | "auto" if kernel_vsock => Ok((Transport::Vsock, None)),
        "vsock" => Ok((Transport::Vsock, Some(vhost_program.ok_or(StartError::VhostMissing)?))),
        "serial" => Ok((Transport::Serial, None)),
        "" | "auto" => Ok(match vhost_program {
            Some(program) => (Transport::Vsock, Some(program)),
            None => (Transport::Serial, None),
        }),
        other => Err(StartError::InvalidConfig(format!("BERTH_TRANSPORT={other:?}: expected vsock, serial or auto"))),
    }
}

/// Whether the host kernel offers vhost-vsock (else vhost-device-vsock is used).
pub fn host_has_vhost_vsock() -> bool {
    if std::env::var("BERTH_VSOCK").as_deref() == Ok("hybrid") {
        return false;
    }
    cfg!(target_os = "linux") && std::fs::OpenOptions::new().read(true).write(true).open("/dev/vhost-vsock").is_ok()
}

/// Finds a program on PATH, in ~/.cargo/bin (where `cargo install` puts tools), and in
/// the package's own `<bin>/../lib/berth`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    if let Some(bin_dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(|p| p.to_path_buf())) {
        dirs.extend(installed_program_dirs(&bin_dir));
    }
    let file = crate::os::program_file_name(name);
    dirs.into_iter().map(|d| d.join(&file)).find(|p| p.is_file())
}

/// Where each installer puts QEMU and the VM's helpers, from the folder of the running
/// binary: the .deb's `/usr/lib/berth` (`cargo xtask bundle`); the macOS app's
/// `Contents/Resources/qemu/bin` (QEMU finds its data in `../share/qemu` from there);
/// the Windows install folder's `qemu` (QEMU for Windows' own flat layout, its DLLs and
/// data beside it). The installers' resources are in `src-tauri/release`.
pub fn installed_program_dirs(bin_dir: &Path) -> Vec<PathBuf> {
    vec![bin_dir.join("../lib/berth"), bin_dir.join("../Resources/qemu/bin"), bin_dir.join("qemu")]
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("QEMU is not installed: {program} is not on PATH (install QEMU, e.g. `apt install qemu-system-x86`, or set BERTH_QEMU)")]
    QemuMissing { program: String },
    #[error(transparent)]
    ImageMissing(#[from] image::ImageMissing),
    #[error("the host has no vhost-vsock and vhost-device-vsock is not installed (`cargo install vhost-device-vsock`, or set BERTH_VHOST_DEVICE_VSOCK)")]
    VhostMissing,
    #[error("invalid VM configuration: {0}")]
    InvalidConfig(String),
    #[error("the VM is already running (QEMU pid {pid})")]
    AlreadyRunning { pid: u32 },
    #[error("socket path {path} is too long for a unix socket; use a shorter BERTH_HOME")]
    SocketPathTooLong { path: PathBuf },
    #[error("cannot {what}")]
    Io { what: String, source: std::io::Error },
    #[error("vhost-device-vsock did not start: {detail}")]
    VhostFailed { detail: String },
    #[error("QEMU ({accel}) stopped during boot: {reason}\n--- console tail ---\n{console}")]
    QemuExited { accel: &'static str, reason: String, console: String },
    #[error("the agent did not answer within {timeout:?} under {accel} ({last})\n--- console tail ---\n{console}")]
    NoAnswer { accel: &'static str, timeout: Duration, last: String, console: String },
    #[error("the VM could not start its engine: {reason}\n--- console tail ---\n{console}")]
    BootFailed { reason: String, console: String },
    #[error("cannot share {path} with the VM: virtiofsd {detail}")]
    ShareFailed { path: PathBuf, detail: String },
    #[error("virtiofsd is not installed, so no folder can be shared with the VM (`cargo xtask setup` installs it; or set BERTH_VIRTIOFSD)")]
    VirtiofsdMissing,
}

impl StartError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StartError::QemuMissing { .. } | StartError::ImageMissing(_) | StartError::VhostMissing | StartError::VirtiofsdMissing => ErrorKind::NotFound,
            StartError::InvalidConfig(_) | StartError::SocketPathTooLong { .. } => ErrorKind::InvalidArgument,
            StartError::AlreadyRunning { .. } => ErrorKind::Conflict,
            StartError::QemuExited { .. }
            | StartError::NoAnswer { .. }
            | StartError::VhostFailed { .. }
            | StartError::BootFailed { .. }
            | StartError::ShareFailed { .. } => ErrorKind::Unavailable,
            StartError::Io { .. } => ErrorKind::Internal,
        }
    }

    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartError {
        let what = what.into();
        move |source| StartError::Io { what, source }
    }
}

/// Files of the VM in `$BERTH_HOME/vm`.
#[derive(Debug, Clone)]
pub struct VmPaths {
    pub dir: PathBuf,
    pub state: PathBuf,
    pub lock: PathBuf,
    pub qmp: PathBuf,
    pub vhost_socket: PathBuf,
    pub vsock_uds: PathBuf,
    /// The serial mux's host end (QEMU listens on it).
    pub mux_socket: PathBuf,
    /// The session's gRPC proxy: how other processes reach a VM on the serial mux.
    pub grpc_proxy: PathBuf,
    pub console_log: PathBuf,
    pub qemu_log: PathBuf,
    pub vhost_log: PathBuf,
    pub verdicts: PathBuf,
    /// The engine's state disk.
    pub data_disk: PathBuf,
    /// The guest's boot settings and daemon.json, passed through fw_cfg.
    pub boot_conf: PathBuf,
    pub daemon_json: PathBuf,
}

impl VmPaths {
    pub fn new(home: &BerthHome) -> VmPaths {
        let dir = home.vm_dir();
        VmPaths {
            state: dir.join("state.json"),
            lock: dir.join("lock"),
            qmp: dir.join("qmp.sock"),
            vhost_socket: dir.join("vhost.sock"),
            vsock_uds: dir.join("vsock.sock"),
            mux_socket: dir.join("mux.sock"),
            grpc_proxy: home.grpc_socket(),
            console_log: dir.join("console.log"),
            qemu_log: dir.join("qemu.log"),
            vhost_log: dir.join("vhost-device-vsock.log"),
            verdicts: dir.join("accel-verdicts.json"),
            data_disk: dir.join("data.img"),
            boot_conf: dir.join("boot.conf"),
            daemon_json: dir.join("daemon.json"),
            dir,
        }
    }
}

/// A VM this process started: its record, its child processes and a connected client.
#[derive(Debug)]
pub struct RunningVm {
    pub record: VmRecord,
    /// The serial transport's mux, held by the process that runs the VM.
    mux: Option<berth_proto::mux::MuxClient>,
    pub client: AgentClient,
    pub engine: EngineVersion,
    /// From QEMU's start to the agent's first answer.
    pub boot_time: Duration,
    qemu: Child,
    vhost: Option<Child>,
    virtiofsd: Vec<Child>,
}

impl RunningVm {
    pub fn endpoint(&self) -> AgentEndpoint {
        match &self.mux {
            Some(mux) => AgentEndpoint::Serial { mux: mux.clone(), port: berth_proto::AGENT_VSOCK_PORT },
            None => endpoint_of(&self.record),
        }
    }

    /// Whether QEMU is still running (reaps it if it exited).
    pub fn qemu_alive(&mut self) -> bool {
        matches!(self.qemu.try_wait(), Ok(None))
    }

    /// Lets the VM outlive this process (the CLI's `vm start`): the children are no
    /// longer waited for here.
    pub fn detach(self) -> VmRecord {
        self.record
    }

    /// The state to show for this VM.
    pub fn ready_state(&self) -> VmState {
        VmState::Ready { accel: self.record.accel.as_str().to_owned(), engine: self.engine.clone() }
    }

    /// Waits for the child processes after a stop, so none is left a zombie.
    pub async fn reap(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.qemu.wait()).await;
        if let Some(vhost) = self.vhost.as_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(5), vhost.wait()).await;
        }
        for child in &mut self.virtiofsd {
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        }
    }

    /// Why QEMU is gone, once it is (reaped here); `None` while it runs.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.qemu.try_wait().ok().flatten()
    }
}

/// The agent endpoint of a recorded VM.
pub fn endpoint_of(record: &VmRecord) -> AgentEndpoint {
    if let Some(proxy) = &record.serial_proxy {
        // The process that runs the VM holds its mux; every other one goes through the
        // session's socket.
        return match record.mux_socket.as_deref().and_then(held_mux) {
            Some(mux) => AgentEndpoint::Serial { mux, port: berth_proto::AGENT_VSOCK_PORT },
            None => AgentEndpoint::Unix(proxy.clone()),
        };
    }
    match (&record.vsock_uds, record.guest_cid) {
        (Some(uds), _) => AgentEndpoint::HybridVsock { uds: uds.clone(), port: berth_proto::AGENT_VSOCK_PORT },
        (None, Some(cid)) => AgentEndpoint::Vsock { cid, port: berth_proto::AGENT_VSOCK_PORT },
        (None, None) => AgentEndpoint::HybridVsock { uds: PathBuf::from("/nonexistent"), port: berth_proto::AGENT_VSOCK_PORT },
    }
}

/// The serial muxes this process holds, by their socket.
static HELD_MUXES: std::sync::Mutex<Vec<(PathBuf, berth_proto::mux::WeakMuxClient)>> = std::sync::Mutex::new(Vec::new());

fn held_mux(socket: &Path) -> Option<berth_proto::mux::MuxClient> {
    let mut held = HELD_MUXES.lock().unwrap_or_else(|e| e.into_inner());
    held.retain(|(_, weak)| weak.upgrade().is_some());
    held.iter().find(|(path, _)| path == socket).and_then(|(_, weak)| weak.upgrade())
}

fn hold_mux(socket: &Path, mux: &berth_proto::mux::MuxClient) {
    let mut held = HELD_MUXES.lock().unwrap_or_else(|e| e.into_inner());
    held.retain(|(path, weak)| weak.upgrade().is_some() && path != socket);
    held.push((socket.to_owned(), mux.downgrade()));
}

/// Boots the VM and waits until the agent answers. `on_state` hears each state change.
pub async fn start(home: &BerthHome, config: &VmConfig, mut on_state: impl FnMut(&VmState)) -> Result<RunningVm, StartError> {
    let paths = VmPaths::new(home);
    std::fs::create_dir_all(&paths.dir).map_err(StartError::io(format!("create {}", paths.dir.display())))?;
    // QMP, vhost-user and the vsock's unix socket are made by QEMU and
    // vhost-device-vsock with their own umask: the folder is what keeps them the user's.
    crate::os::make_private(&paths.dir).map_err(StartError::io(format!("make {} private", paths.dir.display())))?;
    for socket in [&paths.qmp, &paths.vhost_socket, &paths.vsock_uds, &paths.mux_socket] {
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(StartError::SocketPathTooLong { path: socket.clone() });
        }
    }
    let _lock = crate::os::FileLock::acquire(&paths.lock, "another Berth process is starting the VM").map_err(StartError::io("lock the VM directory"))?;
    if let Some(record) = state::load(&paths.state).map_err(StartError::io("read the VM state"))? {
        if state::process_alive(record.qemu_pid, "qemu") {
            return Err(StartError::AlreadyRunning { pid: record.qemu_pid });
        }
        // A VM that died without us: clear what it left.
        for problem in cleanup(&paths, Some(&record)).await {
            tracing::warn!(%problem, "cleanup of a dead VM");
        }
    }

    let kernel_id = accel::kernel_id(&config.image.kernel);
    let mut verdicts = load_verdicts(&paths.verdicts);
    let candidates = accel::candidates(config.accel, &kernel_id, &verdicts);
    let mut last_error = None;
    for accel in candidates {
        let probing = accel.is_hardware() && config.accel == AccelChoice::Auto;
        let timeout = if probing { config.hardware_probe_timeout } else { config.boot_timeout };
        on_state(&VmState::Booting { accel: accel.as_str().to_owned() });
        match boot_once(&paths, config, accel, timeout).await {
            Ok(vm) => {
                if let Some(disk) = &config.data_disk {
                    disk.made();
                }
                on_state(&vm.ready_state());
                return Ok(vm);
            }
            Err(err @ (StartError::QemuExited { .. } | StartError::NoAnswer { .. })) if probing => {
                tracing::warn!(accel = accel.as_str(), error = %err, "accelerator unusable, falling back");
                verdicts.push(Verdict { accel, kernel_id: kernel_id.clone(), reason: first_line(&err.to_string()) });
                let _ = std::fs::write(&paths.verdicts, serde_json::to_vec_pretty(&verdicts).unwrap_or_default());
                last_error = Some(err);
            }
            Err(err) => {
                on_state(&VmState::Error { reason: err.to_string() });
                return Err(err);
            }
        }
    }
    let err = last_error.unwrap_or(StartError::InvalidConfig("no accelerator to try".into()));
    on_state(&VmState::Error { reason: err.to_string() });
    Err(err)
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

fn load_verdicts(path: &Path) -> Vec<Verdict> {
    std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

async fn boot_once(paths: &VmPaths, config: &VmConfig, accel: Accel, timeout: Duration) -> Result<RunningVm, StartError> {
    // The console log too: the previous boot's lines must not look like this boot's.
    for stale in [&paths.qmp, &paths.vhost_socket, &paths.vsock_uds, &paths.mux_socket, &paths.console_log] {
        let _ = std::fs::remove_file(stale);
    }
    let started = Instant::now();
    // The shares first: a bad one is refused before the disk is made.
    let shares = guest::shares(paths, &config.shares)?;
    if !shares.is_empty() && config.share_transport == guest::ShareTransport::NineP && config.image.has_module("9p") == Some(false) {
        return Err(StartError::InvalidConfig(
            "this VM image's kernel has no 9p (Debian's cloud kernel): share over virtiofs (`cargo xtask setup` installs virtiofsd), or build an image with `cargo xtask vm-image --kernel generic`".into(),
        ));
    }
    let fresh_disk = match &config.data_disk {
        Some(disk) => Some(disk.prepare()?),
        None => None,
    };
    let conf = guest::boot_conf(fresh_disk, &shares, config.share_transport, &config.guest_env)?;
    std::fs::write(&paths.boot_conf, conf).map_err(StartError::io("write the VM's boot settings"))?;
    let mut fw_cfg = vec![("opt/berth/boot.conf".to_owned(), paths.boot_conf.clone())];
    if let Some(daemon) = &config.daemon_json {
        std::fs::write(&paths.daemon_json, serde_json::to_vec_pretty(daemon).unwrap_or_default()).map_err(StartError::io("write the engine's settings"))?;
        fw_cfg.push(("opt/berth/daemon.json".to_owned(), paths.daemon_json.clone()));
    }
    let mut virtiofsd = Vec::new();
    if !shares.is_empty() && config.share_transport == guest::ShareTransport::Virtiofs {
        let program = config.virtiofsd.as_ref().ok_or(StartError::VirtiofsdMissing)?;
        virtiofsd = guest::spawn_virtiofsd(program, paths, &shares, config.share_cache).await?;
    }
    let mut vhost = None;
    let vsock = match &config.vhost_device_vsock {
        _ if config.transport == Transport::Serial => VsockDevice::None,
        Some(program) => {
            match spawn_vhost(program, paths).await {
                Ok(child) => vhost = Some(child),
                Err(err) => {
                    guest::kill_all(&mut virtiofsd).await;
                    return Err(err);
                }
            }
            VsockDevice::VhostUser { socket: paths.vhost_socket.clone() }
        }
        None => VsockDevice::Kernel { guest_cid: pick_guest_cid() },
    };
    let guest_cid = match vsock {
        VsockDevice::Kernel { guest_cid } => Some(guest_cid),
        VsockDevice::VhostUser { .. } | VsockDevice::None => None,
    };
    let args = QemuArgs {
        accel,
        cpus: config.cpus,
        mem_mib: config.mem_mib,
        kernel: config.image.kernel.clone(),
        initrd: config.image.initrd.clone(),
        cmdline: format!("console={} quiet panic=-1 rdinit=/init", config.arch.console()),
        arch: config.arch,
        qmp_socket: paths.qmp.clone(),
        console_log: paths.console_log.clone(),
        vsock,
        serial_mux: (config.transport == Transport::Serial).then(|| paths.mux_socket.clone()),
        host_pipes: cfg!(windows),
        user_network: true,
        data_disk: config.data_disk.as_ref().map(|d| d.path.clone()),
        shares: shares
            .iter()
            .map(|s| {
                let device = match config.share_transport {
                    guest::ShareTransport::Virtiofs => qemu::ShareDevice::Virtiofs { socket: s.socket.clone() },
                    guest::ShareTransport::NineP => qemu::ShareDevice::NineP { path: s.path.clone() },
                };
                (s.tag.clone(), device)
            })
            .collect(),
        fw_cfg,
        balloon: config.balloon,
    };
    let qemu_log = std::fs::File::create(&paths.qemu_log).map_err(StartError::io("create the QEMU log"))?;
    let qemu_log_err = qemu_log.try_clone().map_err(StartError::io("open the QEMU log"))?;
    let mut command = Command::new(&config.qemu);
    command.args(args.to_args()).stdin(Stdio::null()).stdout(qemu_log).stderr(qemu_log_err);
    // Its own process group: a Ctrl-C meant for the CLI does not kill the VM.
    crate::os::own_process_group(&mut command);
    let qemu = match command.spawn() {
        Ok(child) => child,
        Err(source) => {
            if let Some(mut v) = vhost {
                let _ = v.kill().await;
            }
            guest::kill_all(&mut virtiofsd).await;
            return Err(StartError::Io { what: format!("run {}", config.qemu.display()), source });
        }
    };
    let record = VmRecord {
        qemu_pid: qemu.id().unwrap_or(0),
        vhost_pid: vhost.as_ref().and_then(Child::id),
        virtiofsd_pids: virtiofsd.iter().filter_map(Child::id).collect(),
        accel,
        qmp_socket: paths.qmp.clone(),
        vsock_uds: config.vhost_device_vsock.as_ref().filter(|_| config.transport == Transport::Vsock).map(|_| paths.vsock_uds.clone()),
        guest_cid,
        serial_proxy: (config.transport == Transport::Serial).then(|| paths.grpc_proxy.clone()),
        mux_socket: (config.transport == Transport::Serial).then(|| paths.mux_socket.clone()),
        console_log: paths.console_log.clone(),
        started_unix_ms: state::now_unix_ms(),
    };
    let mut vm_children = Children { qemu, vhost, virtiofsd };
    if let Err(source) = state::save(&paths.state, &record) {
        vm_children.kill().await;
        return Err(StartError::Io { what: "write the VM state".into(), source });
    }

    // On the serial transport this process holds the mux; others use its proxies.
    let mux = (config.transport == Transport::Serial).then(|| {
        let socket = paths.mux_socket.clone();
        let mux = berth_proto::mux::MuxClient::start(move || {
            let socket = socket.clone();
            async move { berth_proto::ipc::connect(&socket).await }
        });
        hold_mux(&paths.mux_socket, &mux);
        mux
    });
    let endpoint = match &mux {
        Some(mux) => AgentEndpoint::Serial { mux: mux.clone(), port: berth_proto::AGENT_VSOCK_PORT },
        None => endpoint_of(&record),
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let qemu_log_path = paths.qemu_log.clone();
    // Connect once the agent has said on the console that it listens; should the console
    // never say so (another image), start trying after a few seconds anyway.
    let console = ConsoleWatch::new(&paths.console_log);
    let blind_after = Instant::now() + Duration::from_secs(8);
    let waited = {
        let children = &mut vm_children;
        let console = &console;
        agent::wait_ready(
            &endpoint,
            deadline,
            || {
                children.alive(&qemu_log_path)?;
                // The guest says why it will not start the engine (a damaged data disk).
                match console.line_with(BOOT_FAILED_MARKER) {
                    Some(line) => Err(format!("{BOOT_FAILED_MARKER}{line}")),
                    None => Ok(()),
                }
            },
            || console.contains(berth_proto::AGENT_LISTENING_MARKER) || Instant::now() > blind_after,
        )
        .await
    };
    match waited {
        Ok((client, version)) => {
            // The guest read its time from the RTC, to the second: set it to the host's
            // before anyone asks it the time (`docker events --since`, file times).
            match client.sync_clock(Duration::from_secs(2)).await {
                Ok(answer) if answer.corrected => tracing::info!(offset_ms = answer.offset_nanos / 1_000_000, "the guest clock followed the host's"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot set the guest clock"),
            }
            Ok(RunningVm {
                record,
                mux,
                client,
                engine: version.into(),
                boot_time: started.elapsed(),
                qemu: vm_children.qemu,
                vhost: vm_children.vhost,
                virtiofsd: vm_children.virtiofsd,
            })
        }
        Err(err) => {
            vm_children.kill().await;
            for problem in cleanup(paths, Some(&record)).await {
                tracing::warn!(%problem, "cleanup after a failed boot");
            }
            let mut console = tail(&paths.console_log, 30);
            if config.vhost_device_vsock.is_some() {
                let vhost = tail(&paths.vhost_log, 10);
                if !vhost.is_empty() {
                    console.push_str("\n--- vhost-device-vsock log tail ---\n");
                    console.push_str(&vhost);
                }
            }
            Err(match err {
                WaitError::Gone { reason } if reason.starts_with(BOOT_FAILED_MARKER) => {
                    StartError::BootFailed { reason: reason[BOOT_FAILED_MARKER.len()..].trim().to_owned(), console }
                }
                WaitError::Gone { reason } => StartError::QemuExited { accel: accel.as_str(), reason, console },
                WaitError::Deadline { last } => StartError::NoAnswer { accel: accel.as_str(), timeout, last, console },
            })
        }
    }
}

/// Reads the growing console log from where it last stopped, looking for a line.
struct ConsoleWatch {
    path: PathBuf,
    seen: std::sync::Mutex<(u64, String)>,
}

impl ConsoleWatch {
    fn new(path: &Path) -> ConsoleWatch {
        ConsoleWatch { path: path.to_owned(), seen: std::sync::Mutex::new((0, String::new())) }
    }

    /// The rest of the first line seen that holds `needle`, after it.
    fn line_with(&self, needle: &str) -> Option<String> {
        self.contains(needle);
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let at = seen.1.find(needle)?;
        let rest = &seen.1[at + needle.len()..];
        // Only a whole line: the console may be mid-write.
        let (line, _) = rest.split_once('\n')?;
        Some(line.trim().to_owned())
    }

    fn contains(&self, needle: &str) -> bool {
        use std::io::{Read, Seek, SeekFrom};
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(mut file) = std::fs::File::open(&self.path) {
            let mut fresh = Vec::new();
            if file.seek(SeekFrom::Start(seen.0)).is_ok() && file.read_to_end(&mut fresh).is_ok() {
                seen.0 += fresh.len() as u64;
                seen.1.push_str(&String::from_utf8_lossy(&fresh));
            }
        }
        let found = seen.1.contains(needle);
        // Keep only a tail so a chatty console costs no memory.
        if seen.1.len() > 4096 {
            let cut = seen.1.len() - 1024;
            let cut = (cut..seen.1.len()).find(|i| seen.1.is_char_boundary(*i)).unwrap_or(0);
            seen.1.drain(..cut);
        }
        found
    }
}

/// What the guest's rcS prints when it will not start the engine.
const BOOT_FAILED_MARKER: &str = "BERTH-BOOT-FAILED:";

struct Children {
    qemu: Child,
    vhost: Option<Child>,
    virtiofsd: Vec<Child>,
}

impl Children {
    fn alive(&mut self, qemu_log: &Path) -> Result<(), String> {
        match self.qemu.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => return Err(format!("QEMU exited with {status}: {}", tail(qemu_log, 5))),
            Err(err) => return Err(format!("cannot check QEMU: {err}")),
        }
        if let Some(vhost) = self.vhost.as_mut() {
            if let Ok(Some(status)) = vhost.try_wait() {
                return Err(format!("vhost-device-vsock exited with {status}"));
            }
        }
        Ok(())
    }

    async fn kill(&mut self) {
        let _ = self.qemu.kill().await;
        if let Some(vhost) = self.vhost.as_mut() {
            let _ = vhost.kill().await;
        }
        guest::kill_all(&mut self.virtiofsd).await;
    }
}

async fn spawn_vhost(program: &Path, paths: &VmPaths) -> Result<Child, StartError> {
    let log = std::fs::File::create(&paths.vhost_log).map_err(StartError::io("create the vhost-device-vsock log"))?;
    let log_err = log.try_clone().map_err(StartError::io("open the vhost-device-vsock log"))?;
    let spec = format!("guest-cid={HYBRID_GUEST_CID},socket={},uds-path={}", paths.vhost_socket.display(), paths.vsock_uds.display());
    let mut command = Command::new(program);
    command.args(["--vm", &spec]).stdin(Stdio::null()).stdout(log).stderr(log_err);
    let mut child = crate::os::own_process_group(&mut command).spawn().map_err(StartError::io(format!("run {}", program.display())))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !paths.vhost_socket.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(StartError::VhostFailed { detail: format!("exited with {status}: {}", tail(&paths.vhost_log, 5)) });
        }
        if Instant::now() > deadline {
            let _ = child.kill().await;
            return Err(StartError::VhostFailed { detail: "its socket did not appear within 5s".into() });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(child)
}

fn pick_guest_cid() -> u32 {
    // CIDs 0-2 are reserved; derive one from our pid to avoid clashing with other VMs.
    3 + std::process::id() % 100_000
}

/// The last `lines` lines of a log file, without terminal colour codes.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path).map(|b| strip_ansi(&String::from_utf8_lossy(&b))).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `text` without ANSI escape sequences (the agent's log colours on the console).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, then one final byte in @..~.
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// The VM's state, from its record, QEMU's status and the agent.
pub async fn status(home: &BerthHome) -> VmState {
    let paths = VmPaths::new(home);
    let record = match state::load(&paths.state) {
        Ok(Some(record)) => record,
        Ok(None) => return VmState::Stopped,
        Err(err) => return VmState::Error { reason: format!("cannot read the VM state: {err}") },
    };
    status_of(&paths, &record).await
}

async fn status_of(paths: &VmPaths, record: &VmRecord) -> VmState {
    let gone = || VmState::Error {
        reason: format!("the VM stopped without Berth asking (QEMU pid {} is gone); console tail:\n{}", record.qemu_pid, tail(&paths.console_log, 10)),
    };
    if !state::process_alive(record.qemu_pid, "qemu") {
        return gone();
    }
    let failed = match qmp::Qmp::connect(&record.qmp_socket, Duration::from_secs(2)).await {
        Ok(qmp) => match qmp.query_status().await {
            Ok(run) if run.running => None,
            Ok(run) => return VmState::Error { reason: format!("the VM is {}", run.status) },
            Err(err) => Some(agent::error_chain(&err)),
        },
        Err(err) => Some(agent::error_chain(&err)),
    };
    if let Some(reason) = failed {
        // A QEMU that is dying closes its sockets before its process is gone: give it
        // a moment, so a crash is reported as one and not as a QMP error.
        for _ in 0..25 {
            if !state::process_alive(record.qemu_pid, "qemu") {
                return gone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        return VmState::Error { reason };
    }
    let accel = record.accel.as_str().to_owned();
    let timeout = Duration::from_secs(2);
    match AgentClient::connect(&endpoint_of(record), timeout).await {
        Ok(client) => match client.version(timeout).await {
            Ok(version) => VmState::Ready { accel, engine: version.into() },
            Err(_) => VmState::Booting { accel },
        },
        Err(_) => VmState::Booting { accel },
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error("cannot read the VM state")]
    State(#[source] std::io::Error),
    #[error("stopping the VM left problems: {}", .0.join("; "))]
    Cleanup(Vec<String>),
}

impl StopError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

/// How a stop went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    NotRunning,
    /// The guest powered off after the ACPI power button.
    PoweredOff,
    /// The guest did not power off in time; QEMU was told to quit.
    Quit,
    /// QEMU did not quit either and was killed.
    Killed,
}

/// Stops the VM: ACPI power button, up to `grace` for the guest to power off, then
/// QMP `quit`, then SIGKILL. Cleans up sockets and the record whatever happened.
pub async fn stop(home: &BerthHome, grace: Duration) -> Result<StopOutcome, StopError> {
    let paths = VmPaths::new(home);
    let Some(record) = state::load(&paths.state).map_err(StopError::State)? else {
        return Ok(StopOutcome::NotRunning);
    };
    let pid = record.qemu_pid;
    let gone = || !state::process_alive(pid, "qemu");
    let outcome = if gone() {
        StopOutcome::NotRunning
    } else {
        let qmp = qmp::Qmp::connect(&record.qmp_socket, Duration::from_secs(2)).await.ok();
        let mut outcome = StopOutcome::Killed;
        if let Some(qmp) = &qmp {
            if qmp.system_powerdown().await.is_ok() && wait_until(grace, gone).await {
                outcome = StopOutcome::PoweredOff;
            } else if qmp.quit().await.is_ok() && wait_until(Duration::from_secs(3), gone).await {
                outcome = StopOutcome::Quit;
            }
        }
        if outcome == StopOutcome::Killed {
            crate::os::stop_process(pid, crate::os::Stop::Force);
            wait_until(Duration::from_secs(3), gone).await;
        }
        outcome
    };
    let problems = cleanup(&paths, Some(&record)).await;
    if problems.is_empty() {
        Ok(outcome)
    } else {
        Err(StopError::Cleanup(problems))
    }
}

async fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Removes everything a VM leaves: its processes, sockets and record. Runs every step
/// and returns every problem.
async fn cleanup(paths: &VmPaths, record: Option<&VmRecord>) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(record) = record {
        if state::process_alive(record.qemu_pid, "qemu") {
            crate::os::stop_process(record.qemu_pid, crate::os::Stop::Force);
            if !wait_until(Duration::from_secs(3), || !state::process_alive(record.qemu_pid, "qemu")).await {
                problems.push(format!("QEMU pid {} did not exit", record.qemu_pid));
            }
        }
        for &pid in &record.virtiofsd_pids {
            if state::process_alive(pid, "virtiofsd") {
                crate::os::stop_process(pid, crate::os::Stop::Force);
                if !wait_until(Duration::from_secs(2), || !state::process_alive(pid, "virtiofsd")).await {
                    problems.push(format!("virtiofsd pid {pid} did not exit"));
                }
            }
        }
        if let Some(pid) = record.vhost_pid {
            if state::process_alive(pid, "vhost-device-vsock") {
                crate::os::stop_process(pid, crate::os::Stop::Ask);
                if !wait_until(Duration::from_secs(2), || !state::process_alive(pid, "vhost-device-vsock")).await {
                    crate::os::stop_process(pid, crate::os::Stop::Force);
                    if !wait_until(Duration::from_secs(2), || !state::process_alive(pid, "vhost-device-vsock")).await {
                        problems.push(format!("vhost-device-vsock pid {pid} did not exit"));
                    }
                }
            }
        }
    }
    for file in [&paths.qmp, &paths.vhost_socket, &paths.vsock_uds, &paths.mux_socket, &paths.state] {
        match std::fs::remove_file(file) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => problems.push(format!("cannot remove {}: {err}", file.display())),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_or_qemu_for_another_arch_is_refused() {
        assert_eq!(Arch::parse("aarch64"), Ok(Arch::Arm64));
        assert_eq!(Arch::parse("amd64"), Ok(Arch::X86_64));
        assert_eq!(Arch::parse("riscv64").expect_err("unknown"), "BERTH_VM_ARCH=\"riscv64\": expected x86_64 or arm64");
        let dir = std::env::temp_dir().join(format!("berth-arch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let image = VmImage { dir: dir.clone(), kernel: dir.join("vmlinuz"), initrd: dir.join("initramfs.cpio") };
        // No manifest: nothing to check against.
        assert!(check_arch(Arch::X86_64, &image, Path::new("/usr/bin/qemu-system-x86_64")).is_ok());
        std::fs::write(dir.join("manifest.json"), r#"{"arch": "arm64", "agent_target": "aarch64-unknown-linux-musl"}"#).expect("manifest");
        assert_eq!(image.arch(), Some(Arch::Arm64));
        let err = check_arch(Arch::X86_64, &image, Path::new("/usr/bin/qemu-system-x86_64")).expect_err("arm64 image, x86_64 VM").to_string();
        assert!(err.contains("is for arm64, but the VM is x86_64") && err.contains("--arch x86_64"), "{err}");
        let err = check_arch(Arch::Arm64, &image, Path::new("/usr/bin/qemu-system-x86_64")).expect_err("x86_64 QEMU").to_string();
        assert!(err.contains("emulates x86_64, but the VM is arm64: use qemu-system-aarch64"), "{err}");
        assert!(check_arch(Arch::Arm64, &image, Path::new("/opt/qemu/bin/qemu-system-aarch64")).is_ok());
        // An image from before the manifest said its arch: its agent's target says.
        std::fs::write(dir.join("manifest.json"), r#"{"agent_target": "x86_64-unknown-linux-musl"}"#).expect("manifest");
        assert_eq!(image.arch(), Some(Arch::X86_64));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn tail_takes_the_last_lines() {
        let dir = std::env::temp_dir().join(format!("berth-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("log");
        std::fs::write(&file, "a\nb\nc\nd\n").expect("write");
        assert_eq!(tail(&file, 2), "c\nd");
        std::fs::write(&file, "\u{1b}[2mtime\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m up\n").expect("write");
        assert_eq!(tail(&file, 1), "time  INFO up");
        assert_eq!(tail(&dir.join("missing"), 2), "");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[tokio::test]
    async fn status_without_record_is_stopped() {
        let dir = std::env::temp_dir().join(format!("berth-status-{}", std::process::id()));
        let home = BerthHome::new(&dir);
        assert_eq!(status(&home).await, VmState::Stopped);
        assert_eq!(stop(&home, Duration::from_secs(1)).await.expect("stop"), StopOutcome::NotRunning);
    }

    #[tokio::test]
    async fn stale_record_of_a_dead_vm_is_reported_then_cleaned_by_stop() {
        let dir = std::env::temp_dir().join(format!("berth-stale-{}", std::process::id()));
        let home = BerthHome::new(&dir);
        let paths = VmPaths::new(&home);
        std::fs::create_dir_all(&paths.dir).expect("dir");
        let record = VmRecord {
            qemu_pid: u32::MAX - 7,
            vhost_pid: None,
            virtiofsd_pids: Vec::new(),
            accel: Accel::Tcg,
            qmp_socket: paths.qmp.clone(),
            vsock_uds: Some(paths.vsock_uds.clone()),
            guest_cid: None,
            serial_proxy: None,
            mux_socket: None,
            console_log: paths.console_log.clone(),
            started_unix_ms: 0,
        };
        state::save(&paths.state, &record).expect("save");
        std::fs::write(&paths.console_log, "Kernel panic - not syncing\n").expect("console");
        match status(&home).await {
            VmState::Error { reason } => assert!(reason.contains("Kernel panic"), "{reason}"),
            other => panic!("expected error, got {other:?}"),
        }
        assert_eq!(stop(&home, Duration::from_secs(1)).await.expect("stop"), StopOutcome::NotRunning);
        assert!(!paths.state.exists());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn lock_is_exclusive() {
        let dir = std::env::temp_dir().join(format!("berth-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("lock");
        let first = crate::os::FileLock::acquire(&path, "held").expect("first");
        assert!(crate::os::FileLock::acquire(&path, "held").is_err());
        drop(first);
        crate::os::FileLock::acquire(&path, "held").expect("after release");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn the_transport_is_vsock_where_the_host_has_it_else_serial_and_an_unknown_one_is_refused() {
        let vhost = || Some(PathBuf::from("/usr/bin/vhost-device-vsock"));
        assert_eq!(choose_transport("", true, None).ok(), Some((Transport::Vsock, None)));
        assert_eq!(choose_transport("auto", false, vhost()).ok(), Some((Transport::Vsock, vhost())));
        // macOS and Windows: no vhost-vsock and no vhost-device-vsock.
        assert_eq!(choose_transport("", false, None).ok(), Some((Transport::Serial, None)));
        assert_eq!(choose_transport("serial", true, vhost()).ok(), Some((Transport::Serial, None)));
        assert!(matches!(choose_transport("vsock", false, None), Err(StartError::VhostMissing)));
        let err = choose_transport("pipe", true, None).expect_err("unknown");
        assert!(err.to_string().contains("BERTH_TRANSPORT=\"pipe\": expected vsock, serial or auto"), "{err}");
    }

    /// Each installer's layout, from the folder its binaries are in: the .deb, the macOS
    /// app (`src-tauri/release/macos.json` puts QEMU in Contents/Resources/qemu) and the
    /// Windows install folder (`release/windows.json`). The image and QEMU are found in
    /// each.
    #[test]
    fn installed_images_and_qemu_are_found_where_each_installer_puts_them() {
        let root = std::env::temp_dir().join(format!("berth-installed-{}", std::process::id()));
        let layouts = [
            ("deb/usr/bin", "deb/usr/share/berth/vm-image", "deb/usr/lib/berth", "qemu-system-x86_64"),
            ("Berth.app/Contents/MacOS", "Berth.app/Contents/Resources/vm-image", "Berth.app/Contents/Resources/qemu/bin", "qemu-system-aarch64"),
            ("Berth", "Berth/vm-image", "Berth/qemu", "qemu-system-x86_64.exe"),
        ];
        for (bin, image, qemu_dir, qemu) in layouts {
            std::fs::create_dir_all(root.join(bin)).unwrap();
            std::fs::create_dir_all(root.join(image)).unwrap();
            std::fs::create_dir_all(root.join(qemu_dir)).unwrap();
            std::fs::write(root.join(image).join("vmlinuz"), b"k").unwrap();
            std::fs::write(root.join(image).join("initramfs.cpio"), b"i").unwrap();
            std::fs::write(root.join(qemu_dir).join(qemu), b"q").unwrap();
            let found = image::installed_image_dirs(&root.join(bin)).into_iter().find_map(|d| VmImage::in_dir(&d)).expect(image);
            assert_eq!(std::fs::canonicalize(&found.dir).unwrap(), std::fs::canonicalize(root.join(image)).unwrap());
            let program = installed_program_dirs(&root.join(bin)).into_iter().map(|d| d.join(qemu)).find(|p| p.is_file()).expect(qemu);
            assert_eq!(std::fs::canonicalize(program).unwrap(), std::fs::canonicalize(root.join(qemu_dir).join(qemu)).unwrap());
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}
