fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        // Its Debug is written by hand (src/lib.rs) so a password never reaches a log.
        .skip_debug(["berth.v1.RegistryAuth"])
        .compile_protos(
            &[
                "proto/berth/v1/system.proto",
                "proto/berth/v1/images.proto",
                "proto/berth/v1/containers.proto",
                "proto/berth/v1/volumes.proto",
                "proto/berth/v1/networks.proto",
            ],
            &["proto"],
        )?;
    Ok(())
}
