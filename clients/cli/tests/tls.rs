//! TLS end to end: the relay serving its own certificate (`--tls-cert`, `--tls-key`),
//! the field client trusting a dealer's private CA (`--ca`), refusing a certificate
//! from another CA or an expired one, and the relay reloading its certificate on
//! SIGHUP without dropping the connections it has.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{Device, free_port, server_bin, wait_for};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};

/// A CA: its certificate (PEM) and what signs with it.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A certificate for `localhost` and 127.0.0.1 signed by `ca`, valid now or (with
/// `expired`) only in 2020; writes `NAME.pem` and `NAME.key` into `dir`.
fn leaf(ca: &Ca, dir: &Path, name: &str, expired: bool) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name}.localhost"));
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 12, 31);
    }
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let (cert_path, key_path) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

/// A TLS connection to the relay trusting `ca_pem` only; `Err` if the handshake fails.
fn tls_connect(
    addr: &str,
    ca_pem: &str,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> =
        rustls::pki_types::pem::PemObject::pem_slice_iter(ca_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    roots.add_parsable_certificates(certs);
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| e.to_string())?;
    }
    Ok(stream)
}

/// `GET /healthz` on an open keep-alive TLS connection: the status code.
fn healthz(stream: &mut impl ReadWrite) -> std::io::Result<u16> {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf)?;
    let head = String::from_utf8_lossy(&buf[..n]);
    Ok(head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0))
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// A demo relay serving TLS with `cert`/`key`; killed on drop.
struct TlsRelay {
    child: std::process::Child,
    addr: String,
    data_dir: PathBuf,
}

impl TlsRelay {
    fn start(dir: &Path, cert: &Path, key: &Path, ca_pem: &str) -> TlsRelay {
        let addr = format!("127.0.0.1:{}", free_port());
        let data_dir = dir.join("data");
        let child = Command::new(server_bin())
            .args(["serve", "--demo", "--listen", &addr, "--data-dir"])
            .arg(&data_dir)
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dealersync-server");
        // Seeding the demo network in a debug build on a busy machine takes a while.
        wait_for(
            "the relay's /healthz over TLS",
            Duration::from_secs(180),
            || {
                tls_connect(&addr, ca_pem)
                    .and_then(|mut s| healthz(&mut s).map_err(|e| e.to_string()))
                    .is_ok_and(|status| status == 200)
            },
        );
        TlsRelay {
            child,
            addr,
            data_dir,
        }
    }

    fn token(&self, sub: &str, role: &str, site: &str) -> String {
        let out = Command::new(server_bin())
            .args(["token", "--data-dir"])
            .arg(&self.data_dir)
            .args(["--sub", sub, "--role", role, "--site", site])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for TlsRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn login(device: &Device, url: &str, token: &str, ca: &Path) -> std::process::Output {
    device.run(&[
        "login",
        "--server",
        url,
        "--token",
        token,
        "--ca",
        ca.to_str().unwrap(),
        "--timeout",
        "120",
    ])
}

#[test]
fn the_field_client_syncs_over_wss_with_a_private_ca_and_refuses_other_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let dealer = ca("Dealer private CA");
    let other = ca("Somebody else's CA");
    let ca_file = dir.path().join("dealer-ca.pem");
    let other_file = dir.path().join("other-ca.pem");
    std::fs::write(&ca_file, &dealer.pem).unwrap();
    std::fs::write(&other_file, &other.pem).unwrap();
    let (cert, key) = leaf(&dealer, dir.path(), "relay", false);
    let relay = TlsRelay::start(dir.path(), &cert, &key, &dealer.pem);
    let token = relay.token("ops", "admin", "hq");
    let url = format!(
        "https://localhost:{}",
        relay.addr.rsplit(':').next().unwrap()
    );

    // Trusting the dealer's CA: login, an edit, a sync over wss.
    let phone = Device::new("phone");
    let out = login(&phone, &url, &token, &ca_file);
    assert!(
        out.status.success(),
        "login over https with the dealer's CA: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The device remembers the CA: a plain `sync` later needs no flag.
    let synced = phone.json(&["sync", "--timeout", "120"]);
    assert_eq!(synced["ok"], true, "{synced}");
    let docs = synced["documents"]
        .as_array()
        .expect("one report per document");
    assert!(docs.len() >= 2, "the network and site documents: {synced}");
    assert!(
        docs.iter().all(|d| d["outcome"] == "synced"),
        "every document synced over wss: {synced}"
    );

    // Trusting another CA: refused, and the error says why.
    let stranger = Device::new("stranger");
    let out = login(&stranger, &url, &token, &other_file);
    assert!(
        !out.status.success(),
        "a relay signed by an unknown CA is refused"
    );
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("certificate"),
        "the error names the certificate: {err}"
    );

    // SIGHUP: a renewed certificate (from another CA here, to tell them apart) is
    // served to new connections, while a connection opened before stays usable.
    let mut before = tls_connect(&relay.addr, &dealer.pem).expect("TLS with the first pair");
    assert_eq!(healthz(&mut before).unwrap(), 200);
    let (cert2, key2) = leaf(&other, dir.path(), "renewed", false);
    std::fs::copy(&cert2, &cert).unwrap();
    std::fs::copy(&key2, &key).unwrap();
    relay.hangup();
    wait_for(
        "the renewed certificate after SIGHUP",
        Duration::from_secs(30),
        || tls_connect(&relay.addr, &other.pem).is_ok(),
    );
    assert!(
        tls_connect(&relay.addr, &dealer.pem).is_err(),
        "the old certificate is no longer served"
    );
    assert_eq!(
        healthz(&mut before).unwrap(),
        200,
        "the connection opened before the reload still works"
    );

    // A reload to a broken pair keeps serving the renewed one.
    std::fs::write(&key, "not a key").unwrap();
    relay.hangup();
    let mut probe = tls_connect(&relay.addr, &other.pem).expect("still the renewed pair");
    assert_eq!(healthz(&mut probe).unwrap(), 200);

    // An expired certificate (reloaded the same way) is refused by the client.
    let (expired_cert, expired_key) = leaf(&dealer, dir.path(), "expired", true);
    std::fs::copy(&expired_cert, &cert).unwrap();
    std::fs::copy(&expired_key, &key).unwrap();
    relay.hangup();
    let late = Device::new("late");
    wait_for(
        "the expired certificate served",
        Duration::from_secs(30),
        || {
            let out = login(&late, &url, &token, &ca_file);
            let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
            !out.status.success() && err.contains("expired")
        },
    );
}

#[test]
fn plain_http_to_a_public_address_is_refused_before_sending_the_token() {
    let phone = Device::new("phone");
    // 203.0.113.0/24 is TEST-NET-3: nothing answers there, so a refusal that came
    // after trying to connect would show as a timeout, not this message.
    let err = phone.fails(&[
        "login",
        "--server",
        "http://203.0.113.7:3030",
        "--token",
        "a.b.c",
    ]);
    assert!(err.contains("clear text"), "{err}");
    assert!(
        err.contains("--insecure"),
        "the error says how to override: {err}"
    );
}
