//! `dealersync-server backup | verify | restore`: the relay's side of
//! `dealersync_sqlite_store::backup`, which copies the database. Here: which files of
//! the data directory travel inside a backup (the token signing keys and the HS256
//! secret of an earlier release, without which every issued token stops verifying
//! after a restore; a downstream relay's cached upstream keys, so that a restored
//! relay verifies offline), and the text the commands print.

use std::path::Path;

use dealersync_sqlite_store::backup::{self, BackupError, BackupReport};

use crate::auth::SECRET_FILE;
use crate::auth::keys::KEYS_FILE;
use crate::trust::TRUST_FILE;

/// Files of the data directory a backup carries besides the database.
pub const CARRIED_FILES: &[&str] = &[KEYS_FILE, SECRET_FILE, TRUST_FILE];

/// Backs up `data_dir` to `to` (while the relay may be serving from it).
pub fn backup(data_dir: &Path, to: &Path) -> Result<BackupReport, BackupError> {
    let mut files = Vec::new();
    for name in CARRIED_FILES {
        let path = data_dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => files.push((name.to_string(), bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(BackupError::Io { path, error }),
        }
    }
    backup::backup(data_dir, to, &files, dealersync_core::time::now_ms())
}

/// What `backup`, `verify` and `restore` print about a backup.
pub fn describe(report: &BackupReport) -> String {
    let taken = chrono::DateTime::from_timestamp_millis(report.created_at_ms)
        .map(|t| {
            t.with_timezone(&dealersync_core::time::CST)
                .format("%Y-%m-%d %H:%M:%S CST")
                .to_string()
        })
        .unwrap_or_else(|| "unknown".into());
    format!(
        "{}\n  taken      {taken}\n  size       {} bytes\n  sha256     {}\n  documents  {} (every one loads), {} changes, {} audit rows\n  carries    {}\n",
        report.path.display(),
        report.bytes,
        report.sha256,
        report.documents,
        report.changes,
        report.audit_rows,
        if report.files.is_empty() {
            "no other file".to_string()
        } else {
            report.files.join(", ")
        }
    )
}
