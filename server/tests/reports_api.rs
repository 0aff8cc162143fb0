//! The report routes through real HTTP against the real binary: figures on a
//! hand-built network against expectations worked out by hand, access per role,
//! spreadsheets read back with parsers, and the read model kept up to date by live
//! changes (equal to a full recomputation) with the change stream telling a board.
//!
//! The network: see `reports_fixture`.

mod common;
mod reports_fixture;

use std::time::{Duration, Instant};

use common::{Client, DEADLINE};
use dealersync_core::reports;
use dealersync_core::schema::{EventKind, NetworkDocument, Period, SiteDocument};
use reports_fixture::{Net, YUAN, add_customers, cst, customer, ev, row, rows};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn kpi_and_board_figures_match_the_hand_computed_ones() {
    let net = Net::start().await;
    let ho = net.token("head_office", "hq");
    let kpi = net.ok("/api/reports/kpi?period=2026-11", &ho).await;
    assert_eq!(kpi["period"], "2026-11");
    let a1 = row(&kpi, "rows", "site", "site", "a1");
    // Visits: k1 (3rd) and k2 (10th); k3's visit is October's.
    assert_eq!(a1["visits"], 2);
    assert_eq!(a1["testDrives"], 1);
    assert_eq!(a1["orders"], 2);
    assert_eq!(a1["deliveries"], 2);
    // ¥150,000 + k3's unpriced delivery at its order's ¥100,000.
    assert_eq!(a1["revenue"], 250_000 * YUAN);
    // Cohort: first visitors k1 and k2; k1 ordered and test-drove: 1/2 each.
    assert_eq!(a1["firstVisitors"], 2);
    assert_eq!(a1["closingRate"], 0.5);
    assert_eq!(a1["testDriveRate"], 0.5);
    assert_eq!(a1["unitsAchievement"], 0.5); // 2 / 4
    assert_eq!(a1["revenueAchievement"], 0.5); // 250,000 / 500,000
    let c1 = rows(&kpi, "rows")
        .iter()
        .find(|r| r["level"] == "consultant" && r["consultant"] == "c1")
        .unwrap();
    assert_eq!(c1["deliveries"], 2);
    let dc = row(&kpi, "rows", "region", "site", "dc");
    // a1 + a2: 3 units, ¥450,000 against 5 units, ¥600,000.
    assert_eq!(dc["deliveries"], 3);
    assert_eq!(dc["revenue"], 450_000 * YUAN);
    assert_eq!(dc["targetUnits"], 5);
    assert_eq!(dc["unitsAchievement"], 0.6);
    assert_eq!(dc["revenueAchievement"], 0.75);
    assert_eq!(dc["sitesNotAvailable"], 0);

    let board = net.ok("/api/reports/board?period=2026-11", &ho).await;
    let teams = rows(&board, "teams");
    // a2 beat its target (1/1), a1 is at half; sites without a target follow.
    assert_eq!(teams[0]["id"], "a2");
    assert_eq!(teams[0]["rank"], 1);
    assert_eq!(teams[0]["revenueAchievement"], 2.0);
    assert_eq!(teams[1]["id"], "a1");
    assert_eq!(teams[1]["rank"], 2);
    // No consultant has a target: ranked by units, c1's 2 before c2's 1.
    let consultants = rows(&board, "consultants");
    assert_eq!(consultants[0]["id"], "c1");
    assert_eq!(consultants[1]["id"], "c2");

    // Level filter and a week: November 16th-22nd holds k1's delivery only.
    let week = net
        .ok("/api/reports/kpi?period=2026-W47&level=site", &ho)
        .await;
    assert!(rows(&week, "rows").iter().all(|r| r["level"] == "site"));
    assert_eq!(row(&week, "rows", "site", "site", "a1")["deliveries"], 1);
    assert_eq!(row(&week, "rows", "site", "site", "a2")["deliveries"], 0);

    // Bad arguments are clear errors.
    let (status, body) = net.get("/api/reports/kpi?period=2026-13", &ho).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = net.get("/api/reports/forecast?period=2026-W47", &ho).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("monthly"),
        "{body}"
    );
    let (status, _) = net.get("/api/reports/nonsense", &ho).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = net.get("/api/reports/kpi?format=pdf", &ho).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn each_role_reads_only_its_sites_and_the_rest_is_not_available() {
    let net = Net::start().await;
    let consultant = net.token("consultant", "a1");
    let manager = net.token("manager", "dc");

    // A consultant: his site; its showroom below is not his, so "not available".
    let kpi = net.ok("/api/reports/kpi?period=2026-11", &consultant).await;
    let sites: Vec<&str> = rows(&kpi, "rows")
        .iter()
        .filter(|r| r["level"] == "site")
        .map(|r| r["site"].as_str().unwrap())
        .collect();
    assert_eq!(sites, ["a1", "s1"]);
    let s1 = row(&kpi, "rows", "site", "site", "s1");
    assert_eq!(s1["available"], false);
    assert_eq!(
        s1["deliveries"],
        Value::Null,
        "never a zero for a site not seen"
    );
    assert_eq!(kpi["sitesNotAvailable"], serde_json::json!(["s1"]));
    for other in ["a2", "dc", "hq", "b1"] {
        let (status, body) = net
            .get(&format!("/api/reports/kpi?site={other}"), &consultant)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{other}: {body}");
    }

    // A manager: his subtree, nothing of b1.
    let board = net.ok("/api/reports/board?period=2026-11", &manager).await;
    let teams: Vec<&str> = rows(&board, "teams")
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(teams.len(), 4, "{teams:?}");
    assert!(!teams.contains(&"b1") && !teams.contains(&"hq"));
    let stock = net.ok("/api/reports/stock", &manager).await;
    assert!(
        stock["sitesCovered"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s != "b1")
    );
    let (status, _) = net.get("/api/reports/kpi?site=b1", &manager).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let sub = net
        .ok("/api/reports/kpi?site=a2&period=2026-11", &manager)
        .await;
    assert_eq!(row(&sub, "rows", "site", "site", "a2")["deliveries"], 1);

    // No token, no report.
    let resp = net
        .http
        .get(net.server.url("/api/reports/kpi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn csv_and_xlsx_read_back_with_headers_formats_and_safe_cells() {
    use calamine::{Data, Reader, Xlsx};
    let net = Net::start().await;
    let ho = net.token("head_office", "hq");

    let resp = net
        .get_raw("/api/reports/kpi?period=2026-11&format=csv&level=site", &ho)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = resp.text().await.unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers = r.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    let a1 = records.iter().find(|r| &r[col("网点")] == "a1").unwrap();
    assert_eq!(&a1[col("销售额(元)")], "250000.00");
    assert_eq!(&a1[col("成交率")], "50.00%");
    assert_eq!(&a1[col("交车(台)")], "2");
    // The site named "=1+1 agent" opens as text, not a formula.
    let b1 = records.iter().find(|r| &r[col("网点")] == "b1").unwrap();
    assert_eq!(&b1[col("网点名称")], "'=1+1 agent");

    // Stock summed per site, English headers: a1's two cars at ¥90,000.
    let en = net
        .get_raw("/api/reports/stock?format=csv&lang=en&group=site", &ho)
        .await
        .text()
        .await
        .unwrap();
    let mut lines = en.lines();
    assert_eq!(lines.next(), Some("Site,Site name,Count,Cost value (CNY)"));
    assert_eq!(lines.next(), Some("a1,Agent one,2,180000.00"));
    assert_eq!(lines.next(), Some("a2,Agent two,1,120000.00"));
    assert_eq!(lines.next(), None);
    // A report with no rows still says so.
    let empty = net
        .get_raw("/api/reports/pipeline?format=csv&lang=en", &ho)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(empty, "Note\nno rows\n");

    let resp = net
        .get_raw("/api/reports/board?period=2026-11&format=xlsx", &ho)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.bytes().await.unwrap().to_vec();
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(book.sheet_names(), ["区域", "团队", "顾问"]);
    let teams = book.worksheet_range("团队").unwrap();
    let header: Vec<String> = teams
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let first = &teams.rows().nth(1).unwrap();
    assert_eq!(first[at("编号")], Data::String("a2".into()));
    // Yuan from fen, and the achievement as a fraction shown as a percentage.
    assert_eq!(first[at("销售额(元)")], Data::Float(200_000.0));
    assert_eq!(first[at("台数达成率")], Data::Float(1.0));

    let resp = net
        .get_raw("/api/reports/stock?format=xlsx&lang=en", &ho)
        .await;
    let bytes = resp.bytes().await.unwrap().to_vec();
    let book: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(book.sheet_names(), ["Stock"]);
}

/// Reads server-sent events from a streaming response until one of kind `change`
/// names `site`, or the deadline.
async fn until_change_names(resp: &mut reqwest::Response, site: &str, buf: &mut String) -> Value {
    let until = Instant::now() + DEADLINE;
    loop {
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            if block.contains("event: change") {
                let data = block
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap();
                let v: Value = serde_json::from_str(data).unwrap();
                if v["sites"].as_array().unwrap().iter().any(|s| s == site) {
                    return v;
                }
            }
        }
        let left = until.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no change event for {site}");
        let chunk = tokio::time::timeout(left, resp.chunk())
            .await
            .expect("no change event in time")
            .unwrap()
            .expect("stream ended");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test]
async fn live_changes_update_the_read_model_and_reach_the_stream() {
    let net = Net::start().await;
    let ho = net.token("head_office", "hq");
    let manager = net.token("manager", "dc");
    // Ask for the periods first, so that their aggregates are cached and must be
    // recomputed incrementally.
    let periods = ["2026-11", "2026-W48", "2026-Q4", "2026"];
    for p in periods {
        net.ok(&format!("/api/reports/kpi?period={p}"), &ho).await;
    }
    let mut stream = net.get_raw("/api/reports/events", &manager).await;
    assert_eq!(stream.status(), StatusCode::OK);
    let mut buf = String::new();

    let mut client = Client::connect(&net.server.ws_url(), "reports-writer", None).await;
    for site in ["a1", "a2", "b1"] {
        let id = net.docs[site];
        client.request(id).await;
        client
            .until("the site document", |c| {
                let heads = c.server_heads(id);
                !heads.is_empty() && c.has_all(id, &heads)
            })
            .await;
    }
    // Many changes: 20 customers in turns at a1 and a2, each with a visit and, every
    // other one, a delivery in the last week of November.
    for i in 0..20u32 {
        let site = if i % 2 == 0 { "a1" } else { "a2" };
        let by = if i % 2 == 0 { "c1" } else { "c9" };
        let mut events = vec![ev(EventKind::Visit, cst(11, 23 + i % 5, 9), by, None)];
        if i % 4 < 2 {
            events.push(ev(
                EventKind::Delivery,
                cst(11, 24 + i % 5, 15),
                by,
                Some((1_000 + i64::from(i)) * YUAN),
            ));
        }
        let c = customer(&format!("live{i}"), by, events);
        client
            .change(net.docs[site], move |d| add_customers(d, vec![c]))
            .await;
    }
    let event = until_change_names(&mut stream, "a1", &mut buf).await;
    assert!(event["sites"].as_array().unwrap().iter().all(|s| s != "b1"));
    // A change at b1 is not for the manager of dc: the next event he sees names a2
    // again, never b1.
    let c = customer(
        "b-live",
        "cb",
        vec![ev(EventKind::Visit, cst(11, 30, 9), "cb", None)],
    );
    client
        .change(net.docs["b1"], move |d| add_customers(d, vec![c]))
        .await;
    let c = customer(
        "a2-last",
        "c2",
        vec![ev(EventKind::Visit, cst(11, 30, 9), "c2", None)],
    );
    client
        .change(net.docs["a2"], move |d| add_customers(d, vec![c]))
        .await;
    let event = until_change_names(&mut stream, "a2", &mut buf).await;
    assert!(event["sites"].as_array().unwrap().iter().all(|s| s != "b1"));

    // Wait until the server holds everything (the last change is durable), then the
    // read model's answer must equal a full recomputation from the stored documents.
    let expected_visits = |network: &NetworkDocument, sites: &[SiteDocument]| {
        let refs: Vec<&SiteDocument> = sites.iter().collect();
        reports::kpis(network, &refs, Period::Month(2026, 11))
            .unwrap()
            .site("a2")
            .unwrap()
            .visits
    };
    let until = Instant::now() + DEADLINE;
    loop {
        let (network, sites) = net.stored_sites();
        if expected_visits(&network, &sites) == Some(1 + 10 + 1) {
            break;
        }
        assert!(Instant::now() < until, "the changes never became durable");
        client.pump_once(Duration::from_millis(50)).await;
    }
    let (network, sites) = net.stored_sites();
    let refs: Vec<&SiteDocument> = sites.iter().collect();
    for p in periods {
        let period: Period = p.parse().unwrap();
        let full = serde_json::to_value(reports::kpis(&network, &refs, period).unwrap()).unwrap();
        let until = Instant::now() + DEADLINE;
        loop {
            let served = net.ok(&format!("/api/reports/kpi?period={p}"), &ho).await;
            if served == full {
                break;
            }
            assert!(
                Instant::now() < until,
                "{p}: the read model never matched the full recomputation:\nserved {served}\nfull {full}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let board =
            serde_json::to_value(reports::sales_board(&network, &refs, period).unwrap()).unwrap();
        let mut served = net.ok(&format!("/api/reports/board?period={p}"), &ho).await;
        assert_eq!(served["contests"], serde_json::json!([]));
        served.as_object_mut().unwrap().remove("contests");
        assert_eq!(served, board, "{p}");
    }
}
