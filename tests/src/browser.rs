//! A real browser for the board and console tests: Debian's `chromium`, headless,
//! driven by npm's `playwright-core` through `tests/browser/driver.mjs` (one JSON
//! command per line, answered like the interop client). `.ci/run` installs chromium;
//! the npm package is installed here on first use, exactly as locked.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};

use crate::{HarnessError, JsClient, Result, ServerProcess, ensure_npm_once, ms, workspace_binary};

/// The npm project with the browser driver (`tests/browser`).
pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Installs tests/browser's npm packages (`npm ci`) once per process.
pub fn ensure_browser_npm() -> Result<()> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    ensure_npm_once(&DONE, &browser_dir())
}

/// The Chromium to drive: `DEALERSYNC_CHROMIUM`, else `chromium` (Debian) or
/// `chromium-browser` on PATH.
pub fn chromium_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("DEALERSYNC_CHROMIUM") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(HarnessError::Chromium(
        "no chromium on PATH: install Debian's package (`apt-get install chromium`, which \
         .ci/run does) or set DEALERSYNC_CHROMIUM"
            .into(),
    ))
}

/// The field client binary `dealersync` (or `DEALERSYNC_CLI_BIN`).
pub fn cli_binary() -> Result<PathBuf> {
    workspace_binary("dealersync", "DEALERSYNC_CLI_BIN")
}

/// `target/screenshots/` of the workspace (created): where the tests leave their
/// screenshots for people to look at.
pub fn screenshot_dir() -> Result<PathBuf> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("screenshots");
    std::fs::create_dir_all(&dir)
        .map_err(|e| HarnessError::Io(format!("create {}", dir.display()), e))?;
    Ok(dir)
}

/// Runs one of the field app's browser scenarios (`clients/web/e2e/SCRIPT`, node with
/// tsx; they drive Chromium with playwright-core themselves) against `server`, with
/// `config` as its one argument (`base`, the relay's URL unless `config` names another
/// way to it such as a proxy, and `shots`, where its screenshots go, added), and returns the JSON line it prints last. A scenario that
/// fails, or does not finish within `deadline`, is an error carrying its stderr and the
/// relay's log.
pub async fn run_app_scenario(
    server: &ServerProcess,
    script: &str,
    shots: &Path,
    mut config: Value,
    deadline: Duration,
) -> Result<Value> {
    if config.get("base").is_none() {
        config["base"] = json!(server.http_url());
    }
    config["shots"] = json!(shots);
    let run = tokio::process::Command::new("node")
        .args(["--import", "tsx"])
        .arg(Path::new("e2e").join(script))
        .arg(config.to_string())
        .current_dir(crate::web_dir())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let failed = |why: String| {
        HarnessError::Chromium(format!(
            "{script} {why}\n(screenshots in {})\n--- relay log (tail) ---\n{}",
            shots.display(),
            server.log_tail(3000)
        ))
    };
    let out = tokio::time::timeout(deadline, run)
        .await
        .map_err(|_| failed(format!("did not finish within {deadline:?}")))?
        .map_err(|e| failed(format!("could not run node: {e}")))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(failed(format!("failed:\n{stderr}")));
    }
    let last = out
        .stdout
        .split(|b| *b == b'\n')
        .rfind(|l| !l.is_empty())
        .unwrap_or_default();
    serde_json::from_slice(last)
        .map_err(|e| failed(format!("printed no JSON result ({e}):\n{stderr}")))
}

/// A headless Chromium with named sessions: each a browser context of its own (its
/// own cookies, so its own signed-in person) with one page.
pub struct Browser {
    driver: JsClient,
}

/// What a session's page saw at a URL.
#[derive(Debug, Clone)]
pub struct Visit {
    /// The HTTP status of the page's answer.
    pub status: Option<u16>,
    /// Where the page ended up (after redirects).
    pub url: String,
}

impl Browser {
    /// Starts Chromium (installing the npm driver first if needed).
    pub async fn start() -> Result<Self> {
        ensure_browser_npm()?;
        let chromium = chromium_binary()?;
        let driver = JsClient::spawn_script(
            "chromium",
            &browser_dir(),
            "driver.mjs",
            &json!({ "chromium": chromium }),
        )?;
        Ok(Browser { driver })
    }

    async fn call(&self, cmd: Value) -> Result<Value> {
        self.driver.call(cmd).await
    }

    /// Opens a session with a page of `width` × `height` CSS pixels.
    pub async fn open(&self, session: &str, width: u32, height: u32) -> Result<()> {
        self.call(json!({"cmd": "open", "session": session, "width": width, "height": height}))
            .await
            .map(drop)
    }

    /// Opens a sign-in link and presses the sign-in button, as a person would; returns
    /// the page the session lands on.
    pub async fn sign_in(&self, session: &str, link: &str, deadline: Duration) -> Result<String> {
        let v = self
            .call(json!({"cmd": "signIn", "session": session, "url": link, "timeoutMs": ms(deadline)}))
            .await?;
        Ok(v["url"].as_str().unwrap_or_default().to_string())
    }

    /// Navigates the session's page.
    pub async fn goto(&self, session: &str, url: &str) -> Result<Visit> {
        let v = self
            .call(json!({"cmd": "goto", "session": session, "url": url, "timeoutMs": 30_000}))
            .await?;
        Ok(Visit {
            status: v["status"].as_u64().map(|s| s as u16),
            url: v["url"].as_str().unwrap_or_default().to_string(),
        })
    }

    /// Waits until an element matching `selector` exists.
    pub async fn wait_for(&self, session: &str, selector: &str, deadline: Duration) -> Result<()> {
        self.call(json!({"cmd": "waitSelector", "session": session, "selector": selector, "timeoutMs": ms(deadline)}))
            .await
            .map(drop)
    }

    /// Waits until no element matches `selector`.
    pub async fn wait_gone(&self, session: &str, selector: &str, deadline: Duration) -> Result<()> {
        self.call(json!({"cmd": "waitGone", "session": session, "selector": selector, "timeoutMs": ms(deadline)}))
            .await
            .map(drop)
    }

    /// How many elements match `selector` now.
    pub async fn count(&self, session: &str, selector: &str) -> Result<u64> {
        let v = self
            .call(json!({"cmd": "count", "session": session, "selector": selector}))
            .await?;
        Ok(v["count"].as_u64().unwrap_or(0))
    }

    /// The text of the first element matching `selector`.
    pub async fn text(&self, session: &str, selector: &str) -> Result<String> {
        let v = self
            .call(json!({"cmd": "text", "session": session, "selector": selector}))
            .await?;
        Ok(v["text"].as_str().unwrap_or_default().to_string())
    }

    /// Waits until the text of `selector` differs from `old` (polled every 50 ms in the
    /// page), and returns it.
    pub async fn wait_text_change(
        &self,
        session: &str,
        selector: &str,
        old: &str,
        deadline: Duration,
    ) -> Result<String> {
        let v = self
            .call(json!({"cmd": "waitText", "session": session, "selector": selector, "not": old, "timeoutMs": ms(deadline)}))
            .await?;
        Ok(v["text"].as_str().unwrap_or_default().to_string())
    }

    /// Clicks the first element matching `selector`.
    pub async fn click(&self, session: &str, selector: &str) -> Result<()> {
        self.call(json!({"cmd": "click", "session": session, "selector": selector}))
            .await
            .map(drop)
    }

    /// Types `value` into the field matching `selector`.
    pub async fn fill(&self, session: &str, selector: &str, value: &str) -> Result<()> {
        self.call(json!({"cmd": "fill", "session": session, "selector": selector, "value": value}))
            .await
            .map(drop)
    }

    /// `fetch(path)` from the session's page (with its cookie): status and body.
    pub async fn fetch(&self, session: &str, path: &str) -> Result<(u16, String)> {
        let v = self
            .call(json!({"cmd": "fetch", "session": session, "path": path}))
            .await?;
        Ok((
            v["status"].as_u64().unwrap_or(0) as u16,
            v["body"].as_str().unwrap_or_default().to_string(),
        ))
    }

    /// Saves a full-page PNG of the session's page.
    pub async fn screenshot(&self, session: &str, path: &Path) -> Result<()> {
        self.call(json!({"cmd": "screenshot", "session": session, "path": path}))
            .await
            .map(drop)
    }

    /// Errors the session's pages threw or logged so far.
    pub async fn page_errors(&self, session: &str) -> Result<Vec<String>> {
        let v = self
            .call(json!({"cmd": "errors", "session": session}))
            .await?;
        Ok(v["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e.as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Closes Chromium; `Err` if the driver failed a command along the way.
    pub async fn close(self) -> Result<()> {
        let status = self.driver.close().await?;
        if status.success() {
            Ok(())
        } else {
            Err(HarnessError::Chromium(format!(
                "the browser driver exited with {status}"
            )))
        }
    }
}
