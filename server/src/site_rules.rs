//! What a site id and a site name may be. Ids end up in URLs, tokens, file names and
//! CSV cells; names on every report and device. Both are typed by people, so both are
//! checked before anything is written.

use crate::registry::RegistryError;

/// Longest site id, in characters.
pub const MAX_SITE_ID_CHARS: usize = 40;

/// Longest site name, in characters.
pub const MAX_SITE_NAME_CHARS: usize = 100;

/// Site ids go into URLs, file names and CSV cells: 1-40 lowercase ASCII letters and
/// digits, with dashes only between them.
pub fn validate_site_id(id: &str) -> Result<(), RegistryError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_SITE_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(RegistryError::Invalid(format!(
            "invalid site id {:?}: use 1-{MAX_SITE_ID_CHARS} lowercase letters, digits and \
             dashes between them, e.g. dc-north",
            crate::telemetry::clip(id)
        )))
    }
}

/// A site name as shown on every report and device: trimmed, 1-100 characters, no
/// control characters (a NUL or an escape sequence breaks terminals, CSV and logs).
/// Returns the trimmed name.
pub fn validate_site_name(name: &str) -> Result<String, RegistryError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(RegistryError::Invalid("a site needs a name".into()));
    }
    let chars = name.chars().count();
    if chars > MAX_SITE_NAME_CHARS {
        return Err(RegistryError::Invalid(format!(
            "a site name has at most {MAX_SITE_NAME_CHARS} characters; this one has {chars}"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(RegistryError::Invalid(
            "a site name may not contain control characters".into(),
        ));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::clip;

    #[test]
    fn site_ids_are_slugs() {
        for ok in ["hq", "dc-north", "agent-7"] {
            validate_site_id(ok).unwrap();
        }
        validate_site_id(&"a".repeat(40)).unwrap();
        for bad in [
            "",
            "HQ",
            "dc north",
            "-x",
            "x-",
            "dc-north-",
            "站点",
            &"a".repeat(41),
        ] {
            assert!(validate_site_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn site_names_are_short_printable_text() {
        assert_eq!(validate_site_name("  总部 ").unwrap(), "总部");
        assert_eq!(
            validate_site_name(&"站".repeat(100)).unwrap(),
            "站".repeat(100)
        );
        for bad in [
            String::new(),
            "   ".into(),
            "a\0b".into(),
            "x\u{1b}[2J".into(),
            "line\nbreak".into(),
            "站".repeat(101),
            "n".repeat(1 << 20),
        ] {
            assert!(validate_site_name(&bad).is_err(), "{:?}", clip(&bad));
        }
    }
}
