//! A rendered stack on the cluster of a kubeconfig, through kube-rs: deployed with
//! server-side apply (Berth owns the fields it sets, as field manager `berth`, and takes
//! them back from whoever changed them since), listed and removed by the stack's labels.
//!
//! Removing a stack keeps its PersistentVolumeClaims, as `docker compose down` keeps
//! named volumes: their data goes only when the user deletes them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ::kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use ::kube::config::{KubeConfigOptions, Kubeconfig};
use ::kube::core::ApiResource;
use ::kube::{Client, Config};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
use serde_json::Value;

use super::{Rendered, LABEL_MANAGED_BY, LABEL_NAME, LABEL_PART_OF};

/// The field manager Berth applies as.
pub const FIELD_MANAGER: &str = "berth";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("the kubeconfig: {0}")]
    Kubeconfig(String),
    /// The API server refused, or could not be reached.
    #[error("{what}: {message}")]
    Api { what: String, message: String },
    #[error("{0}")]
    Object(String),
}

fn api_error(what: String, error: ::kube::Error) -> ClusterError {
    let message = match error {
        ::kube::Error::Api(status) => format!("{} ({} {})", status.message, status.code, status.reason),
        other => other.to_string(),
    };
    ClusterError::Api { what, message }
}

/// The kinds a stack is made of, in apply order (what is mounted before what mounts it).
fn kinds() -> [ApiResource; 6] {
    [
        ApiResource::erase::<PersistentVolumeClaim>(&()),
        ApiResource::erase::<Secret>(&()),
        ApiResource::erase::<ConfigMap>(&()),
        ApiResource::erase::<Deployment>(&()),
        ApiResource::erase::<StatefulSet>(&()),
        ApiResource::erase::<Service>(&()),
    ]
}

/// The kinds of a stack's workloads.
fn workload_kinds() -> impl Iterator<Item = ApiResource> {
    kinds().into_iter().filter(|r| r.kind == "Deployment" || r.kind == "StatefulSet")
}

/// `kind.group/name`, as kubectl names an object in what it prints.
fn display_name(resource: &ApiResource, name: &str) -> String {
    let kind = resource.kind.to_lowercase();
    if resource.group.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}.{}/{name}", resource.group)
    }
}

/// The label selector of a stack's objects.
pub fn stack_selector(stack: &str) -> String {
    format!("{LABEL_PART_OF}={stack},{LABEL_MANAGED_BY}=berth")
}

/// A workload of a stack, as `berth stack services` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub name: String,
    pub kind: String,
    pub ready: i64,
    pub desired: i64,
    pub image: String,
}

/// A pod of a stack, as `berth stack ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRow {
    pub name: String,
    pub service: String,
    pub image: String,
    pub node: String,
    pub phase: String,
    pub ready: String,
    pub restarts: i64,
}

pub struct Cluster {
    client: Client,
    namespace: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("namespace", &self.namespace).finish_non_exhaustive()
    }
}

impl Cluster {
    /// The cluster of `kubeconfig` (else `KUBECONFIG`, else `~/.kube/config`), its
    /// `context` (else the current one), in `namespace` (else the context's, else
    /// `default`).
    pub async fn connect(kubeconfig: Option<&Path>, context: Option<&str>, namespace: Option<&str>) -> Result<Self, ClusterError> {
        let options = KubeConfigOptions { context: context.map(str::to_owned), ..Default::default() };
        let config = match kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path).map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
                Config::from_custom_kubeconfig(file, &options).await
            }
            None => Config::from_kubeconfig(&options).await,
        }
        .map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
        let namespace = namespace.map(str::to_owned).unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
        Ok(Cluster { client, namespace })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn api(&self, resource: &ApiResource) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, resource)
    }

    /// Applies every object of `rendered`, in its order; with `prune`, then deletes the
    /// objects of the stack `rendered` no longer has (its claims excepted, as `remove`
    /// keeps them). A line per object, as `kubectl apply --server-side --prune` prints
    /// them.
    pub async fn deploy(&self, stack: &str, rendered: &Rendered, prune: bool) -> Result<Vec<String>, ClusterError> {
        let kinds = kinds();
        let mut lines = Vec::new();
        let mut applied = BTreeSet::new();
        for object in &rendered.objects {
            let (kind, version) = (object["kind"].as_str().unwrap_or_default(), object["apiVersion"].as_str().unwrap_or_default());
            let resource = kinds
                .iter()
                .find(|r| r.kind == kind && r.api_version == version)
                .ok_or_else(|| ClusterError::Object(format!("{version} {kind} is not a kind Berth applies")))?;
            let mut object: DynamicObject = serde_json::from_value(object.clone()).map_err(|e| ClusterError::Object(format!("{kind}: {e}")))?;
            object.metadata.namespace = Some(self.namespace.clone());
            let name = object.metadata.name.clone().ok_or_else(|| ClusterError::Object(format!("a {kind} without a name")))?;
            let what = display_name(resource, &name);
            self.api(resource)
                .patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&object))
                .await
                .map_err(|e| api_error(what.clone(), e))?;
            lines.push(format!("{what} serverside-applied"));
            applied.insert(what);
        }
        if prune {
            lines.extend(self.sweep(stack, &applied, "pruned").await?.0);
        }
        Ok(lines)
    }

    /// Deletes the stack's objects not named in `keep`, workloads first, a line each
    /// (`<object> <verb>`); its claims are never deleted, and are returned beside.
    async fn sweep(&self, stack: &str, keep: &BTreeSet<String>, verb: &str) -> Result<(Vec<String>, Vec<String>), ClusterError> {
        let selector = stack_selector(stack);
        let (mut lines, mut claims) = (Vec::new(), Vec::new());
        for resource in kinds().iter().rev() {
            for object in self.list(resource, &selector).await? {
                let name = object.metadata.name.unwrap_or_default();
                let what = display_name(resource, &name);
                if resource.kind == "PersistentVolumeClaim" {
                    claims.push(what);
                } else if !keep.contains(&what) {
                    self.delete(resource, &name, &what).await?;
                    lines.push(format!("{what} {verb}"));
                }
            }
        }
        Ok((lines, claims))
    }

    /// Deletes an object; one gone already (another client, the garbage collector) is
    /// what was asked.
    async fn delete(&self, resource: &ApiResource, name: &str, what: &str) -> Result<(), ClusterError> {
        match self.api(resource).delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(::kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(api_error(what.to_owned(), e)),
        }
    }

    async fn list(&self, resource: &ApiResource, selector: &str) -> Result<Vec<DynamicObject>, ClusterError> {
        let listed = self
            .api(resource)
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| api_error(format!("listing {}s", resource.kind.to_lowercase()), e))?;
        Ok(listed.items)
    }

    /// Removes a stack's objects, workloads first; its claims are kept, and said.
    pub async fn remove(&self, stack: &str) -> Result<Vec<String>, ClusterError> {
        let (mut lines, kept) = self.sweep(stack, &BTreeSet::new(), "deleted").await?;
        if !kept.is_empty() {
            lines.push(format!("kept the volumes' claims (their data): {} (kubectl delete removes them)", kept.join(", ")));
        }
        Ok(lines)
    }

    /// The stacks in the namespace, with their number of workloads.
    pub async fn stacks(&self) -> Result<BTreeMap<String, usize>, ClusterError> {
        let mut stacks = BTreeMap::new();
        for resource in workload_kinds() {
            for object in self.list(&resource, &format!("{LABEL_MANAGED_BY}=berth,{LABEL_PART_OF}")).await? {
                if let Some(stack) = object.metadata.labels.as_ref().and_then(|l| l.get(LABEL_PART_OF)) {
                    *stacks.entry(stack.clone()).or_insert(0) += 1;
                }
            }
        }
        Ok(stacks)
    }

    /// A stack's Deployments and StatefulSets.
    pub async fn workloads(&self, stack: &str) -> Result<Vec<Workload>, ClusterError> {
        let mut rows = Vec::new();
        for resource in workload_kinds() {
            for object in self.list(&resource, &stack_selector(stack)).await? {
                let data = &object.data;
                rows.push(Workload {
                    name: object.metadata.name.clone().unwrap_or_default(),
                    kind: resource.kind.clone(),
                    ready: data["status"]["readyReplicas"].as_i64().unwrap_or(0),
                    desired: data["spec"]["replicas"].as_i64().unwrap_or(1),
                    image: data["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap_or_default().to_owned(),
                });
            }
        }
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows)
    }

    /// A stack's pods.
    pub async fn pods(&self, stack: &str) -> Result<Vec<PodRow>, ClusterError> {
        let resource = ApiResource::erase::<Pod>(&());
        let mut rows: Vec<PodRow> = self.list(&resource, &format!("{LABEL_PART_OF}={stack}")).await?.iter().map(pod_row).collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows)
    }
}

fn pod_row(object: &DynamicObject) -> PodRow {
    let data = &object.data;
    let statuses: &[Value] = data["status"]["containerStatuses"].as_array().map(Vec::as_slice).unwrap_or_default();
    let containers = data["spec"]["containers"].as_array().map(Vec::len).unwrap_or(0);
    PodRow {
        name: object.metadata.name.clone().unwrap_or_default(),
        service: object.metadata.labels.as_ref().and_then(|l| l.get(LABEL_NAME)).cloned().unwrap_or_default(),
        image: data["spec"]["containers"][0]["image"].as_str().unwrap_or_default().to_owned(),
        node: data["spec"]["nodeName"].as_str().unwrap_or_default().to_owned(),
        phase: data["status"]["phase"].as_str().unwrap_or("Pending").to_owned(),
        ready: format!("{}/{containers}", statuses.iter().filter(|s| s["ready"] == true).count()),
        restarts: statuses.iter().filter_map(|s| s["restartCount"].as_i64()).sum(),
    }
}

#[cfg(test)]
mod tests {
    //! The requests Berth makes of a cluster, against a small in-memory stand-in for
    //! the API server (a unit test of this module's logic: whether a real API server
    //! accepts the objects is for a real one, which cannot be started on these machines).

    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    use super::*;

    #[derive(Debug, Clone)]
    struct Request {
        method: String,
        path: String,
        query: String,
        headers: HashMap<String, String>,
        body: Value,
    }

    #[derive(Default)]
    struct Server {
        requests: Vec<Request>,
        /// Collection path (`/apis/apps/v1/namespaces/shop/deployments`) -> name -> object.
        store: BTreeMap<String, BTreeMap<String, Value>>,
        /// Answers PATCHes of this name with 422.
        refuse: Option<String>,
    }

    fn matches(object: &Value, selector: &str) -> bool {
        selector.split(',').filter(|t| !t.is_empty()).all(|term| {
            let labels = &object["metadata"]["labels"];
            match term.split_once('=') {
                Some((k, v)) => labels[k] == v,
                None => labels.get(term).is_some(),
            }
        })
    }

    fn decode(s: &str) -> String {
        s.replace("%2F", "/").replace("%2C", ",").replace("%3D", "=")
    }

    fn answer(server: &Mutex<Server>, request: Request) -> (u16, Value) {
        let mut server = server.lock().expect("lock");
        server.requests.push(request.clone());
        let (collection, name) = match request.path.rsplit_once('/') {
            Some((c, n)) if request.method != "GET" => (c.to_owned(), Some(n.to_owned())),
            _ => (request.path.clone(), None),
        };
        match (request.method.as_str(), name) {
            ("PATCH", Some(name)) => {
                if server.refuse.as_deref() == Some(name.as_str()) {
                    return (
                        422,
                        serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": format!("{name} is invalid: spec.replicas: Invalid value"), "reason": "Invalid", "code": 422}),
                    );
                }
                server.store.entry(collection).or_default().insert(name, request.body.clone());
                (200, request.body)
            }
            ("DELETE", Some(name)) => match server.store.get_mut(&collection).and_then(|c| c.remove(&name)) {
                Some(object) => (200, object),
                None => (
                    404,
                    serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
                ),
            },
            ("GET", None) => {
                let selector = request.query.split('&').find_map(|p| p.strip_prefix("labelSelector=")).map(decode).unwrap_or_default();
                let items: Vec<Value> =
                    server.store.get(&collection).map(|c| c.values().filter(|o| matches(o, &selector)).cloned().collect()).unwrap_or_default();
                (200, serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items}))
            }
            _ => (405, serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 405, "message": "not here"})),
        }
    }

    /// One request per connection, answered and closed.
    async fn serve(listener: TcpListener, server: Arc<Mutex<Server>>) {
        while let Ok((stream, _)) = listener.accept().await {
            let server = server.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let mut parts = line.split_whitespace();
                let (method, target) = (parts.next().unwrap_or_default().to_owned(), parts.next().unwrap_or_default().to_owned());
                let mut headers = HashMap::new();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).await.unwrap_or(0) == 0 || header.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = header.split_once(':') {
                        headers.insert(k.trim().to_lowercase(), v.trim().to_owned());
                    }
                }
                let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
                let mut body = vec![0; length];
                reader.read_exact(&mut body).await.expect("body");
                let (path, query) = target.split_once('?').map(|(p, q)| (p.to_owned(), q.to_owned())).unwrap_or((target.clone(), String::new()));
                let body = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).expect("a JSON body") };
                let (status, reply) = answer(&server, Request { method, path, query, headers, body });
                let reply = reply.to_string();
                let head = format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", reply.len());
                let mut stream = reader.into_inner();
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(reply.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    }

    async fn start(dir: &Path) -> (Arc<Mutex<Server>>, std::path::PathBuf) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = Arc::new(Mutex::new(Server::default()));
        tokio::spawn(serve(listener, server.clone()));
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: desk\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\n\
                 users:\n- name: u\n  user:\n    token: s3cret-token\ncontexts:\n- name: desk\n  context:\n    cluster: c\n    user: u\n    namespace: dev\n\
                 - name: other\n  context:\n    cluster: c\n    user: u\n"
            ),
        )
        .expect("kubeconfig");
        (server, kubeconfig)
    }

    fn rendered(case: &str) -> Rendered {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/kube-corpus").join(case);
        let project = crate::project::load_project(&crate::project::LoadOptions { working_dir: dir, ..Default::default() }).expect("the case loads");
        let services = crate::plan::enabled_services(&project.model, &[], &[]).expect("services");
        super::super::render(&project, &services).expect("renders")
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-kube-cluster-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[tokio::test]
    async fn a_stack_is_applied_server_side_listed_and_removed_keeping_its_claims() {
        let dir = temp_dir("cycle");
        let (server, kubeconfig) = start(&dir).await;
        let stack = rendered("web-worker-db");
        let project = stack.objects[0]["metadata"]["labels"][LABEL_PART_OF].as_str().expect("part-of").to_owned();
        let cluster = Cluster::connect(Some(&kubeconfig), None, None).await.expect("connects");
        assert_eq!(cluster.namespace(), "dev", "the context's namespace");

        let lines = cluster.deploy(&project, &stack, false).await.expect("applies");
        assert_eq!(lines.len(), stack.objects.len());
        assert_eq!(lines[0], format!("persistentvolumeclaim/{} serverside-applied", stack.objects[0]["metadata"]["name"].as_str().expect("name")));
        let requests = server.lock().expect("lock").requests.clone();
        assert_eq!(requests.len(), stack.objects.len(), "one request per object");
        for (request, object) in requests.iter().zip(&stack.objects) {
            let name = object["metadata"]["name"].as_str().expect("name");
            assert_eq!(request.method, "PATCH");
            let group = if object["apiVersion"] == "v1" { "/api/v1".to_owned() } else { format!("/apis/{}", object["apiVersion"].as_str().expect("v")) };
            let plural = format!("{}s", object["kind"].as_str().expect("kind").to_lowercase());
            assert_eq!(request.path, format!("{group}/namespaces/dev/{plural}/{name}"));
            let query: Vec<&str> = request.query.split('&').collect();
            assert!(query.contains(&"fieldManager=berth") && query.contains(&"force=true"), "{}", request.query);
            assert_eq!(request.headers.get("content-type").map(String::as_str), Some("application/apply-patch+yaml"));
            assert_eq!(request.headers.get("authorization").map(String::as_str), Some("Bearer s3cret-token"));
            assert_eq!(request.body["metadata"]["namespace"], "dev");
            let mut sent = request.body.clone();
            sent["metadata"].as_object_mut().expect("metadata").remove("namespace");
            assert_eq!(&sent, object, "the rendered object, whole");
        }

        let workloads = stack.objects.iter().filter(|o| o["kind"] == "Deployment" || o["kind"] == "StatefulSet").count();
        assert_eq!(cluster.stacks().await.expect("stacks"), BTreeMap::from([(project.clone(), workloads)]));
        let rows = cluster.workloads(&project).await.expect("workloads");
        assert_eq!(rows.len(), workloads);
        assert!(rows.iter().all(|w| w.ready == 0 && !w.image.is_empty()), "{rows:?}");

        // Deployed again without a service: with prune its Deployment and Service go (and
        // nothing else); without, they stay, as docker stack deploy leaves them.
        let dropped = "worker";
        let without =
            Rendered { objects: stack.objects.iter().filter(|o| o["metadata"]["labels"][LABEL_NAME] != dropped).cloned().collect(), warnings: Vec::new() };
        assert!(without.objects.len() < stack.objects.len(), "the case has a {dropped}");
        cluster.deploy(&project, &without, false).await.expect("applies");
        assert_eq!(cluster.workloads(&project).await.expect("workloads").len(), workloads, "not pruned unless asked");
        let lines = cluster.deploy(&project, &without, true).await.expect("applies");
        let pruned: Vec<&String> = lines.iter().filter(|l| l.ends_with(" pruned")).collect();
        let dropped_objects = stack.objects.len() - without.objects.len();
        assert_eq!(pruned.len(), dropped_objects, "{lines:?}");
        assert!(pruned.iter().all(|l| l.ends_with(&format!("/{dropped} pruned"))), "{pruned:?}");
        cluster.deploy(&project, &stack, false).await.expect("applies again");

        // Another namespace holds nothing of it.
        let other = Cluster::connect(Some(&kubeconfig), Some("other"), None).await.expect("connects");
        assert_eq!(other.namespace(), "default");
        assert!(other.stacks().await.expect("stacks").is_empty());

        let lines = cluster.remove(&project).await.expect("removes");
        let claims: Vec<&Value> = stack.objects.iter().filter(|o| o["kind"] == "PersistentVolumeClaim").collect();
        assert_eq!(lines.len(), stack.objects.len() - claims.len() + 1, "{lines:?}");
        assert!(lines.last().expect("a line").starts_with("kept the volumes' claims"), "{lines:?}");
        let store = &server.lock().expect("lock").store;
        let left: Vec<&Value> = store.values().flat_map(|c| c.values()).map(|o| &o["metadata"]["name"]).collect();
        assert_eq!(left, claims.iter().map(|o| &o["metadata"]["name"]).collect::<Vec<_>>(), "only the claims are left");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_refusal_names_the_object_and_a_bad_kubeconfig_is_said() {
        let dir = temp_dir("refused");
        let (server, kubeconfig) = start(&dir).await;
        let stack = rendered("options");
        let workload = stack.objects.iter().find(|o| o["kind"] == "Deployment").expect("a Deployment");
        let name = workload["metadata"]["name"].as_str().expect("name").to_owned();
        server.lock().expect("lock").refuse = Some(name.clone());
        let cluster = Cluster::connect(Some(&kubeconfig), None, Some("team")).await.expect("connects");
        assert_eq!(cluster.namespace(), "team", "--namespace wins");
        let error = cluster.deploy("tool", &stack, false).await.expect_err("refused").to_string();
        assert!(error.starts_with(&format!("deployment.apps/{name}: ")) && error.contains("Invalid value"), "{error}");
        assert!(!error.contains("s3cret-token"));

        let missing = Cluster::connect(Some(&dir.join("nope")), None, None).await.expect_err("no kubeconfig").to_string();
        assert!(missing.starts_with("the kubeconfig: ") && missing.contains("nope"), "{missing}");
        let unknown = Cluster::connect(Some(&kubeconfig), Some("prod"), None).await.expect_err("no such context").to_string();
        assert!(unknown.contains("prod"), "{unknown}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
