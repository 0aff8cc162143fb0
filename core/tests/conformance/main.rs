//! Conformance vectors: the domain rules written down as data, for every other
//! implementation of them to run (the field app's TypeScript domain module runs the same
//! files, `clients/web/test/`).
//!
//! Each test builds its vector from `core` and compares it with the committed file in
//! `core/vectors/`; a difference fails with the path. `UPDATE_VECTORS=1 cargo test -p
//! dealersync-core --test conformance` rewrites the files instead, so they never drift
//! from core silently: a rule changed in Rust changes the vector, and the diff shows
//! what the other implementations must follow. Vectors that carry automerge documents
//! (as hex) are checked by replaying them through core, not by comparing bytes.

mod care;
#[path = "../common/mod.rs"]
mod common;

use std::path::PathBuf;

use automerge::{ActorId, AutoCommit};
use common::{T0, network};
use dealersync_core::access::Role;
use dealersync_core::conflicts;
use dealersync_core::domain::{
    self, CheckDigitPolicy, DomainError, NewCustomer, NewEvent, NewVehicle, NewWalkIn, Sale,
    VehicleAction, Vin, VinError,
};
use dealersync_core::schema::{
    CallDirection, CustomerArea, CustomerSource, CustomerStatus, EventKind, NetworkDocument,
    SiteDocument, SiteHeader, SiteKind, VehicleStatus, typed_json,
};
use serde_json::{Value as Json, json};

const MINUTE: i64 = 60_000;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

/// Compares `value` with the committed vector `name`, or writes it under UPDATE_VECTORS.
fn check_vector(name: &str, value: &Json) {
    let path = vectors_dir().join(name);
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        std::fs::create_dir_all(vectors_dir()).unwrap();
        let mut text = serde_json::to_string_pretty(value).unwrap();
        text.push('\n');
        std::fs::write(&path, text).unwrap();
        return;
    }
    let committed: Json = serde_json::from_str(
        &std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}; run with UPDATE_VECTORS=1", path.display())),
    )
    .unwrap();
    assert!(
        &committed == value,
        "{} differs from what core computes; if the rule changed on purpose, run \
         UPDATE_VECTORS=1 cargo test -p dealersync-core --test conformance and commit the diff\n\
         core says: {}",
        path.display(),
        serde_json::to_string_pretty(value).unwrap()
    );
}

/// The committed vector `name`, parsed.
fn read_vector(name: &str) -> Json {
    let path = vectors_dir().join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn updating() -> bool {
    std::env::var_os("UPDATE_VECTORS").is_some()
}

/// A valid VIN (correct check digit) with serial `n`.
fn vin(n: u32) -> String {
    let mut s = format!("LSVAB2BR0NM{n:06}");
    let c = domain::check_digit(&s);
    s.replace_range(8..9, &c.to_string());
    s
}

fn vin_error(e: &VinError) -> Json {
    match e {
        VinError::Length { len } => json!({"kind": "length", "len": len}),
        VinError::ForbiddenLetter { ch, position } => {
            json!({"kind": "forbidden_letter", "ch": ch.to_string(), "position": position})
        }
        VinError::BadCharacter { ch, position } => {
            json!({"kind": "bad_character", "ch": ch.to_string(), "position": position})
        }
        VinError::CheckDigit { expected, found } => json!({
            "kind": "check_digit", "expected": expected.to_string(), "found": found.to_string()
        }),
    }
}

mod conflicts_and_figures;
mod documents;
use documents::*;
mod input_rules;
mod periods;
