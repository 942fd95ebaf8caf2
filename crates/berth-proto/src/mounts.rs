//! docker's `-v` and `--mount` forms, read once for the CLI, compose's short form and
//! Berth Desktop's Run dialog.

/// `-v`: `/ctr` (anonymous volume), `name:/ctr`, `/host:/ctr` (bind; made if missing),
/// each with an optional `:ro`, `:rw`, `:nocopy` (comma-separated).
pub fn parse_volume_flag(text: &str) -> Result<crate::v1::Mount, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, options) = match parts.as_slice() {
        [target] => ("", *target, ""),
        [source, target] => (*source, *target, ""),
        [source, target, options] => (*source, *target, *options),
        _ => return Err(format!("invalid volume specification: {text:?}")),
    };
    if !target.starts_with('/') {
        return Err(format!("invalid volume specification: {text:?}: the container path must be absolute"));
    }
    let mut mount = crate::v1::Mount { r#type: "volume".into(), target: target.into(), ..Default::default() };
    if source.starts_with('/') || source.starts_with('.') {
        let absolute = std::path::absolute(source).map_err(|e| format!("{source}: {e}"))?;
        mount.r#type = "bind".into();
        mount.source = absolute.display().to_string();
        mount.create_source = true;
    } else {
        mount.source = source.into();
    }
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" => mount.read_only = true,
            "rw" => mount.read_only = false,
            "nocopy" => mount.no_copy = true,
            "z" | "Z" | "rprivate" | "private" => {}
            other => return Err(format!("invalid mode {other:?} in volume specification {text:?}")),
        }
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
    #[test]
    fn volume_and_mount_forms() {
        let anonymous = super::parse_volume_flag("/data").expect("anonymous");
        assert_eq!((anonymous.r#type.as_str(), anonymous.source.as_str()), ("volume", ""));
        let named = super::parse_volume_flag("db:/var/lib/db:ro,nocopy").expect("named");
        assert!(named.read_only && named.no_copy && named.source == "db");
        let bind = super::parse_volume_flag("/srv/site:/usr/share/site").expect("bind");
        assert!(bind.r#type == "bind" && bind.create_source);
        assert!(super::parse_volume_flag("db:relative").is_err());
        let m = super::parse_mount_flag("type=bind,src=/x,dst=/y,readonly").expect("mount");
        assert!(m.r#type == "bind" && m.read_only && !m.create_source);
        let t = super::parse_mount_flag("type=tmpfs,target=/t,tmpfs-size=64m").expect("tmpfs");
        assert_eq!(t.options, "size=64m");
        assert!(super::parse_mount_flag("type=nfs,target=/x").is_err());
    }
}
