//! Signed images (cosign's format, see `berth_trust`): finding and checking an image's
//! signatures in its registry, attaching one a client made, and the trust policy the
//! engine enforces on pull (before any layer is fetched) and on create (against what the
//! pull verified, recorded in the catalog).

use berth_proto::ErrorKind;
use berth_trust::attached::{self, SignatureManifest};
use berth_trust::policy::Requirement;
use berth_trust::{Payload, Policy, PublicKey};

use super::Images;
use crate::content::{Digest, InvalidDigest};
use crate::registry::{Credentials, InvalidReference, Reference, RegistryError};

/// The policy file in the images folder.
const POLICY_FILE: &str = "trust-policy.json";

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error(transparent)]
    Reference(#[from] InvalidReference),
    #[error(transparent)]
    Policy(#[from] berth_trust::PolicyError),
    #[error("trust policy file {path}: {detail}")]
    PolicyFile { path: String, detail: String },
    #[error("{0}")]
    Key(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Digest(#[from] InvalidDigest),
    #[error(transparent)]
    Content(#[from] crate::content::ContentError),
    #[error(transparent)]
    Catalog(#[from] super::CatalogError),
    /// The policy (or the caller) asks for a signature and no key it names verifies one.
    #[error("{image} is refused by the trust policy: {why}")]
    Refused { image: String, why: String },
    #[error("the signed payload is not for this image: {0}")]
    Payload(String),
}

impl TrustError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            TrustError::Reference(_) | TrustError::Policy(_) | TrustError::Key(_) | TrustError::Digest(_) | TrustError::Payload(_) => {
                ErrorKind::InvalidArgument
            }
            TrustError::Refused { .. } => ErrorKind::Conflict,
            TrustError::Registry(e) => e.kind(),
            TrustError::Content(e) => e.kind(),
            TrustError::PolicyFile { .. } | TrustError::Catalog(_) => ErrorKind::Internal,
        }
    }
}

/// What checking an image's signatures found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The manifest (or index) digest the signatures are of.
    pub digest: Digest,
    /// How many signatures the registry holds for it.
    pub found: usize,
    /// Fingerprints of the keys that verified one, each once.
    pub verified_by: Vec<String>,
    /// The references the verified payloads name.
    pub identities: Vec<String>,
}

/// What a client signs, as [`Images::signature_payload`] gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToSign {
    pub repository: String,
    pub digest: Digest,
    pub payload: Vec<u8>,
}

fn repository_of(reference: &Reference) -> Reference {
    Reference { tag: None, digest: None, ..reference.clone() }
}

impl Images {
    fn policy_path(&self) -> std::path::PathBuf {
        self.root.join(POLICY_FILE)
    }

    /// The trust policy now (none written: nothing needs a signature).
    pub fn trust_policy(&self) -> Result<Policy, TrustError> {
        let path = self.policy_path();
        match std::fs::read(&path) {
            Ok(bytes) => Policy::parse(&bytes).map_err(|e| TrustError::PolicyFile { path: path.display().to_string(), detail: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Policy::default()),
            Err(e) => Err(TrustError::PolicyFile { path: path.display().to_string(), detail: e.to_string() }),
        }
    }

    /// Replaces the trust policy (checked first; written whole, then renamed).
    pub fn set_trust_policy(&self, policy: &Policy) -> Result<(), TrustError> {
        policy.check()?;
        let path = self.policy_path();
        let tmp = self.root.join(format!("{POLICY_FILE}.tmp"));
        let failed = |e: std::io::Error| TrustError::PolicyFile { path: path.display().to_string(), detail: e.to_string() };
        std::fs::write(&tmp, policy.to_bytes()).map_err(failed)?;
        std::fs::rename(&tmp, &path).map_err(failed)?;
        tracing::info!(rules = policy.rules.len(), "trust policy replaced");
        Ok(())
    }

    /// The policy the host's settings put in daemon.json (under
    /// [`berth_proto::TRUST_POLICY_KEY`]) replaces the engine's at start; without the key
    /// the engine keeps its own. An invalid one stops the engine from opening, as any bad
    /// daemon.json does, rather than run without the checks it asks for.
    pub fn take_trust_policy_from(&self, daemon_json: &std::path::Path) -> Result<(), super::OpenError> {
        let Ok(bytes) = std::fs::read(daemon_json) else { return Ok(()) };
        let bad = |detail: String| super::OpenError::Config(crate::registry::ConfigError { path: daemon_json.to_owned(), detail });
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        let Some(policy) = value.get(berth_proto::TRUST_POLICY_KEY) else { return Ok(()) };
        let policy: Policy = serde_json::from_value(policy.clone()).map_err(|e| bad(format!("{}: {e}", berth_proto::TRUST_POLICY_KEY)))?;
        self.set_trust_policy(&policy).map_err(|e| bad(format!("{}: {e}", berth_proto::TRUST_POLICY_KEY)))
    }

    /// The digest `reference` resolves to in its registry, and the payload that signs it.
    pub async fn signature_payload(&self, reference: &str, creds: Option<&Credentials>) -> Result<ToSign, TrustError> {
        let reference: Reference = reference.parse()?;
        let top = self.registry.manifest(&reference, creds).await?;
        let repository = reference.name();
        let payload = Payload::new(&repository, &top.digest.to_string()).to_bytes();
        Ok(ToSign { repository, digest: top.digest, payload })
    }

    /// Adds a signature a client made of `payload` to the signature image of the digest
    /// it names, in `reference`'s repository; the signature tag and how many signatures
    /// it now holds.
    pub async fn attach_signature(&self, reference: &str, payload: &[u8], signature: &str, creds: Option<&Credentials>) -> Result<(String, usize), TrustError> {
        let reference: Reference = reference.parse()?;
        let parsed = Payload::parse(payload).map_err(|e| TrustError::Payload(e.to_string()))?;
        let digest: Digest = parsed.digest().parse()?;
        // The signed digest must be in this repository.
        self.registry.manifest(&reference.with_digest(digest.clone()), creds).await?;
        let tag = attached::signature_tag(&digest.to_string());
        let at_tag = Reference { tag: Some(tag.clone()), digest: None, ..reference.clone() };
        let existing = match self.registry.manifest(&at_tag, creds).await {
            Ok(fetched) => Some(SignatureManifest::parse(&fetched.bytes).map_err(TrustError::Payload)?),
            Err(RegistryError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let (manifest, blobs) = attached::with_signature(existing.as_ref(), payload, signature);
        let lease = self.leases.take();
        for blob in &blobs {
            let digest: Digest = blob.digest.parse()?;
            lease.protect(&digest);
            self.content.put(digest.clone(), &blob.bytes).await?;
            self.registry.push_blob(&at_tag, &digest, &self.content, None, creds).await?;
        }
        let count = SignatureManifest::parse(&manifest).map_err(TrustError::Payload)?.signatures().len();
        self.registry.push_manifest(&at_tag, attached::MANIFEST_MEDIA_TYPE, manifest, creds).await?;
        tracing::info!(repository = %reference.name(), %digest, signatures = count, "signature attached");
        Ok((tag, count))
    }

    /// The signatures of what `reference` resolves to (or of `digest`, when given) that
    /// one of `keys` verifies. Signatures that do not verify, or that are of another
    /// digest, are skipped; an image with none is not an error here.
    pub async fn check_signatures(
        &self,
        reference: &Reference,
        digest: Option<&Digest>,
        keys: &[PublicKey],
        creds: Option<&Credentials>,
    ) -> Result<Checked, TrustError> {
        let digest = match digest {
            Some(d) => d.clone(),
            None => self.registry.manifest(reference, creds).await?.digest,
        };
        let at_tag = Reference { tag: Some(attached::signature_tag(&digest.to_string())), digest: None, ..reference.clone() };
        let mut checked = Checked { digest: digest.clone(), found: 0, verified_by: Vec::new(), identities: Vec::new() };
        let manifest = match self.registry.manifest(&at_tag, creds).await {
            Ok(fetched) => fetched,
            Err(RegistryError::NotFound { .. }) => return Ok(checked),
            Err(e) => return Err(e.into()),
        };
        let Ok(manifest) = SignatureManifest::parse(&manifest.bytes) else {
            tracing::warn!(repository = %reference.name(), %digest, "the signature tag holds no OCI manifest");
            return Ok(checked);
        };
        let stored = manifest.signatures();
        checked.found = stored.len();
        for one in stored {
            if one.payload.size > attached::MAX_PAYLOAD {
                continue;
            }
            let Ok(payload_digest) = one.payload.digest.parse::<Digest>() else { continue };
            let bytes = match self.registry.blob_bytes(&at_tag, &payload_digest, attached::MAX_PAYLOAD, creds).await {
                Ok(bytes) => bytes,
                Err(RegistryError::Content(_) | RegistryError::NotFound { .. } | RegistryError::Status { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let Ok(payload) = Payload::parse(&bytes) else { continue };
            if payload.digest() != digest.to_string() {
                continue;
            }
            for key in keys {
                if berth_trust::signature::verify(key, &bytes, &one.signature) {
                    let fingerprint = key.fingerprint();
                    if !checked.verified_by.contains(&fingerprint) {
                        checked.verified_by.push(fingerprint);
                    }
                    if !checked.identities.contains(&payload.critical.identity.docker_reference) {
                        checked.identities.push(payload.critical.identity.docker_reference.clone());
                    }
                }
            }
        }
        Ok(checked)
    }

    /// The pull's check, before any layer is fetched: what the policy asks of
    /// `reference`'s repository (or any policy key, when `required`), verified against
    /// the registry. Verified keys are returned for [`Images::record_verified`].
    pub(crate) async fn enforce_on_pull(
        &self,
        reference: &Reference,
        digest: &Digest,
        required: bool,
        creds: Option<&Credentials>,
    ) -> Result<Vec<String>, TrustError> {
        let policy = self.trust_policy()?;
        let repository = reference.name();
        let Requirement::Signed { scope, keys } = policy.requirement(&repository, required) else { return Ok(Vec::new()) };
        let image = reference.familiar();
        if keys.is_empty() {
            return Err(TrustError::Refused {
                image,
                why: "a signature is required (DOCKER_CONTENT_TRUST) and the trust policy names no key: add one with `berth trust policy set SCOPE --key KEY.pub`".into(),
            });
        }
        let checked = self.check_signatures(&repository_of(reference), Some(digest), &keys, creds).await?;
        if checked.verified_by.is_empty() {
            return Err(TrustError::Refused { image, why: unsigned_reason(scope.as_deref(), checked.found, digest) });
        }
        Ok(checked.verified_by)
    }

    /// Records that `keys` verified `digest` in `repository`.
    pub(crate) fn record_verified(&self, repository: &str, digest: &Digest, keys: &[String]) -> Result<(), TrustError> {
        Ok(self.catalog.record_signatures(repository, digest, keys)?)
    }

    /// The create's check: an image the policy covers (by the name it is run as, or, run
    /// by ID, by any of its names) must have been verified, when pulled, by a key the
    /// policy names for it now.
    pub fn enforce_on_create(&self, name: &str, image: &super::ImageRecord, required: bool) -> Result<(), TrustError> {
        let policy = self.trust_policy()?;
        if policy.rules.is_empty() && !required {
            return Ok(());
        }
        let by_name = name.parse::<Reference>().ok().filter(|_| !image.id.to_string().contains(name) && !name.starts_with("sha256:"));
        let repositories: Vec<String> = match &by_name {
            Some(reference) => vec![reference.name()],
            None => image.tags.iter().chain(&image.repo_digests).filter_map(|n| n.parse::<Reference>().ok()).map(|r| r.name()).collect(),
        };
        for repository in repositories {
            let Requirement::Signed { scope, keys } = policy.requirement(&repository, required && by_name.is_some()) else { continue };
            let wanted: Vec<String> = keys.iter().map(PublicKey::fingerprint).collect();
            let verified = self.catalog.signatures_of(&image.repo_digests)?;
            if verified.iter().any(|(_, key)| wanted.contains(key)) {
                continue;
            }
            let scope = scope.map(|s| format!("the trust policy's rule for {s}")).unwrap_or_else(|| "DOCKER_CONTENT_TRUST".to_owned());
            return Err(TrustError::Refused {
                image: name.to_owned(),
                why: format!(
                    "{scope} requires a signature by one of its keys, and no signature of this image was verified by one; pull it again from its registry to verify it (a built, loaded or imported image has no signature)"
                ),
            });
        }
        Ok(())
    }

    /// The keys that verified `image` when it was pulled (or checked since).
    pub fn signed_by(&self, image: &super::ImageRecord) -> Result<Vec<String>, TrustError> {
        let mut keys: Vec<String> = self.catalog.signatures_of(&image.repo_digests)?.into_iter().map(|(_, k)| k).collect();
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}

fn unsigned_reason(scope: Option<&str>, found: usize, digest: &Digest) -> String {
    let who = match scope {
        Some(scope) => format!("the trust policy's rule for {scope} requires a signature by one of its keys"),
        None => "a signature is required (DOCKER_CONTENT_TRUST) by one of the trust policy's keys".to_owned(),
    };
    match found {
        0 => format!("{who}, and {digest} has no signature in its registry"),
        n => format!("{who}, and none of the {n} signature(s) of {digest} in its registry verifies with one"),
    }
}
