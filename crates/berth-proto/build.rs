fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure().compile_protos(&["proto/berth/v1/system.proto", "proto/berth/v1/images.proto", "proto/berth/v1/containers.proto", "proto/berth/v1/volumes.proto", "proto/berth/v1/networks.proto"], &["proto"])?;
    Ok(())
}
