//! Finding a relay on the local network: what a relay advertises over DNS-SD
//! (`_dealersync._tcp`, RFC 6763) in its TXT record, and which of the relays found a
//! device should sync through. The multicast itself is the server's and the CLI's
//! business; this is the part both must agree on, with no I/O.
//!
//! TXT keys (all short, as RFC 6763 §6 asks): `v` the format version (`1`), `sid` the
//! relay's storage id, `root` the site at the root of the subtree it serves, `up` `1`
//! when it syncs with an upstream relay, `tls` `1` when it serves https/wss.

use std::collections::BTreeMap;

/// The DNS-SD service type relays register under.
pub const SERVICE_TYPE: &str = "_dealersync._tcp.local.";

/// The TXT format version this code writes and reads.
pub const TXT_VERSION: &str = "1";

/// What a relay says about itself on the LAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayAdvert {
    /// The relay's storage id (a device keeps its sync state per storage id).
    pub storage_id: String,
    /// The site at the root of the subtree it serves (head office for a central relay,
    /// the distribution centre or roadshow team for a downstream one).
    pub subtree: String,
    /// Whether it syncs with an upstream relay (a change there is not yet at head
    /// office).
    pub upstream: bool,
    /// Whether it serves TLS.
    pub tls: bool,
}

/// Why a TXT record is not a relay's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdvertError {
    /// A required key is missing or empty.
    #[error("the TXT record has no {0:?}")]
    Missing(&'static str),
    /// Written by a version of the format this code does not read.
    #[error("the TXT record is of format version {0:?}; this release reads version 1")]
    Version(String),
}

impl RelayAdvert {
    /// The TXT record's key/value pairs.
    pub fn txt(&self) -> Vec<(&'static str, String)> {
        let flag = |b: bool| if b { "1" } else { "0" }.to_string();
        vec![
            ("v", TXT_VERSION.to_string()),
            ("sid", self.storage_id.clone()),
            ("root", self.subtree.clone()),
            ("up", flag(self.upstream)),
            ("tls", flag(self.tls)),
        ]
    }

    /// Reads a TXT record (keys case-insensitive, as DNS-SD says); unknown keys are
    /// ignored, so a later release may add some.
    pub fn from_txt<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<RelayAdvert, AdvertError> {
        let map: BTreeMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| {
                (
                    k.as_ref().to_ascii_lowercase(),
                    v.as_ref().trim().to_string(),
                )
            })
            .collect();
        let get = |k: &'static str| {
            map.get(k)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or(AdvertError::Missing(k))
        };
        let version = get("v")?;
        if version != TXT_VERSION {
            return Err(AdvertError::Version(version));
        }
        Ok(RelayAdvert {
            storage_id: get("sid")?,
            subtree: get("root")?,
            upstream: map.get("up").is_some_and(|v| v == "1"),
            tls: map.get("tls").is_some_and(|v| v == "1"),
        })
    }
}

/// A relay found on the LAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRelay {
    /// The DNS-SD instance name (e.g. `roadshow-rs-1`).
    pub instance: String,
    /// Its base URL (`http://192.168.1.20:3030`).
    pub url: String,
    /// What it says about itself.
    pub advert: RelayAdvert,
}

/// The relay a device should sync through: one whose subtree holds the device's site,
/// the closest to it (`lineage` is the device's site, then its parent, up to head
/// office); among equals, the first by instance name, so that the choice is stable.
/// `None` when no relay found serves the device's site.
pub fn choose_relay<'a>(found: &'a [FoundRelay], lineage: &[String]) -> Option<&'a FoundRelay> {
    found
        .iter()
        .filter_map(|r| {
            lineage
                .iter()
                .position(|s| *s == r.advert.subtree)
                .map(|depth| (depth, r))
        })
        .min_by(|(da, a), (db, b)| da.cmp(db).then_with(|| a.instance.cmp(&b.instance)))
        .map(|(_, r)| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advert(root: &str) -> RelayAdvert {
        RelayAdvert {
            storage_id: format!("sid-{root}"),
            subtree: root.into(),
            upstream: true,
            tls: false,
        }
    }

    #[test]
    fn the_txt_record_round_trips_and_says_what_is_wrong() {
        let a = advert("rs-1");
        let txt = a.txt();
        assert_eq!(RelayAdvert::from_txt(txt.clone()), Ok(a.clone()));
        let upper: Vec<(String, String)> = txt
            .iter()
            .map(|(k, v)| (k.to_uppercase(), v.clone()))
            .chain([("future".to_string(), "x".to_string())])
            .collect();
        assert_eq!(RelayAdvert::from_txt(upper), Ok(a));
        assert_eq!(
            RelayAdvert::from_txt([("v", "1"), ("sid", "s")]),
            Err(AdvertError::Missing("root"))
        );
        assert_eq!(
            RelayAdvert::from_txt([("v", "2"), ("sid", "s"), ("root", "hq")]),
            Err(AdvertError::Version("2".into()))
        );
        let central = RelayAdvert::from_txt([("v", "1"), ("sid", "s"), ("root", "hq")]).unwrap();
        assert!(!central.upstream && !central.tls);
    }

    #[test]
    fn the_closest_relay_of_the_devices_subtree_is_chosen() {
        let relay = |name: &str, root: &str| FoundRelay {
            instance: name.into(),
            url: format!("http://{name}:3030"),
            advert: advert(root),
        };
        let found = vec![
            relay("b-hq", "hq"),
            relay("other-dc", "dc-south"),
            relay("z-dc", "dc-north"),
            relay("a-dc", "dc-north"),
        ];
        let lineage: Vec<String> = ["agent-a", "dc-north", "hq"].map(String::from).to_vec();
        assert_eq!(choose_relay(&found, &lineage).unwrap().instance, "a-dc");
        let at_hq: Vec<String> = vec!["hq".into()];
        assert_eq!(choose_relay(&found, &at_hq).unwrap().instance, "b-hq");
        let elsewhere: Vec<String> = vec!["rs-9".into()];
        assert!(choose_relay(&found, &elsewhere).is_none());
        assert!(choose_relay(&[], &lineage).is_none());
    }
}
