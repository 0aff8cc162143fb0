//! The configuration file against the real binary: one precedence (flag, then
//! environment, then file, then default), `check-config` explaining mistakes, and
//! `serve` running on what the file says.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, free_port};

fn check(
    dir: &std::path::Path,
    file: &str,
    env: &[(&str, &str)],
    flags: &[&str],
) -> (bool, String) {
    let path = dir.join("relay.toml");
    std::fs::write(&path, file).unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .args(flags)
        .env_remove("DEALERSYNC_LISTEN")
        .env_remove("DEALERSYNC_DATA_DIR")
        .env_remove("DEALERSYNC_MAX_CONNECTIONS_PER_IP")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The line `check-config` prints for a setting.
fn line<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("no line for {key}:\n{text}"))
}

#[test]
fn flags_win_over_the_environment_which_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = format!(
        "listen = \"127.0.0.1:4001\"\ndata_dir = \"{}\"\nmax-connections-per-ip = 7\nheader-timeout-secs = 3\n",
        data.display()
    );
    let (ok, text) = check(
        dir.path(),
        &file,
        &[
            ("DEALERSYNC_LISTEN", "127.0.0.1:4002"),
            ("DEALERSYNC_MAX_CONNECTIONS_PER_IP", "8"),
        ],
        &["--max-connections-per-ip", "9"],
    );
    assert!(ok, "{text}");
    assert!(line(&text, "listen").contains("127.0.0.1:4002"), "{text}");
    assert!(line(&text, "listen").contains("environment (DEALERSYNC_LISTEN)"));
    assert!(
        line(&text, "max-connections-per-ip").contains(" 9 "),
        "{text}"
    );
    assert!(line(&text, "max-connections-per-ip").ends_with("flag"));
    assert!(
        line(&text, "header-timeout-secs").ends_with("config file"),
        "{text}"
    );
    assert!(line(&text, "data-dir").contains(data.to_str().unwrap()));
    assert!(line(&text, "idle-unload-secs").ends_with("default"));
}

#[test]
fn check_config_explains_each_mistake() {
    let dir = tempfile::tempdir().unwrap();
    for (file, expected) in [
        (
            "lisen = \"127.0.0.1:1\"",
            "`lisen` is not a setting; did you mean `listen`?",
        ),
        ("listen = \"127.0.0.1\"", "invalid socket address"),
        ("demo = \"yes\"", "write true or false"),
        (
            "max-frame-bytes = \"12 parsecs\"",
            "max-frame-bytes = \"12 parsecs\"",
        ),
        ("listen = ", "not valid TOML"),
        ("tls-cert = \"/nonexistent.pem\"", "--tls-key"),
        (
            "tls-cert = \"/nonexistent.pem\"\ntls-key = \"/nonexistent.key\"",
            "cannot read a certificate chain from /nonexistent.pem",
        ),
    ] {
        let (ok, text) = check(dir.path(), file, &[], &[]);
        assert!(!ok, "{file} should be refused:\n{text}");
        assert!(
            text.contains(expected),
            "{file}: expected {expected:?} in:\n{text}"
        );
    }
}

#[test]
fn serve_runs_on_what_the_file_says() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = dir.path().join("relay.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata-dir = \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("DEALERSYNC_LISTEN")
        .env_remove("DEALERSYNC_DATA_DIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + common::DEADLINE;
    let healthy = loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break true;
        }
        if Instant::now() > until || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(healthy, "the relay listens on the file's address");
    assert!(
        dir.path().join("data").join("dealersync.db").exists(),
        "and keeps its data where the file says"
    );
}

#[test]
fn the_shipped_example_configuration_is_valid() {
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/dealersync.toml");
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&example)
        .env_remove("DEALERSYNC_LISTEN")
        .env_remove("DEALERSYNC_DATA_DIR")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(line(&text, "listen").contains("0.0.0.0:3030"), "{text}");
}
