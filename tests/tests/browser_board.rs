//! The live sales board and the console in a real browser (Debian's headless
//! Chromium through playwright-core), against the real relay binary on the demo
//! network: people sign in with one-time codes; a field client (the `dealersync`
//! CLI) sells and delivers a car and syncs, and the boards open on a TV show the new
//! figure without a reload; a manager defines a contest in the console and the TV
//! board shows it; a consultant's session cannot open the console nor head office's
//! figures. Screenshots at TV (1920×1080) and phone (390×844) sizes are left in
//! `target/screenshots/` for people to look at.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use dealersync_tests::ServerProcess;
use dealersync_tests::browser::{Browser, screenshot_dir};
use dealersync_tests::field::{Field, sign_in_link};
use serde_json::Value;

/// Generous: two cores are shared with builds and other tests. The board itself
/// follows a change within a second (the test prints how long it took).
const DEADLINE: Duration = Duration::from_secs(20);

const TV: (u32, u32) = (1920, 1080);
const PHONE: (u32, u32) = (390, 844);

/// Sells a car of the consultant's site from stock to a new customer, delivers it and
/// syncs: one more unit delivered at that site.
async fn sell_and_deliver(field: &Field) -> anyhow::Result<()> {
    let vehicles = field.json(&["vehicle", "list"]).await?;
    let vin = vehicles
        .as_array()
        .and_then(|v| v.iter().find(|v| v["status"] == "in_stock"))
        .and_then(|v| v["vin"].as_str())
        .context("a vehicle in stock")?
        .to_string();
    let customer = field
        .json(&[
            "customer",
            "add",
            "--name",
            "赵先生",
            "--phone",
            "13912345678",
            "--source",
            "walk_in",
        ])
        .await?;
    let id = customer["id"].as_str().context("customer id")?.to_string();
    field
        .run(&[
            "vehicle",
            "sell",
            &vin,
            "--customer",
            &id,
            "--price",
            "152000",
        ])
        .await?;
    field.run(&["vehicle", "deliver", &vin]).await?;
    field.run(&["sync", "--timeout", "60"]).await?;
    Ok(())
}

fn number(text: &str) -> anyhow::Result<i64> {
    text.trim()
        .replace(',', "")
        .parse()
        .with_context(|| format!("{text:?} is not a number"))
}

async fn shot(browser: &Browser, session: &str, dir: &Path, name: &str) -> anyhow::Result<()> {
    browser.screenshot(session, &dir.join(name)).await?;
    Ok(())
}

#[tokio::test]
async fn the_board_follows_a_sale_live_and_each_role_sees_only_its_own() -> anyhow::Result<()> {
    // Seeding the demo takes a while in a debug build on a busy machine.
    let server = ServerProcess::start_within(&["--demo"], Duration::from_secs(180)).await?;
    let browser = Browser::start().await?;
    let shots = screenshot_dir()?;
    let base = server.http_url();

    // A manager signs in on the showroom TV with a code, and lands on the board.
    browser.open("tv", TV.0, TV.1).await?;
    let link = sign_in_link(&server, "sun.hao", "manager", "dc-north", "/board").await?;
    let landed = browser.sign_in("tv", &link, DEADLINE).await?;
    assert_eq!(landed, format!("{base}/board"));
    browser.wait_for("tv", "#live.on", DEADLINE).await?;
    let units = "#kpi-units .units";
    let team = "[data-level=team][data-id=agent-n1] .units";
    let before = number(&browser.text("tv", units).await?)?;
    let team_before = number(&browser.text("tv", team).await?)?;
    assert_eq!(
        browser.count("tv", "#stock").await?,
        0,
        "network stock is head office's"
    );
    assert!(
        browser.text("tv", "#who").await?.contains("sun.hao"),
        "the board says who is signed in"
    );

    // Head office on another TV: the whole network, with stock by model.
    browser.open("hq", TV.0, TV.1).await?;
    let link = sign_in_link(&server, "zhou.min", "head_office", "hq", "/board").await?;
    browser.sign_in("hq", &link, DEADLINE).await?;
    browser
        .wait_for("hq", "#stock svg rect", DEADLINE)
        .await
        .context("head office sees network stock by model")?;
    browser.wait_for("hq", "#live.on", DEADLINE).await?;
    let hq_before = number(&browser.text("hq", units).await?)?;

    // A consultant of agent-n1 (below dc-north) sells and delivers a car and syncs.
    let field = Field::new()?;
    let token = server.token("lin.xia", "consultant", "agent-n1").await?;
    field
        .run(&["login", "--server", &base, "--token", &token])
        .await?;
    sell_and_deliver(&field).await?;
    let synced = Instant::now();

    // Both boards show it, without a reload.
    let after = browser
        .wait_text_change("tv", units, &before.to_string(), DEADLINE)
        .await
        .context("the manager's board shows the sale")?;
    let took = synced.elapsed();
    assert_eq!(number(&after)?, before + 1, "one more unit this month");
    let team_after = browser
        .wait_text_change("tv", team, &team_before.to_string(), DEADLINE)
        .await?;
    assert_eq!(number(&team_after)?, team_before + 1, "agent-n1's row");
    let hq_after = browser
        .wait_text_change("hq", units, &hq_before.to_string(), DEADLINE)
        .await?;
    assert_eq!(number(&hq_after)?, hq_before + 1);
    println!("the manager's board showed the sale {took:?} after the field client's sync returned");
    shot(&browser, "tv", &shots, "board-manager-tv.png").await?;
    shot(&browser, "hq", &shots, "board-head-office-tv.png").await?;

    // The manager's phone.
    browser.open("phone", PHONE.0, PHONE.1).await?;
    let link = sign_in_link(&server, "sun.hao", "manager", "dc-north", "/board").await?;
    browser.sign_in("phone", &link, DEADLINE).await?;
    browser.wait_for("phone", "#kpis", DEADLINE).await?;
    assert_eq!(number(&browser.text("phone", units).await?)?, before + 1);
    shot(&browser, "phone", &shots, "board-manager-phone.png").await?;
    // English on request, the figures unchanged.
    browser.click("phone", "#lang-toggle").await?;
    let title = browser
        .wait_text_change("phone", ".top-bar h1", "销售看板", DEADLINE)
        .await?;
    assert_eq!(title, "Sales board");
    assert_eq!(number(&browser.text("phone", units).await?)?, before + 1);
    shot(&browser, "phone", &shots, "board-manager-phone-en.png").await?;

    // At his desk, the manager defines a contest; the TV board shows it live.
    browser.open("desk", TV.0, TV.1).await?;
    let link = sign_in_link(&server, "sun.hao", "manager", "dc-north", "/console").await?;
    browser.sign_in("desk", &link, DEADLINE).await?;
    browser
        .wait_for("desk", "main[data-ready] #achievement-chart svg", DEADLINE)
        .await?;
    shot(&browser, "desk", &shots, "console-manager-achievement.png").await?;
    browser.click("desk", "#tab-button-contests").await?;
    browser.wait_for("desk", "#contest-form", DEADLINE).await?;
    for (field_name, value) in [
        ("id", "north-sprint"),
        ("name", "北区冲刺赛"),
        ("teams", "城关队: agent-n1\n河西队: agent-n2, rs-1"),
    ] {
        browser
            .fill("desk", &format!("#contest-form [name={field_name}]"), value)
            .await?;
    }
    browser
        .click("desk", "#contest-form button[type=submit]")
        .await?;
    browser
        .wait_for("desk", "#contest-form .status.ok", DEADLINE)
        .await
        .context("the contest is saved through the API")?;
    browser
        .wait_for("tv", "#contest[data-contest=north-sprint]", DEADLINE)
        .await
        .context("the TV board shows the new contest without a reload")?;
    // The podium is the relay's standing (which team leads depends on the demo's
    // history for the current month).
    let (status, body) = browser.fetch("desk", "/api/reports/board").await?;
    assert_eq!(status, 200, "{body}");
    let board: Value = serde_json::from_str(&body)?;
    let standing = board["contests"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == "north-sprint"))
        .context("the contest's standing")?;
    let first = standing["teams"][0]["name"].as_str().context("a team")?;
    let leader = browser
        .text("tv", "#contest .podium > div:first-child .who")
        .await?;
    assert_eq!(leader, first, "{standing}");
    assert_eq!(standing["teams"].as_array().map(Vec::len), Some(2));
    shot(&browser, "tv", &shots, "board-manager-contest-tv.png").await?;
    browser.click("desk", "#tab-button-ageing").await?;
    browser
        .wait_for("desk", "#ageing-chart svg", DEADLINE)
        .await?;
    shot(&browser, "desk", &shots, "console-manager-ageing.png").await?;

    // A sign-in code for a consultant's phone: the code, and a QR code of the phone
    // app's link (`server/src/signin.rs` tests that such a QR code reads back as the link).
    browser.click("desk", "#tab-button-codes").await?;
    browser
        .fill("desk", "#code-form input[name=user]", "li.na")
        .await?;
    browser
        .click("desk", "#code-form button[type=submit]")
        .await?;
    browser.wait_for("desk", "#issued-qr", DEADLINE).await?;
    assert_eq!(
        browser
            .count("desk", "a#issued-app-link[href*='/app/#code=']")
            .await?,
        1
    );
    shot(&browser, "desk", &shots, "console-sign-in-code-qr.png").await?;

    // The API description, rendered by the relay's own page (nothing from elsewhere).
    browser.goto("desk", &format!("{base}/api-docs")).await?;
    browser
        .wait_for("desk", "#api-docs .api-op", DEADLINE)
        .await?;
    let operations = browser.count("desk", "#api-docs .api-op").await?;
    assert!(operations >= 20, "{operations} operations described");
    assert_eq!(
        browser
            .count("desk", "[id='post-/api/admin/sign-in-codes']")
            .await?,
        1
    );

    // A consultant: his own site's board; the console and head office's figures are
    // closed to him.
    browser.open("consultant", PHONE.0, PHONE.1).await?;
    let link = sign_in_link(&server, "wang.fang", "consultant", "showroom", "/board").await?;
    browser.sign_in("consultant", &link, DEADLINE).await?;
    browser.wait_for("consultant", "#kpis", DEADLINE).await?;
    assert_eq!(browser.count("consultant", "#stock").await?, 0);
    assert_eq!(
        browser.count("consultant", "[data-level=team]").await?,
        1,
        "only the showroom's own team"
    );
    assert_eq!(
        browser.count("consultant", "a[href='/console']").await?,
        0,
        "no link to the console"
    );
    shot(&browser, "consultant", &shots, "board-consultant-phone.png").await?;
    let visit = browser
        .goto("consultant", &format!("{base}/console"))
        .await?;
    assert_eq!(
        visit.status,
        Some(403),
        "the console is for managers and above"
    );
    browser
        .wait_for("consultant", "#forbidden", DEADLINE)
        .await?;
    for path in [
        "/api/reports/stock?site=hq",
        "/api/reports/board?site=dc-north",
        "/api/reports/kpi?site=hq",
    ] {
        let (status, body) = browser.fetch("consultant", path).await?;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let (status, body) = browser
        .fetch("consultant", "/api/admin/sign-in-codes")
        .await?;
    assert!(status == 405 || status == 403, "{status}: {body}");

    // No script error on any page. The consultant's refused requests above are logged
    // by the browser as failed loads; nothing else may be.
    for session in ["tv", "hq", "phone", "desk", "consultant"] {
        let errors: Vec<String> = browser
            .page_errors(session)
            .await?
            .into_iter()
            .filter(|e| {
                !(session == "consultant" && e.starts_with("console: Failed to load resource"))
            })
            .collect();
        assert!(errors.is_empty(), "{session}: {errors:?}");
    }
    browser.close().await?;
    Ok(())
}
