//! 5: a duplicate key in `join`.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_sender_id_in_join_cannot_take_another_peers_id() {
    let net = Net::start(&[]).await;
    let before = net.stored(net.target).await;
    // The victim is the bystander: another user, connected as peer "bystander".
    let variants: Vec<(&str, Value)> = vec![
        ("null then the victim", Value::Null),
        ("own id then the victim", "attacker-own".into()),
        ("the victim twice", "bystander".into()),
    ];
    for (variant, first) in variants {
        let label = format!("duplicate senderId ({variant})");
        let errors = with_bystander(&net, &label, || async {
            let mut ws = raw(&net.url(&net.attacker)).await;
            ws.send(WsMessage::Binary(
                duplicate_sender_join(first, "bystander").into(),
            ))
            .await
            .unwrap();
            raw_error_and_close(&mut ws).await
        })
        .await;
        assert_refused(&label, &errors, &["more than once", "duplicate"]);
    }
    // The bystander's peer id is still its own: it connects again under it (which
    // replaces nothing of another user's) and syncs.
    net.still_serves().await;
    assert_eq!(net.stored(net.target).await, before);
}

/// Reads a raw socket until the relay closes it; the `error` messages seen.
async fn raw_error_and_close(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Vec<String> {
    let mut errors = Vec::new();
    let until = Instant::now() + ATTACK_DEADLINE;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => {
                println!("not closed within {ATTACK_DEADLINE:?}; errors {errors:?}");
                return Vec::new();
            }
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(WsMessage::Close(_)))) => return errors,
            Ok(Some(Ok(WsMessage::Binary(b)))) => match Message::decode(&b) {
                Ok(Message::Error { message, .. }) => errors.push(message),
                Ok(Message::Peer { target_id, .. }) => {
                    println!("the relay accepted the join as {target_id:?}")
                }
                _ => {}
            },
            Ok(Some(Ok(_))) => {}
        }
    }
}
