//! Compose, client side as in Docker: this crate reads compose files as the Compose
//! Specification says (interpolation, `.env` files, project names, several files
//! merged, the model with every short and long syntax, the dependency graph), plans
//! a project into engine requests with docker compose's labels, and applies plans
//! through Berth's gRPC API (`apply`), so the CLI and the desktop app share it.

pub mod apply;
pub mod desktop;
pub mod dotenv;
#[doc(hidden)]
pub mod fuzzing;
pub mod graph;
pub mod interpolate;
pub mod kube;
pub mod load;
pub mod merge;
pub mod model;
pub mod plan;
pub mod project;
pub mod swarm;

/// Why a project cannot go onto an orchestrator (Kubernetes, a Swarm) as it is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    /// `key` of `service` (or of the project, when `service` is empty) has no meaning
    /// there, or a value it cannot take.
    #[error("{}{key}: {why}", if service.is_empty() { String::new() } else { format!("service {service}: ") })]
    Refused { service: String, key: String, why: String },
    #[error("{0}")]
    Other(String),
}

pub(crate) fn refused(service: &str, key: &str, why: impl Into<String>) -> RenderError {
    RenderError::Refused { service: service.to_owned(), key: key.to_owned(), why: why.into() }
}
