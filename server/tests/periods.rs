//! Monthly working documents through the relay (docs/growth.md): `archive --month`
//! through a running relay's admin API carries a site over into a new document, names
//! it in the network document and the registry, and the old document takes devices'
//! late changes through its grace week, then serves reads only.

mod common;

use automerge::ReadDoc;
use common::{Client, Server, admin_token, run_bin};
use dealersync_core::domain::{self, NewCustomer, PeriodLink};
use dealersync_core::protocol::DocumentId;
use dealersync_core::protocol::wire::Message;
use dealersync_core::schema::{CustomerSource, NetworkDocument, SiteDocument};
use dealersync_core::time::{next_month_key, now_ms};
use dealersync_server::registry::Registry;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn customer(id: &str, phone: &str) -> NewCustomer {
    NewCustomer {
        id: id.into(),
        name: format!("顾客 {id}"),
        phone: phone.into(),
        source: CustomerSource::WalkIn,
        model_of_interest: None,
        consultant: Some("wang".into()),
    }
}

/// Adds a customer on the phone's copy of `doc` and waits until the relay has it.
async fn add_and_wait(phone: &mut Client, doc: DocumentId, c: NewCustomer) {
    phone
        .change(doc, |d| {
            domain::add_customer(d, &NetworkDocument::new(), &c, "wang", now_ms()).unwrap();
        })
        .await;
    phone
        .until("the relay acknowledges the customer", |p| {
            let heads = p.heads(doc);
            p.server_heads(doc) == heads
        })
        .await;
}

/// Opens `doc` on `client` and waits for the relay's copy.
async fn open(client: &mut Client, doc: DocumentId) -> SiteDocument {
    client.request(doc).await;
    client
        .until("the document arrives", |c| !c.heads(doc).is_empty())
        .await;
    SiteDocument::read(&client.docs[&doc].doc).unwrap()
}

/// `archive` through the running relay, as an operator's timer runs it.
fn archive(server: &Server, month: &str) -> String {
    run_bin(
        &[
            "archive",
            "--month",
            month,
            "--server",
            &server.url(""),
            "--token",
            &server.token,
        ],
        &server.data_dir,
    )
}

#[tokio::test]
async fn an_archive_takes_late_writes_through_its_grace_week_then_serves_reads_only() {
    let dir = tempfile::tempdir().unwrap();
    admin_token(dir.path());
    let first: DocumentId = run_bin(
        &[
            "site",
            "add",
            "--id",
            "sr-1",
            "--name",
            "一号展厅",
            "--kind",
            "showroom",
            "--parent",
            "hq",
        ],
        dir.path(),
    )
    .trim()
    .parse()
    .unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let token = run_bin(
        &[
            "token",
            "--role",
            "consultant",
            "--sub",
            "wang",
            "--site",
            "sr-1",
            "--device",
            "phone",
        ],
        dir.path(),
    );
    let url = format!("{}?token={}", server.ws_url_without_token(), token.trim());
    let mut phone = Client::connect(&url, "phone", Some("phone-store")).await;
    open(&mut phone, first).await;
    add_and_wait(&mut phone, first, customer("c-1", "13812340001")).await;

    // Only admin carries sites over.
    let refused = reqwest::Client::new()
        .post(server.url("/api/admin/archive"))
        .bearer_auth(token.trim())
        .json(&serde_json::json!({ "month": "2020-01" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);

    // Two carry-overs: into a month long past (its archive's grace week is over) and
    // into next month (its grace week is ahead). A second run does nothing.
    let out = archive(&server, "2020-01");
    assert!(out.contains(&format!("archived {first}")), "{out}");
    let next = next_month_key(now_ms());
    let out = archive(&server, &next);
    assert_eq!(
        out.lines().filter(|l| l.contains("archived")).count(),
        2,
        "{out}"
    );
    let again = archive(&server, &next);
    assert!(
        again.lines().all(|l| l.ends_with("already in the month")),
        "{again}"
    );

    let registry = Registry::open_in(dir.path()).unwrap();
    let chain = registry.chain("sr-1").unwrap();
    assert_eq!(chain.len(), 3, "{chain:?}");
    let (second, working) = (chain[1].document_id, chain[2].document_id);
    assert_eq!(chain[0].document_id, first);
    assert_eq!(chain[1].month.as_deref(), Some("2020-01"));
    assert_eq!(chain[2].month.as_deref(), Some(next.as_str()));
    assert_eq!(registry.site("sr-1").unwrap().document_id, working);

    // Every client finds the working document in the network document it syncs.
    let network = registry.network_document().unwrap().unwrap();
    phone.request(network).await;
    phone
        .until("the network document names the chain", |c| {
            domain::site_chain(&c.docs[&network].doc, "sr-1")
                .unwrap()
                .len()
                == 3
        })
        .await;
    let links = domain::site_chain(&phone.docs[&network].doc, "sr-1").unwrap();
    assert_eq!(
        links,
        vec![
            PeriodLink {
                month: None,
                document: first.to_string()
            },
            PeriodLink {
                month: Some("2020-01".into()),
                document: second.to_string()
            },
            PeriodLink {
                month: Some(next.clone()),
                document: working.to_string()
            },
        ]
    );

    // The working document carries the open customer.
    let site = open(&mut phone, working).await;
    assert!(site.customers.contains_key("c-1"), "{:?}", site.customers);

    // In its grace week, the archive takes a late change from the device.
    open(&mut phone, second).await;
    add_and_wait(&mut phone, second, customer("c-2", "13812340002")).await;
    assert!(phone.errors.is_empty(), "{:?}", phone.errors);
    let mut reader = Client::connect(&server.ws_url(), "reader", None).await;
    assert!(
        open(&mut reader, second)
            .await
            .customers
            .contains_key("c-2")
    );

    // After it, the archive is read-only: reads are served, a change is refused with
    // an error frame and not stored. An automerge client honours the read-only flag and
    // does not send its change; a client that sends it anyway is told why.
    let archived = open(&mut phone, first).await;
    assert!(archived.customers.contains_key("c-1"));
    let mut forged = phone.docs[&first].doc.clone();
    domain::add_customer(
        &mut forged,
        &NetworkDocument::new(),
        &customer("c-3", "13812340003"),
        "wang",
        now_ms(),
    )
    .unwrap();
    let data = common::pushed_change(&mut forged);
    let mut raw = common::raw(&url).await;
    raw.send(WsMessage::Binary(
        common::join_frame("late-phone", None).into(),
    ))
    .await
    .unwrap();
    let msg = Message::Sync {
        sender_id: "late-phone".into(),
        target_id: phone.server.clone(),
        document_id: first,
        data,
    };
    raw.send(WsMessage::Binary(msg.encode().into()))
        .await
        .unwrap();
    let error = common::first_error(&mut raw).await;
    assert!(error.contains("read-only"), "{error}");
    let mut fresh = Client::connect(&server.ws_url(), "auditor", None).await;
    let stored = open(&mut fresh, first).await;
    assert!(!stored.customers.contains_key("c-3"));
    assert!(stored.customers.contains_key("c-1"));
    // Admin may still write an archive (corrections after the grace week).
    fresh
        .change(first, |d| {
            automerge::transaction::Transactable::put(d, automerge::ROOT, "note", 1).unwrap();
        })
        .await;
    fresh
        .until("the relay stores admin's correction", |c| {
            let heads = c.heads(first);
            c.server_heads(first) == heads
        })
        .await;
    assert!(fresh.errors.is_empty(), "{:?}", fresh.errors);
    assert!(
        fresh.docs[&first]
            .doc
            .get(automerge::ROOT, "note")
            .unwrap()
            .is_some()
    );
}
