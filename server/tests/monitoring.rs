//! The alert rules and the Grafana dashboard in docs/monitoring name only metrics the
//! relay exports, and the relay exports the gauges the alerts depend on.

mod common;

use std::collections::BTreeSet;

/// Every `dealersync_*` metric name in `text`, histogram suffixes removed.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("dealersync_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let name = &text[start..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.insert(base.to_string());
        i = end;
    }
    names
}

#[tokio::test]
async fn alerts_and_dashboard_use_metrics_the_relay_exports() {
    let declared = metric_names(include_str!("../src/telemetry.rs"));
    let alerts = include_str!("../../docs/monitoring/alerts.yml");
    let dashboard = include_str!("../../docs/monitoring/grafana-dashboard.json");
    let _: serde_json::Value = serde_json::from_str(dashboard).expect("the dashboard is JSON");
    for (file, text) in [
        ("alerts.yml", alerts),
        ("grafana-dashboard.json", dashboard),
    ] {
        let used = metric_names(text);
        assert!(used.len() >= 5, "{file} uses the relay's metrics: {used:?}");
        let unknown: Vec<_> = used.difference(&declared).collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics the relay does not export: {unknown:?}"
        );
    }

    // The gauges the alerts need are exported by a running relay, with sane values.
    let dir = tempfile::tempdir().unwrap();
    let server = common::Server::start(dir.path(), &[]).await;
    let text = server.metrics().await;
    let healthy = common::metric_value(&text, "dealersync_engine_healthy", "");
    assert_eq!(healthy, 1.0, "{text}");
    let free = common::metric_value(&text, "dealersync_data_free_bytes", "");
    let total = common::metric_value(&text, "dealersync_data_total_bytes", "");
    assert!(free > 0.0 && total >= free, "free {free} of {total}");
}

/// The alert rules load in Prometheus and fire when, and only when,
/// `docs/monitoring/alerts_test.yml` says, under Prometheus's own rule tester. Needs
/// `promtool` (Debian: `apt-get install prometheus`); set `DEALERSYNC_SKIP_PROMTOOL=1`
/// on a machine without it.
#[test]
fn alert_rules_fire_as_their_unit_tests_say() {
    if std::env::var_os("DEALERSYNC_SKIP_PROMTOOL").is_some() {
        eprintln!("DEALERSYNC_SKIP_PROMTOOL is set: the alert rules were not run");
        return;
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/monitoring");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ] {
        let out = std::process::Command::new("promtool")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("promtool: apt-get install prometheus, or set DEALERSYNC_SKIP_PROMTOOL=1");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
