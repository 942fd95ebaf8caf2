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
}

impl NativeEngine {
    pub fn start(test: &str) -> NativeEngine {
        let home = crate::temp_home(test);
        let log = home.join("engine.log");
        let child = NativeEngine::spawn(&home, &log, false, &[]);
        let engine = NativeEngine { home, child, log, isolated: false, env: Vec::new() };
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
        let home = crate::temp_home(test);
        let log = home.join("engine.log");
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let child = NativeEngine::spawn(&home, &log, true, &env);
        let engine = NativeEngine { home, child, log, isolated: true, env };
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
        self.child = NativeEngine::spawn(&self.home, &self.log, self.isolated, &self.env);
        // The old socket file is still there (stale); wait until the new engine answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            assert!(Instant::now() < deadline, "the restarted engine did not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn(home: &Path, log: &Path, isolated: bool, env: &[(String, String)]) -> Child {
        let mut command = if isolated {
            // unshare and sh exec, so the child's pid stays the engine's.
            let mut c = Command::new("unshare");
            c.args(["--net", "--", "sh", "-c", "ip link set lo up && exec \"$0\" serve --native"]).arg(crate::bin("berth"));
            c
        } else {
            let mut c = Command::new(crate::bin("berth"));
            c.args(["serve", "--native"]);
            c
        };
        command.envs(env.iter().map(|(k, v)| (k, v)));
        command
            .env("BERTH_HOME", home)
            .stdin(Stdio::null())
            .stdout(std::fs::File::options().create(true).append(true).open(log).expect("log"))
            .stderr(std::fs::File::options().create(true).append(true).open(home.join("engine.err")).expect("log"))
            .spawn()
            .expect("spawn berth serve --native")
    }

    fn wait_socket(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.socket().exists() {
            assert!(Instant::now() < deadline, "the native engine did not create its socket");
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
        if self.home.join("engine/containers.db").exists() {
            let out = self.berth(&["ps", "-aq", "--no-trunc"]);
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self.berth(&["rm", "-f", id]);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.home);
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
        .env_remove("BERTH_HOST")
        .output()
        .expect("run berth")
}
