//! The npm packages the JS tests and the field app need, installed once per run.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use crate::{HarnessError, Result, io_err};

/// The npm project with the scripted client (`tests/js`).
pub fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// Installs tests/js's npm dependencies exactly as locked (`npm ci`) unless an install
/// of the same package.json and package-lock.json is already there.
///
/// Safe to call from every test: the first call in a process does the work, and a
/// lock file serialises test binaries running in parallel. npm's output is shown only
/// when it fails.
pub fn ensure_npm() -> Result<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    ensure_npm_once(&DONE, &js_dir())
}

/// The field app's npm project (`clients/web`): its domain module, build and the
/// browser driver (playwright-core) of the end-to-end test.
pub fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("clients")
        .join("web")
}

/// [`ensure_npm`] for the field app's project, [`web_dir`].
pub fn ensure_web_npm() -> Result<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    ensure_npm_once(&DONE, &web_dir())
}

/// Runs `install_npm` for `dir` once per process (`done` remembers the outcome).
pub fn ensure_npm_once(done: &OnceLock<Result<(), String>>, dir: &Path) -> Result<()> {
    done.get_or_init(|| install_npm(dir).map_err(|e| e.to_string()))
        .clone()
        .map_err(|msg| HarnessError::NpmInstall {
            dir: dir.display().to_string(),
            status: "earlier attempt in this process".into(),
            output: msg,
        })
}

/// `npm ci` in the npm project `dir`, unless node_modules was installed from the same
/// package.json and package-lock.json.
pub(crate) fn install_npm(dir: &Path) -> Result<()> {
    check_tool("node", &["--version"])?;
    check_tool("npm", &["--version"])?;

    let lock_path = dir.join(".install.lock");
    let lock =
        File::create(&lock_path).map_err(io_err(format!("create {}", lock_path.display())))?;
    lock.lock()
        .map_err(io_err(format!("lock {}", lock_path.display())))?;

    // The stamp is the manifest and lock that node_modules was installed from; any
    // edit to either makes the install stale.
    let wanted = {
        let mut s = fs::read_to_string(dir.join("package.json"))
            .map_err(io_err(format!("read {}/package.json", dir.display())))?;
        s.push_str(
            &fs::read_to_string(dir.join("package-lock.json"))
                .map_err(io_err(format!("read {}/package-lock.json", dir.display())))?,
        );
        s
    };
    let stamp = dir.join("node_modules").join(".dealersync-install-stamp");
    if fs::read_to_string(&stamp).is_ok_and(|have| have == wanted) {
        return Ok(());
    }

    let out = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(io_err("run npm ci"))?;
    if !out.status.success() {
        return Err(HarnessError::NpmInstall {
            dir: dir.display().to_string(),
            status: out.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        });
    }
    fs::write(&stamp, wanted).map_err(io_err(format!("write {}", stamp.display())))?;
    Ok(())
}

pub(crate) fn check_tool(tool: &'static str, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| HarnessError::MissingTool {
            tool,
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(HarnessError::MissingTool {
            tool,
            detail: format!("`{tool} {}` exited with {}", args.join(" "), out.status),
        });
    }
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if tool == "node" {
        let major: u32 = version
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        if major < 18 {
            return Err(HarnessError::MissingTool {
                tool,
                detail: format!("found {version}, need >= 18"),
            });
        }
    }
    Ok(version)
}
