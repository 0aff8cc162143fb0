//! A business conflict settled in the browser: two field devices (the `dealersync`
//! CLI) of one agent reserve the same car for different customers while offline and
//! sync; the manager's console lists the double booking with the customers' names,
//! he picks who keeps the car and confirms, the conflict disappears from the list
//! without a reload, and a field device sees the resolution at its next sync.
//! Screenshots in `target/screenshots/` (`console-conflict-*.png`).

use std::time::{Duration, Instant};

use anyhow::Context;
use dealersync_tests::ServerProcess;
use dealersync_tests::browser::{Browser, screenshot_dir};
use dealersync_tests::field::{Field, sign_in_link};
use serde_json::Value;

/// Generous: two cores are shared with builds and other tests.
const DEADLINE: Duration = Duration::from_secs(20);

/// Adds a walk-in customer on `field` and reserves `vin` for them; the customer id.
async fn reserve_for_new_customer(
    field: &Field,
    vin: &str,
    name: &str,
    phone: &str,
) -> anyhow::Result<String> {
    let customer = field
        .json(&[
            "customer", "add", "--name", name, "--phone", phone, "--source", "walk_in",
        ])
        .await?;
    let id = customer["id"].as_str().context("customer id")?.to_string();
    field
        .run(&["vehicle", "reserve", vin, "--customer", &id])
        .await?;
    Ok(id)
}

/// The double booking of `vin` that `field` lists, if any.
async fn double_booking(field: &Field, vin: &str) -> anyhow::Result<Option<Value>> {
    let listed = field.json(&["conflicts", "list"]).await?;
    Ok(listed.as_array().and_then(|all| {
        all.iter()
            .find(|c| {
                c["kind"] == "double_booking"
                    && c["records"]
                        .as_array()
                        .is_some_and(|r| r.iter().any(|r| *r == format!("vehicle {vin}")))
            })
            .cloned()
    }))
}

#[tokio::test]
async fn a_manager_settles_a_double_booking_in_the_console() -> anyhow::Result<()> {
    let server = ServerProcess::start_within(&["--demo"], Duration::from_secs(180)).await?;
    let shots = screenshot_dir()?;

    // Two tablets of agent-n1, synced, then offline: each reserves the same car.
    let a = Field::logged_in(&server, "lin.xia", "consultant", "agent-n1").await?;
    let b = Field::logged_in(&server, "lin.xia", "consultant", "agent-n1").await?;
    let vehicles = a.json(&["vehicle", "list"]).await?;
    let vin = vehicles
        .as_array()
        .and_then(|v| v.iter().find(|v| v["status"] == "in_stock"))
        .and_then(|v| v["vin"].as_str())
        .context("a vehicle in stock")?
        .to_string();
    let first = reserve_for_new_customer(&a, &vin, "钱女士", "13700001111").await?;
    let second = reserve_for_new_customer(&b, &vin, "孙先生", "13700002222").await?;
    for device in [&a, &b, &a] {
        device.run(&["sync", "--timeout", "60"]).await?;
    }
    let conflict = double_booking(&b, &vin)
        .await?
        .context("the field client lists the double booking")?;
    let id = conflict["id"].as_str().context("conflict id")?.to_string();
    let card = format!("[data-conflict='{id}']");

    // The manager of dc-north opens the console's conflicts.
    let browser = Browser::start().await?;
    browser.open("desk", 1440, 1000).await?;
    let link = sign_in_link(&server, "sun.hao", "manager", "dc-north", "/console").await?;
    browser.sign_in("desk", &link, DEADLINE).await?;
    browser
        .wait_for("desk", "main[data-ready]", DEADLINE)
        .await?;
    browser.click("desk", "#tab-button-conflicts").await?;
    if let Err(e) = browser
        .wait_for("desk", &format!("{card} .resolve-button"), DEADLINE)
        .await
    {
        browser
            .screenshot("desk", &shots.join("console-conflict-failed.png"))
            .await?;
        let list = browser.text("desk", "#tab-conflicts").await?;
        let errors = browser.page_errors("desk").await?;
        anyhow::bail!(
            "the console does not list the double booking with its options: {e}; page: {list}; errors: {errors:?}"
        );
    }
    // The options name the customers (the relay's read model may catch up with the
    // two syncs a moment after the conflict is listed; the list follows it live).
    for who in [format!("钱女士（{first}）"), format!("孙先生（{second}）")] {
        browser
            .wait_for(
                "desk",
                &format!("{card} .resolve .option:has-text('{who}')"),
                DEADLINE,
            )
            .await
            .with_context(|| format!("{who} is offered"))?;
    }
    browser
        .click("desk", &format!("{card} input[value='{second}']"))
        .await?;
    browser
        .click("desk", &format!("{card} .resolve-button"))
        .await?;
    browser
        .wait_for("desk", &format!("{card} .confirm-resolve"), DEADLINE)
        .await?;
    assert!(
        browser
            .text("desk", &format!("{card} .confirm"))
            .await?
            .contains("孙先生"),
        "the confirmation names the choice"
    );
    browser
        .screenshot("desk", &shots.join("console-conflict-confirm.png"))
        .await?;
    let clicked = Instant::now();
    browser
        .click("desk", &format!("{card} .confirm-resolve"))
        .await?;
    browser
        .wait_gone("desk", &card, DEADLINE)
        .await
        .context("the settled conflict leaves the list without a reload")?;
    println!(
        "the conflict left the console {:?} after the confirmation",
        clicked.elapsed()
    );
    browser
        .screenshot("desk", &shots.join("console-conflict-settled.png"))
        .await?;

    // The first tablet, which lost, learns it at its next sync.
    a.run(&["sync", "--timeout", "60"]).await?;
    assert!(
        double_booking(&a, &vin).await?.is_none(),
        "cleared on the tablet"
    );
    let vehicles = a.json(&["vehicle", "list"]).await?;
    let car = vehicles
        .as_array()
        .and_then(|v| v.iter().find(|v| v["vin"] == vin.as_str()))
        .context("the car")?;
    assert_eq!(car["status"], "reserved", "{car}");
    assert_eq!(car["reservedFor"], second.as_str(), "{car}");

    let errors = browser.page_errors("desk").await?;
    assert!(errors.is_empty(), "{errors:?}");
    browser.close().await?;
    Ok(())
}
