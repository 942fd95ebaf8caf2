//! `netprobe udp-echo PORT`: answers every datagram with "echo:" and its bytes.
//! `netprobe udp-ask HOST:PORT TEXT`: sends TEXT, prints the answer (2 s timeout).
//! `netprobe tcp-sink PORT`: accepts connections one after another and reads each to
//! its end (the network benchmark's server).
//! `netprobe tcp-send HOST:PORT MIB`: writes MIB mebibytes and waits for the server to
//! have read them all.
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
        _ => Err("usage: netprobe udp-echo PORT | udp-ask HOST:PORT TEXT | tcp-sink PORT | tcp-send HOST:PORT MIB".to_owned()),
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
