//! `berth.v1.Images`: each call turns into an [`Images`] action.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use berth_proto::v1::{
    images_server::Images as ImagesApiTrait, pull_event, ArchiveChunk, CheckRequest, CheckResponse, HistoryEntry, HistoryResponse, Image, ImportChunk,
    InspectImageRequest, LayerDone, LayerProgress, ListImagesRequest, ListImagesResponse, LoadResponse, LoginRequest, LoginResponse, PruneImagesRequest,
    PruneImagesResponse, PullEvent, PullRequest, PullResolved, PushRequest, PushResponse, PushedBlob, RemoveImageRequest, RemoveImageResponse, SaveRequest,
    TagImageRequest,
};
use futures::Stream;
use tonic::{Request, Response, Status};

use crate::image::{ImageRecord, Images, PullProgress};

/// Layer progress goes out at most once per this many bytes (and at the end).
const PROGRESS_STEP: u64 = 512 << 10;

#[derive(Debug)]
pub struct ImagesApi {
    images: Arc<Images>,
    /// The builder runs its steps in containers.
    containers: Arc<crate::container::Containers>,
}

impl ImagesApi {
    pub fn new(images: Arc<Images>, containers: Arc<crate::container::Containers>) -> ImagesApi {
        ImagesApi { images, containers }
    }
}

pub fn to_proto(r: ImageRecord) -> Image {
    Image {
        id: r.id.to_string(),
        manifest_digest: r.manifest_digest.to_string(),
        tags: r.tags,
        repo_digests: r.repo_digests,
        size: r.size,
        created: r.created,
        architecture: r.architecture,
        os: r.os,
        layers: r.layers.iter().map(ToString::to_string).collect(),
        config_json: String::new(),
        signed_by: Vec::new(),
    }
}

impl ImagesApi {
    /// The image with the keys that verified it.
    fn with_signatures(&self, record: ImageRecord) -> Image {
        let signed_by = self.images.signed_by(&record).unwrap_or_default();
        Image { signed_by, ..to_proto(record) }
    }
}

fn creds_of(auth: Option<&berth_proto::v1::RegistryAuth>) -> Option<crate::registry::Credentials> {
    auth.filter(|a| !a.username.is_empty()).map(|a| crate::registry::Credentials { username: a.username.clone(), password: a.password.clone() })
}

fn status(kind: berth_proto::ErrorKind, message: String) -> Status {
    Status::new(kind.grpc_code(), message)
}

type PullStream = Pin<Box<dyn Stream<Item = Result<PullEvent, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ImagesApiTrait for ImagesApi {
    type PullStream = PullStream;

    async fn pull(&self, request: Request<PullRequest>) -> Result<Response<PullStream>, Status> {
        let request = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<PullEvent, Status>>(64);
        let images = self.images.clone();
        tokio::spawn(async move {
            let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel();
            let forward_tx = tx.clone();
            let forward = tokio::spawn(async move {
                let mut last_sent: HashMap<String, u64> = HashMap::new();
                while let Some(p) = prx.recv().await {
                    let event = match p {
                        PullProgress::Resolved { manifest, layers } => pull_event::Event::Resolved(PullResolved {
                            manifest_digest: manifest.to_string(),
                            layers: u32::try_from(layers).unwrap_or(u32::MAX),
                        }),
                        PullProgress::Layer { digest, done, total } => {
                            let key = digest.to_string();
                            let last = last_sent.get(&key).copied().unwrap_or(0);
                            if done < total && done.saturating_sub(last) < PROGRESS_STEP {
                                continue;
                            }
                            last_sent.insert(key.clone(), done);
                            pull_event::Event::Layer(LayerProgress { digest: key, done, total })
                        }
                        PullProgress::LayerDone { digest, cached } => pull_event::Event::LayerDone(LayerDone { digest: digest.to_string(), cached }),
                    };
                    if forward_tx.send(Ok(PullEvent { event: Some(event) })).await.is_err() {
                        return;
                    }
                }
            });
            let creds = request
                .auth
                .as_ref()
                .filter(|a| !a.username.is_empty())
                .map(|a| crate::registry::Credentials { username: a.username.clone(), password: a.password.clone() });
            // A client that goes away (a cancelled pull) stops the pull, as in dockerd:
            // what is downloaded stays for the next one, nothing half-made is recorded.
            let result = tokio::select! {
                result = images.pull_signed(&request.reference, Some(&request.platform), creds.as_ref(), ptx, request.require_signature) => result,
                () = tx.closed() => {
                    forward.abort();
                    tracing::info!(reference = %request.reference, "pull cancelled: its client went away");
                    return;
                }
            };
            let _ = forward.await;
            let message = match result {
                Ok(record) => {
                    let signed_by = images.signed_by(&record).unwrap_or_default();
                    Ok(PullEvent { event: Some(pull_event::Event::Done(Image { signed_by, ..to_proto(record) })) })
                }
                Err(err) => {
                    tracing::warn!(reference = %request.reference, error = %err, "pull failed");
                    Err(status(err.kind(), crate::error_chain(&err)))
                }
            };
            let _ = tx.send(message).await;
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn list(&self, _: Request<ListImagesRequest>) -> Result<Response<ListImagesResponse>, Status> {
        let mut images = self.images.catalog.list().map_err(|e| status(e.kind(), e.to_string()))?;
        // A build's unnamed steps are its cache, not images to list.
        let steps = self.images.catalog.build_steps().map_err(|e| status(e.kind(), e.to_string()))?;
        images.retain(|r| !r.tags.is_empty() || !steps.contains(&r.id.to_string()));
        Ok(Response::new(ListImagesResponse { images: images.into_iter().map(|r| self.with_signatures(r)).collect() }))
    }

    async fn inspect(&self, request: Request<InspectImageRequest>) -> Result<Response<Image>, Status> {
        let wanted = request.into_inner().reference;
        // The name as given, then normalised (`busybox` -> docker.io/library/busybox:latest).
        let found = self.images.resolve(&wanted).map_err(|e| status(e.kind(), e.to_string()))?;
        match found {
            Some(record) => {
                let config: serde_json::Value =
                    self.images.content.read(&record.id).await.ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
                let mut image = self.with_signatures(record);
                image.config_json = config.get("config").map(|c| c.to_string()).unwrap_or_else(|| "{}".to_owned());
                Ok(Response::new(image))
            }
            None => Err(status(berth_proto::ErrorKind::NotFound, format!("no such image: {wanted}"))),
        }
    }

    async fn tag(&self, request: Request<TagImageRequest>) -> Result<Response<Image>, Status> {
        let request = request.into_inner();
        let record = self.images.tag(&request.source, &request.target).map_err(|e| status(e.kind(), crate::error_chain(&e)))?;
        Ok(Response::new(to_proto(record)))
    }

    async fn remove(&self, request: Request<RemoveImageRequest>) -> Result<Response<RemoveImageResponse>, Status> {
        let request = request.into_inner();
        // The store announces what went.
        let removed = self.images.remove(&request.reference, request.force).map_err(|e| status(e.kind(), crate::error_chain(&e)))?;
        Ok(Response::new(RemoveImageResponse { untagged: removed.untagged, deleted: removed.deleted }))
    }

    async fn login(&self, request: Request<LoginRequest>) -> Result<Response<LoginResponse>, Status> {
        let request = request.into_inner();
        let auth = request.auth.unwrap_or_default();
        if auth.username.is_empty() {
            return Err(status(berth_proto::ErrorKind::InvalidArgument, "a user name is required".into()));
        }
        let creds = crate::registry::Credentials { username: auth.username, password: auth.password };
        self.images.registry.login(&request.registry, &creds).await.map_err(|e| status(e.kind(), crate::error_chain(&e)))?;
        Ok(Response::new(LoginResponse { status: "Login Succeeded".into() }))
    }

    async fn push(&self, request: Request<PushRequest>) -> Result<Response<PushResponse>, Status> {
        let request = request.into_inner();
        let creds = request
            .auth
            .as_ref()
            .filter(|a| !a.username.is_empty())
            .map(|a| crate::registry::Credentials { username: a.username.clone(), password: a.password.clone() });
        let pushed = self.images.push(&request.reference, creds.as_ref()).await.map_err(|e| status(e.kind(), crate::error_chain(&e)))?;
        Ok(Response::new(PushResponse {
            manifest_digest: pushed.manifest_digest.to_string(),
            manifest_size: pushed.manifest_size,
            blobs: pushed
                .blobs
                .into_iter()
                .map(|(digest, how)| PushedBlob {
                    digest: digest.to_string(),
                    outcome: match how {
                        crate::registry::BlobPush::AlreadyThere => "exists",
                        crate::registry::BlobPush::Mounted => "mounted",
                        crate::registry::BlobPush::Uploaded => "uploaded",
                    }
                    .to_owned(),
                })
                .collect(),
        }))
    }

    type SaveStream = Pin<Box<dyn Stream<Item = Result<ArchiveChunk, Status>> + Send + 'static>>;

    async fn save(&self, request: Request<SaveRequest>) -> Result<Response<Self::SaveStream>, Status> {
        let names = request.into_inner().references;
        let images = self.images.clone();
        let path = images.scratch_file("save");
        let (p, i) = (path.clone(), images.clone());
        let saved = tokio::task::spawn_blocking(move || i.save(&names, &p)).await.map_err(|e| Status::internal(e.to_string()))?;
        if let Err(err) = saved {
            let _ = std::fs::remove_file(&path);
            return Err(status(err.kind(), crate::error_chain(&err)));
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<ArchiveChunk, Status>>(8);
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            if let Ok(mut file) = tokio::fs::File::open(&path).await {
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    match file.read(&mut buf).await {
                        Ok(0) => break,
                        Ok(n) => {
                            if tx.send(Ok(ArchiveChunk { data: buf[..n].to_vec() })).await.is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                            break;
                        }
                    }
                }
            }
            let _ = tokio::fs::remove_file(&path).await;
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn load(&self, request: Request<tonic::Streaming<ArchiveChunk>>) -> Result<Response<LoadResponse>, Status> {
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        let mut stream = request.into_inner();
        let path = self.images.scratch_file("load");
        let result = async {
            let mut file = tokio::fs::File::create(&path).await.map_err(|e| Status::internal(e.to_string()))?;
            while let Some(chunk) = stream.next().await {
                file.write_all(&chunk?.data).await.map_err(|e| Status::internal(e.to_string()))?;
            }
            file.flush().await.map_err(|e| Status::internal(e.to_string()))?;
            self.images.load(&path).await.map_err(|e| status(e.kind(), crate::error_chain(&e)))
        }
        .await;
        let _ = tokio::fs::remove_file(&path).await;
        Ok(Response::new(LoadResponse { loaded: result? }))
    }

    type BuildStream = Pin<Box<dyn Stream<Item = Result<berth_proto::v1::BuildOutput, Status>> + Send + 'static>>;

    async fn build(&self, request: Request<tonic::Streaming<berth_proto::v1::BuildInput>>) -> Result<Response<Self::BuildStream>, Status> {
        use berth_proto::v1::{build_output, BuildOutput};
        use futures::StreamExt;
        let mut input = request.into_inner();
        let first = input.next().await.ok_or_else(|| Status::invalid_argument("a build starts with its spec"))??;
        let spec = first.spec.ok_or_else(|| Status::invalid_argument("a build starts with its spec"))?;
        let options = crate::build::BuildOptions {
            dockerfile: spec.dockerfile,
            tags: spec.tags,
            build_args: spec.build_args.into_iter().map(|(k, v)| (k, Some(v))).collect(),
            labels: spec.labels.into_iter().collect(),
            target: spec.target,
            no_cache: spec.no_cache,
            pull: spec.pull,
            network_mode: spec.network_mode,
            creds: spec.auth.filter(|a| !a.username.is_empty()).map(|a| crate::registry::Credentials { username: a.username, password: a.password }),
            registry_creds: spec
                .registry_auths
                .into_iter()
                .filter(|(_, a)| !a.username.is_empty())
                .map(|(key, a)| (key, crate::registry::Credentials { username: a.username, password: a.password }))
                .collect(),
        };
        let chunks = futures::stream::once(async move { Ok::<_, Status>(first.context) })
            .chain(input.map(|m| m.map(|m| m.context)))
            .map(|c| c.map_err(|s| std::io::Error::other(s.message().to_owned())));
        let workspace = crate::build::receive_context(&self.containers, chunks).await.map_err(|e| status(e.kind(), crate::error_chain(&e)))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<BuildOutput, Status>>(64);
        let containers = self.containers.clone();
        tokio::spawn(async move {
            let (etx, mut erx) = tokio::sync::mpsc::unbounded_channel();
            let forward_tx = tx.clone();
            let forward = tokio::spawn(async move {
                while let Some(event) = erx.recv().await {
                    let event = match event {
                        crate::build::BuildEvent::Line(text) => build_output::Event::Stream(text),
                        crate::build::BuildEvent::Built(id) => build_output::Event::ImageId(id),
                    };
                    if forward_tx.send(Ok(BuildOutput { event: Some(event) })).await.is_err() {
                        return;
                    }
                }
            });
            // A client that goes away stops the build.
            let result = tokio::select! {
                result = crate::build::build(&containers, &workspace, &options, &etx) => result,
                () = tx.closed() => {
                    forward.abort();
                    return;
                }
            };
            drop(etx);
            let _ = forward.await;
            if let Err(e) = result {
                let _ = tx.send(Err(status(e.kind(), crate::error_chain(&e)))).await;
            }
            // The answer ends before the workspace is removed.
            drop(tx);
            let _ = tokio::task::spawn_blocking(move || drop(workspace)).await;
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn prune_build_cache(&self, _: Request<berth_proto::v1::PruneBuildCacheRequest>) -> Result<Response<PruneImagesResponse>, Status> {
        let pruned = crate::build::prune_cache(&self.images).map_err(|e| status(e.kind(), crate::error_chain(&e)))?;
        Ok(Response::new(PruneImagesResponse { deleted: pruned.deleted, untagged: pruned.untagged, reclaimed_bytes: pruned.reclaimed_bytes }))
    }

    async fn search(&self, request: Request<berth_proto::v1::SearchImagesRequest>) -> Result<Response<berth_proto::v1::SearchImagesResponse>, Status> {
        use crate::registry::search::SearchFilters;
        let request = request.into_inner();
        let pairs: Vec<(String, String)> =
            request.filters.iter().map(|f| f.split_once('=').map_or((f.clone(), String::new()), |(k, v)| (k.to_owned(), v.to_owned()))).collect();
        let filters = SearchFilters::parse(&pairs).map_err(Status::invalid_argument)?;
        let limit = match request.limit {
            0 => 25,
            n @ 1..=100 => n as usize,
            n => return Err(Status::invalid_argument(format!("limit {n} is outside the range of [1, 100]"))),
        };
        let creds = request.auth.filter(|a| !a.username.is_empty()).map(|a| crate::registry::Credentials { username: a.username, password: a.password });
        let found = self.images.registry.search(&request.term, limit, creds.as_ref()).await.map_err(|e| status(e.kind(), crate::error_chain(&e)))?;
        let results = found
            .into_iter()
            .filter(|r| filters.matches(r))
            .map(|r| berth_proto::v1::SearchResult {
                name: r.name,
                description: r.description,
                star_count: r.star_count,
                is_official: r.is_official,
                is_automated: r.is_automated,
            })
            .collect();
        Ok(Response::new(berth_proto::v1::SearchImagesResponse { results }))
    }

    async fn signature_payload(
        &self,
        request: Request<berth_proto::v1::SignaturePayloadRequest>,
    ) -> Result<Response<berth_proto::v1::SignaturePayloadResponse>, Status> {
        let request = request.into_inner();
        let creds = creds_of(request.auth.as_ref());
        let to_sign = self.images.signature_payload(&request.reference, creds.as_ref()).await.map_err(|e| status(e.kind(), crate::error_chain(&e)))?;
        Ok(Response::new(berth_proto::v1::SignaturePayloadResponse {
            repository: to_sign.repository,
            digest: to_sign.digest.to_string(),
            payload: to_sign.payload,
        }))
    }

    async fn attach_signature(
        &self,
        request: Request<berth_proto::v1::AttachSignatureRequest>,
    ) -> Result<Response<berth_proto::v1::AttachSignatureResponse>, Status> {
        let request = request.into_inner();
        let creds = creds_of(request.auth.as_ref());
        let (tag, count) = self
            .images
            .attach_signature(&request.reference, &request.payload, &request.signature, creds.as_ref())
            .await
            .map_err(|e| status(e.kind(), crate::error_chain(&e)))?;
        Ok(Response::new(berth_proto::v1::AttachSignatureResponse { tag, signatures: u32::try_from(count).unwrap_or(u32::MAX) }))
    }

    async fn verify_signatures(
        &self,
        request: Request<berth_proto::v1::VerifySignaturesRequest>,
    ) -> Result<Response<berth_proto::v1::VerifySignaturesResponse>, Status> {
        let request = request.into_inner();
        let creds = creds_of(request.auth.as_ref());
        let invalid = |e: String| status(berth_proto::ErrorKind::InvalidArgument, e);
        let reference: crate::registry::Reference = request.reference.parse().map_err(|e: crate::registry::InvalidReference| invalid(e.to_string()))?;
        let keys = if request.keys.is_empty() {
            let policy = self.images.trust_policy().map_err(|e| status(e.kind(), crate::error_chain(&e)))?;
            match policy.requirement(&reference.name(), false) {
                berth_trust::policy::Requirement::Signed { keys, .. } => keys,
                berth_trust::policy::Requirement::None => {
                    return Err(invalid(format!("no key given, and the trust policy has no rule for {}", reference.name())));
                }
            }
        } else {
            request
                .keys
                .iter()
                .enumerate()
                .map(|(i, k)| berth_trust::PublicKey::from_pem(k).map_err(|e| invalid(format!("key {}: {e}", i + 1))))
                .collect::<Result<Vec<_>, _>>()?
        };
        let checked = self.images.check_signatures(&reference, None, &keys, creds.as_ref()).await.map_err(|e| status(e.kind(), crate::error_chain(&e)))?;
        // What verified is remembered, so the image shows as signed.
        let _ = self.images.catalog.record_signatures(&reference.name(), &checked.digest, &checked.verified_by);
        Ok(Response::new(berth_proto::v1::VerifySignaturesResponse {
            digest: checked.digest.to_string(),
            found: u32::try_from(checked.found).unwrap_or(u32::MAX),
            verified_by: checked.verified_by,
            identities: checked.identities,
        }))
    }

    async fn get_trust_policy(&self, _: Request<berth_proto::v1::GetTrustPolicyRequest>) -> Result<Response<berth_proto::v1::TrustPolicy>, Status> {
        let policy = self.images.trust_policy().map_err(|e| status(e.kind(), crate::error_chain(&e)))?;
        Ok(Response::new(berth_proto::v1::TrustPolicy { json: String::from_utf8_lossy(&policy.to_bytes()).into_owned() }))
    }

    async fn set_trust_policy(&self, request: Request<berth_proto::v1::TrustPolicy>) -> Result<Response<berth_proto::v1::TrustPolicy>, Status> {
        let policy =
            berth_trust::Policy::parse(request.into_inner().json.as_bytes()).map_err(|e| status(berth_proto::ErrorKind::InvalidArgument, e.to_string()))?;
        self.images.set_trust_policy(&policy).map_err(|e| status(e.kind(), crate::error_chain(&e)))?;
        Ok(Response::new(berth_proto::v1::TrustPolicy { json: String::from_utf8_lossy(&policy.to_bytes()).into_owned() }))
    }

    async fn history(&self, request: Request<InspectImageRequest>) -> Result<Response<HistoryResponse>, Status> {
        let steps = self.images.history(&request.into_inner().reference).await.map_err(|e| status(e.kind(), crate::error_chain(&e)))?;
        Ok(Response::new(HistoryResponse {
            steps: steps
                .into_iter()
                .map(|s| HistoryEntry { created: s.created, created_by: s.created_by, comment: s.comment, empty_layer: s.empty_layer, size: s.size })
                .collect(),
        }))
    }

    async fn prune(&self, request: Request<PruneImagesRequest>) -> Result<Response<PruneImagesResponse>, Status> {
        let pruned = self.images.prune(request.into_inner().all).map_err(|e| status(e.kind(), crate::error_chain(&e)))?;
        Ok(Response::new(PruneImagesResponse { deleted: pruned.deleted, untagged: pruned.untagged, reclaimed_bytes: pruned.reclaimed_bytes }))
    }

    async fn import(&self, request: Request<tonic::Streaming<ImportChunk>>) -> Result<Response<Image>, Status> {
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        let mut stream = request.into_inner();
        let path = self.images.scratch_file("import");
        let result = async {
            let mut file = tokio::fs::File::create(&path).await.map_err(|e| Status::internal(e.to_string()))?;
            let mut name = None;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                if name.is_none() {
                    name = Some(chunk.reference.clone());
                }
                file.write_all(&chunk.data).await.map_err(|e| Status::internal(e.to_string()))?;
            }
            file.flush().await.map_err(|e| Status::internal(e.to_string()))?;
            self.images.import(&path, name.as_deref()).await.map_err(|e| status(e.kind(), crate::error_chain(&e)))
        }
        .await;
        let _ = tokio::fs::remove_file(&path).await;
        Ok(Response::new(to_proto(result?)))
    }

    async fn check(&self, request: Request<CheckRequest>) -> Result<Response<CheckResponse>, Status> {
        let report = self.images.check(request.into_inner().repair).await;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(Response::new(CheckResponse {
            problems: report.problems,
            repaired: report.repaired,
            blobs: count(report.blobs),
            images: count(report.images),
            snapshots: count(report.snapshots),
        }))
    }
}
