//! Input readers: every form in which a responder receives flow logs, turned into records with
//! provenance. Files, S3 folder trees, tar/zip evidence bundles, gzip at any layer, S3 text with
//! headers, CloudWatch exports and JSON, Firehose objects. The form is told from the content.
//!
//! The reader is streaming: records are handed to a [`RecordSink`] one at a time, from a record
//! buffer the reader reuses, so memory does not grow with input size. Every non-blank line ends as
//! exactly one of header, record or rejected, counted in the source's [`SourceReport`].

mod container;
mod format;
mod json;
mod s3key;
mod source;
mod text;
mod walk;

pub use container::{Survey, UniqueNames};
pub use format::{FormatError, LogFormat, DEFAULT_TGW, DEFAULT_V2};
pub use s3key::S3Key;
pub use source::{hex, Form, RejectReason, RejectedLine, Rejection, SourceError, SourceMeta, SourceReport};
pub use text::UTF8_BOM;
pub use walk::{discover, discover_outside, printable, sort_for_build, InputFile};

pub(crate) use text::FieldSpans;

use crate::record::FlowRecord;

/// Limits that keep hostile or broken input from exhausting memory or time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest line kept; a longer one is rejected without being buffered.
    pub max_line_bytes: usize,
    /// Largest ratio of decompressed to compressed bytes, per gzip layer or zip entry, once
    /// `ratio_grace_bytes` have come out. Flow logs compress about 5-15x; bombs reach 1000x.
    pub max_ratio: u64,
    /// Output a decompressor may produce before the ratio is checked.
    pub ratio_grace_bytes: u64,
    /// Most decompressed bytes of one source.
    pub max_source_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_line_bytes: 1 << 20,
            max_ratio: 200,
            ratio_grace_bytes: 64 << 20,
            max_source_bytes: 64 << 30,
        }
    }
}

/// How to read inputs.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// The format of headerless sources (CloudWatch, Firehose, bare lines). `None` means AWS's
    /// version 2 default format. A header line in a source always wins.
    pub log_format: Option<LogFormat>,
    pub limits: Limits,
}

/// Receives what the readers find. Called from one thread per input file.
pub trait RecordSink {
    /// A source starts; the id returned is what its records carry in `provenance.source`.
    fn begin_source(&mut self, meta: &SourceMeta) -> u32;
    /// A record, with the bytes of its line (without the line's `\n` or `\r\n`; for JSON sources,
    /// the event's message) and the format the line was read with.
    fn record(&mut self, record: &FlowRecord, raw: &[u8], format: &LogFormat);
    /// A rejected line. The report lists it too; this is for streaming consumers.
    fn reject(&mut self, _rejection: &Rejection<'_>) {}
    /// A header line (field names) of a text source, with its bytes, taken as the format of
    /// the lines after it. The report counts it; this is for consumers that show lines.
    fn header(&mut self, _line: u64, _raw: &[u8]) {}
    /// A source ended (completely or not: see `report.error`).
    fn end_source(&mut self, report: SourceReport);
}

/// Reads one input file (a flow-log file, or a bundle of many sources) into `sink`. Never fails:
/// what cannot be read is reported in the sources' reports.
pub fn read_input(file: &InputFile, options: &ReadOptions, sink: &mut dyn RecordSink) {
    container::read_input(file, options, sink)
}

/// Surveys `file` before a build reads it: its size, its bytes' SHA-256, and about how many
/// bytes reading it decodes (see [`Survey`]).
pub fn survey(file: &InputFile) -> Survey {
    container::survey(file)
}

/// SHA-256 of a file that is a single source (not a bundle), as its report will give it; `None`
/// for bundles and unreadable files.
pub fn single_source_hash(file: &InputFile) -> Option<String> {
    container::single_source_hash(file)
}

/// Totals over many source reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub sources: u64,
    pub failed_sources: u64,
    pub lines: u64,
    pub blank_lines: u64,
    pub headers: u64,
    pub records: u64,
    pub rejected: u64,
}

impl Totals {
    pub fn add(&mut self, r: &SourceReport) {
        self.sources += 1;
        self.failed_sources += u64::from(r.error.is_some());
        self.lines += r.lines;
        self.blank_lines += r.blank_lines;
        self.headers += r.headers;
        self.records += r.records;
        self.rejected += r.rejected;
    }
}
