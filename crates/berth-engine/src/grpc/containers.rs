//! `berth.v1.Containers`: each call turns into a [`Containers`] action.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use berth_proto::v1::{
    containers_server::Containers as ContainersApiTrait, ArchiveData, ArchiveRequest, AttachInput, AttachOutput, Change, ChangesResponse, CommitRequest,
    CommitResponse, ContainerDetails, ContainerRef, ContainerSummary, CreateContainerRequest, CreateContainerResponse, Empty, ExecInput, ExecOutput,
    ExtractChunk, KillContainerRequest, ListContainersRequest, ListContainersResponse, LogChunk, LogsRequest, PortBinding, PruneContainersRequest,
    PruneContainersResponse, RemoveContainerRequest, RenameContainerRequest, StatsRequest, StatsResponse, StopContainerRequest, TopResponse, TopRow,
    UpdateContainerRequest, WaitContainerRequest, WaitContainerResponse,
};
use futures::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::{Request, Response, Status};

use crate::container::inspect::{command_text, created_unix, status_text};
use crate::container::record::{ContainerRecord, Resources, RestartPolicy, TmpfsMount};
use crate::container::{ContainerError, Containers, CreateRequest, ExecRequest, LogsQuery};

#[derive(Debug)]
pub struct ContainersApi {
    containers: Arc<Containers>,
}

impl ContainersApi {
    pub fn new(containers: Arc<Containers>) -> ContainersApi {
        ContainersApi { containers }
    }
}

fn status(err: ContainerError) -> Status {
    let missing_image = matches!(err, ContainerError::NoImage(_));
    let status = Status::new(err.kind().grpc_code(), crate::error_chain(&err));
    if missing_image {
        berth_proto::mark_missing_image(status)
    } else {
        status
    }
}

fn summary(record: &ContainerRecord) -> ContainerSummary {
    ContainerSummary {
        id: record.id.clone(),
        name: record.name.clone(),
        image: record.config.image.clone(),
        image_id: record.image_id.clone(),
        command: command_text(record),
        created: created_unix(record),
        state: record.state.status.as_str().to_owned(),
        status: status_text(record),
        labels: record.config.labels.clone().into_iter().collect(),
        exit_code: record.state.exit_code,
        ports: record
            .state
            .network
            .iter()
            .flat_map(|n| &n.ports)
            .map(|p| PortBinding {
                container_port: p.container_port.into(),
                protocol: p.protocol.clone(),
                host_ip: p.host_ip.clone(),
                host_port: p.host_port.into(),
            })
            .collect(),
        networks: match &record.state.network {
            Some(n) if !n.endpoints.is_empty() => n.endpoints.iter().map(|e| e.network_name.clone()).collect(),
            _ => vec![record.host_config.network_mode.clone()],
        },
    }
}

fn parse_filters(filters: &[String]) -> Result<Vec<(String, String)>, Status> {
    filters
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| Status::invalid_argument(format!("bad filter {f:?}: expected key=value")))
        })
        .collect()
}

impl From<CreateContainerRequest> for CreateRequest {
    fn from(r: CreateContainerRequest) -> Self {
        let resources = r.resources.unwrap_or_default();
        let policy = r.restart_policy.unwrap_or_default();
        CreateRequest {
            name: r.name,
            image: r.image,
            require_signature: r.require_signature,
            cmd: r.cmd,
            entrypoint: r.entrypoint_set.then_some(r.entrypoint),
            env: r.env,
            working_dir: r.working_dir,
            user: r.user,
            hostname: r.hostname,
            labels: r.labels.into_iter().collect::<BTreeMap<_, _>>(),
            tty: r.tty,
            open_stdin: r.open_stdin,
            stdin_once: r.stdin_once,
            init: r.init,
            stop_signal: r.stop_signal,
            stop_timeout: (r.stop_timeout >= 0).then_some(r.stop_timeout),
            auto_remove: r.auto_remove,
            read_only: r.read_only,
            privileged: r.privileged,
            cap_add: r.cap_add,
            cap_drop: r.cap_drop,
            security_opt: r.security_opt,
            resources: Resources {
                memory: resources.memory,
                memory_swap: resources.memory_swap,
                nano_cpus: resources.nano_cpus,
                cpu_shares: resources.cpu_shares,
                pids_limit: resources.pids_limit,
            },
            restart_policy: RestartPolicy { name: policy.name, maximum_retry_count: policy.maximum_retry_count },
            tmpfs: r
                .mounts
                .iter()
                .filter(|m| m.r#type == "tmpfs")
                .map(|m| TmpfsMount { target: m.target.clone(), options: m.options.clone(), read_only: m.read_only })
                .collect(),
            mounts: r
                .mounts
                .into_iter()
                .filter(|m| m.r#type != "tmpfs")
                .map(|m| crate::container::MountRequest {
                    kind: m.r#type,
                    source: m.source,
                    target: m.target,
                    read_only: m.read_only,
                    no_copy: m.no_copy,
                    create_source: m.create_source,
                })
                .collect(),
            network_mode: r.network_mode,
            network_aliases: r.network_aliases,
            ipv4_address: r.ipv4_address,
            mac_address: r.mac_address,
            ports: r
                .ports
                .into_iter()
                .map(|p| crate::network::PortBinding {
                    container_port: u16::try_from(p.container_port).unwrap_or(0),
                    protocol: p.protocol,
                    host_ip: p.host_ip,
                    host_port: u16::try_from(p.host_port).unwrap_or(0),
                })
                .collect(),
            publish_all: r.publish_all,
            expose: r.expose,
            healthcheck: r.healthcheck.map(|h| crate::container::record::Healthcheck {
                test: h.test,
                interval: h.interval,
                timeout: h.timeout,
                start_period: h.start_period,
                retries: h.retries,
            }),
            extras: crate::container::record::HostExtras {
                extra_hosts: r.extra_hosts,
                dns: r.dns,
                dns_search: r.dns_search,
                dns_options: r.dns_options,
                shm_size: r.shm_size,
                ulimits: r.ulimits.into_iter().map(|u| crate::container::record::Ulimit { name: u.name, soft: u.soft, hard: u.hard }).collect(),
                sysctls: r.sysctls.into_iter().collect(),
                group_add: r.group_add,
                log_config: crate::container::record::LogConfig { driver: r.log_driver, options: r.log_options.into_iter().collect() },
                pid_mode: r.pid_mode,
                ipc_mode: r.ipc_mode,
                uts_mode: r.uts_mode,
                cpuset_cpus: r.cpuset_cpus,
                cpuset_mems: r.cpuset_mems,
                volumes_from: r.volumes_from,
                cgroupns_mode: r.cgroupns_mode,
                runtime: r.runtime,
                links: r.links,
                // One that does not parse is kept whole: create then refuses it (no such
                // device node).
                devices: r
                    .devices
                    .iter()
                    .map(|d| {
                        crate::container::record::DeviceMapping::parse(d)
                            .unwrap_or_else(|_| crate::container::record::DeviceMapping { path_on_host: d.clone(), ..Default::default() })
                    })
                    .collect(),
                device_cgroup_rules: r.device_cgroup_rules,
                memory_swappiness: r.memory_swappiness.filter(|&s| s != -1),
                ..Default::default()
            },
        }
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ContainersApiTrait for ContainersApi {
    type LogsStream = BoxStream<LogChunk>;
    type AttachStream = BoxStream<AttachOutput>;
    type ExecStream = BoxStream<ExecOutput>;
    type StatsStream = BoxStream<StatsResponse>;
    type ArchiveStream = BoxStream<ArchiveData>;

    async fn stats(&self, request: Request<StatsRequest>) -> Result<Response<Self::StatsStream>, Status> {
        let r = request.into_inner();
        let record = self.containers.find(&r.id).map_err(status)?;
        let mut previous = self.containers.stats_sample(&record).map_err(status)?;
        let containers = self.containers.clone();
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<StatsResponse, Status>>(4);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                let Ok(record) = containers.find(&record.id) else { return };
                let Ok(sample) = containers.stats_sample(&record) else { return };
                let out = StatsResponse {
                    id: record.id.clone(),
                    name: record.name.clone(),
                    read: sample.read.clone(),
                    cpu_percent: crate::container::stats::cpu_percent(&previous, &sample),
                    cpu_total_ns: sample.cpu_total,
                    system_cpu_ns: sample.system_cpu,
                    online_cpus: sample.online_cpus,
                    memory_usage: sample.memory_usage,
                    memory_limit: sample.memory_limit,
                    pids: sample.pids,
                    net_rx: sample.net_rx,
                    net_tx: sample.net_tx,
                    block_read: sample.block_read,
                    block_write: sample.block_write,
                };
                if sender.send(Ok(out)).await.is_err() || !r.stream {
                    return;
                }
                previous = sample;
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))))
    }

    async fn update(&self, request: Request<UpdateContainerRequest>) -> Result<Response<Empty>, Status> {
        let r = request.into_inner();
        let resources = r.resources.unwrap_or_default();
        let update = crate::container::UpdateRequest {
            resources: Resources {
                memory: resources.memory,
                memory_swap: resources.memory_swap,
                nano_cpus: resources.nano_cpus,
                cpu_shares: resources.cpu_shares,
                pids_limit: resources.pids_limit,
            },
            restart_policy: r.restart_policy.map(|p| RestartPolicy { name: p.name, maximum_retry_count: p.maximum_retry_count }),
        };
        self.containers.update(&r.id, update).await.map_err(status)?;
        Ok(Response::new(Empty {}))
    }

    async fn extract(&self, request: Request<tonic::Streaming<ExtractChunk>>) -> Result<Response<Empty>, Status> {
        let mut stream = request.into_inner();
        let first = stream.message().await?.ok_or_else(|| Status::invalid_argument("extract: the first chunk must name the container"))?;
        let scratch = self.containers.images().scratch_file("extract");
        let written = async {
            let mut file = tokio::fs::File::create(&scratch).await.map_err(|e| Status::internal(e.to_string()))?;
            file.write_all(&first.data).await.map_err(|e| Status::internal(e.to_string()))?;
            while let Some(chunk) = stream.message().await? {
                file.write_all(&chunk.data).await.map_err(|e| Status::internal(e.to_string()))?;
            }
            file.flush().await.map_err(|e| Status::internal(e.to_string()))?;
            Ok::<(), Status>(())
        }
        .await;
        let result = match written {
            Ok(()) => self.containers.extract(&first.id, &first.path, &scratch, first.to_container_user).await.map_err(status),
            Err(e) => Err(e),
        };
        let _ = std::fs::remove_file(&scratch);
        result?;
        Ok(Response::new(Empty {}))
    }

    async fn changes(&self, request: Request<ContainerRef>) -> Result<Response<ChangesResponse>, Status> {
        let changes = self.containers.changes(&request.into_inner().id).map_err(status)?;
        Ok(Response::new(ChangesResponse { changes: changes.into_iter().map(|(kind, path)| Change { kind: kind.code(), path }).collect() }))
    }

    async fn archive(&self, request: Request<ArchiveRequest>) -> Result<Response<Self::ArchiveStream>, Status> {
        let r = request.into_inner();
        let path = if r.path.is_empty() { "/".to_owned() } else { r.path };
        let scratch = self.containers.images().scratch_file("archive");
        let archived =
            if r.export { self.containers.export(&r.id, &scratch).await } else { self.containers.archive_with_stat(&r.id, &path, &scratch).await.map(|_| ()) };
        if let Err(err) = archived {
            let _ = std::fs::remove_file(&scratch);
            return Err(status(err));
        }
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<ArchiveData, Status>>(4);
        tokio::spawn(async move {
            if let Ok(mut file) = tokio::fs::File::open(&scratch).await {
                // Unlinked at once: the open file is all that is left of it.
                let _ = std::fs::remove_file(&scratch);
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    match file.read(&mut buf).await {
                        Ok(0) => break,
                        Ok(n) => {
                            if sender.send(Ok(ArchiveData { data: buf[..n].to_vec() })).await.is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            let _ = sender.send(Err(Status::internal(e.to_string()))).await;
                            break;
                        }
                    }
                }
            }
            let _ = std::fs::remove_file(&scratch);
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))))
    }

    async fn create(&self, request: Request<CreateContainerRequest>) -> Result<Response<CreateContainerResponse>, Status> {
        let request = request.into_inner();
        let record = self.containers.create(request.into()).await.map_err(status)?;
        let warnings = self.containers.create_warnings(&record);
        Ok(Response::new(CreateContainerResponse { id: record.id, warnings }))
    }

    async fn start(&self, request: Request<ContainerRef>) -> Result<Response<Empty>, Status> {
        self.containers.start(&request.into_inner().id).await.map_err(status)?;
        Ok(Response::new(Empty {}))
    }

    async fn stop(&self, request: Request<StopContainerRequest>) -> Result<Response<Empty>, Status> {
        let r = request.into_inner();
        self.containers.stop(&r.id, (r.timeout >= 0).then_some(r.timeout), Some(&r.signal)).await.map_err(status)?;
        Ok(Response::new(Empty {}))
    }

    async fn restart(&self, request: Request<StopContainerRequest>) -> Result<Response<Empty>, Status> {
        let r = request.into_inner();
        self.containers.restart(&r.id, (r.timeout >= 0).then_some(r.timeout)).await.map_err(status)?;
        Ok(Response::new(Empty {}))
    }

    async fn kill(&self, request: Request<KillContainerRequest>) -> Result<Response<Empty>, Status> {
        let r = request.into_inner();
        self.containers.kill(&r.id, &r.signal).await.map_err(status)?;
        Ok(Response::new(Empty {}))
    }

    async fn pause(&self, request: Request<ContainerRef>) -> Result<Response<Empty>, Status> {
        self.containers.pause(&request.into_inner().id, true).await.map_err(status)?;
        Ok(Response::new(Empty {}))
    }

    async fn unpause(&self, request: Request<ContainerRef>) -> Result<Response<Empty>, Status> {
        self.containers.pause(&request.into_inner().id, false).await.map_err(status)?;
        Ok(Response::new(Empty {}))
    }

    async fn remove(&self, request: Request<RemoveContainerRequest>) -> Result<Response<Empty>, Status> {
        let r = request.into_inner();
        self.containers.remove(&r.id, r.force, r.volumes).await.map_err(status)?;
        Ok(Response::new(Empty {}))
    }

    async fn commit(&self, request: Request<CommitRequest>) -> Result<Response<CommitResponse>, Status> {
        let r = request.into_inner();
        let options = crate::container::CommitOptions {
            reference: r.reference,
            author: r.author,
            comment: r.comment,
            changes: r.changes,
            config: Default::default(),
            pause: !r.no_pause,
        };
        let image = self.containers.commit(&r.id, options).await.map_err(status)?;
        Ok(Response::new(CommitResponse { id: image.id.to_string() }))
    }

    async fn rename(&self, request: Request<RenameContainerRequest>) -> Result<Response<Empty>, Status> {
        let r = request.into_inner();
        self.containers.rename(&r.id, &r.new_name).await.map_err(status)?;
        Ok(Response::new(Empty {}))
    }

    async fn list(&self, request: Request<ListContainersRequest>) -> Result<Response<ListContainersResponse>, Status> {
        let r = request.into_inner();
        let filters = parse_filters(&r.filters)?;
        let containers = self.containers.list_matching(r.all, &filters, 0).map_err(status)?.iter().map(summary).collect();
        Ok(Response::new(ListContainersResponse { containers }))
    }

    async fn inspect(&self, request: Request<ContainerRef>) -> Result<Response<ContainerDetails>, Status> {
        let record = self.containers.find(&request.into_inner().id).map_err(status)?;
        let json = self.containers.inspect_json(&record);
        Ok(Response::new(ContainerDetails { summary: Some(summary(&record)), inspect_json: json.to_string() }))
    }

    async fn wait(&self, request: Request<WaitContainerRequest>) -> Result<Response<WaitContainerResponse>, Status> {
        let r = request.into_inner();
        let exit_code = self.containers.wait(&r.id, &r.condition).await.map_err(status)?;
        Ok(Response::new(WaitContainerResponse { exit_code, error: String::new() }))
    }

    async fn logs(&self, request: Request<LogsRequest>) -> Result<Response<Self::LogsStream>, Status> {
        let r = request.into_inner();
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        let parse = |text: &str, what: &str| -> Result<Option<i64>, Status> {
            if text.is_empty() {
                return Ok(None);
            }
            crate::container::logs::parse_time(text, now).map(Some).ok_or_else(|| Status::invalid_argument(format!("invalid value for \"{what}\": {text:?}")))
        };
        let (stdout, stderr) = if !r.stdout && !r.stderr { (true, true) } else { (r.stdout, r.stderr) };
        let query = LogsQuery {
            follow: r.follow,
            stdout,
            stderr,
            since: parse(&r.since, "since")?,
            until: parse(&r.until, "until")?,
            tail: usize::try_from(r.tail).ok(),
        };
        let receiver = self.containers.logs(&r.id, query).map_err(status)?;
        let stream =
            tokio_stream::wrappers::ReceiverStream::new(receiver).map(|line| Ok(LogChunk { stream: u32::from(line.stream), data: line.data, time: line.time }));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn attach(&self, request: Request<tonic::Streaming<AttachInput>>) -> Result<Response<Self::AttachStream>, Status> {
        let mut input = request.into_inner();
        let first = input.message().await?.ok_or_else(|| Status::invalid_argument("attach: the first message must name the container"))?;
        // Answer once the attach is registered: the caller starts the container only
        // after this returns (attach-then-start), so waiting for the start happens in
        // the stream and no output is missed.
        let pending = self.containers.attach_begin(&first.id).await.map_err(status)?;
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<AttachOutput, Status>>(64);
        tokio::spawn(async move {
            let socket = match pending.connected().await {
                Ok(socket) => socket,
                Err(err) => {
                    let _ = sender.send(Err(status(err))).await;
                    return;
                }
            };
            let socket = match socket.set_nonblocking(true).and_then(|()| tokio::net::UnixStream::from_std(socket)) {
                Ok(socket) => socket,
                Err(e) => {
                    let _ = sender.send(Err(Status::internal(e.to_string()))).await;
                    return;
                }
            };
            let (reader, mut writer) = socket.into_split();
            tokio::spawn(async move {
                let mut pending = vec![first];
                loop {
                    for message in pending.drain(..) {
                        if !message.stdin.is_empty()
                            && writer.write_all(&crate::container::attach::frame(crate::container::attach::STDIN, &message.stdin)).await.is_err()
                        {
                            return;
                        }
                        if message.rows > 0 && message.cols > 0 {
                            let mut size = Vec::with_capacity(4);
                            size.extend_from_slice(&(message.rows as u16).to_be_bytes());
                            size.extend_from_slice(&(message.cols as u16).to_be_bytes());
                            if writer.write_all(&crate::container::attach::frame(crate::container::attach::RESIZE, &size)).await.is_err() {
                                return;
                            }
                        }
                        if message.close_stdin && writer.write_all(&crate::container::attach::frame(crate::container::attach::CLOSE_STDIN, &[])).await.is_err()
                        {
                            return;
                        }
                    }
                    match input.message().await {
                        Ok(Some(message)) => pending.push(message),
                        _ => return,
                    }
                }
            });
            pump_attach_output(reader, sender).await;
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))))
    }

    async fn exec(&self, request: Request<tonic::Streaming<ExecInput>>) -> Result<Response<Self::ExecStream>, Status> {
        let mut input = request.into_inner();
        let first = input.message().await?.ok_or_else(|| Status::invalid_argument("exec: the first message must carry the spec"))?;
        let spec = first.spec.clone().ok_or_else(|| Status::invalid_argument("exec: the first message must carry the spec"))?;
        let detach = spec.detach;
        let request = ExecRequest {
            container: spec.container,
            cmd: spec.cmd,
            env: spec.env,
            user: spec.user,
            working_dir: spec.working_dir,
            tty: spec.tty,
            attach_stdin: spec.attach_stdin,
            detach,
            privileged: spec.privileged,
        };
        // One session type for both APIs: made and started in the core, so the Docker
        // API's exec inspect sees it too.
        let id = self.containers.exec_create(request, "").map_err(status)?;
        let mut session = self.containers.exec_start(&id, detach).await.map_err(status)?;
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<ExecOutput, Status>>(64);
        let mut pumps = Vec::new();
        if let Some(master) = session.pty.clone() {
            // A terminal: one fd both ways; resizes go to it too.
            let reader = master.try_clone().map_err(|e| Status::internal(e.to_string()))?;
            let writer = master.try_clone().map_err(|e| Status::internal(e.to_string()))?;
            let mut reader = tokio::fs::File::from_std(reader);
            let mut writer = tokio::fs::File::from_std(writer);
            tokio::spawn(async move {
                let mut message = Some(first);
                loop {
                    if let Some(m) = message.take() {
                        if m.rows > 0 && m.cols > 0 {
                            crate::container::resize_terminal(&master, m.rows as u16, m.cols as u16);
                        }
                        if !m.stdin.is_empty() && writer.write_all(&m.stdin).await.is_err() {
                            return;
                        }
                        if m.close_stdin {
                            let _ = writer.write_all(&[4]).await;
                        }
                    }
                    match input.message().await {
                        Ok(Some(m)) => message = Some(m),
                        _ => return,
                    }
                }
            });
            let sender = sender.clone();
            pumps.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match reader.read(&mut buf).await {
                        // EIO once the process and every other holder of the terminal are gone.
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let out = ExecOutput { stream: 1, data: buf[..n].to_vec(), exited: false, exit_code: 0 };
                            if sender.send(Ok(out)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }));
        } else if let Some(mut stdin) = session.streams.child.stdin.take() {
            tokio::spawn(async move {
                let mut message = Some(first);
                loop {
                    if let Some(m) = message.take() {
                        if !m.stdin.is_empty() && stdin.write_all(&m.stdin).await.is_err() {
                            return;
                        }
                        if m.close_stdin {
                            return;
                        }
                    }
                    match input.message().await {
                        Ok(Some(m)) => message = Some(m),
                        _ => return,
                    }
                }
            });
        }
        for (stream_no, pipe) in [
            (1u32, session.streams.child.stdout.take().map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>)),
            (2u32, session.streams.child.stderr.take().map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>)),
        ] {
            let Some(mut pipe) = pipe else { continue };
            let sender = sender.clone();
            pumps.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match pipe.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let out = ExecOutput { stream: stream_no, data: buf[..n].to_vec(), exited: false, exit_code: 0 };
                            if sender.send(Ok(out)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }));
        }
        tokio::spawn(async move {
            let exit_code = session.wait().await;
            // A background process can hold the output open: do not wait for it long.
            for pump in pumps {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), pump).await;
            }
            let _ = sender.send(Ok(ExecOutput { stream: 0, data: Vec::new(), exited: true, exit_code })).await;
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))))
    }

    async fn top(&self, request: Request<berth_proto::v1::TopRequest>) -> Result<Response<TopResponse>, Status> {
        let request = request.into_inner();
        let (titles, rows) = self.containers.top(&request.id, &request.ps_args).await.map_err(status)?;
        Ok(Response::new(TopResponse { titles, processes: rows.into_iter().map(|columns| TopRow { columns }).collect() }))
    }

    async fn prune(&self, request: Request<PruneContainersRequest>) -> Result<Response<PruneContainersResponse>, Status> {
        // docker's label filters for prune, as `label=KEY[=VALUE]` strings (ANDed).
        let mut filters = Vec::new();
        for filter in request.into_inner().filters {
            match filter.split_once('=') {
                Some(("label", value)) => filters.push(("label".to_owned(), value.to_owned())),
                _ => return Err(Status::invalid_argument(format!("invalid filter {filter:?} for container prune (label=KEY[=VALUE])"))),
            }
        }
        let (deleted, reclaimed_bytes) = self.containers.prune(&filters).await.map_err(status)?;
        Ok(Response::new(PruneContainersResponse { deleted, reclaimed_bytes }))
    }
}

/// Forwards the monitor's `[stream u8][len u32 BE][data]` frames as messages.
async fn pump_attach_output(reader: tokio::net::unix::OwnedReadHalf, sender: tokio::sync::mpsc::Sender<Result<AttachOutput, Status>>) {
    let mut frames = crate::container::attach::OutputFrames::new(reader);
    while let Some((stream, data)) = frames.next().await {
        if sender.send(Ok(AttachOutput { stream: u32::from(stream), data })).await.is_err() {
            return;
        }
    }
}
