//! `netprobe udp-echo PORT`: answers every datagram with "echo:" and its bytes.
//! `netprobe udp-ask HOST:PORT TEXT`: sends TEXT, prints the answer (2 s timeout).
//! Built static (musl) so it runs inside the tests' busybox images.

use std::net::UdpSocket;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["udp-echo", port] => udp_echo(port),
        ["udp-ask", to, text] => udp_ask(to, text),
        _ => Err("usage: netprobe udp-echo PORT | udp-ask HOST:PORT TEXT".to_owned()),
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
