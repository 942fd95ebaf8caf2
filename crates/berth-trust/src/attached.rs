//! The signature image cosign attaches to an image: an OCI manifest at the tag
//! `sha256-<hex>.sig` in the image's repository, one layer per signature, each layer
//! the payload (media type `application/vnd.dev.cosign.simplesigning.v1+json`) with the
//! base64 signature in its `dev.cosignproject.cosign/signature` annotation. A new
//! signature is one more layer on the manifest already there.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub const LAYER_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// The largest payload read from a registry: a simple-signing payload is a few hundred
/// bytes.
pub const MAX_PAYLOAD: u64 = 64 * 1024;

/// The tag that holds `digest`'s signatures (`sha256:abc` -> `sha256-abc.sig`).
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub size: u64,
    pub digest: String,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureManifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: String,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// One signature as stored: its payload's descriptor and the base64 signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub payload: Descriptor,
    pub signature: String,
}

/// A blob the registry needs before the manifest can be pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub digest: String,
    pub bytes: Vec<u8>,
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

impl SignatureManifest {
    pub fn parse(bytes: &[u8]) -> Result<SignatureManifest, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("the signature manifest is not an OCI manifest: {e}"))
    }

    /// The signatures it holds; layers of other media types (attestations, say) are
    /// not signatures and are skipped.
    pub fn signatures(&self) -> Vec<Stored> {
        self.layers
            .iter()
            .filter(|l| l.media_type == LAYER_MEDIA_TYPE)
            .filter_map(|l| l.annotations.get(SIGNATURE_ANNOTATION).map(|s| Stored { payload: l.clone(), signature: s.clone() }))
            .collect()
    }
}

/// The signature manifest with `payload` signed by `signature` added to `existing` (the
/// manifest at the tag now, if any), and the blobs to push first: the payload and the
/// config. A signature already there (same payload, same signature) is not added twice.
pub fn with_signature(existing: Option<&SignatureManifest>, payload: &[u8], signature: &str) -> (Vec<u8>, Vec<Blob>) {
    let layer = Descriptor {
        media_type: LAYER_MEDIA_TYPE.to_owned(),
        size: payload.len() as u64,
        digest: sha256_digest(payload),
        annotations: [(SIGNATURE_ANNOTATION.to_owned(), signature.to_owned())].into(),
    };
    let mut layers = existing.map(|m| m.layers.clone()).unwrap_or_default();
    if !layers.contains(&layer) {
        layers.push(layer);
    }
    // The config go-containerregistry writes for such an image: no platform, the layers'
    // digests as diff IDs (the payloads are stored uncompressed).
    let config = serde_json::json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": layers.iter().map(|_| serde_json::json!({"created": "0001-01-01T00:00:00Z"})).collect::<Vec<_>>(),
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>()},
        "config": {},
    });
    let config = serde_json::to_vec(&config).expect("plain JSON");
    let manifest = SignatureManifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE.to_owned(),
        config: Descriptor {
            media_type: CONFIG_MEDIA_TYPE.to_owned(),
            size: config.len() as u64,
            digest: sha256_digest(&config),
            annotations: Default::default(),
        },
        layers,
    };
    let blobs = vec![Blob { digest: sha256_digest(payload), bytes: payload.to_vec() }, Blob { digest: sha256_digest(&config), bytes: config }];
    (serde_json::to_vec(&manifest).expect("plain JSON"), blobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_cosigns() {
        assert_eq!(signature_tag("sha256:0123abcd"), "sha256-0123abcd.sig");
    }

    #[test]
    fn signatures_are_layers_added_once() {
        let (first, blobs) = with_signature(None, b"p1", "s1");
        assert_eq!(blobs[0].digest, sha256_digest(b"p1"));
        let first = SignatureManifest::parse(&first).unwrap();
        assert_eq!(first.media_type, MANIFEST_MEDIA_TYPE);
        assert_eq!(first.config.digest, blobs[1].digest);
        assert_eq!(first.signatures().len(), 1);
        assert_eq!(first.signatures()[0].signature, "s1");
        assert_eq!(first.signatures()[0].payload.media_type, LAYER_MEDIA_TYPE);

        let (second, _) = with_signature(Some(&first), b"p1", "s2");
        let second = SignatureManifest::parse(&second).unwrap();
        assert_eq!(second.signatures().iter().map(|s| s.signature.as_str()).collect::<Vec<_>>(), ["s1", "s2"]);
        let (again, _) = with_signature(Some(&second), b"p1", "s2");
        assert_eq!(SignatureManifest::parse(&again).unwrap().layers.len(), 2);
        let config: serde_json::Value = serde_json::from_slice(&with_signature(Some(&first), b"p1", "s2").1[1].bytes).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn other_layers_are_not_signatures() {
        let manifest = br#"{"schemaVersion":2,"config":{"mediaType":"x","size":1,"digest":"sha256:aa"},"layers":[
            {"mediaType":"application/vnd.dsse.envelope.v1+json","size":1,"digest":"sha256:bb","annotations":{"dev.cosignproject.cosign/signature":""}},
            {"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":1,"digest":"sha256:cc"}]}"#;
        assert!(SignatureManifest::parse(manifest).unwrap().signatures().is_empty());
        assert!(SignatureManifest::parse(b"[]").is_err());
    }
}
