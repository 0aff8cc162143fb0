//! Printing: aligned tables for people, JSON and CSV for scripts, money in yuan.

use anyhow::{Result, bail};
use dealersync_core::spreadsheet::neutralise;
use serde::Serialize;

/// Rows with a header, printed aligned or as CSV.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Column titles.
    pub headers: Vec<String>,
    /// Cells, one `Vec` per row, as many as `headers`.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.headers.len());
        self.rows.push(cells);
    }

    /// The table with columns padded to their widest cell (CJK characters count two).
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                widths[i] = widths[i].max(width(c));
            }
        }
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String| {
            let mut l = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i > 0 {
                    l.push_str("  ");
                }
                l.push_str(c);
                if i + 1 < cells.len() {
                    l.push_str(&" ".repeat(widths[i] - width(c)));
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&self.headers, &mut out);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        line(&rule, &mut out);
        for r in &self.rows {
            line(r, &mut out);
        }
        if self.rows.is_empty() {
            out.push_str("(none)\n");
        }
        out
    }

    /// The table as CSV with a header row.
    pub fn to_csv(&self) -> Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        // Cells are customer names, notes and ids typed on any device: a cell that a
        // spreadsheet would run as a formula is written as text.
        let safe = |cells: &[String]| -> Vec<String> {
            cells.iter().map(|c| neutralise(c).into_owned()).collect()
        };
        w.write_record(safe(&self.headers))?;
        for r in &self.rows {
            w.write_record(safe(r))?;
        }
        Ok(String::from_utf8(w.into_inner()?)?)
    }
}

/// Display width of a string in a terminal: East Asian wide characters take two cells.
pub fn width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            let c = c as u32;
            let wide = matches!(c,
                0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF
                | 0x4E00..=0x9FFF | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
                | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD);
            if wide { 2 } else { 1 }
        })
        .sum()
}

/// Prints `value` as pretty JSON.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Fen as yuan with two decimals, e.g. `152,000.00`.
pub fn yuan(fen: i64) -> String {
    let neg = fen < 0;
    let abs = fen.unsigned_abs();
    let whole = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{}{}.{:02}", if neg { "-" } else { "" }, grouped, abs % 100)
}

/// Parses an amount in yuan (`152000`, `152000.5`, `152,000.50`) into fen.
pub fn parse_yuan(s: &str) -> Result<i64> {
    let t = s.trim().replace(',', "");
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest.to_string()),
        None => (false, t),
    };
    let (whole, frac) = match t.split_once('.') {
        Some((w, f)) => (w.to_string(), f.to_string()),
        None => (t.clone(), String::new()),
    };
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 2
    {
        bail!("{s:?} is not an amount in yuan (examples: 152000, 152000.50)");
    }
    let whole: i64 = whole
        .parse()
        .map_err(|_| anyhow::anyhow!("{s:?} is too large"))?;
    let frac: i64 = format!("{frac:0<2}").parse().unwrap_or(0);
    let fen = whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(|| anyhow::anyhow!("{s:?} is too large"))?;
    Ok(if neg { -fen } else { fen })
}

/// A UTC millisecond timestamp as local China Standard Time, `YYYY-MM-DD HH:MM`.
pub fn when(ms: i64) -> String {
    match dealersync_core::time::in_cst(ms) {
        Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        None => ms.to_string(),
    }
}

/// A UTC millisecond timestamp as a CST date, `YYYY-MM-DD`.
pub fn date(ms: i64) -> String {
    when(ms)[..10].to_string()
}

/// Parses `YYYY-MM-DD` (a CST day) into the UTC milliseconds of its midnight.
pub fn parse_date(s: &str) -> Result<i64> {
    let d = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| anyhow::anyhow!("{s:?} is not a date; write YYYY-MM-DD"))?;
    Ok(dealersync_core::time::cst_midnight(d))
}

/// `-` for nothing.
pub fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_round_trips() {
        assert_eq!(parse_yuan("152000").unwrap(), 15_200_000);
        assert_eq!(parse_yuan("152,000.5").unwrap(), 15_200_050);
        assert_eq!(parse_yuan("-3.07").unwrap(), -307);
        assert!(parse_yuan("1.234").is_err());
        assert!(parse_yuan("abc").is_err());
        assert_eq!(yuan(15_200_050), "152,000.50");
        assert_eq!(yuan(-307), "-3.07");
        assert_eq!(yuan(5), "0.05");
    }

    #[test]
    fn tables_align_wide_characters() {
        let mut t = Table::new(&["name", "n"]);
        t.row(vec!["王伟".into(), "1".into()]);
        t.row(vec!["Li".into(), "22".into()]);
        let out = t.render();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[2], "王伟  1");
        assert_eq!(lines[3], "Li    22");
        assert_eq!(t.to_csv().unwrap(), "name,n\n王伟,1\nLi,22\n");
    }

    #[test]
    fn csv_cells_never_start_a_formula() {
        let mut t = Table::new(&["name", "amount"]);
        t.row(vec![
            "=HYPERLINK(\"http://x/\",\"y\")".into(),
            "-3.07".into(),
        ]);
        t.row(vec!["@SUM(A1)".into(), "-152,000.50".into()]);
        t.row(vec!["+86 138".into(), "12".into()]);
        assert_eq!(
            t.to_csv().unwrap(),
            "name,amount\n\"'=HYPERLINK(\"\"http://x/\"\",\"\"y\"\")\",-3.07\n\
             '@SUM(A1),\"-152,000.50\"\n'+86 138,12\n"
        );
    }

    #[test]
    fn dates_are_cst() {
        let ms = parse_date("2026-03-01").unwrap();
        assert_eq!(ms, 1_772_294_400_000);
        assert_eq!(date(ms), "2026-03-01");
    }
}
