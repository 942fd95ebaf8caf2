//! Applying plans through Berth's gRPC API: `up` (networks, volumes, then services in
//! dependency order, honouring `depends_on` conditions; only containers whose config
//! hash changed are recreated; replicas scaled up or down), `down`, and the project's
//! containers as docker compose finds them (by the `com.docker.compose.project` label).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use berth_host::agent::AgentClient;
use berth_proto::v1::{
    ConnectNetworkRequest, ContainerRef, ContainerSummary, CreateNetworkRequest, CreateVolumeRequest, InspectImageRequest, ListContainersRequest,
    ListNetworksRequest, ListVolumesRequest, NetworkRef, RemoveContainerRequest, RemoveImageRequest, RemoveVolumeRequest, StopContainerRequest,
    WaitContainerRequest,
};
use futures::StreamExt;

use crate::plan::{Plan, PlannedService, PullPolicy, LABEL_HASH, LABEL_NUMBER, LABEL_ONEOFF, LABEL_PROJECT, LABEL_SERVICE};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ApplyError(pub String);

fn call(what: impl std::fmt::Display) -> impl FnOnce(tonic::Status) -> ApplyError {
    move |s| ApplyError(format!("{what}: {}", s.message()))
}

/// How `up` runs.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    pub force_recreate: bool,
    pub remove_orphans: bool,
    /// Create, do not start.
    pub no_start: bool,
    /// How long to wait for a dependency to become healthy or complete.
    pub dependency_timeout: Option<Duration>,
    /// `--build`: build the services that have `build:` even when their image exists.
    pub build: bool,
}

/// Progress lines (`Container shop-web-1  Started`), for the caller to print.
pub type Progress<'a> = &'a mut (dyn FnMut(String) + Send);

/// The project's containers (one-off `run` containers too), by number.
pub async fn containers(agent: &AgentClient, project: &str) -> Result<Vec<ContainerSummary>, ApplyError> {
    let mut list = agent
        .containers()
        .list(ListContainersRequest { all: true, filters: vec![format!("label={LABEL_PROJECT}={project}")] })
        .await
        .map_err(call("list the project's containers"))?
        .into_inner()
        .containers;
    list.sort_by_key(|c| (c.labels.get(LABEL_SERVICE).cloned(), number(c)));
    Ok(list)
}

pub fn number(c: &ContainerSummary) -> u32 {
    c.labels.get(LABEL_NUMBER).and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn service_of(c: &ContainerSummary) -> &str {
    c.labels.get(LABEL_SERVICE).map(String::as_str).unwrap_or("")
}

fn is_oneoff(c: &ContainerSummary) -> bool {
    c.labels.get(LABEL_ONEOFF).is_some_and(|v| v == "True")
}

/// Makes the plan's networks and volumes (external ones must exist).
pub async fn ensure_resources(agent: &AgentClient, plan: &Plan, progress: Progress<'_>) -> Result<(), ApplyError> {
    let existing: Vec<String> =
        agent.networks().list(ListNetworksRequest::default()).await.map_err(call("list networks"))?.into_inner().networks.into_iter().map(|n| n.name).collect();
    for network in &plan.networks {
        if existing.contains(&network.name) {
            continue;
        }
        if network.external {
            return Err(ApplyError(format!("network {} declared as external, but could not be found", network.name)));
        }
        agent
            .networks()
            .create(CreateNetworkRequest {
                name: network.name.clone(),
                driver: "bridge".into(),
                subnet: network.subnet.clone().unwrap_or_default(),
                internal: network.internal,
                labels: network.labels.clone().into_iter().collect(),
                ..Default::default()
            })
            .await
            .map_err(call(format!("create network {}", network.name)))?;
        progress(format!("Network {}  Created", network.name));
    }
    let volumes: Vec<String> =
        agent.volumes().list(ListVolumesRequest::default()).await.map_err(call("list volumes"))?.into_inner().volumes.into_iter().map(|v| v.name).collect();
    for volume in &plan.volumes {
        if volumes.contains(&volume.name) {
            continue;
        }
        if volume.external {
            return Err(ApplyError(format!("external volume \"{}\" not found", volume.name)));
        }
        agent
            .volumes()
            .create(CreateVolumeRequest {
                name: volume.name.clone(),
                driver: "local".into(),
                labels: volume.labels.clone().into_iter().collect(),
                driver_opts: volume.driver_opts.clone().into_iter().collect(),
            })
            .await
            .map_err(call(format!("create volume {}", volume.name)))?;
        progress(format!("Volume \"{}\"  Created", volume.name));
    }
    Ok(())
}

/// Gets a service's image as its `pull_policy` says: built when it has `build:` and the
/// image is missing (or `rebuild`, or the policy is `build`); else pulled when the
/// engine lacks it (`missing`), every time (`always`) or never (`never`: a missing
/// image is an error). Only the engine's "no such image" counts as missing; another
/// failure to look is said as it is.
async fn ensure_image(agent: &AgentClient, service: &PlannedService, rebuild: bool, progress: Progress<'_>) -> Result<(), ApplyError> {
    let image = &service.create.image;
    let present = match agent.images().inspect(InspectImageRequest { reference: image.clone() }).await {
        Ok(_) => true,
        Err(status) if status.code() == tonic::Code::NotFound => false,
        Err(status) => return Err(call(format!("inspect image {image}"))(status)),
    };
    if service.build.is_some() && (rebuild || !present || service.pull_policy == PullPolicy::Build) {
        return build(agent, service, progress).await;
    }
    match service.pull_policy {
        PullPolicy::Always => pull(agent, image, progress).await,
        PullPolicy::Never if !present => Err(ApplyError(format!("service {}: image {image} is not present and its pull_policy is never", service.name))),
        _ if present => Ok(()),
        _ => pull(agent, image, progress).await,
    }
}

/// Builds a service's image (named as docker compose names it: the `image:` given, or
/// `<project>-<service>`), the build's output as progress lines.
pub async fn build(agent: &AgentClient, service: &PlannedService, progress: Progress<'_>) -> Result<(), ApplyError> {
    let Some(plan) = &service.build else { return Ok(()) };
    let image = &service.create.image;
    progress(format!("Image {image}  Building"));
    let spec = berth_proto::v1::BuildSpec {
        dockerfile: plan.dockerfile.clone(),
        tags: vec![image.clone()],
        build_args: plan.args.clone().into_iter().collect(),
        target: plan.target.clone(),
        ..Default::default()
    };
    let mut pending = String::new();
    berth_host::build::build(agent, &plan.context, spec, |text| {
        pending.push_str(text);
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            progress(format!("{}  {}", service.name, line.trim_end()));
        }
    })
    .await
    .map_err(|e| ApplyError(format!("service {}: {e}", service.name)))?;
    progress(format!("Image {image}  Built"));
    Ok(())
}

pub async fn pull(agent: &AgentClient, image: &str, progress: Progress<'_>) -> Result<(), ApplyError> {
    progress(format!("Image {image}  Pulling"));
    let mut stream = agent
        .images()
        // With the user's login for the registry, as the CLI's pull sends it.
        .pull(berth_host::credentials::pull_request(image, "").map_err(|e| ApplyError(format!("pull {image}: {e}")))?)
        .await
        .map_err(call(format!("pull {image}")))?
        .into_inner();
    while let Some(event) = stream.next().await {
        event.map_err(call(format!("pull {image}")))?;
    }
    progress(format!("Image {image}  Pulled"));
    Ok(())
}

async fn inspect_state(agent: &AgentClient, id: &str) -> Result<serde_json::Value, ApplyError> {
    let details = agent.containers().inspect(ContainerRef { id: id.to_owned() }).await.map_err(call("inspect"))?.into_inner();
    let json: serde_json::Value = serde_json::from_str(&details.inspect_json).map_err(|e| ApplyError(format!("inspect: {e}")))?;
    Ok(json["State"].clone())
}

/// Waits until every container of `dependency` meets `condition`.
async fn wait_for(agent: &AgentClient, project: &str, dependency: &str, condition: &str, timeout: Duration, progress: Progress<'_>) -> Result<(), ApplyError> {
    if condition == "service_started" {
        return Ok(());
    }
    let ids: Vec<String> = containers(agent, project).await?.into_iter().filter(|c| service_of(c) == dependency && !is_oneoff(c)).map(|c| c.id).collect();
    let deadline = Instant::now() + timeout;
    for id in ids {
        let name = &id[..12.min(id.len())];
        loop {
            let state = inspect_state(agent, &id).await?;
            match condition {
                "service_healthy" => match state["Health"]["Status"].as_str() {
                    Some("healthy") => break,
                    Some("unhealthy") => return Err(ApplyError(format!("dependency failed to start: container {name} of {dependency} is unhealthy"))),
                    None => return Err(ApplyError(format!("dependency {dependency} has no health check, so it cannot be waited for as healthy"))),
                    _ if state["Status"] == "exited" => return Err(ApplyError(format!("dependency failed to start: container {name} of {dependency} exited"))),
                    _ => {}
                },
                "service_completed_successfully" => {
                    if state["Status"] == "exited" {
                        let code = state["ExitCode"].as_i64().unwrap_or(-1);
                        if code == 0 {
                            break;
                        }
                        return Err(ApplyError(format!("service {dependency} didn't complete successfully: exit {code}")));
                    }
                }
                other => return Err(ApplyError(format!("unknown depends_on condition {other:?}"))),
            }
            if Instant::now() > deadline {
                return Err(ApplyError(format!("timed out waiting for {dependency} to be {}", condition.trim_start_matches("service_"))));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        progress(format!("Container {name}  {}", if condition == "service_healthy" { "Healthy" } else { "Exited" }));
    }
    Ok(())
}

async fn remove(agent: &AgentClient, c: &ContainerSummary, volumes: bool, progress: Progress<'_>) -> Result<(), ApplyError> {
    if c.state == "running" || c.state == "paused" || c.state == "restarting" {
        progress(format!("Container {}  Stopping", c.name));
        agent
            .containers()
            .stop(StopContainerRequest { id: c.id.clone(), timeout: -1, signal: String::new() })
            .await
            .map_err(call(format!("stop {}", c.name)))?;
        progress(format!("Container {}  Stopped", c.name));
    }
    agent.containers().remove(RemoveContainerRequest { id: c.id.clone(), force: true, volumes }).await.map_err(call(format!("remove {}", c.name)))?;
    progress(format!("Container {}  Removed", c.name));
    Ok(())
}

/// Stops and removes containers concurrently (stop timeouts run side by side).
async fn remove_together(agent: &AgentClient, group: &[ContainerSummary], volumes: bool, progress: Progress<'_>) -> Result<(), ApplyError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let removals = group.iter().map(|c| {
        let tx = tx.clone();
        async move {
            let mut report = |line: String| {
                let _ = tx.send(line);
            };
            remove(agent, c, volumes, &mut report).await
        }
    });
    let results = futures::future::join_all(removals).await;
    drop(tx);
    while let Some(line) = rx.recv().await {
        progress(line);
    }
    results.into_iter().collect::<Result<Vec<_>, _>>().map(|_| ())
}

/// Creates replica `number` of `service` and joins its other networks.
async fn create(agent: &AgentClient, plan: &Plan, service: &PlannedService, number: u32, progress: Progress<'_>) -> Result<String, ApplyError> {
    let request = service.request_for(&plan.project, number);
    let name = request.name.clone();
    progress(format!("Container {name}  Creating"));
    let id = agent.containers().create(request).await.map_err(call(format!("create {name}")))?.into_inner().id;
    for (network, aliases, ip) in &service.extra_networks {
        agent
            .networks()
            .connect_container(ConnectNetworkRequest { network: network.clone(), container: id.clone(), aliases: aliases.clone(), ipv4_address: ip.clone() })
            .await
            .map_err(call(format!("connect {name} to {network}")))?;
    }
    progress(format!("Container {name}  Created"));
    Ok(id)
}

/// `up`: brings the project to the plan. Returns the ids of the service containers.
pub async fn up(agent: &AgentClient, plan: &Plan, options: &UpOptions, progress: Progress<'_>) -> Result<Vec<String>, ApplyError> {
    for service in &plan.services {
        ensure_image(agent, service, options.build, progress).await?;
    }
    ensure_resources(agent, plan, progress).await?;
    let existing = containers(agent, &plan.project).await?;
    for orphan in existing.iter().filter(|c| !is_oneoff(c) && !plan.all_services.contains(service_of(c))) {
        if options.remove_orphans {
            remove(agent, orphan, false, progress).await?;
        } else {
            progress(format!("Found orphan container ({}) for this project; use --remove-orphans to clean it up", orphan.name));
        }
    }
    let timeout = options.dependency_timeout.unwrap_or(Duration::from_secs(120));
    let mut ids = Vec::new();
    for service in &plan.services {
        for (dependency, condition) in &service.depends_on {
            if plan.service(dependency).is_some() && !options.no_start {
                wait_for(agent, &plan.project, dependency, condition, timeout, progress).await?;
            }
        }
        let current: Vec<ContainerSummary> = existing.iter().filter(|c| service_of(c) == service.name && !is_oneoff(c)).cloned().collect();
        let mut by_number: BTreeMap<u32, ContainerSummary> = current.into_iter().map(|c| (number(&c), c)).collect();
        // Fewer replicas: the highest numbers go.
        let extra: Vec<u32> = by_number.keys().copied().filter(|n| *n > service.replicas || *n == 0).collect();
        let going: Vec<ContainerSummary> = extra.iter().filter_map(|n| by_number.remove(n)).collect();
        remove_together(agent, &going, false, progress).await?;
        for n in 1..=service.replicas {
            let id = match by_number.remove(&n) {
                Some(c) if !options.force_recreate && c.labels.get(LABEL_HASH) == Some(&service.hash) => {
                    if c.state != "running" && !options.no_start {
                        agent.containers().start(ContainerRef { id: c.id.clone() }).await.map_err(call(format!("start {}", c.name)))?;
                        progress(format!("Container {}  Started", c.name));
                    } else {
                        progress(format!("Container {}  Running", c.name));
                    }
                    ids.push(c.id);
                    continue;
                }
                Some(c) => {
                    progress(format!("Container {}  Recreate", c.name));
                    remove(agent, &c, false, progress).await?;
                    create(agent, plan, service, n, progress).await?
                }
                None => create(agent, plan, service, n, progress).await?,
            };
            if !options.no_start {
                let name = service.container_name(&plan.project, n);
                progress(format!("Container {name}  Starting"));
                agent.containers().start(ContainerRef { id: id.clone() }).await.map_err(call(format!("start {name}")))?;
                progress(format!("Container {name}  Started"));
            }
            ids.push(id);
        }
    }
    Ok(ids)
}

/// What `down` removes besides containers.
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    /// Named volumes of the project (not external ones) and anonymous volumes.
    pub volumes: bool,
    /// "all" or "local": images of the services.
    pub rmi: Option<String>,
    pub remove_orphans: bool,
}

/// `down`: stops and removes the project's containers (in reverse dependency order),
/// then its networks, and with `volumes` its volumes.
pub async fn down(agent: &AgentClient, plan: &Plan, options: &DownOptions, progress: Progress<'_>) -> Result<(), ApplyError> {
    let mut all = containers(agent, &plan.project).await?;
    // Dependents first (the reverse of the start order), orphans before them all; the
    // containers of one service stop together.
    let position = |c: &ContainerSummary| plan.services.iter().position(|s| s.name == service_of(c)).unwrap_or(usize::MAX);
    all.sort_by_key(|c| std::cmp::Reverse(position(c)));
    let mut groups: Vec<Vec<ContainerSummary>> = Vec::new();
    for c in all {
        let known = plan.all_services.contains(service_of(&c));
        if !(known || options.remove_orphans || is_oneoff(&c)) {
            progress(format!("Found orphan container ({}) for this project; use --remove-orphans to clean it up", c.name));
            continue;
        }
        match groups.last_mut() {
            Some(group) if group.first().is_some_and(|g| position(g) == position(&c)) => group.push(c),
            _ => groups.push(vec![c]),
        }
    }
    for group in groups {
        remove_together(agent, &group, options.volumes, progress).await?;
    }
    let networks = agent
        .networks()
        .list(ListNetworksRequest { filters: [("label".to_owned(), format!("{LABEL_PROJECT}={}", plan.project))].into() })
        .await
        .map_err(call("list networks"))?
        .into_inner()
        .networks;
    for network in networks {
        agent.networks().remove(NetworkRef { id: network.id.clone() }).await.map_err(call(format!("remove network {}", network.name)))?;
        progress(format!("Network {}  Removed", network.name));
    }
    if options.volumes {
        let volumes = agent
            .volumes()
            .list(ListVolumesRequest { filters: vec![format!("label={LABEL_PROJECT}={}", plan.project)], size: false })
            .await
            .map_err(call("list volumes"))?
            .into_inner()
            .volumes;
        for volume in volumes {
            agent
                .volumes()
                .remove(RemoveVolumeRequest { name: volume.name.clone(), force: false })
                .await
                .map_err(call(format!("remove volume {}", volume.name)))?;
            progress(format!("Volume {}  Removed", volume.name));
        }
    }
    if let Some(which) = &options.rmi {
        for service in &plan.services {
            // "local": only images without a custom tag, i.e. ones compose would have built.
            if which == "local" && service.build.is_none() {
                continue;
            }
            if agent.images().remove(RemoveImageRequest { reference: service.create.image.clone(), force: false }).await.is_ok() {
                progress(format!("Image {}  Removed", service.create.image));
            }
        }
    }
    Ok(())
}

/// Waits for a container to stop; returns its exit code.
pub async fn wait(agent: &AgentClient, id: &str) -> Result<i32, ApplyError> {
    Ok(agent.containers().wait(WaitContainerRequest { id: id.to_owned(), condition: "not-running".into() }).await.map_err(call("wait"))?.into_inner().exit_code)
}
