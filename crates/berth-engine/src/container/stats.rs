//! `stats`: CPU, memory, pids, network and block I/O of a running container, read from
//! its cgroup (v1 or v2) and its network namespace, as docker computes them.

use std::path::{Path, PathBuf};

use super::record::ContainerRecord;
use super::{ContainerError, Containers};

/// One reading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    pub read: String,
    /// CPU time the container used, nanoseconds.
    pub cpu_total: u64,
    /// CPU time of the whole machine, nanoseconds (docker's system_cpu_usage).
    pub system_cpu: u64,
    pub online_cpus: u32,
    /// Memory in use minus the reclaimable page cache, as `docker stats` shows it.
    pub memory_usage: u64,
    pub memory_limit: u64,
    pub pids: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
}

/// CPU % between two readings, as docker computes it.
pub fn cpu_percent(previous: &Sample, current: &Sample) -> f64 {
    let cpu = current.cpu_total.saturating_sub(previous.cpu_total) as f64;
    let system = current.system_cpu.saturating_sub(previous.system_cpu) as f64;
    if cpu > 0.0 && system > 0.0 {
        cpu / system * f64::from(current.online_cpus.max(1)) * 100.0
    } else {
        0.0
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn keyed(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok()))
}

fn host_memory() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines().find_map(|l| l.strip_prefix("MemTotal:")).and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok()).map_or(0, |kib| kib * 1024)
}

/// Total CPU time of the machine from /proc/stat, in nanoseconds.
fn system_cpu() -> u64 {
    let ticks = 100u64;
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|text| {
            let line = text.lines().next()?.strip_prefix("cpu ")?.to_owned();
            Some(line.split_whitespace().filter_map(|v| v.parse::<u64>().ok()).sum::<u64>() * (1_000_000_000 / ticks))
        })
        .unwrap_or(0)
}

/// Bytes received and sent on every interface but loopback, in `pid`'s namespace.
fn network(pid: i32) -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else { return (0, 0) };
    text.lines().skip(2).fold((0, 0), |(rx, tx), line| {
        let Some((name, rest)) = line.split_once(':') else { return (rx, tx) };
        if name.trim() == "lo" {
            return (rx, tx);
        }
        let f: Vec<u64> = rest.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        (rx + f.first().copied().unwrap_or(0), tx + f.get(8).copied().unwrap_or(0))
    })
}

impl Containers {
    fn cgroup_dir(&self, controller: &str, record: &ContainerRecord) -> PathBuf {
        let rel = Containers::cgroup_path(record);
        let rel = rel.trim_start_matches('/');
        if self.facts.cgroup_v2 {
            Path::new("/sys/fs/cgroup").join(rel)
        } else {
            Path::new("/sys/fs/cgroup").join(controller).join(rel)
        }
    }

    /// One reading of a running container.
    pub fn stats_sample(&self, record: &ContainerRecord) -> Result<Sample, ContainerError> {
        if !record.state.status.is_running() {
            return Err(ContainerError::NotRunning(record.name.clone()));
        }
        let mut sample = Sample { read: super::now_rfc3339(), system_cpu: system_cpu(), online_cpus: self.facts.cpus as u32, ..Default::default() };
        let host_memory = host_memory();
        if self.facts.cgroup_v2 {
            let dir = self.cgroup_dir("", record);
            sample.cpu_total = keyed(&dir.join("cpu.stat"), "usage_usec ").unwrap_or(0) * 1000;
            let usage = read_u64(&dir.join("memory.current")).unwrap_or(0);
            let inactive = keyed(&dir.join("memory.stat"), "inactive_file ").unwrap_or(0);
            sample.memory_usage = usage.saturating_sub(inactive);
            sample.memory_limit = read_u64(&dir.join("memory.max")).unwrap_or(host_memory).min(host_memory.max(1));
            sample.pids = read_u64(&dir.join("pids.current")).unwrap_or(0);
            if let Ok(text) = std::fs::read_to_string(dir.join("io.stat")) {
                for word in text.split_whitespace() {
                    if let Some(v) = word.strip_prefix("rbytes=").and_then(|v| v.parse::<u64>().ok()) {
                        sample.block_read += v;
                    }
                    if let Some(v) = word.strip_prefix("wbytes=").and_then(|v| v.parse::<u64>().ok()) {
                        sample.block_write += v;
                    }
                }
            }
        } else {
            sample.cpu_total = read_u64(&self.cgroup_dir("cpuacct", record).join("cpuacct.usage")).unwrap_or(0);
            let memory = self.cgroup_dir("memory", record);
            let usage = read_u64(&memory.join("memory.usage_in_bytes")).unwrap_or(0);
            let inactive = keyed(&memory.join("memory.stat"), "total_inactive_file ").unwrap_or(0);
            sample.memory_usage = usage.saturating_sub(inactive);
            sample.memory_limit = read_u64(&memory.join("memory.limit_in_bytes")).unwrap_or(host_memory).min(host_memory.max(1));
            sample.pids = read_u64(&self.cgroup_dir("pids", record).join("pids.current")).unwrap_or(0);
            if let Ok(text) = std::fs::read_to_string(self.cgroup_dir("blkio", record).join("blkio.throttle.io_service_bytes")) {
                for line in text.lines() {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    match (f.get(1), f.get(2).and_then(|v| v.parse::<u64>().ok())) {
                        (Some(&"Read"), Some(v)) => sample.block_read += v,
                        (Some(&"Write"), Some(v)) => sample.block_write += v,
                        _ => {}
                    }
                }
            }
        }
        (sample.net_rx, sample.net_tx) = network(record.state.pid);
        Ok(sample)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_percent_is_dockers() {
        let a = Sample { cpu_total: 1_000, system_cpu: 10_000, online_cpus: 2, ..Default::default() };
        let b = Sample { cpu_total: 6_000, system_cpu: 20_000, online_cpus: 2, ..Default::default() };
        assert!((cpu_percent(&a, &b) - 100.0).abs() < 1e-9);
        assert_eq!(cpu_percent(&b, &b), 0.0);
    }
}
