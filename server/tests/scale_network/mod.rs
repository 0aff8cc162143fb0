//! The network of the scale benchmarks (`reports_bench.rs`, `restore_bench.rs`): 500
//! sites (1 head office, 20 distribution centres, 479 agents) × 2,000 customers with
//! about 4.6 events each over 2026, 5 consultants per site, from a fixed seed so every
//! run generates the same network.

#![allow(dead_code)]

use dealersync_core::schema::{
    Customer, CustomerEvent, CustomerSource, CustomerStatus, EventKind, SiteHeader, SiteKind,
};

/// Sites in the network.
pub const SITES: usize = 500;
/// Customers per site.
pub const CUSTOMERS: usize = 2_000;
/// Consultants per site (each on a device of their own).
pub const CONSULTANTS: usize = 5;

/// A small deterministic generator (no dependency, same network every run).
pub struct Lcg(pub u64);

impl Lcg {
    /// A number below `n`.
    pub fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// 00:00 CST on day `d` (0-based) of 2026.
fn day(d: u64) -> i64 {
    1_767_225_600_000 - 8 * 3_600_000 + d as i64 * 86_400_000
}

/// `count` customers of `site`: a visit each, half with a test drive, a quarter
/// ordering (four in five of those delivered), a third called back.
pub fn customers(site: &str, count: usize, rng: &mut Lcg) -> Vec<Customer> {
    (0..count)
        .map(|i| {
            let by = format!("{site}-c{}", rng.next(CONSULTANTS as u64));
            let d = rng.next(334); // January 1st to November 30th
            let ev = |kind, at, amount| CustomerEvent {
                kind,
                at,
                by: by.clone(),
                note: None,
                amount,
                vin: None,
                score: None,
                direction: None,
            };
            let mut events = vec![ev(EventKind::Visit, day(d) + 36_000_000, None)];
            if rng.next(2) == 0 {
                events.push(ev(EventKind::TestDrive, day(d) + 40_000_000, None));
            }
            if rng.next(4) == 0 {
                events.push(ev(EventKind::Order, day(d + 2), Some(15_000_000)));
                if rng.next(5) < 4 {
                    events.push(ev(EventKind::Delivery, day(d + 12), None));
                }
            }
            if rng.next(3) == 0 {
                events.push(ev(EventKind::Call, day(d + 1), None));
            }
            Customer {
                id: format!("{site}-k{i}"),
                name: format!("客户{i}"),
                phone: format!("138{:08}", i),
                source: CustomerSource::WalkIn,
                model_of_interest: None,
                consultant: Some(by.clone()),
                status: CustomerStatus::Lead,
                created_at: day(d),
                events,
                merged_into: None,
                area: None,
                referred_by: None,
                next_follow_up: None,
                lost_reason: None,
                lost_to: None,
                lost_at: None,
            }
        })
        .collect()
}

/// The `i`th site: 0 is head office, 1–20 distribution centres, the rest agents
/// spread over them.
pub fn header(i: usize) -> SiteHeader {
    let (id, kind, parent) = match i {
        0 => ("hq".to_string(), SiteKind::HeadOffice, None),
        1..=20 => (
            format!("dc{i}"),
            SiteKind::DistributionCentre,
            Some("hq".into()),
        ),
        _ => (
            format!("ag{i}"),
            SiteKind::Agent,
            Some(format!("dc{}", 1 + i % 20)),
        ),
    };
    SiteHeader {
        name: format!("{id} 站"),
        id,
        kind,
        parent,
        channel: None,
    }
}
