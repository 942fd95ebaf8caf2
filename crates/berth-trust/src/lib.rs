//! Signed images in cosign's format, as pure logic shared by the engine (which verifies,
//! and enforces the trust policy on pull and run) and the host (which holds private keys
//! and signs).
//!
//! - [`key`]: ECDSA P-256 key pairs; the private key sealed as cosign seals it (scrypt,
//!   then NaCl secretbox, in an `ENCRYPTED SIGSTORE PRIVATE KEY` PEM block), the public key
//!   as a PKIX `PUBLIC KEY` PEM block.
//! - [`payload`]: the simple-signing payload a signature covers (the image's manifest
//!   digest and its repository).
//! - [`signature`]: ECDSA signatures over a payload, DER, base64 as cosign stores them.
//! - [`attached`]: the signature image at the `sha256-<hex>.sig` tag: one layer per
//!   signature, the payload as the layer, the signature in its annotation.
//! - [`policy`]: which repositories need a signature by which keys.

pub mod attached;
pub mod key;
pub mod payload;
pub mod policy;
pub mod signature;

pub use key::{KeyError, PrivateKey, PublicKey};
pub use payload::Payload;
pub use policy::{Policy, PolicyError, Rule};
