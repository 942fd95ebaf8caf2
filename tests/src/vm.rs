//! `TestVm`: a real QEMU VM per test, built with a builder, with a per-test timeout;
//! on failure the serial console, QEMU's log and the QMP log are kept in
//! `target/test-artifacts/<test>/`.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use berth_host::agent::{AgentClient, AgentEndpoint};
use berth_host::home::BerthHome;
use berth_host::vm::accel::{Accel, AccelChoice};
use berth_host::vm::qmp::{Qmp, RunStatus};
use berth_host::vm::{self, RunningVm, StartError, StopOutcome, VmConfig, VmImage, VmPaths};

/// The VM image the VM tier boots: `build/vm-image`, or with `BERTH_VM_ARCH=arm64`
/// `build/vm-image-arm64` (`cargo xtask vm-image --arch arm64`).
pub fn image_dir() -> PathBuf {
    match arch() {
        vm::Arch::X86_64 => crate::root().join("build/vm-image"),
        vm::Arch::Arm64 => crate::root().join("build/vm-image-arm64"),
    }
}

/// The suite's `berth-netprobe` built for the guest (`cargo xtask test vm` builds it).
pub fn netprobe() -> Vec<u8> {
    let target = match arch() {
        vm::Arch::X86_64 => "x86_64-unknown-linux-musl",
        vm::Arch::Arm64 => "aarch64-unknown-linux-musl",
    };
    let path = crate::root().join(format!("target/{target}/debug/berth-netprobe"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{} (built by `cargo xtask test vm`): {e}", path.display()))
}

/// `BERTH_VM_ARCH`, as a user's session reads it.
pub fn arch() -> vm::Arch {
    std::env::var("BERTH_VM_ARCH").ok().filter(|a| !a.is_empty()).map(|a| vm::Arch::parse(&a).expect("BERTH_VM_ARCH")).unwrap_or_else(vm::Arch::host)
}

/// Builds a [`TestVm`].
#[derive(Debug, Clone)]
pub struct TestVmBuilder {
    name: String,
    mem_mib: u32,
    cpus: u32,
    accel: AccelChoice,
    boot_timeout: Duration,
    image_dir: PathBuf,
    qemu: Option<PathBuf>,
}

impl TestVmBuilder {
    pub fn mem_mib(mut self, mem_mib: u32) -> Self {
        self.mem_mib = mem_mib;
        self
    }

    pub fn accel(mut self, accel: AccelChoice) -> Self {
        self.accel = accel;
        self
    }

    pub fn boot_timeout(mut self, timeout: Duration) -> Self {
        self.boot_timeout = timeout;
        self
    }

    pub fn image_dir(mut self, dir: PathBuf) -> Self {
        self.image_dir = dir;
        self
    }

    pub fn qemu(mut self, qemu: PathBuf) -> Self {
        self.qemu = Some(qemu);
        self
    }

    /// The VM configuration this builder describes.
    pub fn config(&self) -> Result<VmConfig, StartError> {
        let image = VmImage::in_dir(&self.image_dir)
            .ok_or_else(|| StartError::ImageMissing(vm::image::ImageMissing { looked: self.image_dir.display().to_string() }))?;
        let arch = arch();
        let qemu = match &self.qemu {
            Some(q) => q.clone(),
            None => vm::find_program(arch.qemu_program()).ok_or(StartError::QemuMissing { program: arch.qemu_program().into() })?,
        };
        // `BERTH_TRANSPORT` picks the transport, as for a user: the VM tier runs on each.
        let (transport, vhost_device_vsock) = vm::transport_from_env()?;
        Ok(VmConfig {
            image,
            arch,
            qemu,
            transport,
            vhost_device_vsock,
            accel: self.accel,
            cpus: self.cpus,
            mem_mib: self.mem_mib,
            boot_timeout: self.boot_timeout,
            hardware_probe_timeout: Duration::from_secs(3),
            data_disk: None,
            shares: Vec::new(),
            share_transport: berth_host::vm::guest::ShareTransport::Virtiofs,
            share_cache: Default::default(),
            virtiofsd: None,
            guest_env: Vec::new(),
            daemon_json: None,
            balloon: false,
        })
    }

    /// Boots the VM; the error, if any, with the artifacts kept.
    pub async fn try_start(self) -> (TestVmHome, Result<RunningVm, StartError>) {
        let home = TestVmHome::new(&self.name);
        let result = match self.config() {
            Ok(config) => vm::start(&home.home, &config, |_| {}).await,
            Err(err) => Err(err),
        };
        (home, result)
    }

    /// Boots the VM; panics (keeping the artifacts) if it does not come up.
    pub async fn start(self) -> TestVm {
        let (mut home, result) = self.try_start().await;
        match result {
            Ok(running) => TestVm { home, running: Some(running) },
            Err(err) => {
                home.keep = true;
                panic!("the test VM did not start: {}", berth_host::agent::error_chain(&err));
            }
        }
    }
}

/// The BERTH_HOME of a test VM; cleans up on drop, keeping logs when the test failed.
#[derive(Debug)]
pub struct TestVmHome {
    pub name: String,
    pub home: BerthHome,
    pub paths: VmPaths,
    pub artifacts: PathBuf,
    qmp_log: Vec<String>,
    keep: bool,
}

impl TestVmHome {
    fn new(name: &str) -> TestVmHome {
        let home = BerthHome::new(crate::temp_home(name));
        let paths = VmPaths::new(&home);
        TestVmHome { name: name.to_owned(), home, paths, artifacts: crate::artifact_dir(name), qmp_log: Vec::new(), keep: false }
    }

    pub fn log_qmp(&mut self, line: String) {
        self.qmp_log.push(line);
    }

    fn save_artifacts(&self) {
        for (from, to) in [(&self.paths.console_log, "console.log"), (&self.paths.qemu_log, "qemu.log"), (&self.paths.vhost_log, "vhost-device-vsock.log")] {
            let _ = std::fs::copy(from, self.artifacts.join(to));
        }
        let _ = std::fs::write(self.artifacts.join("qmp.log"), self.qmp_log.join("\n"));
        eprintln!("test VM {}: console, QEMU and QMP logs kept in {}", self.name, self.artifacts.display());
    }
}

impl Drop for TestVmHome {
    fn drop(&mut self) {
        if self.keep || std::thread::panicking() {
            self.save_artifacts();
        }
        // Whatever happened, no VM process outlives the test.
        if let Ok(Some(record)) = vm::state::load(&self.paths.state) {
            for pid in [Some(record.qemu_pid), record.vhost_pid].into_iter().flatten() {
                let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
        }
        let _ = std::fs::remove_dir_all(self.home.root());
    }
}

/// A running test VM.
#[derive(Debug)]
pub struct TestVm {
    pub home: TestVmHome,
    running: Option<RunningVm>,
}

impl TestVm {
    pub fn builder(name: &str) -> TestVmBuilder {
        TestVmBuilder {
            name: name.to_owned(),
            mem_mib: 512,
            cpus: 1,
            accel: AccelChoice::Only(Accel::Tcg),
            boot_timeout: Duration::from_secs(60),
            image_dir: image_dir(),
            qemu: None,
        }
    }

    pub fn running(&self) -> &RunningVm {
        self.running.as_ref().expect("the VM is running")
    }

    pub fn client(&self) -> AgentClient {
        self.running().client.clone()
    }

    pub fn endpoint(&self) -> AgentEndpoint {
        self.running().endpoint()
    }

    /// QEMU's run state over QMP (logged).
    pub async fn qmp_status(&mut self) -> RunStatus {
        let qmp = Qmp::connect(&self.home.paths.qmp, Duration::from_secs(5)).await.expect("QMP connect");
        let status = qmp.query_status().await.expect("query-status");
        self.home.log_qmp(format!("query-status -> {status:?}"));
        status
    }

    /// Stops the VM through berth-host (ACPI power button over QMP, then quit) and reaps it.
    pub async fn stop(&mut self) -> StopOutcome {
        self.home.log_qmp("system_powerdown (via vm::stop)".into());
        let outcome = vm::stop(&self.home.home, Duration::from_secs(15)).await.expect("stop");
        self.home.log_qmp(format!("stop -> {outcome:?}"));
        if let Some(running) = self.running.take() {
            running.reap().await;
        }
        outcome
    }
}

/// Runs a test body with a deadline, so a hung VM fails the test instead of CI.
pub async fn with_timeout<T>(limit: Duration, body: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, body).await {
        Ok(value) => value,
        Err(_) => panic!("the test did not finish within {limit:?}"),
    }
}

/// A `BERTH_HOME` for the CLI's VM session (`berth vm start`): runs `berth` and the
/// docker CLI against it; on drop keeps the VM's logs in the test's artifacts and stops
/// the session, whatever happened.
#[derive(Debug)]
pub struct SessionHome {
    pub home: PathBuf,
    pub artifacts: PathBuf,
    env: Vec<(String, String)>,
}

impl SessionHome {
    /// A fresh home booting the image in `image_dir` under TCG with `mem_mib` MiB.
    pub fn new(name: &str, image_dir: PathBuf, mem_mib: u32) -> SessionHome {
        SessionHome {
            home: crate::temp_home(name),
            artifacts: crate::artifact_dir(name),
            env: vec![
                ("BERTH_ACCEL".into(), "tcg".into()),
                ("BERTH_VM_MEMORY_MIB".into(), mem_mib.to_string()),
                ("BERTH_VM_IMAGE".into(), image_dir.display().to_string()),
            ],
        }
    }

    /// An extra variable for every `berth` run (the session inherits it).
    pub fn env(mut self, name: &str, value: &str) -> SessionHome {
        self.env.push((name.into(), value.into()));
        self
    }

    /// `berth ARGS`: success, stdout, stderr.
    pub fn berth(&self, args: &[&str]) -> (bool, String, String) {
        let mut command = std::process::Command::new(crate::bin("berth"));
        command.args(args).env("BERTH_HOME", &self.home);
        for (name, value) in &self.env {
            command.env(name, value);
        }
        output(command.output().expect("berth"))
    }

    /// `docker ARGS` against the session's docker.sock: success, stdout, stderr.
    pub fn docker(&self, args: &[&str]) -> (bool, String, String) {
        let out = std::process::Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.home.join("run/docker.sock").display()))
            .env("DOCKER_CONFIG", self.home.join("docker-config"))
            .output()
            .expect("docker CLI");
        output(out)
    }

    /// Loads the suite's busybox image as `name` (docker load through the session).
    pub fn load_busybox(&self, name: &str) {
        let archive = self.home.join("image.tar");
        std::fs::write(&archive, crate::fixtures::oci_archive(&crate::fixtures::container_image(serde_json::json!({})), name)).expect("archive");
        let (ok, _, err) = self.docker(&["load", "-i", &archive.display().to_string()]);
        assert!(ok, "{err}");
    }
}

fn output(out: std::process::Output) -> (bool, String, String) {
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

impl Drop for SessionHome {
    fn drop(&mut self) {
        for log in ["console.log", "qemu.log", "session.log", "virtiofsd-share0.log", "boot.conf"] {
            let _ = std::fs::copy(self.home.join("vm").join(log), self.artifacts.join(log));
        }
        let _ = self.berth(&["vm", "stop", "--time", "2"]);
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.home);
        }
    }
}
