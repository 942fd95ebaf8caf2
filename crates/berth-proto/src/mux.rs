//! Many connections over one byte stream: the serial transport, for hosts whose QEMU
//! offers no vsock (macOS, Windows). A virtio-serial port carries yamux; the host opens
//! one stream per connection and names the agent's port on it as vhost-device-vsock's
//! hybrid socket does ("CONNECT <port>\n", answered "OK <port>\n"). Half-close is
//! yamux's own FIN.
//!
//! A port outlives the processes at its two ends: what an earlier agent or session left
//! in it is still there. So before yamux starts the two ends agree on a nonce: the host
//! says "hello N" (again every second until answered), the guest answers "ok N" once,
//! the host says "start N" and both begin yamux. Each skips every other byte until
//! then, so either end that restarts is back in step after one exchange.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio_yamux::{Control, Session, StreamHandle};

/// The virtio-serial port's name (QEMU's `virtserialport,name=`), as the guest finds it
/// in `/sys/class/virtio-ports/*/name`.
pub const SERIAL_PORT_NAME: &str = "org.berth.mux";

// Each is sent after a newline too, so bytes left without one do not hide it.
const HELLO: &str = "BERTH-MUX hello ";
const WELCOME: &str = "BERTH-MUX ok ";
const START: &str = "BERTH-MUX start ";
/// yamux's GoAway frame (version 0, type 3, no flags, stream 0, code 0: normal).
const GO_AWAY: [u8; 12] = [0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
/// A stream whose port has not answered in this long means the guest is not reading
/// the mux any more (its agent restarted): the host starts over with a hello.
const STUCK_AFTER: Duration = Duration::from_secs(15);

fn config() -> tokio_yamux::Config {
    tokio_yamux::Config {
        // A stream's window: large enough that one transfer is not held back by the
        // round trip of window updates through the port.
        max_stream_window_size: 4 * 1024 * 1024,
        // The port is never idle-closed by anything between the ends.
        enable_keepalive: false,
        connection_write_timeout: Duration::from_secs(60),
        ..tokio_yamux::Config::default()
    }
}

/// Lines out of a byte stream read byte by byte (so nothing after a line is taken):
/// a line longer than ours can be is kept as a line no prefix matches.
#[derive(Default)]
struct Lines {
    line: Vec<u8>,
    too_long: bool,
}

impl Lines {
    fn push(&mut self, byte: u8) -> Option<String> {
        if byte == b'\n' {
            let line = (!self.too_long).then(|| String::from_utf8_lossy(&self.line).into_owned());
            self.line.clear();
            self.too_long = false;
            return line;
        }
        if self.line.len() < 128 {
            self.line.push(byte);
        } else {
            self.too_long = true;
        }
        None
    }

    async fn next<R: AsyncRead + Unpin>(&mut self, reader: &mut R) -> io::Result<String> {
        let mut byte = [0u8; 1];
        loop {
            if reader.read(&mut byte).await? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the serial port closed"));
            }
            if let Some(line) = self.push(byte[0]) {
                return Ok(line);
            }
        }
    }
}

/// The client's side of a stream's start: names the port, waits for "OK".
pub async fn connect_handshake<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, port: u32) -> io::Result<()> {
    stream.write_all(format!("CONNECT {port}\n").as_bytes()).await?;
    stream.flush().await?;
    let mut line = Vec::with_capacity(16);
    let mut byte = [0u8; 1];
    loop {
        if stream.read(&mut byte).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("nothing serves port {port} in the VM (the stream closed during the handshake)"),
            ));
        }
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
        if line.len() > 64 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "the port's handshake reply is too long"));
        }
    }
    if line.starts_with(b"OK ") {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::ConnectionRefused, format!("port {port} refused: {:?}", String::from_utf8_lossy(&line))))
    }
}

/// The server's side: reads "CONNECT <port>\n" and answers it when `known(port)`.
async fn accept_handshake<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, known: impl Fn(u32) -> bool) -> io::Result<u32> {
    let mut line = Vec::with_capacity(16);
    let mut byte = [0u8; 1];
    loop {
        if stream.read(&mut byte).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the stream closed before naming a port"));
        }
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
        if line.len() > 64 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "the stream's CONNECT line is too long"));
        }
    }
    let text = String::from_utf8_lossy(&line);
    let port = text
        .strip_prefix("CONNECT ")
        .and_then(|p| p.trim().parse::<u32>().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("not a CONNECT line: {text:?}")))?;
    if !known(port) {
        let _ = stream.shutdown().await;
        return Err(io::Error::new(io::ErrorKind::ConnectionRefused, format!("no service on port {port}")));
    }
    stream.write_all(format!("OK {port}\n").as_bytes()).await?;
    stream.flush().await?;
    Ok(port)
}

/// The guest's side of one run of the port: waits for the host's hello, answers it and
/// hands every stream the host opens to `on_stream` with the port it names (only `ports`
/// are answered). Returns when the host goes away (the port reads end of file).
pub async fn serve<T>(mut port_io: T, ports: Vec<u32>, on_stream: Arc<dyn Fn(u32, StreamHandle) + Send + Sync>) -> io::Result<()>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // A host still in a session with an earlier agent reads this as yamux's GoAway and
    // starts over with a hello; a host waiting for its welcome skips it. (Not being
    // heard, with no host on the port, is no error.)
    let _ = port_io.write_all(&GO_AWAY).await;
    let _ = port_io.flush().await;
    let mut lines = Lines::default();
    let mut answered: Option<String> = None;
    loop {
        let line = lines.next(&mut port_io).await?;
        if let Some(nonce) = line.strip_prefix(HELLO) {
            // A hello said again while the host waited is answered once.
            if answered.as_deref() != Some(nonce) {
                port_io.write_all(format!("\n{WELCOME}{nonce}\n").as_bytes()).await?;
                port_io.flush().await?;
                answered = Some(nonce.to_owned());
            }
        } else if line.strip_prefix(START).is_some_and(|nonce| answered.as_deref() == Some(nonce)) {
            break;
        }
    }
    tracing::info!("the host opened the serial mux");
    let mut session = Session::new_server(port_io, config());
    let ports = Arc::new(ports);
    while let Some(next) = session.next().await {
        match next {
            Ok(mut stream) => {
                let (ports, on_stream) = (ports.clone(), on_stream.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), accept_handshake(&mut stream, |p| ports.contains(&p))).await {
                        Ok(Ok(port)) => on_stream(port, stream),
                        Ok(Err(e)) => tracing::debug!(error = %e, "a mux stream was refused"),
                        Err(_) => tracing::debug!("a mux stream named no port in time"),
                    }
                });
            }
            Err(e) => return Err(io::Error::other(format!("the serial mux failed: {e}"))),
        }
    }
    Ok(())
}

/// The host's side: a yamux client over the port, kept connected by a task of its own
/// (reconnected with a new hello when the port closes or a stream goes unanswered).
/// Clones share the connection; the task ends with the last clone.
#[derive(Clone)]
pub struct MuxClient {
    inner: Arc<ClientInner>,
}

/// Where the host's end of the mux is.
#[derive(Clone)]
enum Link {
    /// Opening the port (QEMU starting), or the last attempt failed with this.
    Opening(Option<String>),
    /// The port is open; the guest has not answered the hello yet (it boots).
    Greeting,
    /// Streams can be opened.
    Up(u64, Control),
}

struct ClientInner {
    control: watch::Receiver<Link>,
    reset: mpsc::UnboundedSender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for MuxClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let link = match &*self.inner.control.borrow() {
            Link::Opening(None) => "opening".to_owned(),
            Link::Opening(Some(e)) => format!("cannot open: {e}"),
            Link::Greeting => "waiting for the guest".to_owned(),
            Link::Up(generation, _) => format!("up ({generation})"),
        };
        f.debug_struct("MuxClient").field("link", &link).finish()
    }
}

impl PartialEq for MuxClient {
    fn eq(&self, other: &MuxClient) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for MuxClient {}

/// A [`MuxClient`] that does not keep the mux alive.
#[derive(Clone)]
pub struct WeakMuxClient(std::sync::Weak<ClientInner>);

impl WeakMuxClient {
    pub fn upgrade(&self) -> Option<MuxClient> {
        self.0.upgrade().map(|inner| MuxClient { inner })
    }
}

impl std::fmt::Debug for WeakMuxClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WeakMuxClient")
    }
}

impl MuxClient {
    pub fn downgrade(&self) -> WeakMuxClient {
        WeakMuxClient(Arc::downgrade(&self.inner))
    }

    /// Starts keeping a mux over what `connect` opens (the port's host end: QEMU's unix
    /// socket, or a named pipe on Windows).
    pub fn start<F, Fut, T>(connect: F) -> MuxClient
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = io::Result<T>> + Send + 'static,
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (control_tx, control) = watch::channel(Link::Opening(None));
        let (reset, reset_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(keep_connected(connect, control_tx, reset_rx));
        MuxClient { inner: Arc::new(ClientInner { control, reset, task }) }
    }

    /// Whether the guest has answered the current hello.
    pub fn is_connected(&self) -> bool {
        matches!(*self.inner.control.borrow(), Link::Up(..))
    }

    /// A stream to the agent's `port`, within `timeout`. Fails at once while the port
    /// cannot be opened (QEMU is gone); waits while the guest has not answered yet.
    pub async fn open(&self, port: u32, timeout: Duration) -> io::Result<StreamHandle> {
        let deadline = tokio::time::Instant::now() + timeout;
        let timed_out = |what: &str| io::Error::new(io::ErrorKind::TimedOut, format!("the VM's serial mux {what} within {timeout:?}"));
        let mut link = self.inner.control.clone();
        let settled = match tokio::time::timeout_at(deadline, link.wait_for(|l| matches!(l, Link::Up(..) | Link::Opening(Some(_))))).await {
            Ok(Ok(current)) => current.clone(),
            Ok(Err(_)) => return Err(io::Error::new(io::ErrorKind::NotConnected, "the VM's serial mux is closed")),
            Err(_) => return Err(timed_out("was not connected")),
        };
        let (generation, mut control) = match settled {
            Link::Up(generation, control) => (generation, control),
            Link::Opening(Some(e)) => return Err(io::Error::new(io::ErrorKind::NotConnected, format!("cannot open the VM's serial port: {e}"))),
            Link::Opening(None) | Link::Greeting => return Err(timed_out("was not connected")),
        };
        let started = Instant::now();
        let mut stream = match tokio::time::timeout_at(deadline, control.open_stream()).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                let _ = self.inner.reset.send(generation);
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, format!("cannot open a stream on the VM's serial mux: {e}")));
            }
            Err(_) => return Err(timed_out("opened no stream")),
        };
        match tokio::time::timeout_at(deadline, connect_handshake(&mut stream, port)).await {
            Ok(Ok(())) => Ok(stream),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                if started.elapsed() >= STUCK_AFTER {
                    tracing::warn!(port, "the VM's serial mux answers no more: connecting it again");
                    let _ = self.inner.reset.send(generation);
                }
                Err(timed_out(&format!("got no answer from port {port}")))
            }
        }
    }
}

async fn keep_connected<F, Fut, T>(connect: F, control: watch::Sender<Link>, mut reset: mpsc::UnboundedReceiver<u64>)
where
    F: Fn() -> Fut,
    Fut: Future<Output = io::Result<T>>,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut generation = 0u64;
    loop {
        let port_io = match connect().await {
            Ok(io) => io,
            Err(e) => {
                tracing::debug!(error = %e, "cannot open the VM's serial port yet");
                let _ = control.send(Link::Opening(Some(e.to_string())));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = control.send(Link::Greeting);
        generation += 1;
        let nonce = format!(
            "{}-{generation}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
        );
        let (mut reader, mut writer) = tokio::io::split(port_io);
        let hello = async {
            let mut lines = Lines::default();
            let mut again = tokio::time::interval(Duration::from_secs(1));
            let mut byte = [0u8; 1];
            loop {
                tokio::select! {
                    _ = again.tick() => {
                        writer.write_all(format!("\n{HELLO}{nonce}\n").as_bytes()).await?;
                        writer.flush().await?;
                    }
                    read = reader.read(&mut byte) => {
                        if read? == 0 {
                            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the serial port closed"));
                        }
                        // Answers to an earlier hello are skipped with everything else.
                        if lines.push(byte[0]).is_some_and(|line| line.strip_prefix(WELCOME) == Some(nonce.as_str())) {
                            break;
                        }
                    }
                }
            }
            writer.write_all(format!("\n{START}{nonce}\n").as_bytes()).await?;
            writer.flush().await?;
            io::Result::Ok(())
        };
        if let Err(e) = hello.await {
            tracing::debug!(error = %e, "the VM's serial port closed before the guest answered");
            let _ = control.send(Link::Opening(Some(e.to_string())));
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let port_io = reader.unsplit(writer);
        let mut session = Session::new_client(port_io, config());
        let _ = control.send(Link::Up(generation, session.control()));
        loop {
            tokio::select! {
                next = session.next() => match next {
                    // The guest opens no streams.
                    Some(Ok(stream)) => drop(stream),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "the VM's serial mux failed");
                        break;
                    }
                    None => break,
                },
                asked = reset.recv() => match asked {
                    Some(g) if g == generation => break,
                    Some(_) => {}
                    None => return,
                },
            }
        }
        let _ = control.send(Link::Opening(None));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A guest serving an echo on port 7 and a one-way sink on port 8.
    fn guest_on<T: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: T) -> impl Future<Output = io::Result<()>> {
        serve(
            io,
            vec![7, 8],
            Arc::new(|port, stream| {
                tokio::spawn(async move {
                    let (mut r, mut w) = tokio::io::split(stream);
                    if port == 7 {
                        let _ = tokio::io::copy(&mut r, &mut w).await;
                        let _ = w.shutdown().await;
                    } else {
                        let mut all = Vec::new();
                        let _ = r.read_to_end(&mut all).await;
                        let _ = w.write_all(format!("{} bytes", all.len()).as_bytes()).await;
                        let _ = w.shutdown().await;
                    }
                });
            }),
        )
    }

    fn guest(io: tokio::io::DuplexStream) -> tokio::task::JoinHandle<io::Result<()>> {
        tokio::spawn(guest_on(io))
    }

    #[tokio::test]
    async fn streams_echo_half_close_and_an_unknown_port_is_refused() {
        let (host_end, guest_end) = tokio::io::duplex(64 * 1024);
        let guest = guest(guest_end);
        let host_end = std::sync::Mutex::new(Some(host_end));
        let client = MuxClient::start(move || {
            let io = host_end.lock().expect("lock").take();
            async move { io.ok_or_else(|| io::Error::other("one connection in this test")) }
        });
        let mut echo = client.open(7, Duration::from_secs(5)).await.expect("open 7");
        echo.write_all(b"hello").await.expect("write");
        let mut back = [0u8; 5];
        echo.read_exact(&mut back).await.expect("echo");
        assert_eq!(&back, b"hello");
        // Half-close: the sink answers after it read everything.
        let mut sink = client.open(8, Duration::from_secs(5)).await.expect("open 8");
        sink.write_all(&vec![1u8; 3 * 1024 * 1024]).await.expect("write 3 MiB");
        sink.shutdown().await.expect("half-close");
        let mut answer = String::new();
        sink.read_to_string(&mut answer).await.expect("answer");
        assert_eq!(answer, "3145728 bytes");
        let refused = client.open(9, Duration::from_secs(5)).await.expect_err("port 9 has nothing");
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused, "{refused}");
        drop((echo, sink, client));
        let _ = tokio::time::timeout(Duration::from_secs(5), guest).await;
    }

    #[tokio::test]
    async fn a_guest_skips_what_an_earlier_session_left_in_the_port() {
        let (mut host_end, guest_end) = tokio::io::duplex(64 * 1024);
        // Stale bytes: half a yamux frame, a line, a long line, an old hello and start.
        host_end.write_all(b"\x00\x01\x00\x00garbage\n").await.expect("write");
        host_end.write_all(&[b'x'; 300]).await.expect("write");
        host_end.write_all(b"BERTH-MUX hello old\nBERTH-MUX start old\n").await.expect("write");
        // The old start begins a session that the new hello breaks; the guest's next run
        // (an agent loops) takes the hello said again.
        let guest_end = Arc::new(tokio::sync::Mutex::new(guest_end));
        let guest_task = {
            let guest_end = guest_end.clone();
            tokio::spawn(async move {
                loop {
                    let io = Shared(guest_end.clone());
                    let _ = guest_on(io).await;
                }
            })
        };
        let host_end = std::sync::Mutex::new(Some(host_end));
        let client = MuxClient::start(move || {
            let io = host_end.lock().expect("lock").take();
            async move { io.ok_or_else(|| io::Error::other("one connection in this test")) }
        });
        let mut echo = client.open(7, Duration::from_secs(10)).await.expect("open after stale bytes");
        echo.write_all(b"again").await.expect("write");
        let mut back = [0u8; 5];
        echo.read_exact(&mut back).await.expect("echo");
        assert_eq!(&back, b"again");
        guest_task.abort();
    }

    /// One guest end shared by the runs of a looping guest.
    struct Shared(Arc<tokio::sync::Mutex<tokio::io::DuplexStream>>);

    impl AsyncRead for Shared {
        fn poll_read(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> std::task::Poll<io::Result<()>> {
            match self.0.try_lock() {
                Ok(mut io) => std::pin::Pin::new(&mut *io).poll_read(cx, buf),
                Err(_) => std::task::Poll::Ready(Err(io::Error::other("busy"))),
            }
        }
    }

    impl AsyncWrite for Shared {
        fn poll_write(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &[u8]) -> std::task::Poll<io::Result<usize>> {
            match self.0.try_lock() {
                Ok(mut io) => std::pin::Pin::new(&mut *io).poll_write(cx, buf),
                Err(_) => std::task::Poll::Ready(Err(io::Error::other("busy"))),
            }
        }

        fn poll_flush(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn the_host_waits_for_its_own_welcome() {
        let (host_end, mut guest_end) = tokio::io::duplex(64 * 1024);
        let host_end = std::sync::Mutex::new(Some(host_end));
        let client = MuxClient::start(move || {
            let io = host_end.lock().expect("lock").take();
            async move { io.ok_or_else(|| io::Error::other("one connection in this test")) }
        });
        let mut lines = Lines::default();
        let nonce = loop {
            if let Some(nonce) = lines.next(&mut guest_end).await.expect("hello").strip_prefix(HELLO) {
                break nonce.to_owned();
            }
        };
        // Bytes an earlier agent left, and a welcome to another hello, come first.
        guest_end.write_all(b"\x00\x02noise\nBERTH-MUX ok someone-else\n").await.expect("stale");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!client.is_connected());
        guest_end.write_all(format!("{WELCOME}{nonce}\n").as_bytes()).await.expect("welcome");
        // The host says start with its nonce, after any hellos it said again (each
        // control line on a line of its own: after a newline).
        loop {
            let line = lines.next(&mut guest_end).await.expect("start");
            if line.is_empty() {
                continue;
            }
            if line.starts_with(START) {
                assert_eq!(line, format!("{START}{nonce}"));
                break;
            }
            assert_eq!(line, format!("{HELLO}{nonce}"));
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while !client.is_connected() {
            assert!(Instant::now() < deadline, "the host never took its welcome");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_port_that_cannot_be_opened_fails_a_stream_at_once() {
        let client = MuxClient::start(|| async { Err::<tokio::io::DuplexStream, _>(io::Error::new(io::ErrorKind::NotFound, "no such socket")) });
        let started = Instant::now();
        let err = client.open(7, Duration::from_secs(20)).await.expect_err("nothing to open");
        assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");
        assert!(err.to_string().contains("no such socket"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5), "waited {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_restarted_agent_is_reached_again() {
        let (host_end, guest_end) = tokio::io::duplex(64 * 1024);
        let guest_end = Arc::new(tokio::sync::Mutex::new(guest_end));
        let first = tokio::spawn(guest_on(Shared(guest_end.clone())));
        // The host reconnects to the same port, as to QEMU's socket.
        let host_end = Arc::new(tokio::sync::Mutex::new(host_end));
        let client = MuxClient::start(move || {
            let host_end = host_end.clone();
            async move { Ok(Shared(host_end)) }
        });
        let echo = |mut stream: StreamHandle| async move {
            stream.write_all(b"ping").await.expect("write");
            let mut back = [0u8; 4];
            stream.read_exact(&mut back).await.expect("echo");
            assert_eq!(&back, b"ping");
        };
        echo(client.open(7, Duration::from_secs(5)).await.expect("open before")).await;
        // The agent dies; init starts another on the same port.
        first.abort();
        let _ = first.await;
        let _second = tokio::spawn(guest_on(Shared(guest_end.clone())));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match client.open(7, Duration::from_secs(2)).await {
                Ok(stream) => break echo(stream).await,
                Err(e) => assert!(Instant::now() < deadline, "the new agent was never reached: {e}"),
            }
        }
    }
}
