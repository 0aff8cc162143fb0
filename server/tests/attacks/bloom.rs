//! 1: a Bloom filter with zero bits per entry.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_bit_bloom_filter_is_refused_and_the_relay_keeps_serving() {
    hostile_frames_are_refused(
        "zero-bit Bloom filter",
        &["bloom"],
        vec![
            (
                "sync",
                frame(|doc, me, server| {
                    sync_frame("sync", me, server, doc, ZERO_BIT_BLOOM.to_vec())
                }),
            ),
            (
                "request",
                frame(|doc, me, server| {
                    sync_frame("request", me, server, doc, ZERO_BIT_BLOOM.to_vec())
                }),
            ),
        ],
    )
    .await;
}
