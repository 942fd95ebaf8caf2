//! Key files in cosign's format.
//!
//! The private key is PKCS#8 DER sealed with NaCl's secretbox under a key scrypt derives
//! from the password (N = 32768, r = 8, p = 1: what every cosign release reads, where
//! cosign 2.2 and later write 65536 and read both; a 32-byte salt, a 24-byte nonce), the
//! parameters and the sealed bytes kept as JSON inside an `ENCRYPTED SIGSTORE PRIVATE
//! KEY` PEM block, as cosign writes it since 2.0.1 (containers/image reads that label from
//! 5.25).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The PEM label cosign writes on a sealed private key.
pub const SEALED_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The label older cosign releases wrote; still read.
pub const OLD_SEALED_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

const SCRYPT_LOG_N: u8 = 15;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM file: {0}")]
    Pem(String),
    #[error("not a cosign private key: the PEM block is {0:?}, expected {SEALED_LABEL:?}")]
    Label(String),
    #[error("the private key file is malformed: {0}")]
    Malformed(String),
    #[error("wrong password for the private key (or the file was altered)")]
    Password,
    #[error("not an ECDSA P-256 public key: {0}")]
    Public(String),
}

/// A signing key (ECDSA P-256).
pub struct PrivateKey(SigningKey);

impl std::fmt::Debug for PrivateKey {
    /// Names the public half only: a private key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({})", self.public().fingerprint())
    }
}

/// A verifying key (ECDSA P-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

#[derive(Serialize, Deserialize)]
struct Sealed {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

mod b64 {
    use super::*;
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(bytes))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        B64.decode(text).map_err(serde::de::Error::custom)
    }
}

impl PrivateKey {
    pub fn generate() -> PrivateKey {
        PrivateKey(SigningKey::random(&mut OsRng))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(*self.0.verifying_key())
    }

    pub(crate) fn signing(&self) -> &SigningKey {
        &self.0
    }

    /// The key sealed under `password` (may be empty, as cosign allows), as the text of a
    /// `.key` file.
    pub fn seal(&self, password: &[u8]) -> String {
        let der = self.0.to_pkcs8_der().expect("a P-256 key encodes as PKCS#8");
        let mut salt = vec![0u8; 32];
        OsRng.fill_bytes(&mut salt);
        let mut nonce = vec![0u8; 24];
        OsRng.fill_bytes(&mut nonce);
        let key = derive(password, &salt, SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P).expect("the default scrypt parameters are valid");
        let ciphertext = XSalsa20Poly1305::new((&key).into()).encrypt(nonce.as_slice().into(), der.as_bytes()).expect("secretbox seals any length");
        let sealed = Sealed {
            kdf: Kdf { name: "scrypt".into(), params: ScryptParams { n: 1 << SCRYPT_LOG_N, r: SCRYPT_R, p: SCRYPT_P }, salt },
            cipher: Cipher { name: "nacl/secretbox".into(), nonce },
            ciphertext,
        };
        pem_encode(SEALED_LABEL, &serde_json::to_vec(&sealed).expect("plain JSON"))
    }

    /// Opens a sealed `.key` file's text with `password`.
    pub fn open(text: &str, password: &[u8]) -> Result<PrivateKey, KeyError> {
        let (label, body) = pem_decode(text)?;
        if label != SEALED_LABEL && label != OLD_SEALED_LABEL {
            return Err(KeyError::Label(label));
        }
        let sealed: Sealed = serde_json::from_slice(&body).map_err(|e| KeyError::Malformed(e.to_string()))?;
        if sealed.kdf.name != "scrypt" {
            return Err(KeyError::Malformed(format!("unsupported key derivation {:?}", sealed.kdf.name)));
        }
        if sealed.cipher.name != "nacl/secretbox" {
            return Err(KeyError::Malformed(format!("unsupported cipher {:?}", sealed.cipher.name)));
        }
        let n = sealed.kdf.params.n;
        // Refuse parameters that would take more than 1 GiB (scrypt holds 128 * r * N
        // bytes) or minutes.
        let (r, p) = (u64::from(sealed.kdf.params.r), u64::from(sealed.kdf.params.p));
        let memory = 128u64.saturating_mul(r).saturating_mul(n);
        if !n.is_power_of_two() || n < 2 || r == 0 || p == 0 || p > 16 || memory > 1 << 30 {
            return Err(KeyError::Malformed(format!("unsupported scrypt parameters N={n} r={} p={}", sealed.kdf.params.r, sealed.kdf.params.p)));
        }
        if sealed.cipher.nonce.len() != 24 {
            return Err(KeyError::Malformed(format!("the nonce is {} bytes, expected 24", sealed.cipher.nonce.len())));
        }
        let key = derive(password, &sealed.kdf.salt, n.trailing_zeros() as u8, sealed.kdf.params.r, sealed.kdf.params.p)
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        let der = XSalsa20Poly1305::new((&key).into())
            .decrypt(sealed.cipher.nonce.as_slice().into(), sealed.ciphertext.as_slice())
            .map_err(|_| KeyError::Password)?;
        SigningKey::from_pkcs8_der(&der).map(PrivateKey).map_err(|e| KeyError::Malformed(format!("not an ECDSA P-256 key: {e}")))
    }
}

fn derive(password: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32) -> Result<[u8; 32], String> {
    let params = scrypt::Params::new(log_n, r, p, 32).map_err(|e| e.to_string())?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut key).map_err(|e| e.to_string())?;
    Ok(key)
}

impl PublicKey {
    /// The text of a `.pub` file: a PKIX `PUBLIC KEY` PEM block.
    pub fn to_pem(&self) -> String {
        self.0.to_public_key_pem(LineEnding::LF).expect("a P-256 key encodes as PKIX")
    }

    pub fn from_pem(text: &str) -> Result<PublicKey, KeyError> {
        VerifyingKey::from_public_key_pem(text.trim()).map(PublicKey).map_err(|e| KeyError::Public(e.to_string()))
    }

    pub(crate) fn verifying(&self) -> &VerifyingKey {
        &self.0
    }

    /// `sha256:<hex>` of the key's PKIX DER: how the engine records which key verified an
    /// image, and how a person tells keys apart.
    pub fn fingerprint(&self) -> String {
        let der = self.0.to_public_key_der().expect("a P-256 key encodes as PKIX");
        format!("sha256:{:x}", Sha256::digest(der.as_bytes()))
    }
}

fn pem_encode(label: &str, body: &[u8]) -> String {
    let text = B64.encode(body);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_decode(text: &str) -> Result<(String, Vec<u8>), KeyError> {
    let start = text.find("-----BEGIN ").ok_or_else(|| KeyError::Pem("no BEGIN line".into()))?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----").ok_or_else(|| KeyError::Pem("an unterminated BEGIN line".into()))?;
    let label = rest[..label_end].to_owned();
    let body = &rest[label_end + 5..];
    let end_line = format!("-----END {label}-----");
    let end = body.find(&end_line).ok_or_else(|| KeyError::Pem(format!("no {end_line:?} line")))?;
    let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = B64.decode(b64).map_err(|e| KeyError::Pem(e.to_string()))?;
    Ok((label, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_with_its_password_only() {
        let key = PrivateKey::generate();
        let text = key.seal(b"hunter2");
        assert!(text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"), "{text}");
        let opened = PrivateKey::open(&text, b"hunter2").unwrap();
        assert_eq!(opened.public(), key.public());
        assert!(matches!(PrivateKey::open(&text, b"hunter3"), Err(KeyError::Password)));
        // cosign allows an empty password.
        let empty = key.seal(b"");
        assert_eq!(PrivateKey::open(&empty, b"").unwrap().public(), key.public());
    }

    #[test]
    fn the_sealed_json_has_cosigns_fields() {
        let text = PrivateKey::generate().seal(b"");
        let (label, body) = pem_decode(&text).unwrap();
        assert_eq!(label, SEALED_LABEL);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["kdf"]["name"], "scrypt");
        assert_eq!(json["kdf"]["params"], serde_json::json!({"N": 32768, "r": 8, "p": 1}));
        assert_eq!(B64.decode(json["kdf"]["salt"].as_str().unwrap()).unwrap().len(), 32);
        assert_eq!(json["cipher"]["name"], "nacl/secretbox");
        assert_eq!(B64.decode(json["cipher"]["nonce"].as_str().unwrap()).unwrap().len(), 24);
        // PKCS#8 DER of a P-256 key (138 bytes) plus the 16-byte tag.
        assert_eq!(B64.decode(json["ciphertext"].as_str().unwrap()).unwrap().len(), 138 + 16);
    }

    #[test]
    fn altered_or_hostile_key_files_are_refused_clearly() {
        let text = PrivateKey::generate().seal(b"pw");
        let (_, body) = pem_decode(&text).unwrap();
        let mut json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let mut ct = B64.decode(json["ciphertext"].as_str().unwrap()).unwrap();
        ct[3] ^= 1;
        json["ciphertext"] = B64.encode(&ct).into();
        let altered = pem_encode(SEALED_LABEL, &serde_json::to_vec(&json).unwrap());
        assert!(matches!(PrivateKey::open(&altered, b"pw"), Err(KeyError::Password)));

        json["kdf"]["params"]["N"] = (1u64 << 40).into();
        let costly = pem_encode(SEALED_LABEL, &serde_json::to_vec(&json).unwrap());
        assert!(matches!(PrivateKey::open(&costly, b"pw"), Err(KeyError::Malformed(_))));

        let public = PrivateKey::generate().public().to_pem();
        assert!(matches!(PrivateKey::open(&public, b""), Err(KeyError::Label(l)) if l == "PUBLIC KEY"));
        assert!(matches!(PrivateKey::open("hello", b""), Err(KeyError::Pem(_))));
    }

    /// A key file cosign itself made, with an empty password: published as a test
    /// fixture by conforma/cli (internal/validate/vsa), used here as a known answer.
    const COSIGN_MADE: &str = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjo2NTUzNiwiciI6
OCwicCI6MX0sInNhbHQiOiJLYU9OQzduQVJLOVgxM1FoaWFucjAwTTBGYys2Sitr
dnAxN1FuanpiVk9nPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJVOHZqWWtqMlZOUFZGdlZFZWZ3bXZ5VGloUERrelBoaCJ9LCJj
aXBoZXJ0ZXh0IjoidWNWMnQ4TTZVNFJvb29FOXc0d3dkc3E1RDYrS2RKY245dERT
KzFwRDRGN040SVJOWEgzSTBua3h1a3NackFOUHR1emIvTkVYQ201dUp3Zjh3Qzl1
VlprbXdwNU5jRUZ6b3ZNS3JCZmNvdXdjaEkrMzkrQ0NhbVZPbzBucmRnZjhvcmpK
dXdrWDBYL1phY0RUTERGaUxyc1laMWVMMmlqMGU1MVRpZmVQNTl4WXNPK1FnM1Jv
OURRVjNQMk9ndDFDaVFHeGg1VXhUZytGc3c9PSJ9
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----
";

    #[test]
    fn a_key_file_cosign_made_opens() {
        let key = PrivateKey::open(COSIGN_MADE, b"").expect("cosign's own key file");
        assert!(matches!(PrivateKey::open(COSIGN_MADE, b"x"), Err(KeyError::Password)));
        // It signs, and its public half verifies.
        let sig = crate::signature::sign(&key, b"payload");
        assert!(crate::signature::verify(&key.public(), b"payload", &sig));
    }

    #[test]
    fn public_keys_round_trip_as_pkix_pem() {
        let public = PrivateKey::generate().public();
        let pem = public.to_pem();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
        assert_eq!(PublicKey::from_pem(&pem).unwrap(), public);
        assert_eq!(PublicKey::from_pem(&pem).unwrap().fingerprint(), public.fingerprint());
        assert!(public.fingerprint().starts_with("sha256:") && public.fingerprint().len() == 71);
        assert!(PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").is_err());
    }
}
