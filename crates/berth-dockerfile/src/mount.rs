//! `RUN --mount=...`: the comma-separated `key=value` list parsed into a [`Mount`], with
//! BuildKit's keys, aliases and defaults (a bind mount is read-only unless `rw`; a
//! cache mount is shared; an ssh mount's id is `default`).

/// What a RUN mount provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    /// Files from the context, a stage or an image (`type=bind`, the default).
    Bind,
    /// A persistent cache directory.
    Cache,
    /// A fresh tmpfs.
    Tmpfs,
    /// A build secret as a file (or environment variable).
    Secret,
    /// The SSH agent socket.
    Ssh,
}

/// How a cache mount is shared between concurrent builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Many writers at once (the default).
    Shared,
    /// A new cache when the existing one is in use.
    Private,
    /// Writers wait for each other.
    Locked,
}

/// One `--mount` of a RUN instruction. Values are as written (not expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount type.
    pub kind: MountType,
    /// `target`/`dst`/`destination`: where it appears in the container. Required but
    /// for secrets and ssh (the builder picks `/run/secrets/<id>` and the agent path).
    pub target: Option<String>,
    /// `source`/`src`: a path in `from` (bind, cache) or the secret's source.
    pub source: Option<String>,
    /// `from`: a stage, image or named context to take the source from.
    pub from: Option<String>,
    /// `id`: the cache, secret or ssh id. Secrets default to the target's base name, ssh
    /// to `default`.
    pub id: Option<String>,
    /// `sharing` (cache).
    pub sharing: Sharing,
    /// `mode`, octal (cache, secret, ssh).
    pub mode: Option<u32>,
    /// `uid` (cache, secret, ssh).
    pub uid: Option<u32>,
    /// `gid` (cache, secret, ssh).
    pub gid: Option<u32>,
    /// Read-only: `ro`/`readonly`, or not `rw`/`readwrite`; bind mounts default to true.
    pub readonly: bool,
    /// `required` (secret, ssh): fail when it is not provided.
    pub required: bool,
    /// `size` in bytes (tmpfs), from docker's size syntax (`64m`).
    pub size: Option<u64>,
    /// `env` (secret): also expose the secret as this environment variable.
    pub env: Option<String>,
}

/// Parses the value of one `--mount` flag.
pub(crate) fn parse(spec: &str) -> Result<Mount, String> {
    let mut kind = MountType::Bind;
    let mut target = None;
    let mut source = None;
    let mut from = None;
    let mut id = None;
    let mut sharing = None;
    let mut mode = None;
    let mut uid = None;
    let mut gid = None;
    let mut readonly: Option<bool> = None;
    let mut required = None;
    let mut size = None;
    let mut env = None;
    for field in csv_fields(spec)? {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_string())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let Some(value) = value else {
            match key.as_str() {
                "readonly" | "ro" => readonly = Some(true),
                "readwrite" | "rw" => readonly = Some(false),
                "required" => required = Some(true),
                _ => return Err(format!("unexpected key '{key}' in '{field}'")),
            }
            continue;
        };
        match key.as_str() {
            "type" => {
                kind = match value.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => return Err(format!("unsupported mount type {value:?}")),
                }
            }
            "target" | "dst" | "destination" => target = Some(value),
            "source" | "src" => source = Some(value),
            "from" => from = Some(value),
            "id" => id = Some(value),
            "env" => env = Some(value),
            "readonly" | "ro" => readonly = Some(parse_bool(&key, &value)?),
            "readwrite" | "rw" => readonly = Some(!parse_bool(&key, &value)?),
            "required" => required = Some(parse_bool(&key, &value)?),
            "sharing" => {
                sharing = Some(match value.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => return Err(format!("unsupported sharing value {value:?}")),
                })
            }
            "mode" => mode = Some(u32::from_str_radix(&value, 8).map_err(|_| format!("invalid value for mode: {value:?}"))?),
            "uid" => uid = Some(value.parse().map_err(|_| format!("invalid value for uid: {value:?}"))?),
            "gid" => gid = Some(value.parse().map_err(|_| format!("invalid value for gid: {value:?}"))?),
            "size" => size = Some(parse_size(&value).ok_or_else(|| format!("invalid value for size: {value:?}"))?),
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    let type_name = match kind {
        MountType::Bind => "bind",
        MountType::Cache => "cache",
        MountType::Tmpfs => "tmpfs",
        MountType::Secret => "secret",
        MountType::Ssh => "ssh",
    };
    let refuse = |what: &str| Err(format!("{what} is not supported for mount type {type_name}"));
    match kind {
        MountType::Bind | MountType::Cache | MountType::Tmpfs if target.is_none() => {
            return Err(format!("mount type {type_name} requires a target"));
        }
        _ => {}
    }
    if sharing.is_some() && kind != MountType::Cache {
        return refuse("sharing");
    }
    if size.is_some() && kind != MountType::Tmpfs {
        return refuse("size");
    }
    if required.is_some() && !matches!(kind, MountType::Secret | MountType::Ssh) {
        return refuse("required");
    }
    if env.is_some() && kind != MountType::Secret {
        return refuse("env");
    }
    if (mode.is_some() || uid.is_some() || gid.is_some()) && matches!(kind, MountType::Bind | MountType::Tmpfs) {
        return refuse("mode, uid and gid");
    }
    if from.is_some() && !matches!(kind, MountType::Bind | MountType::Cache) {
        return refuse("from");
    }
    if kind == MountType::Secret && id.is_none() {
        id = target.as_deref().and_then(|t| t.trim_end_matches('/').rsplit('/').next()).filter(|base| !base.is_empty()).map(str::to_string);
        if id.is_none() && env.is_none() {
            return Err("secret mount requires an id or a target".into());
        }
    }
    if kind == MountType::Ssh && id.is_none() {
        id = Some("default".into());
    }
    Ok(Mount {
        kind,
        target,
        source,
        from,
        id,
        sharing: sharing.unwrap_or(Sharing::Shared),
        mode,
        uid,
        gid,
        readonly: readonly.unwrap_or(kind == MountType::Bind),
        required: required.unwrap_or(false),
        size,
        env,
    })
}

fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("invalid value for {key}: {value:?}")),
    }
}

/// Docker's RAM size syntax: `1024`, `64m`, `1.5g`, `10MiB` (binary multiples).
fn parse_size(text: &str) -> Option<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let num_len = lower.len() - lower.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.').len();
    let (num, unit) = lower.split_at(num_len);
    let unit = unit.trim_start();
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let multiplier: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    let value: f64 = num.parse().ok()?;
    let bytes = value * multiplier;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// Splits at commas outside double quotes (quotes removed, `""` inside quotes is `"`).
fn csv_fields(spec: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    fields.push(field);
    Ok(fields.into_iter().filter(|f| !f.trim().is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_mount_with_every_option() {
        let m = parse("type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0700,uid=1000,gid=100,from=base,source=/c").expect("succeeds");
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert_eq!(m.id.as_deref(), Some("pip"));
        assert_eq!(m.sharing, Sharing::Locked);
        assert_eq!(m.mode, Some(0o700));
        assert_eq!((m.uid, m.gid), (Some(1000), Some(100)));
        assert_eq!(m.from.as_deref(), Some("base"));
        assert_eq!(m.source.as_deref(), Some("/c"));
        assert!(!m.readonly);
    }

    #[test]
    fn bind_is_default_type_and_read_only_unless_rw() {
        let m = parse("target=/src,source=.,from=build").expect("succeeds");
        assert_eq!(m.kind, MountType::Bind);
        assert!(m.readonly);
        assert!(!parse("type=bind,dst=/src,rw").expect("succeeds").readonly);
        assert!(!parse("type=bind,destination=/src,readwrite=true").expect("succeeds").readonly);
        assert!(parse("type=cache,target=/c,ro").expect("succeeds").readonly);
    }

    #[test]
    fn secret_and_ssh_defaults() {
        let s = parse("type=secret,id=npmrc,required").expect("succeeds");
        assert_eq!(s.id.as_deref(), Some("npmrc"));
        assert!(s.required);
        assert_eq!(s.target, None);
        let s = parse("type=secret,target=/run/secrets/token").expect("succeeds");
        assert_eq!(s.id.as_deref(), Some("token"));
        let s = parse("type=secret,id=aws,env=AWS_KEY").expect("succeeds");
        assert_eq!(s.env.as_deref(), Some("AWS_KEY"));
        let ssh = parse("type=ssh").expect("succeeds");
        assert_eq!(ssh.id.as_deref(), Some("default"));
    }

    #[test]
    fn tmpfs_size_units() {
        assert_eq!(parse("type=tmpfs,target=/t,size=64m").expect("succeeds").size, Some(64 << 20));
        assert_eq!(parse("type=tmpfs,target=/t,size=1024").expect("succeeds").size, Some(1024));
        assert_eq!(parse("type=tmpfs,target=/t,size=1GiB").expect("succeeds").size, Some(1 << 30));
    }

    #[test]
    fn mount_errors() {
        assert_eq!(parse("type=nfs,target=/x").expect_err("fails"), "unsupported mount type \"nfs\"");
        assert_eq!(parse("type=cache").expect_err("fails"), "mount type cache requires a target");
        assert_eq!(parse("type=cache,target=/x,colour=red").expect_err("fails"), "unexpected key 'colour' in 'colour=red'");
        assert_eq!(parse("type=cache,target=/x,sharing=maybe").expect_err("fails"), "unsupported sharing value \"maybe\"");
        assert_eq!(parse("type=cache,target=/x,mode=9").expect_err("fails"), "invalid value for mode: \"9\"");
        assert_eq!(parse("type=bind,target=/x,size=1m").expect_err("fails"), "size is not supported for mount type bind");
        assert_eq!(parse("type=secret").expect_err("fails"), "secret mount requires an id or a target");
    }
}
