//! The field app (clients/web) end to end: the real relay binary serves it at /app/
//! from its embedded build, and two phones (headless Debian Chromium driven by
//! playwright-core, mobile viewports, separate profiles) enrol, go offline, reload the
//! app offline (service worker), each enter a customer and sell the same car, come back
//! online, converge, list the double sale and resolve it on one phone; one phone is
//! closed and reopened offline and still holds what it entered (IndexedDB). The CLI
//! then sees the same data through the relay. The browser side is
//! `clients/web/e2e/phones.ts`; its screenshots (390x844) go to `target/screenshots/`.
//!
//! Needs node, npm and a Chromium (`/usr/bin/chromium`, or `CHROMIUM`); `.ci/run`
//! installs Debian's `chromium` and a CJK font.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use dealersync_tests::browser::run_app_scenario;
use dealersync_tests::{ServerProcess, ensure_web_npm, server_binary, web_dir};
use serde_json::{Value, json};

/// The whole browser scenario; generous, for a debug relay on a busy two-core machine.
const SCENARIO_DEADLINE: Duration = Duration::from_secs(600);

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.is_file(),
        "no Chromium at {} (install Debian's `chromium`, or set CHROMIUM)",
        path.display()
    );
    path
}

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots/field-app")
}

/// Runs the field CLI (`dealersync`, built next to the relay) on `home`; its stdout.
fn cli(home: &Path, args: &[&str]) -> String {
    let bin = server_binary()
        .expect("relay binary")
        .with_file_name(format!("dealersync{}", std::env::consts::EXE_SUFFIX));
    let out = std::process::Command::new(&bin)
        .arg("--home")
        .arg(home)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {} (build the workspace first): {e}", bin.display()));
    assert!(
        out.status.success(),
        "dealersync {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A device of the showroom with the field CLI logged in to `server` with `token`.
fn cli_device(server: &ServerProcess, token: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    cli(
        home.path(),
        &[
            "login",
            "--server",
            &server.http_url(),
            "--token",
            token,
            "--timeout",
            "180",
        ],
    );
    home
}

async fn device_token(server: &ServerProcess, sub: &str, device: &str) -> String {
    server
        .admin(&[
            "token",
            "--sub",
            sub,
            "--role",
            "consultant",
            "--site",
            "showroom",
            "--device",
            device,
        ])
        .await
        .unwrap()
        .trim()
        .to_string()
}

/// A one-time sign-in code for a consultant of the showroom, as a manager would issue.
async fn sign_in_code(server: &ServerProcess, user: &str, role: &str) -> String {
    let out = server
        .admin(&[
            "sign-in-code",
            "--user",
            user,
            "--role",
            role,
            "--site",
            "showroom",
        ])
        .await
        .unwrap();
    out.lines().next().unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_phones_offline_sell_the_same_car_converge_and_resolve() {
    ensure_web_npm().expect("npm ci in clients/web");
    let chromium = chromium();
    let mut server = ServerProcess::start_demo().await.unwrap();
    // Enrolment without a JWT: a one-time sign-in code each (docs/auth.md); phone A types
    // it, phone B opens the link that carries it (what a QR code gives).
    let code_a = sign_in_code(&server, "wang.fang", "consultant").await;
    // B's code is issued by the showroom's manager through the API, as the console does;
    // B opens the phone link it answers (what the console's QR code carries).
    let manager = server
        .admin(&[
            "token",
            "--sub",
            "qian.jing",
            "--role",
            "manager",
            "--site",
            "showroom",
        ])
        .await
        .unwrap();
    let issued: Value = reqwest::Client::new()
        .post(format!("{}/api/admin/sign-in-codes", server.http_url()))
        .bearer_auth(manager.trim())
        .json(&json!({"user": "li.na", "role": "consultant", "site": "showroom"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link_b = issued["appUrl"].as_str().unwrap().to_string();
    assert!(link_b.contains("/app/#code="), "{issued}");
    // The showroom's manager, on a third phone: discount approvals, a transfer request.
    let code_m = sign_in_code(&server, "qian.jing", "manager").await;
    // The CLI's token for later, a third device of the showroom.
    let cli_token = device_token(&server, "zhang.min", "laptop").await;
    let profiles = tempfile::tempdir().unwrap();
    let shots = screenshots();
    let config = json!({
        "a": {"code": code_a},
        "b": {"link": link_b},
        "m": {"code": code_m},
        "dir": profiles.path(),
        "chromium": chromium,
    });
    let result = run_app_scenario(&server, "phones.ts", &shots, config, SCENARIO_DEADLINE)
        .await
        .unwrap();
    let vin = result["vin"].as_str().unwrap();
    let (a, b, later) = (
        result["customerA"].as_str().unwrap(),
        result["customerB"].as_str().unwrap(),
        result["later"].as_str().unwrap(),
    );
    // While offline each phone counted its own changes as not acknowledged.
    assert!(result["offlineA"]["unacked"].as_u64().unwrap() > 0);
    assert!(result["offlineB"]["unacked"].as_u64().unwrap() > 0);
    let conflict_ids: Vec<&str> = result["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(conflict_ids.len(), 2, "{conflict_ids:?}");
    assert!(conflict_ids[0].starts_with("double_booking-"));
    assert!(conflict_ids[1].starts_with("duplicate_customer-"));

    // The CLI, a third device syncing through the relay, sees what the phones did.
    let home = cli_device(&server, &cli_token);
    let vehicle: Value =
        serde_json::from_str(&cli(home.path(), &["--json", "vehicle", "show", vin])).unwrap();
    assert_eq!(vehicle["status"], "sold", "{vehicle}");
    assert_eq!(vehicle["soldTo"], b, "{vehicle}");
    let customers: Value =
        serde_json::from_str(&cli(home.path(), &["--json", "customer", "list"])).unwrap();
    let ids: Vec<&str> = customers
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(ids.contains(&b), "the buyer is listed");
    assert!(
        ids.contains(&later),
        "the customer entered offline reached the relay"
    );
    assert!(!ids.contains(&a), "the duplicate was merged away");
    let conflicts: Value =
        serde_json::from_str(&cli(home.path(), &["--json", "conflicts", "list"])).unwrap();
    assert_eq!(
        conflicts,
        json!([]),
        "resolved on the phones, resolved for the CLI"
    );
    // What the phones wrote reaches the relay's reports: li.na's call and order this
    // month (the KPIs count events by who recorded them; her customer was the one kept).
    // What the phones did for customer care reached the CLI: the referral, the
    // complaint resolved on the other phone, the sale at the discount the manager's
    // phone approved, the manager's transfer request and the car marked arrived.
    let referred = result["referred"].as_str().unwrap();
    let customer: Value =
        serde_json::from_str(&cli(home.path(), &["--json", "customer", "show", referred])).unwrap();
    assert_eq!(customer["referredBy"], later, "{customer}");
    // The referrer was marked lost on a phone, with why, and placed in 地州: the care
    // report counts her under each.
    let lost: Value =
        serde_json::from_str(&cli(home.path(), &["--json", "customer", "show", later])).unwrap();
    assert_eq!(
        (
            lost["status"].as_str(),
            lost["lostReason"].as_str(),
            lost["lostTo"].as_str(),
            lost["area"].as_str()
        ),
        (
            Some("lost"),
            Some("价格"),
            Some("比亚迪"),
            Some("prefecture")
        ),
        "{lost}"
    );
    assert!(customer["nextFollowUp"].as_i64().is_some(), "{customer}");
    let care: Value =
        serde_json::from_str(&cli(home.path(), &["--json", "report", "care"])).unwrap();
    let complaint = care["complaints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == result["complaint"])
        .unwrap_or_else(|| panic!("the phone's complaint is in the care report: {care}"));
    assert_eq!(
        (
            complaint["status"].as_str(),
            complaint["resolution"].as_str()
        ),
        (Some("resolved"), Some("已道歉并重新清洁")),
        "{complaint}"
    );
    assert_eq!(complaint["customer"], referred);
    let mix =
        |dimension: &str, value: &str| {
            care["mix"].as_array().unwrap().iter().any(|m| {
                m["site"] == "showroom" && m["dimension"] == dimension && m["value"] == value
            })
        };
    assert!(mix("lostReason", "价格"), "{care}");
    assert!(mix("competitor", "比亚迪"), "{care}");
    assert!(mix("area", "prefecture"), "{care}");
    // That car's VIN was read by the camera (a Code 39 label filmed by Chromium's fake
    // camera, decoded by the page's stand-in detector), not typed.
    assert_eq!(result["scannedVin"], result["discountVin"]);
    let discounted: Value = serde_json::from_str(&cli(
        home.path(),
        &[
            "--json",
            "vehicle",
            "show",
            result["discountVin"].as_str().unwrap(),
        ],
    ))
    .unwrap();
    assert_eq!(
        (
            discounted["soldTo"].as_str(),
            discounted["discountApprovedBy"].as_str()
        ),
        (Some(referred), Some("qian.jing")),
        "{discounted}"
    );
    let transfers: Value =
        serde_json::from_str(&cli(home.path(), &["--json", "report", "transfers"])).unwrap();
    let row = transfers["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == result["transfer"])
        .unwrap_or_else(|| panic!("the manager's transfer request: {transfers}"));
    assert_eq!(row["status"], "pending", "{row}");
    assert_eq!(row["vin"], result["transferVin"], "{row}");
    if let Some(arrived) = result["arrived"].as_str() {
        let v: Value =
            serde_json::from_str(&cli(home.path(), &["--json", "vehicle", "show", arrived]))
                .unwrap();
        assert_eq!(v["status"], "in_stock", "{v}");
        assert!(v["arrivedAt"].as_i64().is_some(), "{v}");
    }
    let kpi_url = format!("{}/api/reports/kpi", server.http_url());
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let row = loop {
        let report: Value = client
            .get(&kpi_url)
            .bearer_auth(&cli_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let row = find_row(&report, "li.na");
        if row.as_ref().is_some_and(|r| r["orders"] == 1) {
            break row.unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the KPI report does not show li.na's order: {report}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(row["calls"], 1, "{row}");

    // The phone's token is bound to its device: revoking the device cuts it off.
    let device = result["enrolmentB"]["device"].as_str().unwrap();
    let token = result["enrolmentB"]["token"].as_str().unwrap();
    let me = reqwest::Client::new()
        .get(format!("{}/api/me", server.http_url()))
        .bearer_auth(token);
    let before = me.try_clone().unwrap().send().await.unwrap();
    assert_eq!(before.status(), 200);
    let who: Value = before.json().await.unwrap();
    assert_eq!(who["sub"], "li.na");
    assert_eq!(who["device"], device);
    server.admin(&["revoke", "--device", device]).await.unwrap();
    let after = me.send().await.unwrap();
    assert_eq!(after.status(), 401, "a revoked phone's token is refused");
    for shot in [
        "02-today",
        "03-offline-after-reload",
        "06-conflicts",
        "08-reopened-offline",
        "13-customer-care",
        "14-manager-approvals",
        "15-manager",
        "16-scan-vin",
    ] {
        assert!(shots.join(format!("{shot}.png")).is_file(), "{shot}.png");
    }
    server.kill().await.unwrap();
}

/// The first object in `v` (searched depth first) whose `consultant` is `who`.
/// A phone's first start over a slow link: every byte through a proxy that delays it
/// 1.6 s each way, so that the WebSocket takes 3.2 s to open. That is longer than the
/// stock adapter's one-second "ready" (the site's document was "unavailable" and the
/// app said there was no data) and longer than its 3 s retry (each attempt was
/// replaced before it opened, for ever). The app must wait for the relay, and what the
/// phone enters must be acknowledged through the same link.
#[tokio::test(flavor = "multi_thread")]
async fn first_start_over_a_slow_link_waits_for_the_relay() {
    use dealersync_tests::fault_proxy::{FaultProxy, LinkProfile};
    ensure_web_npm().expect("npm ci in clients/web");
    let chromium = chromium();
    let server = ServerProcess::start_demo().await.unwrap();
    let slow = LinkProfile {
        latency: Duration::from_millis(1_600),
        bits_per_sec: None,
    };
    let proxy = FaultProxy::start(server.port(), slow).await.unwrap();
    let code = sign_in_code(&server, "wang.fang", "consultant").await;
    let profiles = tempfile::tempdir().unwrap();
    let config = json!({
        "base": proxy.http_url(),
        "code": code,
        "dir": profiles.path(),
        "chromium": chromium,
    });
    let result = run_app_scenario(
        &server,
        "slow-link.ts",
        &screenshots(),
        config,
        SCENARIO_DEADLINE,
    )
    .await
    .unwrap();
    assert!(result["customers"].as_u64().unwrap() > 0, "{result}");
    // The relay holds the customer the phone entered over the slow link: a laptop of
    // the showroom, syncing directly, lists it.
    let token = device_token(&server, "zhang.min", "laptop").await;
    let home = cli_device(&server, &token);
    let customers: Value =
        serde_json::from_str(&cli(home.path(), &["--json", "customer", "list"])).unwrap();
    let added = result["added"].as_str().unwrap();
    assert!(
        customers
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == added),
        "the phone's customer {added} reached the relay"
    );
    drop(proxy);
}

fn find_row(v: &Value, who: &str) -> Option<Value> {
    match v {
        Value::Object(m) if m.get("consultant").and_then(Value::as_str) == Some(who) => {
            Some(v.clone())
        }
        Value::Object(m) => m.values().find_map(|x| find_row(x, who)),
        Value::Array(a) => a.iter().find_map(|x| find_row(x, who)),
        _ => None,
    }
}

/// The relay embeds `clients/web/dist` as committed; it must be what the sources build.
#[test]
fn committed_dist_is_fresh() {
    ensure_web_npm().expect("npm ci in clients/web");
    let out_dir = tempfile::tempdir().unwrap();
    let build = std::process::Command::new("npm")
        .args(["run", "build", "--", "--outDir"])
        .arg(out_dir.path())
        .arg("--emptyOutDir")
        .current_dir(web_dir())
        .stdin(Stdio::null())
        .output()
        .expect("run npm");
    assert!(
        build.status.success(),
        "npm run build failed: {}{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
    let committed = web_dir().join("dist");
    let list = |root: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let p = entry.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                    files.push((rel, std::fs::read(&p).unwrap()));
                }
            }
        }
        files.sort();
        files
    };
    let (fresh, old) = (list(out_dir.path()), list(&committed));
    let names = |f: &[(String, Vec<u8>)]| f.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&fresh),
        names(&old),
        "clients/web/dist is stale: run `npm run build` in clients/web and commit dist/"
    );
    for ((name, a), (_, b)) in fresh.iter().zip(&old) {
        assert!(
            a == b,
            "clients/web/dist/{name} is stale: run `npm run build` in clients/web and commit dist/"
        );
    }
}
