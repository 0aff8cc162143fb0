//! The access matrix of docs/auth.md over real WebSockets against the real
//! `dealersync-server` binary: each role × own site, sibling, child, parent and the
//! network document × read and write, with dealersync's Rust engine as the client (the
//! whole matrix) and with the stock JavaScript automerge-repo 2.5 client.
//!
//! The expected outcomes are written out below from the table in docs/auth.md, not
//! computed by the policy code (`dealersync_core::access`), so that a wrong policy
//! cannot agree with itself.
//!
//! A read-only write never produces an `error` from a well-behaved client: the relay
//! advertises automerge's READ_ONLY flag, and automerge (Rust 0.12, JS 3.5) then keeps
//! the change local. The relay's own rejection (`error`, change stripped, nothing
//! stored or forwarded) is reached by pushing the change in a hand-made sync message,
//! as a client that ignores the flag would.
//!
//! The site tree (set up through the binary's `site add` and the admin API):
//!
//! ```text
//! hq (head office)
//! ├── dc-a (distribution centre)
//! │   ├── agent-a1 (agent)
//! │   └── rs-a1 (roadshow)
//! │       └── rs-a1-b (roadshow: a second van, so the consultant has a child site)
//! └── dc-b (distribution centre)
//!     └── agent-b1 (agent)
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use automerge::transaction::Transactable;
use automerge::{ChangeHash, ROOT, ReadDoc};
use dealersync_core::protocol::DocumentId;
use dealersync_tests::{JsClient, RustClient, ServerProcess, sync_message};
use serde_json::{Value, json};

/// Deadline for each wait: generous for a loaded debug build, never reached when
/// things work.
const DEADLINE: Duration = Duration::from_secs(15);

/// What a principal may do with a document, as docs/auth.md's table says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// "—": `doc-unavailable`, as for a document that does not exist.
    Denied,
    /// Receives every change; its own changes are rejected with an `error`.
    ReadOnly,
    /// Reads and writes.
    ReadWrite,
}
use Expect::{Denied, ReadOnly, ReadWrite};

/// The network document's place in the cells below.
const NETWORK: &str = "(network)";

/// One principal (a token's role and site) and its cells: (relation, target site or
/// [`NETWORK`], expected access).
struct Row {
    role: &'static str,
    site: &'static str,
    cells: &'static [(&'static str, &'static str, Expect)],
}

/// docs/auth.md, "Roles and what they may do":
///
/// | role        | own site   | every site below own | other sites | network   |
/// |-------------|------------|----------------------|-------------|-----------|
/// | consultant  | read-write | —                    | —           | read-only |
/// | manager     | read-write | read-write           | —           | read-only |
/// | head_office | read-only  | read-only            | read-only   | read-write|
/// | admin       | read-write | read-write           | read-write  | read-write|
///
/// Head office and admin tokens naturally name `hq`, which has neither sibling nor
/// parent; their rows at `dc-b` cover those relations (their access comes from the
/// role alone, whatever site the token names).
const MATRIX: &[Row] = &[
    Row {
        role: "consultant",
        site: "rs-a1",
        cells: &[
            ("own", "rs-a1", ReadWrite),
            ("sibling", "agent-a1", Denied),
            ("child", "rs-a1-b", Denied),
            ("parent", "dc-a", Denied),
            ("network", NETWORK, ReadOnly),
        ],
    },
    Row {
        role: "manager",
        site: "dc-a",
        cells: &[
            ("own", "dc-a", ReadWrite),
            ("sibling", "dc-b", Denied),
            ("child", "agent-a1", ReadWrite),
            ("grandchild", "rs-a1-b", ReadWrite),
            ("parent", "hq", Denied),
            ("network", NETWORK, ReadOnly),
        ],
    },
    Row {
        role: "head_office",
        site: "hq",
        cells: &[
            ("own", "hq", ReadOnly),
            ("child", "dc-a", ReadOnly),
            ("grandchild", "rs-a1", ReadOnly),
            ("network", NETWORK, ReadWrite),
        ],
    },
    Row {
        role: "head_office",
        site: "dc-b",
        cells: &[
            ("own", "dc-b", ReadOnly),
            ("sibling", "dc-a", ReadOnly),
            ("child", "agent-b1", ReadOnly),
            ("parent", "hq", ReadOnly),
            ("network", NETWORK, ReadWrite),
        ],
    },
    Row {
        role: "admin",
        site: "hq",
        cells: &[
            ("own", "hq", ReadWrite),
            ("child", "dc-a", ReadWrite),
            ("grandchild", "rs-a1-b", ReadWrite),
            ("network", NETWORK, ReadWrite),
        ],
    },
    Row {
        role: "admin",
        site: "dc-b",
        cells: &[
            ("own", "dc-b", ReadWrite),
            ("sibling", "dc-a", ReadWrite),
            ("child", "agent-b1", ReadWrite),
            ("parent", "hq", ReadWrite),
            ("network", NETWORK, ReadWrite),
        ],
    },
];

/// The running relay with the tree above and an admin token.
struct Network {
    server: ServerProcess,
    admin_token: String,
    sites: HashMap<String, DocumentId>,
    network: DocumentId,
}

impl Network {
    async fn start() -> anyhow::Result<Network> {
        let server = ServerProcess::start().await?;
        // Head office through the binary (an admin token needs an existing site), the
        // rest through the admin API as an operator does with the server running.
        server
            .admin(&[
                "site",
                "add",
                "--id",
                "hq",
                "--name",
                "总部",
                "--kind",
                "head_office",
            ])
            .await?;
        let admin_token = server.token("matrix.admin", "admin", "hq").await?;
        let http = reqwest::Client::new();
        for (id, name, kind, parent) in [
            ("dc-a", "华东配送中心", "distribution_centre", "hq"),
            ("dc-b", "华南配送中心", "distribution_centre", "hq"),
            ("agent-a1", "城西代理", "agent", "dc-a"),
            ("rs-a1", "巡展一队", "roadshow", "dc-a"),
            ("rs-a1-b", "巡展一队二号车", "roadshow", "rs-a1"),
            ("agent-b1", "城南代理", "agent", "dc-b"),
        ] {
            let resp = http
                .post(format!("{}/api/admin/sites", server.http_url()))
                .bearer_auth(&admin_token)
                .json(&json!({"id": id, "name": name, "kind": kind, "parent": parent}))
                .send()
                .await?;
            let status = resp.status();
            ensure!(
                status.as_u16() == 201,
                "creating {id}: {status} {}",
                resp.text().await?
            );
        }
        let listed: Vec<Value> = http
            .get(format!("{}/api/sites", server.http_url()))
            .bearer_auth(&admin_token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut sites = HashMap::new();
        for s in &listed {
            let id = s["id"].as_str().context("site id")?.to_string();
            let doc: DocumentId = s["documentId"]
                .as_str()
                .context("documentId")?
                .parse()
                .map_err(|e| anyhow::anyhow!("documentId of {id}: {e}"))?;
            sites.insert(id, doc);
        }
        ensure!(sites.len() == 7, "sites listed for the admin: {listed:?}");
        let network: Value = http
            .get(format!("{}/api/network", server.http_url()))
            .bearer_auth(&admin_token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let network: DocumentId = network["documentId"]
            .as_str()
            .context("network documentId")?
            .parse()
            .map_err(|e| anyhow::anyhow!("network documentId: {e}"))?;
        Ok(Network {
            server,
            admin_token,
            sites,
            network,
        })
    }

    fn doc(&self, target: &str) -> DocumentId {
        if target == NETWORK {
            self.network
        } else {
            self.sites[target]
        }
    }

    /// A token for a row's principal, from the binary's `token` subcommand.
    async fn token(&self, row: &Row) -> anyhow::Result<String> {
        let sub = format!("{}.{}", row.role, row.site);
        Ok(self.server.token(&sub, row.role, row.site).await?)
    }

    /// A Rust engine client with the token in the `Authorization` header.
    async fn rust_client(&self, name: &str, token: &str) -> anyhow::Result<RustClient> {
        let bearer = format!("Bearer {token}");
        Ok(RustClient::connect_with_headers(
            name,
            &self.server.ws_url(),
            &[("Authorization", &bearer)],
            DEADLINE,
        )
        .await?)
    }

    /// What the relay has stored for `doc`, as a fresh admin client receives it: the
    /// hashes of every change (sorted), which identify the stored change bytes, and
    /// the content. Two equal answers mean the stored document did not change.
    async fn stored(&self, doc: &DocumentId) -> anyhow::Result<(Vec<String>, Value)> {
        let mut c = self.rust_client("stored", &self.admin_token).await?;
        c.open(doc, DEADLINE).await?;
        c.wait_synced(doc, DEADLINE).await?;
        let am = c.document(doc).context("opened")?;
        let mut hashes: Vec<String> = am
            .get_changes(&[])
            .iter()
            .map(|ch| ch.hash().to_string())
            .collect();
        hashes.sort();
        let content = c.document_json(doc).context("json")?;
        c.close().await?;
        Ok((hashes, content))
    }
}

/// The site id in a site document's header (`site.id`), or None for the network
/// document.
fn header_site(doc: &Value) -> Option<&str> {
    doc.get("site")?.get("id")?.as_str()
}

/// Waits until the relay has handled everything `c` sent so far: it handles one
/// connection's messages in order, so its answer to a later request (for a document
/// that does not exist) comes after them.
async fn barrier(c: &mut RustClient, cell: &str) -> anyhow::Result<()> {
    let nowhere = DocumentId::random();
    match c.open(&nowhere, DEADLINE).await {
        Err(_) if c.is_unavailable(&nowhere) => Ok(()),
        other => bail!("{cell}: no doc-unavailable for an unknown document: {other:?}"),
    }
}

/// One cell with the Rust engine client `c` (whose principal is `row`, signed in with
/// `token`, which a second connection uses to push a read-only change); `observer` is
/// an admin client that has every document open.
async fn rust_cell(
    net: &Network,
    row: &Row,
    token: &str,
    c: &mut RustClient,
    observer: &mut RustClient,
    (relation, target, expect): (&str, &str, Expect),
) -> anyhow::Result<()> {
    let doc = net.doc(target);
    let cell = format!("{}@{} × {relation} ({target})", row.role, row.site);

    // ---- read
    let opened = c.open(&doc, DEADLINE).await;
    if expect == Denied {
        ensure!(
            opened.is_err() && c.is_unavailable(&doc),
            "{cell}: read should be denied with doc-unavailable, got {opened:?}"
        );
        // Writing a denied document: a change pushed anyway is not taken either.
        let before = net.stored(&doc).await?;
        let mut foreign = automerge::AutoCommit::new();
        foreign.put(ROOT, "intruder", row.role)?;
        let change = foreign.get_last_local_change().context("change")?;
        c.send_sync_message(&doc, sync_message(foreign.get_heads(), vec![change]))
            .await?;
        barrier(c, &cell).await?;
        let after = net.stored(&doc).await?;
        ensure!(
            before == after,
            "{cell}: a denied write changed the document"
        );
        return Ok(());
    }
    opened.with_context(|| format!("{cell}: read should be allowed"))?;
    let want = observer.heads(&doc);
    c.wait_heads(&doc, &want, DEADLINE).await?;
    let got = c.document_json(&doc).context("json")?;
    ensure!(
        got == observer.document_json(&doc).context("json")?,
        "{cell}: the content differs from the admin's"
    );
    if target != NETWORK {
        ensure!(header_site(&got) == Some(target), "{cell}: header {got:?}");
    }

    // ---- write
    let probe = format!("{}@{}/{relation}", row.role, row.site);
    let errors_before = c.errors().len();
    let before = net.stored(&doc).await?;
    let heads = c
        .change(&doc, |tx| {
            tx.put(ROOT, "matrixProbe", probe.as_str())?;
            Ok(())
        })
        .await?;
    let hex: Vec<String> = heads.iter().map(ChangeHash::to_string).collect();
    match expect {
        ReadWrite => {
            c.wait_synced(&doc, DEADLINE)
                .await
                .with_context(|| format!("{cell}: the write was not acknowledged"))?;
            observer
                .wait_heads(&doc, &hex, DEADLINE)
                .await
                .with_context(|| format!("{cell}: the admin did not see the write"))?;
            ensure!(
                c.errors().len() == errors_before,
                "{cell}: errors {:?}",
                c.errors()
            );
        }
        ReadOnly => {
            // automerge honours the READ_ONLY flag the relay advertises and does not
            // send the change; a client that ignores it pushes it anyway. Its own
            // engine closes its connection on the relay's `error`, so the push comes
            // from a second connection of the same principal and `c` stays the
            // honest reader.
            let am = c.document(&doc).context("open")?;
            let changes = heads
                .iter()
                .map(|h| am.get_change_by_hash(h).context("own change"))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut pusher = net.rust_client("pusher", token).await?;
            pusher
                .send_sync_message(&doc, sync_message(heads.clone(), changes))
                .await?;
            pusher
                .pump_until(&format!("{cell}: an error"), DEADLINE, |p| {
                    !p.errors().is_empty()
                })
                .await?;
            let err = &pusher.errors()[0];
            ensure!(err.contains("read-only"), "{cell}: error {err:?}");
            let after = net.stored(&doc).await?;
            ensure!(
                before == after,
                "{cell}: the rejected change was stored:\n{before:?}\n{after:?}"
            );
            // The honest change was never sent: no error for `c`, still connected.
            barrier(c, &cell).await?;
            ensure!(
                c.errors().len() == errors_before && c.closed().is_none(),
                "{cell}: the honest reader got {:?}, closed: {:?}",
                &c.errors()[errors_before..],
                c.closed()
            );
            // Other peers: the observer never gets the change, still works, and so
            // does the read-only peer's reading side.
            let marker = observer
                .change(&doc, |tx| {
                    tx.put(ROOT, "matrixMarker", probe.as_str())?;
                    Ok(())
                })
                .await?;
            observer.wait_synced(&doc, DEADLINE).await?;
            let marker: Vec<String> = marker.iter().map(ChangeHash::to_string).collect();
            c.wait_heads(&doc, &marker, DEADLINE)
                .await
                .with_context(|| format!("{cell}: the read-only peer stopped receiving"))?;
            let seen = observer.document(&doc).context("observer doc")?;
            ensure!(
                heads.iter().all(|h| seen.get_change_by_hash(h).is_none()),
                "{cell}: the rejected change reached another peer"
            );
        }
        Denied => unreachable!("handled above"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_and_relation_with_the_rust_engine_client() -> anyhow::Result<()> {
    let started = Instant::now();
    let net = Network::start().await?;
    let mut observer = net.rust_client("observer", &net.admin_token).await?;
    let mut docs: Vec<DocumentId> = net.sites.values().copied().collect();
    docs.push(net.network);
    for d in &docs {
        observer.open(d, DEADLINE).await?;
        observer.wait_synced(d, DEADLINE).await?;
    }
    let mut results = Vec::new();
    for row in MATRIX {
        let token = net.token(row).await?;
        let mut c = net
            .rust_client(&format!("{}-{}", row.role, row.site), &token)
            .await?;
        // Denied must look exactly like a document that does not exist.
        let nowhere = DocumentId::random();
        let answer = c.open(&nowhere, DEADLINE).await;
        ensure!(answer.is_err() && c.is_unavailable(&nowhere), "{answer:?}");
        for &cell in row.cells {
            rust_cell(&net, row, &token, &mut c, &mut observer, cell)
                .await
                .with_context(|| format!("log:\n{}", net.server.log_tail(3000)))?;
            results.push(format!(
                "{}@{} {} {}: {:?}",
                row.role, row.site, cell.0, cell.1, cell.2
            ));
        }
        c.close().await?;
    }
    eprintln!(
        "rust matrix: {} cells as expected in {:?}\n{}",
        results.len(),
        started.elapsed(),
        results.join("\n")
    );
    Ok(())
}

/// The first read-write document of a row: the JS client's barrier (see
/// [`js_write`]).
fn rw_target(row: &Row) -> &'static str {
    row.cells
        .iter()
        .find(|c| c.2 == ReadWrite)
        .map(|c| c.1)
        .expect("every role writes something")
}

/// One cell's read with the JS client: what `find` answers.
async fn js_read(
    net: &Network,
    row: &Row,
    js: &JsClient,
    observer_heads: &HashMap<DocumentId, Vec<String>>,
    (relation, target, expect): (&str, &str, Expect),
) -> anyhow::Result<()> {
    let doc = net.doc(target);
    let cell = format!("JS {}@{} × {relation} ({target})", row.role, row.site);
    let found = js.find(&doc.url(), DEADLINE).await;
    match (expect, found) {
        (Denied, Err(e)) if e.js_kind() == Some("unavailable") => Ok(()),
        (Denied, other) => bail!("{cell}: read should be denied as unavailable: {other:?}"),
        (_, Err(e)) => bail!("{cell}: read should be allowed: {e}"),
        (_, Ok(_)) => {
            let want = &observer_heads[&doc];
            let snap = js.wait_heads(&doc.url(), want, DEADLINE).await?;
            ensure!(
                &snap.sorted_heads() == want,
                "{cell}: heads {:?}, the admin has {want:?}",
                snap.sorted_heads()
            );
            if target != NETWORK {
                ensure!(
                    header_site(&snap.doc) == Some(target),
                    "{cell}: {:?}",
                    snap.doc
                );
            }
            Ok(())
        }
    }
}

/// One cell's write with the JS client.
///
/// automerge (JS 3.5 as Rust 0.12) honours the READ_ONLY flag the relay advertises:
/// a read-only peer's change stays local, is never sent, so no `error` comes back (the
/// relay's own rejection of a pushed change is checked with the Rust client, which can
/// push one). What must hold is that the change is neither stored nor forwarded and the
/// peer keeps receiving. Since automerge-repo sends sync messages on a 100 ms
/// throttle, "not sent" is checked after a barrier: a later change of the same client
/// to a read-write document, seen by the admin.
async fn js_write(
    net: &Network,
    row: &Row,
    js: &JsClient,
    observer: &mut RustClient,
    (relation, target, expect): (&str, &str, Expect),
) -> anyhow::Result<()> {
    let doc = net.doc(target);
    let cell = format!("JS {}@{} × {relation} ({target})", row.role, row.site);
    let probe = format!("js {}@{}/{relation}", row.role, row.site);
    if expect == Denied {
        let r = js
            .set(&doc.url(), &["matrixProbe"], json!(probe.clone()))
            .await;
        ensure!(
            r.as_ref().err().and_then(|e| e.js_kind()) == Some("unavailable"),
            "{cell}: a write should find nothing: {r:?}"
        );
        return Ok(());
    }
    let errors_before = js.state(None).await?["errors"]
        .as_array()
        .map_or(0, Vec::len);
    let before = net.stored(&doc).await?;
    let snap = js
        .set(&doc.url(), &["matrixProbe"], json!(probe.clone()))
        .await?;
    match expect {
        ReadWrite => {
            observer
                .wait_heads(&doc, &snap.heads, DEADLINE)
                .await
                .with_context(|| format!("{cell}: the admin did not see the write"))?;
            js.acked(&doc.url(), DEADLINE).await?;
        }
        ReadOnly => {
            let rw = net.doc(rw_target(row));
            let later = js
                .set(&rw.url(), &["matrixBarrier"], json!(probe.clone()))
                .await?;
            observer.wait_heads(&rw, &later.heads, DEADLINE).await?;
            let after = net.stored(&doc).await?;
            ensure!(before == after, "{cell}: the read-only change was stored");
            let wrote: Vec<ChangeHash> = snap
                .heads
                .iter()
                .map(|h| h.parse())
                .collect::<Result<_, _>>()?;
            let seen = observer.document(&doc).context("observer doc")?;
            ensure!(
                wrote.iter().all(|h| seen.get_change_by_hash(h).is_none()),
                "{cell}: the read-only change reached another peer"
            );
            // The read-only peer keeps receiving.
            let marker = observer
                .change(&doc, |tx| {
                    tx.put(ROOT, "matrixMarker", probe.as_str())?;
                    Ok(())
                })
                .await?;
            observer.wait_synced(&doc, DEADLINE).await?;
            let marker: Vec<String> = marker.iter().map(ChangeHash::to_string).collect();
            js.wait_heads(&doc.url(), &marker, DEADLINE)
                .await
                .with_context(|| format!("{cell}: the read-only peer stopped receiving"))?;
        }
        Denied => unreachable!("handled above"),
    }
    let state = js.state(None).await?;
    let errors = state["errors"].as_array().map_or(0, Vec::len);
    ensure!(
        errors == errors_before,
        "{cell}: the client got errors: {}",
        state["errors"]
    );
    Ok(())
}

/// The whole matrix again with the stock automerge-repo client (token in `?token=`,
/// the only place its WebSocket adapter can put it). It is fast enough to run every
/// cell rather than a subset: the clients start and read concurrently, and only the
/// writes run one at a time, so that each before/after comparison of a stored document
/// sees no other writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_and_relation_with_the_js_automerge_repo_client() -> anyhow::Result<()> {
    dealersync_tests::ensure_npm()?;
    let started = Instant::now();
    let net = Network::start().await?;
    let mut observer = net.rust_client("observer", &net.admin_token).await?;
    let mut docs: Vec<DocumentId> = net.sites.values().copied().collect();
    docs.push(net.network);
    let mut observer_heads = HashMap::new();
    for d in &docs {
        observer.open(d, DEADLINE).await?;
        observer.wait_synced(d, DEADLINE).await?;
        observer_heads.insert(*d, observer.heads(d));
    }
    let mut clients = Vec::new();
    for row in MATRIX {
        let token = net.token(row).await?;
        let name = format!("{}-{}", row.role, row.site);
        clients.push(JsClient::spawn(&name, &net.server.ws_url_with_token(&token)).await?);
    }
    // Reads: every row at once, every cell of a row at once.
    let reads = MATRIX.iter().zip(&clients).map(|(row, js)| {
        let (net, heads) = (&net, &observer_heads);
        async move {
            let nowhere = DocumentId::random();
            let r = js.find(&nowhere.url(), DEADLINE).await;
            ensure!(
                r.as_ref().err().and_then(|e| e.js_kind()) == Some("unavailable"),
                "an unknown document: {r:?}"
            );
            let cells = row.cells.iter().map(|&c| js_read(net, row, js, heads, c));
            futures_util::future::try_join_all(cells).await?;
            anyhow::Ok(())
        }
    });
    futures_util::future::try_join_all(reads)
        .await
        .with_context(|| format!("log:\n{}", net.server.log_tail(3000)))?;
    let reads_done = started.elapsed();
    let mut results = Vec::new();
    for (row, js) in MATRIX.iter().zip(&clients) {
        for &cell in row.cells {
            js_write(&net, row, js, &mut observer, cell)
                .await
                .with_context(|| format!("log:\n{}", net.server.log_tail(3000)))?;
            results.push(format!(
                "{}@{} {} {}: {:?}",
                row.role, row.site, cell.0, cell.1, cell.2
            ));
        }
    }
    for js in clients {
        js.close().await?;
    }
    eprintln!(
        "JS matrix: {} cells as expected (reads done at {reads_done:?}) in {:?}\n{}",
        results.len(),
        started.elapsed(),
        results.join("\n")
    );
    Ok(())
}

/// Where a client puts its token: a name, the URL, the upgrade request's headers.
type Place<'a> = (&'a str, String, Vec<(&'a str, &'a str)>);

/// The token in each of the three places of docs/auth.md reaches the same principal on
/// the binary (the matrix tests use the header with Rust and `?token=` with JS; here
/// the subprotocol syncs too), and a tampered token is refused in each place with 401.
/// Expired, revoked, `none` and other algorithms are covered in-process by
/// server/tests/auth_ws.rs and auth_tokens.rs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_takes_the_token_in_each_place_and_refuses_a_tampered_one() -> anyhow::Result<()>
{
    let net = Network::start().await?;
    let row = &MATRIX[0];
    let token = net.token(row).await?;
    let own = net.doc(row.site);
    let sibling = net.doc("agent-a1");
    let subprotocol = format!("dealersync, bearer.{token}");
    let bearer = format!("Bearer {token}");
    let places: [Place; 3] = [
        (
            "Authorization",
            net.server.ws_url(),
            vec![("Authorization", bearer.as_str())],
        ),
        (
            "Sec-WebSocket-Protocol",
            net.server.ws_url(),
            vec![("Sec-WebSocket-Protocol", subprotocol.as_str())],
        ),
        ("?token=", net.server.ws_url_with_token(&token), vec![]),
    ];
    for (place, url, headers) in &places {
        let mut c = RustClient::connect_with_headers(place, url, headers, DEADLINE).await?;
        c.open(&own, DEADLINE)
            .await
            .with_context(|| format!("own site with the token in {place}"))?;
        ensure!(
            c.open(&sibling, DEADLINE).await.is_err() && c.is_unavailable(&sibling),
            "{place}: the consultant read a sibling site"
        );
        c.close().await?;
    }

    // Flip one character of the signature.
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered)?;
    let bad_subprotocol = format!("dealersync, bearer.{tampered}");
    let bad_bearer = format!("Bearer {tampered}");
    let refusals: [Place; 4] = [
        ("no token", net.server.ws_url(), vec![]),
        (
            "Authorization",
            net.server.ws_url(),
            vec![("Authorization", bad_bearer.as_str())],
        ),
        (
            "Sec-WebSocket-Protocol",
            net.server.ws_url(),
            vec![("Sec-WebSocket-Protocol", bad_subprotocol.as_str())],
        ),
        ("?token=", net.server.ws_url_with_token(&tampered), vec![]),
    ];
    for (place, url, headers) in &refusals {
        let refused = RustClient::connect_with_headers(place, url, headers, DEADLINE).await;
        match refused {
            Err(e) if e.to_string().contains("401") => {}
            Err(e) => bail!("{place}: refused, but not with 401: {e}"),
            Ok(_) => bail!("{place}: a tampered token was accepted"),
        }
    }
    Ok(())
}
