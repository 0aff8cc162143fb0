//! `dealersync-server serve --demo`, the README's first command, run as the real
//! binary: the tokens its banner prints open exactly what each role may see.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use automerge::ReadDoc;
use common::{BIN, Client};
use dealersync_core::protocol::DocumentId;

/// The demo server; killed when dropped.
struct Demo {
    child: Child,
    banner: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `serve --demo` and reads its banner (printed once the listener is bound).
fn start_demo(dir: &std::path::Path, port: u16) -> Demo {
    let mut child = Command::new(BIN)
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = String::new();
    let until = Instant::now() + Duration::from_secs(60);
    while !banner.contains("Health and metrics") {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                banner.push_str(&line);
                banner.push('\n');
            }
            Err(_) => panic!("no complete banner in time; got:\n{banner}"),
        }
    }
    Demo { child, banner }
}

/// Tokens by role from the banner's `role (sub at site):` / `  token` line pairs.
fn banner_tokens(banner: &str) -> BTreeMap<String, String> {
    let lines: Vec<&str> = banner.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0].ends_with("):") && w[1].starts_with("  "))
        .map(|w| {
            let role = w[0].split(' ').next().unwrap().to_string();
            (role, w[1].trim().to_string())
        })
        .collect()
}

async fn sites(port: u16, token: &str) -> Vec<serde_json::Value> {
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/sites"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_banner_tokens_open_what_each_role_may_see() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let demo = start_demo(dir.path(), port);
    assert!(demo.banner.contains("seeded: 9 sites"), "{}", demo.banner);
    for url in [
        format!("ws://127.0.0.1:{port}/sync"),
        format!("http://127.0.0.1:{port}/api/sites"),
        format!("http://127.0.0.1:{port}/healthz"),
        format!("http://127.0.0.1:{port}/metrics"),
    ] {
        assert!(demo.banner.contains(&url), "{url} not in\n{}", demo.banner);
    }
    let tokens = banner_tokens(&demo.banner);
    assert_eq!(
        tokens.keys().collect::<Vec<_>>(),
        ["admin", "consultant", "head_office", "manager"],
        "{}",
        demo.banner
    );

    // The consultant lists only the showroom; head office all nine sites.
    let own = sites(port, &tokens["consultant"]).await;
    let ids: Vec<&str> = own.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["showroom"]);
    let all = sites(port, &tokens["head_office"]).await;
    assert_eq!(all.len(), 9);
    let manager = sites(port, &tokens["manager"]).await;
    assert!(
        manager.len() > 1 && manager.len() < 9,
        "a manager reads his subtree: {manager:?}"
    );

    // The consultant syncs his own site's document over a WebSocket, with its
    // customers; a sibling site's document is unavailable to him.
    let showroom: DocumentId = own[0]["documentId"].as_str().unwrap().parse().unwrap();
    let sibling: DocumentId = all.iter().find(|s| s["id"] == "rs-1").unwrap()["documentId"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let url = format!("ws://127.0.0.1:{port}/sync?token={}", tokens["consultant"]);
    let mut c = Client::connect(&url, "wang-fang-phone", Some("wang-fang-store")).await;
    c.request(showroom).await;
    c.request(sibling).await;
    c.until("the showroom document with customers", |c| {
        let doc = &c.docs[&showroom].doc;
        match doc.get(automerge::ROOT, "customers").unwrap() {
            Some((_, customers)) => doc.length(&customers) > 0,
            None => false,
        }
    })
    .await;
    c.until("the sibling is unavailable", |c| {
        c.docs[&sibling].unavailable
    })
    .await;
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    drop(c);
    drop(demo);

    // Started again on the same directory: nothing is seeded twice, fresh tokens work.
    let port = free_port();
    let again = start_demo(dir.path(), port);
    assert!(again.banner.contains("seeded earlier"), "{}", again.banner);
    let fresh = banner_tokens(&again.banner);
    assert_eq!(sites(port, &fresh["head_office"]).await.len(), 9);
}
