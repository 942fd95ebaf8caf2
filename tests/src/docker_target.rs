//! One Docker-compatible engine for the compatibility suite: Berth's native engine, or a
//! real dockerd from Debian's docker.io that the suite starts itself. Both run in a
//! network namespace of their own (loopback only) and keep every file in the test's
//! folder, so the same scenario runs against either and touches nothing on the machine.
//! A scenario that passes against dockerd tests Docker's behaviour, not Berth's guess.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::native::NativeEngine;

/// The engine under test.
#[derive(Debug)]
pub enum DockerTarget {
    Berth(NativeEngine),
    Dockerd(Dockerd),
    /// Berth's engine in its VM, through the session's docker.sock (`berth vm start`),
    /// as a user on macOS or Windows has it. It has no network namespace on this host:
    /// the scenarios it runs reach containers through the API alone.
    Vm(crate::vm::SessionHome),
}

impl DockerTarget {
    /// `kind` is "berth" or "dockerd".
    pub fn start(kind: &str, test: &str) -> DockerTarget {
        DockerTarget::start_with(kind, test, &[])
    }

    /// `start` with the daemon's flags (`berth serve --native` or dockerd) after its own.
    pub fn start_with(kind: &str, test: &str, daemon_args: &[String]) -> DockerTarget {
        match kind {
            "berth" => DockerTarget::Berth(NativeEngine::start_isolated_serving(test, &[], daemon_args)),
            "dockerd" => DockerTarget::Dockerd(Dockerd::start(test, daemon_args)),
            "vm" => {
                assert!(daemon_args.is_empty(), "the VM's engine takes no daemon flags here");
                let session = crate::vm::SessionHome::new(test, crate::vm::image_dir(), 1024);
                let (started, out, err) = session.berth(&["vm", "start"]);
                assert!(started, "berth vm start: {out}{err}");
                DockerTarget::Vm(session)
            }
            other => panic!("no such target {other}"),
        }
    }

    /// The pid of the process that holds the engine's network namespace.
    pub fn netns_pid(&self) -> u32 {
        match self {
            DockerTarget::Berth(engine) => engine.netns_holder.as_ref().expect("isolated engine").id(),
            DockerTarget::Dockerd(d) => d.holder.id(),
            DockerTarget::Vm(_) => panic!("the VM's engine has no network namespace on this host: a scenario for the VM reaches containers through the API"),
        }
    }

    /// Berth's engine, natively or in its VM.
    pub fn is_berth(&self) -> bool {
        matches!(self, DockerTarget::Berth(_) | DockerTarget::Vm(_))
    }

    /// Berth's engine in its VM.
    pub fn in_vm(&self) -> bool {
        matches!(self, DockerTarget::Vm(_))
    }

    pub fn home(&self) -> &Path {
        match self {
            DockerTarget::Berth(engine) => &engine.home,
            DockerTarget::Dockerd(d) => &d.home,
            DockerTarget::Vm(session) => &session.home,
        }
    }

    /// The Docker API's socket.
    pub fn socket(&self) -> PathBuf {
        match self {
            DockerTarget::Berth(engine) => engine.home.join("run/docker.sock"),
            DockerTarget::Dockerd(d) => d.socket(),
            DockerTarget::Vm(session) => session.home.join("run/docker.sock"),
        }
    }

    /// The newest API version the engine serves.
    pub fn api_version(&self) -> &'static str {
        if self.is_berth() {
            "1.43"
        } else {
            "1.41"
        }
    }

    /// A command aimed at this engine's API: DOCKER_HOST, and a DOCKER_CONFIG of the
    /// test's own (for docker, docker-compose and the Python SDK alike).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.home().join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .current_dir(self.home());
        command
    }

    /// `docker ARGS`: (success, stdout, stderr).
    pub fn docker(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.command("docker").args(args).output().expect("the docker CLI (cargo xtask setup installs one if missing)");
        text(&out)
    }

    /// `docker ARGS` that must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (done, out, err) = self.docker(args);
        assert!(done, "docker {args:?} against {self:?}: {err}");
        out
    }

    /// `docker ARGS` with `stdin` on its standard input.
    pub fn docker_with_stdin(&self, args: &[&str], stdin: &[u8]) -> (bool, String, String) {
        let mut child = self.command("docker").args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("docker");
        child.stdin.take().expect("stdin").write_all(stdin).expect("write stdin");
        text(&child.wait_with_output().expect("wait"))
    }

    /// Runs a command inside the engine's network namespace: (success, stdout + stderr).
    pub fn in_netns(&self, args: &[&str]) -> (bool, String) {
        crate::native::in_netns_of(self.netns_pid(), args)
    }

    /// `docker load` of an image archive built by the fixtures.
    pub fn load(&self, archive: &[u8]) {
        let path = self.home().join("load.tar");
        std::fs::write(&path, archive).expect("write archive");
        self.ok(&["load", "-i", &path.display().to_string()]);
    }

    /// One raw HTTP/1.1 request on the API socket: the status line, the headers
    /// (lowercased names) and the body.
    pub fn http(&self, method: &str, path: &str, body: &str) -> (String, Vec<(String, String)>, String) {
        self.http_with(method, path, "", body)
    }

    /// `http` with extra header lines (each ending in `\r\n`).
    pub fn http_with(&self, method: &str, path: &str, extra_headers: &str, body: &str) -> (String, Vec<(String, String)>, String) {
        let mut stream = UnixStream::connect(self.socket()).expect("connect");
        // An engine that never answers fails the test instead of hanging it.
        stream.set_read_timeout(Some(std::time::Duration::from_secs(60))).expect("read timeout");
        let kind = if body.is_empty() { "" } else { "Content-Type: application/json\r\n" };
        let connection = if extra_headers.to_ascii_lowercase().contains("connection:") { "" } else { "Connection: close\r\n" };
        write!(stream, "{method} {path} HTTP/1.1\r\nHost: docker\r\n{connection}{extra_headers}{kind}Content-Length: {}\r\n\r\n{body}", body.len())
            .expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines.next().unwrap_or("").to_owned();
        let headers: Vec<(String, String)> =
            lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())).collect();
        let body = if headers.iter().any(|(k, v)| k == "transfer-encoding" && v == "chunked") { unchunk(body) } else { body.to_owned() };
        (status, headers, body)
    }
}

fn text(out: &Output) -> (bool, String, String) {
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A chunked body's data.
fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Debian's dockerd in the test's folder: its own data root, exec root (and so its own
/// containerd), socket, cgroup parent and network namespace. Stopped, and its folder
/// removed, on drop.
#[derive(Debug)]
pub struct Dockerd {
    pub home: PathBuf,
    child: Child,
    pub(crate) holder: Child,
    cgroup_parent: String,
}

impl Dockerd {
    pub fn start(test: &str, daemon_args: &[String]) -> Dockerd {
        let home = crate::temp_home(test);
        let holder = crate::native::netns_holder();
        let cgroup_parent = format!("berth-test-dockerd-{}", holder.id());
        let log = std::fs::File::create(home.join("dockerd.log")).expect("log");
        let child = Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", holder.id()))
            .arg("--")
            .arg("dockerd")
            .arg("--data-root")
            .arg(home.join("root"))
            .arg("--exec-root")
            .arg(home.join("exec"))
            .arg("--pidfile")
            .arg(home.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", home.join("docker.sock").display()))
            .args(["--storage-driver", "overlay2", "--exec-opt", "native.cgroupdriver=cgroupfs", "--cgroup-parent", &cgroup_parent])
            .args(daemon_args)
            .env("DOCKER_CONFIG", home.join("docker-config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("dockerd (Debian's docker.io; cargo xtask setup installs it)");
        let dockerd = Dockerd { home, child, holder, cgroup_parent };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = Command::new("docker")
                .args(["version", "--format", "{{.Server.Version}}"])
                .env("DOCKER_HOST", format!("unix://{}", dockerd.socket().display()))
                .env("DOCKER_CONFIG", dockerd.home.join("docker-config"))
                .output()
                .is_ok_and(|o| o.status.success());
            if up {
                break;
            }
            assert!(Instant::now() < deadline, "dockerd did not come up: {}", std::fs::read_to_string(dockerd.home.join("dockerd.log")).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(100));
        }
        dockerd
    }

    pub fn socket(&self) -> PathBuf {
        self.home.join("docker.sock")
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // dockerd stops its containers and its containerd, and unmounts, on SIGTERM.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        // Whatever is still mounted below the folder (a dockerd that was killed).
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
            let home = self.home.display().to_string();
            let mut points: Vec<&str> = mounts.lines().filter_map(|l| l.split(' ').nth(1)).filter(|p| p.starts_with(&home)).collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for point in points {
                let _ = Command::new("umount").args(["-l", point]).status();
            }
        }
        for controller in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir(controller.path().join(&self.cgroup_parent));
        }
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// Debian's docker-registry inside a target's network namespace (on its loopback, port
/// 5000), with an htpasswd login; stopped and removed on drop.
#[derive(Debug)]
pub struct NetnsRegistry {
    pub addr: String,
    root: PathBuf,
    child: Child,
}

impl DockerTarget {
    /// A server that answers as Docker Hub's index does (search, a refused pull), on
    /// 127.0.0.1 in this engine's network namespace.
    pub fn hub_index(&self) -> crate::fixtures::hub::HubIndex {
        crate::fixtures::hub::HubIndex::start(self.netns_pid())
    }

    pub fn registry(&self, user: &str, password: &str) -> NetnsRegistry {
        let root = self.home().join("registry");
        std::fs::create_dir_all(&root).expect("registry folder");
        let out = Command::new("htpasswd").args(["-Bbn", user, password]).output().expect("htpasswd (Debian package apache2-utils)");
        assert!(out.status.success(), "htpasswd failed");
        std::fs::write(root.join("htpasswd"), &out.stdout).expect("htpasswd file");
        let addr = "127.0.0.1:5000".to_owned();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\nauth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
            root.join("data").display(),
            root.join("htpasswd").display()
        );
        std::fs::write(root.join("config.yml"), config).expect("registry config");
        let holder = self.netns_pid();
        let child = Command::new("nsenter")
            .arg(format!("--net=/proc/{holder}/ns/net"))
            .args(["--", "docker-registry", "serve"])
            .arg(root.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("registry.log")).expect("log"))
            .spawn()
            .expect("docker-registry (Debian package docker-registry)");
        let registry = NetnsRegistry { addr, root, child };
        let deadline = Instant::now() + Duration::from_secs(15);
        // Up once it answers /v2/ (401: it wants the login).
        while !self.in_netns(&["busybox", "sh", "-c", "busybox wget -qO- http://127.0.0.1:5000/v2/ 2>&1 | busybox grep -q 401"]).0 {
            assert!(
                Instant::now() < deadline,
                "the registry did not come up: {}",
                std::fs::read_to_string(registry.root.join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }
}

impl Drop for NetnsRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A plain HTTP file server inside the engine's network namespace (Python's
/// http.server on 127.0.0.1:8000), serving `dir`; stopped on drop. ADD of a URL fetches
/// from it: the engine downloads, so the server must be where the engine is.
#[derive(Debug)]
pub struct NetnsFileServer {
    pub addr: String,
    child: Child,
}

impl DockerTarget {
    pub fn file_server(&self, dir: &Path) -> NetnsFileServer {
        let holder = self.netns_pid();
        let child = Command::new("nsenter")
            .arg(format!("--net=/proc/{holder}/ns/net"))
            .args(["--", "python3", "-m", "http.server", "8000", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let server = NetnsFileServer { addr: "127.0.0.1:8000".into(), child };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.in_netns(&["busybox", "wget", "-q", "--spider", "http://127.0.0.1:8000/"]).0 {
            assert!(Instant::now() < deadline, "the file server did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }
}

impl Drop for NetnsFileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
