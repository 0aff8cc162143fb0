//! The engine shards (issue 8): valid messages at the limits (1 MB changes, a sync
//! message of 500,000 new operations) cost the engine what automerge needs to apply
//! them, up to seconds. With the documents spread over several engine threads, one
//! token holder pushing such changes into his own document holds back only the
//! documents of its shard: a bystander on a document of another shard keeps its
//! round trips short. Driven with the real binary over real sockets.
//!
//! `shard_figures` (ignored) is the benchmark behind docs/benchmarks.md: the same
//! heavy writer against one shard and against several, in one run:
//! `cargo test -p dealersync-server --release --test shards -- --ignored --nocapture shard_figures`.

mod common;

use std::time::{Duration, Instant};

use automerge::ChangeHash;
use automerge::transaction::Transactable;
use common::bystander::*;
use common::hostile::*;
use common::*;
use dealersync_core::protocol::wire::Message;
use dealersync_core::protocol::{DocumentId, PeerId};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The worst bystander round trip allowed while the heavy writer runs on another
/// shard. A debug build on a busy 2-core machine: the writer's own messages take
/// seconds each on its shard, which a bystander sharing that engine waits out in
/// full; on another shard it waits only for the shared writer's commits and for CPU.
const SHARDED_BOUND: Duration = Duration::from_millis(1500);
/// How long the heavy writer waits for the answer to one message.
const HEAVY_DEADLINE: Duration = Duration::from_secs(120);
/// Operations in one list change of the heavy writer (the limit per change is 100,000).
const OPS_PER_CHANGE: usize = 99_990;

/// One heavy sync message: the hashes of its new changes and the changes.
struct Heavy {
    what: &'static str,
    changes: Vec<([u8; 32], Vec<u8>)>,
}

/// `n` 1 MB changes, then one message of five list changes of [`OPS_PER_CHANGE`]
/// operations each (499,950 operations: just under the 500,000 per message).
fn heavy_messages(megabytes: u64) -> Vec<Heavy> {
    let mut all: Vec<Heavy> = (0..megabytes)
        .map(|n| Heavy {
            what: "1 MB change",
            changes: vec![megabyte_change(n)],
        })
        .collect();
    let lists = (0..5)
        .map(|i| {
            cached_change(&format!("ops-{i}-{OPS_PER_CHANGE}"), |doc| {
                let list = doc
                    .put_object(
                        automerge::ROOT,
                        format!("list{i}"),
                        automerge::ObjType::List,
                    )
                    .unwrap();
                doc.splice(
                    &list,
                    0,
                    0,
                    (0..OPS_PER_CHANGE - 1).map(|k| automerge::ScalarValue::Int(k as i64)),
                )
                .unwrap();
                doc.commit();
            })
        })
        .collect();
    all.push(Heavy {
        what: "500k operations",
        changes: lists,
    });
    all
}

/// What the heavy writer achieved.
#[derive(Debug, Default)]
struct Written {
    accepted: usize,
    /// How long each accepted message took to be acknowledged.
    took: Vec<Duration>,
    errors: Vec<String>,
}

/// Connects as the attacker (a consultant of `agent-a`) and sends `messages` into its
/// own document one at a time, each waiting for the relay's acknowledgement (its
/// heads include the new changes); stops at the first `error` or close.
async fn heavy_writer(net: &Net, messages: &[Heavy]) -> Written {
    let mut done = Written::default();
    let mut ws = raw(&net.url(&net.attacker)).await;
    ws.send(WsMessage::Binary(join_frame("heavy", None).into()))
        .await
        .unwrap();
    let (me, relay) = (PeerId::from("heavy"), PeerId::from("relay"));
    let mut theirs: Vec<[u8; 32]> = Vec::new();
    // The relay's heads of the document first: a request with an empty document.
    let request = sync_frame("request", &me, &relay, net.target, empty_sync_message());
    ws.send(WsMessage::Binary(request.into())).await.unwrap();
    if let Err(e) = answer(&mut ws, net.target, &[], &mut theirs).await {
        done.errors.push(e);
        return done;
    }
    for m in messages {
        let new: Vec<[u8; 32]> = m.changes.iter().map(|(h, _)| *h).collect();
        let data = changes_message(&theirs, &m.changes);
        let frame = sync_frame("sync", &me, &relay, net.target, data);
        let started = Instant::now();
        if ws.send(WsMessage::Binary(frame.into())).await.is_err() {
            done.errors.push("the relay closed the socket".into());
            return done;
        }
        match answer(&mut ws, net.target, &new, &mut theirs).await {
            Ok(()) => {
                done.accepted += 1;
                done.took.push(started.elapsed());
                println!(
                    "heavy writer: {} acknowledged in {:?}",
                    m.what,
                    started.elapsed()
                );
            }
            Err(e) => {
                done.errors.push(e);
                return done;
            }
        }
    }
    done
}

/// Waits for a `sync` of `doc` whose heads include `want`; records its heads.
async fn answer(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    doc: DocumentId,
    want: &[[u8; 32]],
    theirs: &mut Vec<[u8; 32]>,
) -> Result<(), String> {
    loop {
        let next = tokio::time::timeout(HEAVY_DEADLINE, ws.next()).await;
        let Ok(Some(Ok(frame))) = next else {
            return Err(format!("no answer within {HEAVY_DEADLINE:?} or closed"));
        };
        let WsMessage::Binary(b) = frame else {
            if matches!(frame, WsMessage::Close(_)) {
                return Err("closed".into());
            }
            continue;
        };
        match Message::decode(&b) {
            Ok(Message::Error { message, .. }) => return Err(message),
            Ok(Message::Sync {
                data, document_id, ..
            }) if document_id == doc => {
                let m = automerge::sync::Message::decode(&data).unwrap();
                let heads: Vec<[u8; 32]> = m.heads.iter().map(|h| h.0).collect();
                if want.iter().all(|h| heads.contains(h)) {
                    *theirs = heads;
                    return Ok(());
                }
            }
            _ => {}
        }
    }
}

/// Runs the heavy writer beside a bystander; returns what it wrote and the
/// bystander's figures while it ran.
async fn heavy_beside_bystander(net: &Net, messages: &[Heavy]) -> (Written, Figures) {
    let mut written = Written::default();
    let (_, during) = bystander_during(net, "heavy writer", || async {
        written = heavy_writer(net, messages).await;
        written.errors.clone()
    })
    .await;
    (written, during)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_valid_changes_hold_back_only_their_own_shard() {
    let messages = heavy_messages(3);
    let net = Net::start_sharded(&[], Some(2)).await;
    let before = net.stored(net.target).await;
    let (written, during) = heavy_beside_bystander(&net, &messages).await;
    println!("heavy writer: {written:?}; bystander during it: {during:?}");
    // The load was real: the relay took the heavy messages (all of them, or until
    // the writer's share of its shard ran out, which closes it with an error).
    assert!(
        written.accepted == messages.len()
            || written.errors.iter().any(|e| e.contains("sync engine")),
        "the heavy writer was refused: {written:?}"
    );
    assert!(written.accepted >= 1, "{written:?}");
    assert!(
        during.n >= 3,
        "the bystander completed only {} round trips while the writer ran",
        during.n
    );
    assert!(
        during.max < SHARDED_BOUND,
        "the bystander on another shard waited {:?} for one round trip (bound {SHARDED_BOUND:?}) while the writer's messages took {:?}",
        during.max,
        written.took
    );
    // What the relay acknowledged is stored; what it stored (the message that used up
    // the writer's share is applied before the share is charged) was sent by the
    // writer and is audited as its own.
    let after = net.stored(net.target).await;
    let sent: Vec<ChangeHash> = messages
        .iter()
        .flat_map(|m| m.changes.iter().map(|(h, _)| ChangeHash(*h)))
        .collect();
    let acknowledged = messages[..written.accepted]
        .iter()
        .flat_map(|m| m.changes.iter().map(|(h, _)| ChangeHash(*h)));
    for h in acknowledged {
        assert!(after.heads.contains(&h), "acknowledged {h} is not stored");
    }
    let new: Vec<&ChangeHash> = after
        .heads
        .iter()
        .filter(|h| !before.heads.contains(h))
        .collect();
    assert!(new.iter().all(|h| sent.contains(h)), "{new:?}");
    let mine = after.audit.iter().filter(|(u, _)| u == "attacker").count();
    assert_eq!(mine, new.len(), "audit rows of the heavy writer");
    net.still_serves().await;
}

/// A relay's engine shards and the sites of one document each: the handshake and
/// every document's sync work on any shard count, including one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_document_syncs_whatever_the_number_of_shards() {
    for shards in [1, 3] {
        let dir = tempfile::tempdir().unwrap();
        let docs: Vec<DocumentId> = (0..6).map(|_| create_doc(dir.path())).collect();
        let n = shards.to_string();
        let server = Server::start(dir.path(), &["--engine-shards", &n]).await;
        let mut writer = Client::connect(&server.ws_url(), "writer", None).await;
        for (i, doc) in docs.iter().enumerate() {
            writer.request(*doc).await;
            writer.change(*doc, put("n", i as i64)).await;
        }
        for (i, doc) in docs.iter().enumerate() {
            let want = writer.heads(*doc);
            served_to_a_fresh_client(&server.ws_url(), Some(&mut writer), *doc, &want).await;
            let mut reader = Client::connect(&server.ws_url(), &format!("r{i}"), None).await;
            reader.request(*doc).await;
            reader
                .until("the reader has the change", |c| {
                    value(c, *doc, "n") == Some(i as i64)
                })
                .await;
        }
        // Every shard's counts add up (published on each shard's half-second tick).
        let until = Instant::now() + DEADLINE;
        loop {
            let m = server.metrics().await;
            let applied = metric_value(&m, "dealersync_changes_applied_total", "");
            if applied == 6.0 {
                break;
            }
            assert!(
                applied < 6.0 && Instant::now() < until,
                "{shards} shards: {applied} changes applied, not 6\n{m}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The bystander's round trips while the heavy writer runs, against one engine
/// shard and against `SHARD_BENCH_N` (default 2), in one run. Figures, not a test:
/// `cargo test -p dealersync-server --release --test shards -- --ignored --nocapture shard_figures`
/// (`SHARD_BENCH_MB`, default 4: the 1 MB changes before the 500k-operation message).
/// The bystander waits up to 120 s for a round trip, so a stall is measured in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn shard_figures() {
    let n: usize = env_or("SHARD_BENCH_N", 2);
    let mb: u64 = env_or("SHARD_BENCH_MB", 4);
    let messages = heavy_messages(mb);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut rows = Vec::new();
    for shards in [1, n] {
        let net = Net::start_sharded(&[], Some(shards)).await;
        let url = net.url(&net.bystander);
        let idle = Bystander::start(&url, "idle", net.other).await;
        let from = Instant::now();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (_, rounds) = idle.finish().await.unwrap();
        let base = figures(&rounds, from, Instant::now());
        let by = Bystander::start_within(&url, "bystander", net.other, HEAVY_DEADLINE).await;
        let from = Instant::now();
        let written = heavy_writer(&net, &messages).await;
        let to = Instant::now();
        let done = by.completed();
        let after = by.wait_rounds(done + 3).await;
        let (outcome, rounds) = match by.finish().await {
            Ok((c, rounds)) if !c.closed && after.is_ok() => (String::new(), rounds),
            Ok((c, rounds)) => (format!(" bystander: {after:?} {:?}", c.errors), rounds),
            Err(e) => (format!(" bystander failed: {e}"), Vec::new()),
        };
        let during = figures(&rounds, from, to);
        let writer_max = written.took.iter().max().copied().unwrap_or_default();
        rows.push(format!(
            "| {shards} | {}/{} | {:.1} s | {:.0} ms | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {}{outcome} |",
            written.accepted,
            messages.len(),
            (to - from).as_secs_f64(),
            ms(writer_max),
            during.n,
            ms(during.p50),
            ms(during.p99),
            ms(during.max),
            ms(base.p50),
            ms(base.max),
            written.errors.join("; "),
        ));
        println!("{}", rows.last().unwrap());
    }
    println!(
        "\n| shards | heavy messages acknowledged | writer time | writer's slowest acknowledged | bystander rounds | p50 | p99 | max | idle p50 | idle max | writer told |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}
