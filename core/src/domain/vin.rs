//! Vehicle identification numbers (ISO 3779, GB 16735).

use std::fmt;

/// How the check digit at position 9 of a VIN is treated.
///
/// The default is [`CheckDigitPolicy::Enforce`]: every vehicle this network sells is
/// registered in China, where GB 16735 requires the check digit, computed exactly as in
/// ISO 3779's North-American annex (transliterate letters, weight by position, sum modulo
/// 11, `X` for 10). A check digit catches almost every single-character typo and every
/// transposition of neighbours, which is how wrong VINs are born on a roadshow tablet.
/// [`CheckDigitPolicy::Ignore`] exists for grey imports with European VINs, whose ninth
/// character is not a check digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckDigitPolicy {
    /// Reject a VIN whose ninth character is not the computed check digit.
    #[default]
    Enforce,
    /// Accept any allowed character at position 9.
    Ignore,
}

/// What is wrong with a VIN. Positions are 1-based, as printed on the vehicle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VinError {
    /// Not 17 characters long.
    #[error("a VIN has 17 characters, this one has {len}")]
    Length {
        /// How many characters were given.
        len: usize,
    },
    /// I, O and Q are never used, to avoid confusion with 1 and 0.
    #[error(
        "character {ch:?} at position {position} is not allowed in a VIN (I, O and Q are never used)"
    )]
    ForbiddenLetter {
        /// The letter.
        ch: char,
        /// 1-based position.
        position: usize,
    },
    /// Only digits and the letters A-Z (but I, O, Q) are allowed.
    #[error("character {ch:?} at position {position} is not a digit or letter A-Z")]
    BadCharacter {
        /// The character.
        ch: char,
        /// 1-based position.
        position: usize,
    },
    /// Position 9 does not match the check digit computed from the other 16.
    #[error(
        "check digit at position 9 is {found:?} but the VIN's other characters give {expected:?}"
    )]
    CheckDigit {
        /// The check digit the other characters give.
        expected: char,
        /// The character found at position 9.
        found: char,
    },
}

/// A VIN that passed validation: 17 upper-case characters from the allowed set, check
/// digit verified unless the policy said otherwise.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vin(String);

impl Vin {
    /// Validates a VIN. Surrounding whitespace is trimmed and letters are upper-cased,
    /// because people type VINs in lower case on phones; nothing else is corrected.
    pub fn parse(input: &str, policy: CheckDigitPolicy) -> Result<Vin, VinError> {
        let vin: String = input.trim().to_ascii_uppercase();
        let len = vin.chars().count();
        if len != 17 {
            return Err(VinError::Length { len });
        }
        for (i, ch) in vin.chars().enumerate() {
            let position = i + 1;
            match ch {
                'I' | 'O' | 'Q' => return Err(VinError::ForbiddenLetter { ch, position }),
                '0'..='9' | 'A'..='Z' => {}
                _ => return Err(VinError::BadCharacter { ch, position }),
            }
        }
        if policy == CheckDigitPolicy::Enforce {
            let expected = check_digit(&vin);
            let found = vin.as_bytes()[8] as char;
            if found != expected {
                return Err(VinError::CheckDigit { expected, found });
            }
        }
        Ok(Vin(vin))
    }

    /// The VIN as stored in documents.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Vin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Vin {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The ISO 3779 / GB 16735 check digit of a 17-character VIN of allowed characters
/// (position 9 itself has weight 0, so its current value does not matter).
pub fn check_digit(vin: &str) -> char {
    const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
    let value = |c: u8| -> u32 {
        match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'H' => u32::from(c - b'A') + 1,
            b'J'..=b'N' => u32::from(c - b'J') + 1,
            b'P' => 7,
            b'R' => 9,
            b'S'..=b'Z' => u32::from(c - b'S') + 2,
            _ => 0,
        }
    };
    let sum: u32 = vin.bytes().zip(WEIGHTS).map(|(c, w)| value(c) * w).sum();
    match sum % 11 {
        10 => 'X',
        n => char::from(b'0' + n as u8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_good_vins_pass() {
        // The textbook example from the NHTSA rule, check digit X.
        let v = Vin::parse("1M8GDM9AXKP042788", CheckDigitPolicy::Enforce).unwrap();
        assert_eq!(v.as_str(), "1M8GDM9AXKP042788");
        assert!(Vin::parse("11111111111111111", CheckDigitPolicy::Enforce).is_ok());
        // Lower case and stray spaces are forgiven.
        assert!(Vin::parse(" 1m8gdm9axkp042788 ", CheckDigitPolicy::Enforce).is_ok());
    }

    #[test]
    fn transliteration_table_matches_iso_3779() {
        // Each letter's value, as in the standard's table.
        let expect = [
            ('A', 1),
            ('B', 2),
            ('C', 3),
            ('D', 4),
            ('E', 5),
            ('F', 6),
            ('G', 7),
            ('H', 8),
            ('J', 1),
            ('K', 2),
            ('L', 3),
            ('M', 4),
            ('N', 5),
            ('P', 7),
            ('R', 9),
            ('S', 2),
            ('T', 3),
            ('U', 4),
            ('V', 5),
            ('W', 6),
            ('X', 7),
            ('Y', 8),
            ('Z', 9),
        ];
        for (ch, v) in expect {
            // Put the letter at position 1 (weight 8) after zeros: sum = 8v.
            let vin = format!("{ch}0000000000000000");
            let want = match (8 * v) % 11 {
                10 => 'X',
                n => char::from(b'0' + n as u8),
            };
            assert_eq!(check_digit(&vin), want, "letter {ch}");
        }
    }

    #[test]
    fn errors_name_the_character_and_position() {
        let e = Vin::parse("1M8GDM9AXKP04278", CheckDigitPolicy::Enforce).unwrap_err();
        assert_eq!(e.to_string(), "a VIN has 17 characters, this one has 16");
        let e = Vin::parse("1M8GDM9AXKPO42788", CheckDigitPolicy::Enforce).unwrap_err();
        assert_eq!(
            e.to_string(),
            "character 'O' at position 12 is not allowed in a VIN (I, O and Q are never used)"
        );
        let e = Vin::parse("1M8GDM9AXKP0427_8", CheckDigitPolicy::Enforce).unwrap_err();
        assert_eq!(
            e,
            VinError::BadCharacter {
                ch: '_',
                position: 16
            }
        );
        let e = Vin::parse("1M8GDM9A1KP042788", CheckDigitPolicy::Enforce).unwrap_err();
        assert_eq!(
            e.to_string(),
            "check digit at position 9 is '1' but the VIN's other characters give 'X'"
        );
        // The same VIN is accepted when the policy says to ignore the check digit.
        assert!(Vin::parse("1M8GDM9A1KP042788", CheckDigitPolicy::Ignore).is_ok());
        // A multi-byte character counts as one character, not a crash.
        let e = Vin::parse("1M8GDM9AXKP04278é", CheckDigitPolicy::Ignore).unwrap_err();
        assert_eq!(
            e,
            VinError::BadCharacter {
                ch: 'é',
                position: 17
            }
        );
    }
}
