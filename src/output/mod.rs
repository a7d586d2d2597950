//! Printing records for people (aligned tables) and for scripts (JSON lines, CSV). Knows records
//! and their provenance, never where they came from (reader or index).
//!
//! JSON keys and CSV columns are the AWS field names with `_` for `-` (`srcaddr`,
//! `flow_direction`); `-` is `null` (JSON) or empty (CSV); IPs are strings; numbers are numbers.
//! With provenance, `_source` and `_line` follow the fields. `raw` prints each record's original
//! line byte for byte (with provenance, after `source:line:` as grep prints it).

mod table;

pub use table::{human_bytes, TableWriter};

use std::io::{self, Write};

use rayon::prelude::*;

use crate::record::{Field, FlowRecord, Value};

/// How records are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Jsonl,
    Csv,
    Table,
    /// The original line of each record.
    Raw,
}

impl OutputFormat {
    pub fn parse(name: &str) -> Option<OutputFormat> {
        match name {
            "jsonl" | "json" => Some(OutputFormat::Jsonl),
            "csv" => Some(OutputFormat::Csv),
            "table" => Some(OutputFormat::Table),
            "raw" => Some(OutputFormat::Raw),
            _ => None,
        }
    }
}

/// The columns a table shows when none are asked for: what a responder reads first.
pub const TABLE_FIELDS: &[Field] = &[
    Field::Start,
    Field::InterfaceId,
    Field::Srcaddr,
    Field::Srcport,
    Field::Dstaddr,
    Field::Dstport,
    Field::Protocol,
    Field::Packets,
    Field::Bytes,
    Field::Action,
    Field::LogStatus,
];

/// Records a parallel writer formats before writing any (about 40 MB of JSON).
const JSON_WINDOW: usize = 65_536;
/// Records one task formats.
const JSON_CHUNK: usize = 2_048;
/// Bytes of a v5 record's JSON line, about: room reserved per record so that a chunk's text
/// seldom grows by copying.
const JSON_LINE_GUESS: usize = 640;

/// Where a printed record came from, for `--with-source`.
#[derive(Clone, Copy, Debug)]
pub struct SourceRef<'a> {
    pub name: &'a str,
    pub line: u64,
}

/// Prints records one at a time in the chosen format.
pub struct RecordWriter<W: Write> {
    out: W,
    format: OutputFormat,
    /// Columns for CSV and tables; JSON prints the fields each record's format carried, or
    /// these columns when they were chosen.
    columns: Vec<Field>,
    chosen: bool,
    with_source: bool,
    csv_header_written: bool,
    /// The JSON line being put together, kept between records so that none allocates.
    line: Vec<u8>,
    table: Option<TableWriter>,
}

impl<W: Write> RecordWriter<W> {
    /// `columns` empty means the default: every field for CSV, [`TABLE_FIELDS`] for tables.
    pub fn new(out: W, format: OutputFormat, columns: Vec<Field>, with_source: bool) -> RecordWriter<W> {
        let chosen = !columns.is_empty();
        let columns = match (columns.is_empty(), format) {
            (false, _) => columns,
            (true, OutputFormat::Table) => TABLE_FIELDS.to_vec(),
            (true, _) => Field::ALL.to_vec(),
        };
        let table = (format == OutputFormat::Table).then(|| {
            let mut headers: Vec<String> = columns.iter().map(|f| f.key().to_owned()).collect();
            if with_source {
                headers.push("_source".into());
                headers.push("_line".into());
            }
            TableWriter::new(headers)
        });
        RecordWriter {
            out,
            format,
            columns,
            chosen,
            with_source,
            csv_header_written: false,
            line: Vec::new(),
            table,
        }
    }

    /// Writes one record; `line` is its original line, which only the raw format prints (and
    /// needs).
    pub fn write(&mut self, record: &FlowRecord, line: Option<&[u8]>, source: Option<SourceRef<'_>>) -> io::Result<()> {
        let source = source.filter(|_| self.with_source);
        match self.format {
            OutputFormat::Raw => {
                let line = line.ok_or_else(|| io::Error::other("the raw format needs the original line"))?;
                if let Some(s) = source {
                    write!(self.out, "{}:{}:", s.name, s.line)?;
                }
                self.out.write_all(line)?;
                self.out.write_all(b"\n")
            }
            OutputFormat::Jsonl => {
                self.line.clear();
                push_json_record(&mut self.line, record, self.chosen.then_some(&self.columns[..]), source);
                self.out.write_all(&self.line)
            }
            OutputFormat::Csv => self.write_csv(record, source),
            OutputFormat::Table => {
                let mut cells: Vec<String> = self.columns.iter().map(|f| table_cell(record, *f)).collect();
                if let Some(s) = source {
                    cells.push(s.name.to_owned());
                    cells.push(s.line.to_string());
                }
                self.table
                    .as_mut()
                    .expect("table format has a table")
                    .row(&mut self.out, cells)
            }
        }
    }

    /// Writes records `0..n` in order, record `i` being `item(i)` as [`RecordWriter::write`]
    /// takes it. JSON lines are formatted on all cores, a window of records at a time, and
    /// written in order: formatting a hot address's 650,000 records on one core, after they
    /// were decoded on all, was a quarter of the search.
    pub fn write_each<'a>(
        &mut self,
        n: usize,
        item: impl Fn(usize) -> (&'a FlowRecord, Option<&'a [u8]>, Option<SourceRef<'a>>) + Sync,
    ) -> io::Result<()> {
        if self.format != OutputFormat::Jsonl {
            return (0..n).try_for_each(|i| {
                let (record, line, source) = item(i);
                self.write(record, line, source)
            });
        }
        let fields = self.chosen.then_some(&self.columns[..]);
        let with_source = self.with_source;
        for window in (0..n).step_by(JSON_WINDOW) {
            let end = (window + JSON_WINDOW).min(n);
            let starts: Vec<usize> = (window..end).step_by(JSON_CHUNK).collect();
            let texts: Vec<Vec<u8>> = starts
                .par_iter()
                .map(|&start| {
                    let mut text = Vec::with_capacity(JSON_CHUNK * JSON_LINE_GUESS);
                    for i in start..(start + JSON_CHUNK).min(end) {
                        let (record, _, source) = item(i);
                        push_json_record(&mut text, record, fields, source.filter(|_| with_source));
                    }
                    text
                })
                .collect();
            for text in texts {
                self.out.write_all(&text)?;
            }
        }
        Ok(())
    }

    fn write_csv(&mut self, record: &FlowRecord, source: Option<SourceRef<'_>>) -> io::Result<()> {
        if !self.csv_header_written {
            self.csv_header_written = true;
            let mut names: Vec<&str> = self.columns.iter().map(|f| f.key()).collect();
            if self.with_source {
                names.extend(["_source", "_line"]);
            }
            writeln!(self.out, "{}", names.join(","))?;
        }
        for (i, f) in self.columns.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",")?;
            }
            if let Some(v) = record.get(*f) {
                write_csv_cell(&mut self.out, &v.to_string())?;
            }
        }
        if let Some(s) = source {
            self.out.write_all(b",")?;
            write_csv_cell(&mut self.out, s.name)?;
            write!(self.out, ",{}", s.line)?;
        }
        self.out.write_all(b"\n")
    }

    /// Flushes what is buffered (a table waits for its first rows to size its columns).
    pub fn finish(mut self) -> io::Result<W> {
        if let Some(table) = self.table.as_mut() {
            table.finish(&mut self.out)?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Appends one record as a JSON object and a newline to `line`: the fields its format carried,
/// or the `fields` asked for (null where the record has no value). Lines are put together in
/// memory and written at once, numbers and addresses formatted on the stack: a hot address's
/// 650,000 records spent a third of their time writing, most of it in ninety small writes a
/// record.
fn push_json_record(line: &mut Vec<u8>, record: &FlowRecord, fields: Option<&[Field]>, source: Option<SourceRef<'_>>) {
    line.push(b'{');
    let mut first = true;
    let mut key = |line: &mut Vec<u8>, k: &str| {
        if !std::mem::take(&mut first) {
            line.push(b',');
        }
        push_json_string(line, k);
        line.push(b':');
    };
    let all: Vec<Field>;
    let fields = match fields {
        Some(f) => f,
        None => {
            all = record.fields.iter().collect();
            &all
        }
    };
    for &f in fields {
        key(line, f.key());
        match record.get(f) {
            None => line.extend_from_slice(b"null"),
            Some(v @ Value::UInt(_)) => v.with_text(|t| line.extend_from_slice(t.as_bytes())),
            Some(v @ Value::Ip(_)) => v.with_text(|t| {
                line.push(b'"');
                line.extend_from_slice(t.as_bytes());
                line.push(b'"');
            }),
            Some(Value::Str(s)) => push_json_string(line, s),
        }
    }
    for extra in record.extra.iter().filter(|_| fields.len() == record.fields.len()) {
        key(line, &extra.name.replace('-', "_"));
        match &extra.value {
            None => line.extend_from_slice(b"null"),
            Some(v) => push_json_string(line, v),
        }
    }
    if let Some(s) = source {
        key(line, "_source");
        push_json_string(line, s.name);
        key(line, "_line");
        Value::UInt(s.line).with_text(|t| line.extend_from_slice(t.as_bytes()));
    }
    line.extend_from_slice(b"}\n");
}

/// Writes a JSON string literal with the escapes JSON requires.
pub fn write_json_string(out: &mut dyn Write, s: &str) -> io::Result<()> {
    let mut literal = Vec::with_capacity(s.len() + 2);
    push_json_string(&mut literal, s);
    out.write_all(&literal)
}

fn push_json_string(out: &mut Vec<u8>, s: &str) {
    // Field names, IDs and words need no escape: copied as they are.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(out, s).expect("writing to a Vec cannot fail");
    }
}

fn write_csv_cell(out: &mut dyn Write, s: &str) -> io::Result<()> {
    if s.contains([',', '"', '\n', '\r']) {
        write!(out, "\"{}\"", s.replace('"', "\"\""))
    } else {
        out.write_all(s.as_bytes())
    }
}

/// Writes aggregate rows: JSON objects keyed by column name, CSV with a header, or a table.
pub fn write_rows(out: &mut dyn Write, format: OutputFormat, rows: &crate::agg::Rows) -> io::Result<()> {
    use crate::agg::Cell;
    let text = |c: &Cell| match c {
        Cell::Null => String::new(),
        Cell::Int(n) => n.to_string(),
        Cell::Float(x) => format!("{x:.2}"),
        Cell::Text(t) => t.clone(),
    };
    match format {
        OutputFormat::Jsonl => {
            for row in &rows.rows {
                out.write_all(b"{")?;
                for (i, (name, cell)) in rows.columns.iter().zip(row).enumerate() {
                    if i > 0 {
                        out.write_all(b",")?;
                    }
                    write_json_string(out, name)?;
                    out.write_all(b":")?;
                    match cell {
                        Cell::Null => out.write_all(b"null")?,
                        Cell::Int(n) => write!(out, "{n}")?,
                        Cell::Float(x) => serde_json::to_writer(&mut *out, x).map_err(io::Error::other)?,
                        Cell::Text(t) => write_json_string(out, t)?,
                    }
                }
                out.write_all(b"}\n")?;
            }
        }
        OutputFormat::Csv => {
            writeln!(out, "{}", rows.columns.join(","))?;
            for row in &rows.rows {
                for (i, cell) in row.iter().enumerate() {
                    if i > 0 {
                        out.write_all(b",")?;
                    }
                    write_csv_cell(out, &text(cell))?;
                }
                out.write_all(b"\n")?;
            }
        }
        OutputFormat::Table => {
            let mut table = TableWriter::new(rows.columns.clone());
            for row in &rows.rows {
                let cells = rows.columns.iter().zip(row).map(|(name, c)| match c {
                    Cell::Int(n) if name.contains("bytes") => human_bytes(*n),
                    Cell::Null => "-".to_owned(),
                    c => text(c),
                });
                table.row(out, cells.collect())?;
            }
            table.finish(out)?;
        }
        OutputFormat::Raw => {
            return Err(io::Error::other(
                "aggregate rows have no original lines; use --format table, jsonl or csv",
            ))
        }
    }
    Ok(())
}

fn table_cell(record: &FlowRecord, field: Field) -> String {
    match (field, record.get(field)) {
        (_, None) => "-".to_owned(),
        (Field::Start | Field::End, Some(Value::UInt(t))) => {
            let mut s = crate::time::format_rfc3339(t as i64);
            s = s.replacen('T', " ", 1);
            s.pop();
            s
        }
        (Field::Bytes, Some(Value::UInt(b))) => human_bytes(b),
        (_, Some(v)) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> FlowRecord {
        let mut r = FlowRecord::default();
        for (f, t) in [
            (Field::Srcaddr, "10.0.0.1"),
            (Field::Bytes, "1234"),
            (Field::Action, "-"),
        ] {
            r.set_text(f, t).unwrap();
            r.fields.insert(f);
        }
        r
    }

    #[test]
    fn json_has_aws_keys_nulls_and_source() {
        let mut out = Vec::new();
        push_json_record(
            &mut out,
            &record(),
            None,
            Some(SourceRef {
                name: "a\"b.log",
                line: 3,
            }),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"srcaddr\":\"10.0.0.1\",\"bytes\":1234,\"action\":null,\"_source\":\"a\\\"b.log\",\"_line\":3}\n"
        );
    }

    #[test]
    fn json_strings_are_what_serde_json_writes() {
        for s in [
            "",
            "eni-0abc",
            "a\"b",
            "back\\slash",
            "tab\there",
            "\u{1}",
            "ünï \u{7f} 💡",
            "</script>",
        ] {
            let mut ours = Vec::new();
            write_json_string(&mut ours, s).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(s).unwrap(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn csv_quotes_and_leaves_dashes_empty() {
        let mut w = RecordWriter::new(Vec::new(), OutputFormat::Csv, vec![Field::Srcaddr, Field::Action], true);
        w.write(&record(), None, Some(SourceRef { name: "x,y", line: 9 }))
            .unwrap();
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(out, "srcaddr,action,_source,_line\n10.0.0.1,,\"x,y\",9\n");
    }
}
