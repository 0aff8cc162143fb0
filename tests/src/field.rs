//! People and devices for the browser tests: a field client (`dealersync` CLI) on a
//! device of its own, and one-time sign-in links as an operator issues them.

use anyhow::Context;
use serde_json::Value;

use crate::ServerProcess;
use crate::browser::cli_binary;

/// The field client on a device of its own (its `--home`).
pub struct Field {
    /// The device's home directory.
    pub home: tempfile::TempDir,
}

impl Field {
    /// A new device with an empty home.
    pub fn new() -> anyhow::Result<Field> {
        Ok(Field {
            home: tempfile::tempdir()?,
        })
    }

    /// A device logged in to `server` as `user` (`role` at `site`) and synced.
    pub async fn logged_in(
        server: &ServerProcess,
        user: &str,
        role: &str,
        site: &str,
    ) -> anyhow::Result<Field> {
        let field = Field::new()?;
        let token = server.token(user, role, site).await?;
        field
            .run(&["login", "--server", &server.http_url(), "--token", &token])
            .await?;
        field.run(&["sync", "--timeout", "60"]).await?;
        Ok(field)
    }

    /// Runs `dealersync --home H ARGS...`; its stdout, or an error with all output.
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = tokio::process::Command::new(cli_binary()?)
            .arg("--home")
            .arg(self.home.path())
            .args(args)
            .output()
            .await?;
        anyhow::ensure!(
            out.status.success(),
            "dealersync {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    }

    /// [`Field::run`] with `--json`, parsed.
    pub async fn json(&self, args: &[&str]) -> anyhow::Result<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        Ok(serde_json::from_str(&self.run(&all).await?)?)
    }
}

/// A one-time sign-in link from `dealersync-server sign-in-code`, as an operator gets
/// it, going to `next` after signing in.
pub async fn sign_in_link(
    server: &ServerProcess,
    user: &str,
    role: &str,
    site: &str,
    next: &str,
) -> anyhow::Result<String> {
    let out = server
        .admin(&[
            "sign-in-code",
            "--user",
            user,
            "--role",
            role,
            "--site",
            site,
            "--base-url",
            &server.http_url(),
        ])
        .await?;
    let link = out.lines().nth(1).context("the link line")?;
    Ok(format!("{link}&next={next}"))
}
