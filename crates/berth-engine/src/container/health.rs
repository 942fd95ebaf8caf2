//! Health checks: the image's HEALTHCHECK or `--health-*`, probed by exec while the
//! container runs. Docker's rules: the first probe after one interval; a failure during
//! the start period does not count; `retries` failures in a row make it unhealthy; a
//! success makes it healthy. Each status change goes out as `health_status: <status>`.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::record::{Health, HealthProbe, Healthcheck, Status};
use super::{now_rfc3339, Containers, ExecRequest};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u32 = 3;
/// Docker keeps this much of a probe's output.
const MAX_OUTPUT: usize = 4096;
const KEPT_PROBES: usize = 5;

fn nanos(n: i64, default: Duration) -> Duration {
    if n > 0 {
        Duration::from_nanos(n as u64)
    } else {
        default
    }
}

/// The probe's command line, or None when there is nothing to probe.
pub fn probe_command(check: &Healthcheck) -> Option<Vec<String>> {
    match check.test.first().map(String::as_str) {
        Some("CMD") if check.test.len() > 1 => Some(check.test[1..].to_vec()),
        Some("CMD-SHELL") if check.test.len() > 1 => Some(vec!["/bin/sh".into(), "-c".into(), check.test[1..].join(" ")]),
        _ => None,
    }
}

/// Merges the request's health settings over the image's (docker's rules: a test
/// replaces the test; non-zero durations and retries replace theirs).
pub fn merge(image: Option<Healthcheck>, request: Option<Healthcheck>) -> Option<Healthcheck> {
    match (image, request) {
        (None, None) => None,
        (Some(image), None) => Some(image),
        (None, Some(request)) => Some(request),
        (Some(image), Some(request)) => Some(Healthcheck {
            test: if request.test.is_empty() { image.test } else { request.test },
            interval: if request.interval > 0 { request.interval } else { image.interval },
            timeout: if request.timeout > 0 { request.timeout } else { image.timeout },
            start_period: if request.start_period > 0 { request.start_period } else { image.start_period },
            retries: if request.retries > 0 { request.retries } else { image.retries },
        }),
    }
}

impl Containers {
    /// Probes the container while start attempt `generation` runs.
    pub(super) async fn health_loop(self: Arc<Self>, id: String, generation: u64, check: Healthcheck) {
        let Some(command) = probe_command(&check) else { return };
        let interval = nanos(check.interval, DEFAULT_INTERVAL);
        let timeout = nanos(check.timeout, DEFAULT_TIMEOUT);
        let start_period = nanos(check.start_period, Duration::ZERO);
        let retries = if check.retries > 0 { check.retries } else { DEFAULT_RETRIES };
        let began = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(interval).await;
            match self.store.get(&id) {
                Ok(Some(r)) if r.state.generation == generation && r.state.status == Status::Running => {}
                Ok(Some(r)) if r.state.generation == generation && r.state.status == Status::Paused => continue,
                _ => return,
            }
            let probe = self.probe(&id, &command, timeout).await;
            let lock = self.lock_of(&id);
            let _guard = lock.lock().await;
            let Ok(Some(mut record)) = self.store.get(&id) else { return };
            if record.state.generation != generation || !record.state.status.is_running() {
                return;
            }
            let health = record.state.health.get_or_insert_with(|| Health { status: "starting".into(), ..Default::default() });
            let before = health.status.clone();
            if probe.exit_code == 0 {
                health.failing_streak = 0;
                health.status = "healthy".into();
            } else if began.elapsed() >= start_period || health.status != "starting" {
                health.failing_streak += 1;
                if health.failing_streak >= retries {
                    health.status = "unhealthy".into();
                }
            }
            health.log.push(probe);
            if health.log.len() > KEPT_PROBES {
                let extra = health.log.len() - KEPT_PROBES;
                health.log.drain(..extra);
            }
            let after = health.status.clone();
            if self.store.update(&record).is_err() {
                return;
            }
            if after != before {
                self.publish(&record, &format!("health_status: {after}"), &[]);
                self.changed(&id);
            }
        }
    }

    /// One probe: exec the command, keep its output, give up after `timeout`.
    async fn probe(self: &Arc<Self>, id: &str, command: &[String], timeout: Duration) -> HealthProbe {
        let start = now_rfc3339();
        let request = ExecRequest { container: id.to_owned(), cmd: command.to_vec(), ..Default::default() };
        let (exit_code, output) = match self.exec(request).await {
            Err(err) => (-1, berth_proto::error_chain(&err)),
            Ok(mut streams) => {
                let mut stdout = streams.child.stdout.take();
                let mut stderr = streams.child.stderr.take();
                let run = async {
                    let mut out = Vec::new();
                    let mut err = Vec::new();
                    if let Some(pipe) = stdout.as_mut() {
                        let _ = pipe.take(MAX_OUTPUT as u64).read_to_end(&mut out).await;
                    }
                    if let Some(pipe) = stderr.as_mut() {
                        let _ = pipe.take(MAX_OUTPUT as u64).read_to_end(&mut err).await;
                    }
                    let status = streams.child.wait().await;
                    out.extend(err);
                    out.truncate(MAX_OUTPUT);
                    (status.ok().and_then(|s| s.code()).unwrap_or(-1), String::from_utf8_lossy(&out).into_owned())
                };
                let result = tokio::time::timeout(timeout, run).await;
                let result = match result {
                    Ok(done) => done,
                    Err(_) => (-1, format!("Health check exceeded timeout ({timeout:?})")),
                };
                self.exec_done(&streams.exec_id, &streams.container_id, result.0);
                result
            }
        };
        HealthProbe { start, end: now_rfc3339(), exit_code, output }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_merging_follow_docker() {
        let shell = Healthcheck { test: vec!["CMD-SHELL".into(), "test -f /ok".into()], ..Default::default() };
        assert_eq!(probe_command(&shell), Some(vec!["/bin/sh".into(), "-c".into(), "test -f /ok".into()]));
        let exec = Healthcheck { test: vec!["CMD".into(), "true".into()], ..Default::default() };
        assert_eq!(probe_command(&exec), Some(vec!["true".into()]));
        assert_eq!(probe_command(&Healthcheck { test: vec!["NONE".into()], ..Default::default() }), None);
        let image = Healthcheck { test: vec!["CMD".into(), "a".into()], interval: 5, retries: 2, ..Default::default() };
        let request = Healthcheck { interval: 9, ..Default::default() };
        let merged = merge(Some(image), Some(request)).expect("merged");
        assert_eq!((merged.test[1].as_str(), merged.interval, merged.retries), ("a", 9, 2));
    }
}
