//! Backups that restore: a consistent copy of the database taken while the relay
//! serves, a checksum beside it, a check that every document in it loads, and a
//! restore into an empty data directory.
//!
//! A backup is one SQLite file written by `VACUUM INTO`, which reads the database in
//! one read transaction: it holds every transaction committed before it started, and
//! the relay acknowledges a change only once its transaction has committed, so a
//! backup holds every change acknowledged before it began. Files the data directory
//! needs besides the database (the token signing secret) travel inside it, in a
//! `backup_files` table, so that one file restores a relay whose old tokens still
//! verify. `FILE.sha256` beside it is in `sha256sum` format.
//!
//! Restoring gives the relay a new storage id and forgets the sync states it kept:
//! devices that synced after the backup then treat the restored relay as a peer they
//! have never synced with, and send it everything it lacks instead of trusting what
//! they remember it had.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use dealersync_core::store::{Store, StoredDocument};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::{DB_FILE, SCHEMA_VERSION, SqliteStore, StoreOptions};

/// The backup format this code writes and reads.
pub const BACKUP_FORMAT: i64 = 1;

/// Why a backup, check or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The target already exists: a backup never overwrites one, a restore never
    /// replaces a data directory in use.
    #[error("{0} already exists; choose another file or an empty data directory")]
    Exists(PathBuf),
    /// Reading or writing a file failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// SQLite refused (the source database, or the backup file).
    #[error("{path}: {reason}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        reason: String,
    },
    /// The backup file does not match its checksum, fails SQLite's integrity check,
    /// lacks its manifest, or holds a document that does not load.
    #[error("{path} is not a usable backup: {reason}")]
    Invalid {
        /// The backup file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |error| BackupError::Io {
        path: path.to_path_buf(),
        error,
    }
}

fn db(path: &Path) -> impl Fn(rusqlite::Error) -> BackupError + '_ {
    move |e| BackupError::Database {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// What a backup holds, as `verify` found it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupReport {
    /// The backup file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// When it was taken (ms since the epoch).
    pub created_at_ms: i64,
    /// Documents in it, each loaded.
    pub documents: u64,
    /// Changes over all documents.
    pub changes: u64,
    /// Audit rows (accepted changes with their user and device).
    pub audit_rows: u64,
    /// The files of the data directory carried inside (names).
    pub files: Vec<String>,
}

/// The checksum file of `backup`: `backup` with `.sha256` appended.
pub fn checksum_path(backup: &Path) -> PathBuf {
    with_suffix(backup, ".sha256")
}

/// Copies the database of `data_dir` to `to` while it may be in use, with `files`
/// (name, bytes) carried inside, then writes the checksum file. `now_ms` is recorded
/// as the time of the backup. Never overwrites.
pub fn backup(
    data_dir: &Path,
    to: &Path,
    files: &[(String, Vec<u8>)],
    now_ms: i64,
) -> Result<BackupReport, BackupError> {
    let source = data_dir.join(DB_FILE);
    if !source.exists() {
        return Err(BackupError::Io {
            path: source,
            error: std::io::Error::new(std::io::ErrorKind::NotFound, "no database to back up"),
        });
    }
    if to.exists() {
        return Err(BackupError::Exists(to.to_path_buf()));
    }
    let partial = with_suffix(to, ".partial");
    let _ = std::fs::remove_file(&partial);
    {
        let conn = Connection::open_with_flags(
            &source,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db(&source))?;
        // The relay's group commits hold the write lock briefly; a reader in WAL
        // mode does not wait for them, but a checkpoint may.
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(db(&source))?;
        let target = partial.to_str().ok_or_else(|| BackupError::Io {
            path: partial.clone(),
            error: std::io::Error::other("the path is not UTF-8"),
        })?;
        conn.execute("VACUUM INTO ?1", [target])
            .map_err(db(&source))?;
    }
    {
        let conn = Connection::open(&partial).map_err(db(&partial))?;
        conn.execute_batch(
            "PRAGMA journal_mode = DELETE;
             CREATE TABLE backup_manifest (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE backup_files (name TEXT PRIMARY KEY, bytes BLOB NOT NULL);",
        )
        .map_err(db(&partial))?;
        conn.execute(
            "INSERT INTO backup_manifest (key, value) VALUES ('format', ?1), ('created_at_ms', ?2)",
            [BACKUP_FORMAT, now_ms],
        )
        .map_err(db(&partial))?;
        for (name, bytes) in files {
            conn.execute(
                "INSERT INTO backup_files (name, bytes) VALUES (?1, ?2)",
                rusqlite::params![name, bytes],
            )
            .map_err(db(&partial))?;
        }
    }
    restrict_permissions(&partial)?;
    sync_file(&partial)?;
    let sha = sha256_of(&partial)?;
    let file_name = to
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sums = checksum_path(to);
    std::fs::write(&sums, format!("{sha}  {file_name}\n")).map_err(io(&sums))?;
    std::fs::rename(&partial, to).map_err(io(to))?;
    sync_dir(to)?;
    verify(to)
}

/// Checks a backup: the checksum file matches, SQLite's integrity check passes, the
/// manifest is of a known format, and every document loads. Reads only.
pub fn verify(path: &Path) -> Result<BackupReport, BackupError> {
    let invalid = |reason: String| BackupError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let sums = checksum_path(path);
    let expected = std::fs::read_to_string(&sums).map_err(|e| {
        invalid(format!(
            "cannot read its checksum file {}: {e}",
            sums.display()
        ))
    })?;
    let expected = expected.split_whitespace().next().unwrap_or_default();
    let sha = sha256_of(path)?;
    if !expected.eq_ignore_ascii_case(&sha) {
        return Err(invalid(format!(
            "its SHA-256 is {sha}, the checksum file says {expected}: the file was damaged or changed"
        )));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db(path))?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(db(path))?;
    if integrity != "ok" {
        return Err(invalid(format!("SQLite's integrity check: {integrity}")));
    }
    let manifest = |key: &str| -> Result<Option<i64>, BackupError> {
        conn.query_row(
            "SELECT value FROM backup_manifest WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| {
            invalid(format!(
                "no backup manifest ({e}); was it made by `backup`?"
            ))
        })
    };
    match manifest("format")? {
        Some(BACKUP_FORMAT) => {}
        other => return Err(invalid(format!("unknown backup format {other:?}"))),
    }
    let created_at_ms = manifest("created_at_ms")?.unwrap_or_default();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db(path))?;
    if version > SCHEMA_VERSION {
        return Err(invalid(format!(
            "its schema version {version} is newer than this release's {SCHEMA_VERSION}; restore it with the release that made it"
        )));
    }
    let files = conn
        .prepare("SELECT name FROM backup_files ORDER BY name")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(db(path))?;
    let audit_rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))
        .map_err(db(path))?;
    let (documents, changes) = load_every_document(&conn, path)?;
    let bytes = std::fs::metadata(path).map_err(io(path))?.len();
    Ok(BackupReport {
        path: path.to_path_buf(),
        bytes,
        sha256: sha,
        created_at_ms,
        documents,
        changes,
        audit_rows: audit_rows as u64,
        files,
    })
}

/// Loads every document of the backup; (documents, changes).
fn load_every_document(conn: &Connection, path: &Path) -> Result<(u64, u64), BackupError> {
    let ids: Vec<String> = conn
        .prepare("SELECT doc_id FROM documents ORDER BY doc_id")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(db(path))?;
    let mut chunks_of = conn
        .prepare("SELECT bytes FROM chunks WHERE doc_id = ?1 ORDER BY kind ASC, seq ASC")
        .map_err(db(path))?;
    let mut changes = 0u64;
    for id in &ids {
        let chunks = chunks_of
            .query_map([id], |r| r.get::<_, Vec<u8>>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(db(path))?;
        let doc = StoredDocument {
            chunks,
            ..StoredDocument::default()
        }
        .load()
        .map_err(|e| BackupError::Invalid {
            path: path.to_path_buf(),
            reason: format!("document {id} does not load: {e}"),
        })?;
        changes += doc.get_changes(&[]).len() as u64;
    }
    Ok((ids.len() as u64, changes))
}

/// Restores `backup` into `data_dir`, which must not hold a database: verifies it,
/// writes its carried files into the directory (mode 0600), and puts the database in
/// place last, under a new relay storage id and without the old sync states.
pub fn restore(backup: &Path, data_dir: &Path) -> Result<BackupReport, BackupError> {
    let report = verify(backup)?;
    let target = data_dir.join(DB_FILE);
    for existing in [
        target.clone(),
        with_suffix(&target, "-wal"),
        with_suffix(&target, "-shm"),
    ] {
        if existing.exists() {
            return Err(BackupError::Exists(existing));
        }
    }
    std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    let restoring = with_suffix(&target, ".restoring");
    let _ = std::fs::remove_file(&restoring);
    std::fs::copy(backup, &restoring).map_err(io(&restoring))?;
    let carried = {
        let conn = Connection::open(&restoring).map_err(db(&restoring))?;
        let carried = conn
            .prepare("SELECT name, bytes FROM backup_files")
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()
            })
            .map_err(db(&restoring))?;
        conn.execute_batch(
            "DROP TABLE backup_manifest;
             DROP TABLE backup_files;
             DELETE FROM sync_states;
             DELETE FROM relay_meta WHERE key = 'storage_id';",
        )
        .map_err(db(&restoring))?;
        carried
    };
    for (name, bytes) in &carried {
        if name.contains(['/', '\\']) || name.starts_with('.') || name == DB_FILE {
            return Err(BackupError::Invalid {
                path: backup.to_path_buf(),
                reason: format!("it carries a file with a name it must not have: {name:?}"),
            });
        }
        let path = data_dir.join(name);
        if path.exists() {
            return Err(BackupError::Exists(path));
        }
        write_private(&path, bytes)?;
    }
    sync_file(&restoring)?;
    std::fs::rename(&restoring, &target).map_err(io(&target))?;
    sync_dir(&target)?;
    // Open it the way the relay will: WAL, migrations, a fresh storage id.
    let store = SqliteStore::open(data_dir, &StoreOptions::default()).map_err(|e| {
        BackupError::Database {
            path: target.clone(),
            reason: e.to_string(),
        }
    })?;
    store
        .relay_storage_id()
        .map_err(|e| BackupError::Database {
            path: target.clone(),
            reason: e.to_string(),
        })?;
    for id in store.document_ids().map_err(|e| BackupError::Database {
        path: target.clone(),
        reason: e.to_string(),
    })? {
        if store.load(&id).ok().flatten().is_none() {
            return Err(BackupError::Invalid {
                path: target,
                reason: format!("document {id} is missing after the restore"),
            });
        }
    }
    Ok(report)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn sha256_of(path: &Path) -> Result<String, BackupError> {
    let mut file = File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn sync_file(path: &Path) -> Result<(), BackupError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))
}

/// Makes a rename durable: the directory entry is on disk too.
fn sync_dir(path: &Path) -> Result<(), BackupError> {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(io(dir))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The backup carries the token signing secret: only its owner may read it.
fn restrict_permissions(path: &Path) -> Result<(), BackupError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}
