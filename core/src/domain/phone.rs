//! Chinese phone numbers: mobiles and landlines, with or without +86.

/// What is wrong with a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Nothing but separators was given.
    #[error("no digits")]
    Empty,
    /// A character that is neither a digit nor a separator (space - . ( )).
    #[error("character {ch:?} at position {position} is not a digit or separator")]
    BadCharacter {
        /// The character.
        ch: char,
        /// 1-based position in the input.
        position: usize,
    },
    /// Starts with 1 but is not 1[3-9] followed by 9 digits.
    #[error(
        "a mobile number is 11 digits starting 13-19, this has {digits} digits starting {prefix}"
    )]
    Mobile {
        /// How many national digits there are.
        digits: usize,
        /// The first two national digits.
        prefix: String,
    },
    /// Starts with an area code but the local number has the wrong length.
    #[error(
        "landline with area code {area} needs a {expected}-digit local number, found {found} digits"
    )]
    Landline {
        /// Area code including the leading 0.
        area: String,
        /// Allowed local lengths, e.g. `8` or `7 or 8`.
        expected: &'static str,
        /// How many local digits were given.
        found: usize,
    },
    /// A local number starts with 0 or 1, which Chinese local numbers never do.
    #[error("local number after area code {area} cannot start with {first}")]
    LocalPrefix {
        /// Area code including the leading 0.
        area: String,
        /// The offending first digit.
        first: char,
    },
    /// Neither a mobile (1...) nor a landline with area code (0...).
    #[error(
        "not a Chinese mobile (1[3-9] + 9 digits) or landline with area code (0 + area code + number)"
    )]
    Unrecognised,
}

/// Normalises a Chinese phone number to E.164 (`+8613812345678`, `+861012345678`), so
/// that the same number typed in different ways compares equal.
///
/// Accepts separators (spaces, `-`, `.`, parentheses), the prefixes `+86`, `0086` and
/// `86` (the last only before an 11-digit mobile, where it cannot be mistaken),
/// mobiles `1[3-9]` + 9 digits, and landlines with their area code: `010` and `02x`
/// with an 8-digit local number, other `0xxx` area codes with 7 or 8 digits. Under
/// +86 the area code's leading 0 is dropped, as dialled from abroad.
pub fn normalise_phone(input: &str) -> Result<String, PhoneError> {
    let mut digits = String::new();
    let mut plus = false;
    // Positions are in characters, as people count them, not UTF-8 bytes.
    let skipped = input.chars().count() - input.trim_start().chars().count();
    for (i, ch) in input.trim().chars().enumerate() {
        match ch {
            '0'..='9' => digits.push(ch),
            ' ' | '-' | '.' | '(' | ')' => {}
            '+' if digits.is_empty() && !plus => plus = true,
            _ => {
                return Err(PhoneError::BadCharacter {
                    ch,
                    position: skipped + i + 1,
                });
            }
        }
    }
    if digits.is_empty() {
        return Err(PhoneError::Empty);
    }
    // Strip the country code; what remains is the national number, whose landlines
    // start with 0 (trunk prefix, dropped after +86) and mobiles with 1. Beijing's area
    // code 10 also starts with 1, so after a country code only 11 digits make a mobile.
    let after_cc = |rest: &str| -> String {
        if rest.len() == 11 && rest.starts_with('1') {
            rest.to_string()
        } else {
            format!("0{}", rest.trim_start_matches('0'))
        }
    };
    let national: String = if plus {
        match digits.strip_prefix("86") {
            Some(rest) => after_cc(rest),
            None => return Err(PhoneError::Unrecognised),
        }
    } else if let Some(rest) = digits.strip_prefix("0086") {
        after_cc(rest)
    } else if digits.len() == 13 && digits.starts_with("861") {
        digits[2..].to_string()
    } else {
        digits
    };
    if national.starts_with('1') {
        let ok = national.len() == 11 && matches!(national.as_bytes()[1], b'3'..=b'9');
        if !ok {
            return Err(PhoneError::Mobile {
                digits: national.len(),
                prefix: national.chars().take(2).collect(),
            });
        }
        return Ok(format!("+86{national}"));
    }
    if national.starts_with('0') && national.len() > 1 && national.as_bytes()[1] != b'0' {
        // Beijing (010) and the 02x cities have 2-digit codes after the 0 and 8-digit
        // numbers; every other area code has 3 digits after the 0.
        let short = national.starts_with("010") || national.starts_with("02");
        let (area_len, expected, lens): (usize, &'static str, &[usize]) = if short {
            (3, "8", &[8])
        } else {
            (4, "7 or 8", &[7, 8])
        };
        if national.len() <= area_len {
            return Err(PhoneError::Unrecognised);
        }
        let (area, local) = national.split_at(area_len);
        if !lens.contains(&local.len()) {
            return Err(PhoneError::Landline {
                area: area.to_string(),
                expected,
                found: local.len(),
            });
        }
        let first = local.chars().next().expect("local number is not empty");
        if first == '0' || first == '1' {
            return Err(PhoneError::LocalPrefix {
                area: area.to_string(),
                first,
            });
        }
        return Ok(format!("+86{}", &national[1..]));
    }
    Err(PhoneError::Unrecognised)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_number_typed_many_ways_normalises_the_same() {
        for s in [
            "13812345678",
            "138 1234 5678",
            "138-1234-5678",
            "+86 138 1234 5678",
            "+8613812345678",
            "008613812345678",
            "8613812345678",
            "(+86) 138.1234.5678",
        ] {
            assert_eq!(normalise_phone(s).unwrap(), "+8613812345678", "{s}");
        }
        for s in ["010-52345678", "(010) 2345 6789"] {
            assert!(normalise_phone(s).unwrap().starts_with("+8610"), "{s}");
        }
        assert_eq!(normalise_phone("010-62345678").unwrap(), "+861062345678");
        assert_eq!(normalise_phone("+86 10 62345678").unwrap(), "+861062345678");
        assert_eq!(normalise_phone("021 5555 1234").unwrap(), "+862155551234");
        assert_eq!(normalise_phone("0755-8765432").unwrap(), "+867558765432");
        assert_eq!(normalise_phone("0951-87654321").unwrap(), "+8695187654321");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(
            normalise_phone("1381234567").unwrap_err().to_string(),
            "a mobile number is 11 digits starting 13-19, this has 10 digits starting 13"
        );
        assert_eq!(
            normalise_phone("12812345678").unwrap_err(),
            PhoneError::Mobile {
                digits: 11,
                prefix: "12".into()
            }
        );
        assert_eq!(
            normalise_phone("138x1234567").unwrap_err().to_string(),
            "character 'x' at position 4 is not a digit or separator"
        );
        assert_eq!(
            normalise_phone("010-1234567").unwrap_err().to_string(),
            "landline with area code 010 needs a 8-digit local number, found 7 digits"
        );
        assert_eq!(
            normalise_phone("0755-0123456").unwrap_err().to_string(),
            "local number after area code 0755 cannot start with 0"
        );
        // Positions count characters, also after a leading ideographic space (3 bytes
        // in UTF-8), which Chinese input methods type.
        assert_eq!(
            normalise_phone("\u{3000}138x1234567").unwrap_err(),
            PhoneError::BadCharacter {
                ch: 'x',
                position: 5
            }
        );
        assert_eq!(normalise_phone(" - ").unwrap_err(), PhoneError::Empty);
        assert_eq!(
            normalise_phone("62345678").unwrap_err(),
            PhoneError::Unrecognised
        );
        assert_eq!(
            normalise_phone("+1 415 555 0100").unwrap_err(),
            PhoneError::Unrecognised
        );
    }
}
