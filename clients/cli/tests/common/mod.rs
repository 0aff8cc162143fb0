//! Test harness: the real `dealersync` and `dealersync-server` binaries, each device
//! with its own home directory.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use automerge::AutoCommit;
use base64::Engine as _;
use dealersync_cli::home::{Config, Home, SiteEntry, decode_claims};
use dealersync_core::domain;
use dealersync_core::protocol::DocumentId;
use dealersync_core::schema::{SiteHeader, SiteKind, VehicleModel};
use serde_json::{Value, json};

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

/// Whether the relay binary has the auth contracts of DESIGN.md (`serve --demo`,
/// `token`, `/api/sites`). Until they are wired into the binary, the harness sets the
/// network up through the admin path (`doc create`) and stores the devices' logins
/// itself; everything after login (offline commands, `sync`, `status`) is the same.
pub fn relay_has_auth() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        let out = Command::new(server_bin())
            .arg("--help")
            .output()
            .expect("run dealersync-server --help");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim_start().starts_with("token"))
    })
}

/// A running relay with its own data directory; killed on drop.
pub struct Server {
    pub child: Option<Child>,
    pub addr: String,
    pub data_dir: PathBuf,
    /// Sites and their documents when the harness created them (no auth contracts).
    pub fixture: Option<(DocumentId, Vec<(SiteHeader, DocumentId)>)>,
    _tmp: Option<tempfile::TempDir>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Creates a small network (hq → dc-north → rs-1, one model) with `doc create`.
fn create_fixture_network(data_dir: &Path) -> (DocumentId, Vec<(SiteHeader, DocumentId)>) {
    std::fs::create_dir_all(data_dir).unwrap();
    let h = |id: &str, kind, parent: Option<&str>| SiteHeader {
        id: id.into(),
        name: format!("{id} 站点"),
        kind,
        parent: parent.map(str::to_string),
    };
    let headers = [
        h("hq", SiteKind::HeadOffice, None),
        h("dc-north", SiteKind::DistributionCentre, Some("hq")),
        h("rs-1", SiteKind::Roadshow, Some("dc-north")),
    ];
    let now = chrono::Utc::now().timestamp_millis();
    let mut net = AutoCommit::new();
    domain::init_network_document(&mut net, now).unwrap();
    for s in &headers {
        domain::put_site(&mut net, s, "admin", now).unwrap();
    }
    let model = VehicleModel {
        code: "SDN-A".into(),
        name: "轿车 A".into(),
        trims: vec!["Comfort".into()],
        cost: 12_000_000,
        list_price: 15_200_000,
    };
    domain::put_model(&mut net, &model, "admin", now).unwrap();
    let create = |id: DocumentId, bytes: Vec<u8>| {
        let f = data_dir.join(format!("{id}.automerge"));
        std::fs::write(&f, bytes).unwrap();
        let out = Command::new(server_bin())
            .args(["doc", "create", "--data-dir"])
            .arg(data_dir)
            .args(["--id", &id.to_string(), "--from"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let network = DocumentId::random();
    create(network, net.save());
    let mut sites = Vec::new();
    for s in headers {
        let id = DocumentId::random();
        create(id, domain::create_site_document(&s, now).unwrap().save());
        sites.push((s, id));
    }
    (network, sites)
}

impl Server {
    /// Starts a relay on a fresh data directory seeded with the demo network (or, before
    /// the binary has `--demo`, a small network made with `doc create`).
    pub fn start_demo() -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let fixture = (!relay_has_auth()).then(|| create_fixture_network(&data_dir));
        let mut s = Server {
            child: None,
            addr: format!("127.0.0.1:{}", free_port()),
            data_dir,
            fixture,
            _tmp: Some(tmp),
        };
        s.spawn(true);
        s
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
        if demo && self.fixture.is_none() {
            cmd.arg("--demo");
        }
        self.child = Some(cmd.spawn().expect("start dealersync-server"));
        let addr = self.addr.clone();
        wait_for("the server's /healthz", Duration::from_secs(30), || {
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

    /// A token minted by `dealersync-server token` (or, without auth in the binary, an
    /// unsigned one carrying the same claims).
    pub fn token(&self, sub: &str, role: &str, site: &str) -> String {
        if self.fixture.is_some() {
            let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
            return format!(
                "{}.{}.dW5zaWduZWQ",
                b64(r#"{"alg":"HS256","typ":"JWT"}"#),
                b64(&format!(
                    r#"{{"sub":"{sub}","role":"{role}","site":"{site}","exp":4102444800,"jti":"{sub}"}}"#
                ))
            );
        }
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
        if let Some((_, sites)) = &self.fixture {
            return sites
                .iter()
                .map(|(h, id)| {
                    json!({"id": h.id, "name": h.name, "kind": h.kind.as_str(),
                           "parent": h.parent, "documentId": id.to_string()})
                })
                .collect();
        }
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

    /// Logs in (which also syncs). Without auth in the relay binary there is no
    /// `/api/sites`: the login `dealersync login` would store is written directly, with
    /// the sites the policy lets the token's user read, and the device syncs.
    pub fn login(&self, server: &Server, token: &str) {
        let Some((network, sites)) = &server.fixture else {
            self.ok(&["login", "--server", &server.url(), "--token", token]);
            return;
        };
        let mut config = Config {
            server: server.url(),
            token: token.into(),
            claims: decode_claims(token).unwrap(),
            network: *network,
            sites: sites
                .iter()
                .map(|(h, id)| SiteEntry {
                    id: h.id.clone(),
                    name: h.name.clone(),
                    kind: h.kind.to_string(),
                    parent: h.parent.clone(),
                    document_id: *id,
                })
                .collect(),
            storage_id: uuid::Uuid::new_v4().to_string(),
        };
        let readable: Vec<SiteEntry> = config
            .sites
            .iter()
            .filter(|s| config.site_access(&s.id).can_read())
            .cloned()
            .collect();
        config.sites = readable;
        Home {
            dir: self.home().to_path_buf(),
        }
        .save_config(&config)
        .unwrap();
        self.ok(&["sync"]);
    }
}
