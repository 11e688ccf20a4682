//! What every executor benchmark starts: a fresh database, meta-sim serving the benchmark's world (written
//! as a scenario file, removed on drop), the gateway's environment against both, and a bench API key.

use std::path::{Path, PathBuf};

use super::{BenchError, META_SIM_TOKEN, ServiceProcess, WorldShape, pairs};
use crate::processes;

pub struct BenchStack {
    pub database_url: String,
    pub meta_sim: ServiceProcess,
    pub gateway_environment: Vec<(String, String)>,
    pub api_key: String,
    binaries_dir: PathBuf,
    scenario_path: PathBuf,
}

impl BenchStack {
    /// Starts meta-sim (manual clock, `meta_sim_settings` on top) and issues a key; gateways start with
    /// `start_gateway`, their executor on, `gateway_settings` on top.
    pub async fn start(
        binaries_dir: &Path,
        shape: &WorldShape,
        meta_sim_settings: &[(&str, &str)],
        gateway_settings: &[(&str, &str)],
    ) -> Result<BenchStack, BenchError> {
        let database = adloop_test_support::TestDatabase::create().await;
        let scenario_path = std::env::temp_dir().join(format!(
            "adloop-executor-bench-{}-{}.toml",
            std::process::id(),
            database.name
        ));
        std::fs::write(&scenario_path, shape.scenario_toml())
            .map_err(|error| BenchError::Unexpected(format!("cannot write the bench scenario: {error}")))?;
        let scenario_path_text = scenario_path.display().to_string();
        let mut meta_sim_environment = pairs(&[
            ("ADLOOP_WORLD__SCENARIO_PATH", &scenario_path_text),
            ("ADLOOP_CLOCK__MODE", "manual"),
            ("ADLOOP_TELEMETRY__LOG_FILTER", "info"),
        ]);
        meta_sim_environment.extend(pairs(meta_sim_settings));
        let meta_sim = ServiceProcess::start(binaries_dir, "meta-sim", &meta_sim_environment)?;
        let mut gateway_environment = pairs(&[
            ("ADLOOP_DATABASE__URL", &database.url),
            ("ADLOOP_TELEMETRY__LOG_FILTER", "info"),
            ("ADLOOP_GRAPH__BASE_URL", &meta_sim.base_url()),
            ("ADLOOP_GRAPH__ACCESS_TOKEN", META_SIM_TOKEN),
            ("ADLOOP_EXECUTOR__ENABLED", "true"),
        ]);
        gateway_environment.extend(pairs(gateway_settings));
        let api_key = processes::run_to_completion(
            binaries_dir,
            "gateway-api",
            &["keys", "create", "--tenant", "bench"],
            &gateway_environment,
        )?;
        Ok(BenchStack {
            database_url: database.url,
            meta_sim,
            gateway_environment,
            api_key,
            binaries_dir: binaries_dir.to_path_buf(),
            scenario_path,
        })
    }

    pub fn start_gateway(&self) -> Result<ServiceProcess, BenchError> {
        Ok(ServiceProcess::start(
            &self.binaries_dir,
            "gateway-api",
            &self.gateway_environment,
        )?)
    }
}

impl Drop for BenchStack {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.scenario_path);
    }
}
