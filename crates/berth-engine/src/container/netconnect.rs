//! `network connect` and `network disconnect`: the container's record keeps the
//! networks it joins at start; a running container joins or leaves at once.

use super::{ContainerError, Containers};
use crate::network::EndpointRequest;

impl Containers {
    fn can_join_networks(mode: &str) -> Result<(), ContainerError> {
        if mode == "host" || mode == "none" || mode.starts_with("container:") {
            return Err(ContainerError::Invalid(format!(
                "container sharing a network namespace (--network {mode}) cannot be connected to or disconnected from networks"
            )));
        }
        Ok(())
    }

    /// Connects a container (running or not) to a network.
    pub async fn connect_network(&self, network: &str, container: &str, aliases: Vec<String>, ipv4_address: String) -> Result<(), ContainerError> {
        let network = self.networks.find(network)?;
        if network.driver != "bridge" {
            return Err(ContainerError::Invalid(format!("container cannot be connected to network {} ({} driver)", network.name, network.driver)));
        }
        if network.name == "bridge" && !aliases.is_empty() {
            return Err(ContainerError::Invalid("network-scoped alias is supported only for containers in user defined networks".into()));
        }
        if !ipv4_address.is_empty() && !network.user_subnet {
            return Err(ContainerError::Invalid("user specified IP address is supported only when connecting to networks with user configured subnets".into()));
        }
        let id = self.find(container)?.id;
        let lock = self.lock_of(&id);
        let _guard = lock.lock().await;
        let Some(mut record) = self.store.get(&id)? else { return Err(ContainerError::NotFound(container.to_owned())) };
        Self::can_join_networks(&record.host_config.network_mode)?;
        if record.networks.iter().any(|n| n.network_id == network.id) {
            return Err(ContainerError::Conflict(format!("endpoint with name {} already exists in network {}", record.name, network.name)));
        }
        let request = EndpointRequest { network_id: network.id.clone(), aliases, ipv4_address, mac_address: String::new() };
        if record.state.status.is_running() {
            let endpoint = self.networks.connect(&id, &request).await?;
            let running = record.state.network.get_or_insert_with(Default::default);
            let had_dns = running.endpoints.iter().any(|e| e.dns);
            let gives_dns = endpoint.dns;
            running.endpoints.push(endpoint);
            // Started without a DNS server (the default bridge), it gets this network's,
            // as dockerd does: names on the new network resolve at once.
            if gives_dns && !had_dns {
                let endpoints = running.endpoints.clone();
                let links = self.link_hosts(&record).unwrap_or_default();
                if let Err(e) = self.write_etc_files(&record, &endpoints, &links) {
                    tracing::warn!(container = %id, "cannot give the container its new network's DNS server: {e}");
                }
            }
        }
        record.networks.push(request);
        self.store.update(&record)?;
        self.networks.publish_membership(&network.id, &network.name, &id, "connect");
        self.changed(&id);
        Ok(())
    }

    /// Disconnects a container from a network.
    pub async fn disconnect_network(&self, network: &str, container: &str) -> Result<(), ContainerError> {
        let network = self.networks.find(network)?;
        let id = self.find(container)?.id;
        let lock = self.lock_of(&id);
        let _guard = lock.lock().await;
        let Some(mut record) = self.store.get(&id)? else { return Err(ContainerError::NotFound(container.to_owned())) };
        Self::can_join_networks(&record.host_config.network_mode)?;
        let Some(position) = record.networks.iter().position(|n| n.network_id == network.id) else {
            return Err(ContainerError::Invalid(format!("container {} is not connected to network {}", record.name, network.name)));
        };
        if record.state.status.is_running() {
            self.networks.disconnect(&id, &network.id).await?;
            if let Some(running) = record.state.network.as_mut() {
                running.endpoints.retain(|e| e.network_id != network.id);
            }
        }
        record.networks.remove(position);
        self.store.update(&record)?;
        self.networks.publish_membership(&network.id, &network.name, &id, "disconnect");
        self.changed(&id);
        Ok(())
    }
}
