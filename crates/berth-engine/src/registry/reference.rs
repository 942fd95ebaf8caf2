//! Image references, normalised as Docker does: `busybox` is
//! `docker.io/library/busybox:latest`; `host:port/repo@sha256:...` pins a digest.

use std::fmt;
use std::str::FromStr;

use crate::content::Digest;

pub const DOCKER_HUB: &str = "docker.io";

/// A normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host (and port), e.g. `docker.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// Repository path, e.g. `library/busybox`.
    pub repository: String,
    /// Tag; `latest` when neither tag nor digest was given.
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct InvalidReference {
    pub input: String,
    pub reason: &'static str,
}

impl Reference {
    /// What to ask the registry for: the digest if pinned, else the tag.
    pub fn lookup(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_owned(),
        }
    }

    /// The `registry/repository` part.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same image by digest.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference { digest: Some(digest), tag: None, ..self.clone() }
    }

    /// The familiar short form docker prints (`busybox:latest`, `127.0.0.1:5000/x:y`).
    pub fn familiar(&self) -> String {
        let name = if self.registry == DOCKER_HUB { self.repository.strip_prefix("library/").unwrap_or(&self.repository).to_owned() } else { self.name() };
        match (&self.tag, &self.digest) {
            (Some(t), _) => format!("{name}:{t}"),
            (None, Some(d)) => format!("{name}@{d}"),
            (None, None) => name,
        }
    }

    /// The host to connect to (Docker Hub's API lives elsewhere than its name).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }
}

impl FromStr for Reference {
    type Err = InvalidReference;

    fn from_str(input: &str) -> Result<Reference, InvalidReference> {
        let bad = |reason| InvalidReference { input: input.to_owned(), reason };
        if input.is_empty() || input.len() > 4096 {
            return Err(bad("empty or too long"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => (rest, Some(d.parse::<Digest>().map_err(|_| bad("bad digest"))?)),
            None => (input, None),
        };
        // A tag is after the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(rest[last_slash + i + 1..].to_owned())),
            None => (rest, None),
        };
        if let Some(tag) = &tag {
            let valid =
                !tag.is_empty() && tag.len() <= 128 && tag.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) && !tag.starts_with(['.', '-']);
            if !valid {
                return Err(bad("bad tag"));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first.to_owned(), rest.to_owned()),
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        let (host, port) = match registry.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (registry.as_str(), None),
        };
        let host_ok = host.split('.').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
        if !host_ok || !port_ok {
            return Err(bad("bad registry host"));
        }
        let repository = if registry == DOCKER_HUB && !repository.contains('/') { format!("library/{repository}") } else { repository };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
                && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
        };
        if !repository.split('/').all(component_ok) {
            return Err(bad("repository names are lowercase letters, digits and separators"));
        }
        let tag = if tag.is_none() && digest.is_none() { Some("latest".to_owned()) } else { tag };
        Ok(Reference { registry, repository, tag, digest })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn docker_hub_normalisation() {
        assert_eq!(r("busybox").to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r("busybox:1.36").to_string(), "docker.io/library/busybox:1.36");
        assert_eq!(r("user/app").to_string(), "docker.io/user/app:latest");
        assert_eq!(r("docker.io/library/busybox").familiar(), "busybox:latest");
        assert_eq!(r("busybox").api_host(), "registry-1.docker.io");
    }

    #[test]
    fn registries_ports_tags_and_digests() {
        let x = r("127.0.0.1:5000/busybox:oci");
        assert_eq!((x.registry.as_str(), x.repository.as_str(), x.tag.as_deref()), ("127.0.0.1:5000", "busybox", Some("oci")));
        assert_eq!(x.lookup(), "oci");
        let d = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        let y = r(&format!("localhost:5000/a/b@{d}"));
        assert_eq!(y.tag, None);
        assert_eq!(y.lookup(), d);
        assert_eq!(r("localhost/x").registry, "localhost");
        assert_eq!(r("127.0.0.1:5000/busybox").tag.as_deref(), Some("latest"));
        assert_eq!(x.familiar(), "127.0.0.1:5000/busybox:oci");
    }

    #[test]
    fn bad_references_are_refused() {
        for bad in ["", "UPPER", "busybox:", "busybox:-x", "a//b", "x@sha256:123", "busybox:a/b", "../etc"] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?} must be refused");
        }
    }
}
