//! What a registry holds for a reference, without pulling it (docker's
//! `GET /distribution/{name}/json`): the manifest's descriptor and the platforms it
//! offers (an index's entries, or a single manifest's config).

use super::manifest::{self, Index, Manifest, Platform};
use super::{Images, PullError};
use crate::registry::Reference;

/// The top manifest of a reference and the platforms it serves.
#[derive(Debug, Clone)]
pub struct Distribution {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub platforms: Vec<Platform>,
}

impl Images {
    pub async fn distribution(&self, reference: &str, creds: Option<&crate::registry::Credentials>) -> Result<Distribution, PullError> {
        let reference: Reference = reference.parse()?;
        let top = self.registry.manifest(&reference, creds).await?;
        let invalid = |detail: String| PullError::InvalidManifest { reference: reference.to_string(), detail };
        let platforms = if manifest::is_index(&top.media_type, &top.bytes) {
            let index: Index = serde_json::from_slice(&top.bytes).map_err(|e| invalid(e.to_string()))?;
            index.manifests.into_iter().filter_map(|d| d.platform).collect()
        } else {
            // A single manifest: its config says the platform. Fetched into the store
            // under a lease, as a pull's config is (a later pull reuses it).
            let m: Manifest = serde_json::from_slice(&top.bytes).map_err(|e| invalid(e.to_string()))?;
            let digest = m.config.digest().map_err(|e| invalid(e.to_string()))?;
            let lease = self.leases.take();
            lease.protect(&digest);
            self.registry.blob(&reference, &digest, m.config.size, &self.content, creds, |_| {}).await?;
            let config: serde_json::Value = serde_json::from_slice(&self.content.read(&digest).await.map_err(|e| invalid(e.to_string()))?).unwrap_or_default();
            vec![Platform {
                os: config["os"].as_str().unwrap_or("linux").to_owned(),
                architecture: config["architecture"].as_str().unwrap_or_default().to_owned(),
                variant: config["variant"].as_str().map(str::to_owned),
            }]
        };
        Ok(Distribution { media_type: top.media_type, digest: top.digest.to_string(), size: top.bytes.len() as u64, platforms })
    }
}
