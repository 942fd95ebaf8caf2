//! The fixtures themselves, checked against an independent client: every fixture pushed
//! to a real registry (Debian's docker-registry) reads back through skopeo (Debian) with
//! the digest the fixture builder computed.

use berth_tests::fixtures::{self, registry::Registry};

fn skopeo_inspect(reference: &str, raw: bool) -> std::process::Output {
    let mut cmd = std::process::Command::new("skopeo");
    cmd.args(["inspect", "--tls-verify=false"]);
    if raw {
        cmd.arg("--raw");
    }
    cmd.arg(format!("docker://{reference}")).output().expect("skopeo (Debian package skopeo)")
}

#[test]
fn every_fixture_reads_back_through_skopeo_with_its_digest() {
    let registry = Registry::start("fixtures");
    for fixture in fixtures::catalog() {
        registry.push(&fixture);
        let reference = registry.reference(&fixture);
        let raw = skopeo_inspect(&reference, true);
        assert!(raw.status.success(), "{reference}: {}", String::from_utf8_lossy(&raw.stderr));
        assert_eq!(fixtures::digest(&raw.stdout), fixture.top.digest, "{reference}: manifest bytes changed");
        if fixture.manifests.is_empty() {
            let out = skopeo_inspect(&reference, false);
            assert!(out.status.success(), "{reference}: {}", String::from_utf8_lossy(&out.stderr));
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
            assert_eq!(v["Digest"], fixture.top.digest.as_str(), "{reference}");
            assert_eq!(v["Architecture"], "amd64", "{reference}");
        }
    }
}

#[test]
fn hostile_fixtures_are_served_as_built() {
    let registry = Registry::start("hostile");
    for fixture in fixtures::hostile() {
        registry.push(&fixture);
    }
    // The tampered blob is served with bytes that do not match its digest.
    let bad = fixtures::hostile().into_iter().find(|f| f.tag == "bad-digest").expect("bad-digest");
    let (digest, data) = &bad.corrupt[0];
    let url = format!("http://{}/v2/hostile/blobs/{digest}", registry.addr);
    let body = ureq::get(&url).call().expect("get").into_body().read_to_vec().expect("body");
    assert_eq!(&body, data);
    assert_ne!(&fixtures::digest(&body), digest);
    assert!(fixtures::huge_manifest().data.len() > 8 << 20);
}
