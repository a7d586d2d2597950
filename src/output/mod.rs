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
use std::sync::Arc;

use rayon::prelude::*;

use crate::record::{Field, FieldSet, FlowRecord, Value};

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
    Field::TgwAttachmentId,
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

/// The columns of a CSV or table of records that carry only `present` fields: every field
/// they carry for CSV, the [`TABLE_FIELDS`] among them for tables (a Transit Gateway index has
/// attachments, not interfaces). Empty for JSON, which prints each record's own fields.
pub fn columns_for(format: OutputFormat, present: FieldSet) -> Vec<Field> {
    let defaults = match format {
        OutputFormat::Csv => Field::ALL,
        OutputFormat::Table => TABLE_FIELDS,
        OutputFormat::Jsonl | OutputFormat::Raw => return Vec::new(),
    };
    defaults.iter().copied().filter(|f| present.contains(*f)).collect()
}

/// Records a parallel writer formats before writing any (about 40 MB of JSON).
const FORMAT_WINDOW: usize = 65_536;
/// Records one task formats.
const FORMAT_CHUNK: usize = 2_048;
/// Bytes of a v5 record's JSON line, about (other formats print less): room reserved per record
/// so that a chunk's text seldom grows by copying.
const JSON_LINE_GUESS: usize = 640;

/// Where a printed record came from, for `--with-source`.
#[derive(Clone, Copy, Debug)]
pub struct SourceRef<'a> {
    pub name: &'a str,
    pub line: u64,
}

/// How one record is printed, all but its provenance and its line end. It holds no output, so
/// the threads that decode a search's records can format them as they go
/// ([`RecordWriter::write_formatted`] finishes each).
#[derive(Clone, Debug)]
pub struct RecordFormat {
    format: OutputFormat,
    /// Columns for CSV and tables; JSON prints the fields each record's format carried, or
    /// these columns when they were chosen.
    columns: Vec<Field>,
    chosen: bool,
    /// For CSV, columns after `columns` for fields flowdex does not know (a future AWS
    /// version), by name: JSON prints a record's own.
    extras: Vec<Arc<str>>,
}

impl RecordFormat {
    /// `columns` empty means the default: every field for CSV, [`TABLE_FIELDS`] for tables.
    pub fn new(format: OutputFormat, columns: Vec<Field>) -> RecordFormat {
        let chosen = !columns.is_empty();
        let columns = match (columns.is_empty(), format) {
            (false, _) => columns,
            (true, OutputFormat::Table) => TABLE_FIELDS.to_vec(),
            (true, _) => Field::ALL.to_vec(),
        };
        RecordFormat {
            format,
            columns,
            chosen,
            extras: Vec::new(),
        }
    }

    /// Appends the record's printed form to `out`: a JSON object left open, a CSV row, the
    /// original `line` (raw, which needs it), or the table's cells, each as a 4-byte
    /// little-endian length and its text (a table is aligned as a whole, so cells stay cells).
    pub fn format(&self, record: &FlowRecord, line: Option<&[u8]>, out: &mut Vec<u8>) -> io::Result<()> {
        match self.format {
            OutputFormat::Raw => {
                let line = line.ok_or_else(|| io::Error::other("the raw format needs the original line"))?;
                // Lines are streamed: a file's byte-order mark, which its first line keeps
                // (`show`, an evidence bundle), would land mid-stream.
                out.extend_from_slice(line.strip_prefix(crate::input::UTF8_BOM).unwrap_or(line))
            }
            OutputFormat::Jsonl => push_json_fields(out, record, self.chosen.then_some(&self.columns[..])),
            OutputFormat::Csv => {
                for (i, f) in self.columns.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    if let Some(v) = record.get(*f) {
                        write_csv_cell(out, &v.to_string())?;
                    }
                }
                for name in &self.extras {
                    out.push(b',');
                    let value = record
                        .extra
                        .iter()
                        .find(|e| e.name == *name)
                        .and_then(|e| e.value.as_deref());
                    if let Some(v) = value {
                        write_csv_cell(out, v)?;
                    }
                }
            }
            OutputFormat::Table => {
                for f in &self.columns {
                    push_cell(out, &table_cell(record, *f));
                }
            }
        }
        Ok(())
    }
}

/// Prints records one at a time in the chosen format.
pub struct RecordWriter<W: Write> {
    out: W,
    format: RecordFormat,
    with_source: bool,
    csv_header_written: bool,
    /// The record being put together, kept between records so that none allocates.
    line: Vec<u8>,
    /// Its provenance being put together, kept for the same reason.
    provenance: Vec<u8>,
    table: Option<TableWriter>,
}

impl<W: Write> RecordWriter<W> {
    /// `columns` empty means the default: every field for CSV, [`TABLE_FIELDS`] for tables.
    pub fn new(out: W, format: OutputFormat, columns: Vec<Field>, with_source: bool) -> RecordWriter<W> {
        let format = RecordFormat::new(format, columns);
        let table = (format.format == OutputFormat::Table).then(|| {
            let mut headers: Vec<String> = format.columns.iter().map(|f| f.key().to_owned()).collect();
            if with_source {
                headers.push("_source".into());
                headers.push("_line".into());
            }
            TableWriter::new(headers)
        });
        RecordWriter {
            out,
            format,
            with_source,
            csv_header_written: false,
            line: Vec::new(),
            provenance: Vec::new(),
            table,
        }
    }

    /// Adds CSV columns, after the known fields, for fields flowdex does not know (by name, as
    /// the header lines wrote them): CSV has one header for all its rows, so the caller says
    /// which names its records may carry (an index knows them from its formats).
    pub fn with_extra_columns(mut self, names: Vec<Arc<str>>) -> RecordWriter<W> {
        if self.format.format == OutputFormat::Csv {
            self.format.extras = names;
        }
        self
    }

    /// How this writer formats a record, for formatting records elsewhere.
    pub fn format(&self) -> &RecordFormat {
        &self.format
    }

    /// Writes one record; `line` is its original line, which only the raw format prints (and
    /// needs).
    pub fn write(&mut self, record: &FlowRecord, line: Option<&[u8]>, source: Option<SourceRef<'_>>) -> io::Result<()> {
        let mut text = std::mem::take(&mut self.line);
        text.clear();
        let written = self
            .format
            .format(record, line, &mut text)
            .and_then(|()| self.write_formatted(&text, source));
        self.line = text;
        written
    }

    /// Writes a record that [`RecordFormat::format`] formatted, with its provenance when the
    /// writer prints provenance.
    pub fn write_formatted(&mut self, text: &[u8], source: Option<SourceRef<'_>>) -> io::Result<()> {
        let source = source.filter(|_| self.with_source);
        match self.format.format {
            OutputFormat::Raw => {
                if let Some(s) = source {
                    write!(self.out, "{}:{}:", s.name, s.line)?;
                }
                self.out.write_all(text)?;
                self.out.write_all(b"\n")
            }
            OutputFormat::Jsonl => {
                self.out.write_all(text)?;
                let keys = &mut self.provenance;
                keys.clear();
                if let Some(s) = source {
                    if text != b"{" {
                        keys.push(b',');
                    }
                    keys.extend_from_slice(b"\"_source\":");
                    push_json_string(keys, s.name);
                    keys.extend_from_slice(b",\"_line\":");
                    Value::UInt(s.line).with_text(|t| keys.extend_from_slice(t.as_bytes()));
                }
                keys.extend_from_slice(b"}\n");
                self.out.write_all(keys)
            }
            OutputFormat::Csv => {
                self.write_csv_header()?;
                self.out.write_all(text)?;
                let cells = &mut self.provenance;
                cells.clear();
                if let Some(s) = source {
                    cells.push(b',');
                    write_csv_cell(cells, s.name)?;
                    write!(cells, ",{}", s.line)?;
                }
                cells.push(b'\n');
                self.out.write_all(cells)
            }
            OutputFormat::Table => {
                let mut cells = cells_of(text)?;
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
    /// takes it. Records are formatted on all cores, a window at a time, and written in order:
    /// formatting a hot address's 650,000 records on one core, after they were decoded on all,
    /// was a quarter of the search.
    pub fn write_each<'a>(
        &mut self,
        n: usize,
        item: impl Fn(usize) -> (&'a FlowRecord, Option<&'a [u8]>, Option<SourceRef<'a>>) + Sync,
    ) -> io::Result<()> {
        for window in (0..n).step_by(FORMAT_WINDOW) {
            let end = (window + FORMAT_WINDOW).min(n);
            let starts: Vec<usize> = (window..end).step_by(FORMAT_CHUNK).collect();
            // Each chunk's records as one text, and where each record ends in it.
            let texts: Vec<(Vec<u8>, Vec<usize>)> = starts
                .par_iter()
                .map(|&start| {
                    let stop = (start + FORMAT_CHUNK).min(end);
                    let mut text = Vec::with_capacity((stop - start) * JSON_LINE_GUESS);
                    let mut ends = Vec::with_capacity(stop - start);
                    for i in start..stop {
                        let (record, line, _) = item(i);
                        self.format.format(record, line, &mut text)?;
                        ends.push(text.len());
                    }
                    Ok((text, ends))
                })
                .collect::<io::Result<_>>()?;
            for ((text, ends), start) in texts.iter().zip(starts) {
                let mut from = 0;
                for (i, &to) in ends.iter().enumerate() {
                    self.write_formatted(&text[from..to], item(start + i).2)?;
                    from = to;
                }
            }
        }
        Ok(())
    }

    /// CSV's header row, once, before the first record or at the end: a script reading an
    /// empty answer still finds its columns.
    fn write_csv_header(&mut self) -> io::Result<()> {
        if self.format.format != OutputFormat::Csv || self.csv_header_written {
            return Ok(());
        }
        self.csv_header_written = true;
        let mut names: Vec<String> = self.format.columns.iter().map(|f| f.key().to_owned()).collect();
        names.extend(self.format.extras.iter().map(|name| name.replace('-', "_")));
        if self.with_source {
            names.extend(["_source".into(), "_line".into()]);
        }
        writeln!(self.out, "{}", names.join(","))
    }

    /// Flushes what is buffered (a table waits for its first rows to size its columns), and
    /// writes CSV's header if no record did.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_csv_header()?;
        if let Some(table) = self.table.as_mut() {
            table.finish(&mut self.out)?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Appends a table cell as [`RecordFormat::format`] lays cells out.
fn push_cell(out: &mut Vec<u8>, cell: &str) {
    out.extend_from_slice(&(cell.len() as u32).to_le_bytes());
    out.extend_from_slice(cell.as_bytes());
}

/// The cells [`push_cell`] laid out.
fn cells_of(mut text: &[u8]) -> io::Result<Vec<String>> {
    let mut cells = Vec::new();
    let malformed = || io::Error::other("a table row that was not formatted as cells");
    while let Some((length, rest)) = text.split_first_chunk::<4>() {
        let length = u32::from_le_bytes(*length) as usize;
        let cell = rest.get(..length).ok_or_else(malformed)?;
        cells.push(String::from_utf8(cell.to_vec()).map_err(|_| malformed())?);
        text = &rest[length..];
    }
    if text.is_empty() {
        Ok(cells)
    } else {
        Err(malformed())
    }
}

/// Appends one record as a JSON object without its closing brace: the fields its format
/// carried, or the `fields` asked for (null where the record has no value). Lines are put
/// together in memory and written at once, numbers and addresses formatted on the stack: a hot
/// address's 650,000 records spent a third of their time writing, most of it in ninety small
/// writes a record.
fn push_json_fields(line: &mut Vec<u8>, record: &FlowRecord, fields: Option<&[Field]>) {
    line.push(b'{');
    let mut first = true;
    let mut comma = |line: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            line.push(b',');
        }
    };
    let chosen = fields;
    let fields: &mut dyn Iterator<Item = Field> = match fields {
        Some(f) => &mut f.iter().copied(),
        None => &mut record.fields.iter(),
    };
    for f in fields {
        comma(line);
        // Field keys are plain identifiers: nothing in them to escape (a test checks them all).
        line.push(b'"');
        line.extend_from_slice(f.key().as_bytes());
        line.extend_from_slice(b"\":");
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
    // Unknown fields are the record's own: printed with its fields, never with chosen ones.
    for extra in record.extra.iter().filter(|_| chosen.is_none()) {
        comma(line);
        push_json_string(line, &extra.name.replace('-', "_"));
        line.push(b':');
        match &extra.value {
            None => line.extend_from_slice(b"null"),
            Some(v) => push_json_string(line, v),
        }
    }
}

/// Writes a JSON string literal with the escapes JSON requires.
pub fn write_json_string(out: &mut dyn Write, s: &str) -> io::Result<()> {
    let mut literal = Vec::with_capacity(s.len() + 2);
    push_json_string(&mut literal, s);
    out.write_all(&literal)
}

fn push_json_string(out: &mut Vec<u8>, s: &str) {
    // Field names, IDs and words need no escape: copied as they are.
    if !needs_json_escape(s.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(out, s).expect("writing to a Vec cannot fail");
    }
}

/// Whether `bytes` hold a byte that a JSON string must escape: a control character, `"` or
/// `\\`. Eight bytes at a time: checking byte by byte was most of printing a hot address's
/// 653,283 records as JSON lines (5,800 instructions a record, cachegrind).
fn needs_json_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    // Nonzero when a byte of `x` is below `n` (n <= 128): a zero byte is one below 1.
    let has_below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let quote = has_below(x ^ (ONES * u64::from(b'"')), 1);
        let backslash = has_below(x ^ (ONES * u64::from(b'\\')), 1);
        if has_below(x, 0x20) | quote | backslash != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
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
    use crate::agg::{Cell, Unit};
    let text = |c: &Cell| match c {
        Cell::Null => String::new(),
        Cell::Int(n) => n.to_string(),
        Cell::Float(x) => format!("{x:.2}"),
        Cell::Text(t) => t.clone(),
        Cell::Ip(ip) => Value::Ip(*ip).with_text(str::to_owned),
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
                        Cell::Ip(ip) => Value::Ip(*ip).with_text(|t| write_json_string(out, t))?,
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
                let cells = row
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (rows.units.get(i).copied().unwrap_or_default(), c))
                    .map(|(unit, c)| match (unit, c) {
                        (Unit::Bytes, Cell::Int(n)) => human_bytes(*n),
                        // An average of byte counts, to the byte.
                        (Unit::Bytes, Cell::Float(x)) if *x >= 0.0 => human_bytes(x.round() as u128),
                        (Unit::Time, Cell::Int(t)) => i64::try_from(*t).map_or_else(|_| text(c), table_time),
                        // An average of times, to the second.
                        (Unit::Time, Cell::Float(x)) if *x >= 0.0 => table_time(x.round() as i64),
                        (_, Cell::Null) => "-".to_owned(),
                        (_, c) => text(c),
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

/// A time as a table prints it: `2024-04-28 10:05:00`, UTC.
fn table_time(t: i64) -> String {
    let mut s = crate::time::format_rfc3339(t);
    s = s.replacen('T', " ", 1);
    s.pop();
    s
}

fn table_cell(record: &FlowRecord, field: Field) -> String {
    match (field, record.get(field)) {
        (_, None) => "-".to_owned(),
        (Field::Start | Field::End, Some(Value::UInt(t))) => table_time(t as i64),
        (Field::Bytes, Some(Value::UInt(b))) => human_bytes(b),
        (_, Some(v)) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_gives_fields_flowdex_does_not_know_columns_of_their_own() {
        let record = FlowRecord {
            srcaddr: Some("10.0.0.1".parse().unwrap()),
            extra: vec![crate::record::ExtraField {
                name: "future-field".into(),
                value: Some("a,b".into()),
            }],
            ..FlowRecord::default()
        };
        let extras: Vec<Arc<str>> = vec!["future-field".into(), "other".into()];
        let mut w = RecordWriter::new(Vec::new(), OutputFormat::Csv, vec![Field::Srcaddr], false)
            .with_extra_columns(extras.clone());
        w.write(&record, None, None).unwrap();
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(text, "srcaddr,future_field,other\n10.0.0.1,\"a,b\",\n");
        // Other formats print a record's own (JSON) or the chosen columns (tables).
        let w =
            RecordWriter::new(Vec::new(), OutputFormat::Table, vec![Field::Srcaddr], false).with_extra_columns(extras);
        assert!(w.format().extras.is_empty());
    }

    #[test]
    fn default_columns_are_the_fields_the_index_carries() {
        let mut tgw = FieldSet::EMPTY;
        for f in [
            Field::Start,
            Field::TgwAttachmentId,
            Field::Srcaddr,
            Field::Bytes,
            Field::LogStatus,
        ] {
            tgw.insert(f);
        }
        assert_eq!(
            columns_for(OutputFormat::Table, tgw),
            [
                Field::Start,
                Field::TgwAttachmentId,
                Field::Srcaddr,
                Field::Bytes,
                Field::LogStatus
            ]
        );
        assert_eq!(
            columns_for(OutputFormat::Csv, tgw),
            [
                Field::Srcaddr,
                Field::Bytes,
                Field::Start,
                Field::LogStatus,
                Field::TgwAttachmentId
            ]
        );
        assert!(columns_for(OutputFormat::Jsonl, tgw).is_empty());
    }

    #[test]
    fn field_keys_need_no_json_escape() {
        for f in Field::ALL {
            assert!(!needs_json_escape(f.key().as_bytes()), "{}", f.key());
        }
    }

    proptest::proptest! {
        /// Eight bytes at a time finds what a byte-by-byte check finds, and what is printed
        /// reads back as the string.
        #[test]
        fn json_strings_escape_what_json_requires(
            bytes in proptest::collection::vec(proptest::prop_oneof![
                0u8..0x20, proptest::strategy::Just(b'"'), proptest::strategy::Just(b'\\'), 0x20u8..0x80
            ], 0..40),
            clean in proptest::collection::vec(0x20u8..0x7f, 0..40),
            any in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
        ) {
            let by_byte = |bytes: &[u8]| bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
            proptest::prop_assert_eq!(needs_json_escape(&any), by_byte(&any));
            for bytes in [bytes, clean] {
                proptest::prop_assert_eq!(needs_json_escape(&bytes), by_byte(&bytes));
                let text = String::from_utf8(bytes).expect("ASCII");
                let mut out = Vec::new();
                push_json_string(&mut out, &text);
                proptest::prop_assert_eq!(serde_json::from_slice::<String>(&out).unwrap(), text);
            }
        }
    }

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
        let mut w = RecordWriter::new(Vec::new(), OutputFormat::Jsonl, Vec::new(), true);
        let source = SourceRef {
            name: "a\"b.log",
            line: 3,
        };
        w.write(&record(), None, Some(source)).unwrap();
        w.write(&FlowRecord::default(), None, Some(source)).unwrap();
        assert_eq!(
            String::from_utf8(w.finish().unwrap()).unwrap(),
            "{\"srcaddr\":\"10.0.0.1\",\"bytes\":1234,\"action\":null,\"_source\":\"a\\\"b.log\",\"_line\":3}\n\
             {\"_source\":\"a\\\"b.log\",\"_line\":3}\n"
        );
    }

    #[test]
    fn json_prints_unknown_fields_with_the_record_s_fields_only() {
        let mut r = FlowRecord::default();
        for (f, t) in [(Field::Srcaddr, "10.0.0.1"), (Field::Bytes, "1234")] {
            r.set_text(f, t).unwrap();
            r.fields.insert(f);
        }
        r.extra.push(crate::record::ExtraField {
            name: "future-field".into(),
            value: Some("x".into()),
        });
        let print = |columns: Vec<Field>| {
            let mut w = RecordWriter::new(Vec::new(), OutputFormat::Jsonl, columns, false);
            w.write(&r, None, None).unwrap();
            String::from_utf8(w.finish().unwrap()).unwrap()
        };
        assert_eq!(
            print(Vec::new()),
            "{\"srcaddr\":\"10.0.0.1\",\"bytes\":1234,\"future_field\":\"x\"}\n"
        );
        // As many chosen columns as the record has fields: still only the chosen ones.
        assert_eq!(
            print(vec![Field::Bytes, Field::Dstport]),
            "{\"bytes\":1234,\"dstport\":null}\n"
        );
    }

    #[test]
    fn records_formatted_on_many_threads_print_as_written_one_at_a_time() {
        let records: Vec<FlowRecord> = (0..5_000)
            .map(|i| {
                let mut r = record();
                r.set_text(Field::Bytes, &i.to_string()).unwrap();
                r
            })
            .collect();
        let line = b"2 - - 10.0.0.1".as_slice();
        for format in [
            OutputFormat::Jsonl,
            OutputFormat::Csv,
            OutputFormat::Table,
            OutputFormat::Raw,
        ] {
            let source = |i: usize| SourceRef {
                name: "s,3",
                line: i as u64,
            };
            let mut each = RecordWriter::new(Vec::new(), format, Vec::new(), true);
            each.write_each(records.len(), |i| (&records[i], Some(line), Some(source(i))))
                .unwrap();
            let mut one = RecordWriter::new(Vec::new(), format, Vec::new(), true);
            for (i, r) in records.iter().enumerate() {
                one.write(r, Some(line), Some(source(i))).unwrap();
            }
            assert_eq!(each.finish().unwrap(), one.finish().unwrap(), "{format:?}");
        }
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
