//! Every domain operation, and every way it can be refused.

#[path = "../common/mod.rs"]
mod common;

use automerge::{AutoCommit, ReadDoc, ScalarValue, Value};
use common::*;
use dealersync_core::domain::{self, CheckDigitPolicy, CustomerUpdate, NewEvent, VehicleAction};
use dealersync_core::schema::{
    CustomerSource, CustomerStatus, EventKind, NetworkDocument, SiteDocument, SiteKind, Target,
    VehicleStatus,
};

fn site_with_customer() -> (AutoCommit, NetworkDocument) {
    let (_, net) = network();
    let mut doc = site("sr-1");
    domain::add_customer(
        &mut doc,
        &net,
        &new_customer("c1", "138 1234 5678"),
        "wang",
        T0,
    )
    .unwrap();
    (doc, net)
}

fn scalar_at(doc: &AutoCommit, path: &[&str]) -> Value<'static> {
    let mut obj = automerge::ROOT;
    for key in &path[..path.len() - 1] {
        obj = doc.get(&obj, *key).unwrap().unwrap().1;
    }
    doc.get(&obj, *path.last().unwrap())
        .unwrap()
        .unwrap()
        .0
        .into_owned()
}

mod concurrent_values;
mod customers;
mod documents;
mod foreign_writes;
mod planning;
mod transition_tables;
mod vehicles;
