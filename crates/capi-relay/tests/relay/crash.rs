//! No acknowledged event is lost: a client sends events while the relay process is killed with SIGKILL at
//! random moments and restarted, and meta-sim answers some deliveries with 503s, dropped connections and
//! throttling. Afterwards every event the relay acknowledged is at meta-sim with its own event id; events
//! sent twice (their batch's outcome was unknown at a kill) are counted and reported, never hidden (meta-sim
//! de-duplicates nothing here).
//!
//! The short version runs in `make test` (8 kills); `ADLOOP_RELAY_CRASH_KILLS` runs more (`make bench`: 25).

use std::collections::HashSet;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use adloop_test_support::TestDatabase;
use rand::RngExt as _;
use serde_json::{Value, json};

use crate::delivery::spawn_meta_sim;

const RELAY_BINARY: &str = env!("CARGO_BIN_EXE_capi-relay");
const PIXEL: &str = "100000000000001";

fn relay_command(database_url: &str, meta_sim_url: &str) -> Command {
    let mut command = Command::new(RELAY_BINARY);
    command
        .env_clear()
        .env("ADLOOP_SERVER__HOST", "127.0.0.1")
        .env("ADLOOP_SERVER__PORT", "0")
        .env("ADLOOP_DATABASE__URL", database_url)
        .env("ADLOOP_TELEMETRY__LOG_FORMAT", "json")
        .env("ADLOOP_TELEMETRY__LOG_FILTER", "info")
        .env("ADLOOP_DELIVERY__ENABLED", "true")
        .env("ADLOOP_DELIVERY__BASE_URL", meta_sim_url)
        .env("ADLOOP_DELIVERY__ACCESS_TOKEN", "meta-sim-dev-token")
        .env("ADLOOP_DELIVERY__BATCH_SIZE", "50")
        .env("ADLOOP_DELIVERY__LEASE_SECONDS", "2")
        .env("ADLOOP_DELIVERY__POLL_INTERVAL_MILLISECONDS", "100")
        .env("ADLOOP_DELIVERY__REQUEST_TIMEOUT_MS", "800")
        .env("ADLOOP_DELIVERY__THROTTLE_WAIT_SECONDS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

/// Starts a relay and returns it with its base URL (read from its "listening" log line).
fn start_relay(database_url: &str, meta_sim_url: &str) -> (Child, String) {
    let mut child = relay_command(database_url, meta_sim_url)
        .spawn()
        .expect("start capi-relay");
    let stdout = child.stdout.take().expect("piped stdout");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sender = Some(sender);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Ok(record) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if record["message"] == "capi-relay listening"
                && let (Some(sender), Some(address)) = (sender.take(), record["address"].as_str())
            {
                let _ = sender.send(format!("http://{address}"));
            }
        }
    });
    let base_url = receiver.recv_timeout(Duration::from_secs(30)).expect("relay address");
    (child, base_url)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_event_is_lost_while_the_relay_is_killed() {
    let kills_wanted: usize = std::env::var("ADLOOP_RELAY_CRASH_KILLS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(8);
    let database = TestDatabase::create().await;
    let meta_sim_url = spawn_meta_sim().await;
    let faults = json!({
        "seed": 7,
        "rules": [
            {"endpoint": "capi", "probability": 0.1, "fault": {"kind": "http_status", "status": 503}},
            {"endpoint": "capi", "probability": 0.05, "fault": {"kind": "drop_connection"}},
            {"endpoint": "capi", "probability": 0.05, "fault": {"kind": "graph_error", "code": 17}},
        ],
    });
    let client = reqwest::Client::new();
    client
        .post(format!("{meta_sim_url}/_sim/faults"))
        .json(&faults)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let issued = relay_command(&database.url, &meta_sim_url)
        .args(["sources", "create", "--name", "crash", "--pixel", PIXEL])
        .stdout(Stdio::piped())
        .output()
        .expect("capi-relay sources create");
    assert!(issued.status.success());
    let token = String::from_utf8(issued.stdout).unwrap().trim().to_owned();

    let (mut relay, mut base_url) = start_relay(&database.url, &meta_sim_url);
    let mut acknowledged: Vec<String> = Vec::new();
    let mut kills = 0;
    let mut next_kill = Instant::now() + Duration::from_millis(300);
    let mut sequence = 0_u64;
    let started = Instant::now();
    while kills < kills_wanted {
        // A request of 1 to 20 events, each with an id no other event has.
        let size = rand::rng().random_range(1..=20);
        let ids: Vec<String> = (0..size)
            .map(|_| {
                sequence += 1;
                format!("crash-{sequence}")
            })
            .collect();
        let events: Vec<Value> = ids
            .iter()
            .map(|id| {
                json!({"event_name": "Lead", "event_time": now() - 5, "action_source": "email", "event_id": id,
                    "user_data": {"em": format!("{id}@example.com")}})
            })
            .collect();
        let answer = client
            .post(format!("{base_url}/v25.0/{PIXEL}/events"))
            .bearer_auth(&token)
            .json(&json!({ "data": events }))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if let Ok(response) = answer
            && response.status() == 200
        {
            acknowledged.extend(ids);
        }
        if Instant::now() >= next_kill {
            relay.kill().expect("SIGKILL the relay");
            let _ = relay.wait();
            kills += 1;
            (relay, base_url) = start_relay(&database.url, &meta_sim_url);
            next_kill = Instant::now() + Duration::from_millis(rand::rng().random_range(200..700));
        }
    }
    assert!(
        acknowledged.len() > 50,
        "the load got through between kills: {}",
        acknowledged.len()
    );

    // No more kills or faults: the last relay delivers whatever is left.
    client
        .post(format!("{meta_sim_url}/_sim/faults"))
        .json(&json!({"seed": 1, "rules": []}))
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let at_meta: Vec<String> = loop {
        let received: Value = client
            .get(format!("{meta_sim_url}/_sim/capi/events?pixel_id={PIXEL}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ids: Vec<String> = received["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|event| event["event_id"].as_str().map(str::to_owned))
            .collect();
        let present: HashSet<&String> = ids.iter().collect();
        if acknowledged.iter().all(|id| present.contains(id)) {
            break ids;
        }
        assert!(
            Instant::now() < deadline,
            "{} acknowledged events never reached meta-sim",
            acknowledged.iter().filter(|id| !present.contains(id)).count()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    relay.kill().ok();
    let distinct: HashSet<&String> = at_meta.iter().collect();
    let sent_twice = at_meta.len() - distinct.len();
    println!(
        "relay crash test: {kills} kills in {:.1} s, {} events acknowledged, all at meta-sim; {sent_twice} re-sent \
         after an unknown outcome ({} deliveries in all)",
        started.elapsed().as_secs_f64(),
        acknowledged.len(),
        at_meta.len()
    );
    assert!(
        sent_twice <= at_meta.len() / 2,
        "re-sends are the exception (a batch in flight at a kill), not the rule: {sent_twice}"
    );
}
