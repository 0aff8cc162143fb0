//! The demo network's fixed content: its sites and consultants, the model catalogue,
//! colours, and the names and numbers customers are drawn from.

use dealersync_core::schema::{CustomerSource, SiteChannel, SiteKind};

/// One site of the demo network.
pub(super) struct DemoSite {
    pub(super) id: &'static str,
    pub(super) name: &'static str,
    pub(super) kind: SiteKind,
    /// The sales channel the site sells through.
    pub(super) channel: SiteChannel,
    pub(super) parent: Option<&'static str>,
    /// Consultants: (user id, name).
    pub(super) consultants: &'static [(&'static str, &'static str)],
    pub(super) customers: usize,
    /// Vehicles in stock or on the way, beyond those sold to customers.
    pub(super) stock: usize,
}

pub(super) const SITES: &[DemoSite] = &[
    DemoSite {
        id: "hq",
        name: "总部销售部",
        kind: SiteKind::HeadOffice,
        channel: SiteChannel::Direct,
        parent: None,
        consultants: &[("zhou.min", "周敏")],
        customers: 0,
        stock: 0,
    },
    DemoSite {
        id: "dc-north",
        name: "北区配送中心",
        kind: SiteKind::DistributionCentre,
        channel: SiteChannel::FranchiseAgent,
        parent: Some("hq"),
        consultants: &[("sun.hao", "孙浩"), ("ma.li", "马莉")],
        customers: 15,
        stock: 30,
    },
    DemoSite {
        id: "dc-south",
        name: "南区配送中心",
        kind: SiteKind::DistributionCentre,
        channel: SiteChannel::GeneralAgent,
        parent: Some("hq"),
        consultants: &[("hu.jun", "胡军"), ("guo.jing", "郭静")],
        customers: 15,
        stock: 30,
    },
    DemoSite {
        id: "agent-n1",
        name: "城关区域代理",
        kind: SiteKind::Agent,
        channel: SiteChannel::FranchiseAgent,
        parent: Some("dc-north"),
        consultants: &[("he.yong", "何勇"), ("lin.xia", "林霞")],
        customers: 40,
        stock: 12,
    },
    DemoSite {
        id: "agent-n2",
        name: "河西特许经销店",
        kind: SiteKind::Agent,
        channel: SiteChannel::BrandStore,
        parent: Some("dc-north"),
        consultants: &[("luo.tao", "罗涛"), ("zheng.yan", "郑艳")],
        customers: 35,
        stock: 10,
    },
    DemoSite {
        id: "agent-s1",
        name: "江南品牌店",
        kind: SiteKind::Agent,
        channel: SiteChannel::GeneralAgent,
        parent: Some("dc-south"),
        consultants: &[("liang.chao", "梁超"), ("xie.juan", "谢娟")],
        customers: 40,
        stock: 12,
    },
    DemoSite {
        id: "showroom",
        name: "4S店展厅",
        kind: SiteKind::Showroom,
        channel: SiteChannel::Direct,
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
        channel: SiteChannel::Direct,
        parent: Some("dc-north"),
        consultants: &[("chen.jie", "陈杰"), ("yang.lei", "杨磊")],
        customers: 40,
        stock: 4,
    },
    DemoSite {
        id: "rs-2",
        name: "商场巡展二队",
        kind: SiteKind::Roadshow,
        channel: SiteChannel::Direct,
        parent: Some("dc-south"),
        consultants: &[("huang.li", "黄丽"), ("zhao.gang", "赵刚")],
        customers: 35,
        stock: 4,
    },
];

/// A model of the demo catalogue.
#[derive(Debug, Clone, Copy)]
pub(super) struct DemoModel {
    pub(super) code: &'static str,
    pub(super) name: &'static str,
    pub(super) trims: &'static [&'static str],
    /// Dealer cost in yuan.
    pub(super) cost_yuan: i64,
    /// List price in yuan.
    pub(super) list_yuan: i64,
    /// VIN positions 4-8 (vehicle descriptor section).
    pub(super) descriptor: &'static str,
}

pub(super) const MODELS: &[DemoModel] = &[
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

pub(super) const COLOURS: &[&str] = &["珍珠白", "曜石黑", "星空灰", "冰川银", "宝石蓝", "中国红"];

/// Common surnames, most frequent first (sampled with a bias to the front).
pub(super) const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁",
    "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金", "欧阳", "司马",
];

pub(super) const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "霞", "平", "刚", "桂英", "建华", "文", "辉", "玲", "华", "红", "鑫", "宇", "浩",
    "晨", "欣怡", "子涵", "梓萱", "俊杰", "志强", "海燕", "雪梅", "国强", "建国", "春梅", "婷婷",
    "晓东", "丽华", "宏伟", "嘉怡", "思远", "雨桐", "一鸣", "佳琪", "天佑", "秀兰", "德明", "玉兰",
    "家豪", "振华", "美玲", "立新", "凤英",
];

/// Mobile prefixes in use by the three carriers.
pub(super) const MOBILE_PREFIXES: &[&str] = &[
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153",
    "155", "156", "157", "158", "159", "166", "173", "177", "180", "181", "182", "183", "185",
    "186", "187", "188", "189", "191", "198", "199",
];

pub(super) const SOURCES: &[CustomerSource] = &[
    CustomerSource::WalkIn,
    CustomerSource::WalkIn,
    CustomerSource::Phone,
    CustomerSource::Referral,
    CustomerSource::Web,
    CustomerSource::Event,
];
