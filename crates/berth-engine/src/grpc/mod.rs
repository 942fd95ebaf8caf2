//! The gRPC API (`berth.v1.*`), one service per file. Each handler turns a request
//! into a call on the engine's core and its result into a reply; the Docker Engine API
//! (`docker/`) is the other face of the same core.

pub mod containers;
pub mod images;
pub mod networks;
pub mod system;
pub mod volumes;
