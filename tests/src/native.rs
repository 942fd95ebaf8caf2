//! A native engine (`berth serve --native`) per test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_host::agent::{AgentClient, AgentEndpoint};

/// `berth serve --native` in its own BERTH_HOME; killed on drop.
#[derive(Debug)]
pub struct NativeEngine {
    pub home: PathBuf,
    pub child: Child,
    pub log: PathBuf,
    /// Runs in a network namespace of its own (made by the test), loopback only.
    pub isolated: bool,
    /// Extra environment for the engine.
    pub env: Vec<(String, String)>,
    /// With `isolated`: the process that holds the test's network namespace, so an
    /// engine restarted by the test comes back in the same one.
    pub netns_holder: Option<Child>,
    /// Flags for `berth serve --native` after its own.
    pub serve_args: Vec<String>,
}

impl NativeEngine {
    pub fn start(test: &str) -> NativeEngine {
        let home = crate::temp_home(test);
        let log = home.join("engine.log");
        let child = NativeEngine::spawn(&home, &log, None, &[], &[]);
        let engine = NativeEngine { home, child, log, isolated: false, env: Vec::new(), netns_holder: None, serve_args: Vec::new() };
        engine.wait_socket();
        engine
    }

    /// An engine inside a fresh network namespace with only loopback up: nothing it or
    /// its containers do can touch the machine's network.
    pub fn start_isolated(test: &str) -> NativeEngine {
        NativeEngine::start_isolated_with(test, &[])
    }

    /// `start_isolated` with extra environment for the engine (e.g. `BERTH_RUNTIME`).
    pub fn start_isolated_with(test: &str, env: &[(&str, &str)]) -> NativeEngine {
        NativeEngine::start_isolated_serving(test, env, &[])
    }

    /// `start_isolated_with` and flags for `berth serve --native`.
    pub fn start_isolated_serving(test: &str, env: &[(&str, &str)], serve_args: &[String]) -> NativeEngine {
        let home = crate::temp_home(test);
        let log = home.join("engine.log");
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let holder = netns_holder();
        let child = NativeEngine::spawn(&home, &log, Some(holder.id()), &env, serve_args);
        let engine = NativeEngine { home, child, log, isolated: true, env, netns_holder: Some(holder), serve_args: serve_args.to_vec() };
        engine.wait_socket();
        engine
    }

    /// SIGKILL (no chance to clean up), then a new engine on the same state.
    pub fn kill_and_restart(&mut self) {
        self.kill_and_restart_with(|| {});
    }

    /// SIGKILL, then `meanwhile` (while no engine runs), then a new engine.
    pub fn kill_and_restart_with(&mut self, meanwhile: impl FnOnce()) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        meanwhile();
        self.child = NativeEngine::spawn(&self.home, &self.log, self.netns_holder.as_ref().map(Child::id), &self.env, &self.serve_args);
        // The old socket file is still there (stale); wait until the new engine answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            assert!(Instant::now() < deadline, "the restarted engine did not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn(home: &Path, log: &Path, netns_of: Option<u32>, env: &[(String, String)], serve_args: &[String]) -> Child {
        let mut command = if let Some(holder) = netns_of {
            // nsenter execs, so the child's pid stays the engine's.
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/proc/{holder}/ns/net")).arg("--").arg(crate::bin("berth")).args(["serve", "--native"]);
            c
        } else {
            let mut c = Command::new(crate::bin("berth"));
            c.args(["serve", "--native"]);
            c
        };
        command.args(serve_args).envs(env.iter().map(|(k, v)| (k, v)));
        command
            .env("BERTH_HOME", home)
            // `serve` writes the berth docker context: into the test's home, not ~/.docker.
            .env("DOCKER_CONFIG", home.join("docker-config"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::options().create(true).append(true).open(log).expect("log"))
            .stderr(std::fs::File::options().create(true).append(true).open(home.join("engine.err")).expect("log"))
            .spawn()
            .expect("spawn berth serve --native")
    }

    /// Until the engine accepts connections: the socket file appears at bind(), a
    /// moment before listen(), and a connect in between is refused.
    fn wait_socket(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            assert!(Instant::now() < deadline, "the native engine did not answer on its socket");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.home.join("run/berth.sock")
    }

    pub fn endpoint(&self) -> AgentEndpoint {
        AgentEndpoint::Unix(self.socket())
    }

    pub async fn client(&self) -> AgentClient {
        AgentClient::connect(&self.endpoint(), Duration::from_secs(5)).await.expect("connect to the native engine")
    }

    /// Runs `berth` against this engine.
    pub fn berth(&self, args: &[&str]) -> std::process::Output {
        berth(&self.home, args)
    }

    /// SIGTERM, then wait for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = i32::try_from(self.child.id()).expect("pid");
        Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
        self.child.wait().expect("wait")
    }
}

impl Drop for NativeEngine {
    fn drop(&mut self) {
        // Containers outlive the engine by design: remove them while it still runs.
        let mut said = String::new();
        if self.home.join("engine/containers.db").exists() {
            let out = self.berth(&["ps", "-aq", "--no-trunc"]);
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let out = self.berth(&["rm", "-f", id]);
                said.push_str(&String::from_utf8_lossy(&out.stderr));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(mut holder) = self.netns_holder.take() {
            let _ = holder.kill();
            let _ = holder.wait();
        }
        // What the engine mounted and did not unmount once its containers were removed
        // is a leak: say so (the test has ended; a panic in drop would abort), then
        // unmount it so the machine's disk is not held by it.
        let leaked = mounts_under(&self.home);
        if !leaked.is_empty() {
            eprintln!("LEAK: {} mounts under {} outlived the test's containers: {leaked:?}; rm -f said: {said}", leaked.len(), self.home.display());
            for target in leaked.iter().rev() {
                let _ = Command::new("umount").args(["-l", target]).status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// Mount points at or under `dir`, in mount order (from /proc/self/mountinfo).
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|target| *target == prefix || target.starts_with(&format!("{prefix}/")))
        .map(str::to_owned)
        .collect()
}

/// Runs a command in the network namespace of process `pid`: (success, stdout + stderr).
pub fn in_netns_of(pid: u32, args: &[&str]) -> (bool, String) {
    let out = Command::new("nsenter").arg(format!("--net=/proc/{pid}/ns/net")).arg("--").args(args).output().expect("nsenter");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// A process in a new network namespace with loopback up and the FORWARD policy DROP
/// (as on a host that runs dockerd), which lives until killed.
pub fn netns_holder() -> Child {
    let mut holder = Command::new("unshare")
        // Forwarding dropped unless accepted, as dockerd leaves a host (and br_netfilter
        // sends bridged traffic through that chain): Berth must work beside it.
        .args(["--net", "--", "sh", "-c", "ip link set lo up && iptables -w -P FORWARD DROP && exec sleep infinity"])
        .stdin(Stdio::null())
        .spawn()
        .expect("unshare --net");
    // Once it runs `sleep`, loopback is up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{}/comm", holder.id())).map(|c| c.trim() != "sleep").unwrap_or(true) {
        if Instant::now() > deadline {
            let _ = holder.kill();
            panic!("the network namespace holder did not start");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    holder
}

impl NativeEngine {
    /// Runs a command inside the engine's network namespace (isolated engines only);
    /// returns (success, stdout + stderr).
    pub fn in_netns(&self, args: &[&str]) -> (bool, String) {
        let holder = self.netns_holder.as_ref().expect("in_netns needs an isolated engine");
        in_netns_of(holder.id(), args)
    }

    /// What networks leave in the engine's namespace: interfaces, addresses, routes,
    /// Berth's nftables rules and the iptables rules it adds. Equal before and after a test means nothing leaked.
    pub fn network_footprint(&self) -> String {
        let mut all = String::new();
        for args in [
            &["ip", "-o", "link", "show"][..],
            &["ip", "-o", "-4", "addr", "show"],
            &["ip", "-4", "route", "show"],
            &["nft", "list", "table", "ip", "berth"],
            &["iptables", "-w", "-S"],
        ] {
            let (_, out) = self.in_netns(args);
            // Carrier state (a bridge without ports has none) aside, these are stable.
            for line in out.lines() {
                let line = line.split("link/").next().unwrap_or(line).split(" qdisc").next().unwrap_or(line);
                let line = match (line.find('<'), line.find('>')) {
                    (Some(a), Some(b)) if a < b => format!("{}{}", &line[..a], &line[b + 1..]),
                    _ => line.to_owned(),
                };
                all.push_str(line.replace(" linkdown", "").trim());
                all.push('\n');
            }
        }
        all
    }
}

impl NativeEngine {
    /// Runs `berth` against this engine with extra environment and standard input;
    /// returns (success, stdout, stderr).
    pub fn berth_with(&self, args: &[&str], env: &[(&str, &std::ffi::OsStr)], stdin: &str) -> (bool, String, String) {
        use std::io::Write;
        let mut command = Command::new(crate::bin("berth"));
        command.args(args).env("BERTH_HOME", &self.home).env_remove("BERTH_HOST");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("berth");
        child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
        let out = child.wait_with_output().expect("wait");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs `berth` with the given BERTH_HOME.
pub fn berth(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(crate::bin("berth"))
        .args(args)
        .env("BERTH_HOME", home)
        .env("DOCKER_CONFIG", home.join("docker-config"))
        .env_remove("BERTH_HOST")
        .output()
        .expect("run berth")
}
