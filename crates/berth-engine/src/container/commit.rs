//! `commit`: a container's changes as a new image, with its config (the container's,
//! changed by a config given and by Dockerfile-style changes), author and comment; what
//! `docker commit` (Docker API) and `berth commit` (gRPC) both call.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{ContainerError, Containers};
use crate::image::{ImageRecord, NewImage, Scratch};

/// The keys of a container's config that an image keeps (docker's container.Config).
const IMAGE_KEYS: [&str; 20] = [
    "Hostname",
    "Domainname",
    "User",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ExposedPorts",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Env",
    "Cmd",
    "Healthcheck",
    "Image",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "OnBuild",
    "Labels",
    "StopSignal",
];

/// What `commit` is asked.
#[derive(Debug, Default, Clone)]
pub struct CommitOptions {
    /// `repo[:tag]` for the new image; empty for none.
    pub reference: String,
    pub author: String,
    pub comment: String,
    /// Dockerfile instructions (`CMD ...`, `ENV ...`) applied to the config.
    pub changes: Vec<String>,
    /// Config keys (docker's names) set over the container's.
    pub config: Map<String, Value>,
    /// Pause a running container while its changes are read (docker's default).
    pub pause: bool,
}

impl Containers {
    pub async fn commit(self: &Arc<Self>, key: &str, options: CommitOptions) -> Result<ImageRecord, ContainerError> {
        let record = self.find(key)?;
        let inspect = self.inspect_json(&record);
        let mut config = Map::new();
        for k in IMAGE_KEYS {
            if let Some(v) = inspect["Config"].get(k) {
                config.insert(k.to_owned(), v.clone());
            }
        }
        // The history says what the container ran (its command, before any change).
        let created_by =
            config.get("Cmd").and_then(Value::as_array).map(|c| c.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" ")).unwrap_or_default();
        for (k, v) in options.config {
            if !v.is_null() {
                config.insert(k, v);
            }
        }
        crate::image::changes::apply(&mut config, &options.changes).map_err(ContainerError::Invalid)?;
        let parent = self.images.resolve(&record.image_id)?;
        let layer = Scratch(self.images.scratch_file("commit"));
        // Nothing changed: an empty layer is no layer (docker's history says empty_layer).
        let (changed, any) = self.layer_tar(&record.id, &layer.0, options.pause).await?;
        let image = self
            .images
            .create_image(NewImage {
                parent: parent.as_ref(),
                layer: any.then_some(layer.0.as_path()),
                config,
                created_by,
                comment: options.comment,
                author: options.author,
                tag: Some(options.reference).filter(|r| !r.is_empty()),
                // The container lives on with its changes: the layer is unpacked anew.
                unpacked: None,
            })
            .await?;
        self.events.publish(
            "container",
            "commit",
            [("name".to_owned(), changed.name.trim_start_matches('/').to_owned()), ("imageID".to_owned(), image.id.to_string())],
        );
        Ok(image)
    }
}
