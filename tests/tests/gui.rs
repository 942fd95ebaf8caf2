//! Berth Desktop, the real app window: under Xvfb, driven through tauri-driver and
//! WebKitWebDriver.
//! - Through the VM session: it starts the VM from the window, shows "ready" with the
//!   engine version the guest reported, serves docker.sock and published ports; then
//!   stops it.
//! - Against a native engine (`BERTH_HOST`): every view's main flow, by mouse and by
//!   keyboard, with the engine's refusals shown; a screenshot of each view and one
//!   contact sheet of them all are saved as artifacts.
//!
//! Runs on purpose (`cargo xtask test gui` starts Xvfb and builds the app first).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_tests::webdriver::WebDriver;
use berth_tests::{artifact_dir, bin, processes_matching, root, temp_home};

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        // SIGTERM first: tauri-driver then stops the WebKitWebDriver it started.
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while self.0.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Pids of WebKit's helper processes and the app (to find the ones a test leaves).
fn webkit_pids() -> Vec<u32> {
    ["WebKitWebDriver", "WebKitNetworkProcess", "WebKitWebProcess", "berth-desktop"].iter().flat_map(|n| processes_matching(n)).map(|(pid, _)| pid).collect()
}

/// tauri-driver (which starts WebKitWebDriver, which starts the app) with `env` for the
/// app, and a session: one app window.
fn launch(app: &std::path::Path, env: &[(&str, std::ffi::OsString)], artifacts: &std::path::Path) -> (Driver, berth_tests::webdriver::Session) {
    let port = free_port();
    let native_port = free_port();
    let tauri_driver = berth_host::vm::find_program("tauri-driver").expect("tauri-driver (cargo xtask setup installs it)");
    // The app inherits this environment through tauri-driver and WebKitWebDriver.
    let mut command = Command::new(tauri_driver);
    command
        .args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
        // Neither WEBKIT_DISABLE_COMPOSITING_MODE nor WEBKIT_DISABLE_DMABUF_RENDERER: with
        // either, WebKitGTK 2.50 under Xvfb stops painting after the DOM changes and
        // WebDriver screenshots hang.
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .env("GDK_BACKEND", "x11")
        .env("NO_AT_BRIDGE", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(artifacts.join("tauri-driver.log")).expect("log"));
    for (key, value) in env {
        command.env(key, value);
    }
    let driver = Driver(command.spawn().expect("spawn tauri-driver"));
    let wd = WebDriver::new(port);
    wd.wait_ready(Duration::from_secs(30)).expect("tauri-driver ready");
    let session = wd.session(app).expect("start the app");
    (driver, session)
}

/// After the session: waits for WebKit's helpers and the app to exit, kills what is left
/// (and anything still running from `home`), and returns what had to be killed.
fn leftovers(before: &[u32], home: &std::path::Path) -> (Vec<u32>, Vec<(u32, String)>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut leaked: Vec<u32> = Vec::new();
    while std::time::Instant::now() < deadline {
        leaked = webkit_pids().into_iter().filter(|p| !before.contains(p)).collect();
        if leaked.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for pid in &leaked {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
    // With the slash: another test's home may start with this one's name.
    let left = processes_matching(&format!("{}/", home.display()));
    for (pid, _) in &left {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
    (leaked, left)
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
#[ignore = "needs a display and the app: cargo xtask test gui"]
fn start_the_vm_from_the_window_and_see_ready() {
    assert!(std::env::var_os("DISPLAY").is_some(), "no DISPLAY: run through `cargo xtask test gui`, which starts Xvfb");
    let app = bin("berth-desktop");
    let home = temp_home("gui");
    let artifacts = artifact_dir("gui");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root().join("build/vm-image/manifest.json")).expect("vm image manifest")).expect("json");
    let kernel = manifest["kernel_release"].as_str().expect("kernel").to_owned();

    let app_env: Vec<(&str, std::ffi::OsString)> = vec![
        ("BERTH_HOME", home.clone().into()),
        ("BERTH_ACCEL", "tcg".into()),
        ("BERTH_VM_MEMORY_MIB", "512".into()),
        ("BERTH_VM_IMAGE", root().join("build/vm-image").into()),
    ];
    let before = webkit_pids();
    let (driver, session) = launch(&app, &app_env, &artifacts);
    let shot = |name: &str| -> Result<(), String> {
        let png = session.screenshot_png()?;
        if !png.starts_with(b"\x89PNG") {
            return Err(format!("screenshot {name} is not a PNG"));
        }
        std::fs::write(artifacts.join(name), png).map_err(|e| e.to_string())
    };

    let result = (|| -> Result<(), String> {
        let url = session.url()?;
        if !url.starts_with("tauri://") {
            return Err(format!("the window shows {url}, not the bundled UI"));
        }
        session.wait_text("#vm-state", Duration::from_secs(20), |t| t == "stopped")?;
        if !session.enabled("#start")? || session.enabled("#stop")? {
            return Err("a stopped VM must offer Start and not Stop".into());
        }
        session.click("#start")?;
        session.wait_text("#vm-state", Duration::from_secs(20), |t| t == "booting" || t == "ready")?;
        session.wait_text("#vm-state", Duration::from_secs(120), |t| t == "ready" || t == "error")?;
        let state = session.text("#vm-state")?;
        if state != "ready" {
            return Err(format!("VM state {state}: {}", session.text("#vm-reason").unwrap_or_default()));
        }
        let version = session.text("#engine-version")?;
        let shown_kernel = session.text("#engine-kernel")?;
        if version != env!("CARGO_PKG_VERSION") {
            return Err(format!("engine version shown {version:?}"));
        }
        if shown_kernel != kernel {
            return Err(format!("kernel shown {shown_kernel:?}, the guest runs {kernel:?}"));
        }
        if session.text("#vm-accel")? != "tcg" {
            return Err("accelerator not shown".into());
        }
        shot("berth-desktop-ready.png")?;

        // The CLI sees the VM the window started.
        let out = Command::new(bin("berth")).args(["vm", "status", "--format", "json"]).env("BERTH_HOME", &home).output().map_err(|e| e.to_string())?;
        let cli: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        if cli["state"] != "ready" {
            return Err(format!("berth vm status says {cli}"));
        }
        // The window's session serves run/docker.sock and forwards published ports, as
        // `berth vm start` does.
        let docker = |args: &[&str]| -> Result<String, String> {
            let out = Command::new("docker")
                .args(args)
                .env("DOCKER_HOST", format!("unix://{}", home.join("run/docker.sock").display()))
                .env("DOCKER_CONFIG", home.join("docker-config"))
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!("docker {args:?}: {}", String::from_utf8_lossy(&out.stderr)));
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let archive = home.join("image.tar");
        std::fs::write(&archive, berth_tests::fixtures::oci_archive(&berth_tests::fixtures::container_image(serde_json::json!({})), "berth.test/busybox:gui"))
            .map_err(|e| e.to_string())?;
        docker(&["load", "-i", &archive.display().to_string()])?;
        let web_port = free_port();
        docker(&["run", "-d", "--name", "web", "-p", &format!("127.0.0.1:{web_port}:80"), "berth.test/busybox:gui", "httpd", "-f", "-p", "80", "-h", "/srv"])?;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let page = loop {
            use std::io::{Read, Write};
            let fetched = std::net::TcpStream::connect(("127.0.0.1", web_port)).and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                s.write_all(b"GET /data.txt HTTP/1.0\r\n\r\n")?;
                let mut answer = String::new();
                s.read_to_string(&mut answer)?;
                Ok(answer)
            });
            match fetched {
                Ok(answer) if !answer.is_empty() => break answer,
                _ if std::time::Instant::now() > deadline => return Err(format!("the published port {web_port} never answered on the host")),
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        if !page.ends_with("from the image\n") {
            return Err(format!("the published port answered {page:?}"));
        }
        // The window's Containers view shows what docker started in the VM, with its port
        // (through the session's berth.sock and the engine's events).
        session.wait_for("tr[data-name=\"web\"][data-state=\"running\"]", Duration::from_secs(30))?;
        let ports = session.text("tr[data-name=\"web\"] .ports")?;
        if ports != format!("127.0.0.1:{web_port}→80/tcp") {
            return Err(format!("web's ports in the window: {ports:?}"));
        }
        shot("berth-desktop-containers-in-vm.png")?;

        session.click("#stop")?;
        session.wait_text("#vm-state", Duration::from_secs(60), |t| t == "stopped")?;
        shot("berth-desktop-stopped.png")?;
        Ok(())
    })();
    if result.is_err() {
        let _ = shot("berth-desktop-failure.png");
        for (from, to) in [("vm/console.log", "console.log"), ("vm/qemu.log", "qemu.log")] {
            let _ = std::fs::copy(home.join(from), artifacts.join(to));
        }
    }
    let _ = session.close();
    drop(driver);
    let (leaked, leftovers) = leftovers(&before, &home);
    let _ = std::fs::remove_dir_all(&home);
    if let Err(err) = result {
        panic!("{err} (screenshots and logs in {})", artifacts.display());
    }
    assert!(leftovers.is_empty(), "processes left after the app closed: {leftovers:?}");
    assert!(leaked.is_empty(), "WebKit / app processes left after the session: {leaked:?}");
    assert!(artifacts.join("berth-desktop-ready.png").is_file());
}

/// The views in the order the contact sheet shows them.
/// What the Images view said last: its notice, or an error it shows (an alert).
const IMAGES_SAID: &str = "#images-notice, section[aria-labelledby=\"images-title\"] > p.error[role=\"alert\"]";
const VIEWS: [&str; 6] = ["Containers", "Images", "Volumes", "Networks", "Compose", "Settings"];

#[test]
#[ignore = "needs a display and the app: cargo xtask test gui"]
fn every_view_against_the_native_engine() {
    use berth_tests::native::NativeEngine;
    assert!(std::env::var_os("DISPLAY").is_some(), "no DISPLAY: run through `cargo xtask test gui`, which starts Xvfb");
    let app = bin("berth-desktop");
    let artifacts = artifact_dir("gui-native");
    // The engine in a network namespace of the test's own: published ports are fetched
    // there. Its image: the suite's busybox, serving /srv over HTTP by default.
    let mut engine = NativeEngine::start_isolated("gui-native");
    const IMAGE: &str = "berth.test/busybox:gui";
    let image = berth_tests::fixtures::container_image(serde_json::json!({"Cmd": ["httpd", "-f", "-v", "-p", "80", "-h", "/srv"]}));
    let archive = engine.home.join("image.tar");
    std::fs::write(&archive, berth_tests::fixtures::oci_archive(&image, IMAGE)).expect("archive");
    let berth_ok = |engine: &NativeEngine, args: &[&str]| -> Result<String, String> {
        let out = engine.berth(args);
        if !out.status.success() {
            return Err(format!("berth {args:?}: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    berth_ok(&engine, &["load", "-i", &archive.display().to_string()]).expect("load");
    // A real registry, served where the isolated engine can reach it: an image to pull
    // (8 MiB) and one to cancel (100 MiB), over the namespace's loopback held to 2 MB/s (the
    // burst above loopback's 64 KiB MTU, or its packets never pass).
    // while the pulls run, so that progress can be watched and a pull stopped midway.
    let registry = berth_tests::fixtures::registry::Registry::start("gui");
    let (medium, large) = (berth_tests::fixtures::with_random_layer("gui/medium", "1", 8), berth_tests::fixtures::big());
    registry.push(&medium);
    registry.push(&large);
    let holder = engine.netns_holder.as_ref().expect("an isolated engine").id();
    let _served = registry.serve_in_netns(holder);
    let (medium, large) = (registry.reference(&medium), registry.reference(&large));
    // The medium image is signed, and the trust policy asks for its key: once pulled,
    // the Images view shows it as signed.
    let key = engine.home.join("gui-key").display().to_string();
    let password = [("COSIGN_PASSWORD", std::ffi::OsStr::new(""))];
    for args in [
        vec!["trust", "key", "generate", key.as_str()],
        vec!["trust", "sign", "--key", &format!("{key}.key"), &medium],
        vec!["trust", "policy", "set", &format!("{}/gui/medium", registry.addr), "--key", &format!("{key}.pub")],
    ] {
        let (ok, out, err) = engine.berth_with(&args, &password, "");
        assert!(ok, "berth {args:?}: {out}{err}");
    }
    // The browser: an xdg-open on the app's PATH that writes down what it was asked to open.
    let opened = engine.home.join("opened-url");
    let fake_bin = engine.home.join("bin");
    std::fs::create_dir_all(&fake_bin).expect("bin");
    let xdg_open = fake_bin.join("xdg-open");
    std::fs::write(&xdg_open, format!("#!/bin/sh\nprintf '%s' \"$1\" > {}\n", opened.display())).expect("xdg-open");
    std::fs::set_permissions(&xdg_open, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let path =
        std::env::join_paths(std::iter::once(fake_bin.clone()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()))).expect("PATH");
    let app_home = temp_home("gui-native-app");
    let host = format!("unix:{}", engine.socket().display());
    let app_env: Vec<(&str, std::ffi::OsString)> = vec![("BERTH_HOME", app_home.clone().into()), ("BERTH_HOST", host.clone().into()), ("PATH", path)];
    let before = webkit_pids();
    let (driver, session) = launch(&app, &app_env, &artifacts);
    let wait = Duration::from_secs(30);
    let shot = |name: &str| -> Result<(), String> {
        let png = session.screenshot_png()?;
        if !png.starts_with(b"\x89PNG") {
            return Err(format!("screenshot {name} is not a PNG"));
        }
        std::fs::write(artifacts.join(format!("{name}.png")), png).map_err(|e| e.to_string())
    };
    let open = |view: &str| -> Result<(), String> {
        session.click(&format!("#nav-{view}"))?;
        session.wait_for(&format!("#nav-{view}[aria-selected=\"true\"]"), wait).map(drop)
    };
    let row = |name: &str| format!("tr[data-name=\"{name}\"]");
    let button = |label: &str| format!("button[aria-label=\"{label}\"]");

    let result = (|| -> Result<(), String> {
        // The engine BERTH_HOST names: ready, and no Start/Stop (it runs elsewhere).
        session.wait_text("#vm-state", wait, |t| t == "ready")?;
        let target = session.text("#engine-target")?;
        if !target.contains(&host) {
            return Err(format!("the status bar names {target:?}, not {host}"));
        }
        session.wait_gone("#start", wait)?;
        let tabs: Vec<String> = VIEWS.iter().map(|v| session.text(&format!("#nav-{v}"))).collect::<Result<_, _>>()?;
        if tabs != VIEWS {
            return Err(format!("the sidebar says {tabs:?}"));
        }

        // Images: the loaded image, in use by nothing yet.
        open("Images")?;
        session.wait_for(&row(IMAGE), wait)?;
        // Pull from the registry: a progress bar per layer while it runs, then the image.
        let (slowed, said) = engine.in_netns(&["tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "16mbit", "burst", "128kb", "latency", "1s"]);
        if !slowed {
            return Err(format!("tc on the namespace's loopback: {said}"));
        }
        session.type_into("#pull-reference", &medium)?;
        session.click("#pull")?;
        session.wait_for(".progress progress", wait)?;
        shot("pull-progress")?;
        // The notice, or the engine's error (said at once, not after the wait).
        let said = session.wait_text(IMAGES_SAID, Duration::from_secs(90), |t| !t.is_empty())?;
        if !said.starts_with(&format!("Pulled {medium}")) {
            return Err(format!("the pull of {medium} ended with {said:?}"));
        }
        session.wait_for(&row(&medium), wait)?;
        let pulled = session.text(&row(&medium))?;
        if !pulled.contains("signed (") {
            return Err(format!("the signed image's row says {pulled:?}"));
        }
        if session.text(&row(IMAGE))?.contains("signed (") {
            return Err("the loaded image shows as signed".into());
        }
        // Cancel one midway: the app says so, the engine stops it and records no image.
        session.type_into("#pull-reference", &large)?;
        session.click("#pull")?;
        // Once its big layer is coming in (a partial file in the store's ingest/).
        let ingest = engine.home.join("engine/content/ingest");
        let deadline = std::time::Instant::now() + wait;
        while !std::fs::read_dir(&ingest).map_err(|e| e.to_string())?.flatten().any(|e| e.metadata().is_ok_and(|m| m.len() > 0)) {
            if std::time::Instant::now() > deadline {
                return Err("the pull to cancel never got going".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        session.click("#pull-cancel")?;
        let said = session.wait_text(IMAGES_SAID, wait, |t| !t.is_empty())?;
        if said != format!("Cancelled the pull of {large}") {
            return Err(format!("the cancelled pull of {large} ended with {said:?}"));
        }
        // Stopped, the partial file goes (at 2 MB/s, the whole layer would take 50 s).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::read_dir(&ingest).map_err(|e| e.to_string())?.next().is_some() {
            if std::time::Instant::now() > deadline {
                return Err("the engine went on with the cancelled pull (its ingest/ still has a partial layer)".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if berth_ok(&engine, &["images", "--format", "json"])?.contains("/big:") {
            return Err("the cancelled pull left an image".into());
        }
        engine.in_netns(&["tc", "qdisc", "del", "dev", "lo", "root"]);
        // A pull of a name that does not exist: the engine's error, and the app goes on.
        session.type_into("#pull-reference", "registry.invalid/nothing/here:1")?;
        session.click("#pull")?;
        let refused = session.wait_text(".error", Duration::from_secs(60), |t| !t.is_empty())?;
        if !refused.contains("registry.invalid") {
            return Err(format!("the failed pull says {refused:?}"));
        }
        // Search an index that answers as Docker Hub's does, and pull a result: the index
        // refuses it for its rate limit, which the view shows with the limit.
        let hub = berth_tests::fixtures::hub::HubIndex::start(holder);
        session.type_into("#search-term", &format!("{}/redis", hub.addr))?;
        session.click("#search")?;
        let results = format!("section[aria-label=\"Search results for {}/redis\"]", hub.addr);
        let stars = session.wait_text(&format!("{results} {} td:nth-child(3)", row("bitnami/redis")), wait, |t| !t.is_empty())?;
        if stars != "339" {
            return Err(format!("the search result bitnami/redis shows {stars:?} stars"));
        }
        shot("image-search")?;
        session.click(&button("Pull bitnami/redis"))?;
        let refused = session.wait_text(".error", wait, |t| t.contains("toomanyrequests"))?;
        // Pulled from the index searched, not from Docker Hub.
        if !refused.contains("(pull limit: 100 per 6 hours, 0 left)") || !hub.requests().iter().any(|r| r.contains("/v2/bitnami/redis/manifests/")) {
            return Err(format!("the refused pull of a search result says {refused:?}; the index saw {:?}", hub.requests()));
        }
        // Run it from the Run dialog with a published port; fetch that port.
        session.click(&button(&format!("Run {IMAGE}")))?;
        session.wait_for("[role=\"dialog\"]", wait)?;
        session.type_into("#run-name", "web")?;
        session.type_into("#run-ports", "127.0.0.1:8080:80")?;
        session.type_into("#run-env", "GREETING=hello")?;
        shot("run-dialog")?;
        session.click("#run-submit")?;
        session.wait_gone("[role=\"dialog\"]", wait)?;
        let deadline = std::time::Instant::now() + wait;
        loop {
            let (fetched, page) = engine.in_netns(&["wget", "-q", "-O-", "http://127.0.0.1:8080/data.txt"]);
            if fetched && page == "from the image\n" {
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("the published port never served the page: {page}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let inspected: serde_json::Value = serde_json::from_str(&berth_ok(&engine, &["inspect", "web"])?).map_err(|e| e.to_string())?;
        let env = inspected[0]["Config"]["Env"].to_string();
        if !env.contains("GREETING=hello") {
            return Err(format!("the Run dialog's environment is not the container's: {env}"));
        }
        // In use now: removing the image is refused, in the engine's words.
        session.wait_text(&format!("{} td:nth-child(5)", row(IMAGE)), wait, |t| t.starts_with("1 container"))?;
        shot("Images")?;
        session.click(&button(&format!("Remove {IMAGE}")))?;
        let refused = session.wait_text(".error", wait, |t| t.starts_with("conflict"))?;
        if !refused.contains("container") {
            return Err(format!("removing an image in use says {refused:?}"));
        }

        // Containers: web runs, with its port; its log has the fetch; stop and remove.
        open("Containers")?;
        session.wait_for(&format!("{}[data-state=\"running\"]", row("web")), wait)?;
        let ports = session.text(&format!("{} .ports", row("web")))?;
        if ports != "127.0.0.1:8080→80/tcp" {
            return Err(format!("web's ports shown as {ports:?}"));
        }
        // The port opens in the browser (the xdg-open on the app's PATH).
        session.click(&button("Open http://127.0.0.1:8080/ (web)"))?;
        let deadline = std::time::Instant::now() + wait;
        while std::fs::read_to_string(&opened).map_or(true, |u| u != "http://127.0.0.1:8080/") {
            if std::time::Instant::now() > deadline {
                return Err(format!("the browser was asked to open {:?}", std::fs::read_to_string(&opened).ok()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Inspect: its environment, its port, and its address on the bridge.
        session.click(&button("Inspect web"))?;
        let address = session.wait_text("section[aria-label=\"Inspect web\"] tr[data-network=\"bridge\"] .ipv4", wait, |t| t.contains('/'))?;
        let engine_address = inspected[0]["NetworkSettings"]["Networks"]["bridge"]["IPAddress"].as_str().unwrap_or_default().to_owned();
        if engine_address.is_empty() || !address.starts_with(&format!("{engine_address}/")) {
            return Err(format!("Inspect shows web at {address:?}; the engine says {engine_address:?}"));
        }
        session.wait_text("section[aria-label=\"Inspect web\"] ul[aria-label=\"Environment of web\"]", wait, |t| t.contains("GREETING=hello"))?;
        shot("inspect")?;
        // A container started by the CLI appears without a reload (the engine's events).
        berth_ok(&engine, &["run", "-d", "--name", "talker", IMAGE, "sh", "-c", "echo hello from talker; exec sleep 300"])?;
        session.wait_for(&format!("{}[data-state=\"running\"]", row("talker")), wait)?;
        session.click(&button("Logs of talker"))?;
        session.wait_text("#log-text", wait, |t| t.contains("hello from talker"))?;
        shot("Containers")?;
        // The log follows: a line written now appears; and it saves to a file.
        berth_ok(&engine, &["exec", "talker", "sh", "-c", "echo later line > /proc/1/fd/1"])?;
        session.wait_text("#log-text", wait, |t| t.contains("later line"))?;
        let saved_log = engine.home.join("talker.log");
        session.click("#log-save")?;
        session.type_into("#log-save-path", &saved_log.display().to_string())?;
        session.press("\u{E007}")?;
        let deadline = std::time::Instant::now() + wait;
        while !std::fs::read_to_string(&saved_log).is_ok_and(|t| t.contains("hello from talker") && t.contains("later line")) {
            if std::time::Instant::now() > deadline {
                return Err(format!("the saved log {} never held both lines", saved_log.display()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Its terminal (xterm.js over an exec with a tty): typed keys run in the shell.
        session.click(&button("Terminal in talker"))?;
        session.wait_for("#terminal .xterm-rows", wait)?;
        session.wait_text("#terminal .xterm-rows", wait, |t| t.contains('#'))?;
        session.press("echo typed-$((6*7))\u{E007}")?;
        session.wait_text("#terminal .xterm-rows", wait, |t| t.contains("typed-42"))?;
        shot("terminal")?;
        // Its live stats: samples arrive and are shown.
        session.click(&button("Stats of talker"))?;
        session.wait_text("#stats-pids", wait, |t| t.parse::<u32>().is_ok_and(|n| n >= 1))?;
        let memory = session.text("#stats-memory")?;
        if !memory.contains(" of ") {
            return Err(format!("memory shown as {memory:?}"));
        }
        shot("stats")?;
        session.click(&button("Stop web"))?;
        session.wait_for(&format!("{}[data-state=\"exited\"]", row("web")), wait)?;
        session.click(&button("Remove web"))?;
        session.wait_gone(&row("web"), wait)?;
        if berth_ok(&engine, &["ps", "-a", "--format", "{{.Names}}"])?.lines().any(|l| l == "web") {
            return Err("web is still in the engine after Remove".into());
        }

        // Volumes: create, see it, remove.
        open("Volumes")?;
        session.type_into("#volume-name", "gui-data")?;
        session.click("#volume-create")?;
        session.wait_for(&row("gui-data"), wait)?;
        // Browse it: a folder, then a text file's start.
        berth_ok(&engine, &["run", "--rm", "-v", "gui-data:/data", IMAGE, "sh", "-c", "mkdir /data/conf && echo hello volume > /data/conf/greeting.txt"])?;
        // Once the --rm container is gone from its row (the row's columns settle).
        session.wait_text(&format!("{} td:nth-child(3)", row("gui-data")), wait, |t| t == "—")?;
        session.click(&button("Browse gui-data"))?;
        session.wait_for("li[data-file=\"conf\"] button", wait)?;
        session.click("li[data-file=\"conf\"] button")?;
        session.wait_for("li[data-file=\"greeting.txt\"] button", wait)?;
        session.click("li[data-file=\"greeting.txt\"] button")?;
        session.wait_text("#volume-preview", wait, |t| t == "hello volume")?;
        shot("Volumes")?;
        // Export it to a .tar file.
        let exported = engine.home.join("gui-data.tar");
        session.click(&button("Export gui-data"))?;
        session.type_into("#volume-export-path", &exported.display().to_string())?;
        session.click("#volume-form-submit")?;
        session.wait_text("#volumes-notice", wait, |t| t.starts_with("Exported gui-data"))?;
        let mut archive = tar::Archive::new(std::fs::File::open(&exported).map_err(|e| format!("{}: {e}", exported.display()))?);
        let names: Vec<String> = archive.entries().map_err(|e| e.to_string())?.filter_map(|e| e.ok()?.path().ok().map(|p| p.display().to_string())).collect();
        if !names.iter().any(|n| n.trim_start_matches("./") == "conf/greeting.txt") {
            return Err(format!("the exported tar holds {names:?}"));
        }
        session.click(&button("Remove gui-data"))?;
        session.click(&button("Delete gui-data and its data"))?;
        session.wait_gone(&row("gui-data"), wait)?;

        // Networks: create with a subnet, see it in the engine, remove.
        open("Networks")?;
        session.type_into("#network-name", "gui-net")?;
        session.type_into("#network-subnet", "10.231.7.0/24")?;
        session.click("#network-create")?;
        session.wait_for(&row("gui-net"), wait)?;
        let inspected: serde_json::Value = serde_json::from_str(&berth_ok(&engine, &["network", "inspect", "gui-net"])?).map_err(|e| e.to_string())?;
        let subnet = inspected[0]["IPAM"]["Config"][0]["Subnet"].as_str().unwrap_or_default().to_owned();
        if subnet != "10.231.7.0/24" {
            return Err(format!("gui-net's subnet in the engine: {subnet:?}"));
        }
        shot("Networks")?;
        // Inspect the default bridge: talker is on it, with its address.
        session.click(&button("Inspect bridge"))?;
        session.wait_text("section[aria-label=\"Inspect bridge\"] tr[data-container=\"talker\"] .ipv4", wait, |t| t.contains('/'))?;
        session.click(&button("Remove gui-net"))?;
        session.wait_gone(&row("gui-net"), wait)?;

        // Compose: a file that does not parse is refused in compose's words; a project
        // added by its folder goes Up (its service runs) and Down from the window.
        let project_dir = engine.home.join("shop");
        std::fs::create_dir_all(&project_dir).map_err(|e| e.to_string())?;
        // Its service is built from a Dockerfile (Build, then Up).
        std::fs::write(project_dir.join("Dockerfile"), format!("FROM {IMAGE}\nRUN echo built by the app > /built.txt\nCMD [\"sleep\", \"300\"]\n"))
            .map_err(|e| e.to_string())?;
        std::fs::write(project_dir.join("compose.yaml"), "services:\n  api:\n    build: .\n").map_err(|e| e.to_string())?;
        let broken = engine.home.join("broken.yaml");
        std::fs::write(&broken, "services:\n  api:\n    image: [unclosed\n").map_err(|e| e.to_string())?;
        open("Compose")?;
        session.type_into("#compose-path", &broken.display().to_string())?;
        session.click("#compose-add")?;
        let refused = session.wait_text(".error", wait, |t| t.starts_with("invalid_argument"))?;
        if !refused.contains("broken.yaml") {
            return Err(format!("the broken compose file is refused with {refused:?}"));
        }
        session.type_into("#compose-path", &project_dir.display().to_string())?;
        session.click("#compose-add")?;
        session.wait_for("article[data-project=\"shop\"] li[data-service=\"api\"][data-state=\"not created\"]", wait)?;
        session.click(&button("Build shop"))?;
        session.wait_text("[aria-label=\"What the last action did\"]", Duration::from_secs(120), |t| t.contains("Image shop-api  Built"))?;
        session.click(&button("Up shop"))?;
        session.wait_for("article[data-project=\"shop\"] li[data-service=\"api\"][data-state=\"running\"]", Duration::from_secs(60))?;
        if !berth_ok(&engine, &["ps", "--format", "{{.Names}}"])?.lines().any(|l| l == "shop-api-1") {
            return Err("Up from the window did not start shop-api-1 in the engine".into());
        }
        let built = berth_ok(&engine, &["exec", "shop-api-1", "cat", "/built.txt"])?;
        if built != "built by the app\n" {
            return Err(format!("shop-api-1 does not run the image the app built: {built:?}"));
        }
        shot("Compose")?;
        session.click(&button("Down shop"))?;
        session.wait_for("article[data-project=\"shop\"] li[data-service=\"api\"][data-state=\"not created\"]", Duration::from_secs(60))?;
        // Kept across restarts: the list is in the app's BERTH_HOME.
        let kept = std::fs::read_to_string(app_home.join("desktop/compose-projects.json")).map_err(|e| e.to_string())?;
        if !kept.contains(&project_dir.display().to_string()) {
            return Err(format!("the added project is not kept: {kept}"));
        }

        // Settings: a change is validated and saved to the settings file.
        open("Settings")?;
        session.wait_for("#settings-cpus", wait)?;
        session.type_into("#settings-cpus", "2")?;
        session.click("#settings-apply")?;
        session.wait_text("#settings-notice", wait, |t| t.starts_with("Saved: cpus"))?;
        let saved = std::fs::read_to_string(app_home.join("settings.json")).map_err(|e| e.to_string())?;
        if !saved.contains("\"cpus\": 2") {
            return Err(format!("settings.json after Apply: {saved}"));
        }
        shot("Settings")?;

        // Keyboard only: from the sidebar, arrows to Volumes, Tab to its field, type,
        // Enter creates the volume.
        session.script("document.getElementById('nav-Containers').focus()")?;
        session.press("\u{E015}\u{E015}")?;
        if session.focused_id()? != "nav-Volumes" {
            return Err(format!("arrow keys moved the focus to {:?}", session.focused_id()?));
        }
        session.wait_for("#nav-Volumes[aria-selected=\"true\"]", wait)?;
        session.press("\u{E004}")?;
        if session.focused_id()? != "volume-name" {
            return Err(format!("Tab from the sidebar went to {:?}", session.focused_id()?));
        }
        session.press("typed-vol\u{E007}")?;
        session.wait_for(&row("typed-vol"), wait)?;
        if !berth_ok(&engine, &["volume", "ls", "--format", "{{.Name}}"])?.lines().any(|l| l == "typed-vol") {
            return Err("the volume made from the keyboard is not in the engine".into());
        }

        // The engine stops mid-session: the status bar says so, and the app goes on.
        engine.terminate();
        session.wait_text("#vm-state", wait, |t| t == "error")?;
        open("Images")?;
        session.wait_for(".empty", wait)?;
        shot("engine-stopped")?;
        Ok(())
    })();
    // Its containers outlived it: an engine again, so the harness removes them.
    engine.kill_and_restart();
    if result.is_err() {
        let _ = shot("failure");
    }
    let _ = session.close();
    drop(driver);
    let (leaked, leftovers) = leftovers(&before, &app_home);
    let _ = std::fs::remove_dir_all(&app_home);
    if let Err(err) = result {
        panic!("{err} (screenshots and logs in {})", artifacts.display());
    }
    contact_sheet(&artifacts, &VIEWS, &artifacts.join("contact-sheet.png")).expect("contact sheet");
    assert!(leftovers.is_empty(), "processes left after the app closed: {leftovers:?}");
    assert!(leaked.is_empty(), "WebKit / app processes left after the session: {leaked:?}");
}

/// One PNG with every view's screenshot at half size, three to a row, so a reviewer can
/// look at the app without running it.
fn contact_sheet(dir: &std::path::Path, views: &[&str], out: &std::path::Path) -> Result<(), String> {
    let mut shots = Vec::new();
    for view in views {
        let file = std::fs::File::open(dir.join(format!("{view}.png"))).map_err(|e| format!("{view}.png: {e}"))?;
        let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().map_err(|e| e.to_string())?;
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
        let channels = match info.color_type {
            png::ColorType::Rgba => 4,
            png::ColorType::Rgb => 3,
            other => return Err(format!("{view}.png: unexpected color type {other:?}")),
        };
        shots.push((info.width as usize, info.height as usize, channels, buf));
    }
    let cell_w = shots.iter().map(|s| s.0 / 2).max().unwrap_or(0);
    let cell_h = shots.iter().map(|s| s.1 / 2).max().unwrap_or(0);
    let columns = 3;
    let rows = shots.len().div_ceil(columns);
    let (width, height) = (cell_w * columns, cell_h * rows);
    let mut sheet = vec![255u8; width * height * 3];
    for (i, (w, h, channels, pixels)) in shots.iter().enumerate() {
        let (x0, y0) = ((i % columns) * cell_w, (i / columns) * cell_h);
        for y in 0..h / 2 {
            for x in 0..w / 2 {
                let from = ((y * 2) * w + x * 2) * channels;
                let to = ((y0 + y) * width + x0 + x) * 3;
                sheet[to..to + 3].copy_from_slice(&pixels[from..from + 3]);
            }
        }
    }
    let file = std::fs::File::create(out).map_err(|e| e.to_string())?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width as u32, height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().and_then(|mut w| w.write_image_data(&sheet)).map_err(|e| e.to_string())
}
