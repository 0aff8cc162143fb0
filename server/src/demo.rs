//! The demo network that `serve --demo` seeds into an empty data directory: a 4S
//! store's head office (`hq`), two distribution centres, three agents, a showroom and
//! two roadshow teams, a model catalogue with prices in fen, targets per site and month,
//! and a few hundred customers and vehicles with their histories over recent months.
//!
//! Everything is written through `core::domain`'s validated operations (plain
//! automerge values, scalar strings), exactly as a field device would write it: phone
//! numbers are valid Chinese mobiles stored as E.164, VINs carry a valid ISO 3779 check
//! digit, vehicles and customers move only along the lifecycles the domain allows. The
//! content is generated from a fixed seed, so two demo networks hold the same people
//! and vehicles (only document ids and times differ).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use automerge::AutoCommit;
use dealersync_core::access::Role;
use dealersync_core::domain::{
    self, CheckDigitPolicy, DomainError, NewCustomer, NewEvent, NewVehicle, VehicleAction, Vin,
};
use dealersync_core::schema::{
    CustomerSource, CustomerStatus, EventKind, Millis, NetworkDocument, SiteHeader, SiteKind,
    Target, VehicleModel, VehicleStatus, month_key,
};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use rand::{Rng as _, SeedableRng as _};

use crate::api::{AdminError, issue_recorded};
use crate::auth::{Authenticator, TokenRequest};
use crate::registry::{DocumentWriter, Registry, RegistryError};

/// Lifetime of the demo tokens.
pub const DEMO_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

const DAY: Millis = 86_400_000;

/// Why the demo could not be seeded.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The data directory already has sites; the demo only seeds an empty network.
    #[error("the data directory already has {0} sites; the demo seeds only an empty one")]
    NotEmpty(usize),
    /// The data directory holds a network that is not the demo's (a demo user's site
    /// is missing), so no demo tokens can be issued for it.
    #[error(
        "the data directory holds another network (no site {0:?}); use an empty --data-dir for the demo"
    )]
    NotDemo(String),
    /// The registry or a document write failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Issuing a demo token failed.
    #[error(transparent)]
    Admin(#[from] AdminError),
}

impl From<DomainError> for DemoError {
    fn from(e: DomainError) -> Self {
        DemoError::Registry(RegistryError::Domain(e))
    }
}

/// A token printed for one role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoToken {
    /// The role.
    pub role: Role,
    /// The user.
    pub sub: String,
    /// The user's site.
    pub site: String,
    /// The JWT.
    pub token: String,
}

/// What was seeded, and what to tell the person who started the demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSummary {
    /// Whether this run seeded the network (false: it was there from an earlier run,
    /// and the counts below are zero).
    pub seeded: bool,
    /// Sites created.
    pub sites: usize,
    /// Customers across all sites.
    pub customers: usize,
    /// Vehicles across all sites.
    pub vehicles: usize,
    /// One token per role: consultant, manager, head office, admin.
    pub tokens: Vec<DemoToken>,
}

impl DemoSummary {
    /// The text `serve --demo` prints: the tokens and the URLs to use them with.
    /// `base` is the server's HTTP base URL, e.g. `http://127.0.0.1:3030`.
    pub fn banner(&self, base: &str) -> String {
        let base = base.trim_end_matches('/');
        let ws = base
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1);
        let mut out = String::new();
        if self.seeded {
            let _ = writeln!(
                out,
                "dealersync demo network seeded: {} sites, {} customers, {} vehicles",
                self.sites, self.customers, self.vehicles
            );
        } else {
            let _ = writeln!(
                out,
                "dealersync demo network (seeded earlier in this data directory)"
            );
        }
        let _ = writeln!(out);
        for t in &self.tokens {
            let _ = writeln!(out, "{} ({} at {}):", t.role, t.sub, t.site);
            let _ = writeln!(out, "  {}", t.token);
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Sync (automerge-repo WebSocket): {ws}/sync?token=<token>"
        );
        let _ = writeln!(
            out,
            "Sites you may read:  curl -H 'Authorization: Bearer <token>' {base}/api/sites"
        );
        let _ = writeln!(out, "Network document:    {base}/api/network");
        let _ = writeln!(out, "Health and metrics:  {base}/healthz  {base}/metrics");
        out
    }
}

/// One site of the demo network.
struct DemoSite {
    id: &'static str,
    name: &'static str,
    kind: SiteKind,
    parent: Option<&'static str>,
    /// Consultants: (user id, name).
    consultants: &'static [(&'static str, &'static str)],
    customers: usize,
    /// Vehicles in stock or on the way, beyond those sold to customers.
    stock: usize,
}

const SITES: &[DemoSite] = &[
    DemoSite {
        id: "hq",
        name: "总部销售部",
        kind: SiteKind::HeadOffice,
        parent: None,
        consultants: &[("zhou.min", "周敏")],
        customers: 0,
        stock: 0,
    },
    DemoSite {
        id: "dc-north",
        name: "北区配送中心",
        kind: SiteKind::DistributionCentre,
        parent: Some("hq"),
        consultants: &[("sun.hao", "孙浩"), ("ma.li", "马莉")],
        customers: 15,
        stock: 30,
    },
    DemoSite {
        id: "dc-south",
        name: "南区配送中心",
        kind: SiteKind::DistributionCentre,
        parent: Some("hq"),
        consultants: &[("hu.jun", "胡军"), ("guo.jing", "郭静")],
        customers: 15,
        stock: 30,
    },
    DemoSite {
        id: "agent-n1",
        name: "城关区域代理",
        kind: SiteKind::Agent,
        parent: Some("dc-north"),
        consultants: &[("he.yong", "何勇"), ("lin.xia", "林霞")],
        customers: 40,
        stock: 12,
    },
    DemoSite {
        id: "agent-n2",
        name: "河西特许经销店",
        kind: SiteKind::Agent,
        parent: Some("dc-north"),
        consultants: &[("luo.tao", "罗涛"), ("zheng.yan", "郑艳")],
        customers: 35,
        stock: 10,
    },
    DemoSite {
        id: "agent-s1",
        name: "江南品牌店",
        kind: SiteKind::Agent,
        parent: Some("dc-south"),
        consultants: &[("liang.chao", "梁超"), ("xie.juan", "谢娟")],
        customers: 40,
        stock: 12,
    },
    DemoSite {
        id: "showroom",
        name: "4S店展厅",
        kind: SiteKind::Showroom,
        parent: Some("hq"),
        consultants: &[
            ("wang.fang", "王芳"),
            ("li.qiang", "李强"),
            ("zhang.wei", "张伟"),
            ("liu.yang", "刘洋"),
        ],
        customers: 80,
        stock: 20,
    },
    DemoSite {
        id: "rs-1",
        name: "乡镇巡展一队",
        kind: SiteKind::Roadshow,
        parent: Some("dc-north"),
        consultants: &[("chen.jie", "陈杰"), ("yang.lei", "杨磊")],
        customers: 40,
        stock: 4,
    },
    DemoSite {
        id: "rs-2",
        name: "商场巡展二队",
        kind: SiteKind::Roadshow,
        parent: Some("dc-south"),
        consultants: &[("huang.li", "黄丽"), ("zhao.gang", "赵刚")],
        customers: 35,
        stock: 4,
    },
];

/// A model of the demo catalogue.
#[derive(Debug, Clone, Copy)]
struct DemoModel {
    code: &'static str,
    name: &'static str,
    trims: &'static [&'static str],
    /// Dealer cost in yuan.
    cost_yuan: i64,
    /// List price in yuan.
    list_yuan: i64,
    /// VIN positions 4-8 (vehicle descriptor section).
    descriptor: &'static str,
}

const MODELS: &[DemoModel] = &[
    DemoModel {
        code: "SDN-A",
        name: "悦行 轿车",
        trims: &["舒适版", "豪华版"],
        cost_yuan: 98_000,
        list_yuan: 109_800,
        descriptor: "SA1A5",
    },
    DemoModel {
        code: "SDN-B",
        name: "悦行 Pro 轿车",
        trims: &["豪华版", "旗舰版"],
        cost_yuan: 132_000,
        list_yuan: 149_800,
        descriptor: "SB2A5",
    },
    DemoModel {
        code: "SUV-C",
        name: "远途 紧凑型SUV",
        trims: &["舒适版", "豪华版", "四驱版"],
        cost_yuan: 141_000,
        list_yuan: 159_800,
        descriptor: "UC3B7",
    },
    DemoModel {
        code: "SUV-D",
        name: "远途 Max 中型SUV",
        trims: &["豪华版", "旗舰版"],
        cost_yuan: 205_000,
        list_yuan: 229_800,
        descriptor: "UD4B7",
    },
    DemoModel {
        code: "MPV-E",
        name: "家和 MPV",
        trims: &["商务版", "豪华版"],
        cost_yuan: 176_000,
        list_yuan: 196_800,
        descriptor: "ME5C6",
    },
    DemoModel {
        code: "EV-F",
        name: "青风 纯电",
        trims: &["标准续航", "长续航"],
        cost_yuan: 118_000,
        list_yuan: 135_800,
        descriptor: "EF6E1",
    },
];

const COLOURS: &[&str] = &["珍珠白", "曜石黑", "星空灰", "冰川银", "宝石蓝", "中国红"];

/// Common surnames, most frequent first (sampled with a bias to the front).
const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁",
    "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金", "欧阳", "司马",
];

const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "霞", "平", "刚", "桂英", "建华", "文", "辉", "玲", "华", "红", "鑫", "宇", "浩",
    "晨", "欣怡", "子涵", "梓萱", "俊杰", "志强", "海燕", "雪梅", "国强", "建国", "春梅", "婷婷",
    "晓东", "丽华", "宏伟", "嘉怡", "思远", "雨桐", "一鸣", "佳琪", "天佑", "秀兰", "德明", "玉兰",
    "家豪", "振华", "美玲", "立新", "凤英",
];

/// Mobile prefixes in use by the three carriers.
const MOBILE_PREFIXES: &[&str] = &[
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153",
    "155", "156", "157", "158", "159", "166", "173", "177", "180", "181", "182", "183", "185",
    "186", "187", "188", "189", "191", "198", "199",
];

const SOURCES: &[CustomerSource] = &[
    CustomerSource::WalkIn,
    CustomerSource::WalkIn,
    CustomerSource::Phone,
    CustomerSource::Referral,
    CustomerSource::Web,
    CustomerSource::Event,
];

/// Seeds the demo network into an empty registry and returns a token per role.
///
/// `docs` writes the documents (a [`crate::registry::StoreDocuments`] before the relay
/// starts); `now` anchors the generated history (events spread over the six months
/// before it).
pub fn seed_demo(
    registry: &Registry,
    docs: &dyn DocumentWriter,
    auth: &Authenticator,
    now: Millis,
) -> Result<DemoSummary, DemoError> {
    let existing = registry.sites()?.len();
    if existing > 0 {
        return Err(DemoError::NotEmpty(existing));
    }
    let mut rng = StdRng::seed_from_u64(0x4D45_4D4F);
    for s in SITES {
        registry.create_site(
            docs,
            SiteHeader {
                id: s.id.into(),
                name: s.name.into(),
                kind: s.kind,
                parent: s.parent.map(String::from),
            },
        )?;
    }
    let network_id = registry
        .network_document()?
        .ok_or_else(|| RegistryError::Invalid("the network document was not created".into()))?;

    // The catalogue, commercial policy and site targets, as head office writes them.
    let mut net_snapshot = NetworkDocument::new();
    docs.edit(network_id, &mut |doc| {
        seed_network(doc, now)?;
        net_snapshot = NetworkDocument::read(doc).map_err(|e| RegistryError::Document {
            doc: network_id,
            reason: e.to_string(),
        })?;
        Ok(())
    })?;

    let mut customers = 0;
    let mut vehicles = 0;
    let mut serial = 100_000u32;
    for (index, s) in SITES.iter().enumerate() {
        let site = registry.site(s.id)?;
        let mut site_rng = StdRng::seed_from_u64(rng.random::<u64>() ^ index as u64);
        docs.edit(site.document_id, &mut |doc| {
            let (c, v) = seed_site(doc, s, &net_snapshot, &mut site_rng, &mut serial, now)?;
            customers += c;
            vehicles += v;
            Ok(())
        })?;
    }

    let tokens = demo_tokens(registry, auth)?;
    tracing::info!(
        sites = SITES.len(),
        customers,
        vehicles,
        "seeded the demo network"
    );
    Ok(DemoSummary {
        seeded: true,
        sites: SITES.len(),
        customers,
        vehicles,
        tokens,
    })
}

/// What `serve --demo` does: seeds an empty data directory, or, when the demo network
/// is already there from an earlier run, only issues fresh tokens for it.
pub fn ensure_demo(
    registry: &Registry,
    docs: &dyn DocumentWriter,
    auth: &Authenticator,
    now: Millis,
) -> Result<DemoSummary, DemoError> {
    if registry.sites()?.is_empty() {
        return seed_demo(registry, docs, auth, now);
    }
    Ok(DemoSummary {
        seeded: false,
        sites: registry.sites()?.len(),
        customers: 0,
        vehicles: 0,
        tokens: demo_tokens(registry, auth)?,
    })
}

/// Issues a fresh token for each demo user: consultant `wang.fang` at `showroom`,
/// manager `sun.hao` at `dc-north`, head office `zhou.min` and `admin` at `hq`.
pub fn demo_tokens(registry: &Registry, auth: &Authenticator) -> Result<Vec<DemoToken>, DemoError> {
    let mut tokens = Vec::new();
    for (role, sub, site) in [
        (Role::Consultant, "wang.fang", "showroom"),
        (Role::Manager, "sun.hao", "dc-north"),
        (Role::HeadOffice, "zhou.min", "hq"),
        (Role::Admin, "admin", "hq"),
    ] {
        match registry.site(site) {
            Ok(_) => {}
            Err(RegistryError::UnknownSite(_)) => return Err(DemoError::NotDemo(site.into())),
            Err(e) => return Err(e.into()),
        }
        let issued = issue_recorded(
            auth,
            registry,
            &TokenRequest {
                sub: sub.into(),
                role,
                site: site.into(),
                device: None,
                ttl: DEMO_TOKEN_TTL,
            },
        )?;
        tokens.push(DemoToken {
            role,
            sub: sub.into(),
            site: site.into(),
            token: issued.token,
        });
    }
    Ok(tokens)
}

fn seed_network(doc: &mut AutoCommit, now: Millis) -> Result<(), RegistryError> {
    let by = "zhou.min";
    for m in MODELS {
        domain::put_model(
            doc,
            &VehicleModel {
                code: m.code.into(),
                name: m.name.into(),
                trims: m.trims.iter().map(|t| t.to_string()).collect(),
                cost: m.cost_yuan * 100,
                list_price: m.list_yuan * 100,
            },
            by,
            now,
        )?;
    }
    // Discount limits per role (fen): beyond these a manager approves.
    let limits: BTreeMap<String, i64> = [
        ("consultant", 300_000),
        ("manager", 1_000_000),
        ("head_office", 3_000_000),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    autosurgeon::reconcile_prop(doc, automerge::ROOT, "discountLimits", &limits)
        .map_err(|e| RegistryError::Invalid(format!("discount limits: {e}")))?;
    doc.commit();

    let months = recent_months(now, 6, 1);
    for s in SITES.iter().filter(|s| s.kind != SiteKind::HeadOffice) {
        // Monthly units in proportion to the site's size, revenue at ~150k yuan a car.
        let units = (s.customers as i64 / 6).max(3);
        for m in &months {
            domain::set_site_target(
                doc,
                s.id,
                m,
                &Target {
                    units,
                    revenue: units * 15_000_000,
                    visits: Some(units * 12),
                    calls: Some(units * 20),
                    test_drives: Some(units * 4),
                },
                by,
                now,
            )?;
        }
        let year = &month_key(now)[..4];
        domain::set_site_target(
            doc,
            s.id,
            year,
            &Target {
                units: units * 12,
                revenue: units * 12 * 15_000_000,
                ..Target::default()
            },
            by,
            now,
        )?;
    }
    Ok(())
}

/// Month keys from `back` months before `now` to `ahead` months after, in CST.
fn recent_months(now: Millis, back: i64, ahead: i64) -> Vec<String> {
    let key = month_key(now);
    let (y, m): (i64, i64) = (
        key[..4].parse().expect("month_key is YYYY-MM"),
        key[5..].parse().expect("month_key is YYYY-MM"),
    );
    let index = y * 12 + (m - 1);
    (index - back..=index + ahead)
        .map(|i| format!("{:04}-{:02}", i.div_euclid(12), i.rem_euclid(12) + 1))
        .collect()
}

/// A full Chinese name: a surname (biased to the common ones) and a given name.
pub fn chinese_name(rng: &mut StdRng) -> String {
    let i = (rng.random::<f64>().powi(2) * SURNAMES.len() as f64) as usize;
    let surname = SURNAMES[i.min(SURNAMES.len() - 1)];
    let given = GIVEN.choose(rng).copied().unwrap_or("伟");
    format!("{surname}{given}")
}

/// A valid Chinese mobile number, written the way people type it (`138 1234 5678`).
pub fn mobile_number(rng: &mut StdRng) -> String {
    let prefix = MOBILE_PREFIXES.choose(rng).copied().unwrap_or("138");
    let rest: u32 = rng.random_range(0..100_000_000);
    let rest = format!("{rest:08}");
    format!("{prefix} {} {}", &rest[..4], &rest[4..])
}

/// A VIN for a demo vehicle: world manufacturer `LDS` (a Chinese `L` prefix), the
/// model's descriptor, the ISO 3779 check digit, model year `T` (2026), plant and a
/// six-digit serial.
pub fn demo_vin(descriptor: &str, plant: char, serial: u32) -> Vin {
    let mut vin = format!("LDS{descriptor}0T{plant}{serial:06}");
    let check = domain::check_digit(&vin);
    vin.replace_range(8..9, &check.to_string());
    Vin::parse(&vin, CheckDigitPolicy::Enforce).expect("demo VINs are built valid")
}

fn seed_site(
    doc: &mut AutoCommit,
    site: &DemoSite,
    net: &NetworkDocument,
    rng: &mut StdRng,
    serial: &mut u32,
    now: Millis,
) -> Result<(usize, usize), DomainError> {
    let plant = ['A', 'B', 'C', 'D', 'E'][rng.random_range(0..5)];
    let consultants: Vec<&str> = site.consultants.iter().map(|(id, _)| *id).collect();
    let mut new_vehicle = |rng: &mut StdRng, model: &str| -> NewVehicle {
        let m = MODELS
            .iter()
            .find(|m| m.code == model)
            .copied()
            .unwrap_or(MODELS[0]);
        *serial += 1;
        NewVehicle {
            vin: demo_vin(m.descriptor, plant, *serial),
            model: m.code.into(),
            trim: m.trims.choose(rng).copied().unwrap_or("舒适版").into(),
            colour: COLOURS.choose(rng).copied().unwrap_or("珍珠白").into(),
            cost: None,
            list_price: None,
            status: VehicleStatus::InStock,
            eta: None,
        }
    };
    let mut vehicles = 0;

    for n in 0..site.customers {
        let consultant = consultants[n % consultants.len()];
        let created = now - rng.random_range(2..180) * DAY - rng.random_range(0..10) * 3_600_000;
        let model = MODELS.choose(rng).map(|m| m.code).unwrap_or("SDN-A");
        let source = if site.kind == SiteKind::Roadshow {
            CustomerSource::Roadshow
        } else {
            *SOURCES.choose(rng).unwrap_or(&CustomerSource::WalkIn)
        };
        let id = uuid::Builder::from_random_bytes(rng.random())
            .into_uuid()
            .to_string();
        domain::add_customer(
            doc,
            net,
            &NewCustomer {
                id: id.clone(),
                name: chinese_name(rng),
                phone: mobile_number(rng),
                source,
                model_of_interest: Some(model.into()),
                consultant: Some(consultant.into()),
            },
            consultant,
            created,
        )?;
        let first = if source == CustomerSource::Phone {
            EventKind::Call
        } else {
            EventKind::Visit
        };
        let mut t = created;
        domain::record_event(doc, &id, &NewEvent::new(first, t), consultant, t)?;
        // How far down the funnel this customer got.
        let stage: u32 = rng.random_range(0..100);
        let list_price = net.models.get(model).map(|m| m.list_price).unwrap_or(0);
        let step = |rng: &mut StdRng, t: &mut Millis| {
            *t = (*t + rng.random_range(1..6) * DAY).min(now - 3_600_000);
        };
        if stage < 12 {
            step(rng, &mut t);
            domain::record_event(
                doc,
                &id,
                &NewEvent {
                    note: Some("已选择其他品牌".into()),
                    ..NewEvent::new(EventKind::FollowUp, t)
                },
                consultant,
                t,
            )?;
            domain::set_customer_status(doc, &id, CustomerStatus::Lost, consultant, t)?;
            continue;
        }
        if stage < 35 {
            step(rng, &mut t);
            domain::record_event(doc, &id, &NewEvent::new(EventKind::Call, t), consultant, t)?;
            continue;
        }
        step(rng, &mut t);
        domain::record_event(
            doc,
            &id,
            &NewEvent::new(EventKind::TestDrive, t),
            consultant,
            t,
        )?;
        domain::set_customer_status(doc, &id, CustomerStatus::TestDrive, consultant, t)?;
        if stage < 55 {
            continue;
        }
        step(rng, &mut t);
        let discount = rng.random_range(0..8) * 100_000;
        domain::record_event(
            doc,
            &id,
            &NewEvent {
                amount: Some(list_price - discount),
                ..NewEvent::new(EventKind::Quote, t)
            },
            consultant,
            t,
        )?;
        domain::set_customer_status(doc, &id, CustomerStatus::Negotiating, consultant, t)?;
        if stage < 70 {
            continue;
        }
        // Ordered: a vehicle from stock is reserved and sold to the customer.
        step(rng, &mut t);
        let mut v = new_vehicle(rng, model);
        let vin = v.vin.clone();
        let arrived = t - rng.random_range(5..60) * DAY;
        v.status = VehicleStatus::InStock;
        domain::receive_vehicle(doc, net, &v, consultant, arrived)?;
        vehicles += 1;
        domain::move_vehicle(
            doc,
            vin.as_str(),
            &VehicleAction::Reserve {
                customer: id.clone(),
            },
            consultant,
            t,
        )?;
        domain::record_event(
            doc,
            &id,
            &NewEvent {
                amount: Some(list_price - discount),
                vin: Some(vin.clone()),
                ..NewEvent::new(EventKind::Order, t)
            },
            consultant,
            t,
        )?;
        domain::set_customer_status(doc, &id, CustomerStatus::Ordered, consultant, t)?;
        domain::move_vehicle(doc, vin.as_str(), &VehicleAction::Sell, consultant, t)?;
        if stage < 85 {
            continue;
        }
        step(rng, &mut t);
        domain::move_vehicle(doc, vin.as_str(), &VehicleAction::Deliver, consultant, t)?;
        domain::record_event(
            doc,
            &id,
            &NewEvent {
                vin: Some(vin.clone()),
                ..NewEvent::new(EventKind::Delivery, t)
            },
            consultant,
            t,
        )?;
        domain::set_customer_status(doc, &id, CustomerStatus::Delivered, consultant, t)?;
        if rng.random_bool(0.5) && t + 7 * DAY < now {
            let at = t + 7 * DAY;
            domain::record_event(
                doc,
                &id,
                &NewEvent {
                    score: Some(rng.random_range(3..=5)),
                    ..NewEvent::new(EventKind::Survey, at)
                },
                consultant,
                at,
            )?;
        }
    }

    // Stock on the books: mostly in stock (some slow movers), some on the way.
    for _ in 0..site.stock {
        let model = MODELS.choose(rng).map(|m| m.code).unwrap_or("SDN-A");
        let mut v = new_vehicle(rng, model);
        let by = consultants[0];
        let roll: u32 = rng.random_range(0..100);
        if roll < 15 {
            v.status = VehicleStatus::Ordered;
            v.eta = Some(now + rng.random_range(20..45) * DAY);
            domain::receive_vehicle(doc, net, &v, by, now - rng.random_range(1..10) * DAY)?;
        } else if roll < 30 {
            v.status = VehicleStatus::InTransit;
            v.eta = Some(now + rng.random_range(2..15) * DAY);
            domain::receive_vehicle(doc, net, &v, by, now - rng.random_range(5..20) * DAY)?;
        } else {
            // Arrival up to four months ago: the oldest are the slow movers.
            domain::receive_vehicle(doc, net, &v, by, now - rng.random_range(3..120) * DAY)?;
        }
        vehicles += 1;
    }

    // Forecasts for next month (agents report to their centre, centres to head office)
    // and consultant targets for this month.
    if matches!(site.kind, SiteKind::Agent | SiteKind::DistributionCentre) {
        let next = month_key(now + 31 * DAY);
        for m in MODELS {
            let q = rng.random_range(1..12);
            domain::set_forecast(doc, net, &next, m.code, q, consultants[0], now)?;
        }
    }
    let this_month = month_key(now);
    for c in &consultants {
        domain::set_consultant_target(
            doc,
            c,
            &this_month,
            &Target {
                units: rng.random_range(4..10),
                revenue: rng.random_range(60..150) * 1_000_000,
                visits: Some(rng.random_range(40..90)),
                calls: Some(rng.random_range(80..160)),
                test_drives: Some(rng.random_range(10..30)),
            },
            "zhou.min",
            now,
        )?;
    }
    Ok((site.customers, vehicles))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_vins_carry_a_valid_check_digit() {
        for m in MODELS {
            for serial in [1, 99_999, 123_456] {
                let vin = demo_vin(m.descriptor, 'A', serial);
                assert_eq!(vin.as_str().len(), 17);
                assert_eq!(
                    vin.as_str().as_bytes()[8] as char,
                    domain::check_digit(vin.as_str())
                );
            }
        }
        // A known VIN from ISO 3779's annex-style examples: 1M8GDM9AXKP042788.
        assert_eq!(domain::check_digit("1M8GDM9A_KP042788"), 'X');
    }

    #[test]
    fn names_and_phones_look_chinese_and_validate() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..500 {
            let name = chinese_name(&mut rng);
            let chars = name.chars().count();
            assert!((2..=4).contains(&chars), "{name}");
            assert!(name.chars().all(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)));
            let phone = mobile_number(&mut rng);
            let e164 = domain::normalise_phone(&phone).unwrap();
            assert!(
                e164.starts_with("+861") && e164.len() == 14,
                "{phone} {e164}"
            );
        }
    }

    #[test]
    fn recent_months_are_consecutive() {
        // 2026-03-15 12:00 CST.
        let now = 1_773_547_200_000;
        let months = recent_months(now, 6, 1);
        assert_eq!(months.first().unwrap(), "2025-09");
        assert_eq!(months.last().unwrap(), "2026-04");
        assert_eq!(months.len(), 8, "{months:?}");
    }
}
