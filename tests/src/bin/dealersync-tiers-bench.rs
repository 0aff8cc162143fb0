//! `dealersync-tiers-bench`: how long a distribution centre's relay takes to drain a
//! week offline to head office (issue 12 §5), and what it costs on the wire.
//!
//! For each link profile: a head office relay and a DC relay (`serve --upstream`)
//! behind the TCP fault proxy, the WAN cut; a device on the DC's LAN (a sync engine
//! on a real WebSocket, as in `dealersync-load`) writes `--changes` changes spread
//! over the DC's site documents, paced and reading the DC's answers as a real device
//! does, and waits until the DC has acknowledged them (committed there); then the WAN
//! returns with the profile. Printed: the time from the link's reconnection until
//! `/api/upstream` says the upstream has acknowledged everything, the bytes that
//! crossed the WAN each way on every connection, the sync link's own frame bytes, and
//! the latter per change. Progress goes to stderr. Run the release build:
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
use dealersync_tests::fault_proxy::{FaultProxy, LinkProfile};
use dealersync_tests::tiers::{
    downstream, head_office, relay_token, upstream_status, wait_drained,
};
use dealersync_tests::{RustClient, ServerProcess};

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
    /// Changes the device writes per second at most: one sync message each, under
    /// the relay's limit of 1,000 messages per second per connection (a device
    /// writing faster is cut off as a flood, which is not what is measured here).
    #[arg(long, default_value_t = 500)]
    write_rate: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "backlog of {} changes over the DC's site documents (dc-north, agent-a), drained to head office",
        args.changes
    );
    println!(
        "profile  drain_s  wan_up_bytes  wan_down_bytes  sync_up_bytes  sync_down_bytes  sync_up_bytes_per_change"
    );
    for name in &args.profiles {
        let profile = match name.as_str() {
            "lan" => LinkProfile::LAN,
            "2g" => LinkProfile::TWO_G,
            other => bail!("unknown profile {other:?}: lan or 2g"),
        };
        let (secs, wan, sync) = drain(
            args.changes,
            profile,
            Duration::from_secs(args.timeout_secs),
            args.write_rate,
        )
        .await
        .with_context(|| format!("the {name} run of {} changes", args.changes))?;
        println!(
            "{name:<8} {secs:>7.1}  {:>12}  {:>14}  {:>13}  {:>15}  {:>24.1}",
            wan.0,
            wan.1,
            sync.0,
            sync.1,
            sync.0 as f64 / args.changes as f64
        );
    }
    Ok(())
}

/// Bytes up and down.
type Bytes = (u64, u64);

/// One run: returns the drain time, the bytes that crossed the WAN up and down (every
/// connection: the sync link, the site tree copies, the trust refresh, the audit
/// attribution) and the sync link's own frame bytes up and down (the DC's
/// `dealersync_upstream_bytes_*_total`). A failure names
/// the step that failed and carries the end of both relays' logs.
async fn drain(
    changes: u64,
    profile: LinkProfile,
    timeout: Duration,
    write_rate: u32,
) -> anyhow::Result<(f64, Bytes, Bytes)> {
    let hq = head_office().await.context("start head office")?;
    let proxy = FaultProxy::start(hq.port(), LinkProfile::LAN)
        .await
        .context("start the fault proxy")?;
    let relay = relay_token(&hq, "dc-north-relay", "dc-north")
        .await
        .context("issue the DC's relay token")?;
    let dc = downstream(&proxy.http_url(), &relay, &hq, &[])
        .await
        .context("start the DC relay")?;
    let run = measure(&hq, &dc, &proxy, (changes, write_rate), profile, timeout).await;
    run.with_context(|| {
        format!(
            "--- head office log (tail) ---\n{}\n--- DC relay log (tail) ---\n{}",
            hq.log_tail(4000),
            dc.log_tail(4000)
        )
    })
}

/// The measured part of [`drain`]: the backlog written with the WAN cut, then drained.
async fn measure(
    hq: &ServerProcess,
    dc: &ServerProcess,
    proxy: &FaultProxy,
    (changes, write_rate): (u64, u32),
    profile: LinkProfile,
    timeout: Duration,
) -> anyhow::Result<(f64, Bytes, Bytes)> {
    let manager = hq.token("lee", "manager", "dc-north").await?;
    wait_drained(dc, &manager, timeout)
        .await
        .context("the DC's first sync with head office")?;
    let status = upstream_status(dc, &manager).await?;
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
    .await
    .context("the device connects to the DC")?;
    for doc in &docs {
        device
            .open(doc, Duration::from_secs(30))
            .await
            .with_context(|| format!("the device opens {doc}"))?;
    }
    let writing = Instant::now();
    let every = Duration::from_secs(1) / write_rate.max(1);
    for i in 0..changes {
        // Paced: change i goes no earlier than i intervals after the first.
        tokio::time::sleep_until((writing + every * i as u32).into()).await;
        let doc = &docs[i as usize % docs.len()];
        device
            .change(doc, |tx| {
                tx.put(ROOT, format!("bench-{i}"), i as i64)?;
                Ok(())
            })
            .await
            .with_context(|| format!("the device writes change {i} of {changes}"))?;
        // Read the DC's answers as a real device does: unread, they fill the socket
        // and the DC closes the connection of a peer that does not read (its write
        // timeout), which is what ended the first 10,000-change runs.
        device.pump_ready().await?;
        if let Some(why) = device.closed() {
            bail!(
                "the DC closed the device's connection after change {i}: {why} (server errors: {:?})",
                device.errors()
            );
        }
        if (i + 1) % 1000 == 0 {
            eprintln!(
                "  {} changes written in {:.0} s",
                i + 1,
                writing.elapsed().as_secs_f64()
            );
        }
    }
    for doc in &docs {
        device
            .wait_synced(doc, timeout)
            .await
            .with_context(|| format!("the DC acknowledges the device's changes to {doc}"))?;
    }
    eprintln!(
        "  backlog acknowledged by the DC after {:.0} s",
        writing.elapsed().as_secs_f64()
    );
    let connects = upstream_status(dc, &manager).await?["connects"]
        .as_u64()
        .unwrap_or(0);
    proxy.set_profile(profile);
    let (up0, down0) = proxy.bytes();
    let (sync_up0, sync_down0) = link_bytes(dc).await?;
    proxy.heal();
    // The clock starts when the link is back (its back-off is not the link's cost).
    let until = Instant::now() + timeout;
    let started = loop {
        let s = upstream_status(dc, &manager).await?;
        if s["connects"].as_u64().unwrap_or(0) > connects {
            break Instant::now();
        }
        anyhow::ensure!(Instant::now() < until, "the link never came back: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    wait_drained(dc, &manager, timeout)
        .await
        .context("the DC drains the backlog to head office")?;
    let secs = started.elapsed().as_secs_f64();
    let (up1, down1) = proxy.bytes();
    let (sync_up1, sync_down1) = link_bytes(dc).await?;
    Ok((
        secs,
        (up1 - up0, down1 - down0),
        (sync_up1 - sync_up0, sync_down1 - sync_down0),
    ))
}

/// The DC's sync link frame bytes sent and received so far, from its `/metrics`.
async fn link_bytes(dc: &ServerProcess) -> anyhow::Result<Bytes> {
    let url = format!("{}/metrics", dc.http_url());
    let text = reqwest::get(&url)
        .await
        .and_then(|r| r.error_for_status())
        .with_context(|| format!("GET {url}"))?
        .text()
        .await
        .with_context(|| format!("GET {url}"))?;
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    Ok((
        value("dealersync_upstream_bytes_sent_total"),
        value("dealersync_upstream_bytes_received_total"),
    ))
}
