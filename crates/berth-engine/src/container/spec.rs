//! The OCI runtime config for a container: Docker's defaults (namespaces, mounts,
//! masked and read-only /proc paths, the device allowlist, capabilities, the seccomp
//! profile) plus what the user asked for. The result is an `oci_spec::runtime::Spec`,
//! so a config the runtime cannot parse fails here, with the field named.

use std::collections::BTreeSet;
use std::path::Path;

use oci_spec::runtime::{LinuxSeccomp, Spec};
use serde_json::{json, Value};

use super::record::ContainerRecord;

/// Docker's masked paths: bind-mounted over with nothing.
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const READONLY_PATHS: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

#[derive(Debug)]
pub struct SpecInput<'a> {
    pub record: &'a ContainerRecord,
    pub rootfs: &'a Path,
    /// Holds `hosts`, `hostname` and `resolv.conf`.
    pub files: &'a Path,
    pub user: ResolvedUser,
    pub env: Vec<String>,
    pub cwd: String,
    pub caps: BTreeSet<String>,
    pub cgroup_path: String,
    pub cgroup_v2: bool,
    /// None: unconfined.
    pub seccomp: Option<LinuxSeccomp>,
    pub no_new_privileges: bool,
    /// Whether the kernel accounts swap (memory.memsw on cgroup v1).
    pub swap_accounting: bool,
    /// With `--init`: the static init binary, bind-mounted at /sbin/docker-init.
    pub init: Option<std::path::PathBuf>,
    /// Volume and bind mounts: (host directory, target, read-only).
    pub binds: Vec<(std::path::PathBuf, String, bool)>,
    /// The network namespace to join; None shares the engine's (`--network host`).
    pub netns: Option<std::path::PathBuf>,
    /// `--pid`, `--ipc` and `--uts`: a namespace of its own, the engine's, or another
    /// container's (by its process).
    pub shared: SharedNamespaces,
    /// `--device`: the host's devices as found at start.
    pub devices: Vec<HostDevice>,
    /// The block I/O settings the kernel can apply, their devices as numbers.
    pub block_io: Option<Value>,
}

/// What the kernel's block I/O controller can apply here (dockerd discards the rest
/// with a warning at create).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlkioSupport {
    pub weight: bool,
    pub throttle: bool,
}

impl BlkioSupport {
    pub fn probe(cgroup_v2: bool) -> BlkioSupport {
        if cgroup_v2 {
            let io = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").is_ok_and(|c| c.split_whitespace().any(|c| c == "io"));
            // io.weight needs a scheduler with weights (BFQ) below the root.
            return BlkioSupport { weight: false, throttle: io };
        }
        let dir = Path::new("/sys/fs/cgroup/blkio");
        BlkioSupport {
            weight: dir.join("blkio.weight").exists() || dir.join("blkio.bfq.weight").exists(),
            throttle: dir.join("blkio.throttle.read_bps_device").exists(),
        }
    }
}

/// The OCI config's `linux.resources.blockIO` for what `support` can apply: each
/// device path becomes its major and minor numbers, as found now. None: nothing to set.
pub fn block_io(blkio: &super::record::Blkio, support: BlkioSupport) -> Result<Option<Value>, String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let numbers = |path: &str| -> Result<(u32, u32), String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("{path}: {e}"))?;
        if !meta.file_type().is_block_device() {
            return Err(format!("{path} is not a block device"));
        }
        Ok((libc::major(meta.rdev()), libc::minor(meta.rdev())))
    };
    let rates = |list: &[super::record::DeviceRate]| -> Result<Value, String> {
        let mut out = Vec::new();
        for d in list {
            let (major, minor) = numbers(&d.path)?;
            out.push(json!({"major": major, "minor": minor, "rate": d.rate}));
        }
        Ok(Value::Array(out))
    };
    let mut io = serde_json::Map::new();
    if support.weight {
        if blkio.weight > 0 {
            io.insert("weight".into(), json!(blkio.weight));
        }
        if !blkio.weight_device.is_empty() {
            let mut out = Vec::new();
            for d in &blkio.weight_device {
                let (major, minor) = numbers(&d.path)?;
                out.push(json!({"major": major, "minor": minor, "weight": d.rate}));
            }
            io.insert("weightDevice".into(), Value::Array(out));
        }
    }
    if support.throttle {
        for (key, list) in [
            ("throttleReadBpsDevice", &blkio.read_bps),
            ("throttleWriteBpsDevice", &blkio.write_bps),
            ("throttleReadIOPSDevice", &blkio.read_iops),
            ("throttleWriteIOPSDevice", &blkio.write_iops),
        ] {
            if !list.is_empty() {
                io.insert(key.into(), rates(list)?);
            }
        }
    }
    Ok((!io.is_empty()).then_some(Value::Object(io)))
}

/// One host device node, where the container sees it, and what it may do with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDevice {
    pub path: String,
    /// "c" or "b".
    pub kind: &'static str,
    pub major: i64,
    pub minor: i64,
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub access: String,
}

/// The device nodes `--device` mappings name: a node itself, or every node under a
/// folder (at the same place under the container's path). What is not a device node
/// there is refused, as docker refuses it.
pub fn host_devices(mappings: &[super::record::DeviceMapping]) -> Result<Vec<HostDevice>, String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    fn walk(host: &Path, target: &str, access: &str, out: &mut Vec<HostDevice>, top: bool) -> Result<(), String> {
        let meta = std::fs::metadata(host)
            .map_err(|e| format!("error gathering device information while adding custom device {:?}: {e}", host.display().to_string()))?;
        let kind = if meta.file_type().is_char_device() {
            "c"
        } else if meta.file_type().is_block_device() {
            "b"
        } else if meta.is_dir() {
            let entries = std::fs::read_dir(host).map_err(|e| format!("read {}: {e}", host.display()))?;
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                walk(&entry.path(), &format!("{}/{name}", target.trim_end_matches('/')), access, out, false)?;
            }
            return Ok(());
        } else if top {
            return Err(format!("error gathering device information while adding custom device {:?}: not a device node", host.display().to_string()));
        } else {
            return Ok(());
        };
        let rdev = meta.rdev();
        out.push(HostDevice {
            path: target.to_owned(),
            kind,
            major: i64::from(libc::major(rdev)),
            minor: i64::from(libc::minor(rdev)),
            file_mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            access: access.to_owned(),
        });
        Ok(())
    }
    let mut out = Vec::new();
    for m in mappings {
        walk(Path::new(&m.path_on_host), m.target(), m.permissions(), &mut out, true)?;
    }
    Ok(out)
}

/// Where one namespace comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Joined {
    #[default]
    Own,
    Host,
    /// Another container's: its process.
    Process(u32),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedNamespaces {
    pub pid: Joined,
    pub ipc: Joined,
    /// A /dev/shm on the host to bind (its own when shareable, or the donor's).
    pub shm: Option<std::path::PathBuf>,
    /// `--ipc none`: its own, without /dev/shm.
    pub no_shm: bool,
    pub uts_host: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build the OCI runtime config")]
pub struct SpecError(#[source] pub serde_json::Error);

/// The CFS period Berth sets with `--cpus`, in microseconds (docker's).
pub const CPU_PERIOD: i64 = 100_000;

/// The CFS quota for `nano_cpus` (docker's NanoCpus) over [`CPU_PERIOD`].
pub fn cpu_quota(nano_cpus: i64) -> i64 {
    nano_cpus.saturating_mul(CPU_PERIOD) / 1_000_000_000
}

/// Memory plus swap as docker sets it: twice the memory when unset, -1 unlimited.
pub fn swap_limit(memory: i64, memory_swap: i64) -> i64 {
    match memory_swap {
        0 => memory.saturating_mul(2),
        n => n,
    }
}

fn device(kind: &str, major: Option<i64>, minor: Option<i64>, access: &str) -> Value {
    json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": access})
}

/// `--ulimit` as the OCI process's rlimits (None: none set). Exec'd processes get them
/// too, as in docker.
pub fn rlimits(extras: &super::record::HostExtras) -> Option<Value> {
    // -1 is "unlimited" to docker; RLIM_INFINITY to the runtime.
    let limit = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    (!extras.ulimits.is_empty()).then(|| {
        extras
            .ulimits
            .iter()
            .map(|u| json!({"type": format!("RLIMIT_{}", u.name.to_ascii_uppercase()), "soft": limit(u.soft), "hard": limit(u.hard)}))
            .collect()
    })
}

pub fn build(input: &SpecInput<'_>) -> Result<Spec, SpecError> {
    let record = input.record;
    let hc = &record.host_config;
    let caps: Vec<&str> = input.caps.iter().map(String::as_str).collect();
    let mut process = json!({
        "terminal": record.config.tty,
        "user": {
            "uid": input.user.uid,
            "gid": input.user.gid,
            "additionalGids": input.user.additional_gids,
        },
        "args": match &input.init {
            Some(_) => ["/sbin/docker-init".to_owned(), "--".to_owned()]
                .into_iter()
                .chain(std::iter::once(record.path.clone()))
                .chain(record.args.iter().cloned())
                .collect::<Vec<_>>(),
            None => std::iter::once(record.path.clone()).chain(record.args.iter().cloned()).collect::<Vec<_>>(),
        },
        "env": input.env,
        "cwd": if input.cwd.is_empty() { "/".to_owned() } else { input.cwd.clone() },
        "capabilities": {
            "bounding": caps, "effective": caps, "permitted": caps,
        },
        "noNewPrivileges": input.no_new_privileges,
    });
    if let Some(rlimits) = rlimits(&hc.extras) {
        process["rlimits"] = rlimits;
    }
    if hc.extras.oom_score_adj != 0 {
        process["oomScoreAdj"] = json!(hc.extras.oom_score_adj);
    }
    if input.user.uid != 0 {
        // Docker gives a non-root user no effective or permitted capabilities.
        process["capabilities"]["effective"] = json!([]);
        process["capabilities"]["permitted"] = json!([]);
    }

    let dev_options = ["nosuid", "strictatime", "mode=755", "size=65536k"];
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": dev_options}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", if hc.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", if hc.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
    ];
    // /dev/shm goes with the IPC namespace: its own, the host's, or the other container's.
    match (&input.shared.ipc, input.shared.no_shm) {
        (_, true) => {}
        (_, false) if input.shared.shm.is_some() => {
            mounts.push(json!({"destination": "/dev/shm", "type": "bind", "source": input.shared.shm, "options": ["rbind", "rprivate"]}))
        }
        (Joined::Own, false) => mounts.push(json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={}", if hc.extras.shm_size > 0 { hc.extras.shm_size } else { 67_108_864 })]})),
        (Joined::Host, false) => mounts.push(json!({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm", "options": ["rbind", "rprivate"]})),
        // Joined without a shareable donor's folder: checked before; nothing to bind.
        (Joined::Process(_), false) => {}
    }
    for file in ["resolv.conf", "hostname", "hosts"] {
        mounts.push(json!({
            "destination": format!("/etc/{file}"),
            "type": "bind",
            "source": input.files.join(file),
            "options": ["rbind", "rprivate"],
        }));
    }
    if let Some(init) = &input.init {
        mounts.push(json!({
            "destination": "/sbin/docker-init",
            "type": "bind",
            "source": init,
            "options": ["bind", "ro", "nosuid", "nodev"],
        }));
    }
    for (source, target, read_only) in &input.binds {
        let mut options = vec!["rbind", "rprivate"];
        if *read_only {
            options.push("ro");
        }
        mounts.push(json!({"destination": target, "type": "bind", "source": source, "options": options}));
    }
    for tmpfs in &hc.tmpfs {
        let mut options: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
        options.extend(tmpfs.options.split(',').filter(|o| !o.is_empty()).map(str::to_owned));
        if tmpfs.read_only {
            options.push("ro".into());
        }
        mounts.push(json!({"destination": tmpfs.target, "type": "tmpfs", "source": "tmpfs", "options": options}));
    }

    let mut namespaces = Vec::new();
    for (kind, joined) in [("pid", &input.shared.pid), ("ipc", &input.shared.ipc)] {
        match joined {
            Joined::Own => namespaces.push(json!({"type": kind})),
            Joined::Host => {}
            Joined::Process(pid) => namespaces.push(json!({"type": kind, "path": format!("/proc/{pid}/ns/{kind}")})),
        }
    }
    if !input.shared.uts_host {
        namespaces.push(json!({"type": "uts"}));
    }
    namespaces.push(json!({"type": "mount"}));
    if let Some(path) = &input.netns {
        namespaces.push(json!({"type": "network", "path": path}));
    }
    if hc.extras.private_cgroupns(input.cgroup_v2) {
        namespaces.push(json!({"type": "cgroup"}));
    }

    let devices = if hc.privileged {
        vec![json!({"allow": true, "access": "rwm"})]
    } else {
        vec![
            json!({"allow": false, "access": "rwm"}),
            device("c", None, None, "m"),
            device("b", None, None, "m"),
            device("c", Some(1), Some(3), "rwm"),
            device("c", Some(1), Some(5), "rwm"),
            device("c", Some(1), Some(7), "rwm"),
            device("c", Some(1), Some(8), "rwm"),
            device("c", Some(1), Some(9), "rwm"),
            device("c", Some(5), Some(0), "rwm"),
            device("c", Some(5), Some(1), "rwm"),
            device("c", Some(5), Some(2), "rwm"),
            device("c", Some(136), None, "rwm"),
            device("c", Some(10), Some(200), "rwm"),
        ]
    };
    let mut devices = devices;
    for d in &input.devices {
        devices.push(device(d.kind, Some(d.major), Some(d.minor), &d.access));
    }
    for rule in &hc.extras.device_cgroup_rules {
        // Checked at create; a rule that no longer parses is left out.
        if let Ok((kind, major, minor, access)) = super::record::parse_device_cgroup_rule(rule) {
            devices.push(json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": access}));
        }
    }
    let r = &hc.resources;
    let mut resources = json!({"devices": devices});
    let mut memory = serde_json::Map::new();
    if r.memory > 0 {
        memory.insert("limit".into(), json!(r.memory));
        if input.swap_accounting {
            memory.insert("swap".into(), json!(swap_limit(r.memory, r.memory_swap)));
        }
    }
    if let Some(swappiness) = hc.extras.memory_swappiness {
        memory.insert("swappiness".into(), json!(swappiness));
    }
    if hc.extras.memory_reservation > 0 {
        memory.insert("reservation".into(), json!(hc.extras.memory_reservation));
    }
    // cgroup v2 has no switch for it: discarded with a warning at create, as dockerd.
    if hc.extras.oom_kill_disable && !input.cgroup_v2 {
        memory.insert("disableOOMKiller".into(), json!(true));
    }
    if !memory.is_empty() {
        resources["memory"] = Value::Object(memory);
    }
    if let Some(io) = &input.block_io {
        resources["blockIO"] = io.clone();
    }
    let mut cpu = serde_json::Map::new();
    if r.nano_cpus > 0 {
        cpu.insert("period".into(), json!(CPU_PERIOD));
        cpu.insert("quota".into(), json!(cpu_quota(r.nano_cpus)));
    }
    if r.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(r.cpu_shares.max(2)));
    }
    if !hc.extras.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(hc.extras.cpuset_cpus));
    }
    if !hc.extras.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(hc.extras.cpuset_mems));
    }
    if hc.extras.cpu_rt_period > 0 {
        cpu.insert("realtimePeriod".into(), json!(hc.extras.cpu_rt_period));
    }
    if hc.extras.cpu_rt_runtime > 0 {
        cpu.insert("realtimeRuntime".into(), json!(hc.extras.cpu_rt_runtime));
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if r.pids_limit > 0 {
        resources["pids"] = json!({"limit": r.pids_limit});
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": input.cgroup_path,
        "resources": resources,
    });
    if !input.devices.is_empty() {
        linux["devices"] = json!(input
            .devices
            .iter()
            .map(|d| json!({"path": d.path, "type": d.kind, "major": d.major, "minor": d.minor, "fileMode": d.file_mode, "uid": d.uid, "gid": d.gid}))
            .collect::<Vec<_>>());
    }
    // A client's own lists replace docker's (an empty one: none); privileged, none.
    if !hc.privileged {
        linux["maskedPaths"] = hc.extras.masked_paths.as_ref().map_or_else(|| json!(MASKED_PATHS), |p| json!(p));
        linux["readonlyPaths"] = hc.extras.readonly_paths.as_ref().map_or_else(|| json!(READONLY_PATHS), |p| json!(p));
    }
    if !hc.extras.sysctls.is_empty() {
        linux["sysctl"] = json!(hc.extras.sysctls);
    }
    if let Some(seccomp) = &input.seccomp {
        linux["seccomp"] = serde_json::to_value(seccomp).map_err(SpecError)?;
    }

    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": input.rootfs, "readonly": hc.read_only},
        "mounts": mounts,
        "linux": linux,
    });
    if !hc.extras.annotations.is_empty() {
        spec["annotations"] = json!(hc.extras.annotations);
    }
    // In the host's UTS namespace, the host's names stay.
    if !input.shared.uts_host {
        spec["hostname"] = json!(record.config.hostname);
        if !hc.extras.domainname.is_empty() {
            spec["domainname"] = json!(hc.extras.domainname);
        }
    }
    serde_json::from_value(spec).map_err(SpecError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_defaults_are_in_the_config() {
        let mut record = ContainerRecord { path: "sh".into(), args: vec!["-c".into(), "true".into()], ..Default::default() };
        record.config.hostname = "abc".into();
        record.host_config.resources.memory = 64 << 20;
        record.host_config.resources.nano_cpus = 500_000_000;
        record.host_config.resources.pids_limit = 50;
        let caps: BTreeSet<String> = crate::container::caps::DEFAULT.iter().map(|c| (*c).to_owned()).collect();
        let input = SpecInput {
            record: &record,
            rootfs: Path::new("/r"),
            files: Path::new("/f"),
            user: ResolvedUser::default(),
            env: vec!["PATH=/bin".into()],
            cwd: String::new(),
            seccomp: Some(crate::container::seccomp::default_profile(&caps)),
            caps,
            cgroup_path: "/berth/abc".into(),
            cgroup_v2: false,
            no_new_privileges: false,
            swap_accounting: false,
            init: None,
            binds: Vec::new(),
            netns: Some("/run/berth/netns/test".into()),
            shared: SharedNamespaces::default(),
            devices: Vec::new(),
            block_io: None,
        };
        let spec = build(&input).expect("spec");
        let value = serde_json::to_value(&spec).expect("json");
        assert_eq!(value["process"]["args"], json!(["sh", "-c", "true"]));
        assert_eq!(value["process"]["capabilities"]["bounding"].as_array().expect("caps").len(), 14);
        assert_eq!(value["linux"]["resources"]["memory"]["limit"], json!(64 << 20));
        assert!(value["linux"]["resources"]["memory"].get("swap").is_none());
        assert_eq!(value["linux"]["resources"]["cpu"]["quota"], json!(50_000));
        assert_eq!(value["linux"]["resources"]["pids"]["limit"], json!(50));
        assert_eq!(value["linux"]["maskedPaths"].as_array().expect("masked").len(), 11);
        assert_eq!(value["linux"]["seccomp"]["defaultAction"], json!("SCMP_ACT_ERRNO"));
        let namespaces: Vec<&str> = value["linux"]["namespaces"].as_array().expect("ns").iter().filter_map(|n| n["type"].as_str()).collect();
        assert_eq!(namespaces, ["pid", "ipc", "uts", "mount", "network"]);
        assert!(value["process"].get("rlimits").is_none() && value["linux"].get("sysctl").is_none());
    }

    #[test]
    fn ulimits_sysctls_and_shm_size_reach_the_config() {
        let mut record = ContainerRecord { path: "sh".into(), ..Default::default() };
        record.host_config.extras.ulimits = vec![super::super::record::Ulimit { name: "nofile".into(), soft: 1024, hard: -1 }];
        record.host_config.extras.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
        record.host_config.extras.shm_size = 128 << 20;
        let input = SpecInput {
            record: &record,
            rootfs: Path::new("/r"),
            files: Path::new("/f"),
            user: ResolvedUser::default(),
            env: vec![],
            cwd: String::new(),
            caps: BTreeSet::new(),
            cgroup_path: "/berth/x".into(),
            cgroup_v2: false,
            seccomp: None,
            no_new_privileges: false,
            swap_accounting: false,
            init: None,
            binds: vec![],
            netns: None,
            shared: SharedNamespaces::default(),
            devices: Vec::new(),
            block_io: None,
        };
        let value = serde_json::to_value(build(&input).expect("spec")).expect("json");
        assert_eq!(value["process"]["rlimits"], json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": u64::MAX}]));
        assert_eq!(value["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");
        let shm = value["mounts"].as_array().expect("mounts").iter().find(|m| m["destination"] == "/dev/shm").expect("shm").clone();
        assert!(shm["options"].as_array().expect("options").contains(&json!("size=134217728")), "{shm}");

        // --pid host, --ipc container:<pid 42's>, --uts host, --cpuset-cpus.
        let mut record = record.clone();
        record.config.hostname = "abc".into();
        record.host_config.extras.cpuset_cpus = "0-1".into();
        let input = SpecInput {
            record: &record,
            shared: SharedNamespaces { pid: Joined::Host, ipc: Joined::Process(42), shm: Some("/c/donor/shm".into()), no_shm: false, uts_host: true },
            ..input
        };
        let value = serde_json::to_value(build(&input).expect("spec")).expect("json");
        assert_eq!(value["linux"]["namespaces"], json!([{"type": "ipc", "path": "/proc/42/ns/ipc"}, {"type": "mount"}]));
        assert!(value.get("hostname").is_none(), "the host's UTS namespace keeps the host's name: {value}");
        let shm = value["mounts"].as_array().expect("mounts").iter().find(|m| m["destination"] == "/dev/shm").expect("shm").clone();
        assert_eq!(shm["source"], "/c/donor/shm");
        assert_eq!(value["linux"]["resources"]["cpu"]["cpus"], "0-1");
        // --ipc none: no /dev/shm at all.
        let input = SpecInput { shared: SharedNamespaces { no_shm: true, ..Default::default() }, ..input };
        let value = serde_json::to_value(build(&input).expect("spec")).expect("json");
        assert!(!value["mounts"].as_array().expect("mounts").iter().any(|m| m["destination"] == "/dev/shm"));
    }

    #[test]
    fn devices_parse_as_docker_spells_them_and_are_found_on_the_host() {
        use super::super::record::{parse_device_cgroup_rule, DeviceMapping};
        let m = |h: &str, c: &str, p: &str| DeviceMapping { path_on_host: h.into(), path_in_container: c.into(), cgroup_permissions: p.into() };
        assert_eq!(DeviceMapping::parse("/dev/null").expect("one"), m("/dev/null", "/dev/null", "rwm"));
        assert_eq!(DeviceMapping::parse("/dev/null:r").expect("mode"), m("/dev/null", "/dev/null", "r"));
        assert_eq!(DeviceMapping::parse("/dev/null:/dev/x").expect("target"), m("/dev/null", "/dev/x", "rwm"));
        assert_eq!(DeviceMapping::parse("/dev/null:/dev/x:rw").expect("all"), m("/dev/null", "/dev/x", "rw"));
        assert!(DeviceMapping::parse("/dev/null:/dev/x:rwx").unwrap_err().contains("invalid device mode"));
        assert!(DeviceMapping::parse("null").unwrap_err().contains("absolute"));
        assert_eq!(parse_device_cgroup_rule("c 1:3 rwm").expect("rule"), ("c".into(), Some(1), Some(3), "rwm".into()));
        assert_eq!(parse_device_cgroup_rule("b *:* m").expect("rule"), ("b".into(), None, None, "m".into()));
        for bad in ["c 1:3", "x 1:3 r", "c 1-3 r", "c a:3 r", "c 1:3 rr"] {
            assert!(parse_device_cgroup_rule(bad).unwrap_err().contains("invalid device cgroup rule format"), "{bad}");
        }
        let found = host_devices(&[m("/dev/null", "/dev/mine", "rw")]).expect("/dev/null");
        assert_eq!((found[0].path.as_str(), found[0].kind, found[0].major, found[0].minor, found[0].access.as_str()), ("/dev/mine", "c", 1, 3, "rw"));
        assert!(host_devices(&[m("/etc/hostname", "", "")]).unwrap_err().contains("not a device node"));
        assert!(host_devices(&[m("/dev/no-such-thing", "", "")]).unwrap_err().contains("error gathering device information"));
    }

    #[test]
    fn namespace_modes_parse_as_docker_spells_them() {
        use super::super::record::{cpuset_list, HostExtras, NamespaceMode};
        let modes = |pid: &str, ipc: &str, uts: &str| HostExtras { pid_mode: pid.into(), ipc_mode: ipc.into(), uts_mode: uts.into(), ..Default::default() };
        let m = modes("host", "container:db", "host");
        assert_eq!((m.pid(), m.ipc(), m.uts()), (Ok(NamespaceMode::Host), Ok(NamespaceMode::Container("db".into())), Ok(NamespaceMode::Host)));
        let m = modes("", "shareable", "");
        assert_eq!((m.pid(), m.ipc(), m.uts()), (Ok(NamespaceMode::Own), Ok(NamespaceMode::Own), Ok(NamespaceMode::Own)));
        assert_eq!(modes("foo", "", "").pid(), Err("invalid PID mode: foo".into()));
        assert_eq!(modes("", "container:", "").ipc(), Err("invalid IPC mode: container:".into()));
        assert_eq!(modes("", "", "container:x").uts(), Err("invalid UTS mode: container:x".into()));
        assert_eq!(cpuset_list("0-2,5").expect("list").into_iter().collect::<Vec<_>>(), [0, 1, 2, 5]);
        assert!(cpuset_list("2-1").is_err() && cpuset_list("a").is_err() && cpuset_list("").is_err());
    }
}
