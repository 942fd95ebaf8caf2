//! `netprobe udp-echo PORT`: answers every datagram with "echo:" and its bytes.
//! `netprobe udp-ask HOST:PORT TEXT`: sends TEXT, prints the answer (2 s timeout).
//! `netprobe tcp-sink PORT`: accepts connections one after another and reads each to
//! its end (the network benchmark's server).
//! `netprobe tcp-send HOST:PORT MIB`: writes MIB mebibytes and waits for the server to
//! have read them all.
//! `netprobe tcp-source PORT MIB`: accepts connections one after another and writes MIB
//! mebibytes to each, a mebibyte at a time, then closes it (the transport benchmark's
//! download).
//! `netprobe dns-answer ADDR:PORT IPV4`: a DNS server that answers every A question
//! with IPV4 (the upstream resolver of the DNS forwarding test).
//! `netprobe unix-get SOCKET PATH`: an HTTP/1.0 GET of PATH on a unix socket (the
//! Docker API's, mounted into a container); prints the whole answer.
//! `netprobe syscall socket-vsock|io-uring|ptrace|process-vm-readv`: makes that call
//! and prints `ok` or `errno N` (the seccomp tests: EPERM is the profile's answer).
//! Built static (musl) so it runs inside the tests' busybox images.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["udp-echo", port] => udp_echo(port),
        ["udp-ask", to, text] => udp_ask(to, text),
        ["tcp-sink", port] => tcp_sink(port),
        ["tcp-send", to, mib] => tcp_send(to, mib),
        ["tcp-source", port, mib] => tcp_source(port, mib),
        ["dns-answer", at, ip] => dns_answer(at, ip),
        ["unix-get", socket, path] => unix_get(socket, path),
        ["syscall", which] => syscall(which),
        _ => Err("usage: netprobe udp-echo PORT | udp-ask HOST:PORT TEXT | tcp-sink PORT | tcp-send HOST:PORT MIB | tcp-source PORT MIB | dns-answer ADDR:PORT IPV4 | unix-get SOCKET PATH | syscall socket-vsock|io-uring|ptrace|process-vm-readv".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netprobe: {e}");
            ExitCode::FAILURE
        }
    }
}

fn udp_echo(port: &str) -> Result<(), String> {
    let socket = UdpSocket::bind(format!("0.0.0.0:{port}")).map_err(|e| format!("bind {port}: {e}"))?;
    println!("listening on udp {port}");
    let mut buf = [0u8; 2048];
    loop {
        let (n, from) = socket.recv_from(&mut buf).map_err(|e| format!("recv: {e}"))?;
        let mut reply = b"echo:".to_vec();
        reply.extend_from_slice(&buf[..n]);
        socket.send_to(&reply, from).map_err(|e| format!("send: {e}"))?;
    }
}

fn udp_ask(to: &str, text: &str) -> Result<(), String> {
    let socket = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("bind: {e}"))?;
    socket.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    socket.send_to(text.as_bytes(), to).map_err(|e| format!("send to {to}: {e}"))?;
    let mut buf = [0u8; 2048];
    let (n, _) = socket.recv_from(&mut buf).map_err(|e| format!("no answer from {to}: {e}"))?;
    println!("{}", String::from_utf8_lossy(&buf[..n]));
    Ok(())
}

fn tcp_sink(port: &str) -> Result<(), String> {
    let listener = TcpListener::bind(format!("0.0.0.0:{port}")).map_err(|e| format!("bind {port}: {e}"))?;
    println!("listening on tcp {port}");
    let mut buf = vec![0u8; 256 * 1024];
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        // Closing tells the sender every byte arrived.
        drop(stream);
    }
    Ok(())
}

fn tcp_source(port: &str, mib: &str) -> Result<(), String> {
    let mib: usize = mib.parse().map_err(|_| format!("bad size {mib:?}"))?;
    let listener = TcpListener::bind(format!("0.0.0.0:{port}")).map_err(|e| format!("bind {port}: {e}"))?;
    println!("listening on tcp {port}");
    let block = vec![0u8; 1024 * 1024];
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        for _ in 0..mib {
            if stream.write_all(&block).is_err() {
                break;
            }
        }
        drop(stream);
    }
    Ok(())
}

fn tcp_send(to: &str, mib: &str) -> Result<(), String> {
    let mib: usize = mib.parse().map_err(|_| format!("bad size {mib:?}"))?;
    let mut stream = TcpStream::connect(to).map_err(|e| format!("connect {to}: {e}"))?;
    let block = vec![0u8; 1024 * 1024];
    for _ in 0..mib {
        stream.write_all(&block).map_err(|e| format!("send: {e}"))?;
    }
    stream.shutdown(Shutdown::Write).map_err(|e| format!("shutdown: {e}"))?;
    let mut rest = [0u8; 16];
    let _ = stream.read(&mut rest);
    Ok(())
}

fn unix_get(socket: &str, path: &str) -> Result<(), String> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(|e| format!("connect {socket}: {e}"))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").map_err(|e| format!("send: {e}"))?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| format!("read: {e}"))?;
    print!("{answer}");
    Ok(())
}

/// Answers each query with its question and, for A questions, one A record.
fn dns_answer(at: &str, ip: &str) -> Result<(), String> {
    let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| format!("bad address {ip:?}"))?;
    let socket = UdpSocket::bind(at).map_err(|e| format!("bind {at}: {e}"))?;
    println!("answering on {at}");
    let mut buf = [0u8; 512];
    loop {
        let (n, from) = socket.recv_from(&mut buf).map_err(|e| format!("recv: {e}"))?;
        if n < 12 {
            continue;
        }
        // The question: labels up to a zero byte, then type and class.
        let mut end = 12;
        while end < n && buf[end] != 0 {
            end += usize::from(buf[end]) + 1;
        }
        if end + 5 > n {
            continue;
        }
        let qtype = u16::from_be_bytes([buf[end + 1], buf[end + 2]]);
        let question = &buf[12..end + 5];
        let mut reply = Vec::with_capacity(n + 16);
        reply.extend_from_slice(&buf[..2]);
        reply.extend_from_slice(&[0x81, 0x80, 0, 1, 0, u8::from(qtype == 1), 0, 0, 0, 0]);
        reply.extend_from_slice(question);
        if qtype == 1 {
            // A pointer to the question's name, type A, class IN, TTL 60, 4 bytes.
            reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
            reply.extend_from_slice(&ip.octets());
        }
        let _ = socket.send_to(&reply, from);
    }
}

fn syscall(which: &str) -> Result<(), String> {
    // Every call below passes plain integers or pointers to live locals of the right
    // size; the results are only inspected, never trusted as memory.
    let result: libc::c_long = match which {
        // SAFETY: plain integers.
        "socket-vsock" => unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0) }.into(),
        "io-uring" => {
            let mut params = [0u8; 120];
            // SAFETY: params is a live local as large as io_uring_params.
            unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, params.as_mut_ptr()) }
        }
        // An invalid request: the kernel answers EIO or ESRCH, the filter EPERM.
        // SAFETY: plain integers; no address is dereferenced for an invalid pid.
        "ptrace" => unsafe { libc::syscall(libc::SYS_ptrace, -1i64, 0, 0, 0) },
        "process-vm-readv" => {
            let source = [7u8; 8];
            let mut target = [0u8; 8];
            let local = libc::iovec { iov_base: target.as_mut_ptr().cast(), iov_len: target.len() };
            let remote = libc::iovec { iov_base: source.as_ptr() as *mut libc::c_void, iov_len: source.len() };
            // SAFETY: both iovecs point to live locals of their stated lengths.
            unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) as libc::c_long }
        }
        other => return Err(format!("unknown syscall probe {other:?}")),
    };
    if result < 0 {
        println!("errno {}", std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    } else {
        println!("ok");
    }
    Ok(())
}
