//! The host-to-VM transports side by side: vsock (here vhost-device-vsock's unix socket)
//! and the serial mux (a virtio-serial port carrying yamux, what macOS and Windows use).
//! For each, one `berth vm start` session, then:
//! - gRPC round trip: `System.Version` over the session's socket, one after another;
//! - Docker API throughput: 256 MiB into a container's `exec` stdin and 256 MiB out of
//!   its stdout, through the session's docker.sock;
//! - port-forward throughput: 256 MiB to and from a published port on the host's
//!   loopback.
//!
//! `cargo xtask bench transport` (BENCH_RUNS=n, default 3). A benchmark, not a test: it
//! prints numbers and asserts nothing about them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::vm::SessionHome;

const SIZE: usize = 256 * 1024 * 1024;
const ROUND_TRIPS: usize = 500;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn docker(session: &SessionHome, args: &[&str]) -> String {
    let (ok, out, err) = session.docker(args);
    assert!(ok, "docker {args:?}: {err}");
    out
}

/// A busybox image made from the host's static busybox, with the suite's static
/// `netprobe` (a TCP sink and source that move a mebibyte per call: busybox's `nc`
/// writes a kilobyte at a time, which under TCG measures `nc`, not the transport).
fn import_busybox(session: &SessionHome) {
    let root = session.home.join("bb-root");
    std::fs::create_dir_all(root.join("bin")).expect("bin");
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static (cargo xtask setup installs it)");
    std::fs::copy(berth_tests::root().join("target/x86_64-unknown-linux-musl/debug/berth-netprobe"), root.join("bin/netprobe"))
        .expect("berth-netprobe (cargo xtask bench transport builds it)");
    for applet in ["sh", "cat", "head", "nc", "sleep"] {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
    }
    let tar = session.home.join("bb.tar");
    assert!(Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg(".").status().expect("tar").success());
    docker(session, &["import", &tar.display().to_string(), "bench/bb:1"]);
}

/// MiB/s of moving SIZE bytes in `elapsed`.
fn rate(elapsed: Duration) -> f64 {
    (SIZE as f64 / (1024.0 * 1024.0)) / elapsed.as_secs_f64()
}

/// 256 MiB into `docker exec -i C sh -c 'cat > /dev/null'`.
fn api_upload(session: &SessionHome) -> f64 {
    let mut child = Command::new("docker")
        .args(["exec", "-i", "sink", "sh", "-c", "cat > /dev/null"])
        .env("DOCKER_HOST", format!("unix://{}", session.home.join("run/docker.sock").display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("docker exec");
    let started = Instant::now();
    let mut stdin = child.stdin.take().expect("stdin");
    let block = vec![7u8; 1024 * 1024];
    for _ in 0..SIZE / block.len() {
        stdin.write_all(&block).expect("write");
    }
    drop(stdin);
    assert!(child.wait().expect("wait").success());
    rate(started.elapsed())
}

/// 256 MiB out of `docker exec C head -c SIZE /dev/zero`.
fn api_download(session: &SessionHome) -> f64 {
    let started = Instant::now();
    let mut child = Command::new("docker")
        .args(["exec", "sink", "head", "-c", &SIZE.to_string(), "/dev/zero"])
        .env("DOCKER_HOST", format!("unix://{}", session.home.join("run/docker.sock").display()))
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker exec");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut buf = vec![0u8; 1024 * 1024];
    let mut total = 0;
    loop {
        let n = stdout.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        total += n;
    }
    assert!(child.wait().expect("wait").success());
    assert_eq!(total, SIZE);
    rate(started.elapsed())
}

/// Connects to the published port once the container listens on it: the host's end
/// accepts at once, and closes again while nothing listens in the container.
fn connect_to_listener(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "nothing listened on port {port}");
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        stream.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
        match stream.read(&mut [0u8; 1]) {
            // Still open after half a second: the container took it.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                stream.set_read_timeout(None).expect("timeout");
                return stream;
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// 256 MiB to a container's TCP sink through its published port.
fn forward_upload(session: &SessionHome, port: u16) -> f64 {
    docker(session, &["run", "-d", "--name", "nc-sink", "-p", &format!("127.0.0.1:{port}:8080"), "bench/bb:1", "netprobe", "tcp-sink", "8080"]);
    let mut stream = connect_to_listener(port);
    let started = Instant::now();
    let block = vec![7u8; 1024 * 1024];
    for _ in 0..SIZE / block.len() {
        stream.write_all(&block).expect("write");
    }
    stream.shutdown(std::net::Shutdown::Write).expect("half-close");
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let elapsed = started.elapsed();
    docker(session, &["rm", "-f", "nc-sink"]);
    rate(elapsed)
}

/// 256 MiB from a container's TCP source through its published port.
fn forward_download(session: &SessionHome, port: u16) -> f64 {
    let mib = (SIZE >> 20).to_string();
    docker(session, &["run", "-d", "--name", "nc-source", "-p", &format!("127.0.0.1:{port}:8080"), "bench/bb:1", "netprobe", "tcp-source", "8080", &mib]);
    // Connections made before the source listens are closed at once with nothing in them.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (total, elapsed) = loop {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let started = Instant::now();
        let mut buf = vec![0u8; 1024 * 1024];
        let mut total = 0;
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
        }
        if total > 0 {
            break (total, started.elapsed());
        }
        assert!(Instant::now() < deadline, "nothing listened on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    };
    docker(session, &["rm", "-f", "nc-source"]);
    assert_eq!(total, SIZE, "the forwarded stream ended early");
    rate(elapsed)
}

fn grpc_round_trip_us(runtime: &tokio::runtime::Runtime, session: &SessionHome) -> f64 {
    runtime.block_on(async {
        let endpoint = berth_host::agent::AgentEndpoint::Unix(session.home.join("run/berth.sock"));
        let client = berth_host::agent::AgentClient::connect(&endpoint, Duration::from_secs(10)).await.expect("connect");
        let mut times = Vec::with_capacity(ROUND_TRIPS);
        for _ in 0..ROUND_TRIPS {
            let started = Instant::now();
            client.version(Duration::from_secs(10)).await.expect("version");
            times.push(started.elapsed().as_secs_f64() * 1e6);
        }
        median(times)
    })
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut rows = Vec::new();
    for (i, transport) in ["vsock", "serial"].into_iter().enumerate() {
        let session =
            SessionHome::new(&format!("bench-transport-{transport}"), berth_tests::root().join("build/vm-image"), 1024).env("BERTH_TRANSPORT", transport);
        let (started, out, err) = session.berth(&["vm", "start"]);
        assert!(started, "berth vm start on {transport}: {out}{err}");
        import_busybox(&session);
        docker(&session, &["run", "-d", "--name", "sink", "bench/bb:1", "sleep", "3600"]);
        let port = 18_431 + u16::try_from(i).unwrap_or(0);
        let (mut rtt, mut up, mut down, mut fup, mut fdown) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            rtt.push(grpc_round_trip_us(&runtime, &session));
            up.push(api_upload(&session));
            down.push(api_download(&session));
            fup.push(forward_upload(&session, port));
            fdown.push(forward_download(&session, port));
        }
        docker(&session, &["rm", "-f", "sink"]);
        let (stopped, out, err) = session.berth(&["vm", "stop"]);
        assert!(stopped, "berth vm stop: {out}{err}");
        rows.push((transport, median(rtt), median(up), median(down), median(fup), median(fdown)));
    }
    println!("\n| transport ({runs} runs, medians) | gRPC round trip µs | Docker API in MiB/s | Docker API out MiB/s | port forward in MiB/s | port forward out MiB/s |");
    println!("|---|---|---|---|---|---|");
    for (name, rtt, up, down, fup, fdown) in &rows {
        println!("| {name} | {rtt:.0} | {up:.0} | {down:.0} | {fup:.0} | {fdown:.0} |");
    }
    if let [vsock, serial] = rows.as_slice() {
        println!(
            "\nserial / vsock: round trip {:.2}x the time; throughput {:.2}, {:.2}, {:.2}, {:.2}x vsock's (target: serial within 2x vsock)",
            serial.1 / vsock.1,
            serial.2 / vsock.2,
            serial.3 / vsock.3,
            serial.4 / vsock.4,
            serial.5 / vsock.5
        );
    }
}
