//! What the VM is doing, as the CLI prints it and the UI shows it.

use serde::{Deserialize, Serialize};

/// The engine's version as the guest reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct EngineVersion {
    pub engine_version: String,
    pub api_version: String,
    pub kernel_version: String,
    pub os: String,
    pub arch: String,
}

impl From<berth_proto::v1::VersionResponse> for EngineVersion {
    fn from(v: berth_proto::v1::VersionResponse) -> Self {
        EngineVersion { engine_version: v.engine_version, api_version: v.api_version, kernel_version: v.kernel_version, os: v.os, arch: v.arch }
    }
}

/// The VM's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum VmState {
    Stopped,
    Booting { accel: String },
    Ready { accel: String, engine: EngineVersion },
    Stopping,
    Error { reason: String },
}

impl VmState {
    /// One word for the state, as the CLI prints it.
    pub fn name(&self) -> &'static str {
        match self {
            VmState::Stopped => "stopped",
            VmState::Booting { .. } => "booting",
            VmState::Ready { .. } => "ready",
            VmState::Stopping => "stopping",
            VmState::Error { .. } => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_tagged_by_state() {
        let json = serde_json::to_value(VmState::Booting { accel: "tcg".into() }).expect("json");
        assert_eq!(json, serde_json::json!({"state": "booting", "accel": "tcg"}));
        let json = serde_json::to_value(VmState::Stopped).expect("json");
        assert_eq!(json, serde_json::json!({"state": "stopped"}));
    }
}
