//! `berth.v1.Volumes`: each call turns into a [`Volumes`] action.

use std::sync::Arc;

use berth_proto::v1::{
    volumes_server::Volumes as VolumesApiTrait, CloneVolumeRequest, CreateVolumeRequest, ListVolumesRequest, ListVolumesResponse, PruneVolumesRequest,
    PruneVolumesResponse, RemoveVolumeRequest, RemoveVolumeResponse, Volume, VolumeData, VolumeImportChunk, VolumeRef,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::{Request, Response, Status};

use crate::volume::{VolumeError, VolumeRecord, Volumes};

#[derive(Debug)]
pub struct VolumesApi {
    volumes: Arc<Volumes>,
    /// For scratch files of exports and imports.
    images: Arc<crate::image::Images>,
}

impl VolumesApi {
    pub fn new(volumes: Arc<Volumes>, images: Arc<crate::image::Images>) -> VolumesApi {
        VolumesApi { volumes, images }
    }

    fn to_proto(&self, v: VolumeRecord, size: bool) -> Volume {
        Volume {
            mountpoint: self.volumes.data_dir(&v.name).display().to_string(),
            used_by: self.volumes.users(&v.name),
            size: if size { self.volumes.size(&v.name) as i64 } else { -1 },
            name: v.name,
            driver: v.driver,
            created_at: v.created,
            labels: v.labels.into_iter().collect(),
            options: v.options.into_iter().collect(),
            anonymous: v.anonymous,
        }
    }
}

fn status(err: VolumeError) -> Status {
    Status::new(err.kind().grpc_code(), crate::error_chain(&err))
}

/// docker's volume filters: name (substring), label (key or key=value), dangling
/// (true: no container uses it), driver.
fn matches(v: &Volume, filters: &[(String, String)]) -> bool {
    filters.iter().all(|(key, value)| match key.as_str() {
        "name" => v.name.contains(value.as_str()),
        "label" => match value.split_once('=') {
            Some((k, val)) => v.labels.get(k).is_some_and(|have| have == val),
            None => v.labels.contains_key(value.as_str()),
        },
        "dangling" => (value == "true" || value == "1") == v.used_by.is_empty(),
        "driver" => v.driver == *value,
        _ => false,
    })
}

fn parse_filters(filters: &[String]) -> Result<Vec<(String, String)>, Status> {
    filters
        .iter()
        .map(|f| {
            let (k, v) = f.split_once('=').ok_or_else(|| Status::invalid_argument(format!("bad filter {f:?}: expected key=value")))?;
            if !matches!(k, "name" | "label" | "dangling" | "driver") {
                return Err(Status::invalid_argument(format!("invalid filter {k:?}")));
            }
            Ok((k.to_owned(), v.to_owned()))
        })
        .collect()
}

type BoxStream<T> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl VolumesApiTrait for VolumesApi {
    type ExportStream = BoxStream<VolumeData>;

    async fn export(&self, request: Request<VolumeRef>) -> Result<Response<Self::ExportStream>, Status> {
        let name = request.into_inner().name;
        let scratch = self.images.scratch_file("volume-export");
        if let Err(err) = self.volumes.export(&name, &scratch).await {
            let _ = std::fs::remove_file(&scratch);
            return Err(status(err));
        }
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<VolumeData, Status>>(4);
        tokio::spawn(async move {
            if let Ok(mut file) = tokio::fs::File::open(&scratch).await {
                let _ = std::fs::remove_file(&scratch);
                let mut buf = vec![0u8; 256 * 1024];
                while let Ok(n) = file.read(&mut buf).await {
                    if n == 0 || sender.send(Ok(VolumeData { data: buf[..n].to_vec() })).await.is_err() {
                        break;
                    }
                }
            }
            let _ = std::fs::remove_file(&scratch);
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))))
    }

    async fn import(&self, request: Request<tonic::Streaming<VolumeImportChunk>>) -> Result<Response<Volume>, Status> {
        let mut stream = request.into_inner();
        let first = stream.message().await?.ok_or_else(|| Status::invalid_argument("import: the first chunk must name the volume"))?;
        let scratch = self.images.scratch_file("volume-import");
        let written = async {
            let mut file = tokio::fs::File::create(&scratch).await.map_err(|e| Status::internal(e.to_string()))?;
            file.write_all(&first.data).await.map_err(|e| Status::internal(e.to_string()))?;
            while let Some(chunk) = stream.message().await? {
                file.write_all(&chunk.data).await.map_err(|e| Status::internal(e.to_string()))?;
            }
            file.flush().await.map_err(|e| Status::internal(e.to_string()))
        }
        .await;
        let result = match written {
            Ok(()) => self.volumes.import(&first.name, &scratch).await.map_err(status),
            Err(e) => Err(e),
        };
        let _ = std::fs::remove_file(&scratch);
        Ok(Response::new(self.to_proto(result?, true)))
    }

    async fn clone_volume(&self, request: Request<CloneVolumeRequest>) -> Result<Response<Volume>, Status> {
        let r = request.into_inner();
        let record = self.volumes.clone_volume(&r.source, &r.target).map_err(status)?;
        Ok(Response::new(self.to_proto(record, true)))
    }

    async fn create(&self, request: Request<CreateVolumeRequest>) -> Result<Response<Volume>, Status> {
        let r = request.into_inner();
        let (record, _) =
            self.volumes.create(Some(&r.name), &r.driver, r.labels.into_iter().collect(), r.driver_opts.into_iter().collect(), false).map_err(status)?;
        Ok(Response::new(self.to_proto(record, false)))
    }

    async fn list(&self, request: Request<ListVolumesRequest>) -> Result<Response<ListVolumesResponse>, Status> {
        let r = request.into_inner();
        let filters = parse_filters(&r.filters)?;
        let volumes = self.volumes.list().map_err(status)?.into_iter().map(|v| self.to_proto(v, r.size)).filter(|v| matches(v, &filters)).collect();
        Ok(Response::new(ListVolumesResponse { volumes }))
    }

    async fn inspect(&self, request: Request<VolumeRef>) -> Result<Response<Volume>, Status> {
        let name = request.into_inner().name;
        let record = self.volumes.get(&name).map_err(status)?.ok_or_else(|| status(VolumeError::NotFound(name)))?;
        Ok(Response::new(self.to_proto(record, true)))
    }

    async fn remove(&self, request: Request<RemoveVolumeRequest>) -> Result<Response<RemoveVolumeResponse>, Status> {
        let r = request.into_inner();
        self.volumes.remove(&r.name, r.force).map_err(status)?;
        Ok(Response::new(RemoveVolumeResponse {}))
    }

    async fn prune(&self, request: Request<PruneVolumesRequest>) -> Result<Response<PruneVolumesResponse>, Status> {
        let r = request.into_inner();
        let mut labels = Vec::new();
        for (key, value) in parse_filters(&r.filters)? {
            if key != "label" {
                return Err(Status::invalid_argument(format!("invalid filter {key:?} for prune")));
            }
            labels.push(value);
        }
        let (deleted, bytes) = self.volumes.prune(r.all, &labels).map_err(status)?;
        Ok(Response::new(PruneVolumesResponse { deleted, reclaimed_bytes: bytes }))
    }
}
