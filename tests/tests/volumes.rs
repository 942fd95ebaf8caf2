//! Volumes and bind mounts on the real crun, run by a native engine inside a network
//! namespace the test made.

use std::time::Duration;

use berth_tests::fixtures;
use berth_tests::native::NativeEngine;
use serde_json::{json, Value};

const IMAGE: &str = "berth.test/busybox:vol";

fn engine(test: &str, config: Value) -> NativeEngine {
    let engine = NativeEngine::start_isolated(test);
    let archive = engine.home.join("image.tar");
    std::fs::write(&archive, fixtures::oci_archive(&fixtures::container_image(config), IMAGE)).expect("write archive");
    let out = engine.berth(&["load", "-i", &archive.display().to_string()]);
    assert!(out.status.success(), "load: {}", String::from_utf8_lossy(&out.stderr));
    engine
}

fn berth(engine: &NativeEngine, args: &[&str]) -> (i32, String, String) {
    let out = engine.berth(args);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn ok(engine: &NativeEngine, args: &[&str]) -> String {
    let (code, stdout, stderr) = berth(engine, args);
    assert_eq!(code, 0, "berth {args:?} failed: {stderr}");
    stdout
}

fn volumes(engine: &NativeEngine) -> Vec<String> {
    ok(engine, &["volume", "ls", "-q"]).lines().map(str::to_owned).collect()
}

fn inspect(engine: &NativeEngine, args: &[&str]) -> Value {
    let text = ok(engine, args);
    serde_json::from_str::<Value>(&text).expect("json")[0].clone()
}

#[test]
fn named_volumes_keep_data_across_containers_and_engine_restarts() {
    let mut engine = engine("vol-named", json!({}));
    ok(&engine, &["volume", "create", "--label", "app=db", "data"]);
    let volume = inspect(&engine, &["volume", "inspect", "data"]);
    assert_eq!(volume["Driver"], "local");
    assert_eq!(volume["Labels"], json!({"app": "db"}));
    let mountpoint = volume["Mountpoint"].as_str().expect("mountpoint").to_owned();
    assert!(mountpoint.ends_with("/volumes/data/_data"), "{mountpoint}");

    ok(&engine, &["run", "--rm", "-v", "data:/data", IMAGE, "sh", "-c", "echo kept > /data/file"]);
    assert_eq!(std::fs::read_to_string(Path::new(&mountpoint).join("file")).expect("on disk"), "kept\n");
    engine.kill_and_restart();
    assert_eq!(ok(&engine, &["run", "--rm", "--mount", "type=volume,src=data,dst=/d,readonly", IMAGE, "cat", "/d/file"]), "kept\n");
    let (code, _, _) = berth(&engine, &["run", "--rm", "-v", "data:/d:ro", IMAGE, "touch", "/d/x"]);
    assert_ne!(code, 0, "a read-only volume was written");

    // In use: rm and prune leave it; unused: prune --all removes it.
    ok(&engine, &["create", "--name", "user", "-v", "data:/data", IMAGE, "true"]);
    let (code, _, stderr) = berth(&engine, &["volume", "rm", "data"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("volume data is in use by container"), "{stderr}");
    assert_eq!(ok(&engine, &["volume", "ls", "--filter", "dangling=false", "-q"]), "data\n");
    ok(&engine, &["volume", "prune", "--all"]);
    assert_eq!(volumes(&engine), vec!["data".to_owned()]);
    let users = inspect(&engine, &["inspect", "user"]);
    assert_eq!(users["Mounts"][0]["Name"], "data");
    assert_eq!(users["Mounts"][0]["Destination"], "/data");
    assert_eq!(users["Mounts"][0]["Type"], "volume");
    ok(&engine, &["rm", "user"]);
    ok(&engine, &["volume", "create", "other"]);
    let pruned = ok(&engine, &["volume", "prune", "--all", "--filter", "label=app=db"]);
    assert!(pruned.contains("data") && !pruned.contains("other"), "{pruned}");
    assert_eq!(volumes(&engine), vec!["other".to_owned()]);
    assert!(!Path::new(&mountpoint).exists());
    let (code, _, stderr) = berth(&engine, &["volume", "create", "bad/name"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("invalid characters"), "{stderr}");
}

#[test]
fn image_volumes_are_anonymous_and_filled_from_the_image() {
    let engine = engine("vol-copyup", json!({"Volumes": {"/srv": {}}}));
    // The image's VOLUME /srv: an anonymous volume holding the image's files there.
    let id = ok(&engine, &["run", "-d", IMAGE, "sh", "-c", "cat /srv/data.txt; echo more >> /srv/data.txt; sleep 300"]).trim().to_owned();
    let details = inspect(&engine, &["inspect", &id]);
    let anonymous = details["Mounts"][0]["Name"].as_str().expect("an anonymous volume").to_owned();
    assert_eq!(anonymous.len(), 64);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ok(&engine, &["logs", &id]), "from the image\n");
    // A new named volume at the same path is filled too; with nocopy it is not.
    assert_eq!(ok(&engine, &["run", "--rm", "-v", "site:/srv", IMAGE, "cat", "/srv/data.txt"]), "from the image\n");
    assert_eq!(ok(&engine, &["run", "--rm", "-v", "bare:/srv:nocopy", IMAGE, "ls", "/srv"]), "");
    // rm -v takes the anonymous volume and leaves named ones.
    ok(&engine, &["rm", "-f", "-v", &id]);
    let left = volumes(&engine);
    assert!(!left.contains(&anonymous), "{left:?}");
    assert!(left.contains(&"site".to_owned()) && left.contains(&"bare".to_owned()), "{left:?}");
    // --rm takes its anonymous volumes too.
    ok(&engine, &["run", "--rm", IMAGE, "true"]);
    assert_eq!(volumes(&engine).len(), 2);
}

use std::path::Path;

#[test]
fn bind_and_tmpfs_mounts() {
    let engine = engine("vol-bind", json!({}));
    let host = engine.home.join("shared");
    ok(&engine, &["run", "--rm", "-v", &format!("{}:/work", host.display()), IMAGE, "sh", "-c", "echo from-container > /work/out"]);
    assert_eq!(std::fs::read_to_string(host.join("out")).expect("bind write"), "from-container\n");
    std::fs::write(host.join("in"), "from-host\n").expect("host write");
    assert_eq!(
        ok(&engine, &["run", "--rm", "--mount", &format!("type=bind,source={},target=/w,readonly", host.display()), IMAGE, "cat", "/w/in"]),
        "from-host\n"
    );
    let (code, _, _) = berth(&engine, &["run", "--rm", "-v", &format!("{}:/w:ro", host.display()), IMAGE, "touch", "/w/x"]);
    assert_ne!(code, 0);
    let (code, _, stderr) = berth(&engine, &["run", "--rm", "--mount", "type=bind,source=/nonexistent/berth,target=/w", IMAGE, "true"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("bind source path does not exist"), "{stderr}");
    let out = ok(&engine, &["run", "--rm", "--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m", IMAGE, "sh", "-c", "grep /scratch /proc/mounts"]);
    assert!(out.contains("tmpfs /scratch tmpfs") && out.contains("size=1024k"), "{out}");
    let (code, _, stderr) = berth(&engine, &["run", "--rm", "-v", "a:/x", "-v", "b:/x", IMAGE, "true"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("duplicate mount point"), "{stderr}");
    // Nothing was made by the refused runs.
    assert!(volumes(&engine).is_empty(), "{:?}", volumes(&engine));
}

#[test]
fn volumes_export_import_and_clone() {
    let engine = engine("vol-transfer", json!({}));
    ok(&engine, &["run", "--rm", "-v", "src:/d", IMAGE, "sh", "-c", "mkdir /d/sub; echo payload > /d/sub/f; ln -s sub/f /d/link; chown 1000:1000 /d/sub/f"]);
    let tar = engine.home.join("src.tar");
    ok(&engine, &["volume", "export", "-o", &tar.display().to_string(), "src"]);
    ok(&engine, &["volume", "import", "copy", &tar.display().to_string()]);
    ok(&engine, &["volume", "clone", "src", "twin"]);
    for name in ["copy", "twin"] {
        let out = ok(&engine, &["run", "--rm", "-v", &format!("{name}:/d"), IMAGE, "sh", "-c", "cat /d/link; stat -c %u /d/sub/f; readlink /d/link"]);
        assert_eq!(out, "payload\n1000\nsub/f\n", "volume {name}");
    }
    let (code, _, stderr) = berth(&engine, &["volume", "clone", "src", "twin"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("already exists"), "{stderr}");
    // A hostile archive is refused and the new volume is not left behind.
    let evil = fixtures::layer::tar(&[fixtures::Entry::File { path: "../../evil".into(), mode: 0o644, data: b"x".to_vec() }]);
    let evil_path = engine.home.join("evil.tar");
    std::fs::write(&evil_path, evil).expect("write");
    let (code, _, stderr) = berth(&engine, &["volume", "import", "hostile", &evil_path.display().to_string()]);
    assert_ne!(code, 0);
    assert!(stderr.contains("refusing archive entry"), "{stderr}");
    assert!(!volumes(&engine).contains(&"hostile".to_owned()));
    assert!(!engine.home.join("evil").exists() && !engine.home.join("engine/evil").exists());
}

/// A running container swaps a folder of its volume (and of its root) for a symlink to a
/// host folder, over and over, while the volume and the container are exported: the
/// walk (the chrooted helper's, as `cp`'s) never reads the host's files.
#[test]
fn exports_never_follow_a_swapped_symlink_to_the_host() {
    let engine = engine("vol-export-race", json!({}));
    let secret = engine.home.join("host-secret");
    std::fs::create_dir_all(&secret).expect("mkdir");
    std::fs::write(secret.join("marker.txt"), "HOST-SECRET-5d1c\n").expect("write");
    let swap = format!(
        "for dir in /d/real /r/real; do mkdir -p $dir; for i in $(seq 200); do echo $i > $dir/f$i; done; done; \
         while true; do for dir in /d/real /r/real; do mv $dir $dir.held; ln -s {0} $dir; rm $dir; mv $dir.held $dir; done; done",
        secret.display()
    );
    ok(&engine, &["run", "-d", "--name", "swapper", "-v", "racy:/d", IMAGE, "sh", "-c", &swap]);
    std::thread::sleep(Duration::from_millis(500));
    let mut walked = [0, 0];
    let mut last: (i32, Vec<String>) = (0, Vec::new());
    for round in 0..15 {
        for (what, args) in [("volume", vec!["volume", "export", "-o"]), ("container", vec!["export", "-o"])] {
            let tar = engine.home.join(format!("{what}-{round}.tar"));
            let mut args = args.clone();
            let path = tar.display().to_string();
            args.push(&path);
            args.push(if what == "volume" { "racy" } else { "swapper" });
            // A walk may fail on a folder gone mid-read; it must never leak.
            let (code, _, _) = berth(&engine, &args);
            let bytes = std::fs::read(&tar).unwrap_or_default();
            assert!(!bytes.windows(16).any(|w| w == b"HOST-SECRET-5d1c"), "{what} export {round} holds the host's file");
            let names: Vec<String> = tar::Archive::new(&bytes[..])
                .entries()
                .map(|entries| entries.flatten().map(|e| e.path().map(|p| p.display().to_string()).unwrap_or_default()).collect())
                .unwrap_or_default();
            if code == 0 && names.iter().any(|n| n.ends_with("/f200")) {
                walked[usize::from(what == "container")] += 1;
            }
            last = (code, names.into_iter().filter(|n| n.contains("real")).take(8).collect());
            let _ = std::fs::remove_file(&tar);
        }
    }
    // Walks went through while the files moved (the check above is not met by failing:
    // files that vanish mid-walk are left out, as docker leaves them out).
    assert!(walked[0] >= 1 && walked[1] >= 1, "whole exports, volume and container: {walked:?}; the last: {last:?}");
    ok(&engine, &["rm", "-f", "swapper"]);
    ok(&engine, &["volume", "rm", "racy"]);
}

#[test]
fn system_prune_and_df_cover_containers_images_and_volumes() {
    let engine = engine("vol-system", json!({"Volumes": {"/cache": {}}}));
    ok(&engine, &["run", "--name", "stopped", IMAGE, "sh", "-c", "echo 12345 > /cache/x"]);
    ok(&engine, &["volume", "create", "keep"]);
    let df = ok(&engine, &["system", "df"]);
    assert!(df.lines().any(|l| l.starts_with("Containers") && l.split_whitespace().nth(1) == Some("1")), "{df}");
    assert!(df.lines().any(|l| l.starts_with("Local Volumes") && l.split_whitespace().nth(2) == Some("2")), "{df}");
    let out = ok(&engine, &["system", "prune", "-a", "--volumes", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert!(ok(&engine, &["ps", "-aq"]).is_empty());
    // The anonymous volume was in use by the container: it goes once the container is gone.
    assert_eq!(volumes(&engine), vec!["keep".to_owned()]);
    assert!(ok(&engine, &["images", "-q"]).trim().is_empty(), "the unused image was not pruned");
}
