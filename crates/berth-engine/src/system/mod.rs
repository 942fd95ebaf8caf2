//! The engine's version and the machine facts both APIs report.

mod facts;

use berth_proto::v1::VersionResponse;

pub use facts::MachineFacts;

/// The engine's version, from the crate.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The version answer, also used by the agent's own `--version`.
pub fn version() -> VersionResponse {
    let facts = MachineFacts::read();
    VersionResponse {
        engine_version: ENGINE_VERSION.to_owned(),
        api_version: berth_proto::API_VERSION.to_owned(),
        kernel_version: facts.kernel_release,
        os: std::env::consts::OS.to_owned(),
        arch: std::env::consts::ARCH.to_owned(),
        git_commit: option_env!("BERTH_GIT_COMMIT").unwrap_or_default().to_owned(),
    }
}
