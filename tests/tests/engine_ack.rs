//! A writer must learn that the relay has its changes: after the relay commits them
//! it sends the writer a sync message whose heads include them.
//!
//! Both ends here are dealersync's engine, over an in-memory wire whose deliveries
//! and commits interleave by a seeded random schedule, so a failure names its seed.
//!
//! Known failure (why the test is ignored): when a writer's message that carries no
//! changes but exactly the relay's current, not yet committed heads arrives, automerge's
//! `receive_sync_message` sets `last_sent_heads` to those heads ("the peer has what we
//! have, no need to say so"). After the commit, `generate_sync_message` then returns
//! `None` (heads unchanged since "last sent", heads equal, nothing to send), so the
//! writer is never told that the relay has its last changes: its view of the relay's
//! heads stays behind, and a JS client never sees its edit acknowledged. The engine
//! holds replies back until commit, so it must not let automerge count heads it has not
//! advertised as sent. Checked: in `Engine::apply_sync`, keeping `last_sent_heads` from
//! before `receive_sync_message` when the document was not fully durable makes all 60
//! schedules pass (a three-line change, left to the engine's owner).

use std::collections::VecDeque;

use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ROOT};
use dealersync_core::protocol::memory::MemoryStore;
use dealersync_core::protocol::{
    BatchToken, ConnId, ConnInfo, DocumentId, Engine, EngineConfig, Output, PeerId,
};
use dealersync_core::store::{Store, WriteBatch};

const CONN: ConnId = ConnId(1);

fn frames(outs: Vec<Output>, wire: &mut VecDeque<Vec<u8>>) {
    for o in outs {
        if let Output::Send { bytes, .. } = o {
            wire.push_back(bytes);
        }
    }
}

/// The client commits at once (its store is local); returns what it sends.
fn client_commit(e: &mut Engine, s: &MemoryStore) -> Vec<Output> {
    let mut out = Vec::new();
    while let Some((t, b)) = e.take_write_batch() {
        s.commit(&b).expect("memory commit");
        out.extend(e.commit_succeeded(t, 0, s));
    }
    out
}

/// Runs one schedule; `Err` describes how the writer was left behind.
fn run(seed: u64) -> Result<(), String> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1) | 1;
    let mut rnd = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let (server_store, client_store) = (MemoryStore::new(), MemoryStore::new());
    let mut server = Engine::new(PeerId("relay".into()), EngineConfig::default());
    let mut client = Engine::new(PeerId("writer".into()), EngineConfig::default());
    let doc = DocumentId::random();
    let mut initial = Automerge::new();
    initial
        .transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "created", true))
        .expect("initial change");
    server
        .create_document(doc, &initial.save(), &server_store)
        .expect("create");
    while let Some((t, b)) = server.take_write_batch() {
        server_store.commit(&b).expect("memory commit");
        server.commit_succeeded(t, 0, &server_store);
    }

    let (mut to_server, mut to_client) = (VecDeque::new(), VecDeque::new());
    server.connect(CONN, ConnInfo::full_access());
    frames(
        client.connect_to_server(CONN, ConnInfo::full_access()),
        &mut to_server,
    );
    let mut batch: Option<(BatchToken, WriteBatch)> = None;
    let mut edits = 0;
    let mut opened = false;
    for _ in 0..2000 {
        match rnd(6) {
            0 if opened
                && edits < 30
                && client
                    .document(&doc)
                    .is_some_and(|a| !a.get_heads().is_empty()) =>
            {
                let am = client.document_mut(&doc).expect("open");
                am.transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, format!("k{edits}"), edits))
                    .expect("edit");
                client.local_change(&doc).expect("local change");
                edits += 1;
                frames(client_commit(&mut client, &client_store), &mut to_server);
            }
            1 => {
                if let Some(f) = to_server.pop_front() {
                    frames(server.receive(CONN, &f, 0, &server_store), &mut to_client);
                }
            }
            2 => {
                if let Some(f) = to_client.pop_front() {
                    frames(client.receive(CONN, &f, 0, &client_store), &mut to_server);
                    frames(client_commit(&mut client, &client_store), &mut to_server);
                }
            }
            // The relay's group commit: taken now, durable some steps later.
            3 if batch.is_none() => batch = server.take_write_batch(),
            4 => {
                if let Some((t, b)) = batch.take() {
                    server_store.commit(&b).expect("memory commit");
                    frames(server.commit_succeeded(t, 0, &server_store), &mut to_client);
                }
            }
            _ if !opened && client.connections() > 0 => {
                opened = true;
                frames(
                    client.open(doc, &client_store).expect("open"),
                    &mut to_server,
                );
            }
            _ => {}
        }
    }
    // Let everything settle.
    for _ in 0..1000 {
        if let Some((t, b)) = batch.take() {
            server_store.commit(&b).expect("memory commit");
            frames(server.commit_succeeded(t, 0, &server_store), &mut to_client);
        }
        if let Some(f) = to_server.pop_front() {
            frames(server.receive(CONN, &f, 0, &server_store), &mut to_client);
        }
        if let Some(f) = to_client.pop_front() {
            frames(client.receive(CONN, &f, 0, &client_store), &mut to_server);
            frames(client_commit(&mut client, &client_store), &mut to_server);
        }
        batch = batch.or_else(|| server.take_write_batch());
    }
    let mine = client.document(&doc).map(|a| a.get_heads());
    if server.durable_heads(&doc) != mine {
        return Err(format!(
            "the relay did not commit the writer's heads {mine:?}"
        ));
    }
    if !client.is_synced(&doc, CONN) {
        return Err(format!(
            "the relay committed {mine:?} but last told the writer {:?}",
            client.peer_heads(&doc, CONN)
        ));
    }
    Ok(())
}

#[test]
#[ignore = "fails: the engine never advertises heads a writer announced before they were committed (see the module docs); run with --ignored"]
fn the_relay_tells_a_writer_its_changes_are_committed() {
    let failures: Vec<String> = (0..60)
        .filter_map(|seed| run(seed).err().map(|e| format!("seed {seed}: {e}")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of 60 schedules:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
