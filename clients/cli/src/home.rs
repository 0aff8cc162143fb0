//! The device's home directory: the login (`config.json`) and the store
//! (`store.sqlite`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use dealersync_core::access::{Access, Claims, SiteNode, SiteTree};
use dealersync_core::protocol::DocumentId;
use serde::{Deserialize, Serialize};

/// Decodes (without verifying: the server verifies) the claims of a JWT, so the client
/// can say who is logged in and refuse writes the server would reject.
pub fn decode_claims(token: &str) -> Result<Claims> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| anyhow!("the token is not a JWT (expected three dot-separated parts)"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .context("the token's payload is not base64url")?;
    serde_json::from_slice(&bytes)
        .context("the token's payload lacks the dealersync claims (sub, role, site, exp, jti)")
}

/// A site this user may read, as the server listed it at login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteEntry {
    /// Site id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Site kind (head_office, distribution_centre, ...).
    pub kind: String,
    /// Parent site id.
    #[serde(default)]
    pub parent: Option<String>,
    /// The site document's id: its current working document (docs/growth.md).
    pub document_id: DocumentId,
    /// The site's earlier documents (archives) this device still holds changes for:
    /// synced until the server has every one of them (a device offline over the
    /// month's end hands its late changes in during the archive's grace week).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub archives: Vec<DocumentId>,
}

/// What `login` stores.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// The relay's base URL (http or https).
    pub server: String,
    /// The access token.
    pub token: String,
    /// The token's claims.
    pub claims: Claims,
    /// The network document's id.
    pub network: DocumentId,
    /// The sites this user may read.
    pub sites: Vec<SiteEntry>,
    /// This device's storage id, sent in `peerMetadata` so the server keeps our sync
    /// state across connections.
    pub storage_id: String,
    /// How to reach the server: a private CA, plain http allowed (older configs have
    /// neither).
    #[serde(default, flatten)]
    pub tls: crate::transport::TlsSettings,
}

/// One document the device holds.
#[derive(Debug, Clone)]
pub struct DocRef {
    /// The document id.
    pub id: DocumentId,
    /// `network` or the site id.
    pub label: String,
    /// The site, for a site document.
    pub site: Option<SiteEntry>,
    /// What this user may do with it.
    pub access: Access,
}

impl Config {
    /// The site tree as the server listed it, for the access policy.
    pub fn tree(&self) -> SiteTree {
        let mut tree = SiteTree::new(Some(self.network));
        for s in &self.sites {
            tree.insert(
                s.id.clone(),
                SiteNode {
                    parent: s.parent.clone(),
                    document: s.document_id,
                    active: true,
                },
            );
        }
        tree
    }

    /// Whether `site` is `ancestor` or below it in the site tree.
    pub fn is_within(&self, site: &str, ancestor: &str) -> bool {
        self.tree().is_within(site, ancestor)
    }

    /// The access the server grants this user to a site's document (docs/auth.md).
    pub fn site_access(&self, site: &str) -> Access {
        self.tree().site_access(&self.claims.principal(), site)
    }

    /// The access this user has to the network document.
    pub fn network_access(&self) -> Access {
        self.tree().network_access(&self.claims.principal())
    }

    /// Every document this device holds: the network document, then the sites.
    pub fn documents(&self) -> Vec<DocRef> {
        let mut out = vec![DocRef {
            id: self.network,
            label: "network".into(),
            site: None,
            access: self.network_access(),
        }];
        for s in &self.sites {
            out.push(DocRef {
                id: s.document_id,
                label: s.id.clone(),
                site: Some(s.clone()),
                access: self.site_access(&s.id),
            });
        }
        out
    }

    /// The archives this device still syncs, after the current documents.
    pub fn archives(&self) -> Vec<DocRef> {
        self.sites
            .iter()
            .flat_map(|s| {
                s.archives.iter().map(|id| DocRef {
                    id: *id,
                    label: format!("{} (archive)", s.id),
                    site: Some(s.clone()),
                    access: self.site_access(&s.id),
                })
            })
            .collect()
    }

    /// Every document `sync` exchanges: [`Config::documents`], then the archives.
    pub fn sync_documents(&self) -> Vec<DocRef> {
        let mut all = self.documents();
        all.extend(self.archives());
        all
    }

    /// Follows each site to the working document its header in the network document
    /// names (after the relay's monthly carry-over); the document left becomes an
    /// archive this device syncs until the server has all of it. Returns the sites
    /// that moved.
    pub fn follow(&mut self, network: &impl automerge::ReadDoc) -> Result<Vec<String>> {
        let mut moved = Vec::new();
        for s in &mut self.sites {
            let Some(current) = dealersync_core::domain::current_site_document(network, &s.id)?
            else {
                continue;
            };
            let current: DocumentId = current
                .parse()
                .map_err(|e| anyhow!("site {}'s current document id: {e}", s.id))?;
            if current != s.document_id {
                s.archives.push(s.document_id);
                s.archives.retain(|a| *a != current);
                s.document_id = current;
                moved.push(s.id.clone());
            }
        }
        Ok(moved)
    }
}

/// The home directory and what is in it.
pub struct Home {
    /// The directory.
    pub dir: PathBuf,
}

impl Home {
    /// The directory given, or the platform's data directory.
    pub fn locate(dir: Option<PathBuf>) -> Result<Home> {
        let dir = match dir {
            Some(d) => d,
            None => dirs::data_dir()
                .ok_or_else(|| {
                    anyhow!("cannot find a data directory on this system; pass --home DIR")
                })?
                .join("dealersync"),
        };
        Ok(Home { dir })
    }

    /// Creates the directory if missing.
    pub fn ensure(&self) -> Result<()> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create the home directory {}", self.dir.display()))
    }

    /// The SQLite file holding documents and sync states.
    pub fn store_path(&self) -> PathBuf {
        self.dir.join("store.sqlite")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// The stored login, if any.
    pub fn config(&self) -> Result<Option<Config>> {
        let path = self.config_path();
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is damaged; run `dealersync login` again",
                    path.display()
                )
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// The stored login, or an error that says how to log in.
    pub fn require_config(&self) -> Result<Config> {
        match self.config()? {
            Some(c) => Ok(c),
            None => bail!(
                "this device is not logged in (no login in {}).\n\
                 Log in once with a network connection:\n  \
                 dealersync login --server http://SERVER:3030 --token YOUR_TOKEN\n\
                 (ask your administrator for a token; `dealersync-server token` prints one)",
                self.dir.display()
            ),
        }
    }

    /// Saves the login atomically (write, fsync, rename).
    pub fn save_config(&self, config: &Config) -> Result<()> {
        self.ensure()?;
        write_atomically(
            &self.config_path(),
            &serde_json::to_vec_pretty(config).expect("config serialises"),
        )
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f =
        fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(role: &str, site: &str) -> Config {
        let entry = |id: &str, parent: Option<&str>| SiteEntry {
            id: id.into(),
            name: id.into(),
            kind: "x".into(),
            parent: parent.map(str::to_string),
            document_id: DocumentId::random(),
            archives: Vec::new(),
        };
        Config {
            server: "http://x".into(),
            token: "t".into(),
            claims: decode_claims(&token(role, site)).unwrap(),
            network: DocumentId::random(),
            sites: vec![
                entry("hq", None),
                entry("dc", Some("hq")),
                entry("rs", Some("dc")),
                entry("rs2", Some("dc")),
            ],
            storage_id: "s".into(),
            tls: Default::default(),
        }
    }

    fn token(role: &str, site: &str) -> String {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
            r#"{{"sub":"li","role":"{role}","site":"{site}","exp":1,"jti":"j"}}"#
        ));
        format!("eyJhbGciOiJIUzI1NiJ9.{payload}.sig")
    }

    #[test]
    fn access_follows_role_and_tree() {
        let c = config("consultant", "rs");
        assert_eq!(c.site_access("rs"), Access::ReadWrite);
        assert_eq!(c.site_access("rs2"), Access::None);
        assert_eq!(c.network_access(), Access::ReadOnly);
        let m = config("manager", "dc");
        assert_eq!(m.site_access("rs2"), Access::ReadWrite);
        assert_eq!(m.site_access("dc"), Access::ReadWrite);
        assert_eq!(m.site_access("hq"), Access::None);
        let h = config("head_office", "hq");
        assert_eq!(h.site_access("rs"), Access::ReadOnly);
        assert_eq!(h.network_access(), Access::ReadWrite);
    }

    #[test]
    fn claims_decode_from_a_jwt_payload() {
        let c = decode_claims(&token("consultant", "rs")).unwrap();
        assert_eq!(c.sub, "li");
        assert_eq!(c.site, "rs");
        assert!(decode_claims("garbage").is_err());
    }
}
