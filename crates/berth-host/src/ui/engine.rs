//! Berth Desktop's actions on the engine, as a library: each Tauri command is one call
//! here. Results come back as the rows of [`super::rows`]; errors as [`UiError`] with the
//! engine's kind and words.

use std::collections::HashMap;

use berth_proto::v1::{
    pull_event, ContainerRef, CreateContainerRequest, CreateNetworkRequest, CreateVolumeRequest, KillContainerRequest, ListContainersRequest,
    ListImagesRequest, ListNetworksRequest, ListVolumesRequest, LogsRequest, NetworkRef, RemoveContainerRequest, RemoveImageRequest, RemoveVolumeRequest,
    StopContainerRequest, TagImageRequest,
};
use futures::StreamExt;

use super::rows::{ContainerRow, EngineEvent, ImageRow, LogLine, NetworkRequest, NetworkRow, PortRow, PullProgress, RunRequest, VolumeRow};
use super::{status, UiError};
use crate::agent::AgentClient;
use crate::ErrorKind;

/// The networks every engine has; never removed.
const BUILTIN_NETWORKS: [&str; 3] = ["bridge", "host", "none"];

/// An action on one container, as the Containers view offers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(rename_all = "snake_case")]
pub enum ContainerAction {
    Start,
    Stop,
    Restart,
    Pause,
    Unpause,
    Kill,
}

/// A connected engine, as the app uses it.
#[derive(Debug, Clone)]
pub struct Engine {
    client: AgentClient,
}

impl Engine {
    pub fn new(client: AgentClient) -> Engine {
        Engine { client }
    }

    pub async fn version(&self) -> Result<crate::vm::EngineVersion, UiError> {
        self.client.version(std::time::Duration::from_secs(5)).await.map(Into::into).map_err(|e| UiError::new(e.kind(), e.to_string()))
    }

    pub async fn containers(&self) -> Result<Vec<ContainerRow>, UiError> {
        let list = self.client.containers().list(ListContainersRequest { all: true, filters: vec![] }).await.map_err(status("list containers"))?;
        let mut rows: Vec<ContainerRow> = list
            .into_inner()
            .containers
            .into_iter()
            .map(|c| ContainerRow {
                project: c.labels.get("com.docker.compose.project").cloned(),
                service: c.labels.get("com.docker.compose.service").cloned(),
                id: c.id,
                name: c.name.trim_start_matches('/').to_owned(),
                image: c.image,
                command: c.command,
                state: c.state,
                status: c.status,
                created: c.created,
                ports: c
                    .ports
                    .into_iter()
                    .map(|p| PortRow { host_ip: p.host_ip, host_port: p.host_port, container_port: p.container_port, protocol: p.protocol })
                    .collect(),
                networks: c.networks,
            })
            .collect();
        rows.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.name.cmp(&b.name)));
        Ok(rows)
    }

    pub async fn container_action(&self, id: &str, action: ContainerAction) -> Result<(), UiError> {
        let mut containers = self.client.containers();
        let id = id.to_owned();
        let stop = StopContainerRequest { id: id.clone(), timeout: -1, signal: String::new() };
        match action {
            ContainerAction::Start => containers.start(ContainerRef { id }).await.map(drop).map_err(status("start")),
            ContainerAction::Stop => containers.stop(stop).await.map(drop).map_err(status("stop")),
            ContainerAction::Restart => containers.restart(stop).await.map(drop).map_err(status("restart")),
            ContainerAction::Pause => containers.pause(ContainerRef { id }).await.map(drop).map_err(status("pause")),
            ContainerAction::Unpause => containers.unpause(ContainerRef { id }).await.map(drop).map_err(status("unpause")),
            ContainerAction::Kill => containers.kill(KillContainerRequest { id, signal: String::new() }).await.map(drop).map_err(status("kill")),
        }
    }

    /// Removes each; the first refusal is the answer, after trying them all.
    pub async fn remove_containers(&self, ids: &[String], force: bool) -> Result<(), UiError> {
        let mut first_error = None;
        for id in ids {
            let removed = self.client.containers().remove(RemoveContainerRequest { id: id.clone(), force, volumes: false }).await;
            if let Err(s) = removed {
                first_error.get_or_insert(status("remove")(s));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The last `tail` entries of a container's log (all when negative).
    pub async fn logs(&self, id: &str, tail: i64) -> Result<Vec<LogLine>, UiError> {
        let request =
            LogsRequest { id: id.to_owned(), follow: false, stdout: true, stderr: true, since: String::new(), until: String::new(), tail, timestamps: true };
        let mut stream = self.client.containers().logs(request).await.map_err(status("logs"))?.into_inner();
        let mut lines = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(status("logs"))?;
            let stream_name = if chunk.stream == 2 { "stderr" } else { "stdout" };
            for text in String::from_utf8_lossy(&chunk.data).lines() {
                lines.push(LogLine { stream: stream_name.to_owned(), time: chunk.time.clone(), text: text.to_owned() });
            }
        }
        Ok(lines)
    }

    /// Creates and starts a container from the Run dialog; returns its id.
    pub async fn run(&self, request: &RunRequest) -> Result<String, UiError> {
        if request.image.trim().is_empty() {
            return Err(UiError::invalid("an image is required"));
        }
        let mut ports = Vec::new();
        for spec in request.ports.iter().filter(|p| !p.trim().is_empty()) {
            ports.extend(berth_proto::ports::parse_publish(spec.trim()).map_err(UiError::invalid)?);
        }
        let mut mounts = Vec::new();
        for spec in request.volumes.iter().filter(|v| !v.trim().is_empty()) {
            // The dialog has no current folder: a host folder is given whole. Read by the
            // one `-v` parser (a Windows drive's colon is not a separator).
            let parsed = berth_proto::mounts::parse_volume_spec(spec.trim()).map_err(UiError::invalid)?;
            if parsed.source_kind == berth_proto::mounts::VolumeSource::HostPath && !std::path::Path::new(parsed.source).is_absolute() {
                return Err(UiError::invalid(format!("{spec}: a host folder must be an absolute path here")));
            }
            mounts.push(berth_proto::mounts::parse_volume_flag(spec.trim()).map_err(UiError::invalid)?);
        }
        for env in request.env.iter().filter(|e| !e.trim().is_empty()) {
            if !env.contains('=') || env.starts_with('=') {
                return Err(UiError::invalid(format!("{env:?}: environment entries are KEY=VALUE")));
            }
        }
        let restart_policy = match request.restart.trim() {
            "" => None,
            text => Some(berth_proto::units::parse_restart(text).map_err(UiError::invalid)?),
        };
        let create = CreateContainerRequest {
            name: request.name.trim().to_owned(),
            image: request.image.trim().to_owned(),
            env: request.env.iter().filter(|e| !e.trim().is_empty()).cloned().collect(),
            mounts,
            ports,
            network_mode: request.network.trim().to_owned(),
            restart_policy,
            stop_timeout: -1,
            ..Default::default()
        };
        let created = self.client.containers().create(create).await.map_err(status("create"))?.into_inner();
        if let Err(s) = self.client.containers().start(ContainerRef { id: created.id.clone() }).await {
            let _ = self.client.containers().remove(RemoveContainerRequest { id: created.id.clone(), force: true, volumes: true }).await;
            return Err(status("start")(s));
        }
        Ok(created.id)
    }

    pub async fn images(&self) -> Result<Vec<ImageRow>, UiError> {
        let images = self.client.images().list(ListImagesRequest {}).await.map_err(status("list images"))?.into_inner().images;
        let containers = self.client.containers().list(ListContainersRequest { all: true, filters: vec![] }).await.map_err(status("list containers"))?;
        let mut use_count: HashMap<String, u32> = HashMap::new();
        for c in containers.into_inner().containers {
            *use_count.entry(c.image_id).or_default() += 1;
        }
        let mut rows: Vec<ImageRow> = images
            .into_iter()
            .map(|i| ImageRow {
                containers: use_count.get(&i.id).copied().unwrap_or(0),
                id: i.id,
                tags: i.tags,
                size: i.size,
                created: i.created,
                signed_by: i.signed_by,
            })
            .collect();
        rows.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.tags.cmp(&b.tags)));
        Ok(rows)
    }

    /// Pulls an image, telling `progress` each step; the last is `Done` or `Failed`.
    pub async fn pull(&self, reference: &str, mut progress: impl FnMut(PullProgress)) -> Result<String, UiError> {
        let reference = reference.trim().to_owned();
        let result = self.pull_inner(&reference, &mut progress).await;
        match &result {
            Ok(id) => progress(PullProgress::Done { reference, id: id.clone() }),
            Err(error) => progress(PullProgress::Failed { reference, error: error.clone() }),
        }
        result
    }

    async fn pull_inner(&self, reference: &str, progress: &mut impl FnMut(PullProgress)) -> Result<String, UiError> {
        if reference.is_empty() {
            return Err(UiError::invalid("an image reference is required"));
        }
        let request = crate::credentials::pull_request(reference, "").map_err(|e| UiError::new(e.kind(), e.to_string()))?;
        let mut stream = self.client.images().pull(request).await.map_err(status("pull"))?.into_inner();
        while let Some(event) = stream.next().await {
            let reference = reference.to_owned();
            match event.map_err(status("pull"))?.event {
                Some(pull_event::Event::Resolved(r)) => progress(PullProgress::Resolved { reference, layers: r.layers }),
                Some(pull_event::Event::Layer(l)) => progress(PullProgress::Layer { reference, digest: l.digest, done: l.done, total: l.total }),
                Some(pull_event::Event::LayerDone(l)) => progress(PullProgress::LayerDone { reference, digest: l.digest, cached: l.cached }),
                Some(pull_event::Event::Done(image)) => return Ok(image.id),
                None => {}
            }
        }
        Err(UiError::new(ErrorKind::Unavailable, "pull: the engine ended the pull without an image"))
    }

    pub async fn remove_image(&self, reference: &str, force: bool) -> Result<(), UiError> {
        self.client.images().remove(RemoveImageRequest { reference: reference.to_owned(), force }).await.map(drop).map_err(status("remove image"))
    }

    pub async fn tag_image(&self, source: &str, target: &str) -> Result<(), UiError> {
        self.client.images().tag(TagImageRequest { source: source.to_owned(), target: target.trim().to_owned() }).await.map(drop).map_err(status("tag"))
    }

    pub async fn volumes(&self) -> Result<Vec<VolumeRow>, UiError> {
        let list = self.client.volumes().list(ListVolumesRequest { size: true, ..Default::default() }).await.map_err(status("list volumes"))?;
        let mut rows: Vec<VolumeRow> = list
            .into_inner()
            .volumes
            .into_iter()
            .map(|v| VolumeRow { name: v.name, driver: v.driver, created: v.created_at, size: v.size, anonymous: v.anonymous, used_by: v.used_by })
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows)
    }

    pub async fn create_volume(&self, name: &str) -> Result<VolumeRow, UiError> {
        let v = self
            .client
            .volumes()
            .create(CreateVolumeRequest { name: name.trim().to_owned(), ..Default::default() })
            .await
            .map_err(status("create volume"))?
            .into_inner();
        Ok(VolumeRow { name: v.name, driver: v.driver, created: v.created_at, size: v.size, anonymous: v.anonymous, used_by: v.used_by })
    }

    pub async fn remove_volume(&self, name: &str) -> Result<(), UiError> {
        self.client.volumes().remove(RemoveVolumeRequest { name: name.to_owned(), force: false }).await.map(drop).map_err(status("remove volume"))
    }

    pub async fn networks(&self) -> Result<Vec<NetworkRow>, UiError> {
        let networks = self.client.networks().list(ListNetworksRequest::default()).await.map_err(status("list networks"))?.into_inner().networks;
        let containers = self
            .client
            .containers()
            .list(ListContainersRequest { all: true, filters: vec![] })
            .await
            .map_err(status("list containers"))?
            .into_inner()
            .containers;
        let mut rows: Vec<NetworkRow> = networks
            .into_iter()
            .map(|n| NetworkRow {
                containers: containers.iter().filter(|c| c.networks.contains(&n.name)).map(|c| c.name.trim_start_matches('/').to_owned()).collect(),
                builtin: BUILTIN_NETWORKS.contains(&n.name.as_str()),
                id: n.id,
                name: n.name,
                driver: n.driver,
                subnet: n.subnet,
                gateway: n.gateway,
                internal: n.internal,
            })
            .collect();
        rows.sort_by(|a, b| b.builtin.cmp(&a.builtin).then_with(|| a.name.cmp(&b.name)));
        Ok(rows)
    }

    pub async fn create_network(&self, request: &NetworkRequest) -> Result<(), UiError> {
        if request.name.trim().is_empty() {
            return Err(UiError::invalid("a network needs a name"));
        }
        let create = CreateNetworkRequest {
            name: request.name.trim().to_owned(),
            driver: "bridge".into(),
            subnet: request.subnet.trim().to_owned(),
            gateway: request.gateway.trim().to_owned(),
            internal: request.internal,
            ..Default::default()
        };
        self.client.networks().create(create).await.map(drop).map_err(status("create network"))
    }

    pub async fn remove_network(&self, name: &str) -> Result<(), UiError> {
        self.client.networks().remove(NetworkRef { id: name.to_owned() }).await.map(drop).map_err(status("remove network"))
    }

    /// Logs in to a registry (the engine checks the password), then stores the login
    /// where docker stores it; returns the registry's answer.
    pub async fn login(&self, registry: &str, username: &str, password: &str) -> Result<String, UiError> {
        let registry = match registry.trim() {
            "" => "docker.io".to_owned(),
            other => other.to_owned(),
        };
        if username.trim().is_empty() || password.is_empty() {
            return Err(UiError::invalid("a user name and a password are required"));
        }
        let request = berth_proto::v1::LoginRequest {
            registry: registry.clone(),
            auth: Some(berth_proto::v1::RegistryAuth { username: username.trim().to_owned(), password: password.to_owned() }),
        };
        let answer = self.client.images().login(request).await.map_err(status("login"))?.into_inner();
        let login = crate::credentials::Login { username: username.trim().to_owned(), password: password.to_owned() };
        crate::credentials::store(&registry, &login).map_err(|e| UiError::from_error(e.kind(), &e))?;
        Ok(answer.status)
    }

    /// The client, for libraries that work on the engine themselves (compose).
    pub fn client(&self) -> &AgentClient {
        &self.client
    }

    /// Follows the engine's events, telling `each` what changed, until the stream ends
    /// (the engine stopped or went away): then the error says why.
    pub async fn follow_events(&self, mut each: impl FnMut(EngineEvent)) -> UiError {
        let mut stream = match self.client.events(false, vec![]).await {
            Ok(stream) => stream,
            Err(err) => return UiError::new(err.kind(), err.to_string()),
        };
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    let id = ["id", "name", "container"].iter().find_map(|k| event.attributes.get(*k)).cloned().unwrap_or_default();
                    each(EngineEvent { kind: event.r#type, action: event.action, id });
                }
                Err(s) => return status("events")(s),
            }
        }
        UiError::new(ErrorKind::Unavailable, "the engine's event stream ended")
    }
}
