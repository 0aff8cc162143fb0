//! Creating site and network documents.

use automerge::{AutoCommit, ROOT, ReadDoc as AmReadDoc};

use crate::schema::{Millis, NetworkDocument, SiteDocument, SiteHeader};

use super::{DomainError, Result, commit_write, validate_header};

/// Writes a new, empty site document for `header` into `doc`, which must be empty. The
/// caller chooses the actor (`AutoCommit::new().with_actor(..)`); only one device (the
/// relay, when a site is registered) should create a given site's document, since two
/// independent creations would be two unrelated documents.
pub fn init_site_document(doc: &mut AutoCommit, header: &SiteHeader, now: Millis) -> Result<()> {
    validate_header(header)?;
    if doc.length(ROOT) > 0 {
        return Err(DomainError::NotADocument {
            kind: "site",
            reason: "the document is not empty".into(),
        });
    }
    let site = SiteDocument::new(header.clone());
    commit_write(doc, format!("create site {}", header.id), now, |doc| {
        autosurgeon::reconcile(doc, &site)?;
        Ok(())
    })
}

/// A new site document for `header`, with a fresh random actor.
pub fn create_site_document(header: &SiteHeader, now: Millis) -> Result<AutoCommit> {
    let mut doc = AutoCommit::new();
    init_site_document(&mut doc, header, now)?;
    Ok(doc)
}

/// Writes a new, empty network document into `doc`, which must be empty.
pub fn init_network_document(doc: &mut AutoCommit, now: Millis) -> Result<()> {
    if doc.length(ROOT) > 0 {
        return Err(DomainError::NotADocument {
            kind: "network",
            reason: "the document is not empty".into(),
        });
    }
    commit_write(doc, "create network".into(), now, |doc| {
        autosurgeon::reconcile(doc, NetworkDocument::new())?;
        Ok(())
    })
}

/// A new network document with a fresh random actor.
pub fn create_network_document(now: Millis) -> Result<AutoCommit> {
    let mut doc = AutoCommit::new();
    init_network_document(&mut doc, now)?;
    Ok(doc)
}
