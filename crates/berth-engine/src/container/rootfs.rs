//! A container's root filesystem: an overlay of the image's snapshots (read-only lower
//! layers) under a writable layer of its own, plus the files Berth manages
//! (`/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`), and user lookup inside the
//! image. Files in the image are opened with `openat2(RESOLVE_IN_ROOT)`, so an image's
//! symlink can never lead the engine to a host file.

use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::spec::ResolvedUser;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("cannot {what}")]
    Io { what: String, source: std::io::Error },
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UnknownUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    UnknownGroup(String),
    #[error("the image has too many layers for one overlay mount ({0} bytes of options)")]
    TooManyLayers(usize),
}

impl RootfsError {
    pub fn kind(&self) -> berth_proto::ErrorKind {
        match self {
            RootfsError::UnknownUser(_) | RootfsError::UnknownGroup(_) => berth_proto::ErrorKind::InvalidArgument,
            _ => berth_proto::ErrorKind::Internal,
        }
    }
}

pub use crate::files::{is_mounted, open_in_root, open_with, resolve_in_root};

impl From<crate::files::FsError> for RootfsError {
    fn from(e: crate::files::FsError) -> RootfsError {
        RootfsError::Io { what: e.what, source: e.source }
    }
}

/// Unmounts `path` if mounted (lazily if busy).
pub fn unmount(path: &Path) -> Result<(), RootfsError> {
    Ok(crate::files::unmount(path)?)
}

/// Copies a directory tree, owners and modes kept (see [`crate::files::copy_tree`]).
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), RootfsError> {
    Ok(crate::files::copy_tree(from, to)?)
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RootfsError {
    let what = what.into();
    move |source| RootfsError::Io { what, source }
}

fn cstring(path: &Path) -> Result<CString, RootfsError> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| RootfsError::Io { what: format!("use path {}", path.display()), source: std::io::ErrorKind::InvalidInput.into() })
}

/// Mounts `lowers` (top first) with `upper`/`work` at `target`.
pub fn mount_overlay(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<(), RootfsError> {
    for dir in [upper, work, target] {
        std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    }
    let lower = lowers.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":");
    let data = format!("lowerdir={lower},upperdir={},workdir={}", upper.display(), work.display());
    // The kernel reads mount options from one page.
    if data.len() >= 4096 {
        return Err(RootfsError::TooManyLayers(data.len()));
    }
    let source = CString::new("overlay").expect("no NUL");
    let fstype = CString::new("overlay").expect("no NUL");
    let target_c = cstring(target)?;
    let data_c = CString::new(data).map_err(|_| RootfsError::Io { what: "build overlay options".into(), source: std::io::ErrorKind::InvalidInput.into() })?;
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
    let ret = unsafe { libc::mount(source.as_ptr(), target_c.as_ptr(), fstype.as_ptr(), 0, data_c.as_ptr().cast()) };
    if ret != 0 {
        return Err(RootfsError::Io { what: format!("mount the overlay at {}", target.display()), source: std::io::Error::last_os_error() });
    }
    Ok(())
}

/// Mounts a tmpfs at `path` (nosuid, noexec, nodev) with `options` ("mode=1777,size=N").
pub fn mount_tmpfs(path: &Path, options: &str) -> Result<(), RootfsError> {
    let target = cstring(path)?;
    let data = CString::new(options).map_err(|_| RootfsError::Io {
        what: format!("mount a tmpfs at {}", path.display()),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    let flags = libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV;
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::mount(c"shm".as_ptr(), target.as_ptr(), c"tmpfs".as_ptr(), flags, data.as_ptr().cast()) } != 0 {
        return Err(RootfsError::Io { what: format!("mount a tmpfs at {}", path.display()), source: std::io::Error::last_os_error() });
    }
    Ok(())
}

/// Makes a mount's target in `root` where the image has none: missing folders 0755 and
/// root's, the last one an empty file when `file` (a bind of a file). Links on the way
/// resolve inside the root; a target that exists is left as it is.
pub fn make_mount_point(root: &Path, target: &str, file: bool) -> Result<(), RootfsError> {
    use std::os::unix::fs::PermissionsExt;
    let parts: Vec<&str> = target.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    let mut host = root.to_path_buf();
    let mut sofar = String::new();
    for (n, part) in parts.iter().enumerate() {
        if *part == ".." {
            return Ok(());
        }
        sofar.push('/');
        sofar.push_str(part);
        match crate::files::resolve_in_root(root, &sofar) {
            Ok(real) => host = real,
            Err(_) => {
                let next = host.join(part);
                let last = n + 1 == parts.len();
                if last && file {
                    std::fs::File::create(&next).map_err(io(format!("create the mount point {sofar}")))?;
                    std::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o755)).map_err(io(format!("create the mount point {sofar}")))?;
                } else {
                    std::fs::create_dir(&next).map_err(io(format!("create the mount point {sofar}")))?;
                    std::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o755)).map_err(io(format!("create the mount point {sofar}")))?;
                }
                host = next;
            }
        }
    }
    Ok(())
}

fn read_in_root(root: &Path, path: &str) -> String {
    let mut text = String::new();
    if let Ok(mut file) = open_in_root(root, path) {
        // /etc/passwd is small; cap what a hostile image can make us read.
        let _ = (&mut file).take(4 << 20).read_to_string(&mut text);
    }
    text
}

/// Resolves docker's `--user` (`name`, `uid`, `name:group`, `uid:gid`, empty = root)
/// against the image's /etc/passwd and /etc/group.
pub fn resolve_user(root: &Path, spec: &str) -> Result<ResolvedUser, RootfsError> {
    let passwd = read_in_root(root, "/etc/passwd");
    let group = read_in_root(root, "/etc/group");
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let entry = passwd.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4).then(|| (f[0], f[2].parse::<u32>().ok(), f[3].parse::<u32>().ok()))
    });
    let (name, uid, mut gid) = match user_part.parse::<u32>() {
        Ok(uid) => match entry.clone().find(|(_, u, _)| *u == Some(uid)) {
            Some((name, _, gid)) => (Some(name.to_owned()), uid, gid.unwrap_or(0)),
            None => (None, uid, 0),
        },
        Err(_) => match entry.clone().find(|(n, _, _)| *n == user_part) {
            Some((name, Some(uid), gid)) => (Some(name.to_owned()), uid, gid.unwrap_or(0)),
            _ => return Err(RootfsError::UnknownUser(user_part.to_owned())),
        },
    };
    let groups = group.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3).then(|| (f[0], f[2].parse::<u32>().ok(), f.get(3).copied().unwrap_or("")))
    });
    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => match groups.clone().find(|(n, _, _)| *n == g) {
                Some((_, Some(gid), _)) => gid,
                _ => return Err(RootfsError::UnknownGroup(g.to_owned())),
            },
        };
    }
    // As initgroups(3) does: the primary group, then the groups listing the user.
    let mut additional_gids: Vec<u32> = vec![gid];
    if let (Some(name), None) = (&name, group_part) {
        let mut member_of: Vec<u32> =
            groups.filter(|(_, _, members)| members.split(',').any(|m| m == name)).filter_map(|(_, gid, _)| gid).filter(|g| *g != gid).collect();
        member_of.sort_unstable();
        member_of.dedup();
        additional_gids.extend(member_of);
    }
    Ok(ResolvedUser { uid, gid, additional_gids })
}

/// Writes the files Berth manages into `dir`: hosts (the hostname on the container's
/// first address), hostname, resolv.conf (the embedded DNS server when given, else the
/// host's resolvers minus loopback ones, which mean nothing in the container's
/// network).
/// `--user` resolved, plus the `--group-add` groups (the container's process and every
/// exec'd one get them, as in docker).
pub fn resolve_user_with_groups(root: &Path, spec: &str, group_add: &[String]) -> Result<ResolvedUser, RootfsError> {
    let mut user = resolve_user(root, spec)?;
    for group in group_add {
        let gid = resolve_group(root, group)?;
        if !user.additional_gids.contains(&gid) {
            user.additional_gids.push(gid);
        }
    }
    Ok(user)
}

/// A group's number from the image's /etc/group (`--group-add`); numbers pass as they are.
pub fn resolve_group(root: &Path, name: &str) -> Result<u32, RootfsError> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    read_in_root(root, "/etc/group")
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 3 && f[0] == name).then(|| f[2].parse::<u32>().ok()).flatten()
        })
        .ok_or_else(|| RootfsError::UnknownGroup(name.to_owned()))
}

/// What a container's /etc/hosts and /etc/resolv.conf hold besides its own name.
#[derive(Debug, Default)]
pub struct EtcSettings<'a> {
    /// The network's DNS server (user networks).
    pub nameserver: Option<std::net::Ipv4Addr>,
    /// `--add-host`, `--dns`, `--dns-search`, `--dns-option`.
    pub extras: Option<&'a super::record::HostExtras>,
    /// What `host-gateway` stands for: the address the host has on the container's
    /// network.
    pub host_gateway: Option<std::net::Ipv4Addr>,
    /// Name the host `host.docker.internal`, as Docker Desktop does (in the VM).
    pub host_docker_internal: bool,
}

pub fn write_etc_files(dir: &Path, hostname: &str, address: Option<std::net::Ipv4Addr>, settings: &EtcSettings<'_>) -> Result<(), RootfsError> {
    std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    let nameserver = settings.nameserver;
    let own = address.map(|a| a.to_string()).unwrap_or_else(|| "127.0.1.1".to_owned());
    let mut hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n".to_owned();
    // docker writes the extra hosts before the container's own line.
    for entry in settings.extras.map(|e| e.extra_hosts.as_slice()).unwrap_or_default() {
        if let Some((name, ip)) = entry.split_once(':') {
            let ip = if ip == "host-gateway" { settings.host_gateway.map_or_else(|| "127.0.0.1".to_owned(), |g| g.to_string()) } else { ip.to_owned() };
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    if let (true, Some(gateway)) = (settings.host_docker_internal, settings.host_gateway) {
        let named = settings.extras.is_some_and(|e| e.extra_hosts.iter().any(|h| h.split_once(':').is_some_and(|(n, _)| n == "host.docker.internal")));
        if !named {
            hosts.push_str(&format!("{gateway}\thost.docker.internal\n"));
        }
    }
    hosts.push_str(&format!("{own}\t{hostname}\n"));
    std::fs::write(dir.join("hosts"), hosts).map_err(io("write hosts"))?;
    std::fs::write(dir.join("hostname"), format!("{hostname}\n")).map_err(io("write hostname"))?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut resolv = nameserver.map(|ns| format!("nameserver {ns}\n")).unwrap_or_default();
    for line in host_resolv.lines() {
        let server = line.strip_prefix("nameserver").map(str::trim);
        let is_loopback = server.is_some_and(|ip| ip.starts_with("127.") || ip == "::1");
        if !is_loopback && (nameserver.is_none() || server.is_none()) {
            resolv.push_str(line);
            resolv.push('\n');
        }
    }
    if let Some(extras) = settings.extras {
        resolv = custom_resolv(&resolv, nameserver, extras);
    }
    std::fs::write(dir.join("resolv.conf"), resolv).map_err(io("write resolv.conf"))?;
    Ok(())
}

/// resolv.conf with `--dns` (after the network's own server, which answers container
/// names), `--dns-search` and `--dns-option` replacing what the engine's file says.
fn custom_resolv(base: &str, nameserver: Option<std::net::Ipv4Addr>, extras: &super::record::HostExtras) -> String {
    let own = nameserver.map(|n| format!("nameserver {n}"));
    let keep = |line: &&str| {
        let key = line.split_whitespace().next().unwrap_or("");
        let replaced = match key {
            "nameserver" => !extras.dns.is_empty() && own.as_deref() != Some(line.trim()),
            "search" | "domain" => !extras.dns_search.is_empty(),
            "options" => !extras.dns_options.is_empty(),
            _ => false,
        };
        !replaced
    };
    let mut out: String = base.lines().filter(keep).map(|l| format!("{l}\n")).collect();
    for server in &extras.dns {
        out.push_str(&format!("nameserver {server}\n"));
    }
    if !extras.dns_search.is_empty() {
        out.push_str(&format!("search {}\n", extras.dns_search.join(" ")));
    }
    if !extras.dns_options.is_empty() {
        out.push_str(&format!("options {}\n", extras.dns_options.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_settings_replace_the_engines_and_keep_the_networks_server() {
        let extras = crate::container::record::HostExtras {
            dns: vec!["10.9.9.9".into()],
            dns_search: vec!["example.test".into()],
            dns_options: vec!["ndots:2".into()],
            ..Default::default()
        };
        let base = "nameserver 172.18.0.1\nnameserver 192.0.2.53\nsearch corp.test\noptions edns0\n";
        let out = custom_resolv(base, Some("172.18.0.1".parse().expect("ip")), &extras);
        assert_eq!(out, "nameserver 172.18.0.1\nnameserver 10.9.9.9\nsearch example.test\noptions ndots:2\n");
        let untouched = custom_resolv(base, None, &crate::container::record::HostExtras::default());
        assert_eq!(untouched, base);
        assert!(extras.validate("bridge").is_ok());
        let bad = crate::container::record::HostExtras { extra_hosts: vec!["nocolon".into()], ..Default::default() };
        assert!(bad.validate("bridge").expect_err("refused").contains("nocolon"));
        let host_net = crate::container::record::HostExtras { sysctls: [("net.ipv4.ip_forward".to_owned(), "1".to_owned())].into(), ..Default::default() };
        assert!(host_net.validate("bridge").is_ok() && host_net.validate("host").is_err());
    }

    #[test]
    fn users_resolve_like_docker_and_symlinks_stay_inside() {
        let root = std::env::temp_dir().join(format!("berth-rootfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("etc")).expect("etc");
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n").expect("passwd");
        std::fs::write(root.join("etc/group"), "root:x:0:\nstaff:x:50:app\napp:x:1000:\n").expect("group");
        assert_eq!(resolve_user(&root, "").expect("root"), ResolvedUser { uid: 0, gid: 0, additional_gids: vec![0] });
        assert_eq!(resolve_user(&root, "app").expect("app"), ResolvedUser { uid: 1000, gid: 1000, additional_gids: vec![1000, 50] });
        assert_eq!(resolve_user(&root, "app:staff").expect("app").gid, 50);
        assert_eq!(resolve_user(&root, "4242").expect("uid"), ResolvedUser { uid: 4242, gid: 0, additional_gids: vec![0] });
        assert_eq!(resolve_user(&root, "1000:7").expect("uid").gid, 7);
        let err = resolve_user(&root, "nobody").expect_err("unknown");
        assert_eq!(err.to_string(), "unable to find user nobody: no matching entries in passwd file");
        assert!(matches!(resolve_user(&root, "app:wheel"), Err(RootfsError::UnknownGroup(_))));
        // An absolute symlink in the image points inside the image, never at the host.
        std::fs::create_dir_all(root.join("x")).expect("x");
        std::os::unix::fs::symlink("/etc/passwd", root.join("x/link")).expect("link");
        std::os::unix::fs::symlink("../../../../../../etc/hostname", root.join("x/up")).expect("link");
        let mut text = String::new();
        open_in_root(&root, "/x/link").expect("open").read_to_string(&mut text).expect("read");
        assert!(text.contains("app:x:1000"), "{text}");
        assert!(open_in_root(&root, "/x/up").is_err(), "escaped the root");
        let _ = std::fs::remove_dir_all(&root);
    }
}
