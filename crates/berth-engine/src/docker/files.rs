//! Request and response bodies that pass through scratch files: archives in and out.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};

use super::{full, ApiError, Body, Reply};

pub use crate::image::Scratch;

/// A file's bytes as a streamed response (the file may already be unlinked).
pub fn file_reply(file: std::fs::File, content_type: &str, extra: Option<(&str, String)>) -> Reply {
    let mut file = tokio::fs::File::from_std(file);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, std::io::Error>>(4);
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match file.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send(Ok(hyper::body::Frame::data(Bytes::copy_from_slice(&buf[..n])))).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    break;
                }
            }
        }
    });
    let body: Body = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)).boxed();
    let mut builder = Response::builder().header("Content-Type", content_type);
    if let Some((name, value)) = extra {
        builder = builder.header(name, value);
    }
    Ok(builder.body(body).unwrap_or_else(|_| Response::new(full(""))))
}

/// Streams the request body into `path`.
pub async fn body_to_file(request: Request<Incoming>, path: &std::path::Path) -> Result<(), ApiError> {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::create(path).await.map_err(|e| ApiError::internal(format!("cannot write {}: {e}", path.display())))?;
    let mut body = request.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("cannot read the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            file.write_all(&data).await.map_err(|e| ApiError::internal(format!("cannot write {}: {e}", path.display())))?;
        }
    }
    file.flush().await.map_err(|e| ApiError::internal(e.to_string()))
}
