//! Push: each blob is skipped when the registry has it (HEAD), mounted from the
//! repository it came from when that is on the same registry, else uploaded (one PUT
//! for small blobs, PATCH chunks then PUT for big ones); then the manifest.

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::{Call, Credentials, Reference, RegistryClient, RegistryError};
use crate::content::{ContentStore, Digest};

/// Blobs up to this size go up in one request; bigger ones in chunks of this size.
pub const CHUNK: usize = 8 << 20;

/// How a blob got to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPush {
    AlreadyThere,
    Mounted,
    Uploaded,
}

impl RegistryClient {
    fn status_err(status: u16, what: &str, reference: &Reference) -> RegistryError {
        RegistryError::Status { status, what: what.to_owned(), reference: reference.to_string() }
    }

    fn location(&self, reference: &Reference, response: &reqwest::Response) -> Result<String, RegistryError> {
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Self::status_err(response.status().as_u16(), "upload without a Location", reference))?;
        if location.starts_with("http://") || location.starts_with("https://") {
            return Ok(location.to_owned());
        }
        let host = reference.api_host();
        Ok(format!("{}://{}{location}", self.config.scheme(host), self.config.connect_host(host)))
    }

    /// Puts one blob from the store into `reference`'s repository; `mount_from` is a
    /// repository on the same registry that has it.
    pub async fn push_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        store: &ContentStore,
        mount_from: Option<&str>,
        creds: Option<&Credentials>,
    ) -> Result<BlobPush, RegistryError> {
        let call = |method, url, body: Option<Bytes>, content_type| Call {
            method,
            reference,
            url,
            accept: None,
            body,
            content_type,
            creds,
            push: true,
            content_range: None,
        };
        let blob_url = self.url(reference, &format!("blobs/{digest}"));
        let head = self.send(call(reqwest::Method::HEAD, &blob_url, None, None)).await?;
        if head.status().as_u16() == 200 {
            return Ok(BlobPush::AlreadyThere);
        }
        let mut start_url = self.url(reference, "blobs/uploads/");
        if let Some(from) = mount_from.filter(|f| *f != reference.repository) {
            start_url.push_str(&format!("?mount={digest}&from={from}"));
        }
        let start = self.send(call(reqwest::Method::POST, &start_url, Some(Bytes::new()), None)).await?;
        match start.status().as_u16() {
            201 => return Ok(BlobPush::Mounted),
            202 => {}
            status => return Err(Self::status_err(status, "starting an upload", reference)),
        }
        let mut location = self.location(reference, &start)?;
        let size = store.size(digest)?;
        let mut file =
            tokio::fs::File::open(store.path(digest)).await.map_err(|source| crate::content::ContentError::Io { what: format!("open {digest}"), source })?;
        let read_err = |source| crate::content::ContentError::Io { what: format!("read {digest}"), source };
        let with_digest = |loc: &str| format!("{loc}{}digest={digest}", if loc.contains('?') { '&' } else { '?' });
        if size as usize <= CHUNK {
            let mut data = Vec::with_capacity(size as usize);
            file.read_to_end(&mut data).await.map_err(read_err)?;
            let url = with_digest(&location);
            let put = self.send(call(reqwest::Method::PUT, &url, Some(Bytes::from(data)), Some("application/octet-stream"))).await?;
            if put.status().as_u16() != 201 {
                return Err(Self::status_err(put.status().as_u16(), "uploading a blob", reference));
            }
            return Ok(BlobPush::Uploaded);
        }
        let mut offset: u64 = 0;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let mut filled = 0;
            while filled < CHUNK {
                let n = file.read(&mut buf[filled..]).await.map_err(read_err)?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            let chunk = Bytes::copy_from_slice(&buf[..filled]);
            let range = format!("{}-{}", offset, offset + filled as u64 - 1);
            let next = {
                let current = location.clone();
                let mut request = Call {
                    method: reqwest::Method::PATCH,
                    reference,
                    url: &current,
                    accept: None,
                    body: Some(chunk),
                    content_type: Some("application/octet-stream"),
                    creds,
                    push: true,
                    content_range: None,
                };
                request.content_range = Some(range);
                let patch = self.send(request).await?;
                if patch.status().as_u16() != 202 {
                    return Err(Self::status_err(patch.status().as_u16(), "uploading a chunk", reference));
                }
                self.location(reference, &patch)?
            };
            location = next;
            offset += filled as u64;
        }
        let url = with_digest(&location);
        let put = self.send(call(reqwest::Method::PUT, &url, Some(Bytes::new()), Some("application/octet-stream"))).await?;
        if put.status().as_u16() != 201 {
            return Err(Self::status_err(put.status().as_u16(), "finishing an upload", reference));
        }
        Ok(BlobPush::Uploaded)
    }

    /// Puts a manifest under `reference`'s tag (or digest).
    pub async fn push_manifest(&self, reference: &Reference, media_type: &str, bytes: Vec<u8>, creds: Option<&Credentials>) -> Result<(), RegistryError> {
        let url = self.url(reference, &format!("manifests/{}", reference.lookup()));
        let put = self
            .send(Call {
                method: reqwest::Method::PUT,
                reference,
                url: &url,
                accept: None,
                body: Some(Bytes::from(bytes)),
                content_type: Some(media_type),
                creds,
                push: true,
                content_range: None,
            })
            .await?;
        if put.status().as_u16() != 201 {
            return Err(Self::status_err(put.status().as_u16(), "putting the manifest", reference));
        }
        Ok(())
    }
}
