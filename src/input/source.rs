//! What the readers say about each source: its identity, its counts, its rejected lines, and the
//! error that stopped it, if any.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::s3key::S3Key;
use crate::record::ValueError;

/// The identity of one source: a file, or an entry inside a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceMeta {
    /// The path as given (joined with the walked folder path), and for a bundle entry the bundle
    /// path, `!`, and the entry name. Printed as `_source`.
    pub name: String,
    /// The file on disk (the bundle, for a bundle entry).
    pub path: PathBuf,
    /// The entry name inside the bundle, for a bundle entry.
    pub entry: Option<String>,
    /// Account, region, flow-log id and time stamp read from the S3 object key.
    pub s3: S3Key,
}

/// How a source's content was delivered, as detected from its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Form {
    /// Nothing was read (the source failed before its content could be told).
    Unknown,
    /// Flow-log text with a header line (S3 delivery).
    S3Text,
    /// Flow-log lines without a header (the format came from `--log-format` or the v2 default).
    BareLines,
    /// CloudWatch "export to S3": each line a timestamp, then the record.
    CloudwatchExport,
    /// JSON holding CloudWatch log events or Firehose `{"message": ...}` records.
    Json,
}

impl Form {
    pub fn as_str(self) -> &'static str {
        match self {
            Form::Unknown => "unknown",
            Form::S3Text => "s3-text",
            Form::BareLines => "bare-lines",
            Form::CloudwatchExport => "cloudwatch-export",
            Form::Json => "json",
        }
    }
}

/// Why one line was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RejectReason {
    #[error("wrong field count: {found} field{}, the format has {expected}{hint}", if *found == 1 { "" } else { "s" })]
    FieldCount {
        found: usize,
        expected: usize,
        #[serde(skip)]
        hint: &'static str,
    },
    #[error("bad {field}: `{text}` is {why}")]
    BadValue { field: String, text: String, why: String },
    #[error("not UTF-8 text")]
    NonUtf8,
    #[error("NUL bytes, not text: a zero-filled (damaged or cut short) part of the file")]
    NulBytes,
    #[error("{why}")]
    BadEvent { why: String },
    #[error("line of {len} bytes is longer than the limit of {limit} bytes")]
    TooLong { len: u64, limit: usize },
    #[error("the source broke off in the middle of this line")]
    Truncated,
    #[error("header line is not a usable format: {why}")]
    BadHeader { why: String },
    #[error("follows line {header}, a header that could not be used: the order of its fields is unknown")]
    AfterUnusableHeader { header: u64 },
}

impl RejectReason {
    /// A value of the field named `field` that `err` refused, shown cut short and escaped.
    pub(crate) fn bad_value(field: &str, text: &str, err: &ValueError) -> RejectReason {
        const SHOWN: usize = 64;
        let (shown, cut) = match text.char_indices().nth(SHOWN) {
            Some((cut, _)) => (&text[..cut], "..."),
            None => (text, ""),
        };
        // Control characters written as escapes: a stray `\r` printed raw made the reason
        // read "`OK` is not one of OK NODATA SKIPDATA".
        let text = format!("{}{cut}", shown.escape_debug());
        RejectReason::BadValue {
            field: field.to_owned(),
            text,
            why: err.to_string(),
        }
    }
}

/// A rejected line, as kept in the source report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RejectedLine {
    pub line: u64,
    pub reason: RejectReason,
}

/// A rejected line, as handed to a [`RecordSink`](super::RecordSink), with its bytes.
#[derive(Debug)]
pub struct Rejection<'a> {
    pub source: u32,
    pub line: u64,
    pub reason: &'a RejectReason,
    pub raw: &'a [u8],
}

/// ` after line N`, for a failure after some line was read.
fn after(line: u64) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" after line {line}")
    }
}

/// What stopped a source before its end, or kept it from being read at all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SourceError {
    #[error("cannot read: {message}")]
    Io { message: String },
    #[error("{what} is corrupt or truncated{}: {message}", after(*after_line))]
    Corrupt {
        what: &'static str,
        after_line: u64,
        message: String,
    },
    /// A stream or entry whose checksum, at its end, failed or could not be read: its records
    /// were read, and any of them may hold a corrupt value; nothing after the check was read.
    #[error(
        "{what} fails the check at the end of a gzip member or zip entry{}: {message}; the records \
         read before it may hold corrupt values, and nothing after it was read (`gzip -t` or \
         `unzip -t` tells whether the file is damaged)",
        after_line.filter(|&line| line > 0).map(|line| format!(" (after line {line})")).unwrap_or_default()
    )]
    Unverified {
        what: &'static str,
        after_line: Option<u64>,
        message: String,
    },
    /// Data a bundle holds past where flowdex reads it.
    #[error("the file holds {what}: not read; extract it and give each part")]
    Unread { what: &'static str },
    #[error(
        "stopped{}: it expands beyond {limit} (a decompression bomb?); raise --max-ratio or \
         --max-source-bytes if the source is genuine",
        after(*after_line)
    )]
    Bomb { after_line: u64, limit: String },
    #[error("entry name `{name}` {why}; not read")]
    UnsafeEntry { name: String, why: &'static str },
    /// A tar entry whose header states more bytes than a source may have.
    #[error(
        "its header states {size} bytes, more than a source may have ({limit}); not read: raise \
         --max-source-bytes if the entry is genuine"
    )]
    TooLarge { size: u64, limit: u64 },
    /// A bundle whose stream stopped inside an entry (its own failure says why): a stream is
    /// read in order, so the entries after it cannot be reached.
    #[error("its stream stopped inside the entry `{entry}`; any entries after it were not read")]
    Stopped { entry: String },
    #[error("{what} is not supported yet{advice}")]
    Unsupported {
        what: &'static str,
        #[serde(skip)]
        advice: &'static str,
    },
    #[error("the JSON is cut short: it ends inside a value, at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("binary data, not flow-log text, gzip, tar or zip")]
    Binary,
    #[error("UTF-16 text; flowdex reads UTF-8: convert it first (iconv -f UTF-16 -t UTF-8)")]
    Utf16,
    #[error("not a regular file (a FIFO, socket, device or folder); not read")]
    NotAFile,
    #[error("the folder holds no files to read (a wrong path, or a sync that has not run?)")]
    NoFiles,
    #[error(
        "the file changed while it was read (its size or time differs from when it was opened); \
         its records and hash may mix two versions: read it again when nothing writes to it"
    )]
    ChangedWhileRead,
}

/// Everything known about one source after reading it. The counts reconcile:
/// `lines == headers + records + rejected`, where `lines` counts non-blank lines (for JSON
/// sources: log events) and blank lines are counted apart in `blank_lines`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceReport {
    pub meta: SourceMeta,
    /// The id the sink gave the source (what its records carry).
    pub id: u32,
    /// Bytes read from the file or bundle entry (compressed, as stored).
    pub size: u64,
    /// SHA-256 of those bytes, hex. Empty when the source could not be opened.
    pub sha256: String,
    pub form: Form,
    /// Whether the content was gzip-compressed (any layer).
    pub gzip: bool,
    pub lines: u64,
    pub blank_lines: u64,
    pub headers: u64,
    pub records: u64,
    pub rejected: u64,
    pub rejects: Vec<RejectedLine>,
    pub error: Option<SourceError>,
}

impl SourceReport {
    /// What a responder must hear of a source read without error that yields nothing they may
    /// expect: JSON holding no log event, from another tool or of a shape flowdex does not
    /// know. Not a failure: an export folder may hold such files beside the logs.
    pub fn notice(&self) -> Option<&'static str> {
        (self.form == Form::Json && self.lines == 0 && self.blank_lines == 0 && self.error.is_none()).then_some(
            "JSON holding no log event (events[].message, logEvents[], records[].data or message): \
             no flow-log record was read from it",
        )
    }

    pub(crate) fn new(meta: SourceMeta, id: u32) -> SourceReport {
        SourceReport {
            meta,
            id,
            size: 0,
            sha256: String::new(),
            form: Form::Unknown,
            gzip: false,
            lines: 0,
            blank_lines: 0,
            headers: 0,
            records: 0,
            rejected: 0,
            rejects: Vec::new(),
            error: None,
        }
    }

    /// Whether anything in the source was lost: a rejected line or an error.
    pub fn has_problems(&self) -> bool {
        self.rejected > 0 || self.error.is_some()
    }
}

impl fmt::Display for SourceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} lines, {} headers, {} records, {} rejected",
            self.meta.name, self.lines, self.headers, self.records, self.rejected
        )?;
        if let Some(e) = &self.error {
            write!(f, "; {e}")?;
        }
        Ok(())
    }
}

/// A digest in lower-case hex, as source hashes are written. Per byte from a table: a
/// `format!` per byte was a fortieth of reading a folder of small S3 objects.
pub fn hex(digest: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(digest.len() * 2);
    for &b in digest {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    text
}
