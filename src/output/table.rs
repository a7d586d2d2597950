//! Aligned text tables that stream: the first rows are held back to size the columns, later rows
//! are printed as they come (a wider cell just pushes its row out).

use std::io::{self, Write};

/// Rows held back to measure column widths before anything is printed.
const SIZING_ROWS: usize = 1000;

pub struct TableWriter {
    headers: Vec<String>,
    pending: Vec<Vec<String>>,
    /// Column widths and whether each column is right-aligned, once measured.
    layout: Option<(Vec<usize>, Vec<bool>)>,
}

impl TableWriter {
    pub fn new(headers: Vec<String>) -> TableWriter {
        TableWriter {
            headers,
            pending: Vec::new(),
            layout: None,
        }
    }

    pub fn row(&mut self, out: &mut dyn Write, cells: Vec<String>) -> io::Result<()> {
        match &self.layout {
            Some((widths, right)) => write_row(out, widths, right, &cells),
            None => {
                self.pending.push(cells);
                if self.pending.len() >= SIZING_ROWS {
                    self.flush_pending(out)?;
                }
                Ok(())
            }
        }
    }

    fn flush_pending(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.pending {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        // A column is right-aligned when every measured cell is a number (or `-`).
        let right: Vec<bool> = (0..self.headers.len())
            .map(|i| {
                self.pending
                    .iter()
                    .filter_map(|r| r.get(i))
                    .all(|c| c == "-" || is_numeric(c))
            })
            .collect();
        write_row(out, &widths, &right, &self.headers)?;
        for row in std::mem::take(&mut self.pending) {
            write_row(out, &widths, &right, &row)?;
        }
        self.layout = Some((widths, right));
        Ok(())
    }

    /// Prints rows still held back (a table of fewer than [`SIZING_ROWS`] rows).
    pub fn finish(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if self.layout.is_none() && !self.pending.is_empty() {
            self.flush_pending(out)?;
        }
        Ok(())
    }
}

fn is_numeric(cell: &str) -> bool {
    cell.starts_with(|c: char| c.is_ascii_digit())
        && (cell.bytes().all(|b| b.is_ascii_digit() || b == b'.') || cell.ends_with(" B") || cell.ends_with("iB"))
}

fn write_row(out: &mut dyn Write, widths: &[usize], right: &[bool], cells: &[String]) -> io::Result<()> {
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        let width = widths.get(i).copied().unwrap_or(0);
        let pad = width.saturating_sub(cell.chars().count());
        if right.get(i).copied().unwrap_or(false) {
            line.extend(std::iter::repeat_n(' ', pad));
            line.push_str(cell);
        } else {
            line.push_str(cell);
            if i + 1 < cells.len() {
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
    }
    line.push('\n');
    out.write_all(line.as_bytes())
}

/// A byte count for people: `512 B`, `1.5 KiB`, `38.2 GiB`.
pub fn human_bytes(n: impl Into<u128>) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let n: u128 = n.into();
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_and_right_aligns_numbers() {
        let mut t = TableWriter::new(vec!["name".into(), "n".into()]);
        let mut out = Vec::new();
        t.row(&mut out, vec!["a".into(), "10".into()]).unwrap();
        t.row(&mut out, vec!["long".into(), "7".into()]).unwrap();
        t.finish(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "name   n\na     10\nlong   7\n");
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512u64), "512 B");
        assert_eq!(human_bytes(1536u64), "1.5 KiB");
        assert_eq!(human_bytes(38 * 1024 * 1024 * 1024u64), "38.0 GiB");
    }
}
