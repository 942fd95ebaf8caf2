//! A compose project as Kubernetes objects (k8s-openapi's typed ones), for
//! `berth stack deploy --orchestrator kubernetes`.
//!
//! Each service is a Deployment, or a StatefulSet when it has more than one replica and
//! named volumes (each replica then gets its own claim, as a ReadWriteOnce volume
//! cannot be shared across nodes); a service with ports is also a Service of its name
//! (published ports on a LoadBalancer, which desktop clusters put on localhost; `expose`
//! on a ClusterIP), so other services reach it by name as on a compose network. Named
//! volumes are PersistentVolumeClaims, file secrets Secrets and file configs ConfigMaps,
//! each mounted where compose would put it. What has no Kubernetes meaning (bind mounts
//! of host folders, `devices`, `pid`, a user by name, `restart: "no"`, ...) is
//! refused by its key; what Kubernetes does its own way (start order from `depends_on`,
//! networks) is said in the warnings.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::ConfigMapVolumeSource;
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, ExecAction, HostAlias, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PodDNSConfig, PodDNSConfigOption, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, Secret,
    SecretVolumeSource, SecurityContext, Service, ServicePort, ServiceSpec, Sysctl, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::ByteString;

use crate::model::{FileObject, Service as ComposeService};
use crate::project::Project;
use crate::refused;

pub mod cluster;

/// The label that selects a service's pods, with the project's.
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The size a named volume's claim asks for unless its `driver_opts` give `size`.
pub const DEFAULT_VOLUME_SIZE: &str = "1Gi";

/// What has no Kubernetes meaning, by its key.
pub type KubeError = crate::RenderError;

/// The objects, in apply order (claims, secrets and configs before what mounts them),
/// and what the cluster will do differently from compose.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub objects: Vec<serde_json::Value>,
    pub warnings: Vec<String>,
}

impl Rendered {
    /// One YAML document per object, as `kubectl apply -f` reads them.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        for object in &self.objects {
            out.push_str("---\n");
            out.push_str(&serde_norway::to_string(object).expect("JSON values are YAML"));
        }
        out
    }
}

/// A DNS-1123 label from a compose name (`my_app` -> `my-app`); refused when nothing
/// valid is left or it is too long.
pub fn object_name(name: &str) -> Option<String> {
    let mapped: String = name.chars().map(|c| if c == '_' || c == '.' { '-' } else { c.to_ascii_lowercase() }).collect();
    let valid = !mapped.is_empty()
        && mapped.len() <= 63
        && mapped.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !mapped.starts_with('-')
        && !mapped.ends_with('-');
    valid.then_some(mapped)
}

fn meta(name: &str, labels: &BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta { name: Some(name.to_owned()), labels: Some(labels.clone()), ..Default::default() }
}

/// Renders `services` (already chosen by profile) of `project` into `namespace`'s objects
/// (no namespace: the kubeconfig's).
pub fn render(project: &Project, services: &BTreeSet<String>) -> Result<Rendered, KubeError> {
    let file = &project.model;
    let project_name = object_name(&project.name).ok_or_else(|| refused("", "name", format!("{:?} is not a valid Kubernetes name", project.name)))?;
    let mut objects: Vec<serde_json::Value> = Vec::new();
    let mut warnings = Vec::new();
    let base_labels = |service: Option<&str>| {
        let mut labels = BTreeMap::from([(LABEL_PART_OF.to_owned(), project_name.clone()), (LABEL_MANAGED_BY.to_owned(), "berth".to_owned())]);
        if let Some(service) = service {
            labels.insert(LABEL_NAME.to_owned(), service.to_owned());
        }
        labels
    };
    let scoped = |name: &str, key: &str| -> Result<String, KubeError> {
        object_name(&format!("{project_name}-{name}")).ok_or_else(|| refused("", key, format!("{name:?} gives no valid Kubernetes name")))
    };

    // Which named volumes go per replica (StatefulSets) and which are shared claims.
    let mut names_seen = BTreeMap::new();
    let mut per_replica = BTreeSet::new();
    for name in services {
        let s = &file.services[name];
        let object = object_name(name).ok_or_else(|| refused(name, "services", "the name gives no valid Kubernetes name (lowercase letters, digits, '-')"))?;
        if let Some(other) = names_seen.insert(object.clone(), name.clone()) {
            return Err(refused(name, "services", format!("its Kubernetes name {object:?} is also service {other:?}'s")));
        }
        if replicas(s) > 1 {
            per_replica.extend(s.volumes.iter().filter(|v| v.kind == "volume").filter_map(|v| v.source.clone()));
        }
    }
    for name in services {
        let shared: Vec<&String> = file.services[name]
            .volumes
            .iter()
            .filter(|v| v.kind == "volume" && replicas(&file.services[name]) <= 1)
            .filter_map(|v| v.source.as_ref())
            .collect();
        if let Some(volume) = shared.into_iter().find(|v| per_replica.contains(*v)) {
            return Err(refused(name, "volumes", format!("volume {volume:?} is per replica in another service (it has replicas) and shared here")));
        }
    }

    // Claims for the shared named volumes.
    let mut claims = BTreeMap::new();
    for (volume, definition) in &file.volumes {
        let definition = definition.clone().unwrap_or_default();
        let used = services.iter().any(|s| file.services[s].volumes.iter().any(|v| v.kind == "volume" && v.source.as_deref() == Some(volume)));
        if !used {
            continue;
        }
        if definition.external {
            return Err(refused(
                "",
                &format!("volumes.{volume}.external"),
                "an external volume is a claim of the cluster's: create it there and drop `external`",
            ));
        }
        if let Some(driver) = definition.driver.as_deref().filter(|d| *d != "local") {
            return Err(refused(
                "",
                &format!("volumes.{volume}.driver"),
                format!("volume driver {driver:?} has no Kubernetes meaning (the cluster's storage class decides)"),
            ));
        }
        let size = definition.driver_opts.get("size").cloned().unwrap_or_else(|| DEFAULT_VOLUME_SIZE.to_owned());
        let claim = scoped(volume, &format!("volumes.{volume}"))?;
        let spec = PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            resources: Some(VolumeResourceRequirements { requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(size))])), ..Default::default() }),
            ..Default::default()
        };
        claims.insert(volume.clone(), (claim.clone(), spec.clone()));
        if !per_replica.contains(volume) {
            objects.push(to_json(&PersistentVolumeClaim { metadata: meta(&claim, &base_labels(None)), spec: Some(spec), ..Default::default() }));
        }
    }

    // Secrets and configs from files (external ones are the cluster's, by name).
    let mut secret_names = BTreeMap::new();
    for (kind, objects_of, names) in [("secrets", &file.secrets, &mut secret_names)] {
        for (name, object) in objects_of {
            if !services.iter().any(|s| file.services[s].secrets.iter().any(|r| &r.source == name)) {
                continue;
            }
            let (object_name, data) = file_object(project, kind, name, object, &scoped)?;
            names.insert(name.clone(), object_name.clone());
            if let Some(data) = data {
                objects.push(to_json(&Secret {
                    metadata: meta(&object_name, &base_labels(None)),
                    data: Some(BTreeMap::from([(name.clone(), ByteString(data))])),
                    type_: Some("Opaque".to_owned()),
                    ..Default::default()
                }));
            }
        }
    }
    let mut config_names = BTreeMap::new();
    for (name, object) in &file.configs {
        if !services.iter().any(|s| file.services[s].configs.iter().any(|r| &r.source == name)) {
            continue;
        }
        let (object_name, data) = file_object(project, "configs", name, object, &scoped)?;
        config_names.insert(name.clone(), object_name.clone());
        if let Some(data) = data {
            let text = String::from_utf8(data).map_err(|_| refused("", &format!("configs.{name}"), "a ConfigMap holds text: the file is not UTF-8"))?;
            objects.push(to_json(&ConfigMap {
                metadata: meta(&object_name, &base_labels(None)),
                data: Some(BTreeMap::from([(name.clone(), text)])),
                ..Default::default()
            }));
        }
    }

    if file.networks.values().flatten().any(|n| n.internal) {
        warnings.push("networks: `internal` is not kept: every pod of the cluster's network can reach every other (use a NetworkPolicy)".to_owned());
    } else if !file.networks.is_empty() {
        warnings.push("networks: the cluster has one network; services find each other by their Service names".to_owned());
    }

    for name in services {
        let s = &file.services[name];
        let object = object_name(name).expect("checked above");
        let labels = base_labels(Some(&object));
        let selector = BTreeMap::from([(LABEL_NAME.to_owned(), object.clone()), (LABEL_PART_OF.to_owned(), project_name.clone())]);
        let (pod, claim_templates) = pod_spec(project, name, s, &claims, &per_replica, &secret_names, &config_names)?;
        if !s.depends_on.is_empty() {
            warnings.push(format!("service {name}: depends_on is not kept: Kubernetes starts every pod at once (readiness probes gate traffic)"));
        }
        let template =
            PodTemplateSpec { metadata: Some(ObjectMeta { labels: Some(labels.clone()), annotations: annotations(s), ..Default::default() }), spec: Some(pod) };
        let service_ports = service_ports(name, s)?;
        let replicas = i32::try_from(replicas(s)).map_err(|_| refused(name, "deploy.replicas", "too many"))?;
        let label_selector = LabelSelector { match_labels: Some(selector.clone()), ..Default::default() };
        if !claim_templates.is_empty() {
            objects.push(to_json(&StatefulSet {
                metadata: workload_meta(&object, &labels, s),
                spec: Some(StatefulSetSpec {
                    replicas: Some(replicas),
                    selector: label_selector,
                    service_name: Some(object.clone()),
                    template,
                    volume_claim_templates: Some(claim_templates),
                    ..Default::default()
                }),
                ..Default::default()
            }));
        } else {
            let uses_claim = s.volumes.iter().any(|v| v.kind == "volume" && v.source.is_some());
            objects.push(to_json(&Deployment {
                metadata: workload_meta(&object, &labels, s),
                spec: Some(DeploymentSpec {
                    replicas: Some(replicas),
                    selector: label_selector,
                    // A ReadWriteOnce claim is released by the old pod before the new one mounts it.
                    strategy: if uses_claim {
                        Some(DeploymentStrategy { type_: Some("Recreate".to_owned()), ..Default::default() })
                    } else {
                        rolling_update(name, s)?
                    },
                    template,
                    ..Default::default()
                }),
                ..Default::default()
            }));
        }
        let stateful = objects.last().is_some_and(|o| o["kind"] == "StatefulSet");
        if dnsrr(s) && s.ports.iter().any(|p| p.published.is_some()) {
            return Err(refused(name, "deploy.endpoint_mode", "dnsrr with published ports: a LoadBalancer Service needs a cluster IP"));
        }
        if !service_ports.is_empty() || stateful {
            let published = s.ports.iter().any(|p| p.published.is_some());
            objects.push(to_json(&Service {
                metadata: meta(&object, &labels),
                spec: Some(ServiceSpec {
                    selector: Some(selector),
                    ports: (!service_ports.is_empty()).then_some(service_ports),
                    type_: Some(if published { "LoadBalancer" } else { "ClusterIP" }.to_owned()),
                    // A StatefulSet's governing Service with no ports is headless.
                    // dnsrr, or a StatefulSet's governing Service with no ports: headless.
                    cluster_ip: ((dnsrr(s) && !published) || (stateful && !published && s.ports.is_empty() && s.expose.is_empty())).then(|| "None".to_owned()),
                    ..Default::default()
                }),
                ..Default::default()
            }));
        }
    }
    Ok(Rendered { objects, warnings })
}

/// A Deployment's or StatefulSet's metadata: `deploy.labels` (the service's own, not its
/// containers') as annotations.
fn workload_meta(name: &str, labels: &BTreeMap<String, String>, s: &ComposeService) -> ObjectMeta {
    let deploy_labels: BTreeMap<String, String> =
        s.deploy.as_ref().map(|d| d.labels.iter().map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())).collect()).unwrap_or_default();
    ObjectMeta { annotations: (!deploy_labels.is_empty()).then_some(deploy_labels), ..meta(name, labels) }
}

fn to_json<T: serde::Serialize>(object: &T) -> serde_json::Value {
    serde_json::to_value(object).expect("k8s-openapi objects serialize")
}

fn dnsrr(s: &ComposeService) -> bool {
    s.deploy.as_ref().and_then(|d| d.endpoint_mode.as_deref()) == Some("dnsrr")
}

/// `deploy.update_config` as a Deployment's rolling update: `parallelism` pods at a time,
/// surged first with `order: start-first`, else stopped first; `delay` as the seconds a
/// new pod must be ready before the next step. A failed rollout stops where it is (its
/// `failure_action` is the cluster's: `kubectl rollout undo` rolls back).
fn rolling_update(service: &str, s: &ComposeService) -> Result<Option<DeploymentStrategy>, KubeError> {
    use k8s_openapi::api::apps::v1::RollingUpdateDeployment;
    let Some(update) = s.deploy.as_ref().and_then(|d| d.update_config.as_ref()) else { return Ok(None) };
    let step = IntOrString::Int(i32::try_from(update.parallelism.unwrap_or(1).max(1)).unwrap_or(i32::MAX));
    let (surge, unavailable) = match update.order.as_deref() {
        Some("start-first") => (step, IntOrString::Int(0)),
        None | Some("stop-first") => (IntOrString::Int(0), step),
        Some(other) => return Err(refused(service, "deploy.update_config.order", format!("{other:?} is not stop-first or start-first"))),
    };
    Ok(Some(DeploymentStrategy {
        type_: Some("RollingUpdate".to_owned()),
        rolling_update: Some(RollingUpdateDeployment { max_surge: Some(surge), max_unavailable: Some(unavailable) }),
    }))
}

fn replicas(s: &ComposeService) -> u32 {
    s.deploy.as_ref().and_then(|d| d.replicas).unwrap_or(1)
}

fn annotations(s: &ComposeService) -> Option<BTreeMap<String, String>> {
    let labels: BTreeMap<String, String> = s.labels.iter().map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())).collect();
    (!labels.is_empty()).then_some(labels)
}

/// A secret's or config's object name and, for a file, its bytes (`None`: external).
fn file_object(
    project: &Project,
    kind: &str,
    name: &str,
    object: &FileObject,
    scoped: &dyn Fn(&str, &str) -> Result<String, KubeError>,
) -> Result<(String, Option<Vec<u8>>), KubeError> {
    let key = format!("{kind}.{name}");
    if object.external {
        let cluster_name = object.name.clone().unwrap_or_else(|| name.to_owned());
        let valid =
            object_name(&cluster_name).filter(|n| *n == cluster_name).ok_or_else(|| refused("", &key, format!("{cluster_name:?} is not a Kubernetes name")))?;
        return Ok((valid, None));
    }
    let Some(path) = &object.file else {
        return Err(refused("", &key, "only `file:` and `external:` have a Kubernetes meaning here"));
    };
    let path = crate::plan::resolve_path(&project.dir, path);
    let data = std::fs::read(&path).map_err(|e| refused("", &key, format!("{}: {e}", path.display())))?;
    Ok((scoped(name, &key)?, Some(data)))
}

fn parse_port(service: &str, text: &str, key: &str) -> Result<i32, KubeError> {
    text.parse::<u16>().ok().filter(|p| *p > 0).map(i32::from).ok_or_else(|| refused(service, key, format!("{text:?}: Kubernetes takes one port, not a range")))
}

fn service_ports(service: &str, s: &ComposeService) -> Result<Vec<ServicePort>, KubeError> {
    let mut ports = Vec::new();
    for port in &s.ports {
        if port.mode.as_deref() == Some("host") {
            return Err(refused(service, "ports", "mode: host publishes on a Swarm node; a cluster publishes through its Service"));
        }
        if port.host_ip.as_deref().is_some_and(|ip| !ip.is_empty()) {
            return Err(refused(service, "ports", "a host IP has no Kubernetes meaning (a LoadBalancer listens where the cluster puts it)"));
        }
        let published = match &port.published {
            Some(p) => parse_port(service, p, "ports")?,
            None => i32::from(port.target),
        };
        let protocol = port.protocol.to_ascii_uppercase();
        ports.push(ServicePort {
            name: Some(format!("{}-{published}", protocol.to_ascii_lowercase())),
            port: published,
            target_port: Some(IntOrString::Int(i32::from(port.target))),
            protocol: Some(protocol),
            ..Default::default()
        });
    }
    for exposed in &s.expose {
        let (number, protocol) = exposed.split_once('/').unwrap_or((exposed, "tcp"));
        let number = parse_port(service, number, "expose")?;
        if ports.iter().any(|p| p.port == number) {
            continue;
        }
        ports.push(ServicePort {
            name: Some(format!("{protocol}-{number}")),
            port: number,
            target_port: Some(IntOrString::Int(number)),
            protocol: Some(protocol.to_ascii_uppercase()),
            ..Default::default()
        });
    }
    Ok(ports)
}

fn seconds(service: &str, key: &str, text: Option<&str>) -> Result<Option<i32>, KubeError> {
    let Some(text) = text else { return Ok(None) };
    let nanos = berth_proto::units::parse_duration(text).map_err(|e| refused(service, key, e))?;
    Ok(Some(i32::try_from((nanos.max(0) + 999_999_999) / 1_000_000_000).unwrap_or(i32::MAX)))
}

#[allow(clippy::too_many_arguments)]
fn pod_spec(
    project: &Project,
    name: &str,
    s: &ComposeService,
    claims: &BTreeMap<String, (String, PersistentVolumeClaimSpec)>,
    per_replica: &BTreeSet<String>,
    secret_names: &BTreeMap<String, String>,
    config_names: &BTreeMap<String, String>,
) -> Result<(PodSpec, Vec<PersistentVolumeClaim>), KubeError> {
    // Keys with no Kubernetes meaning, refused by name.
    let set = |present: bool, key: &str, why: &str| if present { Err(refused(name, key, why)) } else { Ok(()) };
    set(s.image.is_none(), "build", "a cluster pulls images: give the service an `image` (build and push it first)")?;
    set(s.pid.is_some(), "pid", "a pod cannot join the host's or another container's PID namespace this way")?;
    set(s.ipc.is_some(), "ipc", "a pod cannot join the host's or another container's IPC namespace this way")?;
    set(s.uts.is_some(), "uts", "no Kubernetes meaning")?;
    set(!s.links.is_empty(), "links", "services reach each other by their Service names")?;
    set(!s.devices.is_empty(), "devices", "host devices are the node's (use a device plugin)")?;
    set(!s.device_cgroup_rules.is_empty(), "device_cgroup_rules", "no Kubernetes meaning")?;
    set(s.shm_size.is_some(), "shm_size", "no Kubernetes meaning (mount an emptyDir with medium Memory on /dev/shm)")?;
    set(!s.ulimits.is_empty(), "ulimits", "no Kubernetes meaning (the node's runtime sets them)")?;
    set(s.logging.is_some(), "logging", "the cluster collects logs its own way")?;
    set(s.mac_address.is_some(), "mac_address", "no Kubernetes meaning")?;
    set(s.cpuset.is_some(), "cpuset", "no Kubernetes meaning (the kubelet's CPU manager pins CPUs)")?;
    set(s.runtime.is_some(), "runtime", "use a RuntimeClass of the cluster")?;
    set(s.cgroup.is_some(), "cgroup", "no Kubernetes meaning")?;
    set(s.container_name.is_some(), "container_name", "pods are named by their controller")?;
    set(s.init.is_some(), "init", "no Kubernetes meaning (put an init such as tini in the image)")?;
    set(s.stop_signal.is_some(), "stop_signal", "no Kubernetes meaning (pods are stopped with SIGTERM)")?;
    if let Some(deploy) = &s.deploy {
        set(
            deploy.mode.as_deref().is_some_and(|m| m != "replicated"),
            "deploy.mode",
            "only replicated services are rendered (a global one would be a DaemonSet)",
        )?;
        set(deploy.placement.is_some(), "deploy.placement", "Swarm's node constraints have no Kubernetes meaning (use node selectors or affinity)")?;
        set(deploy.rollback_config.is_some(), "deploy.rollback_config", "a Deployment rolls back with `kubectl rollout undo`")?;
        set(deploy.endpoint_mode.as_deref().is_some_and(|m| m != "vip" && m != "dnsrr"), "deploy.endpoint_mode", "expected vip or dnsrr")?;
        if let Some(condition) = deploy.restart_policy.as_ref().and_then(|r| r.condition.as_deref()).filter(|c| *c != "any") {
            return Err(refused(name, "deploy.restart_policy.condition", format!("{condition:?}: a Deployment's pods always restart")));
        }
    }
    if let Some(restart) = s.restart.as_deref() {
        if restart == "no" || restart.starts_with("on-failure") {
            return Err(refused(name, "restart", format!("{restart:?}: a Deployment's pods always restart")));
        }
    }
    for (network, attachment) in &s.networks {
        if !attachment.aliases.is_empty() {
            return Err(refused(name, &format!("networks.{network}.aliases"), "a service is reached by its Service name only"));
        }
    }

    let env = crate::plan::service_env(project, name, s).map_err(|e| KubeError::Other(e.to_string()))?;
    let mut mounts = Vec::new();
    let mut volumes = Vec::new();
    let mut templates = Vec::new();
    for (index, v) in s.volumes.iter().enumerate() {
        let volume_name = format!("v{index}");
        let read_only = v.read_only.then_some(true);
        match (v.kind.as_str(), v.source.as_deref()) {
            ("volume", Some(source)) => {
                let (claim, spec) = claims.get(source).ok_or_else(|| refused(name, "volumes", format!("volume {source:?} is not declared")))?;
                if per_replica.contains(source) {
                    templates.push(PersistentVolumeClaim {
                        metadata: ObjectMeta { name: Some(claim.clone()), ..Default::default() },
                        spec: Some(spec.clone()),
                        ..Default::default()
                    });
                    mounts.push(VolumeMount { name: claim.clone(), mount_path: v.target.clone(), read_only, ..Default::default() });
                    continue;
                }
                volumes.push(Volume {
                    name: volume_name.clone(),
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: claim.clone(), read_only }),
                    ..Default::default()
                });
            }
            ("volume", None) => volumes.push(Volume { name: volume_name.clone(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() }),
            ("tmpfs", _) => volumes.push(Volume {
                name: volume_name.clone(),
                empty_dir: Some(EmptyDirVolumeSource { medium: Some("Memory".to_owned()), ..Default::default() }),
                ..Default::default()
            }),
            (kind, _) => {
                return Err(refused(
                    name,
                    "volumes",
                    format!("a {kind} mount of {:?}: the host's folders are not the cluster's nodes'", v.source.as_deref().unwrap_or("")),
                ))
            }
        }
        mounts.push(VolumeMount { name: volume_name, mount_path: v.target.clone(), read_only, ..Default::default() });
    }
    for (index, r) in s.secrets.iter().enumerate() {
        let object = secret_names.get(&r.source).ok_or_else(|| refused(name, "secrets", format!("secret {:?} is not declared", r.source)))?;
        let target = match r.target.as_deref() {
            Some(t) if t.starts_with('/') => t.to_owned(),
            Some(t) => format!("/run/secrets/{t}"),
            None => format!("/run/secrets/{}", r.source),
        };
        let volume_name = format!("secret{index}");
        volumes.push(Volume {
            name: volume_name.clone(),
            secret: Some(SecretVolumeSource { secret_name: Some(object.clone()), ..Default::default() }),
            ..Default::default()
        });
        mounts.push(VolumeMount { name: volume_name, mount_path: target, sub_path: Some(r.source.clone()), read_only: Some(true), ..Default::default() });
    }
    for (index, r) in s.configs.iter().enumerate() {
        let object = config_names.get(&r.source).ok_or_else(|| refused(name, "configs", format!("config {:?} is not declared", r.source)))?;
        let target = r.target.clone().unwrap_or_else(|| format!("/{}", r.source));
        let volume_name = format!("config{index}");
        volumes.push(Volume {
            name: volume_name.clone(),
            config_map: Some(ConfigMapVolumeSource { name: object.clone(), ..Default::default() }),
            ..Default::default()
        });
        mounts.push(VolumeMount { name: volume_name, mount_path: target, sub_path: Some(r.source.clone()), read_only: Some(true), ..Default::default() });
    }

    let mut ports: Vec<ContainerPort> = Vec::new();
    for port in &s.ports {
        let protocol = port.protocol.to_ascii_uppercase();
        if !ports.iter().any(|p| p.container_port == i32::from(port.target) && p.protocol.as_deref() == Some(protocol.as_str())) {
            ports.push(ContainerPort { container_port: i32::from(port.target), protocol: Some(protocol), ..Default::default() });
        }
    }

    let readiness = match &s.healthcheck {
        Some(h) if !h.disable => match h.test.as_deref() {
            None => None,
            Some([first, ..]) if first == "NONE" => None,
            Some([first, rest @ ..]) if first == "CMD" => Some(rest.to_vec()),
            Some([first, command]) if first == "CMD-SHELL" => Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), command.clone()]),
            Some([command]) => Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), command.clone()]),
            Some(other) => return Err(refused(name, "healthcheck.test", format!("{other:?} is not CMD, CMD-SHELL or NONE"))),
        }
        .map(|command| -> Result<Probe, KubeError> {
            Ok(Probe {
                exec: Some(ExecAction { command: Some(command) }),
                period_seconds: seconds(name, "healthcheck.interval", h.interval.as_deref())?,
                timeout_seconds: seconds(name, "healthcheck.timeout", h.timeout.as_deref())?,
                initial_delay_seconds: seconds(name, "healthcheck.start_period", h.start_period.as_deref())?,
                failure_threshold: h.retries.map(|r| i32::try_from(r).unwrap_or(i32::MAX)),
                ..Default::default()
            })
        })
        .transpose()?,
        _ => None,
    };

    let resources = s.deploy.as_ref().and_then(|d| d.resources.as_ref()).map(|r| -> Result<ResourceRequirements, KubeError> {
        let quantities = |limits: Option<&crate::model::Limits>, key: &str| -> Result<Option<BTreeMap<String, Quantity>>, KubeError> {
            let Some(limits) = limits else { return Ok(None) };
            let mut out = BTreeMap::new();
            if let Some(cpus) = &limits.cpus {
                cpus.parse::<f64>()
                    .ok()
                    .filter(|c| *c > 0.0)
                    .ok_or_else(|| refused(name, &format!("deploy.resources.{key}.cpus"), format!("{cpus:?} is not a number of CPUs")))?;
                out.insert("cpu".to_owned(), Quantity(cpus.clone()));
            }
            if let Some(memory) = &limits.memory {
                let bytes = berth_proto::units::parse_bytes(memory).map_err(|e| refused(name, &format!("deploy.resources.{key}.memory"), e))?;
                out.insert("memory".to_owned(), Quantity(bytes.to_string()));
            }
            if limits.pids.is_some() {
                return Err(refused(name, &format!("deploy.resources.{key}.pids"), "no Kubernetes meaning (the kubelet sets a pod's PID limit)"));
            }
            Ok((!out.is_empty()).then_some(out))
        };
        Ok(ResourceRequirements {
            limits: quantities(r.limits.as_ref(), "limits")?,
            requests: quantities(r.reservations.as_ref(), "reservations")?,
            ..Default::default()
        })
    });
    let resources = resources.transpose()?;

    let (run_as_user, run_as_group) = match s.user.as_deref() {
        None | Some("") => (None, None),
        Some(user) => {
            let (uid, gid) = user.split_once(':').map_or((user, None), |(u, g)| (u, Some(g)));
            let number =
                |text: &str| text.parse::<i64>().map_err(|_| refused(name, "user", format!("{user:?}: Kubernetes takes a numeric uid[:gid], not a name")));
            (Some(number(uid)?), gid.map(number).transpose()?)
        }
    };
    let capabilities = (!s.cap_add.is_empty() || !s.cap_drop.is_empty()).then(|| Capabilities {
        add: (!s.cap_add.is_empty()).then(|| s.cap_add.iter().map(|c| c.trim_start_matches("CAP_").to_owned()).collect()),
        drop: (!s.cap_drop.is_empty()).then(|| s.cap_drop.iter().map(|c| c.trim_start_matches("CAP_").to_owned()).collect()),
    });
    let security = SecurityContext {
        run_as_user,
        run_as_group,
        privileged: s.privileged.then_some(true),
        read_only_root_filesystem: s.read_only.then_some(true),
        capabilities,
        ..Default::default()
    };
    let security = (security != SecurityContext::default()).then_some(security);

    let container = Container {
        name: object_name(name).expect("checked by render"),
        image: s.image.clone(),
        command: s.entrypoint.clone(),
        args: s.command.clone(),
        env: (!env.is_empty()).then(|| env.into_iter().map(|(name, value)| EnvVar { name, value: Some(value), ..Default::default() }).collect()),
        ports: (!ports.is_empty()).then_some(ports),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        readiness_probe: readiness,
        resources,
        security_context: security,
        working_dir: s.working_dir.clone(),
        tty: s.tty.then_some(true),
        stdin: s.stdin_open.then_some(true),
        image_pull_policy: match s.pull_policy.as_deref() {
            None | Some("missing") | Some("if_not_present") => None,
            Some("always") => Some("Always".to_owned()),
            Some("never") => Some("Never".to_owned()),
            Some(other) => return Err(refused(name, "pull_policy", format!("{other:?} has no Kubernetes meaning"))),
        },
        ..Default::default()
    };

    let mut host_aliases: Vec<HostAlias> = Vec::new();
    for entry in &s.extra_hosts {
        let (host, ip) =
            entry.split_once('=').or_else(|| entry.split_once(':')).ok_or_else(|| refused(name, "extra_hosts", format!("{entry:?}: expected HOST:IP")))?;
        if ip == "host-gateway" {
            return Err(refused(name, "extra_hosts", "host-gateway has no Kubernetes meaning"));
        }
        match host_aliases.iter_mut().find(|a| a.ip == ip) {
            Some(alias) => alias.hostnames.get_or_insert_with(Vec::new).push(host.to_owned()),
            None => host_aliases.push(HostAlias { ip: ip.to_owned(), hostnames: Some(vec![host.to_owned()]) }),
        }
    }
    let dns_config = (!s.dns.is_empty() || !s.dns_search.is_empty() || !s.dns_opt.is_empty()).then(|| PodDNSConfig {
        nameservers: (!s.dns.is_empty()).then(|| s.dns.clone()),
        searches: (!s.dns_search.is_empty()).then(|| s.dns_search.clone()),
        options: (!s.dns_opt.is_empty()).then(|| {
            s.dns_opt
                .iter()
                .map(|o| {
                    let (name, value) = o.split_once(':').map_or((o.as_str(), None), |(n, v)| (n, Some(v.to_owned())));
                    PodDNSConfigOption { name: Some(name.to_owned()), value }
                })
                .collect()
        }),
    });
    let mut supplemental = Vec::new();
    for group in &s.group_add {
        supplemental.push(group.parse::<i64>().map_err(|_| refused(name, "group_add", format!("{group:?}: Kubernetes takes numeric groups")))?);
    }
    let sysctls: Vec<Sysctl> = s.sysctls.iter().map(|(name, value)| Sysctl { name: name.clone(), value: value.clone().unwrap_or_default() }).collect();
    let pod_security = PodSecurityContext {
        supplemental_groups: (!supplemental.is_empty()).then_some(supplemental),
        sysctls: (!sysctls.is_empty()).then_some(sysctls),
        ..Default::default()
    };
    let pod = PodSpec {
        containers: vec![container],
        volumes: (!volumes.is_empty()).then_some(volumes),
        hostname: s.hostname.clone(),
        host_aliases: (!host_aliases.is_empty()).then_some(host_aliases),
        dns_config,
        security_context: (pod_security != PodSecurityContext::default()).then_some(pod_security),
        termination_grace_period_seconds: seconds(name, "stop_grace_period", s.stop_grace_period.as_deref())?.map(i64::from),
        ..Default::default()
    };
    Ok((pod, templates))
}

/// What `--dry-run` prints: the warnings as YAML comments, then the manifests.
pub fn dry_run_text(rendered: &Rendered) -> String {
    let mut out: String = rendered.warnings.iter().map(|w| format!("# warning: {w}\n")).collect();
    out.push_str(&rendered.to_yaml());
    out
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn corpus() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/kube-corpus")
    }

    fn load(dir: &Path) -> Project {
        crate::project::load_project(&crate::project::LoadOptions { working_dir: dir.to_owned(), ..Default::default() }).expect("the case loads")
    }

    fn render_dir(dir: &Path) -> Result<Rendered, KubeError> {
        let project = load(dir);
        let services = crate::plan::enabled_services(&project.model, &[], &[]).expect("services");
        render(&project, &services)
    }

    #[test]
    fn the_corpus_renders_as_its_golden_files() {
        let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus()).expect("corpus").map(|e| e.expect("entry").path()).filter(|p| p.is_dir()).collect();
        cases.sort();
        assert!(cases.len() >= 3, "the corpus is there");
        for case in cases {
            let text = dry_run_text(&render_dir(&case).unwrap_or_else(|e| panic!("{}: {e}", case.display())));
            let expected = case.join("expected.yaml");
            if std::env::var_os("BERTH_BLESS").is_some() {
                std::fs::write(&expected, &text).expect("bless");
                continue;
            }
            let want = std::fs::read_to_string(&expected).unwrap_or_else(|e| panic!("{}: {e} (BERTH_BLESS=1 writes it)", expected.display()));
            assert_eq!(text, want, "{} renders differently (BERTH_BLESS=1 writes it again after review)", case.display());
        }
    }

    #[test]
    fn what_has_no_kubernetes_meaning_is_refused_by_name() {
        #[derive(serde::Deserialize)]
        struct Case {
            why: String,
            compose: String,
        }
        let cases: Vec<Case> = serde_norway::from_str(&std::fs::read_to_string(corpus().join("refused.yaml")).expect("refused.yaml")).expect("yaml");
        assert!(cases.len() >= 5);
        for (n, case) in cases.iter().enumerate() {
            let dir = std::env::temp_dir().join(format!("berth-kube-refused-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("dir");
            std::fs::write(dir.join("compose.yaml"), &case.compose).expect("write");
            let result = render_dir(&dir);
            let _ = std::fs::remove_dir_all(&dir);
            match result {
                Err(e) => assert!(e.to_string().starts_with(&case.why), "case {n}: {e:?} does not start with {:?}", case.why),
                Ok(_) => panic!("case {n} rendered; it should be refused: {}", case.why),
            }
        }
    }

    #[test]
    fn names_become_dns_labels_or_are_refused() {
        assert_eq!(object_name("my_app.web").as_deref(), Some("my-app-web"));
        assert_eq!(object_name("Web").as_deref(), Some("web"));
        assert_eq!(object_name("_x"), None);
        assert_eq!(object_name(&"a".repeat(64)), None);
    }
}
