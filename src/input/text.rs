//! Flow-log text: splitting a byte stream into lines, and parsing one line under the current
//! format into a record, a header, or a rejection.

use std::io::{self, Read};
use std::sync::Arc;

use super::format::{known_names, starts_like_header, LogFormat};
use super::source::{RejectReason, RejectedLine, Rejection, SourceReport};
use super::RecordSink;
use crate::record::{check_text, ExtraField, Field, FlowRecord, FormatField, Provenance, TextSetter, ValueError};

/// One line as the splitter found it.
pub(crate) enum LineEvent<'a> {
    /// A line without its `\n` (a final line without newline included).
    Line(&'a [u8]),
    /// A line longer than the limit; its bytes were discarded.
    TooLong(u64),
    /// The bytes before a read error, which left this line unfinished.
    Truncated(&'a [u8]),
}

/// Bytes asked of the decoder per read. Large enough to amortise the call, small enough to stay
/// below the allocator's mmap threshold (a fresh mapping per source costs page faults).
const READ_CHUNK: usize = 64 * 1024;

/// Calls `f` for each line of `reader`. Memory stays within `max_line` plus one read chunk: a
/// longer line is reported as [`LineEvent::TooLong`] and skipped, however long it is. On a read
/// error, a started line is reported as [`LineEvent::Truncated`] and the error returned.
pub(crate) fn for_each_line(reader: &mut dyn Read, max_line: usize, f: impl FnMut(LineEvent<'_>)) -> io::Result<()> {
    // The thread's buffer of its previous source, zeroed once: a new zeroed 64 KiB per source
    // was a twentieth of building a folder of small S3 objects (25,920 files of 77 records).
    let mut buf = LINE_BUFFER.with_borrow_mut(std::mem::take);
    if buf.len() < READ_CHUNK {
        buf.resize(READ_CHUNK, 0);
    }
    let read = lines_in(reader, max_line, f, &mut buf);
    // A buffer a long line grew is not kept: memory stays bounded between sources.
    if buf.len() == READ_CHUNK {
        LINE_BUFFER.set(buf);
    }
    read
}

thread_local! {
    static LINE_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// [`for_each_line`] with `buf` (at least [`READ_CHUNK`] bytes) to read into.
fn lines_in(
    reader: &mut dyn Read,
    max_line: usize,
    mut f: impl FnMut(LineEvent<'_>),
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    let mut start = 0; // first byte of the current line
    let mut end = 0; // end of valid data
    let mut scanned = 0; // bytes of the current line known to hold no newline
    let mut discarding: Option<u64> = None; // length so far of an over-long line being skipped
    loop {
        // Hand out every complete line in the buffer.
        while let Some(pos) = memchr::memchr(b'\n', &buf[start + scanned..end]) {
            let nl = start + scanned + pos;
            let len = nl - start;
            // Over the limit whether the line arrived whole or across reads.
            match discarding.take() {
                Some(before) => f(LineEvent::TooLong(before + len as u64)),
                None if len > max_line => f(LineEvent::TooLong(len as u64)),
                None => f(LineEvent::Line(&buf[start..nl])),
            }
            start = nl + 1;
            scanned = 0;
        }
        scanned = end - start;
        if let Some(len) = discarding.as_mut() {
            *len += (end - start) as u64;
            start = end;
            scanned = 0;
        } else if end - start > max_line {
            discarding = Some((end - start) as u64);
            start = end;
            scanned = 0;
        }
        // Make room: move the partial line to the front, grow only while the line needs it.
        if start > 0 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        if buf.len() - end < READ_CHUNK / 2 {
            buf.resize(buf.len() + READ_CHUNK, 0);
        }
        let n = match reader.read(&mut buf[end..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                match discarding {
                    Some(len) => f(LineEvent::TooLong(len)),
                    None if end > start => f(LineEvent::Truncated(&buf[start..end])),
                    None => {}
                }
                return Err(e);
            }
        };
        if n == 0 {
            match discarding {
                Some(len) => f(LineEvent::TooLong(len)),
                None if end > start => f(LineEvent::Line(&buf[start..end])),
                None => {}
            }
            return Ok(());
        }
        end += n;
    }
}

/// How lines of a source start: plain records, or CloudWatch-export lines with a time stamp
/// before the record (format reference §7.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prefix {
    Undecided,
    None,
    /// Each line starts with a time stamp: RFC 3339, or epoch milliseconds (a file joining
    /// exports may hold both).
    Stamped,
}

/// Parses the lines of one source. Keeps the current format (re-armed by every header line) and
/// one record that is refilled for each line.
pub(crate) struct LineParser {
    header_format: Option<LogFormat>,
    fallback: LogFormat,
    prefix: Prefix,
    record: FlowRecord,
    /// What each column of the current format sets.
    setters: Vec<ColumnSetter>,
    fields: FieldSpans,
    max_line: usize,
    /// A UTF-8 byte-order mark preceded the source's first line: parsed without it, that line
    /// is handed on with it, so that its original line is the file's, byte for byte.
    bom_before_first_line: bool,
    /// The line of a header that could not be used, since the last usable one: the lines after
    /// it are in its order, not the current format's.
    unusable_header: Option<u64>,
}

/// Rejected lines kept per source report beyond the count (a file of garbage must not make the
/// report grow without bound; the count stays exact).
const MAX_REJECTS_KEPT: usize = 100_000;

impl LineParser {
    /// `fallback` is the format of lines before any header; `timestamp_prefix` allows the
    /// CloudWatch-export time stamp (decided on the first non-blank line).
    pub(crate) fn new(fallback: LogFormat, timestamp_prefix: bool, max_line: usize) -> LineParser {
        LineParser {
            header_format: None,
            setters: setters_of(&fallback),
            fallback,
            prefix: if timestamp_prefix {
                Prefix::Undecided
            } else {
                Prefix::None
            },
            record: FlowRecord::default(),
            fields: FieldSpans::default(),
            max_line,
            bom_before_first_line: false,
            unusable_header: None,
        }
    }

    /// Notes that a UTF-8 byte-order mark, which the caller skipped, preceded the first line.
    pub(crate) fn bom_skipped(&mut self) {
        self.bom_before_first_line = true;
    }

    /// The source is no text of lines after all (JSON): no line keeps the mark.
    pub(crate) fn forget_bom(&mut self) {
        self.bom_before_first_line = false;
    }

    pub(crate) fn saw_timestamp_prefix(&self) -> bool {
        self.prefix == Prefix::Stamped
    }

    /// Handles one event of the line splitter.
    pub(crate) fn event(&mut self, event: LineEvent<'_>, report: &mut SourceReport, sink: &mut dyn RecordSink) {
        // The mark belongs to the first line, whatever becomes of it.
        let bom = std::mem::take(&mut self.bom_before_first_line);
        match event {
            LineEvent::Line(raw) => {
                let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                if raw.iter().all(u8::is_ascii_whitespace) {
                    report.blank_lines += 1;
                    return;
                }
                let line = report.lines + report.blank_lines + 1;
                report.lines += 1;
                if bom {
                    let mut sink = WithBom { inner: sink };
                    self.line(line, raw, report, &mut sink);
                } else {
                    self.line(line, raw, report, sink);
                }
            }
            LineEvent::TooLong(len) => {
                let line = report.lines + report.blank_lines + 1;
                report.lines += 1;
                let limit = self.max_line;
                self.reject(line, RejectReason::TooLong { len, limit }, b"", report, sink);
            }
            LineEvent::Truncated(raw) => {
                let line = report.lines + report.blank_lines + 1;
                report.lines += 1;
                self.reject(line, RejectReason::Truncated, raw, report, sink);
            }
        }
    }

    /// Parses one non-blank line numbered `line` (for JSON sources, the event number, past any
    /// lines of text payloads before it).
    pub(crate) fn line(&mut self, line: u64, raw: &[u8], report: &mut SourceReport, sink: &mut dyn RecordSink) {
        // A zero-filled block starts or ends a line with NULs; inside a value, a NUL is refused
        // by the value's own check.
        if raw.first() == Some(&0) || raw.last() == Some(&0) {
            return self.reject(line, RejectReason::NulBytes, raw, report, sink);
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            return self.reject(line, RejectReason::NonUtf8, raw, report, sink);
        };
        // Files that each began with a byte-order mark, joined, hold one before each header.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let body = match self.strip_prefix(text) {
            Ok(body) => body,
            Err(reason) => return self.reject(line, reason, raw, report, sink),
        };
        self.fields.split(body.as_bytes());
        let first = self.fields.fields(body).next().unwrap_or("");
        let named_first = starts_like_header(first);
        // Only names flowdex knows: a header, whatever the current format makes of it.
        if named_first {
            if let Ok(format) = LogFormat::parse(body) {
                if format.known_fields().len() == format.len() {
                    return self.arm(format, line, raw, report, sink);
                }
            }
        }
        match self.fill_record(body) {
            Ok(()) => match self.unusable_header {
                Some(header) => self.reject(line, RejectReason::AfterUnusableHeader { header }, raw, report, sink),
                None => self.emit(line, raw, report, sink),
            },
            // Free text may start with a field's name (an instance tag `end`, a service
            // `region`), so only a line that is no record may be a header: one whose words are
            // mostly fields flowdex knows, or half of them and the first (a field a later AWS
            // version adds may be among them, first too). A damaged record is not one.
            Err(reason) if named_first || first.as_bytes().first().is_some_and(u8::is_ascii_lowercase) => {
                let (known, words) = known_names(body);
                if known * 2 + usize::from(named_first) <= words {
                    return self.reject(line, reason, raw, report, sink);
                }
                match LogFormat::parse(body) {
                    Ok(format) => self.arm(format, line, raw, report, sink),
                    Err(e) => {
                        self.unusable_header = Some(line);
                        self.reject(line, RejectReason::BadHeader { why: e.to_string() }, raw, report, sink)
                    }
                }
            }
            Err(reason) => self.reject(line, reason, raw, report, sink),
        }
    }

    /// Takes `format`, read from header line `line`, as the column map of the lines after it.
    fn arm(&mut self, format: LogFormat, line: u64, raw: &[u8], report: &mut SourceReport, sink: &mut dyn RecordSink) {
        report.headers += 1;
        sink.header(line, raw);
        self.unusable_header = None;
        self.setters = setters_of(&format);
        self.header_format = Some(format);
    }

    /// Hands the record just filled, from line `line`, to the sink.
    fn emit(&mut self, line: u64, raw: &[u8], report: &mut SourceReport, sink: &mut dyn RecordSink) {
        self.record.provenance = Provenance {
            source: report.id,
            line,
        };
        report.records += 1;
        let format = self.header_format.as_ref().unwrap_or(&self.fallback);
        sink.record(&self.record, raw, format);
    }

    /// The record after a CloudWatch export's time stamp, or the whole line when it has none;
    /// an error for a time stamp that is no time (a damaged line would otherwise read as a
    /// record with one field too many).
    fn strip_prefix<'t>(&mut self, text: &'t str) -> Result<&'t str, RejectReason> {
        if self.prefix == Prefix::Undecided {
            let format_len = self.header_format.as_ref().unwrap_or(&self.fallback).len();
            self.prefix = detect_prefix(text, format_len);
        }
        if self.prefix == Prefix::None {
            return Ok(text);
        }
        let (head, rest) = match text.split_once(' ') {
            Some(split) => split,
            None => return Ok(text),
        };
        // Decided for the source, not line by line: a damaged line a field short would
        // otherwise keep its stamp as its first value and read with every value shifted.
        if crate::time::parse_rfc3339(head).is_some() || is_epoch_millis(head) {
            Ok(rest)
        } else if looks_like_rfc3339(head) {
            Err(RejectReason::bad_value("time stamp", head, &ValueError::NotATime))
        } else {
            Ok(text)
        }
    }

    fn fill_record(&mut self, body: &str) -> Result<(), RejectReason> {
        let format = self.header_format.as_ref().unwrap_or(&self.fallback);
        let record = &mut self.record;
        if record.fields != format.known_fields() {
            // Values of fields the new format lacks must not linger from earlier lines.
            record.clear();
            record.fields = format.known_fields();
        }
        record.extra.clear();
        // A wrong count is the reason given even when a value is bad too: it usually means a
        // wrong format, and the values' errors would only follow from it.
        let found = self.fields.len();
        if found != format.len() {
            // Zeros written over part of a line are no field count to trust.
            if body.as_bytes().contains(&0) {
                return Err(RejectReason::NulBytes);
            }
            let hint = match &self.header_format {
                Some(_) => "",
                None if self.fallback == LogFormat::default_v2() => "; give the flow log's format with --log-format",
                None => " (the --log-format given)",
            };
            return Err(RejectReason::FieldCount {
                found,
                expected: format.len(),
                hint,
            });
        }
        for (setter, token) in self.setters.iter().zip(self.fields.fields(body)) {
            match setter {
                ColumnSetter::Field(field, set) => {
                    set(record, token).map_err(|e| RejectReason::bad_value(field.name(), token, &e))?
                }
                ColumnSetter::Extra(name) => {
                    // A field flowdex does not know is text, held to text's rule.
                    check_text(token).map_err(|e| RejectReason::bad_value(name, token, &e))?;
                    record.extra.push(ExtraField {
                        name: name.clone(),
                        value: (token != "-").then(|| token.to_owned()),
                    })
                }
            }
        }
        Ok(())
    }

    pub(crate) fn reject(
        &mut self,
        line: u64,
        reason: RejectReason,
        raw: &[u8],
        report: &mut SourceReport,
        sink: &mut dyn RecordSink,
    ) {
        report.rejected += 1;
        sink.reject(&Rejection {
            source: report.id,
            line,
            reason: &reason,
            raw,
        });
        if report.rejects.len() < MAX_REJECTS_KEPT {
            report.rejects.push(RejectedLine { line, reason });
        }
    }
}

/// Hands a line on with the byte-order mark that preceded it in the file.
struct WithBom<'s> {
    inner: &'s mut dyn RecordSink,
}

/// The UTF-8 byte-order mark some tools write before a file's text.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

impl RecordSink for WithBom<'_> {
    fn begin_source(&mut self, meta: &super::SourceMeta) -> u32 {
        self.inner.begin_source(meta)
    }
    fn record(&mut self, record: &FlowRecord, raw: &[u8], format: &LogFormat) {
        self.inner.record(record, &[UTF8_BOM, raw].concat(), format);
    }
    fn reject(&mut self, rejection: &Rejection<'_>) {
        let raw = [UTF8_BOM, rejection.raw].concat();
        self.inner.reject(&Rejection {
            raw: &raw,
            ..*rejection
        });
    }
    fn end_source(&mut self, report: SourceReport) {
        self.inner.end_source(report)
    }
}

/// What one column of a format sets in a record.
enum ColumnSetter {
    /// A field, with its setter picked once for the format ([`Field::text_setter`]).
    Field(Field, TextSetter),
    /// A field this reader does not know, kept as text under its name.
    Extra(Arc<str>),
}

fn setters_of(format: &LogFormat) -> Vec<ColumnSetter> {
    format
        .columns()
        .iter()
        .map(|c| match c {
            FormatField::Known(field) => ColumnSetter::Field(*field, field.text_setter()),
            FormatField::Unknown(name) => ColumnSetter::Extra(name.clone()),
        })
        .collect()
}

/// Where a line's fields are. Fields are separated by runs of spaces and tabs (AWS's own examples
/// hold double spaces). The separators are found 64 bytes at a time as a bit mask, and the fields'
/// edges read off the mask with bit arithmetic. A byte loop, or a bit scan from each field's end
/// to the next field's start, makes every field wait for the one before it; on 250-byte v5 lines
/// of 29 fields that chain was the largest single cost of parsing.
#[derive(Default)]
pub(crate) struct FieldSpans {
    starts: Vec<usize>,
    ends: Vec<usize>,
}

impl FieldSpans {
    /// Finds the fields of `line`.
    pub(crate) fn split(&mut self, line: &[u8]) {
        self.starts.clear();
        self.ends.clear();
        // Whether the byte before the current word is a separator; the line's start counts as one.
        let mut after_separator = 1u64;
        let mut chunks = line.chunks_exact(64);
        let mut base = 0;
        let mut word = |separators: u64| {
            let before = (separators << 1) | after_separator;
            push_bits(&mut self.starts, base, !separators & before);
            push_bits(&mut self.ends, base, separators & !before);
            after_separator = separators >> 63;
            base += 64;
        };
        for chunk in &mut chunks {
            word(separator_bits(chunk.try_into().expect("64-byte chunk")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // Bytes past the end count as separators, so a field running to the end ends there.
            let mut padded = [b' '; 64];
            padded[..rest.len()].copy_from_slice(rest);
            word(separator_bits(&padded));
        }
        if self.ends.len() < self.starts.len() {
            self.ends.push(line.len());
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.starts.len()
    }

    /// Start and end (exclusive) of each field of the line last split.
    pub(crate) fn spans(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.starts.iter().copied().zip(self.ends.iter().copied())
    }

    /// The fields of `line`, which must be the line last split.
    fn fields<'l>(&self, line: &'l str) -> impl Iterator<Item = &'l str> + use<'_, 'l> {
        // Both ends sit next to ASCII separators or the line's ends: char boundaries.
        self.starts
            .iter()
            .zip(&self.ends)
            .map(|(&start, &end)| &line[start..end])
    }
}

fn push_bits(positions: &mut Vec<usize>, base: usize, mut bits: u64) {
    while bits != 0 {
        positions.push(base + bits.trailing_zeros() as usize);
        bits &= bits - 1;
    }
}

/// The separator bits of 64 bytes, 16 at a time with vector compares (`wide` picks SSE2, NEON or
/// plain code per target, without `unsafe` here; LLVM's own vectorising of a byte loop into a
/// mask gave 4-byte steps slower than the loop).
fn separator_bits(chunk: &[u8; 64]) -> u64 {
    use wide::u8x16;
    let lane = |at: usize| {
        let bytes = u8x16::new(chunk[at..at + 16].try_into().expect("16 bytes"));
        let separators = bytes.simd_eq(u8x16::splat(b' ')) | bytes.simd_eq(u8x16::splat(b'\t'));
        u64::from(separators.to_bitmask())
    };
    lane(0) | lane(16) << 16 | lane(32) << 32 | lane(48) << 48
}

/// Whether `head` has the shape of an RFC 3339 time (`dddd-dd-ddT...`), valid or not.
fn looks_like_rfc3339(head: &str) -> bool {
    let b = head.as_bytes();
    b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T'
}

/// Whether a source's lines start with a CloudWatch time stamp, told by its first line, whose
/// format has `format_len` fields.
fn detect_prefix(text: &str, format_len: usize) -> Prefix {
    let (head, rest) = text.split_once(' ').unwrap_or((text, ""));
    // By shape: a damaged first stamp must not make every later line one field too long.
    // Thirteen digits may also be a value (a `start` in milliseconds, `bytes`) of a format that
    // begins with it: a stamp only when the line has a field more than the format.
    if looks_like_rfc3339(head) || (is_epoch_millis(head) && rest.split_ascii_whitespace().count() == format_len) {
        Prefix::Stamped
    } else {
        Prefix::None
    }
}

/// A CloudWatch time stamp in epoch milliseconds (13 digits: 2001 to 2286).
fn is_epoch_millis(head: &str) -> bool {
    head.len() == 13 && head.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> (Vec<String>, io::Result<()>) {
        let mut out = Vec::new();
        let mut r: &[u8] = input;
        let res = for_each_line(&mut r, max, |e| {
            out.push(match e {
                LineEvent::Line(l) => format!("L:{}", String::from_utf8_lossy(l)),
                LineEvent::TooLong(n) => format!("TOO LONG:{n}"),
                LineEvent::Truncated(l) => format!("T:{}", String::from_utf8_lossy(l)),
            })
        });
        (out, res)
    }

    /// The thread's line buffer goes from source to source: what one source left in it never
    /// shows in the next, after short lines, a line longer than a read chunk, or a final line
    /// without newline.
    #[test]
    fn sources_read_one_after_another_see_only_their_own_bytes() {
        let long = "x".repeat(3 * READ_CHUNK);
        let sources = [
            format!("first line\nsecond, longer line\n{long}\nlast"),
            "a\nb".to_string(),
            format!("{long}\n"),
            "one".to_string(),
            String::new(),
            "z\n".to_string(),
        ];
        for max in [READ_CHUNK, 4 * READ_CHUNK] {
            for source in &sources {
                let want: Vec<String> = source
                    .strip_suffix('\n')
                    .unwrap_or(source)
                    .split('\n')
                    .filter(|l| !source.is_empty() || !l.is_empty())
                    .map(|l| {
                        if l.len() > max {
                            format!("TOO LONG:{}", l.len())
                        } else {
                            format!("L:{l}")
                        }
                    })
                    .collect();
                let (got, res) = lines(source.as_bytes(), max);
                assert!(res.is_ok());
                assert_eq!(got, want, "max {max}");
            }
        }
    }

    #[test]
    fn splits_lines_with_and_without_final_newline() {
        assert_eq!(lines(b"a\nb\n", 100).0, ["L:a", "L:b"]);
        assert_eq!(lines(b"a\n\nb", 100).0, ["L:a", "L:", "L:b"]);
        assert!(lines(b"", 100).0.is_empty());
    }

    /// A billion `x`, a newline, then `after`: produced on the fly, never held.
    struct BillionCharLine {
        left: u64,
        tail: &'static [u8],
        largest_read: usize,
    }

    impl Read for BillionCharLine {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.largest_read = self.largest_read.max(buf.len());
            if self.left > 0 {
                let n = (buf.len() as u64).min(self.left) as usize;
                buf[..n].fill(b'x');
                self.left -= n as u64;
                return Ok(n);
            }
            let n = buf.len().min(self.tail.len());
            buf[..n].copy_from_slice(&self.tail[..n]);
            self.tail = &self.tail[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_billion_character_line_is_skipped_in_bounded_memory() {
        let mut input = BillionCharLine {
            left: 1_000_000_000,
            tail: b"\nafter\n",
            largest_read: 0,
        };
        let mut events = Vec::new();
        for_each_line(&mut input, 1 << 20, |e| {
            events.push(match e {
                LineEvent::Line(l) => format!("L:{}", String::from_utf8_lossy(l)),
                LineEvent::TooLong(n) => format!("TOO LONG:{n}"),
                LineEvent::Truncated(_) => "T".into(),
            })
        })
        .unwrap();
        assert_eq!(events, ["TOO LONG:1000000000", "L:after"]);
        // The buffer never grew past the line limit plus a few read chunks.
        assert!(
            input.largest_read <= (1 << 20) + 4 * READ_CHUNK,
            "{}",
            input.largest_read
        );
    }

    #[test]
    fn over_long_lines_are_skipped_not_buffered() {
        let mut input = b"ok\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 3 * READ_CHUNK + 7));
        input.extend(b"\nafter\n");
        let (out, res) = lines(&input, 1000);
        assert!(res.is_ok());
        assert_eq!(
            out,
            [
                "L:ok".to_string(),
                format!("TOO LONG:{}", 3 * READ_CHUNK + 7),
                "L:after".into()
            ]
        );
    }

    fn tokens(line: &str) -> std::vec::IntoIter<&str> {
        let mut spans = FieldSpans::default();
        spans.split(line.as_bytes());
        spans.fields(line).collect::<Vec<_>>().into_iter()
    }

    #[test]
    fn tokens_split_on_runs_of_spaces_and_tabs() {
        let t: Vec<&str> = tokens("  a  bb\tc \t d ").collect();
        assert_eq!(t, ["a", "bb", "c", "d"]);
        assert_eq!(tokens("").count(), 0);
        assert_eq!(tokens("   ").count(), 0);
        assert_eq!(tokens("x").collect::<Vec<_>>(), ["x"]);
        assert_eq!(tokens("subnet-0aб1 z").collect::<Vec<_>>(), ["subnet-0aб1", "z"]);
        assert_eq!(
            tokens("12345678 1234567 123456789").collect::<Vec<_>>(),
            ["12345678", "1234567", "123456789"]
        );
        assert_eq!(
            tokens("\u{80}\u{a0} \u{2020}").collect::<Vec<_>>(),
            ["\u{80}\u{a0}", "\u{2020}"]
        );
        for n in 0..200 {
            let line: String = (0..n)
                .map(|i| if i % 3 == 0 || i % 7 == 0 { ' ' } else { 'x' })
                .collect();
            let want: Vec<&str> = line.split(' ').filter(|t| !t.is_empty()).collect();
            assert_eq!(tokens(&line).collect::<Vec<_>>(), want, "{line:?}");
        }
    }

    #[test]
    fn prefix_detection() {
        assert_eq!(
            detect_prefix("2018-09-22T20:28:14.000Z 2 633112549318", 2),
            Prefix::Stamped
        );
        assert_eq!(detect_prefix("1537648094000 2 633112549318", 2), Prefix::Stamped);
        assert_eq!(detect_prefix("1537648094000 2 633112549318", 3), Prefix::None);
        assert_eq!(detect_prefix("2 633112549318 eni-1", 2), Prefix::None);
    }

    /// A file joining exports of both stamp forms: every line's stamp is taken off, whichever
    /// form the first line had.
    #[test]
    fn a_stamped_file_takes_either_form_on_each_line() {
        let mut parser = LineParser::new(LogFormat::default_v2(), true, 1 << 20);
        let record = "2 633112549318 eni-1 10.0.0.1 10.0.0.2 443 40000 6 1 40 1537648094 1537648154 ACCEPT OK";
        for stamp in ["2018-09-22T20:28:14.000Z", "1537648094000", "2018-09-22T20:28:14Z"] {
            assert_eq!(parser.strip_prefix(&format!("{stamp} {record}")), Ok(record), "{stamp}");
        }
        assert!(parser.strip_prefix(&format!("2018-09-32T20:28:14Z {record}")).is_err());
        // A damaged line a field short still loses its stamp, and is then rejected for its
        // field count, rather than read with its stamp as its first value.
        let short = record.rsplit_once(' ').unwrap().0;
        assert_eq!(parser.strip_prefix(&format!("1537648094000 {short}")), Ok(short));
        // A format that begins with a time in milliseconds: its first line has no field to
        // spare, so the source has no stamps.
        let format = LogFormat::parse(
            "start version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes end action log-status",
        )
        .unwrap();
        let mut parser = LineParser::new(format, true, 1 << 20);
        let line = "1537648094000 2 633112549318 eni-1 10.0.0.1 10.0.0.2 443 40000 6 1 40 1537648154 ACCEPT OK";
        assert_eq!(parser.strip_prefix(line), Ok(line));
        assert_eq!(parser.strip_prefix(line), Ok(line));
    }
}
