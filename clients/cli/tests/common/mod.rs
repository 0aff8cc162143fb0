//! Test harness: the real `dealersync` and `dealersync-server` binaries, each device
//! with its own home directory.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The CLI binary under test.
pub fn cli_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dealersync"))
}

/// The relay binary, built next to the CLI (`cargo build -p dealersync-server`, or any
/// workspace build).
pub fn server_bin() -> PathBuf {
    let p = cli_bin()
        .parent()
        .expect("binary dir")
        .join(format!("dealersync-server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        p.exists(),
        "{} is missing: build it first with `cargo build -p dealersync-server` \
         (or run `cargo test --workspace`)",
        p.display()
    );
    p
}

/// Polls `cond` until it holds or `deadline` passes.
pub fn wait_for(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {deadline:?} waiting for {what}");
}

/// A plain HTTP GET on localhost; returns (status, body).
pub fn http_get(addr: &str, path: &str, token: Option<&str>) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    Ok((status, body))
}

/// A running relay with its own data directory; killed on drop.
pub struct Server {
    pub child: Option<Child>,
    pub addr: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Starts a relay on a fresh data directory seeded with the demo network.
    pub fn start_demo() -> Server {
        let mut s = Server::unstarted();
        s.spawn(true);
        s
    }

    /// A server on a free port and a fresh data directory, not started yet.
    fn unstarted() -> Server {
        let tmp = tempfile::tempdir().unwrap();
        Server {
            child: None,
            addr: format!("127.0.0.1:{}", free_port()),
            data_dir: tmp.path().join("data"),
            _tmp: Some(tmp),
        }
    }

    /// Starts a relay on a fresh data directory holding the sites `site add` creates
    /// from each argument list (`["--id", "hq", "--name", ..., "--kind", ...]`).
    pub fn start_with_sites(sites: &[&[&str]]) -> Server {
        let mut s = Server::unstarted();
        for args in sites {
            let mut all = vec!["site", "add"];
            all.extend_from_slice(args);
            s.admin(&all);
        }
        s.spawn(false);
        s
    }

    /// Runs a `dealersync-server` admin command on this relay's data directory; returns
    /// its stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = Command::new(server_bin())
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .output()
            .expect("run dealersync-server");
        assert!(
            out.status.success(),
            "dealersync-server {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// (Re)starts the process on the same address and data directory.
    pub fn spawn(&mut self, demo: bool) {
        let mut cmd = Command::new(server_bin());
        cmd.arg("serve")
            .arg("--listen")
            .arg(&self.addr)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if demo {
            cmd.arg("--demo");
        }
        self.child = Some(cmd.spawn().expect("start dealersync-server"));
        let addr = self.addr.clone();
        // Seeding the demo network in a debug build on a busy machine takes a while.
        wait_for("the server's /healthz", Duration::from_secs(180), || {
            matches!(http_get(&addr, "/healthz", None), Ok((200, _)))
        });
    }

    /// Kills the process (SIGKILL), keeping the data directory.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The base URL the CLI logs in to.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A token minted by `dealersync-server token`.
    pub fn token(&self, sub: &str, role: &str, site: &str) -> String {
        let out = Command::new(server_bin())
            .args(["token", "--data-dir"])
            .arg(&self.data_dir)
            .args(["--sub", sub, "--role", role, "--site", site])
            .output()
            .expect("run dealersync-server token");
        assert!(
            out.status.success(),
            "token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// `GET /api/sites` as the given token: the sites it may read.
    pub fn sites(&self, token: &str) -> Vec<Value> {
        let (status, body) = http_get(&self.addr, "/api/sites", Some(token)).unwrap();
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One device: a home directory for `dealersync`.
pub struct Device {
    pub home: tempfile::TempDir,
    pub name: String,
}

impl Device {
    /// A device with an empty home.
    pub fn new(name: &str) -> Device {
        Device {
            home: tempfile::tempdir().unwrap(),
            name: name.to_string(),
        }
    }

    /// The home directory.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// A `dealersync` command for this device.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(cli_bin());
        c.arg("--home").arg(self.home()).args(args);
        c.env_remove("DEALERSYNC_SITE")
            .env_remove("DEALERSYNC_HOME");
        c
    }

    /// Runs a command; returns its output whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run dealersync")
    }

    /// Runs a command that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{}: `dealersync {}` failed:\nstdout: {}\nstderr: {}",
            self.name,
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "{}: `dealersync {}` should have failed but printed {}",
            self.name,
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Runs a command with `--json` that must succeed; parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    /// Logs in (which also syncs).
    pub fn login(&self, server: &Server, token: &str) {
        self.ok(&[
            "login",
            "--server",
            &server.url(),
            "--token",
            token,
            "--timeout",
            "180",
        ]);
    }
}

/// Changes of `site`'s document `status` says the device's server has not acknowledged.
pub fn unacknowledged(d: &Device, site: &str) -> i64 {
    let s = d.json(&["status"]);
    s["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["document"] == site)
        .unwrap()["unacknowledged"]
        .as_i64()
        .unwrap()
}
