//! The `berth.v1` gRPC contract and the closed set of error kinds.
//!
//! This is the only crate that host crates and guest crates share.

pub mod halfclose;
pub mod ipc;
mod kind;
pub mod mounts;
pub mod mux;
pub mod ports;
pub mod socket;
pub mod tls;
pub mod units;

pub use kind::{is_missing_image, mark_missing_image, ErrorKind};

/// The daemon.json key under which the host's settings give the engine its trust policy
/// (`berth_trust::Policy` as JSON), taken at each engine start.
pub const TRUST_POLICY_KEY: &str = "berth-trust-policy";

/// Generated code of the `berth.v1` package.
pub mod v1 {
    #![allow(missing_docs, missing_debug_implementations, clippy::all)]
    tonic::include_proto!("berth.v1");

    /// The password is never printed: requests are logged with `{:?}` in places.
    impl std::fmt::Debug for RegistryAuth {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let password = if self.password.is_empty() { "" } else { "<redacted>" };
            f.debug_struct("RegistryAuth").field("username", &self.username).field("password", &password).finish()
        }
    }
}

/// An error and all its sources on one line, each said once (the top of every binary
/// and every boundary prints errors this way).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The version of the gRPC API this crate describes.
pub const API_VERSION: &str = "1.0";

/// The vsock port the agent serves the gRPC API on inside the VM.
pub const AGENT_VSOCK_PORT: u32 = 1024;

/// The guest agent's vsock port for the Docker Engine API (the host proxies
/// `run/docker.sock` to it).
pub const DOCKER_API_VSOCK_PORT: u32 = 1025;

/// The guest agent's vsock port for published ports forwarded from the host: a
/// connection starts with [protocol, port high byte, port low byte].
pub const PORTS_VSOCK_PORT: u32 = 1026;
/// The forwarded-port header's protocol byte for TCP (a stream in `halfclose` frames).
pub const FORWARD_TCP: u8 = 1;
/// The forwarded-port header's protocol byte for UDP (datagrams, each after its `u16`
/// big-endian length).
pub const FORWARD_UDP: u8 = 2;

/// The line the agent prints on the VM's console once it listens on vsock. The host
/// waits for it before connecting: connects made while the guest's vsock driver is still
/// coming up can leave vhost-device-vsock's queue stuck.
pub const AGENT_LISTENING_MARKER: &str = "berth-agent: listening on vsock port";

#[cfg(test)]
mod redaction_tests {
    #[test]
    fn registry_auth_debug_hides_the_password() {
        let auth = crate::v1::RegistryAuth { username: "me".into(), password: "hunter2".into() };
        let said = format!("{auth:?} {:?}", crate::v1::PullRequest { auth: Some(auth.clone()), ..Default::default() });
        assert!(!said.contains("hunter2") && said.contains("me") && said.contains("<redacted>"), "{said}");
    }
}
