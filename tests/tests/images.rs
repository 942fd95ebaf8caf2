//! Pull, against a real registry (Debian's docker-registry) holding the project's own
//! fixtures, into the native engine: digests, platform selection, every compression,
//! cached layers, and hostile or missing images refused with their own errors.

use berth_host::agent::{AgentClient, CallError};
use berth_proto::v1::{pull_event::Event, Image, InspectImageRequest, ListImagesRequest, PullRequest};
use berth_proto::ErrorKind;
use berth_tests::fixtures::{self, registry::Registry, Fixture};
use berth_tests::native::NativeEngine;
use futures::StreamExt;
use sha2::Digest as _;

struct Pulled {
    image: Image,
    cached: Vec<bool>,
}

async fn pull(client: &AgentClient, reference: &str, platform: &str) -> Result<Pulled, CallError> {
    let request = PullRequest { reference: reference.into(), platform: platform.into(), auth: None, require_signature: false };
    let mut stream = client.images().pull(request).await.map_err(|s| CallError::from_status("pull", s))?.into_inner();
    let mut cached = Vec::new();
    while let Some(event) = stream.next().await {
        match event.map_err(|s| CallError::from_status("pull", s))?.event {
            Some(Event::LayerDone(l)) => cached.push(l.cached),
            Some(Event::Done(image)) => return Ok(Pulled { image, cached }),
            _ => {}
        }
    }
    panic!("pull of {reference} ended without a result");
}

/// The manifest of a fixture for one architecture.
fn manifest_of(fixture: &Fixture, arch: &str) -> serde_json::Value {
    let top: serde_json::Value = serde_json::from_slice(&fixture.top.data).expect("json");
    if fixture.manifests.is_empty() {
        return top;
    }
    let digest = top["manifests"].as_array().expect("index").iter().find(|m| m["platform"]["architecture"] == arch).expect("arch")["digest"].clone();
    let child = fixture.manifests.iter().find(|m| digest.as_str() == Some(m.digest.as_str())).expect("child");
    serde_json::from_slice(&child.data).expect("json")
}

/// Every blob in the engine's content store hashes to its own name.
fn store_is_consistent(engine: &NativeEngine) -> usize {
    let dir = engine.home.join("engine/content/blobs/sha256");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("blobs") {
        let entry = entry.expect("entry");
        let data = std::fs::read(entry.path()).expect("read");
        let hex: String = sha2::Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, entry.file_name().to_string_lossy(), "blob content does not match its name");
        n += 1;
    }
    let ingest = engine.home.join("engine/content/ingest");
    assert!(std::fs::read_dir(&ingest).expect("ingest").next().is_none(), "ingest/ must be empty after a pull");
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_every_fixture_with_the_digests_the_builder_made() {
    let registry = Registry::start("pull");
    let engine = NativeEngine::start("img-pull");
    let client = engine.client().await;
    for fixture in fixtures::catalog() {
        registry.push(&fixture);
        let reference = registry.reference(&fixture);
        let pulled = pull(&client, &reference, "").await.unwrap_or_else(|e| panic!("{reference}: {e}"));
        let manifest = manifest_of(&fixture, "amd64");
        assert_eq!(pulled.image.id, manifest["config"]["digest"], "{reference}: image id is the config digest");
        let config_digest = manifest["config"]["digest"].as_str().expect("config digest");
        let config = fixture.blobs.iter().find(|b| b.digest == config_digest).expect("config blob");
        let config: serde_json::Value = serde_json::from_slice(&config.data).expect("json");
        assert_eq!(serde_json::json!(pulled.image.layers), config["rootfs"]["diff_ids"], "{reference}");
        // Every compressed layer the manifest names is in the store.
        for layer in manifest["layers"].as_array().expect("layers") {
            let hex = layer["digest"].as_str().expect("digest").trim_start_matches("sha256:");
            assert!(engine.home.join("engine/content/blobs/sha256").join(hex).is_file(), "{reference}: {hex} not stored");
        }
        assert_eq!(pulled.image.architecture, "amd64");
        // Images with the same config are one image with several names, as in Docker.
        let repo_digest = format!("{}/{}@{}", registry.addr, fixture.repo, fixture.top.digest);
        assert!(pulled.image.repo_digests.contains(&repo_digest), "{reference}: {:?}", pulled.image.repo_digests);
        assert!(pulled.image.tags.contains(&reference), "{reference}: {:?}", pulled.image.tags);
        if fixture.tag != "gzip" && fixture.tag != "zstd" && fixture.tag != "plain" {
            let size: u64 = manifest["layers"].as_array().expect("layers").iter().map(|l| l["size"].as_u64().unwrap_or(0)).sum();
            assert_eq!(pulled.image.size, size);
        }
    }
    // The busybox layer is shared: pulled once, then found in the store.
    let again = pull(&client, &format!("{}/busybox:oci", registry.addr), "").await.expect("re-pull");
    assert_eq!(again.cached, [true]);
    assert!(store_is_consistent(&engine) > 10);

    let listed = client.images().list(ListImagesRequest {}).await.expect("list").into_inner().images;
    let mut tags: Vec<&String> = listed.iter().flat_map(|i| &i.tags).collect();
    tags.sort();
    tags.dedup();
    assert_eq!(tags.len(), fixtures::catalog().len(), "{tags:?}");
    let inspected =
        client.images().inspect(InspectImageRequest { reference: format!("{}/busybox:latest", registry.addr) }).await.expect("inspect").into_inner();
    assert!(inspected.tags.contains(&format!("{}/busybox:latest", registry.addr)), "{:?}", inspected.tags);
    let by_id = client.images().inspect(InspectImageRequest { reference: inspected.id[7..19].to_owned() }).await.expect("by id");
    assert_eq!(by_id.into_inner().id, inspected.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_is_chosen_from_the_index() {
    let registry = Registry::start("platform");
    let engine = NativeEngine::start("img-platform");
    let client = engine.client().await;
    let index = fixtures::catalog().into_iter().find(|f| f.tag == "index").expect("index fixture");
    registry.push(&index);
    let reference = registry.reference(&index);
    let arm = pull(&client, &reference, "linux/arm64/v8").await.expect("arm64");
    assert_eq!(arm.image.architecture, "arm64");
    assert_eq!(arm.image.id, manifest_of(&index, "arm64")["config"]["digest"]);
    let amd = pull(&client, &reference, "linux/amd64").await.expect("amd64");
    assert_eq!(amd.image.architecture, "amd64");
    assert_ne!(amd.image.id, arm.image.id);
    let err = pull(&client, &reference, "linux/riscv64").await.err().expect("no riscv64");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message.contains("has no image for linux/riscv64 (it offers: linux/amd64, linux/arm64/v8)"), "{}", err.message);
    let err = pull(&client, &reference, "nonsense").await.err().expect("bad platform");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_its_own_error_and_the_store_is_unchanged() {
    let registry = Registry::start("bad");
    let engine = NativeEngine::start("img-bad");
    let client = engine.client().await;
    let hostile = fixtures::hostile();
    for f in &hostile {
        registry.push(f);
    }
    let bad = hostile.iter().find(|f| f.tag == "bad-digest").expect("bad-digest");
    let err = pull(&client, &registry.reference(bad), "").await.err().expect("must fail");
    assert!(err.message.contains("does not match its digest"), "{}", err.message);
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let (bad_digest, _) = &bad.corrupt[0];
    let bad_path = engine.home.join("engine/content/blobs/sha256").join(bad_digest.trim_start_matches("sha256:"));
    assert!(!bad_path.exists(), "the tampered blob must not be stored");
    store_is_consistent(&engine);
    let listed = client.images().list(ListImagesRequest {}).await.expect("list").into_inner().images;
    assert!(listed.is_empty(), "no image may be recorded: {listed:?}");

    let err = pull(&client, &format!("{}/busybox:no-such-tag", registry.addr), "").await.err().expect("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message.contains("manifest no-such-tag not found"), "{}", err.message);
    let err = pull(&client, "Not A Reference", "").await.err().expect("invalid");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    // Nothing listens there: unreachable, not a hang.
    let err = pull(&client, "127.0.0.1:9/busybox:latest", "").await.err().expect("unreachable");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.message.contains("cannot reach registry 127.0.0.1:9"), "{}", err.message);
    let err = client.images().inspect(InspectImageRequest { reference: "nope:latest".into() }).await.expect_err("no image");
    assert_eq!(err.code(), tonic::Code::NotFound);
}

#[test]
fn cli_pull_and_images() {
    let registry = Registry::start("cli");
    let engine = NativeEngine::start("img-cli");
    let fixture = fixtures::catalog().into_iter().find(|f| f.tag == "oci").expect("oci");
    registry.push(&fixture);
    let reference = registry.reference(&fixture);
    let out = engine.berth(&["pull", &reference]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Pull complete"), "{text}");
    assert!(text.contains(&format!("Digest: {}", fixture.top.digest)), "{text}");
    let out = engine.berth(&["images"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("{}/busybox", registry.addr)) && text.contains("oci"), "{text}");
    let out = engine.berth(&["inspect", &reference]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json[0]["RepoTags"][0], reference);
    assert_eq!(json[0]["Os"], "linux");
    assert_eq!(json[0]["Config"]["Cmd"], serde_json::json!(["sh"]));
    let out = engine.berth(&["pull", &format!("{}/busybox:missing", registry.addr)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}

fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_owned(),
        Some(p) => fixtures::digest(format!("{p} {diff_id}").as_bytes()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_are_unpacked_into_snapshots() {
    use std::os::unix::fs::PermissionsExt;
    let registry = Registry::start("unpack");
    let engine = NativeEngine::start("img-unpack");
    let client = engine.client().await;
    let snapshots = engine.home.join("engine/snapshots");
    for tag in ["gzip", "zstd", "plain"] {
        let fixture = fixtures::catalog().into_iter().find(|f| f.repo == "layers" && f.tag == tag).expect("fixture");
        registry.push(&fixture);
        let pulled = pull(&client, &registry.reference(&fixture), "").await.unwrap_or_else(|e| panic!("{tag}: {e}"));
        let base = chain_id(None, &pulled.image.layers[0]);
        let top = chain_id(Some(&base), &pulled.image.layers[1]);
        let root = snapshots.join(base.trim_start_matches("sha256:"));
        let busybox = std::fs::read(root.join("bin/busybox")).expect("bin/busybox unpacked");
        assert_eq!(busybox, std::fs::read("/bin/busybox").expect("host busybox"));
        let mode = std::fs::metadata(root.join("bin/busybox")).expect("stat").permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755);
        assert_eq!(std::fs::read_link(root.join("bin/sh")).expect("bin/sh").display().to_string(), "../bin/busybox");
        let hello = snapshots.join(top.trim_start_matches("sha256:")).join("hello/world.txt");
        assert_eq!(std::fs::read_to_string(&hello).expect("hello"), "hello from a layer\n", "{tag}");
        let tagged = hello.with_file_name("tagged.txt");
        let xattr = std::process::Command::new("getfattr").args(["--only-values", "-n", "user.berth.fixture"]).arg(&tagged).output();
        match xattr {
            Ok(out) if out.status.success() => assert_eq!(out.stdout, b"kept", "{tag}: xattr not applied"),
            // No getfattr: read it directly.
            _ => {
                let mut buf = [0u8; 16];
                let c = std::ffi::CString::new(tagged.as_os_str().as_encoded_bytes()).expect("path");
                // SAFETY: valid NUL-terminated strings and a buffer of the given length.
                let n = unsafe { libc::lgetxattr(c.as_ptr(), c"user.berth.fixture".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
                assert_eq!(n, 4, "{tag}: xattr not applied");
                assert_eq!(&buf[..4], b"kept");
            }
        }
    }
    // Three pulls, one shared base layer, one top: the same content, so one top snapshot.
    let dirs: Vec<_> = std::fs::read_dir(&snapshots).expect("snapshots").flatten().collect();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_layers_are_refused_and_write_nothing_outside() {
    let registry = Registry::start("hostile-unpack");
    let engine = NativeEngine::start("img-hostile");
    let client = engine.client().await;
    let hostile = fixtures::hostile();
    for f in &hostile {
        registry.push(f);
    }
    let _ = std::fs::remove_file("/tmp/berth-pwned");
    for (tag, reason) in [("dotdot", "climbs out with `..`"), ("symlink-out", "is written through a symlink")] {
        let f = hostile.iter().find(|f| f.tag == tag).expect("fixture");
        let err = pull(&client, &registry.reference(f), "").await.err().unwrap_or_else(|| panic!("{tag} must fail"));
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{tag}: {}", err.message);
        assert!(err.message.contains("hostile layer") && err.message.contains(reason), "{tag}: {}", err.message);
    }
    assert!(!std::path::Path::new("/tmp/berth-pwned").exists(), "a file was written through the symlink");
    for dir in [engine.home.join("escaped"), engine.home.join("engine/escaped"), engine.home.join("engine/snapshots/escaped")] {
        assert!(!dir.exists(), "{} written outside the snapshot", dir.display());
    }
    let left: Vec<_> = std::fs::read_dir(engine.home.join("engine/snapshots")).expect("snapshots").flatten().collect();
    assert!(left.is_empty(), "no snapshot (or half of one) may stay: {left:?}");
    let listed = client.images().list(ListImagesRequest {}).await.expect("list").into_inner().images;
    assert!(listed.is_empty());
    store_is_consistent(&engine);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_and_rmi_follow_docker_and_leave_nothing_behind() {
    let registry = Registry::start("rmi");
    let engine = NativeEngine::start("img-rmi");
    let client = engine.client().await;
    let fixture = fixtures::catalog().into_iter().find(|f| f.tag == "oci").expect("oci");
    registry.push(&fixture);
    let reference = registry.reference(&fixture);
    pull(&client, &reference, "").await.expect("pull");

    let out = engine.berth(&["tag", &reference, "local/mine:1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = engine.berth(&["rmi", "local/mine:1"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Untagged: local/mine:1");
    let listed = client.images().list(ListImagesRequest {}).await.expect("list").into_inner().images;
    assert_eq!(listed.len(), 1, "the image stays while it has a name");

    // Forcing by name still takes only that name (docker's rule; it once took all).
    engine.berth(&["tag", &reference, "local/mine:2"]);
    engine.berth(&["tag", &reference, "local/mine:3"]);
    let out = engine.berth(&["rmi", "-f", "local/mine:3"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Untagged: local/mine:3");
    let listed = client.images().list(ListImagesRequest {}).await.expect("list").into_inner().images;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].tags.len(), 2, "{:?}", listed[0].tags);

    // By id while two names point at it: a conflict, unless forced.
    let id = listed[0].id.clone();
    let out = engine.berth(&["rmi", &id[7..19]]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("image is referenced in multiple repositories"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = engine.berth(&["rmi", "-f", &id[7..19]]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("Deleted: {id}")), "{text}");
    assert!(text.contains("Untagged: local/mine:2"), "{text}");

    let listed = client.images().list(ListImagesRequest {}).await.expect("list").into_inner().images;
    assert!(listed.is_empty());
    assert_eq!(store_is_consistent(&engine), 0, "no blob may stay once no image needs it");
    let snapshots: Vec<_> = std::fs::read_dir(engine.home.join("engine/snapshots")).expect("dir").flatten().collect();
    assert!(snapshots.is_empty(), "{snapshots:?}");
    let out = engine.berth(&["rmi", "nope:latest"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such image"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_pull_leaves_a_consistent_store_and_the_next_pull_completes() {
    let registry = Registry::start("crash");
    let mut engine = NativeEngine::start("img-crash");
    let big = fixtures::big();
    registry.push(&big);
    let reference = registry.reference(&big);

    // Pull through the CLI and kill the engine once the big layer is partly in.
    let mut puller = std::process::Command::new(berth_tests::bin("berth"))
        .args(["pull", &reference])
        .env("BERTH_HOME", &engine.home)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("berth pull");
    let ingest = engine.home.join("engine/content/ingest");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let partial = std::fs::read_dir(&ingest).map(|d| d.flatten().any(|e| e.metadata().map(|m| m.len() > 1 << 20).unwrap_or(false))).unwrap_or(false);
        if partial {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the pull never got going");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    engine.kill_and_restart();
    let _ = puller.wait();

    let out = engine.berth(&["system", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "check after the crash: {text}");
    assert!(text.contains("the store is consistent"), "{text}");
    let client = engine.client().await;
    let listed = client.images().list(ListImagesRequest {}).await.expect("list").into_inner().images;
    assert!(listed.is_empty(), "a half-pulled image must not be recorded");

    let pulled = pull(&client, &reference, "").await.expect("the pull after the crash completes");
    assert_eq!(pulled.image.layers.len(), 2);
    let out = engine.berth(&["system", "check"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    store_is_consistent(&engine);
    let random = engine
        .home
        .join("engine/snapshots")
        .join(chain_id(Some(&chain_id(None, &pulled.image.layers[0])), &pulled.image.layers[1]).trim_start_matches("sha256:"))
        .join("data/random.bin");
    assert_eq!(std::fs::metadata(&random).expect("random.bin").len(), 100 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_finds_a_corrupt_blob_and_repair_removes_it() {
    let registry = Registry::start("check");
    let engine = NativeEngine::start("img-check");
    let client = engine.client().await;
    let fixture = fixtures::catalog().into_iter().find(|f| f.tag == "oci").expect("oci");
    registry.push(&fixture);
    let pulled = pull(&client, &registry.reference(&fixture), "").await.expect("pull");
    let config = engine.home.join("engine/content/blobs/sha256").join(pulled.image.id.trim_start_matches("sha256:"));
    std::fs::write(&config, b"{\"tampered\": true}").expect("tamper");
    let out = engine.berth(&["system", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("does not match its digest"), "{text}");
    let out = engine.berth(&["system", "check", "--repair"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("repaired: deleted corrupt blob"), "{text}");
    assert!(!config.exists());
}

#[test]
fn login_pull_logout_against_a_registry_with_htpasswd() {
    let registry = Registry::start_with_login("auth", "alice", "s3cret-pw");
    let engine = NativeEngine::start("img-auth");
    let fixture = fixtures::catalog().into_iter().find(|f| f.tag == "oci").expect("oci");
    registry.push(&fixture);
    let reference = registry.reference(&fixture);
    let docker_config = engine.home.join("docker-config");
    let berth = |args: &[&str], stdin: &str| engine.berth_with(args, &[("DOCKER_CONFIG", docker_config.as_os_str())], stdin);

    let (ok, _, err) = berth(&["pull", &reference], "");
    assert!(!ok);
    assert!(err.contains("authentication required"), "{err}");
    let (ok, _, err) = berth(&["login", &registry.addr, "-u", "alice", "--password-stdin"], "wrong\n");
    assert!(!ok);
    assert!(err.contains("credentials refused"), "{err}");
    assert!(!docker_config.join("config.json").exists(), "a refused login stores nothing");

    let (ok, out, err) = berth(&["login", &registry.addr, "-u", "alice", "--password-stdin"], "s3cret-pw\n");
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "Login Succeeded");
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(docker_config.join("config.json")).expect("config.json")).expect("json");
    assert!(config["auths"][&registry.addr]["auth"].is_string(), "{config}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(docker_config.join("config.json")).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let (ok, out, err) = berth(&["pull", &reference], "");
    assert!(ok, "{err}");
    assert!(out.contains(&fixture.top.digest), "{out}");
    // Compose pulls with the same login (it used to send none: "authentication required").
    let _ = berth(&["rmi", &reference], "");
    let project = engine.home.join("authproj");
    std::fs::create_dir_all(&project).expect("mkdir");
    std::fs::write(project.join("compose.yaml"), format!("services:\n  app:\n    image: {reference}\n")).expect("compose file");
    let file = project.join("compose.yaml").display().to_string();
    let (ok, _, err) = berth(&["compose", "-f", &file, "pull"], "");
    assert!(ok, "compose pull with a login: {err}");
    let (ok, _, err) = berth(&["image", "inspect", &reference], "");
    assert!(ok, "compose pull left no image: {err}");
    // Search: the registry has no search API, so its catalog, with the login.
    let repository = reference.split_once('/').map(|(_, r)| r.split(':').next().unwrap_or(r)).expect("a repository");
    let (ok, out, err) = berth(&["search", &format!("{}/{}", registry.addr, &repository[..repository.len().min(4)])], "");
    assert!(ok, "{err}");
    assert!(out.lines().any(|l| l.starts_with(&format!("{}/{repository} ", registry.addr))), "{out}");
    let (ok, out, _) = berth(&["search", "--filter", "is-official=true", &format!("{}/{repository}", registry.addr)], "");
    assert!(ok && out.lines().count() == 1, "only the header: {out}");
    let (ok, _, err) = berth(&["search", "--filter", "color=red", &format!("{}/x", registry.addr)], "");
    assert!(!ok && err.contains("invalid filter 'color'"), "{err}");

    let (ok, out, _) = berth(&["logout", &registry.addr], "");
    assert!(ok);
    assert!(out.contains("Removing login credentials"), "{out}");
    let (ok, _, err) = berth(&["search", &format!("{}/{repository}", registry.addr)], "");
    assert!(!ok && err.contains("authentication required"), "search without the login: {err}");
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(docker_config.join("config.json")).expect("config.json")).expect("json");
    assert!(config["auths"].get(&registry.addr).is_none(), "{config}");

    // The password never reaches the engine's logs.
    for log in ["engine.log", "engine.err"] {
        let text = std::fs::read_to_string(engine.home.join(log)).unwrap_or_default();
        assert!(!text.contains("s3cret-pw"), "{log} holds the password");
    }
}

fn skopeo_digest(reference: &str) -> String {
    let out = std::process::Command::new("skopeo").args(["inspect", "--tls-verify=false", "--raw", &format!("docker://{reference}")]).output().expect("skopeo");
    assert!(out.status.success(), "skopeo inspect {reference}: {}", String::from_utf8_lossy(&out.stderr));
    fixtures::digest(&out.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_mounts_uploads_and_chunks_and_skopeo_reads_it_back() {
    let source = Registry::start("push-src");
    let other = Registry::start("push-dst");
    let engine = NativeEngine::start("img-push");
    let client = engine.client().await;
    let fixture = fixtures::catalog().into_iter().find(|f| f.tag == "oci").expect("oci");
    source.push(&fixture);
    let pulled = pull(&client, &source.reference(&fixture), "").await.expect("pull");

    // Same registry, another repository: the blobs are mounted, not sent again.
    let same = format!("{}/pushed/busybox:v1", source.addr);
    assert!(engine.berth(&["tag", &source.reference(&fixture), &same]).status.success());
    let out = engine.berth(&["push", &same]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Mounted from another repository"), "{text}");
    assert!(text.contains(&format!("v1: digest: {}", fixture.top.digest)), "{text}");
    assert_eq!(skopeo_digest(&same), fixture.top.digest);

    // Another registry: uploaded; a second push finds everything there.
    let elsewhere = format!("{}/copy/busybox:v2", other.addr);
    engine.berth(&["tag", &same, &elsewhere]);
    let out = engine.berth(&["push", &elsewhere]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text.matches(": Pushed").count(), 2, "{text}");
    assert_eq!(skopeo_digest(&elsewhere), fixture.top.digest);
    let out = engine.berth(&["push", &elsewhere]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).matches("Layer already exists").count(), 2);

    // The pushed names are recorded as repo digests of the image.
    let image = client.images().inspect(InspectImageRequest { reference: elsewhere.clone() }).await.expect("inspect").into_inner();
    assert!(image.repo_digests.contains(&format!("{}/copy/busybox@{}", other.addr, fixture.top.digest)), "{:?}", image.repo_digests);
    assert_eq!(image.id, pulled.image.id);

    // A 100 MiB layer goes up in chunks.
    let big = fixtures::big();
    source.push(&big);
    pull(&client, &source.reference(&big), "").await.expect("pull big");
    let big_dst = format!("{}/big:copy", other.addr);
    engine.berth(&["tag", &source.reference(&big), &big_dst]);
    let out = engine.berth(&["push", &big_dst]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(skopeo_digest(&big_dst), big.top.digest);

    let out = engine.berth(&["push", &format!("{}/nothing:here", other.addr)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such image"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_then_load_round_trips_and_skopeo_reads_the_archive() {
    let registry = Registry::start("save");
    let engine = NativeEngine::start("img-save");
    let client = engine.client().await;
    let oci = fixtures::catalog().into_iter().find(|f| f.tag == "oci").expect("oci");
    let zstd = fixtures::catalog().into_iter().find(|f| f.tag == "zstd").expect("zstd");
    registry.push(&oci);
    registry.push(&zstd);
    let a = pull(&client, &registry.reference(&oci), "").await.expect("pull").image;
    let b = pull(&client, &registry.reference(&zstd), "").await.expect("pull").image;
    let tar = engine.home.join("images.tar");
    let out = engine.berth(&["save", "-o", &tar.display().to_string(), &registry.reference(&oci), &registry.reference(&zstd)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // An independent reader agrees: the archive is an OCI layout and a docker archive.
    // In an OCI layout the reference name is the tag (org.opencontainers.image.ref.name).
    let oci_ref = format!("oci-archive:{}:oci", tar.display());
    let inspected = std::process::Command::new("skopeo").args(["inspect", "--raw", &oci_ref]).output().expect("skopeo");
    assert!(inspected.status.success(), "{}", String::from_utf8_lossy(&inspected.stderr));
    assert_eq!(fixtures::digest(&inspected.stdout), oci.top.digest);
    let docker_ref = format!("docker-archive:{}:{}", tar.display(), registry.reference(&oci));
    let inspected = std::process::Command::new("skopeo").args(["inspect", &docker_ref]).output().expect("skopeo");
    assert!(inspected.status.success(), "{}", String::from_utf8_lossy(&inspected.stderr));

    // Remove both, load them back: same ids, same names, a consistent store.
    for image in [&a, &b] {
        assert!(engine.berth(&["rmi", "-f", &image.id]).status.success());
    }
    assert_eq!(store_is_consistent(&engine), 0);
    let out = engine.berth(&["load", "-i", &tar.display().to_string()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("Loaded image: {}", registry.reference(&oci))), "{text}");
    for (image, fixture) in [(&a, &oci), (&b, &zstd)] {
        let back = client.images().inspect(InspectImageRequest { reference: registry.reference(fixture) }).await.expect("inspect").into_inner();
        assert_eq!(back.id, image.id);
        assert_eq!(back.layers, image.layers);
    }
    let check = engine.berth(&["system", "check"]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));

    // A docker archive written by skopeo (uncompressed layers) loads too.
    let from_skopeo = engine.home.join("skopeo.tar");
    let copied = std::process::Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{}", registry.reference(&oci)),
            &format!("docker-archive:{}:other/busybox:copied", from_skopeo.display()),
        ])
        .output()
        .expect("skopeo copy");
    assert!(copied.status.success(), "{}", String::from_utf8_lossy(&copied.stderr));
    let out = engine.berth(&["load", "-i", &from_skopeo.display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let copied = client.images().inspect(InspectImageRequest { reference: "other/busybox:copied".into() }).await.expect("inspect").into_inner();
    assert_eq!(copied.id, a.id, "the same config is the same image");

    // Not an archive: a clear error, and nothing left in the engine's scratch space.
    let junk = engine.home.join("junk.tar");
    std::fs::write(&junk, b"this is not a tar").expect("junk");
    let out = engine.berth(&["load", "-i", &junk.display().to_string()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an image archive"), "{}", String::from_utf8_lossy(&out.stderr));
    let tmp: Vec<_> = std::fs::read_dir(engine.home.join("engine/tmp")).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(tmp.is_empty(), "{tmp:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_import_and_prune() {
    let registry = Registry::start("prune");
    let engine = NativeEngine::start("img-prune");
    let client = engine.client().await;
    let layered = fixtures::catalog().into_iter().find(|f| f.tag == "gzip").expect("layers:gzip");
    registry.push(&layered);
    pull(&client, &registry.reference(&layered), "").await.expect("pull");
    let out = engine.berth(&["history", "--format", "json", &registry.reference(&layered)]);
    let steps: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(steps.as_array().map(Vec::len), Some(2), "{steps}");
    assert_eq!(steps[0]["CreatedBy"], "berth fixtures");

    // A rootfs tarball becomes a one-layer image whose tree is the tarball's.
    let rootfs = engine.home.join("rootfs.tar.gz");
    let layer = fixtures::layer::gzip(&fixtures::layer::tar(&[
        fixtures::Entry::Dir { path: "etc/".into(), mode: 0o755 },
        fixtures::Entry::File { path: "etc/imported".into(), mode: 0o644, data: b"yes\n".to_vec() },
    ]));
    std::fs::write(&rootfs, &layer).expect("write");
    let out = engine.berth(&["import", &rootfs.display().to_string(), "local/imported:1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let imported = client.images().inspect(InspectImageRequest { reference: "local/imported:1".into() }).await.expect("inspect").into_inner();
    let snapshot = engine.home.join("engine/snapshots").join(imported.layers[0].trim_start_matches("sha256:"));
    assert_eq!(std::fs::read_to_string(snapshot.join("etc/imported")).expect("file"), "yes\n");

    // Prune: unnamed images only; then -a: all.
    engine.berth(&["rmi", "local/imported:1"]);
    engine.berth(&["tag", &registry.reference(&layered), "local/kept:1"]);
    engine.berth(&["rmi", &registry.reference(&layered)]);
    let out = engine.berth(&["image", "prune"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = client.images().list(ListImagesRequest {}).await.expect("list").into_inner().images;
    assert_eq!(listed.len(), 1, "the named image stays: {listed:?}");
    let out = engine.berth(&["system", "prune", "-a", "-f"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("deleted: sha256:"), "{text}");
    assert!(!text.contains("Total reclaimed space: 0 bytes"), "{text}");
    assert!(client.images().list(ListImagesRequest {}).await.expect("list").into_inner().images.is_empty());
    assert_eq!(store_is_consistent(&engine), 0);
    let out = engine.berth(&["import", "/nonexistent.tar"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open /nonexistent.tar"));
}

#[test]
fn login_goes_through_a_credential_helper_when_one_is_configured() {
    let registry = Registry::start_with_login("helper", "bob", "helper-pw");
    let engine = NativeEngine::start("img-helper");
    let fixture = fixtures::catalog().into_iter().find(|f| f.tag == "oci").expect("oci");
    registry.push(&fixture);
    let docker_config = engine.home.join("docker-config");
    let bin_dir = engine.home.join("bin");
    std::fs::create_dir_all(&docker_config).expect("dir");
    std::fs::create_dir_all(&bin_dir).expect("dir");
    std::fs::write(docker_config.join("config.json"), r#"{"credsStore": "berthtest"}"#).expect("config");
    // A credential helper speaking docker's protocol, keeping one login in a file.
    let store = engine.home.join("helper-store.json");
    let helper = bin_dir.join("docker-credential-berthtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nstore={}\ncase \"$1\" in\n  store) cat > \"$store\" ;;\n  get) [ -f \"$store\" ] && cat \"$store\" || {{ echo 'credentials not found in native keychain'; exit 1; }} ;;\n  erase) rm -f \"$store\" ;;\nesac\n",
            store.display()
        ),
    )
    .expect("helper");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let berth = |args: &[&str], stdin: &str| {
        let (ok, _, err) = engine.berth_with(args, &[("DOCKER_CONFIG", docker_config.as_os_str()), ("PATH", std::ffi::OsStr::new(&path))], stdin);
        (ok, err)
    };
    let (ok, err) = berth(&["login", &registry.addr, "-u", "bob", "--password-stdin"], "helper-pw\n");
    assert!(ok, "{err}");
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&store).expect("helper store")).expect("json");
    assert_eq!(stored["Username"], "bob");
    assert_eq!(stored["Secret"], "helper-pw");
    let config = std::fs::read_to_string(docker_config.join("config.json")).expect("config");
    assert!(!config.contains("helper-pw"), "the password must live in the helper only: {config}");
    let (ok, err) = berth(&["pull", &registry.reference(&fixture)], "");
    assert!(ok, "pull with the helper's login: {err}");
    let (ok, _) = berth(&["logout", &registry.addr], "");
    assert!(ok);
    assert!(!store.exists(), "logout erases the helper's login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_by_digest_and_a_manifest_over_the_size_cap() {
    let registry = Registry::start("digest");
    let engine = NativeEngine::start("img-digest");
    let client = engine.client().await;
    let fixture = fixtures::catalog().into_iter().find(|f| f.tag == "oci").expect("oci");
    registry.push(&fixture);
    let by_digest = format!("{}/busybox@{}", registry.addr, fixture.top.digest);
    let pulled = pull(&client, &by_digest, "").await.expect("pull by digest");
    assert!(pulled.image.tags.is_empty(), "a digest pull names no tag: {:?}", pulled.image.tags);
    assert!(pulled.image.repo_digests.contains(&by_digest));
    let wrong = format!("{}/busybox@{}", registry.addr, fixtures::digest(b"not this"));
    let err = pull(&client, &wrong, "").await.err().expect("unknown digest");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message);

    // Distribution will not store an 8 MiB manifest, so this test serves one itself:
    // the client's cap is what is under test.
    let huge = fixtures::huge_manifest();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming().take(1) {
            let mut stream = stream.expect("conn");
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let head = format!("HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", huge.media_type, huge.data.len());
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&huge.data);
        }
    });
    let err = pull(&client, &format!("{addr}/hostile:huge-manifest"), "").await.err().expect("too large");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message.contains("is over the 4194304 byte limit"), "{}", err.message);
    let _ = server.join();
    store_is_consistent(&engine);
}

#[test]
fn bearer_token_flow_against_a_registry_with_token_auth() {
    let registry = Registry::start_with_token_auth("token", "carol", "token-pw");
    let engine = NativeEngine::start("img-token");
    let fixture = fixtures::catalog().into_iter().find(|f| f.tag == "oci").expect("oci");
    registry.push(&fixture);
    let reference = registry.reference(&fixture);
    let docker_config = engine.home.join("docker-config");
    let berth = |args: &[&str], stdin: &str| engine.berth_with(args, &[("DOCKER_CONFIG", docker_config.as_os_str())], stdin);

    // Anonymous: the token server refuses, and the error says to log in.
    let (ok, _, err) = berth(&["pull", &reference], "");
    assert!(!ok);
    assert!(err.contains("authentication required"), "{err}");
    let (ok, _, err) = berth(&["login", &registry.addr, "-u", "carol", "--password-stdin"], "nope\n");
    assert!(!ok);
    assert!(err.contains("credentials refused"), "{err}");
    let (ok, out, err) = berth(&["login", &registry.addr, "-u", "carol", "--password-stdin"], "token-pw\n");
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "Login Succeeded");
    let (ok, out, err) = berth(&["pull", &reference], "");
    assert!(ok, "pull with a bearer token: {err}");
    assert!(out.contains(&fixture.top.digest), "{out}");
    // Push needs a pull,push token for another repository.
    let target = format!("{}/mine/busybox:v1", registry.addr);
    assert!(berth(&["tag", &reference, &target], "").0);
    let (ok, out, err) = berth(&["push", &target], "");
    assert!(ok, "push with a bearer token: {err}");
    assert!(out.contains(&fixture.top.digest), "{out}");
}
