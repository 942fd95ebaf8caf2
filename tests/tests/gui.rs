//! Berth Desktop, the real app window: under Xvfb, driven through tauri-driver and
//! WebKitWebDriver, it starts the VM from the window and shows "ready" with the engine
//! version the guest reported; then stops it. Saves a screenshot as an artifact.
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
    ["WebKitWebDriver", "WebKitNetworkProcess", "WebKitWebProcess", "berth-desktop"]
        .iter()
        .flat_map(|n| processes_matching(n))
        .map(|(pid, _)| pid)
        .collect()
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
        serde_json::from_slice(&std::fs::read(root().join("build/vm-image/manifest.json")).expect("vm image manifest"))
            .expect("json");
    let kernel = manifest["kernel_release"].as_str().expect("kernel").to_owned();

    let before = webkit_pids();
    let port = free_port();
    let native_port = free_port();
    let tauri_driver = berth_host::vm::find_program("tauri-driver").expect("tauri-driver (cargo xtask setup installs it)");
    // The app inherits this environment through tauri-driver and WebKitWebDriver.
    let driver = Driver(
        Command::new(tauri_driver)
            .args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
            .env("BERTH_HOME", &home)
            .env("BERTH_ACCEL", "tcg")
            .env("BERTH_VM_MEMORY_MIB", "512")
            .env("BERTH_VM_IMAGE", root().join("build/vm-image"))
            // Neither WEBKIT_DISABLE_COMPOSITING_MODE nor WEBKIT_DISABLE_DMABUF_RENDERER: with
            // either, WebKitGTK 2.50 under Xvfb stops painting after the DOM changes and
            // WebDriver screenshots hang.
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .env("GDK_BACKEND", "x11")
            .env("NO_AT_BRIDGE", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(artifacts.join("tauri-driver.log")).expect("log"))
            .spawn()
            .expect("spawn tauri-driver"),
    );
    let wd = WebDriver::new(port);
    wd.wait_ready(Duration::from_secs(30)).expect("tauri-driver ready");
    let session = wd.session(&app).expect("start the app");
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
        let out = Command::new(bin("berth"))
            .args(["vm", "status", "--format", "json"])
            .env("BERTH_HOME", &home)
            .output()
            .map_err(|e| e.to_string())?;
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
        std::fs::write(&archive, berth_tests::fixtures::oci_archive(&berth_tests::fixtures::container_image(serde_json::json!({})), "berth.test/busybox:gui")).map_err(|e| e.to_string())?;
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
    // WebKit's helpers exit a moment after the app; wait for them, then count what is left.
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
    let leftovers = processes_matching(&home.display().to_string());
    // Whatever happened, kill what the app may have left, then report.
    for (pid, _) in &leftovers {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
    let _ = std::fs::remove_dir_all(&home);
    if let Err(err) = result {
        panic!("{err} (screenshots and logs in {})", artifacts.display());
    }
    assert!(leftovers.is_empty(), "processes left after the app closed: {leftovers:?}");
    assert!(leaked.is_empty(), "WebKit / app processes left after the session: {leaked:?}");
    assert!(artifacts.join("berth-desktop-ready.png").is_file());
}
