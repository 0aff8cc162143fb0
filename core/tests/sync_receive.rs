//! The receive fast path (`protocol::receive`, which skips automerge's walk over the
//! whole history when it cannot trim anything) against automerge's own
//! `receive_sync_message`. This is the guard against an automerge release changing
//! what the fast path relies on: random peers edit and sync in random orders, messages
//! are lost, duplicated and delivered out of order, connections restart (fresh or with
//! a persisted state), peers switch read-only and back (the sync reset), and peers lose
//! all their data; after every message received, the fast path's sync state (every
//! field) and document must equal what automerge's own path made of a clone.

use std::collections::VecDeque;

use automerge::sync::{self, MessageFlags, State, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ROOT, ReadDoc};
use dealersync_core::protocol::receive::{ReceivePath, Trim, receive_sync_message};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// What happens next in a scenario.
#[derive(Debug, Clone)]
enum Op {
    /// The peer makes this many changes (each its own commit).
    Edit { peer: usize, changes: u8 },
    /// `from` generates a sync message for `to` (if automerge has one to send).
    Send { from: usize, to: usize },
    /// The oldest message (or, `reorder`, any message) from `from` to `to` arrives;
    /// the receiver answers with its own next message.
    Deliver {
        from: usize,
        to: usize,
        how: How,
        pick: prop::sample::Index,
    },
    /// The connection between the two restarts: new sync states, from the persisted
    /// encoding (`persisted`) or fresh; messages in flight are lost.
    Reconnect { a: usize, b: usize, persisted: bool },
    /// `peer` stops (or resumes) applying what `other` sends; resuming sends the
    /// sync reset (a flag, or empty heads to a peer that does not know it).
    ReadOnly { peer: usize, other: usize, on: bool },
    /// `peer` loses its document and every sync state (a phone wiped); it comes back
    /// under a new actor.
    LoseData { peer: usize },
}

/// How a message travels.
#[derive(Debug, Clone, Copy)]
enum How {
    InOrder,
    Duplicated,
    Lost,
    Reordered,
}

fn op(peers: usize) -> impl Strategy<Value = Op> {
    let p = 0..peers;
    let pair = (0..peers, 0..peers - 1).prop_map(|(a, b)| (a, if b >= a { b + 1 } else { b }));
    let how = prop_oneof![
        6 => Just(How::InOrder),
        1 => Just(How::Duplicated),
        1 => Just(How::Lost),
        2 => Just(How::Reordered),
    ];
    prop_oneof![
        6 => (p.clone(), prop_oneof![8 => 1u8..4, 1 => 60u8..80])
            .prop_map(|(peer, changes)| Op::Edit { peer, changes }),
        4 => pair.clone().prop_map(|(from, to)| Op::Send { from, to }),
        12 => (pair.clone(), how, any::<prop::sample::Index>())
            .prop_map(|((from, to), how, pick)| Op::Deliver { from, to, how, pick }),
        1 => (pair.clone(), any::<bool>())
            .prop_map(|((a, b), persisted)| Op::Reconnect { a, b, persisted }),
        1 => (pair, any::<bool>()).prop_map(|((peer, other), on)| Op::ReadOnly { peer, other, on }),
        1 => p.prop_map(|peer| Op::LoseData { peer }),
    ]
}

fn scenario() -> impl Strategy<Value = (usize, Vec<Op>)> {
    (2usize..=3).prop_flat_map(|peers| (Just(peers), proptest::collection::vec(op(peers), 1..80)))
}

/// Which branches of automerge's receive the scenarios reached, so that a run that
/// never exercised one is noticed (`every_branch_is_reached`).
#[derive(Debug, Default)]
struct Coverage {
    nothing: usize,
    nearby: usize,
    walked: usize,
    /// Messages with empty heads (a peer that lost its data, or an old-style reset).
    empty_heads: usize,
    /// Messages with the sync reset flag.
    reset_flag: usize,
    /// Messages with no changes and our heads (automerge records them as sent).
    heads_equal: usize,
    /// Messages whose heads we do not all know.
    unknown_heads: usize,
    /// Messages received into a read-only state while carrying changes.
    read_only_changes: usize,
}

struct Peer {
    doc: Automerge,
    /// `states[j]`: this peer's sync state with peer `j`.
    states: Vec<State>,
    generation: u8,
}

fn actor(peer: usize, generation: u8) -> ActorId {
    ActorId::from(vec![peer as u8 + 1, generation])
}

struct Net {
    peers: Vec<Peer>,
    /// `wire[from][to]`: encoded messages in flight.
    wire: Vec<Vec<VecDeque<Vec<u8>>>>,
    next_value: i64,
}

impl Net {
    fn new(n: usize) -> Net {
        Net {
            peers: (0..n)
                .map(|i| Peer {
                    doc: Automerge::new().with_actor(actor(i, 0)),
                    states: vec![State::new(); n],
                    generation: 0,
                })
                .collect(),
            wire: vec![vec![VecDeque::new(); n]; n],
            next_value: 0,
        }
    }

    fn edit(&mut self, peer: usize, changes: u8) {
        for _ in 0..changes {
            self.next_value += 1;
            let v = self.next_value;
            self.peers[peer]
                .doc
                .transact::<_, _, automerge::AutomergeError>(|tx| {
                    tx.put(ROOT, format!("k{}", v % 7), v)?;
                    Ok(())
                })
                .unwrap();
        }
    }

    fn send(&mut self, from: usize, to: usize) {
        let p = &mut self.peers[from];
        if let Some(m) = p.doc.generate_sync_message(&mut p.states[to]) {
            self.wire[from][to].push_back(m.encode());
        }
    }

    fn deliver(
        &mut self,
        from: usize,
        to: usize,
        how: How,
        pick: Option<prop::sample::Index>,
        cov: &mut Coverage,
    ) -> Result<(), TestCaseError> {
        let queue = &mut self.wire[from][to];
        if queue.is_empty() {
            return Ok(());
        }
        let at = match (how, pick) {
            (How::Reordered, Some(pick)) => pick.index(queue.len()),
            _ => 0,
        };
        let bytes = queue.remove(at).expect("index in range");
        match how {
            How::Lost => return Ok(()),
            How::Duplicated => queue.push_back(bytes.clone()),
            How::InOrder | How::Reordered => {}
        }
        let message = sync::Message::decode(&bytes).expect("we encoded it");
        let receiver = &mut self.peers[to];
        receive_both(&mut receiver.doc, &mut receiver.states[from], message, cov)?;
        self.send(to, from);
        Ok(())
    }

    fn reconnect(&mut self, a: usize, b: usize, persisted: bool) {
        for (x, y) in [(a, b), (b, a)] {
            let s = &mut self.peers[x].states[y];
            *s = if persisted {
                State::decode(&s.encode()).expect("automerge decodes its own state")
            } else {
                State::new()
            };
            self.wire[x][y].clear();
        }
    }

    fn lose_data(&mut self, peer: usize) {
        let n = self.peers.len();
        let p = &mut self.peers[peer];
        p.generation += 1;
        p.doc = Automerge::new().with_actor(actor(peer, p.generation));
        p.states = vec![State::new(); n];
        for other in 0..n {
            self.wire[peer][other].clear();
            self.wire[other][peer].clear();
        }
    }

    fn run(&mut self, op: &Op, cov: &mut Coverage) -> Result<(), TestCaseError> {
        match *op {
            Op::Edit { peer, changes } => self.edit(peer, changes),
            Op::Send { from, to } => self.send(from, to),
            Op::Deliver {
                from,
                to,
                how,
                pick,
            } => self.deliver(from, to, how, Some(pick), cov)?,
            Op::Reconnect { a, b, persisted } => self.reconnect(a, b, persisted),
            Op::ReadOnly { peer, other, on } => self.peers[peer].states[other].set_read_only(on),
            Op::LoseData { peer } => self.lose_data(peer),
        }
        Ok(())
    }

    /// Every link in order until nobody has anything to say, still checking every
    /// message (bounded: a scenario may leave peers that never converge, such as a
    /// read-only one).
    fn settle(&mut self, cov: &mut Coverage) -> Result<(), TestCaseError> {
        let n = self.peers.len();
        for _ in 0..50 {
            for from in 0..n {
                for to in 0..n {
                    if from != to {
                        self.send(from, to);
                    }
                }
            }
            let mut moved = false;
            for from in 0..n {
                for to in 0..n {
                    while !self.wire[from][to].is_empty() {
                        moved = true;
                        self.deliver(from, to, How::InOrder, None, cov)?;
                    }
                }
            }
            if !moved {
                break;
            }
        }
        Ok(())
    }
}

/// Receives `message` through the fast path on `doc`/`state` and through automerge's
/// own on clones of them; fails unless both end the same.
fn receive_both(
    doc: &mut Automerge,
    state: &mut State,
    message: sync::Message,
    cov: &mut Coverage,
) -> Result<(), TestCaseError> {
    let heads = doc.get_heads();
    if message.heads.is_empty() {
        cov.empty_heads += 1;
    }
    if message
        .flags
        .is_some_and(|f| f.contains(MessageFlags::SYNC_RESET))
    {
        cov.reset_flag += 1;
    }
    if message.changes.is_empty() && message.heads == heads {
        cov.heads_equal += 1;
    }
    if state.read_only && !message.changes.is_empty() {
        cov.read_only_changes += 1;
    }

    let mut stock_doc = doc.clone();
    let mut stock_state = state.clone();
    let stock = stock_doc.receive_sync_message(&mut stock_state, message.clone());
    let fast = receive_sync_message(doc, state, message.clone(), ReceivePath::Fast);

    prop_assert_eq!(
        stock.is_ok(),
        fast.is_ok(),
        "stock {:?}, fast {:?}",
        stock,
        fast
    );
    prop_assert_eq!(&*state, &stock_state, "sync state after {:?}", message);
    prop_assert_eq!(doc.get_heads(), stock_doc.get_heads());
    // Changes automerge holds back for a missing dependency are the same too.
    prop_assert_eq!(doc.get_missing_deps(&[]), stock_doc.get_missing_deps(&[]));
    if !message
        .heads
        .iter()
        .all(|h| doc.get_change_meta_by_hash(h).is_some())
    {
        cov.unknown_heads += 1;
    }
    match fast {
        Ok(Trim::Nothing) => cov.nothing += 1,
        Ok(Trim::Nearby) => cov.nearby += 1,
        Ok(Trim::Walked) => cov.walked += 1,
        Err(_) => {}
    }
    Ok(())
}

fn check(peers: usize, ops: &[Op], cov: &mut Coverage) -> Result<(), TestCaseError> {
    let mut net = Net::new(peers);
    for op in ops {
        net.run(op, cov)?;
    }
    net.settle(cov)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// After every message, the fast path's state and document equal automerge's.
    #[test]
    fn the_fast_path_ends_where_automerge_does((peers, ops) in scenario()) {
        check(peers, &ops, &mut Coverage::default())?;
    }
}

/// The scenarios reach every branch of the fast path and of automerge's receive that
/// the fast path re-creates; a generator that stopped producing one would leave that
/// branch unguarded.
#[test]
fn every_branch_is_reached() {
    let mut runner = TestRunner::deterministic();
    let mut cov = Coverage::default();
    let strategy = scenario();
    for _ in 0..64 {
        let (peers, ops) = strategy
            .new_tree(&mut runner)
            .expect("a scenario")
            .current();
        check(peers, &ops, &mut cov).expect("fast path equals stock");
    }
    println!("{cov:?}");
    assert!(cov.nothing > 0, "{cov:?}");
    assert!(cov.nearby > 0, "{cov:?}");
    assert!(cov.walked > 0, "{cov:?}");
    assert!(cov.empty_heads > 0, "{cov:?}");
    assert!(cov.reset_flag > 0, "{cov:?}");
    assert!(cov.heads_equal > 0, "{cov:?}");
    assert!(cov.unknown_heads > 0, "{cov:?}");
    assert!(cov.read_only_changes > 0, "{cov:?}");
}
