use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use adloop_test_support::TestDatabase;

const GATEWAY_BINARY: &str = env!("CARGO_BIN_EXE_gateway-api");

/// The gateway-api binary with a clean environment, on a free port, against `database_url`, logging JSON.
pub fn gateway_command(database_url: &str) -> Command {
    let mut command = Command::new(GATEWAY_BINARY);
    command
        .env_clear()
        .env("ADLOOP_SERVER__HOST", "127.0.0.1")
        .env("ADLOOP_SERVER__PORT", "0")
        .env("ADLOOP_DATABASE__URL", database_url)
        .env("ADLOOP_TELEMETRY__LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Reads the JSON log until the "listening" line and returns the address it names.
fn wait_for_listening_address(stdout: impl std::io::Read) -> String {
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read gateway stdout");
        let Ok(record) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if record["message"] == "gateway-api listening" {
            return record["address"].as_str().expect("address field").to_owned();
        }
    }
    panic!("gateway-api exited before logging its address");
}

/// Starts gateway-api and waits until it logs the address it listens on.
async fn start_gateway(mut command: Command) -> (std::process::Child, String) {
    let mut gateway = command.spawn().expect("start gateway-api");
    let stdout = gateway.stdout.take().expect("piped stdout");
    let address = tokio::task::spawn_blocking(move || wait_for_listening_address(stdout))
        .await
        .unwrap();
    (gateway, address)
}

#[tokio::test]
async fn sigterm_drains_and_exits_successfully() {
    let database = TestDatabase::create().await;
    // An "ml-service" that accepts connections and never answers: a call through the gateway stays in
    // flight until the gateway's 1.5 s time-out for it.
    let silent_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_address = silent_listener.local_addr().unwrap();
    let silent_server = tokio::spawn(async move {
        let mut open_connections = Vec::new();
        while let Ok((connection, _)) = silent_listener.accept().await {
            open_connections.push(connection);
        }
    });
    let mut command = gateway_command(&database.url);
    command
        .env("ADLOOP_ML_SERVICE__ENDPOINT", format!("http://{silent_address}"))
        .env("ADLOOP_ML_SERVICE__REQUEST_TIMEOUT_MS", "1500");
    let (mut gateway, address) = start_gateway(command).await;

    let liveness = reqwest::get(format!("http://{address}/healthz")).await.unwrap();
    assert_eq!(liveness.status(), 200);
    let issued = gateway_command(&database.url)
        .args(["keys", "create", "--tenant", "process-test"])
        .output()
        .expect("gateway-api keys create");
    assert!(issued.status.success(), "{}", String::from_utf8_lossy(&issued.stderr));
    let api_key = String::from_utf8(issued.stdout).unwrap().trim().to_owned();
    assert!(api_key.starts_with("adl_"), "{api_key}");
    let in_flight_request = tokio::spawn(
        reqwest::Client::new()
            .get(format!("http://{address}/v1/ml/service-info"))
            .bearer_auth(api_key)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    let kill_status = Command::new("kill")
        .args(["-TERM", &gateway.id().to_string()])
        .status()
        .unwrap();
    assert!(kill_status.success());

    let response = in_flight_request
        .await
        .unwrap()
        .expect("the request in flight at SIGTERM gets an answer");
    assert_eq!(
        response.status(),
        504,
        "the request ran to its own time-out instead of being cut off"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit_status = loop {
        if let Some(exit_status) = gateway.try_wait().unwrap() {
            break exit_status;
        }
        assert!(Instant::now() < deadline, "gateway-api did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit_status.success(), "gateway-api exited with {exit_status}");
    silent_server.abort();
}

#[test]
fn missing_database_url_stops_start_up_naming_the_key() {
    let output = gateway_command("unused")
        .env_remove("ADLOOP_DATABASE__URL")
        .output()
        .expect("run gateway-api");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("database.url"), "{stderr}");
}

#[test]
fn bad_port_stops_start_up_naming_the_key() {
    let output = gateway_command("postgres://adloop@127.0.0.1:55432/adloop")
        .env("ADLOOP_SERVER__PORT", "eighty")
        .output()
        .expect("run gateway-api");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("server.port"), "{stderr}");
}

#[test]
fn a_password_in_the_database_url_never_reaches_the_output() {
    let output = gateway_command("postgres://adloop:s3cr3t-pw@127.0.0.1:1/adloop")
        .env("ADLOOP_DATABASE__CONNECT_TIMEOUT_SECONDS", "1")
        .output()
        .expect("run gateway-api");
    assert!(!output.status.success(), "nothing listens on port 1");
    let everything_printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(everything_printed.contains("database.url"), "{everything_printed}");
    assert!(!everything_printed.contains("s3cr3t-pw"), "{everything_printed}");
}

#[test]
fn an_out_of_range_guardrail_or_jitter_stops_start_up_naming_the_key() {
    for (key, value, named) in [
        (
            "ADLOOP_EXECUTOR__GUARDRAILS__MAX_CHANGE_FRACTION_PER_STEP",
            "-0.2",
            "executor.guardrails.max_change_fraction_per_step",
        ),
        (
            "ADLOOP_EXECUTOR__GUARDRAILS__BUDGET_FUZZ_FRACTION",
            "0.5",
            "executor.guardrails.budget_fuzz_fraction",
        ),
        (
            "ADLOOP_EXECUTOR__ENQUEUE_JITTER__MAX_SECONDS",
            "7200",
            "executor.enqueue_jitter.max_seconds",
        ),
    ] {
        let output = gateway_command("postgres://adloop@127.0.0.1:55432/adloop")
            .env(key, value)
            .output()
            .expect("run gateway-api");
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{key}={value}: {stderr}");
    }
}

#[test]
fn a_misspelt_setting_stops_start_up_naming_its_variable() {
    let output = gateway_command("postgres://adloop@127.0.0.1:55432/adloop")
        .env("ADLOOP_ML_SERVICE__ENDPIONT", "http://127.0.0.1:50051")
        .output()
        .expect("run gateway-api");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ADLOOP_ML_SERVICE__ENDPIONT"), "{stderr}");
}

#[tokio::test]
async fn with_migrations_off_at_start_up_the_gateway_serves_only_after_its_migrate_command_and_its_probe_sees_it() {
    let database = TestDatabase::create().await;
    let refused = gateway_command(&database.url)
        .env("ADLOOP_DATABASE__MIGRATE_ON_START", "false")
        .output()
        .expect("run gateway-api");
    assert!(!refused.status.success(), "a schema without migrations is refused");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("migrate"),
        "the error names the command to run: {stderr}"
    );

    let checked = gateway_command(&database.url)
        .env("ADLOOP_DATABASE__MIGRATE_ON_START", "false")
        .arg("check-settings")
        .output()
        .expect("gateway-api check-settings");
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));

    let migrated = gateway_command(&database.url)
        .arg("migrate")
        .output()
        .expect("gateway-api migrate");
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );

    let mut command = gateway_command(&database.url);
    command.env("ADLOOP_DATABASE__MIGRATE_ON_START", "false");
    let (mut gateway, address) = start_gateway(command).await;
    let readiness = reqwest::get(format!("http://{address}/readyz")).await.unwrap();
    assert_eq!(readiness.status(), 200);

    // The container's health check: the binary probes the service on its configured port.
    let port = address.rsplit(':').next().expect("address has a port").to_owned();
    let probe = gateway_command(&database.url)
        .env("ADLOOP_SERVER__PORT", &port)
        .arg("probe")
        .output()
        .expect("gateway-api probe");
    assert!(probe.status.success(), "{}", String::from_utf8_lossy(&probe.stderr));
    gateway.kill().unwrap();
    gateway.wait().unwrap();
    let probe_after_exit = gateway_command(&database.url)
        .env("ADLOOP_SERVER__PORT", &port)
        .arg("probe")
        .output()
        .expect("gateway-api probe");
    assert!(!probe_after_exit.status.success(), "nothing serves the port any more");
}
