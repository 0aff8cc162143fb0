//! The stall benchmark (ignored; figures in docs/benchmarks.md).

use super::*;

/// How an attack class reaches the relay.
enum Payload {
    /// No attack: the bystander's baseline over the same time.
    Nothing(Duration),
    /// A frame sent after an ordinary `join`.
    AfterJoin(Frame),
    /// A frame sent instead of the `join`.
    Instead(Frame),
}

/// Sends one hostile payload on a fresh attacker connection and waits for the answer.
async fn send_once(net: &Net, n: usize, payload: &Payload) -> (usize, Answer) {
    let me = PeerId::from(format!("bench-attacker-{n}").as_str());
    let mut ws = raw(&net.url(&net.attacker)).await;
    let bytes = match payload {
        Payload::Nothing(_) => unreachable!(),
        Payload::Instead(f) => f(net.target, &me, &PeerId::from("")),
        Payload::AfterJoin(f) => {
            ws.send(WsMessage::Binary(join_frame(&me.0, None).into()))
                .await
                .unwrap();
            let server = match first_answer(&mut ws, DEADLINE).await {
                Answer::Replied(_) => PeerId::from("relay"),
                other => return (0, other),
            };
            f(net.target, &me, &server)
        }
    };
    let len = bytes.len();
    if ws.send(WsMessage::Binary(bytes.into())).await.is_err() {
        return (len, Answer::Closed);
    }
    let answer = first_answer(&mut ws, Duration::from_secs(60)).await;
    let _ = ws.close(None).await;
    (len, answer)
}

/// The hostile message classes of issue 8, and a few more.
fn attack_classes() -> Vec<(&'static str, Payload)> {
    let sync = |data: Vec<u8>| -> Frame {
        frame(move |doc, me, server| sync_frame("sync", me, server, doc, data.clone()))
    };
    let (text_hash, text_change) = Oversized::Text.change();
    let random_hashes = |n: usize| -> Vec<[u8; 32]> {
        (0..n)
            .map(|i| noise(32, i as u64 + 1).try_into().unwrap())
            .collect()
    };
    vec![
        (
            "baseline (no attack)",
            Payload::Nothing(Duration::from_secs(3)),
        ),
        (
            "valid small sync",
            Payload::AfterJoin(sync(empty_sync_message())),
        ),
        (
            "max-probe Bloom (12 x 10M probes)",
            Payload::AfterJoin(sync(max_probe_bloom(10_000_000, 12))),
        ),
        (
            "deflate bomb (256 MiB)",
            Payload::AfterJoin(sync(deflate_bomb(256))),
        ),
        (
            "200k-char document id",
            Payload::AfterJoin(frame(|_, me, server| {
                sync_frame_with_id(
                    "sync",
                    me,
                    server,
                    long_document_id(200_000).into(),
                    empty_sync_message(),
                )
            })),
        ),
        (
            "duplicate-key join",
            Payload::Instead(frame(|_, _, _| {
                duplicate_sender_join(Value::Null, "bystander")
            })),
        ),
        (
            "16 MiB CBOR array",
            Payload::AfterJoin(frame(|_, _, _| cbor_array_of_zeros((16 << 20) - 64))),
        ),
        (
            "oversized change (1M chars)",
            Payload::AfterJoin(sync(sync_message(&[text_hash], &[], &[], &[text_change]))),
        ),
        (
            "CBOR nested 100k deep",
            Payload::AfterJoin(frame(|_, _, _| deep_cbor(100_000))),
        ),
        (
            "need list of 65,000 unknown hashes",
            Payload::AfterJoin(sync(sync_message(&[], &random_hashes(65_000), &[], &[]))),
        ),
        (
            "have list of 10k default filters",
            Payload::AfterJoin(sync(sync_message(
                &[],
                &[],
                &(0..10_000)
                    .map(|_| Have {
                        last_sync: vec![],
                        bloom: vec![],
                    })
                    .collect::<Vec<_>>(),
                &[],
            ))),
        ),
        (
            "lastSync of 65,000 unknown hashes",
            Payload::AfterJoin(sync(sync_message(
                &[],
                &[],
                &[Have {
                    last_sync: {
                        let mut h = random_hashes(65_000);
                        h.sort();
                        h
                    },
                    bloom: vec![],
                }],
                &[],
            ))),
        ),
        (
            "heads of 65,000 unknown hashes",
            Payload::AfterJoin(sync(sync_message(&random_hashes(65_000), &[], &[], &[]))),
        ),
    ]
}

/// The bystander's round-trip latency while each hostile message class is sent
/// `ATTACK_BENCH_N` times (default 5), one fresh relay per class. A figure, not a
/// pass/fail test:
/// `cargo test -p dealersync-server --release --test attacks -- --ignored --nocapture stall_figures`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn stall_figures() {
    let n: usize = env_or("ATTACK_BENCH_N", 5);
    let only = std::env::var("ATTACK_BENCH_ONLY").unwrap_or_default();
    let mut rows = Vec::new();
    let mut baseline = Duration::ZERO;
    for (name, payload) in attack_classes() {
        if !only.is_empty() && !name.contains(only.as_str()) && !name.starts_with("baseline") {
            continue;
        }
        let net = Net::start(&[]).await;
        let by = Bystander::start(&net.url(&net.bystander), "bystander", net.other).await;
        let from = Instant::now();
        let mut sizes = 0;
        let mut answers = Vec::new();
        match &payload {
            Payload::Nothing(d) => tokio::time::sleep(*d).await,
            p => {
                for i in 0..n {
                    let (len, answer) = send_once(&net, i, p).await;
                    sizes = len;
                    answers.push(answer);
                }
            }
        }
        let to = Instant::now();
        let done = by.completed();
        let after = by.wait_rounds(done + 3).await;
        let (outcome, rounds) = match by.finish().await {
            Ok((c, rounds)) if !c.closed && after.is_ok() => ("ok".to_string(), rounds),
            Ok((c, rounds)) => (format!("bystander: {after:?} {:?}", c.errors), rounds),
            Err(e) => (format!("bystander failed: {e}"), Vec::new()),
        };
        let f = figures(&rounds, from, to);
        if name.starts_with("baseline") {
            baseline = f.p50;
        }
        let alive = reqwest::get(net.server.url("/healthz")).await.is_ok();
        let first = answers.first().map(Answer::describe).unwrap_or_default();
        // The cause, without the document id in front of it.
        let first = match first.split_once(" refused: ") {
            Some((head, cause)) if head.contains("sync message for document") => {
                format!("error: {cause}")
            }
            _ => first,
        };
        let first: String = first.chars().take(90).collect();
        let row = format!(
            "| {name} | {sizes} | {} | {:.1} s | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.0}x | {first} | {outcome}{} |",
            answers.len(),
            (to - from).as_secs_f64(),
            f.n,
            f.p50.as_secs_f64() * 1e3,
            f.p99.as_secs_f64() * 1e3,
            f.max.as_secs_f64() * 1e3,
            f.max.as_secs_f64() / baseline.as_secs_f64().max(1e-6),
            if alive { "" } else { "; relay down" },
        );
        println!("{row}");
        rows.push(row);
    }
    println!(
        "\n| class | frame bytes | sends | attack time | bystander rounds | p50 | p99 | max | max / baseline p50 | attacker's first answer | bystander |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}
