//! `berth.v1.Networks`: each call turns into a [`Networks`] action; connect and
//! disconnect go through the containers, whose records keep their networks.

use std::sync::Arc;

use berth_proto::v1::{
    networks_server::Networks as NetworksApiTrait, ConnectNetworkRequest, ConnectNetworkResponse, CreateNetworkRequest, DisconnectNetworkRequest,
    DisconnectNetworkResponse, ListNetworksRequest, ListNetworksResponse, Network, NetworkRef, PruneNetworksRequest, PruneNetworksResponse,
    RemoveNetworkResponse,
};
use tonic::{Request, Response, Status};

use crate::container::Containers;
use crate::network::{CreateNetwork, NetworkError, NetworkRecord, Networks};

#[derive(Debug)]
pub struct NetworksApi {
    networks: Arc<Networks>,
    containers: Arc<Containers>,
}

impl NetworksApi {
    pub fn new(networks: Arc<Networks>, containers: Arc<Containers>) -> NetworksApi {
        NetworksApi { networks, containers }
    }

    fn to_proto(&self, n: NetworkRecord) -> Network {
        Network {
            inspect_json: crate::network::inspect_json(&n, &self.networks).to_string(),
            id: n.id,
            name: n.name,
            driver: n.driver,
            subnet: n.subnet,
            gateway: n.gateway,
            internal: n.internal,
            labels: n.labels.into_iter().collect(),
            created: n.created,
        }
    }
}

fn status(err: NetworkError) -> Status {
    Status::new(err.kind().grpc_code(), crate::error_chain(&err))
}

/// docker's network filters: name (substring), id (prefix), label, driver,
/// type (custom or builtin), dangling (no container attached).
fn matches(n: &NetworkRecord, networks: &Networks, filters: &std::collections::HashMap<String, String>) -> bool {
    filters.iter().all(|(key, value)| {
        value.split('\n').filter(|v| !v.is_empty()).any(|value| match key.as_str() {
            "name" => n.name.contains(value),
            "id" => n.id.starts_with(value),
            "label" => match value.split_once('=') {
                Some((k, v)) => n.labels.get(k).is_some_and(|have| have == v),
                None => n.labels.contains_key(value),
            },
            "driver" => n.driver == value,
            "type" => (value == "builtin") == n.predefined(),
            "dangling" => (value == "true" || value == "1") == networks.members(&n.id).is_empty(),
            _ => false,
        })
    })
}

fn container_status(err: crate::container::ContainerError) -> Status {
    Status::new(err.kind().grpc_code(), crate::error_chain(&err))
}

#[tonic::async_trait]
impl NetworksApiTrait for NetworksApi {
    async fn create(&self, request: Request<CreateNetworkRequest>) -> Result<Response<Network>, Status> {
        let r = request.into_inner();
        let record = self
            .networks
            .create(CreateNetwork {
                name: r.name,
                driver: r.driver,
                subnet: r.subnet,
                gateway: r.gateway,
                ip_range: r.ip_range,
                internal: r.internal,
                attachable: r.attachable,
                labels: r.labels.into_iter().collect(),
                options: r.options.into_iter().collect(),
            })
            .await
            .map_err(status)?;
        Ok(Response::new(self.to_proto(record)))
    }

    async fn list(&self, request: Request<ListNetworksRequest>) -> Result<Response<ListNetworksResponse>, Status> {
        let filters = request.into_inner().filters;
        if let Some(key) = filters.keys().find(|k| !matches!(k.as_str(), "name" | "id" | "label" | "driver" | "type" | "dangling")) {
            return Err(Status::invalid_argument(format!("invalid filter '{key}'")));
        }
        let networks = self.networks.list().map_err(status)?;
        let networks = networks.into_iter().filter(|n| matches(n, &self.networks, &filters)).map(|n| self.to_proto(n)).collect();
        Ok(Response::new(ListNetworksResponse { networks }))
    }

    async fn inspect(&self, request: Request<NetworkRef>) -> Result<Response<Network>, Status> {
        let record = self.networks.find(&request.into_inner().id).map_err(status)?;
        Ok(Response::new(self.to_proto(record)))
    }

    async fn remove(&self, request: Request<NetworkRef>) -> Result<Response<RemoveNetworkResponse>, Status> {
        let record = self.networks.remove(&request.into_inner().id).await.map_err(status)?;
        Ok(Response::new(RemoveNetworkResponse { id: record.id }))
    }

    async fn prune(&self, request: Request<PruneNetworksRequest>) -> Result<Response<PruneNetworksResponse>, Status> {
        let labels = request.into_inner().labels;
        let removed = self.networks.prune(|n| crate::volume::labels_match(&n.labels, &labels)).await.map_err(status)?;
        Ok(Response::new(PruneNetworksResponse { removed }))
    }

    async fn connect_container(&self, request: Request<ConnectNetworkRequest>) -> Result<Response<ConnectNetworkResponse>, Status> {
        let r = request.into_inner();
        self.containers.connect_network(&r.network, &r.container, r.aliases, r.ipv4_address).await.map_err(container_status)?;
        Ok(Response::new(ConnectNetworkResponse {}))
    }

    async fn disconnect_container(&self, request: Request<DisconnectNetworkRequest>) -> Result<Response<DisconnectNetworkResponse>, Status> {
        let r = request.into_inner();
        self.containers.disconnect_network(&r.network, &r.container).await.map_err(container_status)?;
        Ok(Response::new(DisconnectNetworkResponse {}))
    }
}
