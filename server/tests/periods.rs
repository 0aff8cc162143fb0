//! Monthly working documents through the relay (docs/growth.md): `archive --month`
//! through a running relay's admin API carries a site over into a new document, names
//! it in the network document and the registry, and the old document takes devices'
//! late changes through its grace week, then serves reads only. What a late device
//! writes there is forwarded into the working document by the relay.

mod common;

use automerge::ReadDoc;
use common::{Client, Server, admin_token, run_bin};
use dealersync_core::access::Role;
use dealersync_core::conflicts::{self, ConflictKind};
use dealersync_core::domain::{self, NewCustomer, PeriodLink};
use dealersync_core::domain::{CheckDigitPolicy, Vin};
use dealersync_core::protocol::DocumentId;
use dealersync_core::protocol::wire::Message;
use dealersync_core::schema::{
    CustomerSource, NetworkDocument, SiteDocument, VehicleModel, VehicleStatus,
};
use dealersync_core::time::{next_month_key, now_ms};
use dealersync_server::late_forward;
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

/// A relay serving showroom `sr-1` from `dir`: the site's first document, the relay,
/// and a token of consultant wang's phone with its WebSocket URL.
async fn showroom(dir: &std::path::Path) -> (DocumentId, Server, String, String) {
    admin_token(dir);
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
        dir,
    )
    .trim()
    .parse()
    .unwrap();
    let server = Server::start(dir, &[]).await;
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
        dir,
    )
    .trim()
    .to_string();
    let url = format!("{}?token={token}", server.ws_url_without_token());
    (first, server, token, url)
}

/// Waits until the relay has every change the client made to `doc`.
async fn acknowledged(client: &mut Client, doc: DocumentId, what: &str) {
    client
        .until(what, |c| {
            let heads = c.heads(doc);
            c.server_heads(doc) == heads
        })
        .await;
}

/// Adds a customer on the phone's copy of `doc` and waits until the relay has it.
async fn add_and_wait(phone: &mut Client, doc: DocumentId, c: NewCustomer) {
    phone
        .change(doc, |d| {
            domain::add_customer(d, &NetworkDocument::new(), &c, "wang", now_ms()).unwrap();
        })
        .await;
    acknowledged(phone, doc, "the relay acknowledges the customer").await;
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
    let (first, server, token, url) = showroom(dir.path()).await;
    let mut phone = Client::connect(&url, "phone", Some("phone-store")).await;
    open(&mut phone, first).await;
    add_and_wait(&mut phone, first, customer("c-1", "13812340001")).await;

    // Only admin carries sites over.
    let refused = reqwest::Client::new()
        .post(server.url("/api/admin/archive"))
        .bearer_auth(&token)
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
    acknowledged(&mut fresh, first, "the relay stores admin's correction").await;
    assert!(fresh.errors.is_empty(), "{:?}", fresh.errors);
    assert!(
        fresh.docs[&first]
            .doc
            .get(automerge::ROOT, "note")
            .unwrap()
            .is_some()
    );
}

/// A valid VIN with serial number `n`.
fn vin(n: u32) -> String {
    let mut s = format!("LSVAB2BR0NM{n:06}");
    let c = domain::check_digit(&s);
    s.replace_range(8..9, &c.to_string());
    s
}

/// A network document whose catalogue has the cars' model.
fn catalogue() -> NetworkDocument {
    let mut net = NetworkDocument::new();
    net.models.insert(
        "SDN-A".into(),
        VehicleModel {
            code: "SDN-A".into(),
            name: "轿车 A".into(),
            trims: vec!["lux".into()],
            cost: 12_000_000,
            list_price: 15_000_000,
        },
    );
    net
}

/// Sells `v` to `customer` on the client's copy of `doc` and waits until the relay
/// has it.
async fn sell_and_wait(client: &mut Client, doc: DocumentId, v: &str, customer: &str) {
    let sale = domain::Sale {
        customer: Some(customer.into()),
        price: None,
    };
    client
        .change(doc, |d| {
            domain::sell_vehicle(
                d,
                &catalogue(),
                v,
                &sale,
                "wang",
                Role::Consultant,
                now_ms(),
            )
            .unwrap();
        })
        .await;
    acknowledged(client, doc, "the relay acknowledges the sale").await;
}

#[tokio::test]
async fn late_customers_and_bookings_in_the_archive_reach_the_working_document() {
    let dir = tempfile::tempdir().unwrap();
    let (first, server, _, url) = showroom(dir.path()).await;

    // The month before: two cars in stock, two customers.
    let mut office = Client::connect(&server.ws_url(), "office", None).await;
    open(&mut office, first).await;
    office
        .change(first, |d| {
            for n in [1, 2] {
                let car = domain::NewVehicle {
                    vin: Vin::parse(&vin(n), CheckDigitPolicy::Enforce).unwrap(),
                    model: "SDN-A".into(),
                    trim: "lux".into(),
                    colour: "白".into(),
                    cost: None,
                    list_price: None,
                    status: VehicleStatus::InStock,
                    eta: None,
                };
                domain::receive_vehicle(d, &catalogue(), &car, "li", now_ms()).unwrap();
            }
        })
        .await;
    acknowledged(&mut office, first, "the relay stores the cars").await;
    let mut phone = Client::connect(&url, "phone", Some("phone-store")).await;
    open(&mut phone, first).await;
    add_and_wait(&mut phone, first, customer("c-1", "13812340001")).await;
    add_and_wait(&mut phone, first, customer("c-2", "13812340002")).await;
    phone
        .until("the phone has the cars", |c| {
            SiteDocument::read(&c.docs[&first].doc)
                .unwrap()
                .vehicles
                .len()
                == 2
        })
        .await;

    // The carry-over, while the phone stays on the old document.
    let next = next_month_key(now_ms());
    archive(&server, &next);
    let chain = Registry::open_in(dir.path())
        .unwrap()
        .chain("sr-1")
        .unwrap();
    let working = chain[1].document_id;
    assert_eq!(chain[0].document_id, first);

    // In the new month the office sells car 2 to c-2 ...
    open(&mut office, working).await;
    sell_and_wait(&mut office, working, &vin(2), "c-2").await;
    // ... while the late phone, in the grace week, creates a customer in the archive,
    // sells car 1 to c-1 and car 2 to its new customer.
    add_and_wait(&mut phone, first, customer("c-9", "13812340009")).await;
    sell_and_wait(&mut phone, first, &vin(1), "c-1").await;
    sell_and_wait(&mut phone, first, &vin(2), "c-9").await;
    assert!(phone.errors.is_empty(), "{:?}", phone.errors);

    // A device on the working document sees all of it, and the double sale of car 2.
    let mut reader = Client::connect(&server.ws_url(), "reader", None).await;
    open(&mut reader, working).await;
    reader
        .until("the late work is forwarded", |c| {
            let doc = &c.docs[&working].doc;
            let site = SiteDocument::read(doc).unwrap();
            let doubles = conflicts::detect(&[("sr-1", doc)])
                .into_iter()
                .filter(|k| k.kind == ConflictKind::DoubleBooking)
                .count();
            site.customers.contains_key("c-9")
                && site.vehicles[vin(1).as_str()].sold_to.as_deref() == Some("c-1")
                && doubles == 1
        })
        .await;
    let site = SiteDocument::read(&reader.docs[&working].doc).unwrap();
    assert_eq!(site.vehicles[vin(1).as_str()].status, VehicleStatus::Sold);
    assert_eq!(
        domain::period_header(&reader.docs[&working].doc)
            .unwrap()
            .unwrap()
            .carried_events
            .get("c-9"),
        Some(
            &SiteDocument::read(&phone.docs[&first].doc)
                .unwrap()
                .customers["c-9"]
                .events
                .len()
        ),
        "the late customer's events are counted once"
    );

    // Audited as the relay's own change.
    let audit = Registry::open_in(dir.path())
        .unwrap()
        .audit(&working, 100)
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.user.as_deref() == Some(late_forward::FORWARD_AUTHOR)),
        "{audit:?}"
    );
}
