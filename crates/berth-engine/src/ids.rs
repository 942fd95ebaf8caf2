//! Ids for the engine's objects: containers, networks, volumes, execs.

/// A fresh 64-hex-digit id.
pub fn new_id() -> String {
    let mut bytes = [0u8; 32];
    if let Ok(mut random) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = random.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
