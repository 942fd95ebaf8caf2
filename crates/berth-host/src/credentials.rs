//! Registry credentials, stored as docker stores them: `$DOCKER_CONFIG/config.json`
//! (default `~/.docker`) `auths`, or a credential helper named by `credHelpers` /
//! `credsStore` (`docker-credential-<name> get|store|erase`). Passwords never reach a
//! log or an error message.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::{json, Value};

/// Docker Hub's key in config.json.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A user and a password (or token). `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid JSON")]
    Parse { path: PathBuf },
    #[error("cannot write {path}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("credential helper docker-credential-{helper} failed: {detail}")]
    Helper { helper: String, detail: String },
}

impl CredentialsError {
    pub fn kind(&self) -> berth_proto::ErrorKind {
        berth_proto::ErrorKind::Internal
    }
}

/// The key a registry host has in config.json (Docker Hub's is a URL).
pub fn key_for(registry: &str) -> String {
    match registry {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.to_owned(),
        other => other.to_owned(),
    }
}

/// The registry host of an image reference (`busybox` -> docker.io).
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first.to_owned(),
        _ => "docker.io".to_owned(),
    }
}

/// The docker CLI's configuration directory (`$DOCKER_CONFIG`, else `~/.docker`).
pub fn docker_config_dir() -> PathBuf {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".docker"),
    }
}

fn config_path() -> PathBuf {
    docker_config_dir().join("config.json")
}

fn read_config() -> Result<Value, CredentialsError> {
    let path = config_path();
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|_| CredentialsError::Parse { path }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(source) => Err(CredentialsError::Read { path, source }),
    }
}

fn write_config(config: &Value) -> Result<(), CredentialsError> {
    let path = config_path();
    let write_err = |source| CredentialsError::Write { path: path.clone(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut file = crate::os::private_file().write(true).create(true).truncate(true).open(&tmp).map_err(write_err)?;
    let text = serde_json::to_vec_pretty(config).unwrap_or_default();
    file.write_all(&text).map_err(write_err)?;
    std::fs::rename(&tmp, &path).map_err(write_err)
}

fn helper_for(config: &Value, key: &str) -> Option<String> {
    config["credHelpers"][key].as_str().or_else(|| config["credsStore"].as_str()).map(str::to_owned)
}

fn run_helper(helper: &str, verb: &str, input: &str) -> Result<String, CredentialsError> {
    let fail = |detail: String| CredentialsError::Helper { helper: helper.to_owned(), detail };
    // The input (a server URL or one login, far below a pipe's buffer) is written before
    // the helper starts: a helper that exits without reading it (as `get` may) then
    // cannot make this process write into a closed pipe, which kills a CLI that takes
    // SIGPIPE's default action.
    let (reader, mut writer) = std::io::pipe().map_err(|e| fail(e.to_string()))?;
    writer.write_all(input.as_bytes()).map_err(|e| fail(e.to_string()))?;
    drop(writer);
    let out = Command::new(format!("docker-credential-{helper}"))
        .arg(verb)
        .stdin(Stdio::from(reader))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        // The helper's own words, which never hold the secret.
        return Err(fail(String::from_utf8_lossy(&out.stdout).trim().to_owned()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A pull of `reference` carrying the user's login for its registry (docker's
/// config.json and credential helpers): what the CLI, compose and the desktop app all
/// send, so no path pulls without it. With `DOCKER_CONTENT_TRUST` set, the pull asks for
/// a signature (see [`content_trust`]).
pub fn pull_request(reference: &str, platform: &str) -> Result<berth_proto::v1::PullRequest, CredentialsError> {
    let auth = load(&registry_of(reference))?.map(|l| berth_proto::v1::RegistryAuth { username: l.username, password: l.password });
    Ok(berth_proto::v1::PullRequest { reference: reference.to_owned(), platform: platform.to_owned(), auth, require_signature: content_trust() })
}

/// Whether `DOCKER_CONTENT_TRUST` asks for signed images (docker reads it as a boolean:
/// `1`, `t`, `true`, in any case). Berth maps it to "a signature by a key of the trust
/// policy is required", on pull and on create.
pub fn content_trust() -> bool {
    std::env::var("DOCKER_CONTENT_TRUST").is_ok_and(|v| parse_bool(&v))
}

fn parse_bool(value: &str) -> bool {
    matches!(value.trim(), "1" | "t" | "T" | "true" | "TRUE" | "True")
}

/// The stored login for a registry host, if any.
pub fn load(registry: &str) -> Result<Option<Login>, CredentialsError> {
    let config = read_config()?;
    let key = key_for(registry);
    if let Some(helper) = helper_for(&config, &key) {
        return match run_helper(&helper, "get", &key) {
            Ok(text) => {
                let v: Value = serde_json::from_str(&text).unwrap_or_default();
                Ok(Some(Login {
                    username: v["Username"].as_str().unwrap_or_default().to_owned(),
                    password: v["Secret"].as_str().unwrap_or_default().to_owned(),
                }))
            }
            // "credentials not found" is an answer, not a failure.
            Err(CredentialsError::Helper { detail, .. }) if detail.contains("not found") => Ok(None),
            Err(err) => Err(err),
        };
    }
    let Some(auth) = config["auths"][&key]["auth"].as_str() else { return Ok(None) };
    let decoded = base64::engine::general_purpose::STANDARD.decode(auth).unwrap_or_default();
    let text = String::from_utf8_lossy(&decoded);
    Ok(text.split_once(':').map(|(u, p)| Login { username: u.to_owned(), password: p.to_owned() }))
}

/// Every stored login, by config.json key (what the docker CLI sends a build as
/// X-Registry-Config): the `auths` entries and the registries with a credential
/// helper of their own. A helper that fails for one registry leaves that one out.
pub fn all_logins() -> Result<std::collections::BTreeMap<String, Login>, CredentialsError> {
    let config = read_config()?;
    let mut keys: Vec<String> = config["auths"].as_object().map(|a| a.keys().cloned().collect()).unwrap_or_default();
    keys.extend(config["credHelpers"].as_object().map(|h| h.keys().cloned().collect::<Vec<_>>()).unwrap_or_default());
    keys.sort();
    keys.dedup();
    let mut out = std::collections::BTreeMap::new();
    for key in keys {
        if let Ok(Some(login)) = load(&key) {
            out.insert(key, login);
        }
    }
    Ok(out)
}

/// Stores a login for a registry host (helper if configured, else config.json).
pub fn store(registry: &str, login: &Login) -> Result<(), CredentialsError> {
    let mut config = read_config()?;
    let key = key_for(registry);
    if let Some(helper) = helper_for(&config, &key) {
        let input = json!({ "ServerURL": key, "Username": login.username, "Secret": login.password }).to_string();
        run_helper(&helper, "store", &input)?;
        config["auths"][&key] = json!({});
    } else {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", login.username, login.password));
        if !config["auths"].is_object() {
            config["auths"] = json!({});
        }
        config["auths"][&key] = json!({ "auth": auth });
    }
    write_config(&config)
}

/// Forgets the login for a registry host; whether there was one.
pub fn erase(registry: &str) -> Result<bool, CredentialsError> {
    let mut config = read_config()?;
    let key = key_for(registry);
    if let Some(helper) = helper_for(&config, &key) {
        run_helper(&helper, "erase", &key)?;
    }
    let existed = config["auths"].as_object_mut().and_then(|a| a.remove(&key)).is_some();
    if existed {
        write_config(&config)?;
    }
    Ok(existed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_registries() {
        assert_eq!(key_for("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(key_for("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("user/app:1"), "docker.io");
        assert_eq!(registry_of("127.0.0.1:5000/busybox:oci"), "127.0.0.1:5000");
        assert_eq!(registry_of("localhost/x"), "localhost");
    }

    #[test]
    fn login_debug_hides_the_password() {
        let l = Login { username: "u".into(), password: "hunter2".into() };
        assert!(!format!("{l:?}").contains("hunter2"));
    }
}
