//! The adloop gRPC contract. Generated from `proto/`; never edit the generated code by hand. `allocation`
//! converts its allocation messages to and from the allocator's types.

pub mod allocation;

#[allow(clippy::all, clippy::unwrap_used)]
pub mod ml {
    pub mod v1 {
        tonic::include_proto!("adloop.ml.v1");
    }
}

/// Encoded `FileDescriptorSet` of every adloop proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/adloop_descriptor.bin"));
