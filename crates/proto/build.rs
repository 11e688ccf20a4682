//! Compiles `proto/adloop/**/*.proto` with the pure-Rust `protox` compiler (no system `protoc`),
//! then generates prost messages and tonic client/server code, plus a file descriptor set for
//! gRPC server reflection.

use std::path::PathBuf;

const PROTO_FILES: &[&str] = &["adloop/ml/v1/ml_service.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    for proto_file in PROTO_FILES {
        println!("cargo:rerun-if-changed={}", proto_root.join(proto_file).display());
    }

    let file_descriptor_set = protox::compile(PROTO_FILES, [&proto_root])?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_bytes = prost::Message::encode_to_vec(&file_descriptor_set);
    std::fs::write(out_dir.join("adloop_descriptor.bin"), descriptor_bytes)?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(file_descriptor_set)?;
    Ok(())
}
