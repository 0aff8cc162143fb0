//! 2: one small frame that stalls everybody.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bloom_filter_with_ten_million_probes_does_not_stall_others() {
    // About the size of the reported frame (125 bytes): twelve filters.
    let data = max_probe_bloom(10_000_000, 12);
    let all_probes = max_probe_bloom(u32::MAX, 1);
    hostile_frames_are_refused(
        "huge-probe Bloom filter",
        &["bloom", "probe"],
        vec![
            (
                "12 filters of 10M probes",
                frame(move |doc, me, server| sync_frame("sync", me, server, doc, data.clone())),
            ),
            (
                "one filter of 2^32-1 probes",
                frame(move |doc, me, server| {
                    sync_frame("sync", me, server, doc, all_probes.clone())
                }),
            ),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deflate_bomb_in_a_change_chunk_is_refused_before_inflating() {
    check_deflate_zeros();
    // 256 MiB of zeros in a frame of about a quarter MiB; the limit is 64 MiB.
    let data = deflate_bomb(256);
    println!("deflate bomb: {} bytes inflating to 256 MiB", data.len());
    assert!(data.len() < 512 * 1024, "{} bytes", data.len());
    let net = Net::start(&[]).await;
    let pid = net.server.pid().unwrap();
    let before = net.stored(net.target).await;
    let rss_before = peak_rss(pid);
    let errors = with_bystander(&net, "deflate bomb", || {
        attack_with(&net, "attacker-0", |server| {
            sync_frame("sync", &"attacker-0".into(), server, net.target, data)
        })
    })
    .await;
    let rss_after = peak_rss(pid);
    println!(
        "deflate bomb: the attacker was told {errors:?}; relay peak RSS {rss_before:?} -> {rss_after:?} bytes"
    );
    assert_refused(
        "deflate bomb",
        &errors,
        &["inflat", "limit", "compress", "large"],
    );
    if let (Some(b), Some(a)) = (rss_before, rss_after) {
        assert!(
            a.saturating_sub(b) < 160 << 20,
            "the relay's peak memory grew by {} MiB",
            (a - b) >> 20
        );
    }
    net.still_serves().await;
    assert_eq!(net.stored(net.target).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_id_of_200k_characters_is_refused_without_stalling() {
    hostile_frames_are_refused(
        "200,000-character document id",
        &["document", "id"],
        vec![
            (
                "sync",
                frame(|_, me, server| {
                    sync_frame_with_id(
                        "sync",
                        me,
                        server,
                        long_document_id(200_000).into(),
                        empty_sync_message(),
                    )
                }),
            ),
            (
                "ephemeral",
                frame(|_, me, server| {
                    cbor(&Value::Map(vec![
                        kv("type", "ephemeral"),
                        kv("senderId", me.0.as_str()),
                        kv("targetId", server.0.as_str()),
                        kv("documentId", long_document_id(200_000)),
                        kv("sessionId", "s"),
                        kv("count", 1),
                        kv("data", Value::Bytes(vec![0xa0])),
                    ]))
                }),
            ),
        ],
    )
    .await;
}
