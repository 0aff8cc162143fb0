//! Durable ingest: clients wait for the relay's acknowledgement (its advertised heads)
//! before their next changes.

use crate::*;

#[derive(Default)]
pub(crate) struct IngestReport {
    pub(crate) acked: u64,
    pub(crate) ack_us: Vec<u32>,
    pub(crate) errors: Vec<String>,
}

/// How a client learns when to start: it reports ready, then waits for the start time.
pub(crate) struct Gate {
    pub(crate) setup_deadline: TokioInstant,
    pub(crate) ready: mpsc::Sender<anyhow::Result<()>>,
    pub(crate) start: watch::Receiver<Option<TokioInstant>>,
}

pub(crate) async fn ingest_client(
    url: String,
    doc: DocumentId,
    i: usize,
    window: usize,
    duration: Duration,
    gate: Gate,
) -> IngestReport {
    let Gate {
        setup_deadline,
        ready,
        mut start,
    } = gate;
    let mut report = IngestReport::default();
    let setup = async {
        let mut peer = Peer::connect(&url, &format!("i{i}"), doc, Open::Existing).await?;
        peer.wait_synced(setup_deadline).await?;
        anyhow::Ok(peer)
    }
    .await;
    let mut peer = match setup {
        Ok(p) => {
            let _ = ready.send(Ok(())).await;
            p
        }
        Err(e) => {
            let _ = ready.send(Err(anyhow::anyhow!("client {i}: {e:#}"))).await;
            report.errors.push(format!("{e:#}"));
            return report;
        }
    };
    let t0 = loop {
        tokio::select! {
            r = start.changed() => {
                if r.is_err() { return report; }
                if let Some(t) = *start.borrow() { break t; }
            }
            r = peer.recv() => if let Err(e) = r {
                report.errors.push(format!("before start: {e:#}"));
                return report;
            }
        }
    };
    tokio::time::sleep_until(t0).await;
    let deadline = t0 + duration;
    let mut seq = 0i64;
    let result: anyhow::Result<()> = async {
        while TokioInstant::now() < deadline {
            let sent = micros();
            let mut last = None;
            for _ in 0..window {
                last = Some(peer.change("n", seq)?);
                seq += 1;
            }
            let last = last.context("window is 0")?;
            peer.flush(Vec::new()).await?;
            // Acknowledged: the relay's advertised heads contain the change.
            loop {
                if peer
                    .engine
                    .peer_heads(&peer.doc, CONN)
                    .is_some_and(|h| h.contains(&last))
                {
                    report.acked += window as u64;
                    report.ack_us.push((micros() - sent).max(0) as u32);
                    break;
                }
                match tokio::time::timeout_at(deadline, peer.recv()).await {
                    Ok(r) => r?,
                    Err(_) => return Ok(()),
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        report.errors.push(format!("{e:#}"));
    }
    peer.close().await;
    report
}

pub(crate) struct IngestFigures {
    pub(crate) acked: u64,
    pub(crate) ack_us: Vec<u32>,
    pub(crate) elapsed: Duration,
    pub(crate) errors: Vec<String>,
    pub(crate) before: Option<ProcSample>,
    pub(crate) after: Option<ProcSample>,
}

pub(crate) async fn run_ingest(cli: &Cli, relay: &Relay) -> anyhow::Result<IngestFigures> {
    let setup_timeout = Duration::from_secs_f64(cli.setup_timeout);
    eprintln!("ingest: creating {} documents", cli.ingest_clients);
    let docs = relay.create_docs(cli.ingest_clients, setup_timeout).await?;
    let setup_deadline = TokioInstant::now() + setup_timeout;
    let (ready_tx, mut ready_rx) = mpsc::channel(cli.ingest_clients.max(1));
    let (start_tx, start_rx) = watch::channel(None);
    let duration = Duration::from_secs_f64(cli.ingest_duration);
    let mut tasks = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        tasks.push(tokio::spawn(ingest_client(
            relay.url.clone(),
            *doc,
            i,
            cli.ingest_window,
            duration,
            Gate {
                setup_deadline,
                ready: ready_tx.clone(),
                start: start_rx.clone(),
            },
        )));
    }
    drop(ready_tx);
    let mut failed = 0;
    for _ in 0..docs.len() {
        let Some(r) = ready_rx.recv().await else {
            break;
        };
        if let Err(e) = r {
            if failed == 0 {
                eprintln!("ingest: client failed to set up: {e}");
            }
            failed += 1;
        }
    }
    eprintln!(
        "ingest: {} clients, window {}, {} s",
        cli.ingest_clients, cli.ingest_window, cli.ingest_duration
    );
    let before = relay.sample();
    let t0 = TokioInstant::now() + Duration::from_millis(200);
    start_tx.send(Some(t0))?;
    let mut fig = IngestFigures {
        acked: 0,
        ack_us: Vec::new(),
        elapsed: duration,
        errors: Vec::new(),
        before,
        after: None,
    };
    for t in tasks {
        let r = t.await?;
        fig.acked += r.acked;
        fig.ack_us.extend(r.ack_us);
        fig.errors.extend(r.errors);
    }
    fig.after = relay.sample();
    fig.ack_us.sort_unstable();
    Ok(fig)
}
