//! `dealersync-tiers-bench`: how long a distribution centre's relay takes to drain a
//! week offline to head office (issue 12 §5), and what it costs on the wire.
//!
//! For each link profile: a head office relay and a DC relay (`serve --upstream`)
//! behind the TCP fault proxy, the WAN cut; a device on the DC's LAN (a sync engine
//! on a real WebSocket, as in `dealersync-load`) writes `--changes` changes spread
//! over the DC's site documents and waits until the DC has acknowledged them
//! (committed there); then the WAN returns with the profile. Printed: the time from
//! the link's reconnection until `/api/upstream` says the upstream has acknowledged
//! everything, the bytes that crossed the WAN each way, and the upstream bytes per
//! change. Run the release build:
//!
//! ```sh
//! cargo build --release -p dealersync-server -p dealersync-tests --bin dealersync-server --bin dealersync-tiers-bench
//! target/release/dealersync-tiers-bench --changes 10000
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use automerge::ROOT;
use automerge::transaction::Transactable;
use clap::Parser;
use dealersync_core::protocol::DocumentId;
use dealersync_tests::RustClient;
use dealersync_tests::fault_proxy::{FaultProxy, LinkProfile};
use dealersync_tests::tiers::{
    downstream, head_office, relay_token, upstream_status, wait_drained,
};

#[derive(Parser)]
#[command(about = "Time and bytes for a downstream relay to drain a backlog to its upstream")]
struct Args {
    /// Changes written at the DC while the WAN is cut.
    #[arg(long, default_value_t = 10_000)]
    changes: u64,
    /// Link profiles to measure: lan, 2g.
    #[arg(long, value_delimiter = ',', default_value = "lan,2g")]
    profiles: Vec<String>,
    /// Longest wait for one drain, in seconds.
    #[arg(long, default_value_t = 3600)]
    timeout_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "backlog of {} changes over the DC's site documents (dc-north, agent-a), drained to head office",
        args.changes
    );
    println!("profile  drain_s  up_bytes  down_bytes  up_bytes_per_change");
    for name in &args.profiles {
        let profile = match name.as_str() {
            "lan" => LinkProfile::LAN,
            "2g" => LinkProfile::TWO_G,
            other => bail!("unknown profile {other:?}: lan or 2g"),
        };
        let (secs, up, down) = drain(
            args.changes,
            profile,
            Duration::from_secs(args.timeout_secs),
        )
        .await
        .with_context(|| format!("the {name} run"))?;
        println!(
            "{name:<8} {secs:>7.1}  {up:>8}  {down:>10}  {:>19.1}",
            up as f64 / args.changes as f64
        );
    }
    Ok(())
}

/// One run: returns the drain time and the WAN bytes up and down.
async fn drain(
    changes: u64,
    profile: LinkProfile,
    timeout: Duration,
) -> anyhow::Result<(f64, u64, u64)> {
    let hq = head_office().await?;
    let proxy = FaultProxy::start(hq.port(), LinkProfile::LAN).await?;
    let relay = relay_token(&hq, "dc-north-relay", "dc-north").await?;
    let dc = downstream(&proxy.http_url(), &relay, &hq, &[]).await?;
    let manager = hq.token("lee", "manager", "dc-north").await?;
    wait_drained(&dc, &manager, timeout).await?;
    let status = upstream_status(&dc, &manager).await?;
    let docs: Vec<DocumentId> = status["documents"]
        .as_array()
        .context("documents")?
        .iter()
        .filter(|d| d["site"].is_string())
        .filter_map(|d| d["documentId"].as_str()?.parse().ok())
        .collect();
    anyhow::ensure!(
        !docs.is_empty(),
        "the DC follows no site document: {status}"
    );

    proxy.partition();
    let bearer = format!("Bearer {manager}");
    let mut device = RustClient::connect_with_headers(
        "dc-device",
        &dc.ws_url(),
        &[("Authorization", bearer.as_str())],
        Duration::from_secs(30),
    )
    .await?;
    for doc in &docs {
        device.open(doc, Duration::from_secs(30)).await?;
    }
    for i in 0..changes {
        let doc = &docs[i as usize % docs.len()];
        device
            .change(doc, |tx| {
                tx.put(ROOT, format!("bench-{i}"), i as i64)?;
                Ok(())
            })
            .await?;
    }
    for doc in &docs {
        device.wait_synced(doc, timeout).await?;
    }
    let connects = upstream_status(&dc, &manager).await?["connects"]
        .as_u64()
        .unwrap_or(0);
    proxy.set_profile(profile);
    let (up0, down0) = proxy.bytes();
    proxy.heal();
    // The clock starts when the link is back (its back-off is not the link's cost).
    let until = Instant::now() + timeout;
    let started = loop {
        let s = upstream_status(&dc, &manager).await?;
        if s["connects"].as_u64().unwrap_or(0) > connects {
            break Instant::now();
        }
        anyhow::ensure!(Instant::now() < until, "the link never came back: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    wait_drained(&dc, &manager, timeout).await?;
    let secs = started.elapsed().as_secs_f64();
    let (up1, down1) = proxy.bytes();
    Ok((secs, up1 - up0, down1 - down0))
}
