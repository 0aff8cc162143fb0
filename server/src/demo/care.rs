//! Customer care in each demo site: where customers live, who referred whom, follow-ups
//! planned (some due today), and complaints, one resolved and one open.

use automerge::AutoCommit;
use dealersync_core::domain::{self, ComplaintUpdate, DomainError, NewComplaint};
use dealersync_core::schema::{
    ComplaintStatus, CustomerArea, CustomerSource, CustomerStatus, Millis, SiteDocument, SiteKind,
};
use dealersync_core::time::DAY_MS;
use rand::Rng as _;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;

use super::catalogue::DemoSite;

/// Why customers were lost, and to whom, as consultants write it.
pub(super) const LOST_REASONS: &[&str] = &["价格", "等新款", "贷款未批", "选择竞品", "不急着买"];

/// Competitors customers went to.
pub(super) const COMPETITORS: &[&str] = &["比亚迪", "吉利", "长安", "大众"];

const COMPLAINTS: &[&str] = &["交车延迟", "售后保养等待太久", "赠品未兑现"];

/// Writes the care records of one site, after its customers and sales exist.
pub(super) fn seed_care(
    doc: &mut AutoCommit,
    site: &DemoSite,
    rng: &mut StdRng,
    now: Millis,
) -> Result<(), DomainError> {
    let snapshot = SiteDocument::read(&*doc)?;
    let mut customers: Vec<_> = snapshot
        .customers
        .values()
        .filter(|c| c.merged_into.is_none())
        .collect();
    customers.sort_by_key(|c| (c.created_at, c.id.clone()));
    if customers.is_empty() {
        return Ok(());
    }
    // Roadshows tour the prefectures; showrooms and agents sell mostly in the city.
    let prefecture_share = if site.kind == SiteKind::Roadshow {
        0.8
    } else {
        0.35
    };
    for (i, c) in customers.iter().enumerate() {
        let owner = c.consultant.as_deref().unwrap_or(site.consultants[0].0);
        let area = if rng.random_bool(prefecture_share) {
            CustomerArea::Prefecture
        } else {
            CustomerArea::City
        };
        domain::set_customer_area(doc, &c.id, Some(area), owner, c.created_at)?;
        // 以老带新: a referral names an earlier customer of the site.
        if c.source == CustomerSource::Referral && i > 0 {
            let referrer = customers[..i].choose(rng).expect("i > 0");
            domain::link_referral(doc, &c.id, &referrer.id, owner, c.created_at)?;
        }
        // Follow-ups: a month after delivery, and a few days around now for those
        // still deciding, so some are due today or overdue.
        let due = match c.status {
            CustomerStatus::Delivered => Some(c.created_at.max(now - 60 * DAY_MS) + 30 * DAY_MS),
            CustomerStatus::Negotiating | CustomerStatus::TestDrive => {
                Some(now + rng.random_range(-3..4) * DAY_MS)
            }
            _ => None,
        };
        if due.is_some() {
            domain::schedule_follow_up(doc, &c.id, due, owner, now - DAY_MS)?;
        }
    }
    // Two complaints at a busy site: one settled, one still open.
    if customers.len() >= 30 {
        let manager = site.consultants[0].0;
        for (k, resolved) in [(0usize, true), (1, false)] {
            let c = customers[customers.len() - 1 - k * 3];
            let at = now - (10 - 4 * k as i64) * DAY_MS;
            let new = NewComplaint {
                id: uuid::Builder::from_random_bytes(rng.random())
                    .into_uuid()
                    .to_string(),
                customer: c.id.clone(),
                summary: COMPLAINTS.choose(rng).copied().unwrap_or("交车延迟").into(),
                owner: Some(manager.into()),
                at,
            };
            let complaint = domain::open_complaint(doc, &new, manager, at)?;
            let update = if resolved {
                ComplaintUpdate {
                    status: Some(ComplaintStatus::Resolved),
                    resolution: Some("致歉并赠送一次保养".into()),
                    ..ComplaintUpdate::default()
                }
            } else {
                ComplaintUpdate {
                    status: Some(ComplaintStatus::InProgress),
                    ..ComplaintUpdate::default()
                }
            };
            domain::update_complaint(doc, &complaint.id, &update, manager, at + 2 * DAY_MS)?;
        }
    }
    Ok(())
}
