//! The simple-signing payload: what a signature covers. cosign writes
//! `{"critical":{"identity":{"docker-reference":REPO},"image":{"docker-manifest-digest":DIGEST},"type":"cosign container image signature"},"optional":null}`;
//! containers/image writes the same with the tag in the reference and a creator and
//! timestamp under `optional`. Either is read; only the digest binds a signature to an
//! image, as cosign checks it, so an image copied to a mirror with its signature still
//! verifies.

use serde::{Deserialize, Serialize};

pub const PAYLOAD_TYPE: &str = "cosign container image signature";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub critical: Critical,
    pub optional: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Critical {
    pub identity: Identity,
    pub image: ImageClaim,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageClaim {
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("the signed payload is not simple-signing JSON: {0}")]
    Json(String),
    #[error("the signed payload's type is {0:?}, expected {PAYLOAD_TYPE:?}")]
    Type(String),
}

impl Payload {
    /// The payload cosign signs for `repository` (no tag) at `digest`.
    pub fn new(repository: &str, digest: &str) -> Payload {
        Payload {
            critical: Critical {
                identity: Identity { docker_reference: repository.to_owned() },
                image: ImageClaim { docker_manifest_digest: digest.to_owned() },
                kind: PAYLOAD_TYPE.to_owned(),
            },
            optional: None,
        }
    }

    /// The bytes that are signed and stored as the signature layer.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain JSON")
    }

    pub fn parse(bytes: &[u8]) -> Result<Payload, PayloadError> {
        let payload: Payload = serde_json::from_slice(bytes).map_err(|e| PayloadError::Json(e.to_string()))?;
        if payload.critical.kind != PAYLOAD_TYPE {
            return Err(PayloadError::Type(payload.critical.kind));
        }
        Ok(payload)
    }

    pub fn digest(&self) -> &str {
        &self.critical.image.docker_manifest_digest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_cosigns_bytes() {
        let p = Payload::new("localhost:5000/app", "sha256:abc");
        assert_eq!(
            String::from_utf8(p.to_bytes()).unwrap(),
            r#"{"critical":{"identity":{"docker-reference":"localhost:5000/app"},"image":{"docker-manifest-digest":"sha256:abc"},"type":"cosign container image signature"},"optional":null}"#
        );
        assert_eq!(Payload::parse(&p.to_bytes()).unwrap(), p);
    }

    #[test]
    fn containers_image_payloads_are_read() {
        let bytes = br#"{"critical":{"identity":{"docker-reference":"localhost:5000/app:v1"},"image":{"docker-manifest-digest":"sha256:abc"},"type":"cosign container image signature"},"optional":{"creator":"containers/image 5.23","timestamp":1700000000}}"#;
        let p = Payload::parse(bytes).unwrap();
        assert_eq!(p.digest(), "sha256:abc");
        assert_eq!(p.optional.unwrap()["creator"], "containers/image 5.23");
    }

    #[test]
    fn other_payloads_are_refused() {
        assert!(matches!(Payload::parse(b"{}"), Err(PayloadError::Json(_))));
        let other = br#"{"critical":{"identity":{"docker-reference":"a"},"image":{"docker-manifest-digest":"sha256:abc"},"type":"atomic container signature"},"optional":null}"#;
        assert!(matches!(Payload::parse(other), Err(PayloadError::Type(t)) if t == "atomic container signature"));
    }
}
