//! docker's `-v` and `--mount` forms, read once for the CLI, compose's short form, the
//! Docker API's `Binds` and Berth Desktop's Run dialog.

/// What a `-v` source names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeSource {
    /// None: an anonymous volume (`-v /ctr`).
    Anonymous,
    /// A volume by name.
    Named,
    /// A host path: absolute, `./` or `../` relative, `~`, or a Windows drive path.
    /// Each caller says what it accepts and resolves it against its own folder.
    HostPath,
}

/// One `-v SRC:DST[:MODES]` read by docker's rules, the same for every caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec<'a> {
    pub source: &'a str,
    pub source_kind: VolumeSource,
    pub target: &'a str,
    pub read_only: bool,
    pub no_copy: bool,
}

/// Modes docker accepts and that change nothing here: SELinux relabelling, mount
/// propagation (Berth's mounts are private) and Docker Desktop's consistency hints.
const IGNORED_MODES: &[&str] = &["z", "Z", "private", "rprivate", "shared", "rshared", "slave", "rslave", "consistent", "cached", "delegated"];

/// `-v` as docker reads it: `/ctr`, `name:/ctr`, `/host:/ctr`, `./rel:/ctr`,
/// `C:\host:/ctr`, each with modes (`ro`, `rw`, `nocopy` and [`IGNORED_MODES`], comma-
/// separated; `ro` and `rw` together refused).
pub fn parse_volume_spec(text: &str) -> Result<VolumeSpec<'_>, String> {
    let invalid = || format!("invalid volume specification: '{text}'");
    // A Windows drive's colon is not a separator: `C:\x:/ctr[:modes]`. Only when a
    // container path follows, so that `a:/x` stays the volume `a` at `/x`.
    let drive = text.len() > 2
        && text.as_bytes()[0].is_ascii_alphabetic()
        && text.as_bytes()[1] == b':'
        && matches!(text.as_bytes()[2], b'\\' | b'/')
        && text[2..].split(':').nth(1).is_some_and(|target| target.starts_with('/'));
    let (drive_part, rest) = if drive { text.split_at(2) } else { ("", text) };
    let parts: Vec<&str> = rest.split(':').collect();
    let (source, target, modes) = match (drive, parts.as_slice()) {
        (false, [target]) => ("", *target, ""),
        (_, [source, target]) => (*source, *target, ""),
        (_, [source, target, modes]) => (*source, *target, *modes),
        _ => return Err(invalid()),
    };
    let source = if drive { &text[..drive_part.len() + source.len()] } else { source };
    if target.is_empty() || (parts.len() > 1 && source.trim().is_empty()) {
        return Err(invalid());
    }
    if !target.starts_with('/') {
        return Err(format!("invalid volume specification: '{text}': invalid mount config: the container path must be absolute"));
    }
    if target == "/" {
        return Err(format!("invalid volume specification: '{text}': invalid mount config: destination can't be '/'"));
    }
    let source_kind = if source.is_empty() {
        VolumeSource::Anonymous
    } else if drive || source.starts_with('/') || source.starts_with('.') || source.starts_with('~') {
        VolumeSource::HostPath
    } else {
        VolumeSource::Named
    };
    let (mut read_only, mut writable, mut no_copy) = (false, false, false);
    for mode in modes.split(',').filter(|m| !m.is_empty()) {
        match mode {
            "ro" => read_only = true,
            "rw" => writable = true,
            "nocopy" => no_copy = true,
            m if IGNORED_MODES.contains(&m) => {}
            other => return Err(format!("invalid mode: {other}")),
        }
    }
    if read_only && writable {
        return Err(format!("invalid mode: {modes}"));
    }
    if no_copy && source_kind == VolumeSource::HostPath {
        return Err(format!("invalid mode: nocopy is for volumes, not host paths ('{text}')"));
    }
    Ok(VolumeSpec { source, source_kind, target, read_only, no_copy })
}

/// Where a Windows host's drives are in the VM (`C:\src` is `/mnt/host/c/src`), as
/// Docker Desktop's `/run/desktop/mnt/host`.
pub const WINDOWS_DRIVES_IN_VM: &str = "/mnt/host";

/// The VM's path for a Windows host path. Host folders are shared into the VM at the
/// same path, but a Windows path has no place in Linux's tree: `C:\src` and `C:/src` are
/// `/mnt/host/c/src`. From a Windows host (`windows_host`), docker's other spellings
/// `/c/src` and `//c/src` are too (from any other host those are Linux paths). None for
/// anything else, a UNC path (`\\server\share`) included.
pub fn windows_path_in_vm(source: &str, windows_host: bool) -> Option<String> {
    let bytes = source.as_bytes();
    let drive_letter = |i: usize| bytes.get(i).filter(|b| b.is_ascii_alphabetic()).map(|b| b.to_ascii_lowercase() as char);
    let separator = |i: usize| bytes.get(i).is_none_or(|b| matches!(b, b'\\' | b'/'));
    let (drive, rest) = if let Some(drive) = drive_letter(0).filter(|_| bytes.get(1) == Some(&b':') && separator(2)) {
        (drive, &source[2..])
    } else if windows_host && !source.starts_with("///") {
        // `/c/src` or `//c/src`: one letter, then a slash or the end.
        let skip = if source.starts_with("//") {
            2
        } else if source.starts_with('/') {
            1
        } else {
            return None;
        };
        let drive = drive_letter(skip).filter(|_| separator(skip + 1))?;
        (drive, &source[skip + 1..])
    } else {
        return None;
    };
    let rest: Vec<&str> = rest.split(['\\', '/']).filter(|part| !part.is_empty()).collect();
    let mut path = format!("{WINDOWS_DRIVES_IN_VM}/{drive}");
    for part in rest {
        path.push('/');
        path.push_str(part);
    }
    Some(path)
}

/// `-v` for the CLI and the Run dialog: a host path is resolved against the current
/// folder, and a bind's source is made if missing (docker's `-v`).
pub fn parse_volume_flag(text: &str) -> Result<crate::v1::Mount, String> {
    let spec = parse_volume_spec(text)?;
    let mut mount =
        crate::v1::Mount { r#type: "volume".into(), target: spec.target.into(), read_only: spec.read_only, no_copy: spec.no_copy, ..Default::default() };
    match spec.source_kind {
        VolumeSource::HostPath => {
            let absolute = std::path::absolute(spec.source).map_err(|e| format!("{}: {e}", spec.source))?;
            mount.r#type = "bind".into();
            mount.source = absolute.display().to_string();
            mount.create_source = true;
        }
        VolumeSource::Named | VolumeSource::Anonymous => mount.source = spec.source.into(),
    }
    Ok(mount)
}

/// `--mount type=...,source=...,target=...,readonly,...`.
pub fn parse_mount_flag(text: &str) -> Result<crate::v1::Mount, String> {
    let mut mount = crate::v1::Mount { r#type: "volume".into(), ..Default::default() };
    let mut tmpfs_options = Vec::new();
    for field in text.split(',') {
        let (key, value) = field.split_once('=').map_or((field, None), |(k, v)| (k, Some(v)));
        let flag = |v: Option<&str>| -> Result<bool, String> {
            match v {
                None | Some("true") | Some("1") => Ok(true),
                Some("false") | Some("0") => Ok(false),
                Some(other) => Err(format!("invalid value {other:?} for {key} in --mount {text:?}")),
            }
        };
        match key {
            "type" => mount.r#type = value.unwrap_or_default().to_owned(),
            "source" | "src" => mount.source = value.unwrap_or_default().to_owned(),
            "target" | "destination" | "dst" => mount.target = value.unwrap_or_default().to_owned(),
            "readonly" | "ro" => mount.read_only = flag(value)?,
            "volume-nocopy" => mount.no_copy = flag(value)?,
            "tmpfs-size" => tmpfs_options.push(format!("size={}", value.unwrap_or_default())),
            "tmpfs-mode" => tmpfs_options.push(format!("mode={}", value.unwrap_or_default())),
            "bind-propagation" | "consistency" => {}
            other => return Err(format!("unexpected key {other:?} in --mount {text:?}")),
        }
    }
    if mount.target.is_empty() {
        return Err(format!("target is required in --mount {text:?}"));
    }
    match mount.r#type.as_str() {
        "tmpfs" => mount.options = tmpfs_options.join(","),
        "bind" if mount.source.is_empty() => return Err(format!("source is required for a bind mount: {text:?}")),
        "bind" | "volume" => {}
        other => return Err(format!("invalid mount type {other:?}")),
    }
    Ok(mount)
}

#[cfg(test)]
mod tests {
    use super::{parse_volume_spec, windows_path_in_vm, VolumeSource};

    #[test]
    fn windows_paths_map_to_the_vm() {
        for windows_host in [false, true] {
            assert_eq!(windows_path_in_vm(r"C:\src\app", windows_host).as_deref(), Some("/mnt/host/c/src/app"));
            assert_eq!(windows_path_in_vm("c:/src/app/", windows_host).as_deref(), Some("/mnt/host/c/src/app"));
            assert_eq!(windows_path_in_vm(r"D:\", windows_host).as_deref(), Some("/mnt/host/d"));
            assert_eq!(windows_path_in_vm("C:", windows_host).as_deref(), Some("/mnt/host/c"));
            // Not Windows paths: a volume name, a relative path, a UNC share, a Linux path.
            for other in ["data", "C:data", "./src", r"\\server\share\x", "/home/ann/src", "/cd/x"] {
                assert_eq!(windows_path_in_vm(other, windows_host), None, "{other}");
            }
        }
        // docker's /c/ and //c/ spellings, from a Windows host only.
        assert_eq!(windows_path_in_vm("/c/Users/ann", true).as_deref(), Some("/mnt/host/c/Users/ann"));
        assert_eq!(windows_path_in_vm("//c/Users/ann", true).as_deref(), Some("/mnt/host/c/Users/ann"));
        assert_eq!(windows_path_in_vm("/c", true).as_deref(), Some("/mnt/host/c"));
        assert_eq!(windows_path_in_vm("/c/Users/ann", false), None);
        assert_eq!(windows_path_in_vm("///c/x", true), None);
        // The bind forms docker's Windows CLI and compose send read whole, then map.
        let spec = parse_volume_spec(r"C:\Users\ann\src:/app:ro").expect("drive bind");
        assert_eq!((spec.source, spec.source_kind, spec.target, spec.read_only), (r"C:\Users\ann\src", VolumeSource::HostPath, "/app", true));
        assert_eq!(windows_path_in_vm(spec.source, true).as_deref(), Some("/mnt/host/c/Users/ann/src"));
        let spec = parse_volume_spec("//c/Users/ann/src:/app").expect("docker toolbox form");
        assert_eq!((spec.source, spec.source_kind), ("//c/Users/ann/src", VolumeSource::HostPath));
        assert_eq!(windows_path_in_vm(spec.source, true).as_deref(), Some("/mnt/host/c/Users/ann/src"));
    }

    #[test]
    fn volume_and_mount_forms() {
        let anonymous = super::parse_volume_flag("/data").expect("anonymous");
        assert_eq!((anonymous.r#type.as_str(), anonymous.source.as_str()), ("volume", ""));
        let named = super::parse_volume_flag("db:/var/lib/db:ro,nocopy").expect("named");
        assert!(named.read_only && named.no_copy && named.source == "db");
        let bind = super::parse_volume_flag("/srv/site:/usr/share/site").expect("bind");
        assert!(bind.r#type == "bind" && bind.create_source);
        assert!(super::parse_volume_flag("db:relative").is_err());
        assert!(!super::parse_volume_flag("/a:/b:rw").expect("rw").read_only);
        let m = super::parse_mount_flag("type=bind,src=/x,dst=/y,readonly").expect("mount");
        assert!(m.r#type == "bind" && m.read_only && !m.create_source);
        let t = super::parse_mount_flag("type=tmpfs,target=/t,tmpfs-size=64m").expect("tmpfs");
        assert_eq!(t.options, "size=64m");
        assert!(super::parse_mount_flag("type=nfs,target=/x").is_err());
    }

    /// docker's rules, the one place they live.
    #[test]
    fn volume_specs_by_docker_rules() {
        use super::{parse_volume_spec as spec, VolumeSource::*};
        fn kind(t: &str) -> Result<(&str, super::VolumeSource, &str), String> {
            spec(t).map(|s| (s.source, s.source_kind, s.target))
        }
        assert_eq!(kind("/data"), Ok(("", Anonymous, "/data")));
        assert_eq!(kind("db:/data"), Ok(("db", Named, "/data")));
        assert_eq!(kind("/srv:/data"), Ok(("/srv", HostPath, "/data")));
        assert_eq!(kind("./site:/data"), Ok(("./site", HostPath, "/data")));
        assert_eq!(kind("../up:/data"), Ok(("../up", HostPath, "/data")));
        assert_eq!(kind("~/src:/app"), Ok(("~/src", HostPath, "/app")));
        assert_eq!(kind("C:\\Users\\me:/app:ro"), Ok(("C:\\Users\\me", HostPath, "/app")));
        assert_eq!(kind("c:/work:/app"), Ok(("c:/work", HostPath, "/app")));
        // A one-letter volume name is not a drive.
        assert_eq!(kind("a:/x"), Ok(("a", Named, "/x")));
        assert_eq!(kind("a:/x:ro"), Ok(("a", Named, "/x")));
        let full = spec("db:/data:ro,nocopy,z,rprivate,cached").expect("modes");
        assert!(full.read_only && full.no_copy);
        for bad in ["", "a:b:c:d", "db:relative", ":/x", "db:/", "db:/x:ro,rw", "db:/x:bogus", "/host:/x:nocopy", "db:"] {
            assert!(spec(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(spec("db:/x:bogus").unwrap_err(), "invalid mode: bogus");
        assert_eq!(spec("a:b:c:d").unwrap_err(), "invalid volume specification: 'a:b:c:d'");
    }
}
