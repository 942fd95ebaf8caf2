//! The host side of Berth: everything the desktop app and the `berth` CLI share.
//!
//! - [`home`]: where state and sockets live (`BERTH_HOME`).
//! - [`agent`]: the gRPC client of the engine, over a unix socket, AF_VSOCK, or the
//!   hybrid unix-socket protocol of vhost-device-vsock.
//! - [`vm`]: the VM's lifecycle: QEMU with direct kernel boot, driven over QMP.
//! - [`session`]: one running VM and everything that makes it reachable.
//! - [`settings`]: the settings, in `$BERTH_HOME/settings.json`.

pub mod agent;
pub mod build;
pub mod credentials;
pub mod diagnose;
pub mod docker_client;
pub mod docker_context;
pub mod home;
pub mod os;
pub mod port_forward;
pub mod proxy;
pub mod session;
pub mod settings;
pub mod ui;
pub mod vm;

pub use berth_proto::ErrorKind;
