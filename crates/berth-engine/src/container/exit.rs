//! When a container's monitor exits: record the exit (from the monitor's `exit.json`),
//! unmount the root filesystem, send `oom` and `die`, then apply the restart policy or
//! `--rm`. At engine start: adopt the monitors that kept running while the engine was
//! away, and settle the containers whose monitors ended meanwhile.

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::record::{ContainerRecord, Status};
use super::{now_rfc3339, rootfs, Containers};

#[derive(Debug, Deserialize)]
struct ExitFile {
    exit_code: i32,
    #[serde(default)]
    oom_killed: bool,
    #[serde(default)]
    finished_at: String,
}

/// Docker's restart delay: 100 ms doubling per restart, at most a minute; a container
/// that ran 10 s or more starts over from 100 ms.
fn restart_delay(restart_count: u32, ran_for: Option<Duration>) -> Duration {
    if ran_for.is_some_and(|d| d >= Duration::from_secs(10)) {
        return Duration::from_millis(100);
    }
    Duration::from_millis(100u64.saturating_mul(1u64 << restart_count.min(10))).min(Duration::from_secs(60))
}

fn should_restart(record: &ContainerRecord) -> bool {
    let policy = &record.host_config.restart_policy;
    if record.state.manually_stopped {
        return false;
    }
    match policy.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => record.state.exit_code != 0 && (policy.maximum_retry_count == 0 || record.state.restart_count < policy.maximum_retry_count),
        _ => false,
    }
}

fn elapsed_since(rfc3339: &str) -> Option<Duration> {
    let started = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
    (chrono::Utc::now() - started.with_timezone(&chrono::Utc)).to_std().ok()
}

impl Containers {
    /// The monitor of start attempt `generation` has exited.
    ///
    /// Boxed: it starts the container again (restart policies), and starting spawns a
    /// watcher that comes back here.
    pub(super) fn on_exit(self: Arc<Self>, id: String, generation: u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move { self.on_exit_inner(id, generation).await })
    }

    async fn on_exit_inner(self: Arc<Self>, id: String, generation: u64) {
        let lock = self.lock_of(&id);
        let guard = lock.lock().await;
        let Ok(Some(mut record)) = self.store.get(&id) else { return };
        if record.state.generation != generation || !record.state.status.is_running() {
            return;
        }
        let dir = self.dir(&id);
        let exit: Option<ExitFile> = std::fs::read(dir.join("exit.json")).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let mut errors: Vec<String> = Vec::new();
        let (code, oom, finished) = match exit {
            Some(exit) => (exit.exit_code, exit.oom_killed, exit.finished_at),
            None => {
                errors.push("the container's monitor exited without recording an exit status".to_owned());
                // It may have left the runtime's state and the container's processes.
                if let Err(e) = self.runtime(&record, &["delete", "--force", &id]).await {
                    errors.push(e.to_string());
                }
                (255, false, now_rfc3339())
            }
        };
        self.networks.detach(&id).await;
        record.state.network = None;
        if let Err(e) = rootfs::unmount(&dir.join("rootfs")) {
            errors.push(berth_proto::error_chain(&e));
        }
        self.release_volumes(&record);
        self.volumes_unmounted(&record);
        let ran_for = elapsed_since(&record.state.started_at);
        record.state.status = Status::Exited;
        record.state.exit_code = code;
        record.state.oom_killed = oom;
        record.state.finished_at = if finished.is_empty() { now_rfc3339() } else { finished };
        record.state.pid = 0;
        record.state.monitor_pid = 0;
        record.state.error = errors.join("; ");
        if oom {
            self.publish(&record, "oom", &[]);
        }
        self.publish(&record, "die", &[("exitCode", code.to_string())]);

        if should_restart(&record) {
            let delay = restart_delay(record.state.restart_count, ran_for);
            record.state.status = Status::Restarting;
            record.state.restart_count += 1;
            let _ = self.store.update(&record);
            self.changed(&id);
            drop(guard);
            let this = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let lock = this.lock_of(&id);
                let _guard = lock.lock().await;
                let Ok(Some(record)) = this.store.get(&id) else { return };
                if record.state.status != Status::Restarting || record.state.manually_stopped {
                    return;
                }
                if let Err(err) = this.start_locked(record).await {
                    tracing::warn!(container = %id, error = %berth_proto::error_chain(&err), "restart failed");
                }
            });
            return;
        }
        let _ = self.store.update(&record);
        self.changed(&id);
        if record.host_config.auto_remove {
            if let Err(err) = self.destroy_locked(record, true).await {
                tracing::warn!(container = %id, error = %berth_proto::error_chain(&err), "auto-remove failed");
            }
        }
    }

    /// Takes back an adopted container's DNS names and published ports.
    async fn adopt_network(&self, record: &super::ContainerRecord, network: super::record::RunningNetwork) {
        let spec =
            crate::network::AttachSpec { container_id: record.id.clone(), name: record.name.clone(), endpoints: record.networks.clone(), ports: Vec::new() };
        let ports = self.networks.adopt(&spec, network.endpoints.clone(), &network.ports).await;
        if ports != network.ports {
            let mut record = record.clone();
            record.state.network = Some(super::record::RunningNetwork { endpoints: network.endpoints, ports });
            let _ = self.store.update(&record);
        }
    }

    /// Adopts the containers that kept running while the engine was away, settles the
    /// ones whose monitor ended meanwhile, and resumes pending restarts.
    pub async fn recover(self: &Arc<Self>) {
        let Ok(records) = self.store.list() else { return };
        for record in records {
            match record.state.status {
                Status::Running | Status::Paused => match live_monitor(record.state.monitor_pid, &record.id) {
                    Some(pidfd) => {
                        if let Some(network) = record.state.network.clone() {
                            self.adopt_network(&record, network).await;
                        }
                        if let Some(check) = record.config.healthcheck.clone().filter(|c| super::health::probe_command(c).is_some()) {
                            tokio::spawn(self.clone().health_loop(record.id.clone(), record.state.generation, check));
                        }
                        let this = self.clone();
                        let (id, generation) = (record.id.clone(), record.state.generation);
                        tokio::spawn(async move {
                            wait_pidfd(pidfd).await;
                            this.on_exit(id, generation).await;
                        });
                    }
                    None => self.clone().on_exit(record.id.clone(), record.state.generation).await,
                },
                Status::Restarting => {
                    let lock = self.lock_of(&record.id);
                    let _guard = lock.lock().await;
                    if let Err(err) = self.start_locked(record.clone()).await {
                        tracing::warn!(container = %record.id, error = %berth_proto::error_chain(&err), "restart failed");
                    }
                }
                Status::Created | Status::Exited | Status::Dead => {
                    // An engine that died between the monitor's "created" and
                    // `crun start` left a monitor waiting and the runtime's state: end both.
                    let dir = self.dir(&record.id);
                    let stray = std::fs::read_to_string(dir.join("monitor.pid"))
                        .ok()
                        .and_then(|p| p.trim().parse::<i32>().ok())
                        .and_then(|pid| live_monitor(pid, &record.id).map(|_| pid));
                    if stray.is_some() || self.runtime_state_exists(&record) {
                        let _ = self.runtime(&record, &["delete", "--force", &record.id]).await;
                    }
                    if let Some(pid) = stray {
                        // SAFETY: kill takes plain integers; the pid was just checked to be
                        // this container's monitor.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                    let _ = rootfs::unmount(&dir.join("rootfs"));
                    self.release_volumes(&record);
                    self.networks.detach(&record.id).await;
                }
                Status::Removing => {
                    let lock = self.lock_of(&record.id);
                    let _guard = lock.lock().await;
                    let mut record = record;
                    record.state.status = Status::Dead;
                    let _ = self.destroy_locked(record, false).await;
                }
            }
        }
    }
}

/// A pidfd for the monitor, if `pid` is still this container's monitor.
fn live_monitor(pid: i32, id: &str) -> Option<OwnedFd> {
    if pid <= 0 {
        return None;
    }
    // SAFETY: pidfd_open takes a pid and flags; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: pidfd_open returned a fresh descriptor we now own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // The pidfd pins the process, so the checks below cannot race with pid reuse.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text = String::from_utf8_lossy(&cmdline);
    if !text.contains("berth-monitor") || !text.contains(id) {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
    if matches!(state, Some('Z') | Some('X')) {
        return None;
    }
    Some(pidfd)
}

/// Returns when the process behind `pidfd` has exited.
async fn wait_pidfd(pidfd: OwnedFd) {
    // SAFETY: the AsyncFd owns the OwnedFd, which stays open and the same for its life.
    match unsafe { tokio::io::unix::AsyncFd::register(pidfd) } {
        Ok(fd) => {
            let _ = fd.readable().await;
        }
        Err(_) => {
            // Cannot register it: poll instead.
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_count() {
        let mut record = ContainerRecord::default();
        record.host_config.restart_policy.name = "on-failure".into();
        record.host_config.restart_policy.maximum_retry_count = 2;
        record.state.exit_code = 1;
        assert!(should_restart(&record));
        record.state.restart_count = 2;
        assert!(!should_restart(&record));
        record.state.exit_code = 0;
        record.state.restart_count = 0;
        assert!(!should_restart(&record));
        record.host_config.restart_policy.name = "always".into();
        assert!(should_restart(&record));
        record.state.manually_stopped = true;
        assert!(!should_restart(&record));
        record.host_config.restart_policy.name = "no".into();
        record.state.manually_stopped = false;
        assert!(!should_restart(&record));
        assert_eq!(restart_delay(0, None), Duration::from_millis(100));
        assert_eq!(restart_delay(3, None), Duration::from_millis(800));
        assert_eq!(restart_delay(20, None), Duration::from_secs(60));
        assert_eq!(restart_delay(20, Some(Duration::from_secs(11))), Duration::from_millis(100));
    }
}
