//! start, stop, kill, restart, pause, unpause, rm, rename, wait, prune.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use super::create::{parse_security_opt, SecurityOpt};
use std::path::PathBuf;

use super::record::{ContainerRecord, RunningNetwork, Status};
use super::spec::{self, SpecInput};
use super::{caps, now_rfc3339, rootfs, seccomp, signal, ContainerError, Containers};

/// How long a stop waits after SIGKILL before giving up on the process.
const KILL_GRACE: Duration = Duration::from_secs(30);

impl Containers {
    /// `start`: mounts the root filesystem, writes the OCI config, starts the monitor
    /// (which runs `<runtime> create`), hands the live output to waiting attach
    /// callers, then runs `<runtime> start`. Starting a running container does nothing.
    pub async fn start(self: &Arc<Self>, key: &str) -> Result<(), ContainerError> {
        let id = self.find(key)?.id;
        let lock = self.lock_of(&id);
        let _guard = lock.lock().await;
        let record = self.store.get(&id)?.ok_or_else(|| ContainerError::NotFound(key.to_owned()))?;
        match record.state.status {
            Status::Running | Status::Paused => Ok(()),
            Status::Removing | Status::Dead => Err(ContainerError::Conflict(format!("container {} is marked for removal and cannot be started", record.name))),
            _ => {
                let mut record = record;
                record.state.manually_stopped = false;
                self.start_locked(record).await
            }
        }
    }

    /// The container's /etc/hosts, /etc/hostname and /etc/resolv.conf for the networks
    /// it is on: its address on the first, and the first user network's DNS server.
    /// Written in place, so a running container's bind mounts see the new text.
    pub(super) fn write_etc_files(&self, record: &ContainerRecord, endpoints: &[crate::network::Endpoint], links: &[String]) -> Result<(), ContainerError> {
        let first = endpoints.first();
        let mut extras = record.host_config.extras.clone();
        extras.extra_hosts.extend_from_slice(links);
        let settings = rootfs::EtcSettings {
            nameserver: endpoints.iter().find(|e| e.dns).map(|e| e.gateway),
            extras: Some(&extras),
            host_gateway: self.runtime.host_gateway.or(first.map(|e| e.gateway)),
            host_docker_internal: self.runtime.host_gateway.is_some(),
        };
        rootfs::write_etc_files(&self.dir(&record.id).join("files"), &record.config.hostname, first.map(|e| e.ip), &settings)?;
        Ok(())
    }

    /// `--link`: each linked container's address, as /etc/hosts lines ("name:ip") under
    /// its alias and its name. The address is the one on a network the two share (else
    /// its first). Docker's legacy links also set environment variables; Berth does not.
    pub(super) fn link_hosts(&self, record: &ContainerRecord) -> Result<Vec<String>, ContainerError> {
        let mut hosts = Vec::new();
        for link in &record.host_config.extras.links {
            let (name, alias) = super::record::parse_link(link);
            let other = self.find(&name).map_err(|_| ContainerError::Invalid(format!("could not get container for {name}")))?;
            let refused = || ContainerError::Conflict(format!("Cannot link to a non running container: /{} AS /{}/{alias}", other.name, record.name));
            if !other.state.status.is_running() {
                return Err(refused());
            }
            let endpoints = other.state.network.as_ref().map(|n| n.endpoints.as_slice()).unwrap_or_default();
            let shared = endpoints.iter().find(|e| record.networks.iter().any(|n| n.network_id == e.network_id));
            let Some(endpoint) = shared.or(endpoints.first()) else { return Err(refused()) };
            hosts.push(format!("{alias}:{}", endpoint.ip));
            if alias != other.name {
                hosts.push(format!("{}:{}", other.name, endpoint.ip));
            }
        }
        Ok(hosts)
    }

    /// Starts a container whose lock the caller holds.
    pub(super) async fn start_locked(self: &Arc<Self>, mut record: ContainerRecord) -> Result<(), ContainerError> {
        let dir = self.dir(&record.id);
        for stale in ["exit.json", "init.pid", "monitor.pid", "attach.sock"] {
            let _ = std::fs::remove_file(dir.join(stale));
        }
        let rootfs_dir = dir.join("rootfs");
        let mounted = self.mount_rootfs(&record).await;
        let launched = match mounted {
            Ok(()) => self.launch(&record).await,
            Err(e) => Err(e),
        };
        // The process exists (created, not yet started) once launch returns. It is
        // recorded as running before the runtime lets it run: a process that asks the
        // engine about itself straight away (through a mounted docker.sock) must find
        // itself running.
        let previous = record.state.clone();
        let check = record.config.healthcheck.clone().filter(|c| super::health::probe_command(c).is_some());
        let launched = match launched {
            Ok((mut child, pid, network)) => {
                let state = &mut record.state;
                state.network = network;
                state.status = Status::Running;
                state.pid = pid;
                state.monitor_pid = child.id().map(|p| p as i32).unwrap_or(0);
                state.started_at = now_rfc3339();
                state.error.clear();
                state.exit_code = 0;
                state.oom_killed = false;
                state.generation += 1;
                state.health = check.as_ref().map(|_| super::record::Health { status: "starting".into(), ..Default::default() });
                let started = match self.store.update(&record) {
                    Ok(()) => self.runtime(&record, &["start", &record.id]).await,
                    Err(e) => Err(e.into()),
                };
                match started {
                    Ok(()) => Ok(child),
                    Err(err) => {
                        let _ = self.runtime(&record, &["kill", &record.id, "KILL"]).await;
                        let _ = child.wait().await;
                        Err(err)
                    }
                }
            }
            Err(e) => Err(e),
        };
        match launched {
            Ok(child) => {
                self.publish(&record, "start", &[]);
                self.changed(&record.id);
                let generation = record.state.generation;
                if let Some(check) = check {
                    tokio::spawn(self.clone().health_loop(record.id.clone(), generation, check));
                }
                let this = self.clone();
                let id = record.id.clone();
                tokio::spawn(async move {
                    let mut child = child;
                    let _ = child.wait().await;
                    this.on_exit(id, generation).await;
                });
                Ok(())
            }
            Err(err) => {
                self.networks.detach(&record.id).await;
                record.state = previous;
                record.state.network = None;
                let _ = rootfs::unmount(&rootfs_dir);
                self.release_volumes(&record);
                self.volumes_unmounted(&record);
                self.fail_pending_attach(&record.id, &err);
                record.state.error = err.to_string();
                // dockerd's: 127 or 126 for a command that cannot be run, else 128.
                record.state.exit_code = match &err {
                    ContainerError::CannotRun(why) => why.code,
                    _ => 128,
                };
                if record.state.status != Status::Created {
                    record.state.status = Status::Exited;
                }
                let _ = self.store.update(&record);
                self.changed(&record.id);
                // As dockerd does: a `--rm` container that cannot start is removed (the
                // docker CLI waits for that before it reports the error).
                if record.host_config.auto_remove {
                    let id = record.id.clone();
                    if let Err(e) = self.destroy_locked(record, true).await {
                        tracing::warn!(container = %id, error = %berth_proto::error_chain(&e), "auto-remove after a failed start failed");
                    }
                }
                Err(err)
            }
        }
    }

    pub(super) async fn mount_rootfs(&self, record: &ContainerRecord) -> Result<(), ContainerError> {
        let dir = self.dir(&record.id);
        let target = dir.join("rootfs");
        if rootfs::is_mounted(&target) {
            return Ok(());
        }
        self.images.resolve(&record.image_id)?.ok_or_else(|| ContainerError::NoImage(record.image_id.clone()))?;
        let mut lowers = self.lowers(&record.image_id);
        if let Some(missing) = lowers.iter().find(|p| !p.is_dir()) {
            return Err(ContainerError::Invalid(format!("image {} is missing layer {}; pull it again", record.config.image, missing.display())));
        }
        // Docker's init layer, above the image: `/.dockerenv`, which tools read to know
        // they run in a container (testcontainers among them). Being a layer, it is
        // not among the container's changes.
        let init = dir.join("init");
        std::fs::create_dir_all(&init).map_err(ContainerError::io("create the init layer"))?;
        let dockerenv = init.join(".dockerenv");
        if !dockerenv.exists() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(&dockerenv, b"").map_err(ContainerError::io("write /.dockerenv"))?;
            std::fs::set_permissions(&dockerenv, std::fs::Permissions::from_mode(0o755)).map_err(ContainerError::io("write /.dockerenv"))?;
        }
        // The mount points the runtime needs, here too: made by the runtime they would
        // land in the writable layer, and `diff` would list them (dockerd's init layer
        // holds the same).
        for dir in ["etc", "dev", "dev/pts", "dev/shm", "proc", "sys"] {
            let path = init.join(dir);
            if !path.exists() {
                use std::os::unix::fs::PermissionsExt;
                std::fs::create_dir(&path).map_err(ContainerError::io(format!("create the init layer's /{dir}")))?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                    .map_err(ContainerError::io(format!("create the init layer's /{dir}")))?;
            }
        }
        for file in ["etc/hosts", "etc/hostname", "etc/resolv.conf", "dev/console"] {
            let path = init.join(file);
            if !path.exists() {
                std::fs::write(&path, b"").map_err(ContainerError::io(format!("write the init layer's /{file}")))?;
            }
        }
        lowers.insert(0, init);
        rootfs::mount_overlay(&lowers, &dir.join("upper"), &dir.join("work"), &target)?;
        Ok(())
    }

    /// Builds the config and runs the monitor; returns it, the container's pid and its
    /// networking.
    async fn launch(self: &Arc<Self>, record: &ContainerRecord) -> Result<(tokio::process::Child, i32, Option<RunningNetwork>), ContainerError> {
        let dir = self.dir(&record.id);
        let rootfs_dir = dir.join("rootfs");
        // Mount points the image lacks are made here, 0755 and root's, as dockerd makes
        // them (crun would make them 01755, and they show in diff, commit and builds).
        // Under /dev, /proc and /sys the runtime's own mounts come first: left to it.
        let runtime_owned = |target: &str| ["/dev", "/proc", "/sys"].iter().any(|d| target == *d || target.starts_with(&format!("{d}/")));
        for mount in record.host_config.mounts.iter().filter(|m| !runtime_owned(&m.target)) {
            let file = mount.kind == "bind" && std::fs::metadata(&mount.source).is_ok_and(|m| !m.is_dir());
            rootfs::make_mount_point(&rootfs_dir, &mount.target, file)?;
        }
        for tmpfs in record.host_config.tmpfs.iter().filter(|t| !runtime_owned(&t.target)) {
            rootfs::make_mount_point(&rootfs_dir, &tmpfs.target, false)?;
        }
        let user = rootfs::resolve_user_with_groups(&rootfs_dir, &record.config.user, &record.host_config.extras.group_add)?;
        let hc = &record.host_config;
        let caps = caps::compute(hc.privileged, &hc.cap_add, &hc.cap_drop, &self.facts.held_caps).map_err(|e| ContainerError::Invalid(e.to_string()))?;
        let mut no_new_privileges = false;
        let mut seccomp_choice = if hc.privileged { None } else { Some(seccomp::default_profile(&caps)) };
        for opt in &hc.security_opt {
            match parse_security_opt(opt)? {
                SecurityOpt::NoNewPrivileges(on) => no_new_privileges = on,
                SecurityOpt::SeccompUnconfined => seccomp_choice = None,
                SecurityOpt::SeccompProfile(json) => {
                    seccomp_choice = Some(serde_json::from_str(&json).map_err(|e| ContainerError::Invalid(format!("invalid seccomp profile: {e}")))?)
                }
                SecurityOpt::Inert => {}
            }
        }
        let mut env = record.config.env.clone();
        if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
            env.insert(1.min(env.len()), format!("HOSTNAME={}", record.config.hostname));
        }
        if record.config.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".to_owned());
        }
        let files = dir.join("files");
        let links = self.link_hosts(record)?;
        let (netns, network) = self.join_networks(record).await?;
        self.write_etc_files(record, network.as_ref().map_or(&[][..], |n| &n.endpoints), &links)?;
        let input = SpecInput {
            record,
            rootfs: &rootfs_dir,
            files: &files,
            user,
            env,
            cwd: record.config.working_dir.clone(),
            caps,
            cgroup_path: Containers::cgroup_path(record),
            cgroup_v2: self.facts.cgroup_v2,
            seccomp: seccomp_choice,
            no_new_privileges,
            swap_accounting: self.facts.swap_accounting,
            init: if hc.init { self.runtime.init.clone() } else { None },
            binds: self.prepare_mounts(record, &rootfs_dir)?,
            netns,
            shared: self.shared_namespaces(record)?,
            devices: spec::host_devices(&hc.extras.devices).map_err(ContainerError::Invalid)?,
            block_io: spec::block_io(&hc.extras.blkio, self.facts.blkio).map_err(ContainerError::Invalid)?,
        };
        let spec = spec::build(&input)?;
        spec.save(dir.join("config.json"))
            .map_err(|e| ContainerError::Io { what: "write config.json".into(), source: std::io::Error::other(e.to_string()) })?;
        let (child, pid) = self.spawn_monitor(record).await?;
        Ok((child, pid, network))
    }

    /// `--pid`, `--ipc` and `--uts` for a starting container: another container's
    /// namespaces are joined through its process, so it must be running (and, for IPC,
    /// made shareable, as dockerd asks).
    fn shared_namespaces(&self, record: &ContainerRecord) -> Result<spec::SharedNamespaces, ContainerError> {
        use super::record::NamespaceMode;
        let extras = &record.host_config.extras;
        let join = |kind: &str, mode: NamespaceMode| -> Result<spec::Joined, ContainerError> {
            Ok(match mode {
                NamespaceMode::Own => spec::Joined::Own,
                NamespaceMode::Host => spec::Joined::Host,
                NamespaceMode::Container(name) => {
                    let other = self.find(&name)?;
                    if other.id == record.id {
                        return Err(ContainerError::Invalid(format!("cannot join own {kind} namespace")));
                    }
                    if !other.state.status.is_running() || other.state.pid <= 0 {
                        return Err(ContainerError::Conflict(format!("cannot join {kind} of a non running container: {name}")));
                    }
                    if kind == "IPC" && other.host_config.extras.ipc_mode != "shareable" && other.host_config.extras.ipc_mode != "host" {
                        return Err(ContainerError::Conflict(format!(
                            "cannot join IPC of container {name}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
                        )));
                    }
                    spec::Joined::Process(other.state.pid as u32)
                }
            })
        };
        let ipc = join("IPC", extras.ipc().map_err(ContainerError::Invalid)?)?;
        let shm = match (&ipc, extras.ipc_mode.as_str()) {
            (spec::Joined::Own, "shareable") => Some(self.shareable_shm(record)?),
            (spec::Joined::Process(_), _) => {
                let NamespaceMode::Container(name) = extras.ipc().map_err(ContainerError::Invalid)? else { unreachable!("joined a process") };
                Some(self.dir(&self.find(&name)?.id).join("shm"))
            }
            _ => None,
        };
        Ok(spec::SharedNamespaces {
            pid: join("PID", extras.pid().map_err(ContainerError::Invalid)?)?,
            ipc,
            shm,
            no_shm: extras.ipc_mode == "none",
            uts_host: extras.uts().map_err(ContainerError::Invalid)? == NamespaceMode::Host,
        })
    }

    /// The network namespace a starting container joins (None: the engine's, for
    /// `--network host`) and, when it has its own, its addresses and ports.
    async fn join_networks(&self, record: &ContainerRecord) -> Result<(Option<PathBuf>, Option<RunningNetwork>), ContainerError> {
        let mode = record.host_config.network_mode.as_str();
        if mode == "host" {
            return Ok((None, None));
        }
        if let Some(other) = mode.strip_prefix("container:") {
            let other = self.store.get(other)?.ok_or_else(|| ContainerError::NotFound(other.to_owned()))?;
            if !other.state.status.is_running() {
                return Err(ContainerError::Conflict(format!("cannot join network of a non running container: {}", other.name)));
            }
            if other.host_config.network_mode == "host" {
                return Ok((None, None));
            }
            return Ok((Some(self.networks.netns_path(&other.id)), None));
        }
        let mut ports = record.host_config.port_bindings.clone();
        if record.host_config.publish_all_ports {
            for exposed in &record.config.exposed_ports {
                let (port, proto) = exposed.split_once('/').unwrap_or((exposed, "tcp"));
                let Ok(port) = port.parse::<u16>() else { continue };
                if !ports.iter().any(|p| p.container_port == port && p.protocol == proto) {
                    ports.push(crate::network::PortBinding { container_port: port, protocol: proto.to_owned(), ..Default::default() });
                }
            }
        }
        let spec = crate::network::AttachSpec { container_id: record.id.clone(), name: record.name.clone(), endpoints: record.networks.clone(), ports };
        let attached = self.networks.attach(&spec).await?;
        Ok((Some(attached.netns), Some(RunningNetwork { endpoints: attached.endpoints, ports: attached.ports })))
    }

    async fn spawn_monitor(self: &Arc<Self>, record: &ContainerRecord) -> Result<(tokio::process::Child, i32), ContainerError> {
        let dir = self.dir(&record.id);
        // Its runtime may have been uninstalled since create: said in words, not ENOENT.
        self.runtime.resolve(&record.host_config.extras.runtime).map_err(ContainerError::Invalid)?;
        let (runtime_path, runtime_root) = self.oci_runtime(record);
        let mut fds = [0 as RawFd; 2];
        // SAFETY: fds is a valid array for pipe2 to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(ContainerError::io("create the monitor's sync pipe")(std::io::Error::last_os_error()));
        }
        // SAFETY: pipe2 succeeded; both fds are fresh and ours.
        let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let monitor_log = std::fs::File::create(dir.join("monitor.log")).map_err(ContainerError::io("create monitor.log"))?;
        let mut command = tokio::process::Command::new(&self.runtime.monitor);
        command
            .arg("--id")
            .arg(&record.id)
            .arg("--runtime")
            .arg(&runtime_path)
            .arg("--runtime-root")
            .arg(&runtime_root)
            .arg("--bundle")
            .arg(&dir)
            .arg("--dir")
            .arg(&dir)
            .arg("--cgroup")
            .arg(Containers::cgroup_path(record));
        let (log_max_size, log_max_file) = record.host_config.extras.log_config.limits();
        command.arg("--log-max-size").arg(log_max_size.to_string()).arg("--log-max-file").arg(log_max_file.to_string());
        if record.config.tty {
            command.arg("--tty");
        }
        if record.config.open_stdin {
            command.arg("--stdin");
        }
        if self.facts.root_is_ramfs {
            command.arg("--no-pivot");
        }
        command.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(monitor_log);
        let sync_fd = write_end.as_raw_fd();
        // SAFETY: the closure runs between fork and exec and calls only dup2 and fcntl,
        // which are async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                if sync_fd == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0);
                } else if libc::dup2(sync_fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // The monitor is not killed with the engine: containers outlive it.
        command.kill_on_drop(false);
        let mut child = command.spawn().map_err(|e| ContainerError::Runtime(format!("cannot run the monitor {}: {e}", self.runtime.monitor.display())))?;
        drop(write_end);
        let reader = std::fs::File::from(read_end);
        let line = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                let _ = BufReader::new(reader).read_line(&mut line);
                line
            }),
        )
        .await;
        let line = match line {
            Ok(Ok(line)) => line,
            _ => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(ContainerError::Runtime("the container's monitor did not report within 60 s".to_owned()));
            }
        };
        let line = line.trim();
        if let Some(pid) = line.strip_prefix("created ") {
            let pid: i32 = pid.parse().map_err(|_| ContainerError::Runtime(format!("the monitor reported {line:?}")))?;
            self.hand_over_pending_attach(&record.id);
            return Ok((child, pid));
        }
        let _ = child.wait().await;
        match line.strip_prefix("error ") {
            // Why, told by the container's files (its root is still mounted), not by
            // the runtime's words; else the runtime's words as they are.
            Some(message) => Err(super::runnable::View::of_bundle(&dir)
                .and_then(|(view, args, env, cwd)| super::runnable::check(&view, &args, &env, &cwd))
                .map_or_else(|| ContainerError::Runtime(message.to_owned()), ContainerError::CannotRun)),
            None => {
                let log = std::fs::read_to_string(dir.join("monitor.log")).unwrap_or_default();
                Err(ContainerError::Runtime(format!("the container's monitor exited: {}", log.trim())))
            }
        }
    }

    /// Its volumes are no longer mounted for it (an options volume's last user
    /// unmounts it), and its shareable /dev/shm goes.
    pub(super) fn release_volumes(&self, record: &ContainerRecord) {
        for mount in record.host_config.mounts.iter().filter(|m| m.kind == "volume") {
            self.volumes.release_for(&mount.source, &record.id);
        }
        if let Err(e) = rootfs::unmount(&self.dir(&record.id).join("shm")) {
            tracing::warn!(container = %record.id, "cannot unmount its /dev/shm: {}", berth_proto::error_chain(&e));
        }
    }

    /// Its volumes' `unmount` events, once it stopped (or failed to start).
    pub(super) fn volumes_unmounted(&self, record: &ContainerRecord) {
        for mount in record.host_config.mounts.iter().filter(|m| m.kind == "volume") {
            self.volumes.unmounted(&mount.source, &record.id);
        }
    }

    /// `--ipc shareable`: its /dev/shm is a tmpfs the engine mounts in the container's
    /// folder (a mount inside the container's own namespace could not be bound into
    /// another's), so `--ipc container:` can bind the same one.
    fn shareable_shm(&self, record: &ContainerRecord) -> Result<PathBuf, ContainerError> {
        let shm = self.dir(&record.id).join("shm");
        std::fs::create_dir_all(&shm).map_err(|e| ContainerError::Io { what: format!("create {}", shm.display()), source: e })?;
        if !rootfs::is_mounted(&shm) {
            let size = if record.host_config.extras.shm_size > 0 { record.host_config.extras.shm_size } else { 67_108_864 };
            rootfs::mount_tmpfs(&shm, &format!("mode=1777,size={size}"))?;
        }
        Ok(shm)
    }

    /// The host directories of the container's volume and bind mounts. A volume that is
    /// still empty is first filled from the image at its target (docker's copy-up),
    /// unless `nocopy`.
    fn prepare_mounts(&self, record: &ContainerRecord, rootfs_dir: &std::path::Path) -> Result<Vec<(std::path::PathBuf, String, bool)>, ContainerError> {
        let mut binds = Vec::new();
        for mount in &record.host_config.mounts {
            let source = if mount.kind == "volume" {
                self.volumes.mount_for(&mount.source, &record.id).map_err(|e| ContainerError::Invalid(berth_proto::error_chain(&e)))?;
                let data = self.volumes.data_dir(&mount.source);
                if !data.is_dir() {
                    return Err(ContainerError::Invalid(format!("volume {} is gone", mount.source)));
                }
                let empty = std::fs::read_dir(&data).map(|mut d| d.next().is_none()).unwrap_or(false);
                if empty && !mount.no_copy {
                    if let Ok(from) = rootfs::resolve_in_root(rootfs_dir, &mount.target) {
                        if from.is_dir() {
                            rootfs::copy_tree(&from, &data)?;
                        }
                    }
                }
                self.volumes.mounted(&mount.source, &record.id, &mount.target, !mount.read_only);
                data
            } else {
                std::path::PathBuf::from(&mount.source)
            };
            binds.push((source, mount.target.clone(), mount.read_only));
        }
        Ok(binds)
    }

    /// Sends `signal` to the container's init.
    async fn signal(&self, record: &ContainerRecord, signal: i32) -> Result<(), ContainerError> {
        self.runtime(record, &["kill", &record.id, &signal.to_string()]).await
    }

    /// Waits until the container is not running (true) or `timeout` passes (false).
    async fn wait_stopped(&self, id: &str, timeout: Duration) -> bool {
        let mut changes = self.changes.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.store.get(id) {
                Ok(Some(record)) if record.state.status.is_running() => {}
                _ => return true,
            }
            tokio::select! {
                _ = changes.recv() => {}
                _ = tokio::time::sleep_until(deadline) => return false,
                // The broadcast can lag; look again now and then.
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// `stop`: the stop signal, then SIGKILL after the timeout. Returns false when the
    /// container was not running.
    pub async fn stop(self: &Arc<Self>, key: &str, timeout: Option<i32>, signal_name: Option<&str>) -> Result<bool, ContainerError> {
        let id = self.find(key)?.id;
        let record = {
            let lock = self.lock_of(&id);
            let _guard = lock.lock().await;
            let Some(mut record) = self.store.get(&id)? else { return Err(ContainerError::NotFound(key.to_owned())) };
            if record.state.status == Status::Restarting {
                record.state.manually_stopped = true;
                record.state.status = Status::Exited;
                self.store.update(&record)?;
                self.changed(&id);
                return Ok(true);
            }
            if !record.state.status.is_running() {
                return Ok(false);
            }
            record.state.manually_stopped = true;
            self.store.update(&record)?;
            record
        };
        let signal_text = signal_name.filter(|s| !s.is_empty()).unwrap_or(&record.config.stop_signal);
        let number = signal::parse(signal_text).ok_or_else(|| ContainerError::Invalid(format!("invalid signal: {signal_text}")))?;
        let timeout = timeout.filter(|t| *t >= 0).or(record.config.stop_timeout).unwrap_or(10);
        if self.signal(&record, number).await.is_ok() {
            self.publish(&record, "kill", &[("signal", number.to_string())]);
        }
        if record.state.status == Status::Paused {
            let _ = self.runtime(&record, &["resume", &record.id]).await;
        }
        if !self.wait_stopped(&id, Duration::from_secs(timeout as u64)).await {
            let _ = self.signal(&record, libc::SIGKILL).await;
            self.publish(&record, "kill", &[("signal", libc::SIGKILL.to_string())]);
            if !self.wait_stopped(&id, KILL_GRACE).await {
                return Err(ContainerError::Runtime(format!("container {} did not exit after SIGKILL", record.name)));
            }
        }
        self.publish(&record, "stop", &[]);
        Ok(true)
    }

    /// `restart`: stop (if running), then start.
    pub async fn restart(self: &Arc<Self>, key: &str, timeout: Option<i32>) -> Result<(), ContainerError> {
        self.stop(key, timeout, None).await?;
        self.start(key).await?;
        let record = self.find(key)?;
        self.publish(&record, "restart", &[]);
        Ok(())
    }

    /// `kill`: any signal (default KILL) to the container's init.
    pub async fn kill(self: &Arc<Self>, key: &str, signal_name: &str) -> Result<(), ContainerError> {
        let id = self.find(key)?.id;
        let lock = self.lock_of(&id);
        let guard = lock.lock().await;
        let Some(mut record) = self.store.get(&id)? else { return Err(ContainerError::NotFound(key.to_owned())) };
        let text = if signal_name.is_empty() { "KILL" } else { signal_name };
        let number = signal::parse(text).ok_or_else(|| ContainerError::Invalid(format!("invalid signal: {text}")))?;
        if !record.state.status.is_running() {
            return Err(ContainerError::NotRunning(record.name.clone()));
        }
        if number == libc::SIGKILL || signal::parse(&record.config.stop_signal) == Some(number) {
            record.state.manually_stopped = true;
            self.store.update(&record)?;
        }
        drop(guard);
        self.signal(&record, number).await?;
        self.publish(&record, "kill", &[("signal", number.to_string())]);
        Ok(())
    }

    pub async fn pause(self: &Arc<Self>, key: &str, pause: bool) -> Result<(), ContainerError> {
        let id = self.find(key)?.id;
        let lock = self.lock_of(&id);
        let _guard = lock.lock().await;
        let Some(mut record) = self.store.get(&id)? else { return Err(ContainerError::NotFound(key.to_owned())) };
        match (pause, record.state.status) {
            (true, Status::Running) => {
                self.runtime(&record, &["pause", &id]).await?;
                record.state.status = Status::Paused;
                self.store.update(&record)?;
                self.publish(&record, "pause", &[]);
            }
            (false, Status::Paused) => {
                self.runtime(&record, &["resume", &id]).await?;
                record.state.status = Status::Running;
                self.store.update(&record)?;
                self.publish(&record, "unpause", &[]);
            }
            (true, Status::Paused) => return Err(ContainerError::Conflict(format!("container {} is already paused", record.name))),
            (false, Status::Running) => return Err(ContainerError::Conflict(format!("container {} is not paused", record.name))),
            _ => return Err(ContainerError::NotRunning(record.name.clone())),
        }
        self.changed(&id);
        Ok(())
    }

    /// `rm`: a running container only with `force` (then SIGKILL first).
    pub async fn remove(self: &Arc<Self>, key: &str, force: bool, volumes: bool) -> Result<(), ContainerError> {
        let record = self.find(key)?;
        // A restarting one counts as running: its pending restart must be called off
        // (marked stopped by the user) before it is removed, or it starts in between.
        if record.state.status.is_running() || record.state.status == Status::Restarting {
            if !force {
                return Err(ContainerError::Conflict(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    record.name
                )));
            }
            {
                let lock = self.lock_of(&record.id);
                let _guard = lock.lock().await;
                if let Some(mut current) = self.store.get(&record.id)? {
                    current.state.manually_stopped = true;
                    self.store.update(&current)?;
                }
            }
            let _ = self.signal(&record, libc::SIGKILL).await;
            if record.state.status == Status::Paused {
                let _ = self.runtime(&record, &["resume", &record.id]).await;
            }
            if !self.wait_stopped(&record.id, KILL_GRACE).await {
                return Err(ContainerError::Runtime(format!("container {} did not exit after SIGKILL", record.name)));
            }
        }
        let lock = self.lock_of(&record.id);
        let _guard = lock.lock().await;
        let Some(current) = self.store.get(&record.id)? else { return Ok(()) };
        self.destroy_locked(current, volumes).await
    }

    /// Removes a stopped container's files, runtime state and record. Every step runs;
    /// every failure is reported.
    pub(super) async fn destroy_locked(&self, mut record: ContainerRecord, remove_volumes: bool) -> Result<(), ContainerError> {
        if record.state.status.is_running() {
            return Err(ContainerError::Conflict(format!("container {} is running", record.name)));
        }
        record.state.status = Status::Removing;
        self.store.update(&record)?;
        let dir = self.dir(&record.id);
        let mut failures: Vec<String> = Vec::new();
        self.networks.detach(&record.id).await;
        if let Err(e) = rootfs::unmount(&dir.join("rootfs")) {
            failures.push(berth_proto::error_chain(&e));
        }
        self.release_volumes(&record);
        // The runtime's state, if a crash left it (the monitor deletes it normally).
        if self.runtime_state_exists(&record) {
            if let Err(e) = self.runtime(&record, &["delete", "--force", &record.id]).await {
                failures.push(e.to_string());
            }
        }
        if failures.is_empty() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    failures.push(format!("cannot remove {}: {e}", dir.display()));
                }
            }
        }
        if !failures.is_empty() {
            record.state.status = Status::Dead;
            record.state.error = failures.join("; ");
            let _ = self.store.update(&record);
            self.changed(&record.id);
            return Err(ContainerError::Runtime(format!("removing container {}: {}", record.name, failures.join("; "))));
        }
        {
            let mut codes = self.removed_exit_codes.lock().unwrap_or_else(|p| p.into_inner());
            if codes.len() >= 256 {
                codes.pop_front();
            }
            codes.push_back((record.id.clone(), record.state.exit_code));
        }
        self.store.delete(&record.id)?;
        self.images.unmark_used(&record.image_id, &record.id);
        for mount in record.host_config.mounts.iter().filter(|m| m.kind == "volume") {
            self.volumes.unmark_used(&mount.source, &record.id);
            // `rm -v` / `--rm`: the anonymous volumes go too (named ones never do).
            let anonymous = self.volumes.get(&mount.source).ok().flatten().is_some_and(|v| v.anonymous);
            if remove_volumes && anonymous {
                if let Err(e) = self.volumes.remove(&mount.source, true) {
                    tracing::warn!(volume = %mount.source, error = %berth_proto::error_chain(&e), "cannot remove an anonymous volume");
                }
            }
        }
        self.fail_pending_attach(&record.id, &ContainerError::Conflict("the container was removed".to_owned()));
        self.publish(&record, "destroy", &[]);
        self.changed(&record.id);
        Ok(())
    }

    pub async fn rename(&self, key: &str, new_name: &str) -> Result<(), ContainerError> {
        let new_name = new_name.trim_start_matches('/');
        let valid = new_name.len() >= 2
            && new_name.as_bytes()[0].is_ascii_alphanumeric()
            && new_name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !valid {
            return Err(ContainerError::Invalid(format!("invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")));
        }
        let id = self.find(key)?.id;
        let lock = self.lock_of(&id);
        let _guard = lock.lock().await;
        let Some(mut record) = self.store.get(&id)? else { return Err(ContainerError::NotFound(key.to_owned())) };
        if record.name == new_name {
            return Err(ContainerError::Invalid("renaming a container with the same name as its current name".to_string()));
        }
        let old = std::mem::replace(&mut record.name, new_name.to_owned());
        self.store.update(&record)?;
        self.networks.rename(&id, new_name);
        self.publish(&record, "rename", &[("oldName", format!("/{old}"))]);
        self.changed(&id);
        Ok(())
    }

    /// `wait`: "not-running" (default), "next-exit" or "removed". Returns the exit code.
    pub async fn wait(&self, key: &str, condition: &str) -> Result<i32, ContainerError> {
        let mut changes = self.changes.subscribe();
        let first = self.find(key)?;
        let id = first.id.clone();
        let start_finished = first.state.finished_at.clone();
        let mut last_code = first.state.exit_code;
        match condition {
            "" | "not-running" | "next-exit" | "removed" => {}
            other => return Err(ContainerError::Invalid(format!("invalid condition: {other:?}"))),
        }
        loop {
            match self.store.get(&id)? {
                None => {
                    let codes = self.removed_exit_codes.lock().unwrap_or_else(|p| p.into_inner());
                    return Ok(codes.iter().rev().find(|(i, _)| *i == id).map_or(last_code, |(_, code)| *code));
                }
                Some(record) => {
                    last_code = record.state.exit_code;
                    let stopped = !record.state.status.is_running() && record.state.status != Status::Restarting;
                    // An exit since the wait began counts even when a restart policy
                    // has started the container again (dockerd wakes waiters at each).
                    let exited = record.state.finished_at != start_finished;
                    let done = match condition {
                        "removed" => false,
                        "next-exit" => exited,
                        _ => stopped || exited,
                    };
                    if done {
                        return Ok(record.state.exit_code);
                    }
                }
            }
            tokio::select! {
                _ = changes.recv() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// `container prune`: removes every stopped container that matches docker's
    /// `filters` (none: every one): `label=k[=v]`, `label!=k[=v]` and `until` (a time
    /// or a duration ago: those created before it). Returns the removed ids and the
    /// bytes their writable layers held.
    pub async fn prune(self: &Arc<Self>, filters: &[(String, String)]) -> Result<(Vec<String>, u64), ContainerError> {
        let wanted = crate::filters::prune_filter(filters).map_err(|e| ContainerError::Invalid(e.0))?;
        let mut removed = Vec::new();
        let mut reclaimed = 0;
        for record in self.store.list()? {
            let stopped = matches!(record.state.status, Status::Created | Status::Exited | Status::Dead);
            if stopped && wanted(&record.config.labels, &record.created) {
                let lock = self.lock_of(&record.id);
                let _guard = lock.lock().await;
                if let Some(current) = self.store.get(&record.id)? {
                    if !current.state.status.is_running() {
                        let (written, _) = self.sizes(&current);
                        self.destroy_locked(current, false).await?;
                        removed.push(record.id.clone());
                        reclaimed += written;
                    }
                }
            }
        }
        Ok((removed, reclaimed))
    }
}
