//! ECDSA P-256 signatures over SHA-256 of the payload bytes, ASN.1 DER, stored base64.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, Signature};

use crate::{PrivateKey, PublicKey};

/// The signature of `payload`, base64 of its DER, as cosign's annotation holds it.
pub fn sign(key: &PrivateKey, payload: &[u8]) -> String {
    let signature: Signature = key.signing().sign(payload);
    B64.encode(signature.to_der().as_bytes())
}

/// Whether `signature` (base64 DER, or the raw 64-byte form) is `key`'s over `payload`.
pub fn verify(key: &PublicKey, payload: &[u8], signature: &str) -> bool {
    let Ok(bytes) = B64.decode(signature.trim()) else { return false };
    if let Ok(der) = DerSignature::try_from(bytes.as_slice()) {
        return key.verifying().verify(payload, &der).is_ok();
    }
    Signature::from_slice(&bytes).is_ok_and(|raw| key.verifying().verify(payload, &raw).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_with_its_key_only_and_over_its_payload_only() {
        let key = PrivateKey::generate();
        let sig = sign(&key, b"payload");
        assert!(verify(&key.public(), b"payload", &sig));
        assert!(!verify(&key.public(), b"payloaD", &sig));
        assert!(!verify(&PrivateKey::generate().public(), b"payload", &sig));
        assert!(!verify(&key.public(), b"payload", "not base64!"));
        assert!(!verify(&key.public(), b"payload", ""));
        let mut der = B64.decode(&sig).unwrap();
        let last = der.len() - 1;
        der[last] ^= 1;
        assert!(!verify(&key.public(), b"payload", &B64.encode(der)));
    }
}
