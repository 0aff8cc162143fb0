//! Who may read and write which document: the pure policy, from role and site tree.
//!
//! The relay asks one question per document and connection: what may this principal do
//! with this document? The answer comes from the principal's role and site (from the
//! token) and the site tree (from the registry), nothing else:
//!
//! | role          | own site | sites below own | other sites | network document |
//! |---------------|----------|-----------------|-------------|------------------|
//! | `consultant`  | write    | none            | none        | read             |
//! | `manager`     | write    | write           | none        | read             |
//! | `relay`       | write    | write           | none        | read             |
//! | `head_office` | read     | read            | read        | write            |
//! | `admin`       | write    | write           | write       | write            |
//!
//! A deactivated site's document stays readable to those who could read it, but only
//! an admin may still write to it: a closed roadshow team's history is kept, not edited.
//! A document the tree does not know is open to admins only.
//!
//! A site's **archive** (a closed month's document, docs/growth.md) is the site's
//! document to the policy until its grace period ends (a week into the next month, so
//! that phones offline over the month's end can still hand in their changes); after
//! that it is read-only to everyone but admin, like a deactivated site.
//!
//! `relay` is not a person: it is the role of a downstream relay's upstream token (a
//! distribution centre's or a roadshow laptop's relay), which carries its devices'
//! changes for one subtree. It reaches exactly what a manager of that subtree reaches,
//! and nothing a person does (sign-in codes, planning, the console) is open to it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::protocol::DocumentId;
use crate::schema::SiteHeader;

/// What a connection may do with one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Access {
    /// May not know the document exists: answered `doc-unavailable`.
    #[default]
    None,
    /// Receives every change; changes it sends are rejected.
    ReadOnly,
    /// Reads and writes.
    ReadWrite,
}

impl Access {
    /// Whether the document may be read.
    pub fn can_read(self) -> bool {
        self >= Access::ReadOnly
    }

    /// Whether changes may be accepted from the peer.
    pub fn can_write(self) -> bool {
        self == Access::ReadWrite
    }

    /// A short name for logs and the API (`none`, `read`, `write`).
    pub fn as_str(self) -> &'static str {
        match self {
            Access::None => "none",
            Access::ReadOnly => "read",
            Access::ReadWrite => "write",
        }
    }
}

/// What a user does in the sales network; decides access together with the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A sales consultant: works in one site's document.
    Consultant,
    /// Runs a site and everything below it (approvals, conflict resolution).
    Manager,
    /// A downstream relay syncing one subtree with its upstream relay: a manager's
    /// reach over documents, none of a person's rights.
    Relay,
    /// The sales department at head office: reads every site, writes the network
    /// document (catalogue, targets, policy).
    HeadOffice,
    /// Operates the server: every document, plus the admin API.
    Admin,
}

impl Role {
    /// Every role, from least to most privileged.
    pub const ALL: [Role; 5] = [
        Role::Consultant,
        Role::Manager,
        Role::Relay,
        Role::HeadOffice,
        Role::Admin,
    ];

    /// The name used in tokens and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Consultant => "consultant",
            Role::Manager => "manager",
            Role::Relay => "relay",
            Role::HeadOffice => "head_office",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of `consultant`, `manager`, `head_office`, `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}; expected one of: consultant, manager, relay, head_office, admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, UnknownRole> {
        // People type `head-office`; accept it like the schema's enums do.
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "consultant" => Ok(Role::Consultant),
            "manager" => Ok(Role::Manager),
            "relay" => Ok(Role::Relay),
            "head_office" => Ok(Role::HeadOffice),
            "admin" => Ok(Role::Admin),
            _ => Err(UnknownRole(s.to_string())),
        }
    }
}

/// The claims of a dealersync token, as signed by the server or an identity provider.
///
/// Times are seconds since the Unix epoch, as JWT spells them (RFC 7519).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: String,
    /// What the user does.
    pub role: Role,
    /// The site the user belongs to.
    pub site: String,
    /// The device the token was issued to, so that one lost phone can be revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Expiry; required.
    pub exp: u64,
    /// Unique token id, for revocation.
    pub jti: String,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not valid before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issuer, checked when the server is configured with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience, checked when present or configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
}

/// The `aud` claim: RFC 7519 allows one string or an array of them, and identity
/// providers use both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// `"aud": "dealersync"`.
    One(String),
    /// `"aud": ["dealersync", "reports"]`.
    Many(Vec<String>),
}

impl Audience {
    /// Whether the audience names `who`.
    pub fn contains(&self, who: &str) -> bool {
        match self {
            Audience::One(a) => a == who,
            Audience::Many(v) => v.iter().any(|a| a == who),
        }
    }
}

impl Claims {
    /// Who these claims speak for, as the policy sees them.
    pub fn principal(&self) -> Principal {
        Principal {
            sub: self.sub.clone(),
            role: self.role,
            site: self.site.clone(),
            device: self.device.clone(),
        }
    }
}

/// An authenticated user as the policy sees them: the part of the token that decides
/// access and identifies changes in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Principal {
    /// The user.
    pub sub: String,
    /// What the user does.
    pub role: Role,
    /// The site the user belongs to.
    pub site: String,
    /// The device, if the token names one.
    pub device: Option<String>,
}

/// One site as the policy needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteNode {
    /// The site above; `None` for head office.
    pub parent: Option<String>,
    /// The site's document.
    pub document: DocumentId,
    /// Whether the site still trades; a deactivated site's document is read-only.
    pub active: bool,
}

/// A closed period's document of a site: readable like the site's own, writable by
/// those who write the site until `writable_until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveNode {
    /// The site whose archive it is.
    pub site: String,
    /// UTC milliseconds from which only admin may still write it.
    pub writable_until: i64,
}

/// What a document is to the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentOwner {
    /// The network document.
    Network,
    /// The document of this site.
    Site(String),
}

/// The site tree and which document belongs to which site: everything the policy
/// knows besides the principal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteTree {
    network: Option<DocumentId>,
    sites: BTreeMap<String, SiteNode>,
    by_document: HashMap<DocumentId, String>,
    archives: HashMap<DocumentId, ArchiveNode>,
}

impl SiteTree {
    /// An empty tree with the given network document.
    pub fn new(network: Option<DocumentId>) -> Self {
        SiteTree {
            network,
            ..SiteTree::default()
        }
    }

    /// Adds or replaces a site.
    pub fn insert(&mut self, id: impl Into<String>, node: SiteNode) {
        let id = id.into();
        if let Some(old) = self.sites.get(&id) {
            self.by_document.remove(&old.document);
        }
        self.by_document.insert(node.document, id.clone());
        self.sites.insert(id, node);
    }

    /// A tree from the network document's site headers and each site's document id.
    /// Sites without a document id in `documents` are left out: nobody can sync them.
    pub fn from_headers<'a>(
        network: Option<DocumentId>,
        headers: impl IntoIterator<Item = &'a SiteHeader>,
        documents: &HashMap<String, DocumentId>,
    ) -> Self {
        let mut tree = SiteTree::new(network);
        for h in headers {
            if let Some(doc) = documents.get(&h.id) {
                tree.insert(
                    h.id.clone(),
                    SiteNode {
                        parent: h.parent.clone(),
                        document: *doc,
                        active: true,
                    },
                );
            }
        }
        tree
    }

    /// Adds a site's archive (its site is inserted with [`SiteTree::insert`]).
    pub fn insert_archive(&mut self, doc: DocumentId, node: ArchiveNode) {
        self.archives.insert(doc, node);
    }

    /// The archive `doc`, if it is one.
    pub fn archive(&self, doc: &DocumentId) -> Option<&ArchiveNode> {
        self.archives.get(doc)
    }

    /// The network document, if one exists yet.
    pub fn network(&self) -> Option<DocumentId> {
        self.network
    }

    /// A site by id.
    pub fn site(&self, id: &str) -> Option<&SiteNode> {
        self.sites.get(id)
    }

    /// Every site, by id.
    pub fn sites(&self) -> impl Iterator<Item = (&String, &SiteNode)> {
        self.sites.iter()
    }

    /// Whose document this is, if the tree knows it.
    pub fn owner(&self, doc: &DocumentId) -> Option<DocumentOwner> {
        if self.network.as_ref() == Some(doc) {
            return Some(DocumentOwner::Network);
        }
        self.by_document
            .get(doc)
            .or_else(|| self.archives.get(doc).map(|a| &a.site))
            .map(|s| DocumentOwner::Site(s.clone()))
    }

    /// Whether `site` is `ancestor` or lies anywhere below it. A cycle in a corrupt
    /// tree ends the walk rather than looping.
    pub fn is_within(&self, site: &str, ancestor: &str) -> bool {
        let mut current = Some(site);
        let mut steps = 0;
        while let Some(s) = current {
            if s == ancestor {
                return true;
            }
            steps += 1;
            if steps > self.sites.len() {
                return false;
            }
            current = self.sites.get(s).and_then(|n| n.parent.as_deref());
        }
        false
    }

    /// What `who` may do with the document of site `site`.
    pub fn site_access(&self, who: &Principal, site: &str) -> Access {
        let Some(node) = self.sites.get(site) else {
            return Access::None;
        };
        let access = match who.role {
            Role::Admin => return Access::ReadWrite,
            Role::HeadOffice => Access::ReadOnly,
            Role::Manager | Role::Relay if self.is_within(site, &who.site) => Access::ReadWrite,
            Role::Consultant if site == who.site => Access::ReadWrite,
            Role::Manager | Role::Relay | Role::Consultant => Access::None,
        };
        if node.active {
            access
        } else {
            access.min(Access::ReadOnly)
        }
    }

    /// What `who` may do with the network document.
    pub fn network_access(&self, who: &Principal) -> Access {
        match who.role {
            Role::Admin | Role::HeadOffice => Access::ReadWrite,
            Role::Manager | Role::Relay | Role::Consultant => Access::ReadOnly,
        }
    }

    /// What `who` may do with `doc` at `now` (UTC milliseconds). The one function every
    /// path (WebSocket sync and HTTP) asks, so that they cannot disagree; `now` matters
    /// only for an archive, writable until its grace period ends.
    pub fn access_at(&self, who: &Principal, doc: &DocumentId, now: i64) -> Access {
        if let Some(a) = self.archives.get(doc) {
            let access = self.site_access(who, &a.site);
            return if now < a.writable_until || who.role == Role::Admin {
                access
            } else {
                access.min(Access::ReadOnly)
            };
        }
        match self.owner(doc) {
            Some(DocumentOwner::Network) => self.network_access(who),
            Some(DocumentOwner::Site(site)) => self.site_access(who, &site),
            None if who.role == Role::Admin => Access::ReadWrite,
            None => Access::None,
        }
    }

    /// What `who` may do with `doc` once every archive's grace period is over: what it
    /// may read, and what it may write for good. [`SiteTree::access_at`] for a moment.
    pub fn access(&self, who: &Principal, doc: &DocumentId) -> Access {
        self.access_at(who, doc, i64::MAX)
    }
}

/// The policy of one principal over a snapshot of the tree, as a function the sync
/// engine can hold per connection.
pub fn policy(
    who: Principal,
    tree: Arc<SiteTree>,
) -> impl Fn(&DocumentId) -> Access + Send + Sync + 'static {
    move |doc| tree.access(&who, doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// hq → dc-north → {agent-a, show-1}; hq → dc-south → agent-b.
    struct Net {
        tree: SiteTree,
        docs: HashMap<&'static str, DocumentId>,
        network: DocumentId,
    }

    fn net() -> Net {
        let network = DocumentId::random();
        let mut tree = SiteTree::new(Some(network));
        let mut docs = HashMap::new();
        for (id, parent) in [
            ("hq", None),
            ("dc-north", Some("hq")),
            ("dc-south", Some("hq")),
            ("agent-a", Some("dc-north")),
            ("show-1", Some("dc-north")),
            ("agent-b", Some("dc-south")),
        ] {
            let d = DocumentId::random();
            docs.insert(id, d);
            tree.insert(
                id,
                SiteNode {
                    parent: parent.map(String::from),
                    document: d,
                    active: true,
                },
            );
        }
        Net {
            tree,
            docs,
            network,
        }
    }

    fn who(role: Role, site: &str) -> Principal {
        Principal {
            sub: "u".into(),
            role,
            site: site.into(),
            device: None,
        }
    }

    use Access::{None as N, ReadOnly as R, ReadWrite as W};

    /// The access matrix of docs/auth.md for a user of `dc-north`: own site, sibling
    /// (`dc-south`), child (`agent-a`), grandchild's cousin (`agent-b`), parent (`hq`),
    /// network. Each cell is checked for read and write through `can_read`/`can_write`.
    #[test]
    fn role_by_relation_matrix() {
        let n = net();
        let cases: [(Role, [Access; 6]); 5] = [
            //                  own sibling child cousin parent network
            (Role::Consultant, [W, N, N, N, N, R]),
            (Role::Manager, [W, N, W, N, N, R]),
            (Role::Relay, [W, N, W, N, N, R]),
            (Role::HeadOffice, [R, R, R, R, R, W]),
            (Role::Admin, [W, W, W, W, W, W]),
        ];
        let targets = [
            n.docs["dc-north"],
            n.docs["dc-south"],
            n.docs["agent-a"],
            n.docs["agent-b"],
            n.docs["hq"],
            n.network,
        ];
        let names = ["own", "sibling", "child", "cousin", "parent", "network"];
        for (role, expected) in cases {
            let p = who(role, "dc-north");
            for ((doc, want), name) in targets.iter().zip(expected).zip(names) {
                let got = n.tree.access(&p, doc);
                assert_eq!(got, want, "{role} on {name}");
                assert_eq!(got.can_read(), want != N, "{role} read {name}");
                assert_eq!(got.can_write(), want == W, "{role} write {name}");
            }
        }
    }

    #[test]
    fn manager_reaches_every_depth_below_but_not_above() {
        let n = net();
        let hq_manager = who(Role::Manager, "hq");
        for d in n.docs.values() {
            assert_eq!(n.tree.access(&hq_manager, d), W);
        }
        let agent_manager = who(Role::Manager, "agent-a");
        assert_eq!(n.tree.access(&agent_manager, &n.docs["agent-a"]), W);
        assert_eq!(n.tree.access(&agent_manager, &n.docs["show-1"]), N);
        assert_eq!(n.tree.access(&agent_manager, &n.docs["dc-north"]), N);
    }

    #[test]
    fn consultant_of_a_leaf_only_writes_the_leaf() {
        let n = net();
        let p = who(Role::Consultant, "show-1");
        for (site, d) in &n.docs {
            let want = if *site == "show-1" { W } else { N };
            assert_eq!(n.tree.access(&p, d), want, "{site}");
        }
        assert_eq!(n.tree.access(&p, &n.network), R);
    }

    #[test]
    fn unknown_documents_are_admin_only() {
        let n = net();
        let stray = DocumentId::random();
        for role in Role::ALL {
            let want = if role == Role::Admin { W } else { N };
            assert_eq!(n.tree.access(&who(role, "hq"), &stray), want, "{role}");
        }
    }

    #[test]
    fn unknown_home_site_gets_only_the_network_document() {
        let n = net();
        let p = who(Role::Manager, "gone");
        for d in n.docs.values() {
            assert_eq!(n.tree.access(&p, d), N);
        }
        assert_eq!(n.tree.access(&p, &n.network), R);
    }

    #[test]
    fn deactivated_site_is_read_only_except_for_admin() {
        let mut n = net();
        let doc = n.docs["agent-a"];
        n.tree.insert(
            "agent-a",
            SiteNode {
                parent: Some("dc-north".into()),
                document: doc,
                active: false,
            },
        );
        assert_eq!(n.tree.access(&who(Role::Consultant, "agent-a"), &doc), R);
        assert_eq!(n.tree.access(&who(Role::Manager, "dc-north"), &doc), R);
        assert_eq!(n.tree.access(&who(Role::HeadOffice, "hq"), &doc), R);
        assert_eq!(n.tree.access(&who(Role::Admin, "hq"), &doc), W);
        assert_eq!(n.tree.access(&who(Role::Consultant, "show-1"), &doc), N);
    }

    #[test]
    fn an_archive_is_writable_through_its_grace_period_then_read_only() {
        let mut n = net();
        let archive = DocumentId::random();
        n.tree.insert_archive(
            archive,
            ArchiveNode {
                site: "agent-a".into(),
                writable_until: 1_000,
            },
        );
        let consultant = who(Role::Consultant, "agent-a");
        let manager = who(Role::Manager, "dc-north");
        let office = who(Role::HeadOffice, "hq");
        let admin = who(Role::Admin, "hq");
        let stranger = who(Role::Consultant, "show-1");
        for (p, during, after) in [
            (&consultant, W, R),
            (&manager, W, R),
            (&office, R, R),
            (&admin, W, W),
            (&stranger, N, N),
        ] {
            assert_eq!(n.tree.access_at(p, &archive, 999), during, "{p:?}");
            assert_eq!(n.tree.access_at(p, &archive, 1_000), after, "{p:?}");
            assert_eq!(n.tree.access(p, &archive), after, "{p:?}");
        }
        assert_eq!(
            n.tree.owner(&archive),
            Some(DocumentOwner::Site("agent-a".into()))
        );
        // The working document is not touched by the archive's clock.
        assert_eq!(
            n.tree.access_at(&consultant, &n.docs["agent-a"], i64::MAX),
            W
        );
    }

    #[test]
    fn moving_a_site_moves_its_managers_reach() {
        let mut n = net();
        let doc = n.docs["agent-a"];
        let north = who(Role::Manager, "dc-north");
        let south = who(Role::Manager, "dc-south");
        assert_eq!(n.tree.access(&north, &doc), W);
        n.tree.insert(
            "agent-a",
            SiteNode {
                parent: Some("dc-south".into()),
                document: doc,
                active: true,
            },
        );
        assert_eq!(n.tree.access(&north, &doc), N);
        assert_eq!(n.tree.access(&south, &doc), W);
    }

    #[test]
    fn a_cycle_in_a_corrupt_tree_terminates() {
        let mut tree = SiteTree::new(None);
        let (a, b) = (DocumentId::random(), DocumentId::random());
        for (id, parent, doc) in [("a", "b", a), ("b", "a", b)] {
            tree.insert(
                id,
                SiteNode {
                    parent: Some(parent.into()),
                    document: doc,
                    active: true,
                },
            );
        }
        assert!(!tree.is_within("a", "hq"));
        assert_eq!(tree.access(&who(Role::Manager, "hq"), &a), N);
    }

    #[test]
    fn policy_closure_matches_tree() {
        let n = net();
        let tree = Arc::new(n.tree.clone());
        let f = policy(who(Role::Consultant, "agent-b"), tree);
        assert_eq!(f(&n.docs["agent-b"]), W);
        assert_eq!(f(&n.docs["agent-a"]), N);
        assert_eq!(f(&n.network), R);
    }

    #[test]
    fn roles_parse_and_serialize_snake_case() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
        assert_eq!("Head-Office".parse::<Role>().unwrap(), Role::HeadOffice);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn claims_round_trip_as_jwt_json() {
        let c = Claims {
            sub: "wang.fang".into(),
            role: Role::Manager,
            site: "dc-north".into(),
            device: Some("phone-7".into()),
            exp: 2_000_000_000,
            jti: "j1".into(),
            iat: Some(1_900_000_000),
            nbf: None,
            iss: None,
            aud: None,
        };
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["role"], "manager");
        assert!(json.get("nbf").is_none());
        let back: Claims = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.principal().device.as_deref(), Some("phone-7"));
        // Identity providers write `aud` as a string or as an array.
        let mut with_aud = json;
        with_aud["aud"] = serde_json::json!(["reports", "dealersync"]);
        let many: Claims = serde_json::from_value(with_aud.clone()).unwrap();
        assert!(many.aud.unwrap().contains("dealersync"));
        with_aud["aud"] = serde_json::json!("dealersync");
        let one: Claims = serde_json::from_value(with_aud).unwrap();
        assert_eq!(one.aud, Some(Audience::One("dealersync".into())));
    }
}
