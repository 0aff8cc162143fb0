//! Propagation: every client writes at an even share of the rate and records when the
//! other clients' changes reach it.

use crate::*;

/// One propagation client, whichever implementation it runs.
pub(crate) enum Client {
    /// The project's own engine ([`Peer`], boxed: it is the larger).
    Engine(Box<Peer>),
    /// samod, the stock Rust automerge-repo ([`SamodPeer`]).
    Samod(SamodPeer),
}

impl Client {
    /// Connects a client of `kind` and waits until it has the document.
    async fn connect(
        kind: ClientKind,
        url: &str,
        name: &str,
        doc: DocumentId,
        deadline: TokioInstant,
    ) -> anyhow::Result<Client> {
        match kind {
            ClientKind::Engine => {
                let mut peer = Peer::connect(url, name, doc, Open::Existing).await?;
                peer.wait_synced(deadline).await?;
                Ok(Client::Engine(Box::new(peer)))
            }
            ClientKind::Samod => Ok(Client::Samod(SamodPeer::connect(url, doc, deadline).await?)),
            ClientKind::Js => bail!("JavaScript clients run in node (js_clients.rs)"),
        }
    }

    /// Waits for the next update from the relay, applied to the client's copy.
    async fn recv(&mut self) -> anyhow::Result<()> {
        match self {
            Client::Engine(p) => p.recv().await,
            Client::Samod(p) => p.recv().await,
        }
    }

    /// Writes `key` = `value` as one change and sends it.
    async fn write(&mut self, key: &str, value: i64) -> anyhow::Result<()> {
        match self {
            Client::Engine(p) => {
                p.change(key, value)?;
                p.flush(Vec::new()).await
            }
            Client::Samod(p) => p.write(key, value),
        }
    }

    fn int_at(&self, key: &str) -> Option<i64> {
        match self {
            Client::Engine(p) => p.int_at(key),
            Client::Samod(p) => p.int_at(key),
        }
    }

    fn synced(&self) -> bool {
        match self {
            Client::Engine(p) => p.synced(),
            Client::Samod(p) => p.synced(),
        }
    }

    async fn close(self) {
        match self {
            Client::Engine(p) => p.close().await,
            Client::Samod(p) => p.close().await,
        }
    }
}

/// What one propagation client reports.
#[derive(Default)]
pub(crate) struct PropagationReport {
    pub(crate) latencies_us: Vec<u32>,
    /// (send time µs, latency µs) of each observation, for the per-window view.
    pub(crate) timeline: Vec<(i64, u32)>,
    pub(crate) written: u64,
    pub(crate) missing: u64,
    pub(crate) errors: Vec<String>,
}

/// Shared by the clients of one propagation run.
pub(crate) struct PropagationPlan {
    pub(crate) conns_total: usize,
    pub(crate) conns_per_doc: usize,
    /// Which implementation every client of this run is.
    pub(crate) clients: ClientKind,
    pub(crate) rate: f64,
    pub(crate) duration: Duration,
    pub(crate) drain: Duration,
    /// Per connection: how many changes it wrote, once it stopped (u64::MAX before).
    pub(crate) final_written: Vec<AtomicU64>,
}

pub(crate) async fn propagation_client(
    url: String,
    doc: DocumentId,
    g: usize,
    plan: Arc<PropagationPlan>,
    setup_deadline: TokioInstant,
    ready: mpsc::Sender<anyhow::Result<()>>,
    mut start: watch::Receiver<Option<TokioInstant>>,
) -> PropagationReport {
    let mut report = PropagationReport::default();
    let slot = g % plan.conns_per_doc;
    let first_of_doc = g - slot;
    let setup =
        async { Client::connect(plan.clients, &url, &format!("p{g}"), doc, setup_deadline).await }
            .await;
    let mut peer = match setup {
        Ok(p) => {
            let _ = ready.send(Ok(())).await;
            p
        }
        Err(e) => {
            let _ = ready.send(Err(anyhow::anyhow!("client {g}: {e:#}"))).await;
            plan.final_written[g].store(0, Ordering::SeqCst);
            report.errors.push(format!("{e:#}"));
            return report;
        }
    };
    // Keep answering the relay while the others get ready.
    let t0 = loop {
        tokio::select! {
            r = start.changed() => {
                if r.is_err() { return report; }
                if let Some(t) = *start.borrow() { break t; }
            }
            r = peer.recv() => if let Err(e) = r {
                report.errors.push(format!("before start: {e:#}"));
                plan.final_written[g].store(0, Ordering::SeqCst);
                return report;
            }
        }
    };
    let period = Duration::from_secs_f64(plan.conns_total as f64 / plan.rate);
    let mut next_write = t0 + Duration::from_secs_f64(g as f64 / plan.rate);
    let stop_writing = t0 + plan.duration;
    let drain_deadline = stop_writing + plan.drain;
    let others: Vec<usize> = (0..plan.conns_per_doc).filter(|s| *s != slot).collect();
    let mut next_seq = vec![0u64; plan.conns_per_doc];
    let mut writing = true;
    let result: anyhow::Result<()> = async {
        loop {
            if writing && TokioInstant::now() >= stop_writing {
                writing = false;
                plan.final_written[g].store(report.written, Ordering::SeqCst);
            }
            if !writing {
                let all_seen = others.iter().all(|&s| {
                    next_seq[s] >= plan.final_written[first_of_doc + s].load(Ordering::SeqCst)
                });
                if all_seen && peer.synced() {
                    return Ok(());
                }
                if TokioInstant::now() >= drain_deadline {
                    return Ok(());
                }
            }
            let wake = if writing {
                next_write.min(stop_writing)
            } else {
                // Re-check now and then: the others' final counts arrive without a frame.
                (TokioInstant::now() + Duration::from_millis(50)).min(drain_deadline)
            };
            tokio::select! {
                r = peer.recv() => {
                    r?;
                    let now = micros();
                    for &s in &others {
                        while let Some(sent) = peer.int_at(&format!("{s}:{}", next_seq[s])) {
                            let lat = (now - sent).max(0) as u32;
                            report.latencies_us.push(lat);
                            report.timeline.push((sent, lat));
                            next_seq[s] += 1;
                        }
                    }
                }
                _ = tokio::time::sleep_until(wake) => {
                    if writing && TokioInstant::now() >= next_write && TokioInstant::now() < stop_writing {
                        let key = format!("{slot}:{}", report.written);
                        peer.write(&key, micros()).await?;
                        report.written += 1;
                        next_write += period;
                    }
                }
            }
        }
    }
    .await;
    if writing {
        plan.final_written[g].store(report.written, Ordering::SeqCst);
    }
    if let Err(e) = result {
        report.errors.push(format!("{e:#}"));
    }
    for &s in &others {
        let fw = plan.final_written[first_of_doc + s].load(Ordering::SeqCst);
        if fw != u64::MAX {
            report.missing += fw.saturating_sub(next_seq[s]);
        }
    }
    peer.close().await;
    report
}

/// Figures of a propagation run.
pub(crate) struct PropagationFigures {
    pub(crate) samples: Vec<u32>,
    pub(crate) timeline: Vec<(i64, u32)>,
    pub(crate) written: u64,
    pub(crate) expected: u64,
    pub(crate) missing: u64,
    pub(crate) elapsed: Duration,
    pub(crate) errors: Vec<String>,
    pub(crate) rss_loaded: Option<ProcSample>,
    pub(crate) rss_after: Option<ProcSample>,
    pub(crate) cpu_before_run: Option<ProcSample>,
}

pub(crate) async fn run_propagation(
    cli: &Cli,
    relay: &Relay,
    kind: ClientKind,
) -> anyhow::Result<PropagationFigures> {
    let setup_timeout = Duration::from_secs_f64(cli.setup_timeout);
    eprintln!("propagation: creating {} documents", cli.docs);
    let docs = relay.create_docs(cli.docs, setup_timeout).await?;
    if kind == ClientKind::Js {
        return run_js_propagation(cli, relay, &docs).await;
    }
    let conns_total = cli.docs * cli.conns_per_doc;
    let plan = Arc::new(PropagationPlan {
        conns_total,
        conns_per_doc: cli.conns_per_doc,
        clients: kind,
        rate: cli.rate,
        duration: Duration::from_secs_f64(cli.duration),
        drain: Duration::from_secs_f64(cli.drain),
        final_written: (0..conns_total).map(|_| AtomicU64::new(u64::MAX)).collect(),
    });
    eprintln!("propagation: connecting {conns_total} clients");
    let setup_deadline = TokioInstant::now() + setup_timeout;
    let (ready_tx, mut ready_rx) = mpsc::channel(conns_total.max(1));
    let (start_tx, start_rx) = watch::channel(None);
    let mut tasks = Vec::with_capacity(conns_total);
    for g in 0..conns_total {
        tasks.push(tokio::spawn(propagation_client(
            relay.url.clone(),
            docs[g / cli.conns_per_doc],
            g,
            plan.clone(),
            setup_deadline,
            ready_tx.clone(),
            start_rx.clone(),
        )));
        // Spread the handshakes a little so the relay's accept queue does not overflow.
        if g % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    drop(ready_tx);
    let mut setup_errors = Vec::new();
    for _ in 0..conns_total {
        match ready_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => setup_errors.push(e.to_string()),
            None => break,
        }
    }
    if !setup_errors.is_empty() {
        eprintln!(
            "propagation: {} clients failed to set up, first: {}",
            setup_errors.len(),
            setup_errors[0]
        );
    }
    let rss_loaded = relay.sample();
    eprintln!("propagation: {} s at {} changes/s", cli.duration, cli.rate);
    let t0 = TokioInstant::now() + Duration::from_millis(200);
    start_tx.send(Some(t0))?;
    let mut fig = PropagationFigures {
        samples: Vec::new(),
        timeline: Vec::new(),
        written: 0,
        expected: 0,
        missing: 0,
        elapsed: Duration::ZERO,
        errors: Vec::new(),
        rss_loaded,
        rss_after: None,
        cpu_before_run: rss_loaded,
    };
    for t in tasks {
        let r = t.await?;
        fig.samples.extend(r.latencies_us);
        fig.timeline.extend(r.timeline);
        fig.written += r.written;
        fig.missing += r.missing;
        fig.errors.extend(r.errors);
    }
    fig.elapsed = plan.duration;
    fig.expected = fig.written * (cli.conns_per_doc as u64 - 1);
    fig.samples.sort_unstable();
    fig.rss_after = relay.sample();
    Ok(fig)
}
