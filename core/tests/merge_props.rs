//! Property: replicas that apply random operations offline, sync now and then, and
//! finally merge in a random order all reach the same document and the same conflict
//! list; no counter increment or appended event is lost; refused operations change
//! nothing; and resolving every conflict on one replica clears them on all.

mod common;

use automerge::AutoCommit;
use common::*;
use dealersync_core::conflicts::{self, ConflictKind};
use dealersync_core::domain::{self, NewEvent, VehicleAction};
use dealersync_core::schema::{
    CustomerStatus, EventKind, NetworkDocument, SiteDocument, Target, VehicleStatus,
};
use proptest::prelude::*;

const REPLICAS: usize = 3;
const PHONES: [&str; 4] = [
    "13800000001",
    "+86 138 0000 0001",
    "13900000002",
    "010-62345678",
];
const MONTHS: [&str; 2] = ["2026-04", "2026-05"];
const MODELS: [&str; 2] = ["SDN-A", "SUV-B"];
const PARTS: [&str; 2] = ["OIL-5W30", "MAT-01"];

#[derive(Debug, Clone)]
enum Op {
    AddCustomer {
        phone: usize,
    },
    Event {
        customer: usize,
        kind: usize,
    },
    Status {
        customer: usize,
        status: usize,
    },
    Reserve {
        vehicle: usize,
        customer: usize,
    },
    Release {
        vehicle: usize,
    },
    Sell {
        vehicle: usize,
    },
    Deliver {
        vehicle: usize,
    },
    Forecast {
        month: usize,
        model: usize,
        quantity: i64,
    },
    /// A distribution centre's adjustment of the forecast cell.
    Adjust {
        month: usize,
        model: usize,
        quantity: i64,
    },
    Part {
        part: usize,
        change: i64,
    },
    Target {
        units: i64,
    },
    SyncFrom {
        other: usize,
    },
    ResolveFirst,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0..PHONES.len()).prop_map(|phone| Op::AddCustomer { phone }),
        1 => (any::<usize>(), 0..EventKind::ALL.len()).prop_map(|(customer, kind)| Op::Event { customer, kind }),
        1 => (any::<usize>(), 0..CustomerStatus::ALL.len())
            .prop_map(|(customer, status)| Op::Status { customer, status }),
        3 => (0..3usize, any::<usize>()).prop_map(|(vehicle, customer)| Op::Reserve { vehicle, customer }),
        1 => (0..3usize).prop_map(|vehicle| Op::Release { vehicle }),
        1 => (0..3usize).prop_map(|vehicle| Op::Sell { vehicle }),
        1 => (0..3usize).prop_map(|vehicle| Op::Deliver { vehicle }),
        2 => (0..MONTHS.len(), 0..MODELS.len(), -1..20i64)
            .prop_map(|(month, model, quantity)| Op::Forecast { month, model, quantity }),
        1 => (0..MONTHS.len(), 0..MODELS.len(), -1..20i64)
            .prop_map(|(month, model, quantity)| Op::Adjust { month, model, quantity }),
        2 => (0..PARTS.len(), -8..8i64).prop_map(|(part, change)| Op::Part { part, change }),
        1 => (0..10i64).prop_map(|units| Op::Target { units }),
        1 => (0..REPLICAS).prop_map(|other| Op::SyncFrom { other }),
        1 => Just(Op::ResolveFirst),
    ]
}

/// What the replicas did that must survive any merge.
#[derive(Default)]
struct Ledger {
    part_changes: [i64; PARTS.len()],
    events: usize,
}

fn base(net: &NetworkDocument) -> AutoCommit {
    let mut doc = site("sr-1");
    for i in 0..3 {
        domain::add_customer(
            &mut doc,
            net,
            &new_customer(&format!("c{i}"), &format!("1370000000{i}")),
            "w",
            T0,
        )
        .unwrap();
        domain::receive_vehicle(
            &mut doc,
            net,
            &new_vehicle(&vin(i), VehicleStatus::InStock),
            "w",
            T0,
        )
        .unwrap();
    }
    // Counters are created once, before the devices fork; see docs/schema.md on why
    // two devices should not create the same part's counter concurrently.
    for p in PARTS {
        domain::adjust_part(&mut doc, p, 20, "w", T0).unwrap();
    }
    doc
}

fn customer_id(doc: &AutoCommit, pick: usize) -> String {
    let all = domain::list_customers(doc).unwrap();
    all[pick % all.len()].id.clone()
}

/// Resolves the first conflict the replica sees; returns whether there was one.
fn resolve_first(doc: &mut AutoCommit, net: &NetworkDocument, now: i64) -> bool {
    let Some(c) = conflicts::detect(&[("sr-1", &*doc)]).into_iter().next() else {
        return false;
    };
    match c.kind {
        ConflictKind::DoubleBooking => {
            let vin = c
                .records
                .iter()
                .find_map(|r| r.strip_prefix("vehicle "))
                .unwrap();
            conflicts::resolve_double_booking(doc, vin, &c.values[0].value, "boss", now).unwrap();
        }
        ConflictKind::DuplicateCustomer => {
            let keep = c.records[0].strip_prefix("customer ").unwrap();
            let dup = c.records[1].strip_prefix("customer ").unwrap();
            conflicts::resolve_duplicate_customer(doc, dup, keep, "boss", now).unwrap();
        }
        ConflictKind::ForecastEdit => {
            let cell = c.records[0].strip_prefix("forecast ").unwrap();
            let (month, model) = cell.split_once('/').unwrap();
            let q = c.values[0].value.parse().unwrap();
            conflicts::resolve_forecast(doc, net, month, model, q, "boss", now).unwrap();
        }
        ConflictKind::ForecastAdjustment => {
            let cell = c.records[0].strip_prefix("forecast ").unwrap();
            let (month, model) = cell.split_once('/').unwrap();
            let q = c.values[0].value.parse().unwrap();
            conflicts::resolve_forecast_adjustment(doc, month, model, q, "boss", now).unwrap();
        }
        ConflictKind::StockAtTwoSites => unreachable!("one site only"),
        ConflictKind::TransferDecision => unreachable!("the network document is not checked here"),
        ConflictKind::PartCountCollision => {
            let part = c.records[0].strip_prefix("part ").unwrap();
            let count = c.values[0].value.parse().unwrap();
            conflicts::resolve_part_count(doc, part, count, "boss", now).unwrap();
        }
    }
    true
}

fn apply(
    replicas: &mut [AutoCommit],
    r: usize,
    step: usize,
    op: &Op,
    net: &NetworkDocument,
    ledger: &mut Ledger,
) {
    let now = T0 + step as i64 * 60_000;
    let by = format!("user{r}");
    if let Op::SyncFrom { other } = op {
        if *other != r {
            let mut theirs = replicas[*other].fork();
            replicas[r].merge(&mut theirs).unwrap();
        }
        return;
    }
    let doc = &mut replicas[r];
    if let Op::ResolveFirst = op {
        resolve_first(doc, net, now);
        return;
    }
    let heads = doc.get_heads();
    let result: Result<(), domain::DomainError> = match op {
        Op::AddCustomer { phone } => {
            let c = new_customer(&format!("r{r}-{step}"), PHONES[*phone]);
            domain::add_customer(doc, net, &c, &by, now).map(|_| ())
        }
        Op::Event { customer, kind } => {
            let id = customer_id(doc, *customer);
            let kind = EventKind::ALL[*kind];
            let mut e = NewEvent::new(kind, now);
            e.score = (kind == EventKind::Survey).then_some(4);
            let ok = domain::record_event(doc, &id, &e, &by, now).map(|_| ());
            if ok.is_ok() {
                ledger.events += 1;
            }
            ok
        }
        Op::Status { customer, status } => {
            let id = customer_id(doc, *customer);
            domain::set_customer_status(doc, &id, CustomerStatus::ALL[*status], &by, now)
        }
        Op::Reserve { vehicle, customer } => {
            let id = customer_id(doc, *customer);
            let a = VehicleAction::Reserve { customer: id };
            domain::move_vehicle(doc, vin(*vehicle as u32).as_str(), &a, &by, now)
        }
        Op::Release { vehicle } => domain::move_vehicle(
            doc,
            vin(*vehicle as u32).as_str(),
            &VehicleAction::Release,
            &by,
            now,
        ),
        Op::Sell { vehicle } | Op::Deliver { vehicle } => {
            let action = match op {
                Op::Sell { .. } => VehicleAction::Sell,
                _ => VehicleAction::Deliver,
            };
            let ok = domain::move_vehicle(doc, vin(*vehicle as u32).as_str(), &action, &by, now);
            // A sale records the customer's order or delivery in the same change.
            if ok.is_ok() {
                ledger.events += 1;
            }
            ok
        }
        Op::Forecast {
            month,
            model,
            quantity,
        } => domain::set_forecast(
            doc,
            net,
            MONTHS[*month],
            MODELS[*model],
            *quantity,
            &by,
            now,
        ),
        Op::Adjust {
            month,
            model,
            quantity,
        } => domain::adjust_forecast(doc, MONTHS[*month], MODELS[*model], *quantity, &by, now),
        Op::Part { part, change } => {
            let ok = domain::adjust_part(doc, PARTS[*part], *change, &by, now).map(|_| ());
            if ok.is_ok() {
                ledger.part_changes[*part] += change;
            }
            ok
        }
        Op::Target { units } => {
            let t = Target {
                units: *units,
                revenue: units * 15_000_000,
                ..Default::default()
            };
            domain::set_consultant_target(doc, &by, "2026-04", &t, "boss", now)
        }
        Op::SyncFrom { .. } | Op::ResolveFirst => unreachable!(),
    };
    if result.is_err() {
        assert_eq!(
            doc.get_heads(),
            heads,
            "refused {op:?} changed the document"
        );
    }
}

fn sorted_heads(doc: &mut AutoCommit) -> Vec<automerge::ChangeHash> {
    let mut h = doc.get_heads();
    h.sort();
    h
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_to_the_same_document_and_conflicts(
        steps in prop::collection::vec((0..REPLICAS, op()), 1..40),
        order in Just((0..REPLICAS).collect::<Vec<_>>()).prop_shuffle(),
        inner in Just((0..REPLICAS).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        let (_, net) = network();
        let mut origin = base(&net);
        let mut replicas: Vec<AutoCommit> =
            (0..REPLICAS).map(|r| device(&mut origin, &format!("replica-{r}"))).collect();
        let mut ledger = Ledger::default();
        for (step, (r, op)) in steps.iter().enumerate() {
            apply(&mut replicas, *r, step, op, &net, &mut ledger);
        }
        // Final sync: every replica merges every other, in shuffled orders.
        for &r in &order {
            for &o in &inner {
                if o != r {
                    let mut theirs = replicas[o].fork();
                    replicas[r].merge(&mut theirs).unwrap();
                }
            }
        }
        let heads0 = sorted_heads(&mut replicas[0]);
        let doc0 = SiteDocument::read(&replicas[0]).unwrap();
        let conflicts0 = conflicts::detect(&[("sr-1", &replicas[0])]);
        for replica in replicas.iter_mut().skip(1) {
            prop_assert_eq!(&sorted_heads(replica), &heads0);
            prop_assert_eq!(&SiteDocument::read(&*replica).unwrap(), &doc0);
            prop_assert_eq!(&conflicts::detect(&[("sr-1", &*replica)]), &conflicts0);
        }
        // Nothing counted or appended was lost.
        for (i, p) in PARTS.iter().enumerate() {
            prop_assert_eq!(doc0.parts[*p].value(), 20 + ledger.part_changes[i]);
        }
        let events: usize = doc0.customers.values().map(|c| c.events.len()).sum();
        prop_assert_eq!(events, ledger.events);

        // Resolving every conflict on one replica clears them on all after a sync.
        let mut rounds = 0;
        while resolve_first(&mut replicas[order[0]], &net, T0 + 86_400_000) {
            rounds += 1;
            prop_assert!(rounds < 100, "resolution does not converge");
        }
        let mut resolved = replicas[order[0]].fork();
        for replica in &mut replicas {
            replica.merge(&mut resolved).unwrap();
            prop_assert!(conflicts::detect(&[("sr-1", &*replica)]).is_empty());
        }
    }
}

/// Operations of the two-site property: vehicles moving between a showroom and a
/// roadshow team, each site edited on two devices.
#[derive(Debug, Clone)]
enum SiteOp {
    /// A device books a vehicle in as arrived (possibly one the other site also holds).
    Receive {
        site: usize,
        device: usize,
        vehicle: u32,
    },
    /// A device that holds both sites' documents transfers a vehicle.
    Transfer {
        from: usize,
        device: usize,
        other_device: usize,
        vehicle: u32,
    },
    /// A transferred vehicle arrives.
    Arrive {
        site: usize,
        device: usize,
        vehicle: u32,
    },
    /// A device reserves a vehicle for the site's customer.
    Reserve {
        site: usize,
        device: usize,
        vehicle: u32,
    },
    /// Two devices of a site sync.
    Sync { site: usize, device: usize },
}

fn site_op() -> impl Strategy<Value = SiteOp> {
    let who = (0..2usize, 0..2usize, 20..23u32);
    prop_oneof![
        3 => who.clone().prop_map(|(site, device, vehicle)| SiteOp::Receive { site, device, vehicle }),
        2 => (0..2usize, 0..2usize, 0..2usize, 20..23u32).prop_map(
            |(from, device, other_device, vehicle)| SiteOp::Transfer { from, device, other_device, vehicle }
        ),
        1 => who.clone().prop_map(|(site, device, vehicle)| SiteOp::Arrive { site, device, vehicle }),
        1 => who.prop_map(|(site, device, vehicle)| SiteOp::Reserve { site, device, vehicle }),
        1 => (0..2usize, 0..2usize).prop_map(|(site, device)| SiteOp::Sync { site, device }),
    ]
}

const SITES: [&str; 2] = ["sr-1", "rs-1"];

fn two_site_conflicts(sites: &[Vec<AutoCommit>], a: usize, b: usize) -> Vec<conflicts::Conflict> {
    conflicts::detect(&[(SITES[0], &sites[0][a]), (SITES[1], &sites[1][b])])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn two_sites_agree_on_cross_document_conflicts(
        steps in prop::collection::vec(site_op(), 1..30),
        flip in any::<bool>(),
    ) {
        let (_, net) = network();
        let mut sites: Vec<Vec<AutoCommit>> = SITES
            .iter()
            .map(|id| {
                let mut origin = AutoCommit::new()
                    .with_actor(automerge::ActorId::from(format!("site-{id}").into_bytes()));
                domain::init_site_document(
                    &mut origin,
                    &header(id, dealersync_core::schema::SiteKind::Showroom, Some("dc-north")),
                    T0,
                )
                .unwrap();
                domain::add_customer(&mut origin, &net, &new_customer("c0", "13700000000"), "w", T0)
                    .unwrap();
                (0..2).map(|d| device(&mut origin, &format!("{id}-dev{d}"))).collect()
            })
            .collect();
        for (step, op) in steps.iter().enumerate() {
            let now = T0 + step as i64 * 60_000;
            match op {
                SiteOp::Receive { site, device, vehicle } => {
                    let nv = new_vehicle(&vin(*vehicle), VehicleStatus::InStock);
                    let _ = domain::receive_vehicle(&mut sites[*site][*device], &net, &nv, "u", now);
                }
                SiteOp::Transfer { from, device, other_device, vehicle } => {
                    let (l, r) = sites.split_at_mut(1);
                    let (src, dst) = if *from == 0 {
                        (&mut l[0][*device], &mut r[0][*other_device])
                    } else {
                        (&mut r[0][*device], &mut l[0][*other_device])
                    };
                    let (hs, hd) = (src.get_heads(), dst.get_heads());
                    if domain::transfer_vehicle(src, dst, &net, vin(*vehicle).as_str(), None, "u", now).is_err() {
                        prop_assert_eq!(src.get_heads(), hs);
                        prop_assert_eq!(dst.get_heads(), hd);
                    }
                }
                SiteOp::Arrive { site, device, vehicle } => {
                    let _ = domain::move_vehicle(
                        &mut sites[*site][*device], vin(*vehicle).as_str(), &VehicleAction::Arrive, "u", now,
                    );
                }
                SiteOp::Reserve { site, device, vehicle } => {
                    let a = VehicleAction::Reserve { customer: "c0".into() };
                    let _ = domain::move_vehicle(&mut sites[*site][*device], vin(*vehicle).as_str(), &a, "u", now);
                }
                SiteOp::Sync { site, device } => {
                    let mut other = sites[*site][1 - device].fork();
                    sites[*site][*device].merge(&mut other).unwrap();
                }
            }
        }
        // Each site's two devices sync, in either order.
        for devices in &mut sites {
            let (first, second) = if flip { (0, 1) } else { (1, 0) };
            let mut x = devices[second].fork();
            devices[first].merge(&mut x).unwrap();
            let mut y = devices[first].fork();
            devices[second].merge(&mut y).unwrap();
        }
        // Any device of either site sees the same list, whatever order the sites are given in.
        let reference = two_site_conflicts(&sites, 0, 0);
        for (a, b) in [(0, 1), (1, 0), (1, 1)] {
            prop_assert_eq!(&two_site_conflicts(&sites, a, b), &reference);
        }
        let reversed = conflicts::detect(&[(SITES[1], &sites[1][1]), (SITES[0], &sites[0][1])]);
        prop_assert_eq!(&reversed, &reference);

        // Resolve each two-site conflict at the first site listed, on device 0, then sync.
        for c in reference.iter().filter(|c| c.kind == ConflictKind::StockAtTwoSites) {
            let vin = c.records[0].strip_prefix("vehicle ").unwrap();
            let give_up = SITES.iter().position(|s| *s == c.values[0].site).unwrap();
            // A site may list several concurrent statuses; keep it at another site.
            let keep = c.values.iter().find(|v| v.site != c.values[0].site).unwrap().site.clone();
            conflicts::resolve_stock_elsewhere(&mut sites[give_up][0], vin, &keep, "boss", T0).unwrap();
        }
        for devices in &mut sites {
            let mut x = devices[0].fork();
            devices[1].merge(&mut x).unwrap();
        }
        for (a, b) in [(0, 0), (1, 1)] {
            let left: Vec<_> = two_site_conflicts(&sites, a, b)
                .into_iter()
                .filter(|c| c.kind == ConflictKind::StockAtTwoSites)
                .collect();
            prop_assert!(left.is_empty(), "{left:#?}");
        }
    }
}
