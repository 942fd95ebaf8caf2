//! Signed images, against a real registry (Debian's docker-registry) and the native
//! engine: `berth trust` keys, sign and verify in cosign's format, tampering caught, the
//! trust policy enforced on pull and on run, `DOCKER_CONTENT_TRUST`, and the format
//! checked against an independent implementation of its cryptography:
//! OpenSSL (Python's cryptography) verifies what Berth signs and Berth what OpenSSL
//! signs. (cosign is not packaged for Debian 12 and cannot be fetched here, and Debian's
//! skopeo and podman have their sigstore support patched out.)

use std::ffi::OsStr;
use std::path::Path;

use berth_tests::fixtures::{self, registry::Registry, Fixture};
use berth_tests::native::NativeEngine;

const PASSWORD: &str = "correct horse";

/// A runnable image that differs from the others by a label.
fn image(repo: &str, tag: &str, label: &str) -> Fixture {
    fixtures::single(repo, tag, fixtures::container_image(serde_json::json!({"Labels": {"which": label}})))
}

fn berth(engine: &NativeEngine, args: &[&str]) -> (bool, String, String) {
    engine.berth_with(args, &[("COSIGN_PASSWORD", OsStr::new(PASSWORD))], "")
}

fn berth_ok(engine: &NativeEngine, args: &[&str]) -> String {
    let (ok, out, err) = berth(engine, args);
    assert!(ok, "berth {args:?}: {out}{err}");
    out
}

fn generate(engine: &NativeEngine, dir: &Path, name: &str) -> (String, String) {
    let base = dir.join(name);
    let out = berth_ok(engine, &["trust", "key", "generate", base.to_str().expect("trust test step")]);
    assert!(out.contains("Public key written to"), "{out}");
    let (key, public) = (format!("{}.key", base.display()), format!("{}.pub", base.display()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).expect("trust test step").permissions().mode() & 0o777, 0o600, "the private key is the owner's alone");
    }
    assert!(std::fs::read_to_string(&key).expect("trust test step").starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
    assert!(std::fs::read_to_string(&public).expect("trust test step").starts_with("-----BEGIN PUBLIC KEY-----"));
    (key, public)
}

fn registry_json(registry: &Registry, path: &str) -> serde_json::Value {
    let text = ureq::get(&format!("http://{}{path}", registry.addr))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .call()
        .expect("GET")
        .body_mut()
        .read_to_string()
        .expect("body");
    serde_json::from_str(&text).expect("json")
}

#[test]
fn sign_and_verify_round_trip_and_tampering_is_caught() {
    let registry = Registry::start("trust-sign");
    let engine = NativeEngine::start("trust-sign");
    let app = image("team/app", "v1", "one");
    registry.push(&app);
    let reference = registry.reference(&app);
    let (key, public) = generate(&engine, &engine.home, "alice");
    let (_, other_public) = generate(&engine, &engine.home, "mallory");
    // A second generate refuses to overwrite the pair.
    let (ok, _, err) = berth(&engine, &["trust", "key", "generate", engine.home.join("alice").to_str().expect("trust test step")]);
    assert!(!ok && err.contains("exists"), "{err}");

    let out = berth_ok(&engine, &["trust", "sign", "--key", &key, &reference]);
    assert!(out.contains(&format!("Signed {}/team/app@{}", registry.addr, app.top.digest)), "{out}");
    let tag = format!("{}.sig", app.top.digest.replacen(':', "-", 1));
    assert!(out.contains(&tag), "{out}");

    // The signature image is cosign's: an OCI manifest with the payload as a layer and
    // the signature in its annotation.
    let manifest = registry_json(&registry, &format!("/v2/team/app/manifests/{tag}"));
    assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.dev.cosign.simplesigning.v1+json");
    assert!(manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"].as_str().is_some_and(|s| !s.is_empty()));

    let out = berth_ok(&engine, &["trust", "verify", "--key", &public, &reference]);
    assert!(out.contains("Verified") && out.contains("signed by sha256:"), "{out}");
    assert!(out.contains(&format!("for {}/team/app", registry.addr)), "{out}");
    // Another key does not verify it.
    let (ok, _, err) = berth(&engine, &["trust", "verify", "--key", &other_public, &reference]);
    assert!(!ok && err.contains("no signature") && err.contains("1 signature(s) found"), "{err}");
    // Signing twice adds a second signature, not a second manifest.
    let out = berth_ok(&engine, &["trust", "sign", "--key", &key, &reference]);
    assert!(out.contains("(1 in all)"), "the same signature is not stored twice: {out}");
    // A wrong password opens nothing.
    let (ok, _, err) = engine.berth_with(&["trust", "sign", "--key", &key, &reference], &[("COSIGN_PASSWORD", OsStr::new("wrong"))], "");
    assert!(!ok && err.contains("wrong password"), "{err}");

    // A tampered payload: the same signature over other bytes (here, naming another
    // image) is refused.
    let signature = manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"].as_str().expect("trust test step").to_owned();
    let other = image("team/app", "v2", "two");
    registry.push(&other);
    let forged_payload = serde_json::to_vec(&serde_json::json!({
        "critical": {"identity": {"docker-reference": format!("{}/team/app", registry.addr)},
                     "image": {"docker-manifest-digest": other.top.digest}, "type": "cosign container image signature"},
        "optional": null}))
    .expect("trust test step");
    let forged = berth_trust::attached::with_signature(None, &forged_payload, &signature);
    let forged_tag = format!("{}.sig", other.top.digest.replacen(':', "-", 1));
    push_raw(&registry, "team/app", &forged_tag, forged);
    let other_ref = registry.reference(&other);
    let (ok, _, err) = berth(&engine, &["trust", "verify", "--key", &public, &other_ref]);
    assert!(!ok && err.contains("1 signature(s) found"), "a forged payload is not verified: {err}");

    // A tampered image: the tag now names other content, whose digest has no signature.
    let moved = image("team/app", "v1", "moved");
    registry.push(&moved);
    let (ok, _, err) = berth(&engine, &["trust", "verify", "--key", &public, &reference]);
    assert!(!ok && err.contains(&moved.top.digest) && err.contains("0 signature(s) found"), "{err}");
}

/// Pushes a signature manifest and its blobs as they are (a forger's push).
fn push_raw(registry: &Registry, repo: &str, tag: &str, (manifest, blobs): (Vec<u8>, Vec<berth_trust::attached::Blob>)) {
    for blob in blobs {
        registry.store_blob(repo, &blob.digest, &blob.bytes);
    }
    let status = ureq::put(&format!("http://{}/v2/{repo}/manifests/{tag}", registry.addr))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .send(&manifest[..])
        .expect("put manifest")
        .status()
        .as_u16();
    assert_eq!(status, 201);
}

#[test]
fn the_policy_blocks_unsigned_images_on_pull_and_on_run() {
    let registry = Registry::start("trust-policy");
    let engine = NativeEngine::start("trust-policy");
    let (signed, unsigned, elsewhere) = (image("secure/app", "v1", "signed"), image("secure/tool", "v1", "unsigned"), image("open/app", "v1", "open"));
    for f in [&signed, &unsigned, &elsewhere] {
        registry.push(f);
    }
    let (signed_ref, unsigned_ref, elsewhere_ref) = (registry.reference(&signed), registry.reference(&unsigned), registry.reference(&elsewhere));
    // Pulled before there is a policy.
    berth_ok(&engine, &["pull", &unsigned_ref]);

    let (key, public) = generate(&engine, &engine.home, "release");
    berth_ok(&engine, &["trust", "sign", "--key", &key, &signed_ref]);
    let scope = format!("{}/secure", registry.addr);
    let out = berth_ok(&engine, &["trust", "policy", "set", &scope, "--key", &public]);
    assert!(out.contains("enforces it now"), "{out}");
    let out = berth_ok(&engine, &["trust", "policy", "ls"]);
    assert!(out.contains(&scope) && out.contains("sha256:"), "{out}");
    let settings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(engine.home.join("settings.json")).expect("trust test step")).expect("trust test step");
    assert_eq!(settings["trust-policy"]["rules"][0]["scope"], scope.as_str(), "the policy is in the settings");

    // Pull: the unsigned image is refused before anything is fetched; the signed one
    // pulls and shows as signed.
    berth_ok(&engine, &["rmi", &unsigned_ref]);
    let (ok, _, err) = berth(&engine, &["pull", &unsigned_ref]);
    assert!(!ok && err.contains("refused by the trust policy") && err.contains("has no signature"), "{err}");
    let (ok, _, _) = berth(&engine, &["image", "inspect", &unsigned_ref]);
    assert!(!ok, "nothing of the refused image is recorded");
    berth_ok(&engine, &["pull", &signed_ref]);
    let out = berth_ok(&engine, &["run", "--rm", &signed_ref, "cat", "/srv/data.txt"]);
    assert_eq!(out, "from the image\n");

    // Run: an image of the scope that was never verified (loaded, say) is refused.
    let archive = engine.home.join("unsigned.tar");
    std::fs::write(
        &archive,
        fixtures::oci_archive(&fixtures::container_image(serde_json::json!({"Labels": {"which": "loaded"}})), &format!("{}:v2", scope.clone() + "/tool")),
    )
    .expect("trust test step");
    berth_ok(&engine, &["load", "-i", archive.to_str().expect("trust test step")]);
    let (ok, _, err) = berth(&engine, &["run", "--rm", &format!("{scope}/tool:v2"), "true"]);
    assert!(!ok && err.contains("refused by the trust policy") && err.contains("no signature of this image was verified"), "{err}");

    // The Docker API enforces the same policy: the docker CLI is refused in dockerd's
    // shape of a pull error and of a create error.
    let docker = |args: &[&str]| {
        let out = std::process::Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", engine.home.join("run/docker.sock").display()))
            .env("DOCKER_CONFIG", engine.home.join("docker-config"))
            .output()
            .expect("docker CLI");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = docker(&["pull", &unsigned_ref]);
    assert!(!ok && err.contains("refused by the trust policy"), "{err}");
    let (ok, err) = docker(&["run", "--rm", &format!("{scope}/tool:v2"), "true"]);
    assert!(!ok && err.contains("refused by the trust policy"), "{err}");
    let (ok, err) = docker(&["run", "--rm", &signed_ref, "true"]);
    assert!(ok, "{err}");

    // Outside the policy's scopes nothing is asked, unless DOCKER_CONTENT_TRUST is set.
    let dct = [("COSIGN_PASSWORD", OsStr::new(PASSWORD)), ("DOCKER_CONTENT_TRUST", OsStr::new("1"))];
    let (ok, _, err) = engine.berth_with(&["pull", &elsewhere_ref], &dct, "");
    assert!(!ok && err.contains("DOCKER_CONTENT_TRUST"), "{err}");
    berth_ok(&engine, &["pull", &elsewhere_ref]);
    let (ok, _, err) = engine.berth_with(&["run", "--rm", &elsewhere_ref, "true"], &dct, "");
    assert!(!ok && err.contains("DOCKER_CONTENT_TRUST"), "{err}");
    berth_ok(&engine, &["run", "--rm", &elsewhere_ref, "true"]);

    // Removing the rule lifts it.
    berth_ok(&engine, &["trust", "policy", "rm", &scope]);
    berth_ok(&engine, &["pull", &unsigned_ref]);
    let (ok, _, err) = berth(&engine, &["trust", "policy", "rm", &scope]);
    assert!(!ok && err.contains("no rule"), "{err}");
}

/// Python's `cryptography` (OpenSSL underneath; Debian's python3-cryptography), with
/// `args` as sys.argv[1..]; its stdout.
fn openssl_python(script: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("/usr/bin/python3").arg("-c").arg(script).args(args).output().expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const VERIFY_PY: &str = r#"
import base64, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.exceptions import InvalidSignature
key = serialization.load_pem_public_key(open(sys.argv[1], "rb").read())
payload = open(sys.argv[2], "rb").read()
try:
    key.verify(base64.b64decode(sys.argv[3]), payload, ec.ECDSA(hashes.SHA256()))
    print("valid")
except InvalidSignature:
    print("invalid")
"#;

const SIGN_PY: &str = r#"
import base64, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP256R1())
open(sys.argv[1], "wb").write(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
print(base64.b64encode(key.sign(open(sys.argv[2], "rb").read(), ec.ECDSA(hashes.SHA256()))).decode())
"#;

/// Debian's skopeo and podman have sigstore support patched out ("Debian-local change:
/// sigstore disabled") and cosign is not packaged, so the signature's cryptography is
/// checked against OpenSSL both ways, from what is in the registry: OpenSSL verifies the
/// signature Berth stored with Berth's public key file, and Berth verifies a signature
/// OpenSSL made with an OpenSSL key. (That Berth opens cosign's own key files is a unit
/// test of berth-trust, on a key cosign made.)
#[test]
fn openssl_verifies_what_berth_signs_and_berth_what_openssl_signs() {
    let registry = Registry::start("trust-openssl");
    let engine = NativeEngine::start("trust-openssl");
    let app = image("interop/app", "v1", "interop");
    registry.push(&app);
    let reference = registry.reference(&app);
    let (key, public) = generate(&engine, &engine.home, "interop");
    berth_ok(&engine, &["trust", "sign", "--key", &key, &reference]);

    let tag = format!("{}.sig", app.top.digest.replacen(':', "-", 1));
    let manifest = registry_json(&registry, &format!("/v2/interop/app/manifests/{tag}"));
    let layer = &manifest["layers"][0];
    let payload = ureq::get(&format!("http://{}/v2/interop/app/blobs/{}", registry.addr, layer["digest"].as_str().expect("trust test step")))
        .call()
        .expect("GET payload")
        .body_mut()
        .read_to_vec()
        .expect("payload");
    let payload_file = engine.home.join("payload.json");
    std::fs::write(&payload_file, &payload).expect("trust test step");
    let claims: serde_json::Value = serde_json::from_slice(&payload).expect("trust test step");
    assert_eq!(claims["critical"]["image"]["docker-manifest-digest"], app.top.digest.as_str());
    assert_eq!(claims["critical"]["type"], "cosign container image signature");
    let signature = layer["annotations"]["dev.cosignproject.cosign/signature"].as_str().expect("trust test step");
    assert_eq!(openssl_python(VERIFY_PY, &[&public, payload_file.to_str().expect("trust test step"), signature]).trim(), "valid");
    // The check can fail: the same signature over other bytes does not verify.
    let other_file = engine.home.join("other.json");
    std::fs::write(&other_file, [&payload[..], b" "].concat()).expect("trust test step");
    assert_eq!(openssl_python(VERIFY_PY, &[&public, other_file.to_str().expect("trust test step"), signature]).trim(), "invalid");

    // OpenSSL signs a payload for another tag's image; Berth verifies it with
    // OpenSSL's public key, and not with its own.
    let other = image("interop/app", "v2", "openssl");
    registry.push(&other);
    let payload = berth_trust::Payload::new(&format!("{}/interop/app", registry.addr), &other.top.digest).to_bytes();
    std::fs::write(&payload_file, &payload).expect("trust test step");
    let openssl_public = engine.home.join("openssl.pub");
    let signature = openssl_python(SIGN_PY, &[openssl_public.to_str().expect("trust test step"), payload_file.to_str().expect("trust test step")]);
    let other_tag = format!("{}.sig", other.top.digest.replacen(':', "-", 1));
    push_raw(&registry, "interop/app", &other_tag, berth_trust::attached::with_signature(None, &payload, signature.trim()));
    let other_ref = registry.reference(&other);
    let out = berth_ok(&engine, &["trust", "verify", "--key", openssl_public.to_str().expect("trust test step"), &other_ref]);
    assert!(out.contains("Verified"), "{out}");
    let (ok, _, err) = berth(&engine, &["trust", "verify", "--key", &public, &other_ref]);
    assert!(!ok && err.contains("1 signature(s) found"), "{err}");
}
