//! Targets, the catalogue, discount limits and contests through real HTTP against the
//! real binary: validated, guarded by role, written through the relay (pushed to a
//! connected device) and shown on the board. Network: see `reports_fixture`.

mod common;
mod reports_fixture;

use common::Client;
use dealersync_core::schema::NetworkDocument;
use dealersync_server::registry::Registry;
use reports_fixture::{Net, rows};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn targets_are_set_split_checked_and_guarded_by_role() {
    use reqwest::Method;
    use serde_json::json;
    let net = Net::start().await;
    let ho = net.token("head_office", "hq");
    let manager = net.token("manager", "dc");
    let consultant = net.token("consultant", "a1");
    let year = json!({"targets": [{"site": "dc", "period": "2026", "units": 120, "revenue": 1_200_000_000}]});
    let (status, body) = net
        .send(Method::PUT, "/api/targets", &ho, year.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The manager of dc may not set dc's own target, only the sites below it.
    let (status, _) = net.send(Method::PUT, "/api/targets", &manager, year).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = net
        .send(
            Method::PUT,
            "/api/targets",
            &consultant,
            json!({"targets": [{"site": "a1", "period": "2026-12", "units": 1, "revenue": 0}]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = net
        .send(
            Method::PUT,
            "/api/targets",
            &manager,
            json!({"targets": [{"site": "b1", "period": "2026-12", "units": 1, "revenue": 0}]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = net.send(Method::PUT, "/api/targets", &manager,
        json!({"targets": [
            {"site": "a1", "period": "2026-12", "units": 6, "revenue": 60_000_000},
            {"site": "a1", "consultant": "c1", "period": "2026-12", "units": 4, "revenue": 40_000_000}
        ]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = net
        .send(
            Method::PUT,
            "/api/targets",
            &ho,
            json!({"targets": [{"site": "a1", "period": "2026-12", "units": -1, "revenue": 0}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let listed = net.ok("/api/targets?period=2026-12", &manager).await;
    let targets = rows(&listed, "targets");
    assert!(
        targets
            .iter()
            .any(|r| r["site"] == "a1" && r["consultant"] == "c1" && r["target"]["units"] == 4)
    );

    // Working days per quarter of 2026: 64, 65, 66, 66 (261 in all); 120 units:
    // 29.43, 29.89, 30.34, 30.34 → floors 29, 29, 30, 30 (118) and the two largest
    // remainders (Q2, then Q1) take the last two units → 30 each.
    let (status, split) = net
        .send(
            Method::POST,
            "/api/targets/split",
            &ho,
            json!({"site": "dc", "period": "2026", "into": "periods", "basis": "working_days"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{split}");
    let parts = rows(&split, "parts");
    let weights: Vec<i64> = parts
        .iter()
        .map(|p| p["weight"].as_i64().unwrap())
        .collect();
    assert_eq!(weights, [64, 65, 66, 66]);
    let units: Vec<i64> = parts.iter().map(|p| p["units"].as_i64().unwrap()).collect();
    assert_eq!(units, [30, 30, 30, 30]);
    assert_eq!(split["check"]["addsUp"], true);
    // Last year's seasonality with no sales last year falls back to working days.
    let (_, split_ly) = net
        .send(
            Method::POST,
            "/api/targets/split",
            &ho,
            json!({"site": "dc", "period": "2026", "into": "periods", "basis": "last_year"}),
        )
        .await;
    assert_eq!(split_ly["basis"], "working_days");

    // Head office edits Q4 up by 2 and writes the quarters: the check shows +2.
    let mut edited: Vec<Value> = parts
        .iter()
        .map(|p| json!({"site": "dc", "period": p["period"], "units": p["units"], "revenue": p["revenue"]}))
        .collect();
    edited[3]["units"] = json!(32);
    let (status, body) = net
        .send(Method::PUT, "/api/targets", &ho, json!({"targets": edited}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let check = net.ok("/api/targets/check?site=dc&period=2026", &ho).await;
    assert_eq!(check["periods"]["addsUp"], false);
    assert_eq!(check["periods"]["units"], 2);
    assert_eq!(check["periods"]["revenue"], 0);

    // Among the sites below dc, evenly when there is no history: a1, a2 → 5 each.
    let (status, split) = net
        .send(
            Method::POST,
            "/api/targets/split",
            &manager,
            json!({"site": "dc", "period": "2026-12", "into": "sites", "basis": "last_year",
               "total": {"units": 10, "revenue": 1000}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{split}");
    assert_eq!(split["basis"], "even");
    let sites: Vec<(&str, i64)> = rows(&split, "parts")
        .iter()
        .map(|p| (p["site"].as_str().unwrap(), p["units"].as_i64().unwrap()))
        .collect();
    assert_eq!(sites, [("a1", 5), ("a2", 5)]);
    // A consultant cannot plan for another site.
    let (status, _) = net.send(Method::POST, "/api/targets/split", &consultant,
        json!({"site": "dc", "period": "2026-12", "into": "sites", "basis": "even", "total": {"units": 1, "revenue": 0}})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn catalogue_discounts_and_contests_go_through_the_relay_to_devices_and_the_board() {
    use reqwest::Method;
    use serde_json::json;
    let net = Net::start().await;
    let ho = net.token("head_office", "hq");
    let manager = net.token("manager", "dc");
    let consultant = net.token("consultant", "a1");

    // A device holding the network document sees head office's edit pushed to it.
    let registry = Registry::open_in(&net.server.data_dir).unwrap();
    let network = registry.network_document().unwrap().unwrap();
    let mut device = Client::connect(&net.server.ws_url(), "catalogue-device", None).await;
    device.request(network).await;
    device
        .until("the network document", |c| {
            let heads = c.server_heads(network);
            !heads.is_empty() && c.has_all(network, &heads)
        })
        .await;
    let model =
        json!({"name": "悦行 轿车", "trims": ["std"], "cost": 9_000_000, "listPrice": 10_800_000});
    let (status, body) = net
        .send(Method::PUT, "/api/catalogue/SDN-A", &ho, model.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    device
        .until("the catalogue edit", |c| {
            let heads = c.server_heads(network);
            c.has_all(network, &heads)
                && NetworkDocument::read(&c.docs[&network].doc)
                    .is_ok_and(|n| n.models.contains_key("SDN-A"))
        })
        .await;
    let cat = net.ok("/api/catalogue", &consultant).await;
    assert_eq!(cat["models"]["SDN-A"]["listPrice"], 10_800_000);
    let (status, _) = net
        .send(Method::PUT, "/api/catalogue/SDN-A", &manager, model)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = net
        .send(
            Method::PUT,
            "/api/catalogue/SDN-B",
            &ho,
            json!({"name": "x", "cost": -1, "listPrice": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = net
        .send(
            Method::PUT,
            "/api/discount-limits/consultant",
            &ho,
            json!({"limit": 500_000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = net
        .send(
            Method::PUT,
            "/api/discount-limits/king",
            &ho,
            json!({"limit": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        net.ok("/api/catalogue", &ho).await["discountLimits"]["consultant"],
        500_000
    );

    // The manager of dc runs a contest between a1 and a2; b1 is not his.
    let contest = json!({"name": "十一月冲刺", "period": "2026-11", "metric": "units", "members": "sites",
        "teams": [{"name": "一队", "members": ["a1"]}, {"name": "二队", "members": ["a2"]}]});
    let (status, body) = net
        .send(Method::PUT, "/api/contests/nov", &manager, contest.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut foreign = contest.clone();
    foreign["teams"][1]["members"] = json!(["b1"]);
    let (status, _) = net
        .send(Method::PUT, "/api/contests/other", &manager, foreign)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = net
        .send(Method::PUT, "/api/contests/mine", &consultant, contest)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // a1 delivered 2 in November, a2 1.
    let board = net.ok("/api/reports/board?period=2026-11", &ho).await;
    let c = &rows(&board, "contests")[0];
    assert_eq!(c["id"], "nov");
    assert_eq!(c["leaders"], json!(["一队"]));
    assert_eq!(c["bottom"], json!(["二队"]));
    assert_eq!(c["teams"][0]["value"], 2);
    let (status, _) = net
        .send(Method::DELETE, "/api/contests/nov", &consultant, json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = net
        .send(Method::DELETE, "/api/contests/nov", &manager, json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(rows(&net.ok("/api/contests", &ho).await, "contests").is_empty());
}
