//! Half-close across vsock. A virtio-vsock connection cannot be half-closed reliably:
//! the host's side turns a `shutdown(SHUT_WR)` into a shutdown of both directions. The
//! Docker API needs half-close (`docker run -i` ends the container's stdin by closing
//! its side of the hijacked connection, then reads the rest of the output), so the
//! host-to-guest direction of a proxied Docker API connection carries frames: a
//! big-endian `u32` length and that many bytes; a length of 0 says "no more input".
//! The guest-to-host direction stays raw bytes, ended by closing the connection.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The most a frame may carry.
pub const MAX_FRAME: usize = 64 * 1024;

/// Host side: copies `from` into `to` as frames, then the end frame, and returns the
/// bytes copied. `to` stays open for the other direction.
pub async fn send_framed<R, W>(from: &mut R, to: &mut W) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut buf = vec![0u8; MAX_FRAME];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf).await?;
        // Length and data in one write: one vsock packet where it fits.
        let mut frame = Vec::with_capacity(4 + n);
        frame.extend_from_slice(&(n as u32).to_be_bytes());
        frame.extend_from_slice(&buf[..n]);
        to.write_all(&frame).await?;
        if n == 0 {
            to.flush().await?;
            return Ok(total);
        }
        total += n as u64;
    }
}

/// Guest side: reads frames from `from` and writes their bytes to `to`; at the end
/// frame (or when `from` ends) shuts `to` down, so its reader sees end of input.
pub async fn receive_framed<R, W>(from: &mut R, to: &mut W) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut buf = vec![0u8; MAX_FRAME];
    let mut total = 0u64;
    loop {
        let mut len = [0u8; 4];
        match from.read_exact(&mut len).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        let n = u32::from_be_bytes(len) as usize;
        if n == 0 {
            break;
        }
        if n > MAX_FRAME {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("a frame of {n} bytes is over the limit of {MAX_FRAME}")));
        }
        from.read_exact(&mut buf[..n]).await?;
        to.write_all(&buf[..n]).await?;
        total += n as u64;
    }
    to.shutdown().await?;
    Ok(total)
}

/// Runs both directions of a half-closing connection: the input may end first (the
/// output goes on); the output's end, or an input error, ends both. Returns the first
/// error, if any.
async fn join<I, O>(input: I, output: O) -> std::io::Result<()>
where
    I: std::future::Future<Output = std::io::Result<u64>>,
    O: std::future::Future<Output = std::io::Result<u64>>,
{
    tokio::pin!(input, output);
    let mut input_done = false;
    loop {
        tokio::select! {
            result = &mut input, if !input_done => {
                input_done = true;
                result?;
            }
            result = &mut output => return result.map(|_| ()),
        }
    }
}

/// The host's end of a half-closing connection: `client`'s input goes to `upstream`
/// as frames; `upstream`'s answer goes back raw, and its end closes `client`.
pub async fn host_pipe<C, U>(client: C, upstream: U) -> std::io::Result<()>
where
    C: AsyncRead + AsyncWrite,
    U: AsyncRead + AsyncWrite,
{
    let (mut client_in, mut client_out) = tokio::io::split(client);
    let (mut up_in, mut up_out) = tokio::io::split(upstream);
    join(send_framed(&mut client_in, &mut up_out), copy_and_close(&mut up_in, &mut client_out)).await
}

/// The guest's end: frames from `wire` go to `target` (the end frame shuts its write
/// side down); `target`'s answer goes back raw, and its end closes `wire`.
pub async fn guest_pipe<W, T>(wire: W, target: T) -> std::io::Result<()>
where
    W: AsyncRead + AsyncWrite,
    T: AsyncRead + AsyncWrite,
{
    let (mut wire_in, mut wire_out) = tokio::io::split(wire);
    let (mut from_target, mut to_target) = tokio::io::split(target);
    join(receive_framed(&mut wire_in, &mut to_target), copy_and_close(&mut from_target, &mut wire_out)).await
}

/// Copies until `from` ends, then shuts `to` down.
async fn copy_and_close<R, W>(from: &mut R, to: &mut W) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let copied = tokio::io::copy(from, to).await;
    let _ = to.shutdown().await;
    copied
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_carry_the_bytes_and_the_end_of_input() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (mut wire_host, mut wire_guest) = tokio::io::duplex(8192);
        let (mut inner_writer, mut inner_reader) = tokio::io::duplex(8192);
        let sent = data.clone();
        let host = tokio::spawn(async move {
            let mut source: &[u8] = &sent;
            send_framed(&mut source, &mut wire_host).await.expect("send")
        });
        let guest = tokio::spawn(async move { receive_framed(&mut wire_guest, &mut inner_writer).await.expect("receive") });
        let mut got = Vec::new();
        // read_to_end returns only at the end of input: the end frame arrived.
        inner_reader.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, data);
        assert_eq!(host.await.expect("host"), data.len() as u64);
        assert_eq!(guest.await.expect("guest"), data.len() as u64);
    }

    #[tokio::test]
    async fn an_oversized_frame_is_refused() {
        let mut wire: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        let mut sink = Vec::new();
        let err = receive_framed(&mut wire, &mut sink).await.expect_err("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }
}
