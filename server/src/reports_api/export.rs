//! Reports as spreadsheets: CSV (every cell through `core::spreadsheet::neutralise`,
//! so no cell opens as a formula) and XLSX (rust_xlsxwriter: one sheet per level,
//! headers in Chinese by default or English, column widths, yuan with two decimals,
//! rates as percentages, CST times). Both are made from the report's flat rows, the
//! same rows the CLI prints.

use axum::http::header;
use axum::response::{IntoResponse, Json, Response};
use dealersync_core::spreadsheet::neutralise;
use dealersync_core::time::cst_minute;
use rust_xlsxwriter::{Format, FormatAlign, Workbook};
use serde_json::{Map, Value};

use super::{Computed, internal};
use crate::api::error::ApiError;

/// Header language of a spreadsheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// 中文 (the default: the people reading them work in Chinese).
    Zh,
    /// English.
    En,
}

/// What a report is answered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// The report's JSON.
    Json,
    /// Flat rows as CSV.
    Csv(Lang),
    /// A workbook, one sheet per level.
    Xlsx(Lang),
}

impl ReportFormat {
    /// `?format=` and `?lang=`.
    pub fn parse(format: Option<&str>, lang: Option<&str>) -> Result<ReportFormat, ApiError> {
        let lang = match lang {
            None | Some("zh") | Some("zh-CN") => Lang::Zh,
            Some("en") => Lang::En,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "unknown lang {:?}; use zh or en",
                    crate::telemetry::clip(other)
                )));
            }
        };
        match format {
            None | Some("json") => Ok(ReportFormat::Json),
            Some("csv") => Ok(ReportFormat::Csv(lang)),
            Some("xlsx") => Ok(ReportFormat::Xlsx(lang)),
            Some(other) => Err(ApiError::bad_request(format!(
                "unknown format {:?}; use json, csv or xlsx",
                crate::telemetry::clip(other)
            ))),
        }
    }
}

/// How a column's values are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    /// Integer fen, shown as yuan with two decimals.
    Money,
    /// A fraction, shown as a percentage.
    Rate,
    /// UTC milliseconds, shown as CST `YYYY-MM-DD HH:MM`.
    Time,
}

/// Column name → (中文, English, kind). Columns not listed keep their JSON name.
const COLUMNS: &[(&str, &str, &str, Kind)] = &[
    ("level", "层级", "Level", Kind::Plain),
    ("rank", "名次", "Rank", Kind::Plain),
    ("id", "编号", "Id", Kind::Plain),
    ("name", "名称", "Name", Kind::Plain),
    ("site", "网点", "Site", Kind::Plain),
    ("siteName", "网点名称", "Site name", Kind::Plain),
    ("kind", "类型", "Kind", Kind::Plain),
    ("channel", "渠道", "Channel", Kind::Plain),
    ("parent", "上级", "Parent", Kind::Plain),
    ("depth", "层深", "Depth", Kind::Plain),
    ("consultant", "顾问", "Consultant", Kind::Plain),
    ("available", "数据可用", "Available", Kind::Plain),
    ("note", "说明", "Note", Kind::Plain),
    (
        "sitesNotAvailable",
        "不可用网点数",
        "Sites not available",
        Kind::Plain,
    ),
    ("model", "车型", "Model", Kind::Plain),
    ("modelName", "车型名称", "Model name", Kind::Plain),
    ("status", "状态", "Status", Kind::Plain),
    ("count", "数量", "Count", Kind::Plain),
    ("costValue", "成本金额(元)", "Cost value (CNY)", Kind::Money),
    ("vin", "车架号", "VIN", Kind::Plain),
    ("arrivedAt", "到店时间", "Arrived", Kind::Time),
    ("daysInStock", "库龄(天)", "Days in stock", Kind::Plain),
    ("cost", "成本(元)", "Cost (CNY)", Kind::Money),
    ("slowMover", "滞销", "Slow mover", Kind::Plain),
    ("eta", "预计到达", "ETA", Kind::Time),
    ("etaDate", "预计到达日", "ETA date", Kind::Plain),
    ("transferFrom", "调出网点", "Transfer from", Kind::Plain),
    ("overdue", "逾期", "Overdue", Kind::Plain),
    ("own", "本网点预测", "Own forecast", Kind::Plain),
    ("total", "合计", "Total", Kind::Plain),
    ("forecast", "预测", "Forecast", Kind::Plain),
    ("safetyStock", "安全库存", "Safety stock", Kind::Plain),
    ("inStock", "在库", "In stock", Kind::Plain),
    ("inTransit", "在途", "In transit", Kind::Plain),
    ("onOrder", "已订购", "On order", Kind::Plain),
    ("quantity", "建议订购", "Quantity to order", Kind::Plain),
    ("unitCost", "单位成本(元)", "Unit cost (CNY)", Kind::Money),
    ("capital", "占用资金(元)", "Capital (CNY)", Kind::Money),
    ("slowMovers", "滞销车辆", "Slow movers", Kind::Plain),
    (
        "lastMonthSales",
        "上月销量",
        "Last month's sales",
        Kind::Plain,
    ),
    ("submittedAt", "提交时间", "Submitted", Kind::Time),
    ("lastChangedAt", "最后修改", "Last changed", Kind::Time),
    ("models", "车型数", "Models", Kind::Plain),
    ("submittedUnits", "提交台数", "Submitted units", Kind::Plain),
    (
        "adjustedModels",
        "调整车型数",
        "Adjusted models",
        Kind::Plain,
    ),
    ("units", "销量(台)", "Units", Kind::Plain),
    ("visits", "来店", "Visits", Kind::Plain),
    ("calls", "电话", "Calls", Kind::Plain),
    ("testDrives", "试驾", "Test drives", Kind::Plain),
    (
        "firstVisitors",
        "首次来店客户",
        "First visitors",
        Kind::Plain,
    ),
    (
        "firstVisitorsTestDriven",
        "其中试驾",
        "Of them test-driven",
        Kind::Plain,
    ),
    ("testDriveRate", "试驾率", "Test-drive rate", Kind::Rate),
    ("orders", "订单", "Orders", Kind::Plain),
    (
        "firstVisitorsOrdered",
        "其中成交",
        "Of them ordered",
        Kind::Plain,
    ),
    ("closingRate", "成交率", "Closing rate", Kind::Rate),
    ("roadshowLeads", "巡展线索", "Roadshow leads", Kind::Plain),
    (
        "roadshowLeadsOrdered",
        "巡展成交",
        "Roadshow leads ordered",
        Kind::Plain,
    ),
    (
        "roadshowClosingRatio",
        "巡展成交率",
        "Roadshow closing ratio",
        Kind::Rate,
    ),
    ("deliveries", "交车(台)", "Deliveries", Kind::Plain),
    ("revenue", "销售额(元)", "Revenue (CNY)", Kind::Money),
    ("consultants", "顾问人数", "Consultants", Kind::Plain),
    (
        "unitsPerConsultant",
        "人均台数",
        "Units per consultant",
        Kind::Plain,
    ),
    ("targetUnits", "目标台数", "Target units", Kind::Plain),
    (
        "targetRevenue",
        "目标销售额(元)",
        "Target revenue (CNY)",
        Kind::Money,
    ),
    (
        "unitsAchievement",
        "台数达成率",
        "Units achievement",
        Kind::Rate,
    ),
    (
        "revenueAchievement",
        "销售额达成率",
        "Revenue achievement",
        Kind::Rate,
    ),
    ("targetVisits", "目标来店", "Target visits", Kind::Plain),
    (
        "visitsAchievement",
        "来店达成率",
        "Visits achievement",
        Kind::Rate,
    ),
    ("targetCalls", "目标电话", "Target calls", Kind::Plain),
    (
        "callsAchievement",
        "电话达成率",
        "Calls achievement",
        Kind::Rate,
    ),
    (
        "targetTestDrives",
        "目标试驾",
        "Target test drives",
        Kind::Plain,
    ),
    (
        "testDrivesAchievement",
        "试驾达成率",
        "Test-drive achievement",
        Kind::Rate,
    ),
    ("records", "记录", "Records", Kind::Plain),
    ("sites", "网点", "Sites", Kind::Plain),
    ("values", "冲突值数", "Competing values", Kind::Plain),
    ("summary", "摘要", "Summary", Kind::Plain),
];

fn column(name: &str) -> (&str, &str, Kind) {
    COLUMNS
        .iter()
        .find(|c| c.0 == name)
        .map_or((name, name, Kind::Plain), |c| (c.1, c.2, c.3))
}

/// The header of column `name` in `lang`.
pub fn header(name: &str, lang: Lang) -> &str {
    let (zh, en, _) = column(name);
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

/// Sheet name of a row level, or of the report when its rows have no level.
fn sheet_name(level: &str, lang: Lang) -> String {
    let names: &[(&str, &str, &str)] = &[
        ("region", "区域", "Regions"),
        ("site", "网点", "Sites"),
        ("team", "团队", "Teams"),
        ("consultant", "顾问", "Consultants"),
        ("stock", "库存", "Stock"),
        ("ageing", "库龄", "Ageing"),
        ("pipeline", "在途", "Pipeline"),
        ("forecast", "预测汇总", "Forecast"),
        ("forecast-submissions", "预测提交", "Forecast submissions"),
        ("order-plan", "订货计划", "Order plan"),
        ("kpi", "关键指标", "KPIs"),
        ("board", "销售看板", "Sales board"),
        ("conflicts", "冲突", "Conflicts"),
        ("not-available", "不可用网点", "Not available"),
    ];
    names.iter().find(|n| n.0 == level).map_or_else(
        || level.chars().take(31).collect(),
        |n| match lang {
            Lang::Zh => n.1.to_string(),
            Lang::En => n.2.to_string(),
        },
    )
}

/// The answer in the asked format.
pub fn respond(kind: &str, c: Computed, format: ReportFormat) -> Result<Response, ApiError> {
    match format {
        ReportFormat::Json => Ok(Json(c.json).into_response()),
        ReportFormat::Csv(lang) => {
            let rows = with_unavailable(&c, lang);
            csv_bytes(&rows, lang).map(|b| {
                (
                    [
                        (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                        (header::CONTENT_DISPOSITION, disposition(kind, "csv")),
                    ],
                    b,
                )
                    .into_response()
            })
        }
        ReportFormat::Xlsx(lang) => xlsx_bytes(kind, &c, lang).map(|b| {
            (
                [
                    (
                        header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                            .to_string(),
                    ),
                    (header::CONTENT_DISPOSITION, disposition(kind, "xlsx")),
                ],
                b,
            )
                .into_response()
        }),
    }
}

fn disposition(kind: &str, ext: &str) -> String {
    format!("attachment; filename=\"dealersync-{kind}.{ext}\"")
}

/// The rows, plus one "not available" row per site of the scope the figures leave
/// out, for the reports whose rows do not already say so (stock, ageing, ...): a
/// spreadsheet must not read as if those sites had nothing.
fn with_unavailable(c: &Computed, lang: Lang) -> Vec<Value> {
    let mut rows = c.rows.clone();
    rows.extend(unavailable_rows(c, lang));
    if rows.is_empty() {
        rows.push(no_rows(lang));
    }
    rows
}

/// The one row of a report without rows, so that an empty file is not mistaken for
/// a failed download.
fn no_rows(lang: Lang) -> Value {
    let note = match lang {
        Lang::Zh => "无数据",
        Lang::En => "no rows",
    };
    serde_json::json!({ "note": note })
}

fn unavailable_rows(c: &Computed, lang: Lang) -> Vec<Value> {
    let says_so = c.rows.iter().any(|r| r.get("available").is_some());
    if says_so {
        return Vec::new();
    }
    let note = match lang {
        Lang::Zh => "不可用：无权查看或无数据",
        Lang::En => "not available: not readable or no document",
    };
    c.json
        .get("sitesNotAvailable")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| {
            let mut m = Map::new();
            m.insert("site".into(), Value::from(s));
            m.insert("available".into(), Value::Bool(false));
            m.insert("note".into(), Value::from(note));
            Value::Object(m)
        })
        .collect()
}

/// Column names of `rows` in first-seen order.
fn columns(rows: &[Value]) -> Vec<String> {
    let mut cols: Vec<String> = Vec::new();
    for r in rows {
        if let Some(m) = r.as_object() {
            for k in m.keys() {
                if !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
    }
    cols
}

/// A cell as text: money in yuan with two decimals, rates as percentages, times in
/// CST, nulls empty.
fn cell_text(name: &str, v: &Value) -> String {
    let kind = column(name).2;
    match (kind, v) {
        (_, Value::Null) => String::new(),
        (Kind::Money, Value::Number(n)) => n.as_i64().map_or_else(|| n.to_string(), yuan_text),
        (Kind::Rate, Value::Number(n)) => n
            .as_f64()
            .map_or_else(|| n.to_string(), |r| format!("{:.2}%", r * 100.0)),
        (Kind::Time, Value::Number(n)) => n.as_i64().map_or_else(|| n.to_string(), cst_minute),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

/// Integer fen as yuan with two decimals, exactly (no float): 123456 → `1234.56`.
pub fn yuan_text(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let a = fen.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

fn csv_bytes(rows: &[Value], lang: Lang) -> Result<Vec<u8>, ApiError> {
    let cols = columns(rows);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(
        cols.iter()
            .map(|c| neutralise(header(c, lang)).into_owned()),
    )
    .map_err(internal)?;
    for r in rows {
        w.write_record(cols.iter().map(|c| {
            let text = cell_text(c, r.get(c).unwrap_or(&Value::Null));
            neutralise(&text).into_owned()
        }))
        .map_err(internal)?;
    }
    w.into_inner().map_err(internal)
}

/// Splits rows by their `level` (in order of first appearance); rows without one
/// form a single sheet named after the report.
fn sheets<'a>(kind: &str, rows: &'a [Value]) -> Vec<(String, Vec<&'a Value>)> {
    let mut out: Vec<(String, Vec<&Value>)> = Vec::new();
    for r in rows {
        let level = r
            .get("level")
            .and_then(Value::as_str)
            .unwrap_or(kind)
            .to_string();
        match out.iter_mut().find(|(l, _)| *l == level) {
            Some((_, v)) => v.push(r),
            None => out.push((level, vec![r])),
        }
    }
    if out.is_empty() {
        out.push((kind.to_string(), Vec::new()));
    }
    out
}

/// Display width of a text: CJK characters take two columns.
fn width(s: &str) -> usize {
    s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
}

fn xlsx_bytes(kind: &str, c: &Computed, lang: Lang) -> Result<Vec<u8>, ApiError> {
    let mut book = Workbook::new();
    let bold = Format::new().set_bold().set_align(FormatAlign::Center);
    let money = Format::new().set_num_format("#,##0.00");
    let rate = Format::new().set_num_format("0.00%");
    let mut all = sheets(kind, &c.rows);
    let missing = unavailable_rows(c, lang);
    if !missing.is_empty() {
        all.push(("not-available".to_string(), missing.iter().collect()));
    }
    for (level, rows) in all {
        let mut owned: Vec<Value> = rows.iter().map(|v| (*v).clone()).collect();
        if owned.is_empty() {
            owned.push(no_rows(lang));
        }
        let cols = columns(&owned);
        let sheet = book.add_worksheet();
        sheet.set_name(sheet_name(&level, lang)).map_err(internal)?;
        for (j, name) in cols.iter().enumerate() {
            let col = j as u16;
            let title = header(name, lang);
            sheet
                .write_string_with_format(0, col, title, &bold)
                .map_err(internal)?;
            let mut widest = width(title);
            for (i, r) in owned.iter().enumerate() {
                let row = i as u32 + 1;
                let v = r.get(name).unwrap_or(&Value::Null);
                let shown = cell_text(name, v);
                widest = widest.max(width(&shown));
                match (column(name).2, v) {
                    (_, Value::Null) => {}
                    (Kind::Money, Value::Number(n)) if n.as_i64().is_some() => {
                        // Exact for any amount a dealer handles (< 2^53 fen).
                        let fen = n.as_i64().unwrap_or_default();
                        sheet
                            .write_number_with_format(row, col, fen as f64 / 100.0, &money)
                            .map_err(internal)?;
                    }
                    (Kind::Rate, Value::Number(n)) => {
                        sheet
                            .write_number_with_format(row, col, n.as_f64().unwrap_or(0.0), &rate)
                            .map_err(internal)?;
                    }
                    (Kind::Plain, Value::Number(n)) => {
                        sheet
                            .write_number(row, col, n.as_f64().unwrap_or(0.0))
                            .map_err(internal)?;
                    }
                    (_, Value::Bool(b)) => {
                        sheet.write_boolean(row, col, *b).map_err(internal)?;
                    }
                    // Strings are written as strings: a workbook cell is a formula only
                    // when written as one, so no text can become a formula here.
                    _ => {
                        sheet.write_string(row, col, &shown).map_err(internal)?;
                    }
                }
            }
            sheet
                .set_column_width(col, (widest.clamp(6, 48) + 2) as f64)
                .map_err(internal)?;
        }
        sheet.set_freeze_panes(1, 0).map_err(internal)?;
    }
    book.save_to_buffer().map_err(internal)
}

/// Rows summed by the `group` columns (comma-separated): one row per distinct value
/// of those columns, with the `sums` columns added up and the rest dropped.
pub fn group_rows(rows: &[Value], group: &str, sums: &[&str]) -> Result<Vec<Value>, ApiError> {
    let keys: Vec<&str> = group.split(',').map(str::trim).collect();
    for k in &keys {
        if !["model", "site", "status"].contains(k) {
            return Err(ApiError::bad_request(format!(
                "cannot group by {:?}; use model, site and/or status",
                crate::telemetry::clip(k)
            )));
        }
    }
    let mut out: Vec<(Vec<Value>, Map<String, Value>)> = Vec::new();
    for r in rows {
        let key: Vec<Value> = keys
            .iter()
            .map(|k| r.get(*k).cloned().unwrap_or(Value::Null))
            .collect();
        let slot = match out.iter().position(|(k, _)| *k == key) {
            Some(i) => &mut out[i].1,
            None => {
                let mut m = Map::new();
                for (k, v) in keys.iter().zip(&key) {
                    m.insert((*k).to_string(), v.clone());
                    let name = format!("{k}Name");
                    if let Some(n) = r.get(&name) {
                        m.insert(name, n.clone());
                    }
                }
                out.push((key, m));
                &mut out.last_mut().expect("just pushed").1
            }
        };
        for s in sums {
            let add = r.get(*s).and_then(Value::as_i64).unwrap_or(0);
            let cur = slot.get(*s).and_then(Value::as_i64).unwrap_or(0);
            slot.insert((*s).to_string(), Value::from(cur.saturating_add(add)));
        }
    }
    Ok(out.into_iter().map(|(_, m)| Value::Object(m)).collect())
}

/// Keeps the rows of the given levels (`region`, `site`, `team`, `consultant`) in the
/// flat rows and in the JSON's row lists.
pub fn keep_levels(c: &mut Computed, levels: &str) -> Result<(), ApiError> {
    let wanted: Vec<&str> = levels.split(',').map(str::trim).collect();
    for l in &wanted {
        if !["region", "site", "team", "consultant"].contains(l) {
            return Err(ApiError::bad_request(format!(
                "unknown level {:?}; use region, site, team or consultant",
                crate::telemetry::clip(l)
            )));
        }
    }
    let keep = |v: &Value| {
        v.get("level")
            .and_then(Value::as_str)
            .is_none_or(|l| wanted.contains(&l))
    };
    c.rows.retain(keep);
    for list in ["rows", "regions", "teams", "consultants"] {
        if let Some(Value::Array(a)) = c.json.get_mut(list) {
            a.retain(keep);
        }
    }
    Ok(())
}
