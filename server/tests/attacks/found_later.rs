//! Attacks found while writing these: unsorted and unknown heads, queues bounded by count, connection churn.

use super::*;

/// A small valid change whose sync message lists its heads unsorted. automerge
/// asserts (in debug builds) that the heads it encodes are sorted, and a relay that
/// echoes a peer's heads into its own messages panicked on the engine thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsorted_heads_do_not_stop_the_relay() {
    let net = Net::start(&[]).await;
    let mut a = synced_attacker(&net, "attacker").await;
    let theirs: Vec<[u8; 32]> = a.server_heads(net.target).iter().map(|h| h.0).collect();
    let mut doc = automerge::AutoCommit::new();
    doc.put(automerge::ROOT, "unsorted", 1).unwrap();
    let change = doc.get_last_local_change().unwrap();
    let mut heads = [theirs.clone(), vec![change.hash().0]].concat();
    heads.sort();
    heads.reverse();
    let data = sync_message(
        &heads,
        &[],
        &[Have {
            last_sync: theirs,
            bloom: vec![],
        }],
        &[change.raw_bytes().to_vec()],
    );
    let frame = sync_frame("sync", &a.peer_id, &a.server, net.target, data);
    let attacker = &mut a;
    let errors = with_bystander(&net, "unsorted heads", move || async move {
        let seen = attacker.sync_bytes_in;
        attacker.send_raw(frame).await;
        // Accepted or refused, the relay answers it and keeps serving everybody.
        let until = Instant::now() + ATTACK_DEADLINE;
        while !attacker.closed && attacker.sync_bytes_in == seen && Instant::now() < until {
            attacker.pump_once(Duration::from_millis(100)).await;
        }
        attacker.errors.clone()
    })
    .await;
    println!("unsorted heads: the attacker was told {errors:?}");
    net.still_serves().await;
}

/// Thousands of `request`s for ids that do not exist, as fast as the rate limit
/// allows, on several connections at once: each costs a store lookup and a
/// `doc-unavailable`, and nobody else may notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_thousands_of_unknown_ids_do_not_stall_others() {
    let net = Net::start(&[]).await;
    let errors = with_bystander(&net, "requests for unknown ids", || async {
        let mut tasks = Vec::new();
        for conn in 0..4 {
            let url = net.url(&net.attacker);
            tasks.push(tokio::spawn(async move {
                let me = format!("prober-{conn}");
                let mut c = Client::connect(&url, &me, None).await;
                let started = Instant::now();
                let mut unavailable = 0;
                // Just under the default 1,000 messages per second.
                for i in 0..2_400 {
                    let frame = sync_frame(
                        "request",
                        &c.peer_id,
                        &c.server,
                        DocumentId::random(),
                        empty_sync_message(),
                    );
                    let due = started + Duration::from_micros(1_250 * i);
                    tokio::time::sleep_until(due.into()).await;
                    if c.closed {
                        break;
                    }
                    c.send_raw(frame).await;
                    while c.pump_once(Duration::ZERO).await && !c.closed {
                        unavailable += 1;
                    }
                }
                let until = Instant::now() + ATTACK_DEADLINE;
                while unavailable < 2_400 && !c.closed && Instant::now() < until {
                    if c.pump_once(Duration::from_millis(100)).await {
                        unavailable += 1;
                    }
                }
                (unavailable, c.errors.clone())
            }));
        }
        let mut errors = Vec::new();
        for t in tasks {
            let (answers, e) = t.await.unwrap();
            println!("prober: {answers} answers, errors {e:?}");
            errors.extend(e);
        }
        errors
    })
    .await;
    assert!(errors.is_empty(), "{errors:?}");
    net.still_serves().await;
}

/// Sync messages within every bound the validator checks (65,000 heads, under the
/// 65,536 allowed) but naming heads the relay does not have: each costs the engine
/// work in proportion, and twenty pipelined on one connection must not hold
/// everybody else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_sync_messages_with_65k_unknown_heads_do_not_stall_others() {
    let net = Net::start(&[]).await;
    let before = net.stored(net.target).await;
    let mut heads: Vec<[u8; 32]> = (0..65_000u64)
        .map(|i| noise(32, i + 1).try_into().unwrap())
        .collect();
    heads.sort();
    let data = sync_message(&heads, &[], &[], &[]);
    let target = net.target;
    let answers = with_bystander(&net, "20 x 65,000 unknown heads", || async {
        let mut a = Client::connect(&net.url(&net.attacker), "attacker-heads", None).await;
        let frame = sync_frame("sync", &a.peer_id, &a.server, target, data);
        let sent = Instant::now();
        for _ in 0..20 {
            a.send_raw(frame.clone()).await;
        }
        let mut answers = 0;
        let until = Instant::now() + Duration::from_secs(60);
        while answers < 20 && !a.closed && Instant::now() < until {
            if a.pump_once(Duration::from_millis(100)).await {
                answers += 1;
            }
        }
        println!(
            "65,000 unknown heads: {answers} answers to 20 messages in {:?}, errors {:?}",
            sent.elapsed(),
            a.errors
        );
        a.errors.clone()
    })
    .await;
    println!("65,000 unknown heads: {answers:?}");
    net.still_serves().await;
    assert_eq!(net.stored(net.target).await, before);
}

/// Frames that pass every check queue for the engine by count (16,384), not by
/// bytes: 80 sync messages of 2 MB (65,000 unknown heads each) pipelined on four
/// connections while the engine works through them must not pile up in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_large_messages_do_not_pile_up_in_memory() {
    let net = Net::start(&[]).await;
    let pid = net.server.pid().unwrap();
    let mut heads: Vec<[u8; 32]> = (0..65_000u64)
        .map(|i| noise(32, i + 1).try_into().unwrap())
        .collect();
    heads.sort();
    let data = sync_message(&heads, &[], &[], &[]);
    let rss_before = peak_rss(pid);
    let mut tasks = Vec::new();
    for conn in 0..4 {
        let url = net.url(&net.attacker);
        let target = net.target;
        let data = data.clone();
        tasks.push(tokio::spawn(async move {
            let mut a = Client::connect(&url, &format!("piler-{conn}"), None).await;
            let frame = sync_frame("sync", &a.peer_id, &a.server, target, data);
            for _ in 0..20 {
                if a.closed {
                    break;
                }
                a.send_raw(frame.clone()).await;
            }
            let until = Instant::now() + Duration::from_secs(60);
            let mut answers = 0;
            while answers < 20 && !a.closed && Instant::now() < until {
                if a.pump_once(Duration::from_millis(100)).await {
                    answers += 1;
                }
            }
            (answers, a.errors.clone())
        }));
    }
    for t in tasks {
        let (answers, errors) = t.await.unwrap();
        println!("piler: {answers} answers, errors {errors:?}");
    }
    let rss_after = peak_rss(pid);
    let grown = rss_after
        .unwrap_or(0)
        .saturating_sub(rss_before.unwrap_or(0));
    println!(
        "80 pipelined messages of {} bytes: relay peak RSS {rss_before:?} -> {rss_after:?} (+{} MiB)",
        data.len(),
        grown >> 20
    );
    assert!(
        grown < 128 << 20,
        "the relay's peak memory grew by {} MiB for 166 MB of pipelined frames",
        grown >> 20
    );
    net.still_serves().await;
}

/// A peer that stops reading its socket while another floods 60 KiB `ephemeral`
/// messages on a document they both read (the network document): the relay queues
/// frames for it by count (4,096), so up to 4,096 x 64 KiB per sleeping peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_flood_to_a_peer_that_does_not_read_stays_bounded_in_memory() {
    let net = Net::start(&[]).await;
    let pid = net.server.pid().unwrap();
    let network: DocumentId = net
        .http
        .get(net.server.url("/api/network"))
        .bearer_auth(&net.server.token)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["documentId"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut sleepy = Client::connect(&net.url(&net.bystander), "sleepy", None).await;
    sleepy.request(network).await;
    sleepy
        .until("the sleepy peer syncs", |c| {
            !c.server_heads(network).is_empty()
        })
        .await;
    let mut a = Client::connect(&net.url(&net.attacker), "flooder", None).await;
    a.request(network).await;
    a.until("the flooder syncs", |c| !c.server_heads(network).is_empty())
        .await;
    let rss_before = peak_rss(pid);
    let payload = noise(60 * 1024, 3);
    let started = Instant::now();
    let mut sent = 0;
    let errors = with_bystander(&net, "ephemeral flood", || async {
        for count in 1..=3_000u64 {
            // Just under the default 1,000 messages per second.
            let due = started + Duration::from_micros(1_100 * count);
            tokio::time::sleep_until(due.into()).await;
            let frame = cbor(&Value::Map(vec![
                kv("type", "ephemeral"),
                kv("senderId", "flooder"),
                kv("targetId", a.server.0.as_str()),
                kv("documentId", network.to_string()),
                kv("sessionId", "s"),
                kv("count", count),
                kv("data", Value::Bytes(payload.clone())),
            ]));
            if a.closed {
                break;
            }
            a.send_raw(frame).await;
            sent += 1;
            while a.pump_once(Duration::ZERO).await && !a.closed {}
        }
        a.errors.clone()
    })
    .await;
    let rss_after = peak_rss(pid);
    let grown = rss_after
        .unwrap_or(0)
        .saturating_sub(rss_before.unwrap_or(0));
    println!(
        "ephemeral flood: {sent} messages of 60 KiB, flooder told {errors:?}; relay peak RSS {rss_before:?} -> {rss_after:?} (+{} MiB)",
        grown >> 20
    );
    assert!(
        grown < 128 << 20,
        "the relay's peak memory grew by {} MiB queueing a flood for a peer that does not read",
        grown >> 20
    );
    drop(sleepy);
    net.still_serves().await;
}

/// A fresh automerge client's first sync message (no heads, one `have` with an empty
/// Bloom filter) asks for the whole document, and repeating it makes the relay send
/// the whole document again. A token holder who grew its own site document to a few
/// MB (within every limit) repeats it 200 times without reading its socket: what the
/// relay queues for that one connection must stay bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_full_sync_requests_to_a_peer_that_does_not_read_stay_bounded() {
    let net = Net::start(&[]).await;
    let pid = net.server.pid().unwrap();
    // Three changes of 1,000,000 bytes into the attacker's own document.
    let mut a = synced_attacker(&net, "grower").await;
    for n in 0..3u64 {
        a.change(net.target, |d| {
            d.put(
                automerge::ROOT,
                format!("blob{n}"),
                automerge::ScalarValue::Bytes(noise(1_000_000, n + 100)),
            )
            .unwrap();
        })
        .await;
        let want = a.heads(net.target);
        a.until("the change is acknowledged", |c| {
            want.iter().all(|h| c.server_heads(net.target).contains(h))
        })
        .await;
    }
    drop(a);
    let first = sync_message(
        &[],
        &[],
        &[Have {
            last_sync: vec![],
            bloom: vec![],
        }],
        &[],
    );
    let mut ws = raw(&net.url(&net.attacker)).await;
    ws.send(WsMessage::Binary(join_frame("hoarder", None).into()))
        .await
        .unwrap();
    assert!(matches!(
        first_answer(&mut ws, DEADLINE).await,
        Answer::Replied(_)
    ));
    let frame = sync_frame(
        "sync",
        &PeerId::from("hoarder"),
        &PeerId::from("relay"),
        net.target,
        first,
    );
    let rss_before = peak_rss(pid).unwrap_or(0);
    let mut sent = 0;
    for _ in 0..200 {
        if ws
            .send(WsMessage::Binary(frame.clone().into()))
            .await
            .is_err()
        {
            break;
        }
        sent += 1;
    }
    // Watch the relay's peak memory for 15 s while the socket is not read.
    let bound: u64 = 256 << 20;
    let until = Instant::now() + Duration::from_secs(15);
    let mut grown = 0;
    while Instant::now() < until && grown < bound {
        tokio::time::sleep(Duration::from_millis(200)).await;
        grown = peak_rss(pid).unwrap_or(0).saturating_sub(rss_before);
    }
    let out = metric_value(
        &net.server.metrics().await,
        "dealersync_bytes_out_total",
        "type=\"sync\"",
    );
    println!(
        "{sent} full-sync requests for a 3 MB document, socket not read: relay peak RSS +{} MiB, {:.1} MB of sync frames sent in all",
        grown >> 20,
        out / 1e6
    );
    assert!(
        grown < bound,
        "the relay's peak memory grew by over {} MiB for one connection that does not read",
        grown >> 20
    );
    drop(ws);
    net.still_serves().await;
}

/// Changes just under the 1 MiB limit pushed into a document the sender may only
/// read (the network document): each is parsed and hashed before it is refused, the
/// refusal keeps the connection open, so the sender can go on. Four connections
/// pipelining twenty each must not hold everybody else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_changes_just_under_the_limit_do_not_stall_others() {
    let net = Net::start(&[]).await;
    let network: DocumentId = net
        .http
        .get(net.server.url("/api/network"))
        .bearer_auth(&net.server.token)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["documentId"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let before = net.stored(network).await;
    let changes: Vec<_> = (0..4).map(|n| megabyte_change(n + 50)).collect();
    let errors = with_bystander(&net, "read-only 1 MB changes", || async {
        let mut tasks = Vec::new();
        for (conn, (hash, change)) in changes.into_iter().enumerate() {
            let url = net.url(&net.attacker);
            tasks.push(tokio::spawn(async move {
                let mut a = Client::connect(&url, &format!("pusher-{conn}"), None).await;
                let data = sync_message(&[hash], &[], &[], &[change]);
                let frame = sync_frame("sync", &a.peer_id, &a.server, network, data);
                for _ in 0..20 {
                    if a.closed {
                        break;
                    }
                    a.send_raw(frame.clone()).await;
                }
                let until = Instant::now() + Duration::from_secs(30);
                while a.errors.len() < 20 && !a.closed && Instant::now() < until {
                    a.pump_once(Duration::from_millis(100)).await;
                }
                a.errors.clone()
            }));
        }
        let mut errors = Vec::new();
        for t in tasks {
            errors.extend(t.await.unwrap());
        }
        errors
    })
    .await;
    println!(
        "read-only 1 MB changes: {} errors, first {:?}",
        errors.len(),
        errors.first()
    );
    assert_refused("read-only 1 MB changes", &errors, &["read-only"]);
    net.still_serves().await;
    assert_eq!(net.stored(network).await, before);
}

/// Connections of one token under fresh peer and storage ids, eight at a time: each
/// `join` binds its ids in the database (a write transaction beside the relay's
/// commits) and each disconnect saves a sync state. Nobody else may notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_churn_under_fresh_ids_does_not_stall_others() {
    let net = Net::start(&[]).await;
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let errors = with_bystander(&net, "connection churn", || async {
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let url = net.url(&net.attacker);
            let target = net.target;
            let connections = connections.clone();
            tasks.push(tokio::spawn(async move {
                let mut errors = Vec::new();
                for _ in 0..40 {
                    let id = uuid::Uuid::new_v4();
                    let mut c =
                        Client::connect(&url, &format!("churn-{id}"), Some(&format!("store-{id}")))
                            .await;
                    c.request(target).await;
                    c.until("synced", |c| !c.server_heads(target).is_empty())
                        .await;
                    errors.extend(c.errors.clone());
                    connections.fetch_add(1, Ordering::Relaxed);
                }
                errors
            }));
        }
        let mut errors = Vec::new();
        for t in tasks {
            errors.extend(t.await.unwrap());
        }
        errors
    })
    .await;
    println!(
        "connection churn: {} connections, errors {errors:?}",
        connections.load(Ordering::Relaxed)
    );
    net.still_serves().await;
}

/// Rows `sql` counts in the relay's database (opened read-only beside it).
fn count_rows(net: &Net, sql: &str) -> i64 {
    let db = rusqlite::Connection::open_with_flags(
        net.server.data_dir.join("dealersync.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// What one token leaves behind in the database by connecting again and again
/// under fresh peer and storage ids: a peer binding per id (kept 90 days) and a saved
/// sync state per storage id and document. A figure for the report, not a test:
/// `cargo test -p dealersync-server --test attacks -- --ignored --nocapture storage_id_churn`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn storage_id_churn_figures() {
    let n: i64 = env_or("ATTACK_CHURN_N", 300);
    let net = Net::start(&[]).await;
    let states = "SELECT count(*) FROM sync_states";
    let bindings = "SELECT count(*) FROM peer_bindings";
    let (s0, b0) = (count_rows(&net, states), count_rows(&net, bindings));
    let started = Instant::now();
    for i in 0..n {
        let id = uuid::Uuid::new_v4();
        let mut c = Client::connect(
            &net.url(&net.attacker),
            &format!("churn-{id}"),
            Some(&format!("store-{id}")),
        )
        .await;
        c.request(net.target).await;
        c.until("synced", |c| !c.server_heads(net.target).is_empty())
            .await;
        if i % 100 == 99 {
            println!("{} connections in {:?}", i + 1, started.elapsed());
        }
    }
    let elapsed = started.elapsed();
    let until = Instant::now() + DEADLINE;
    while count_rows(&net, states) - s0 < n && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s1, b1) = (count_rows(&net, states), count_rows(&net, bindings));
    let bytes = count_rows(
        &net,
        "SELECT coalesce(sum(length(state) + length(storage_id) + length(doc_id)), 0) FROM sync_states",
    );
    println!(
        "{n} connections of one token with fresh ids in {elapsed:?} ({:.0}/s): \
         sync_states {s0} -> {s1} ({bytes} bytes of rows), peer_bindings {b0} -> {b1}",
        n as f64 / elapsed.as_secs_f64()
    );
}
