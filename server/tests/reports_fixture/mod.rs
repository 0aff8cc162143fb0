//! The hand-built network the report and planning tests share, built in a fresh data
//! directory before the real binary starts on it.
//!
//! The network (November 2026, all times CST):
//! ```text
//! hq    head office
//! ├─ dc   distribution centre
//! │  ├─ a1  agent        c1: k1 visit 3rd, test drive 3rd, order 5th ¥150,000,
//! │  │  │                    delivery 20th ¥150,000; k2 visit 10th;
//! │  │  │                    k3 first visit Oct 28th, order Nov 2nd ¥100,000,
//! │  │  │                    delivery 25th (unpriced: the order's ¥100,000)
//! │  │  └─ s1  showroom  (no activity)
//! │  └─ a2  agent        c2: m1 visit 11th, order 12th, delivery 28th ¥200,000
//! └─ b1  agent, named "=1+1 agent"  (no activity)
//! ```
//! Targets 2026-11: a1 4 units / ¥500,000; a2 1 unit / ¥100,000.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use automerge::AutoCommit;
use dealersync_core::domain;
use dealersync_core::protocol::DocumentId;
use dealersync_core::schema::{
    Customer, CustomerEvent, CustomerSource, CustomerStatus, EventKind, Millis, NetworkDocument,
    SiteDocument, SiteHeader, SiteKind, Target, Vehicle, VehicleStatus,
};
use dealersync_server::registry::{DocumentWriter, Registry, StoreDocuments, load_stored};
use dealersync_server::storage::{SqliteStore, StoreOptions};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Server, run_bin};

/// ¥1 in fen.
pub const YUAN: i64 = 100;

pub fn cst(m: u32, d: u32, h: u32) -> Millis {
    chrono::NaiveDate::from_ymd_opt(2026, m, d)
        .unwrap()
        .and_hms_opt(h, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis()
        - dealersync_core::time::CST_OFFSET_MS
}

pub fn ev(kind: EventKind, at: Millis, by: &str, amount: Option<i64>) -> CustomerEvent {
    CustomerEvent {
        kind,
        at,
        by: by.into(),
        note: None,
        amount,
        vin: None,
        score: None,
        direction: None,
    }
}

pub fn customer(id: &str, consultant: &str, events: Vec<CustomerEvent>) -> Customer {
    Customer {
        id: id.into(),
        name: format!("customer {id}"),
        phone: "13800000000".into(),
        source: CustomerSource::WalkIn,
        model_of_interest: None,
        consultant: Some(consultant.into()),
        status: CustomerStatus::Lead,
        created_at: events.first().map_or(0, |e| e.at),
        events,
        merged_into: None,
        area: None,
        referred_by: None,
        next_follow_up: None,
        lost_reason: None,
        lost_to: None,
        lost_at: None,
    }
}

/// A vehicle in stock since November 1st.
pub fn vehicle(n: u32, model: &str, cost: i64) -> Vehicle {
    Vehicle {
        vin: format!("LDS{n:014}"),
        model: model.into(),
        trim: "std".into(),
        colour: "white".into(),
        cost,
        list_price: cost,
        status: VehicleStatus::InStock,
        eta: None,
        arrived_at: Some(cst(11, 1, 9)),
        reserved_for: None,
        sold_to: None,
        consultant: None,
        transfer_from: None,
        transfer_to: None,
        discount_approved_by: None,
        discount_approved_at: None,
        transfer_id: None,
        updated_at: cst(11, 1, 9),
    }
}

/// Creates sites `(id, kind, parent)` in the registry, named `site {id}`, and returns
/// their documents.
pub fn create_sites(
    registry: &Registry,
    writer: &dyn DocumentWriter,
    sites: &[(&str, SiteKind, Option<&str>)],
) -> std::collections::BTreeMap<String, DocumentId> {
    let mut docs = std::collections::BTreeMap::new();
    for &(id, kind, parent) in sites {
        let header = SiteHeader {
            id: id.into(),
            name: format!("site {id}"),
            kind,
            parent: parent.map(String::from),
            channel: None,
        };
        let record = registry.create_site(writer, header).unwrap();
        docs.insert(id.to_string(), record.document_id);
    }
    docs
}

/// Adds vehicles to a site document.
pub fn add_vehicles(doc: &mut AutoCommit, vehicles: Vec<Vehicle>) {
    let mut site = SiteDocument::read(doc).unwrap();
    for v in vehicles {
        site.vehicles.insert(v.vin.clone(), v);
    }
    autosurgeon::reconcile(doc, &site).unwrap();
}

/// Adds customers to a site document (as a client's change would).
pub fn add_customers(doc: &mut AutoCommit, customers: Vec<Customer>) {
    let mut site = SiteDocument::read(doc).unwrap();
    for c in customers {
        site.customers.insert(c.id.clone(), c);
    }
    autosurgeon::reconcile(doc, &site).unwrap();
}

pub struct Net {
    _dir: tempfile::TempDir,
    pub server: Server,
    pub docs: std::collections::BTreeMap<String, DocumentId>,
    pub http: reqwest::Client,
}

impl Net {
    /// Builds the network above in a fresh data directory, then starts the server.
    pub async fn start() -> Net {
        Net::start_with(|_, _| {}).await
    }

    /// [`Net::start`] with more written by `extra` (given the store's writer and the
    /// site documents) before the server starts.
    pub async fn start_with(
        extra: impl FnOnce(
            &StoreDocuments<SqliteStore>,
            &std::collections::BTreeMap<String, DocumentId>,
        ),
    ) -> Net {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_path_buf();
        crate::common::admin_token(&data);
        for (id, name, kind, parent) in [
            ("dc", "Distribution", "distribution_centre", "hq"),
            ("a1", "Agent one", "agent", "dc"),
            ("s1", "Showroom", "showroom", "a1"),
            ("a2", "Agent two", "agent", "dc"),
            ("b1", "=1+1 agent", "agent", "hq"),
        ] {
            run_bin(
                &[
                    "site", "add", "--id", id, "--name", name, "--kind", kind, "--parent", parent,
                ],
                &data,
            );
        }
        let registry = Registry::open_in(&data).unwrap();
        let docs: std::collections::BTreeMap<String, DocumentId> = registry
            .sites()
            .unwrap()
            .into_iter()
            .map(|s| (s.id, s.document_id))
            .collect();
        let store = Arc::new(SqliteStore::open(&data, &StoreOptions::default()).unwrap());
        let writer = StoreDocuments(store);
        let now = dealersync_core::time::now_ms();
        let network = registry.network_document().unwrap().unwrap();
        writer
            .edit(network, &mut |d| {
                for (site, units, revenue) in [("a1", 4, 500_000 * YUAN), ("a2", 1, 100_000 * YUAN)]
                {
                    let t = Target {
                        units,
                        revenue,
                        ..Target::default()
                    };
                    domain::set_site_target(d, site, "2026-11", &t, "test", now)?;
                }
                Ok(())
            })
            .unwrap();
        writer
            .edit(docs["a1"], &mut |d| {
                add_customers(
                    d,
                    vec![
                        customer(
                            "k1",
                            "c1",
                            vec![
                                ev(EventKind::Visit, cst(11, 3, 10), "c1", None),
                                ev(EventKind::TestDrive, cst(11, 3, 11), "c1", None),
                                ev(EventKind::Order, cst(11, 5, 10), "c1", Some(150_000 * YUAN)),
                                ev(
                                    EventKind::Delivery,
                                    cst(11, 20, 10),
                                    "c1",
                                    Some(150_000 * YUAN),
                                ),
                            ],
                        ),
                        customer(
                            "k2",
                            "c1",
                            vec![ev(EventKind::Visit, cst(11, 10, 10), "c1", None)],
                        ),
                        customer(
                            "k3",
                            "c1",
                            vec![
                                ev(EventKind::Visit, cst(10, 28, 10), "c1", None),
                                ev(EventKind::Order, cst(11, 2, 10), "c1", Some(100_000 * YUAN)),
                                ev(EventKind::Delivery, cst(11, 25, 10), "c1", None),
                            ],
                        ),
                    ],
                );
                add_vehicles(
                    d,
                    vec![
                        vehicle(1, "SDN-A", 90_000 * YUAN),
                        vehicle(2, "SDN-A", 90_000 * YUAN),
                    ],
                );
                Ok(())
            })
            .unwrap();
        writer
            .edit(docs["a2"], &mut |d| {
                add_vehicles(d, vec![vehicle(3, "SUV-B", 120_000 * YUAN)]);
                add_customers(
                    d,
                    vec![customer(
                        "m1",
                        "c2",
                        vec![
                            ev(EventKind::Visit, cst(11, 11, 10), "c2", None),
                            ev(
                                EventKind::Order,
                                cst(11, 12, 10),
                                "c2",
                                Some(200_000 * YUAN),
                            ),
                            ev(
                                EventKind::Delivery,
                                cst(11, 28, 10),
                                "c2",
                                Some(200_000 * YUAN),
                            ),
                        ],
                    )],
                );
                Ok(())
            })
            .unwrap();
        extra(&writer, &docs);
        let server = Server::start(&data, &[]).await;
        Net {
            _dir: dir,
            server,
            docs,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    pub fn token(&self, role: &str, site: &str) -> String {
        run_bin(
            &[
                "token",
                "--role",
                role,
                "--sub",
                &format!("{role}-{site}"),
                "--site",
                site,
            ],
            &self.server.data_dir,
        )
        .trim()
        .to_string()
    }

    pub async fn get_raw(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.server.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let resp = self.get_raw(path, token).await;
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn ok(&self, path: &str, token: &str) -> Value {
        let (status, body) = self.get(path, token).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    /// Every site document as stored, hydrated: the full recomputation's input.
    pub fn stored_sites(&self) -> (NetworkDocument, Vec<SiteDocument>) {
        let store = SqliteStore::open(&self.server.data_dir, &StoreOptions::default()).unwrap();
        let registry = Registry::open_in(&self.server.data_dir).unwrap();
        let net_id = registry.network_document().unwrap().unwrap();
        let network =
            NetworkDocument::read(&load_stored(&store, net_id).unwrap().unwrap()).unwrap();
        let sites = self
            .docs
            .values()
            .map(|d| SiteDocument::read(&load_stored(&store, *d).unwrap().unwrap()).unwrap())
            .collect();
        (network, sites)
    }
}

pub fn rows<'a>(v: &'a Value, list: &str) -> &'a Vec<Value> {
    v[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {v}"))
}

pub fn row<'a>(v: &'a Value, list: &str, level: &str, id_field: &str, id: &str) -> &'a Value {
    rows(v, list)
        .iter()
        .find(|r| r["level"] == level && r[id_field] == id)
        .unwrap_or_else(|| panic!("no {level} row {id} in {v}"))
}

impl Net {
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let resp = self
            .http
            .request(method, self.server.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}
