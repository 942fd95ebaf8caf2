//! Finding the engine: berth-host's, shared with Berth Desktop.

pub use berth_host::agent::find::connect;
