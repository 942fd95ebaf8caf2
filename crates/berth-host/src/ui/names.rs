//! The names the window and the app's Rust side share: every Tauri command and every
//! event. Generated into the UI's types (`Command.ts`, `Channel.ts`); `cargo xtask codegen
//! --check` also checks that the app registers exactly these commands.

use serde::{Deserialize, Serialize};

/// Every command the UI may invoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(rename_all = "snake_case")]
pub enum Command {
    VmState,
    StartVm,
    StopVm,
    EngineTarget,
    ListContainers,
    ContainerAction,
    RemoveContainers,
    RunImage,
    ListImages,
    PullImage,
    RemoveImage,
    TagImage,
    ListVolumes,
    CreateVolume,
    RemoveVolume,
    ListNetworks,
    CreateNetwork,
    RemoveNetwork,
    ListComposeProjects,
    AddComposeProject,
    ForgetComposeProject,
    ComposeUp,
    ComposeDown,
    ComposePull,
    ReadSettings,
    ApplySettings,
    RegistryLogin,
    RegistryLogout,
    WriteDiagnostics,
    ResetVm,
    WatchStats,
    OpenTerminal,
    TerminalInput,
    TerminalResize,
    CloseStream,
    ImageHistory,
    PushImage,
    PruneImages,
    PruneVolumes,
    CloneVolume,
    ExportVolume,
    ImportVolume,
    VolumeFiles,
    VolumePreview,
    ConnectNetwork,
    DisconnectNetwork,
    FollowLogs,
    SaveLogs,
    CancelPull,
    InspectContainer,
    InspectNetwork,
    OpenUrl,
    ChoosePath,
    ComposeBuild,
    SearchImages,
}

/// Every event the app sends the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// A new [`crate::vm::VmState`].
    VmState,
    /// A [`super::rows::EngineEvent`]: something changed in the engine.
    EngineEvent,
    /// A [`super::rows::PullProgress`].
    PullProgress,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Channel::VmState => "vm-state",
            Channel::EngineEvent => "engine-event",
            Channel::PullProgress => "pull-progress",
        }
    }
}

/// Where the app's engine is: the session's VM, or the engine `BERTH_HOST` names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EngineTarget {
    /// The VM this app (or `berth vm start`) runs; Start and Stop apply.
    Session,
    /// An engine named by `BERTH_HOST`; it is started and stopped elsewhere.
    Host { address: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_are_their_json() {
        for channel in [Channel::VmState, Channel::EngineEvent, Channel::PullProgress] {
            assert_eq!(serde_json::to_value(channel).expect("json"), serde_json::json!(channel.name()));
        }
    }
}
