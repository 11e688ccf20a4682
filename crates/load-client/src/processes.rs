//! The services under measurement as the release binaries users run: each started with a clean
//! environment on a free port, its address read from its "listening" log line, its output drained, and
//! killed when dropped.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start {binary}: {source} (build it with `cargo build --release -p {package}`)")]
    Start {
        binary: String,
        package: String,
        source: std::io::Error,
    },
    #[error("{binary} exited or stayed silent before logging its address; its errors: {stderr}")]
    NoAddress { binary: String, stderr: String },
    #[error("{binary} {arguments} failed: {stderr}")]
    Command {
        binary: String,
        arguments: String,
        stderr: String,
    },
}

/// Where the release binaries are: beside this program unless told otherwise.
pub fn default_binaries_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target/release"))
}

/// The last `count` lines of a stream, read until it closes (and drained meanwhile, so it never blocks).
fn last_lines(stream: impl std::io::Read, count: usize) -> String {
    let mut lines = std::collections::VecDeque::with_capacity(count);
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        if lines.len() == count {
            lines.pop_front();
        }
        lines.push_back(line);
    }
    Vec::from(lines).join(" | ")
}

/// A running service; killed on drop.
pub struct ServiceProcess {
    child: Child,
    address: String,
}

impl ServiceProcess {
    /// Starts `binary` from `binaries_dir` with only `environment` (plus host, port 0 and JSON logs).
    pub fn start(binaries_dir: &Path, binary: &str, environment: &[(String, String)]) -> Result<Self, ProcessError> {
        let mut command = Command::new(binaries_dir.join(binary));
        command
            .env_clear()
            .env("ADLOOP_SERVER__HOST", "127.0.0.1")
            .env("ADLOOP_SERVER__PORT", "0")
            .env("ADLOOP_TELEMETRY__LOG_FORMAT", "json")
            .envs(environment.iter().map(|(key, value)| (key, value)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|source| ProcessError::Start {
            binary: binary.to_owned(),
            package: binary.to_owned(),
            source,
        })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let stderr_tail = std::thread::spawn(move || last_lines(stderr, 10));
        let listening_message = format!("{binary} listening");
        let (address_sender, address_receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut address_sender = Some(address_sender);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if address_sender.is_none() {
                    continue;
                }
                let Ok(record) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if record["message"] == listening_message.as_str()
                    && let (Some(sender), Some(address)) = (address_sender.take(), record["address"].as_str())
                {
                    let _ = sender.send(address.to_owned());
                }
            }
        });
        let address = address_receiver.recv_timeout(Duration::from_secs(60)).map_err(|_| {
            let _ = child.kill();
            ProcessError::NoAddress {
                binary: binary.to_owned(),
                stderr: stderr_tail.join().unwrap_or_default(),
            }
        })?;
        Ok(ServiceProcess { child, address })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `binary arguments…` to completion with `environment`; returns its standard output.
pub fn run_to_completion(
    binaries_dir: &Path,
    binary: &str,
    arguments: &[&str],
    environment: &[(String, String)],
) -> Result<String, ProcessError> {
    let output = Command::new(binaries_dir.join(binary))
        .env_clear()
        .envs(environment.iter().map(|(key, value)| (key, value)))
        .args(arguments)
        .output()
        .map_err(|source| ProcessError::Start {
            binary: binary.to_owned(),
            package: binary.to_owned(),
            source,
        })?;
    if !output.status.success() {
        return Err(ProcessError::Command {
            binary: binary.to_owned(),
            arguments: arguments.join(" "),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Environment variables as owned pairs.
pub fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

/// Runs `bench` on a fresh database of the dev stack's Postgres and drops the database afterwards (a failure
/// to drop it is reported, not returned: the bench's own result matters more).
pub async fn on_fresh_database<T>(tool: &str, bench: impl AsyncFnOnce(&adloop_test_support::TestDatabase) -> T) -> T {
    let database = adloop_test_support::TestDatabase::create().await;
    let result = bench(&database).await;
    if let Err(error) = database.drop_database().await {
        eprintln!("{tool}: could not drop the bench database: {error}");
    }
    result
}
