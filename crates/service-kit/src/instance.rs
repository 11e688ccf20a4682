//! A name for this running process that no other replica shares: lease owners must differ between
//! replicas, and in a container every service runs as PID 1, so the process id alone would collide.

use rand::RngExt as _;

/// `{service}-{pid}-{8 random hex digits}`, e.g. `capi-relay-1-3fa9c2d0`.
pub fn instance_name(service: &str) -> String {
    let random: u32 = rand::rng().random();
    format!("{service}-{}-{random:08x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_instances_of_one_process_have_different_names() {
        let first = instance_name("capi-relay");
        assert!(first.starts_with(&format!("capi-relay-{}-", std::process::id())));
        assert_ne!(first, instance_name("capi-relay"));
    }
}
