//! 7: valid changes far beyond any sensible size.

use super::*;

/// Sends `kind` as one change in an ordinary sync message (our heads, the relay's
/// heads as last sync, the change) and checks it is refused without harm; then a
/// normal change of the same user is accepted and audited.
async fn oversized_change_is_refused(kind: Oversized) {
    let what = format!("oversized change ({kind:?})");
    let built = Instant::now();
    let (hash, change) = kind.change();
    println!(
        "{what}: {} bytes, built or loaded in {:?}",
        change.len(),
        built.elapsed()
    );
    let net = Net::start(&[]).await;
    let before = net.stored(net.target).await;
    let mut a = synced_attacker(&net, "attacker").await;
    let theirs: Vec<[u8; 32]> = a.server_heads(net.target).iter().map(|h| h.0).collect();
    let data = changes_message(&theirs, &[(hash, change)]);
    let frame = sync_frame("sync", &a.peer_id, &a.server, net.target, data);
    let attacker = &mut a;
    let errors = with_bystander(&net, &what, move || async move {
        attacker.send_raw(frame).await;
        until_closed(attacker).await.unwrap_or_else(|why| {
            println!("{why}");
            Vec::new()
        })
    })
    .await;
    assert_refused(
        &what,
        &errors,
        &["limit", "too large", "too many", "exceeds"],
    );
    net.still_serves().await;
    assert_eq!(
        net.stored(net.target).await,
        before,
        "{what}: the refused change was stored or audited"
    );

    // The same user's normal edit afterwards is stored and audited.
    let mut again = synced_attacker(&net, "attacker").await;
    again
        .change(net.target, |d| {
            d.put(automerge::ROOT, "note", "an ordinary edit").unwrap();
        })
        .await;
    let want = again.heads(net.target);
    served_to_a_fresh_client(&net.server.ws_url(), Some(&mut again), net.target, &want).await;
    let after = net.stored(net.target).await;
    assert_ne!(after.heads, before.heads);
    assert_eq!(
        after.audit.len(),
        before.audit.len() + 1,
        "{:?}",
        after.audit
    );
    assert!(
        after.audit.iter().any(|(user, _)| user == "attacker"),
        "{:?}",
        after.audit
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_with_a_million_character_string_is_refused() {
    oversized_change_is_refused(Oversized::Text).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_with_300k_keys_is_refused() {
    oversized_change_is_refused(Oversized::Keys).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_with_200k_small_list_ops_is_refused() {
    oversized_change_is_refused(Oversized::ListOps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_with_a_12_mb_blob_is_refused() {
    oversized_change_is_refused(Oversized::Blob).await;
}

/// A document grown by changes each under the change limit (1,000,000 random bytes)
/// stops growing once it holds over 12 MiB, and growing it to the limit stalls nobody
/// else (compacting a 12 MiB document is real work).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_over_12_mib_refuses_further_growth() {
    let changes: Vec<_> = (0..16).map(megabyte_change).collect();
    let net = Net::start(&[]).await;
    let before = net.stored(net.target).await;
    let target = net.target;
    // A raw socket: a client that applied what it sends would double the work here.
    let mut ws = raw(&net.url(&net.attacker)).await;
    ws.send(WsMessage::Binary(join_frame("attacker", None).into()))
        .await
        .unwrap();
    assert!(matches!(
        first_answer(&mut ws, DEADLINE).await,
        Answer::Replied(_)
    ));
    let me = PeerId::from("attacker");
    let relay = PeerId::from("relay");
    let mut accepted = 0;
    let errors = with_bystander(&net, "document growth to the limit", || async {
        let mut theirs: Vec<[u8; 32]> = before.heads.iter().map(|h| h.0).collect();
        for (hash, change) in &changes {
            let data = changes_message(&theirs, &[(*hash, change.clone())]);
            let frame = sync_frame("sync", &me, &relay, target, data);
            if ws.send(WsMessage::Binary(frame.into())).await.is_err() {
                return Vec::new();
            }
            // Acknowledged (the relay's heads include it), refused, or neither. A 1 MB
            // change into a document of up to 12 MiB is slow to apply, commit and
            // compact in a debug build on a busy machine: what is measured here is the
            // bystander, not this writer, so the writer may wait long.
            loop {
                let b = match tokio::time::timeout(GROWTH_ROUND_DEADLINE, ws.next()).await {
                    Ok(Some(Ok(WsMessage::Binary(b)))) => b,
                    // The relay's keepalive (every 20 s): the growth may take longer.
                    Ok(Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_)))) => continue,
                    _ => return Vec::new(),
                };
                match Message::decode(&b) {
                    Ok(Message::Error { message, .. }) => return vec![message],
                    Ok(Message::Sync { data, .. }) => {
                        let m = automerge::sync::Message::decode(&data).unwrap();
                        if m.heads.iter().any(|h| h.0 == *hash) {
                            theirs = m.heads.iter().map(|h| h.0).collect();
                            accepted += 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
        Vec::new()
    })
    .await;
    println!("document growth: {accepted} changes of 1,000,000 bytes accepted, then {errors:?}");
    assert_refused("document growth", &errors, &["limit"]);
    assert!(
        (12..=13).contains(&accepted),
        "{accepted} changes of 1 MB accepted before the 12 MiB limit refused one"
    );
    let stored = net.stored(net.target).await;
    let mut want: Vec<ChangeHash> = before.heads.clone();
    want.extend(changes[..accepted].iter().map(|(h, _)| ChangeHash(*h)));
    want.sort();
    assert_eq!(stored.heads, want, "the refused change was stored");
    let mine = stored.audit.iter().filter(|(u, _)| u == "attacker").count();
    assert_eq!(mine, accepted, "audit rows for the attacker");
    net.still_serves().await;
}
