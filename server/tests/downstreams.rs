//! Head office knows its downstream relays: a distribution centre's relay connects
//! (`serve --upstream`), `GET /api/downstreams` and the gauges show it connected; it is
//! killed, they show it silent since its last frame; head office restarts, and a
//! relay its table last heard from two days ago is still listed as silent for two
//! days (what the alert `DealersyncDownstreamSilent` reads).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{DEADLINE, Server, add_dc, metric_value, run_bin};
use serde_json::Value;

const RELAY: &str = "relay.dc-north";
const LABELS: &str = "relay=\"relay.dc-north\",site=\"dc-north\"";
const TWO_DAYS_MS: i64 = 2 * 86_400 * 1000;

fn token(data_dir: &Path, role: &str, sub: &str, site: &str) -> String {
    run_bin(
        &["token", "--role", role, "--sub", sub, "--site", site],
        data_dir,
    )
    .trim()
    .to_string()
}

/// `GET /api/downstreams` with `token`: the status and the body.
async fn downstreams(s: &Server, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(s.url("/api/downstreams"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

/// Waits until `GET /api/downstreams` lists the relay and `check` holds for its row.
async fn relay_row(s: &Server, token: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + DEADLINE;
    loop {
        let (status, body) = downstreams(s, token).await;
        assert_eq!(status, 200, "{body}");
        if let Some(row) = body["relays"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["relay"] == RELAY))
            && check(row)
        {
            return row.clone();
        }
        assert!(Instant::now() < until, "{what}: {body}\n{}", s.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the relay's two gauges are `connected` and `last_contact_secs`.
async fn gauges(s: &Server, connected: f64, last_contact_secs: f64) {
    let until = Instant::now() + DEADLINE;
    loop {
        let text = s.metrics().await;
        let c = metric_value(&text, "dealersync_downstream_connected", LABELS);
        let at = metric_value(
            &text,
            "dealersync_downstream_last_contact_timestamp_seconds",
            LABELS,
        );
        if c == connected && (at - last_contact_secs).abs() < 0.01 {
            return;
        }
        assert!(
            Instant::now() < until,
            "gauges {c} and {at}, not {connected} and {last_contact_secs}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_office_shows_a_silent_downstream_relay_across_its_restart() {
    let root = tempfile::tempdir().unwrap();
    let (hq_dir, dc_dir) = (root.path().join("hq"), root.path().join("dc"));
    let mut hq = Server::start(&hq_dir, &[]).await;
    add_dc(&hq_dir);
    let relay_token = token(&hq_dir, "relay", RELAY, "dc-north");
    let office = token(&hq_dir, "head_office", "wang.fang", "hq");
    let manager = token(&hq_dir, "manager", "li.na", "dc-north");

    // Nobody has synced yet; a manager may not look.
    assert_eq!(
        downstreams(&hq, &office).await,
        (200, serde_json::json!({"relays": []}))
    );
    assert_eq!(downstreams(&hq, &manager).await.0, 403);

    std::fs::create_dir_all(&dc_dir).unwrap();
    common::admin_token(&dc_dir);
    let started = chrono::Utc::now().timestamp_millis();
    let mut dc = Server::start(
        &dc_dir,
        &[
            "--upstream",
            hq.url("").trim_end_matches('/'),
            "--upstream-token",
            &relay_token,
        ],
    )
    .await;
    let row = relay_row(&hq, &office, "the DC's relay connected", |r| {
        r["connected"] == true
    })
    .await;
    assert_eq!(row["site"], "dc-north");
    assert_eq!(row["silentSecs"], 0);
    assert!(row["connects"].as_u64() >= Some(1), "{row}");
    assert!(row["firstSeen"].as_i64() >= Some(started), "{row}");
    let admin_view = downstreams(&hq, &hq.token).await;
    assert_eq!(admin_view.0, 200, "admins see the list too");

    // The DC goes away without a word: head office shows it gone, and since when.
    dc.kill();
    let row = relay_row(&hq, &office, "the DC's relay gone", |r| {
        r["connected"] == false
    })
    .await;
    // Head office's last contact is when it last heard the relay, which may be the moment
    // it noticed the reset, a little after the kill returned here: bounded by the time
    // head office first reported it gone.
    let noticed = chrono::Utc::now().timestamp_millis();
    let last = row["lastContact"].as_i64().unwrap();
    assert!(
        (started..=noticed).contains(&last),
        "last contact {last} between the DC's start {started} and head office noticing it gone {noticed}"
    );
    gauges(&hq, 0.0, last as f64 / 1000.0).await;

    // Head office restarts, its table saying the relay was last heard two days ago
    // (as if it had been silent that long): still listed, still silent.
    hq.kill();
    let db = rusqlite::Connection::open(hq_dir.join("dealersync.db")).unwrap();
    let long_ago = last - TWO_DAYS_MS;
    let updated = db
        .execute(
            "UPDATE downstream_relays SET last_contact = ?1 WHERE relay = ?2",
            rusqlite::params![long_ago, RELAY],
        )
        .unwrap();
    assert_eq!(updated, 1, "head office kept the relay's contact on disk");
    drop(db);
    hq.restart().await;
    let row = relay_row(&hq, &office, "the relay after head office's restart", |r| {
        r["connected"] == false
    })
    .await;
    assert_eq!(row["lastContact"].as_i64(), Some(long_ago), "{row}");
    assert!(row["silentSecs"].as_u64() >= Some(2 * 86_400), "{row}");
    gauges(&hq, 0.0, long_ago as f64 / 1000.0).await;
}
