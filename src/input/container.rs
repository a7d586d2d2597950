//! Containers and layers: telling gzip, tar, zip, Parquet, JSON and text apart by their bytes,
//! decoding gzip (every member), walking bundles as streams, hashing each source's bytes as read,
//! and stopping decompression bombs. Hands the text to `text` and `json`.

use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;
use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::format::LogFormat;
use super::json::{walk_values, JsonItem, WalkError};
use super::s3key::S3Key;
use super::source::{hex, Form, RejectReason, SourceError, SourceMeta, SourceReport};
use super::text::{for_each_line, LineParser, UTF8_BOM};
use super::walk::AWS_WRITE_TEST_OBJECT;
use super::{InputFile, Limits, ReadOptions, RecordSink};

/// What the first bytes of a stream say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Gzip,
    Zip,
    Tar,
    Parquet,
    Binary,
    Utf16,
    Text,
}

const SNIFF_BYTES: usize = 512;

/// Whether a file's first bytes are binary data, not text: more than a sixteenth of them are
/// bytes text never holds (NUL and the control characters but tab, line breaks, form feed and
/// escape). A run of NULs that starts or ends them is left out: a zero-filled block (a copy
/// cut short, a crash) in a text file; a few stray control bytes cost only their lines.
fn looks_binary(head: &[u8]) -> bool {
    let start = head.iter().position(|&b| b != 0).unwrap_or(head.len());
    let end = head.iter().rposition(|&b| b != 0).map_or(start, |p| p + 1);
    let middle = &head[start..end];
    let controls = middle
        .iter()
        .filter(|&&b| matches!(b, 0..=8 | 0x0e..=0x1a | 0x1c..=0x1f | 0x7f))
        .count();
    controls * 16 > middle.len()
}

/// Whether `head` starts a UTF-16 text (Windows PowerShell writes `aws logs` output so): a
/// byte-order mark, or ASCII with every other byte NUL.
fn is_utf16(head: &[u8]) -> bool {
    if head.starts_with(&[0xff, 0xfe]) || head.starts_with(&[0xfe, 0xff]) {
        return true;
    }
    let pairs = &head[..head.len() & !1];
    pairs.len() >= 8
        && (pairs.chunks(2).all(|p| p[1] == 0 && p[0] != 0) || pairs.chunks(2).all(|p| p[0] == 0 && p[1] != 0))
}

/// The first bytes of a stream, taken to tell its kind, and the error that cut them short if
/// one did. Read again in front of the stream, they give the bytes, then the error: a source
/// that breaks within its first bytes keeps the lines before the break, as one that breaks
/// later does.
struct Head {
    bytes: Cursor<Vec<u8>>,
    error: Option<io::Error>,
}

impl Read for Head {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.bytes.read(buf)? {
            0 if !buf.is_empty() => self.error.take().map_or(Ok(0), Err),
            n => Ok(n),
        }
    }
}

/// Whether `head` starts with a tar header of the old (v7) format, which has no magic: a name,
/// and a header checksum that holds (the sum of the header's bytes, the checksum field counted
/// as spaces, in octal).
fn is_v7_tar_header(head: &[u8]) -> bool {
    let Some(header) = head.get(..512) else { return false };
    let field = &header[148..156];
    let stated = field
        .iter()
        .take_while(|b| (b'0'..=b'7').contains(*b) || **b == b' ')
        .filter(|b| **b != b' ')
        .try_fold(0u32, |n, d| n.checked_mul(8)?.checked_add(u32::from(d - b'0')));
    let Some(stated) = stated else {
        return false;
    };
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum::<u32>() - field.iter().map(|&b| u32::from(b)).sum::<u32>()
        + 8 * u32::from(b' ');
    header[0] != 0 && field.iter().any(u8::is_ascii_digit) && stated == sum
}

/// Reads up to [`SNIFF_BYTES`] and classifies them. The bytes are returned so the caller can put
/// them back in front of the stream.
fn sniff(r: &mut dyn Read) -> (Kind, Head) {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    let error = r.take(SNIFF_BYTES as u64).read_to_end(&mut head).err();
    let kind = if head.starts_with(&[0x1f, 0x8b]) {
        Kind::Gzip
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Kind::Zip
    } else if head.len() >= 262 && &head[257..262] == b"ustar" || is_v7_tar_header(&head) {
        Kind::Tar
    } else if head.starts_with(b"PAR1") {
        Kind::Parquet
    } else if is_utf16(&head) {
        Kind::Utf16
    } else if head.starts_with(b"%PDF-") || looks_binary(&head) {
        // A PDF starts as text; its first bytes do not tell.
        Kind::Binary
    } else {
        Kind::Text
    };
    let head = Head {
        bytes: Cursor::new(head),
        error,
    };
    (kind, head)
}

/// Reads one input file: a single source, or every entry of a bundle.
pub(crate) fn read_input(file: &InputFile, options: &ReadOptions, sink: &mut dyn RecordSink) {
    let meta = SourceMeta {
        name: file.name.clone(),
        path: file.path.clone(),
        entry: None,
        s3: S3Key::from_key(&file.name),
    };
    if let Some(error) = &file.error {
        return report_failure(meta, error.clone(), sink);
    }
    let (opened, stamp) = match open_regular(&file.path) {
        Ok(opened) => opened,
        Err(error) => return report_failure(meta, error, sink),
    };
    // One pass over the file: the bytes read to tell a bundle from a single source are the
    // first bytes of that source (hashed, decoded once).
    let mut hashing = Hashing {
        inner: &opened,
        hasher: Sha256::new(),
        bytes: 0,
    };
    let (kind, head) = sniff(&mut hashing);
    match kind {
        Kind::Zip => read_zip(file, options, sink),
        Kind::Tar => {
            let mut stream = head.chain(&mut hashing);
            match read_tar(&mut stream, file, options, sink) {
                Err(e) => report_failure(meta, SourceError::Io { message: e.to_string() }, sink),
                Ok(TarEnd::Broken) => {}
                // What follows the end blocks must be zeros (a tape block's padding), as in a
                // .tar.gz: anything else is data that was not read.
                Ok(TarEnd::Clean) => {
                    let mut after_tar = ZerosOnly(true);
                    match io::copy(&mut stream, &mut after_tar) {
                        Ok(_) if after_tar.0 => {}
                        Ok(_) => report_failure(meta, SourceError::Unread { what: AFTER_TAR }, sink),
                        Err(e) => report_failure(meta, SourceError::Io { message: e.to_string() }, sink),
                    }
                }
            }
        }
        Kind::Gzip => {
            let input = Rc::new(Cell::new(0));
            let raw = Counting {
                inner: head.chain(&mut hashing),
                count: input.clone(),
            };
            let mut decoded = Expansion::new(gzip_decoder(raw), input, &options.limits);
            match sniff(&mut decoded) {
                (Kind::Tar, inner) => {
                    // A bundle is no source: each entry is held to a source's size by its
                    // header, and the stream to the ratio alone.
                    decoded.limits.max_source_bytes = u64::MAX;
                    let mut stream = inner.chain(decoded);
                    match read_tar(&mut stream, file, options, sink) {
                        Err(e) => report_failure(meta, SourceError::Io { message: e.to_string() }, sink),
                        // Where the tar broke was reported; nothing after it is read.
                        Ok(TarEnd::Broken) => {}
                        // The gzip trailer follows the tar's end blocks: read to it, so that
                        // its CRC-32 vouches for the entries read. A flipped bit in deflate data
                        // can give a wrong value rather than an error, and only the check finds
                        // it. What follows the tar's end must be zeros (its own padding), and
                        // what follows the last gzip member too (a tape block's padding):
                        // anything else is data that was not read.
                        Ok(TarEnd::Clean) => {
                            let mut after_tar = ZerosOnly(true);
                            let unread = match io::copy(&mut stream, &mut after_tar) {
                                Ok(_) if after_tar.0 => None,
                                Ok(_) => Some(AFTER_TAR),
                                Err(e) if e.to_string() == NOT_A_GZIP_HEADER => {
                                    let buffered = unread_input_is_zeros(stream.get_ref().1);
                                    drop(stream);
                                    let mut rest = ZerosOnly(true);
                                    let _ = io::copy(&mut hashing, &mut rest);
                                    (!(buffered && rest.0)).then_some("bytes after the gzip stream that are not gzip")
                                }
                                Err(e) => {
                                    let error = SourceError::Unverified {
                                        what: "the bundle's gzip stream",
                                        after_line: None,
                                        message: e.to_string(),
                                    };
                                    return report_failure(meta, error, sink);
                                }
                            };
                            if let Some(what) = unread {
                                report_failure(meta, SourceError::Unread { what }, sink);
                            }
                        }
                    }
                }
                (kind, inner) => {
                    let mut state = SourceState::begin(meta, options, sink);
                    state.stamp = Some((&opened, stamp));
                    state.report.gzip = true;
                    state.depth = 1;
                    state.decoding = Some("gzip stream");
                    let result = state.read_kind(kind, inner, &mut decoded);
                    // Bytes after a gzip member that are no header end the stream cleanly
                    // when they are all zeros (a tape or `dd` block's padding, which gzip
                    // ignores): the member before them passed its check. The zeros left in
                    // the decoder's buffer are looked at here, the rest of the file as it is
                    // hashed.
                    let padded = matches!(&result, Err(SourceError::Corrupt { message, .. }) if message == NOT_A_GZIP_HEADER)
                        && state.report.lines + state.report.blank_lines > 0
                        && unread_input_is_zeros(&decoded);
                    drop(decoded);
                    state.finish(result, hashing, padded);
                }
            }
        }
        _ => {
            let mut state = SourceState::begin(meta, options, sink);
            state.stamp = Some((&opened, stamp));
            let result = state.read_kind(kind, head, &mut hashing);
            state.finish(result, hashing, false);
        }
    }
}

/// What planning a build needs of an input file before reading it, from one read of its bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Survey {
    /// Bytes in the file.
    pub size: u64,
    /// SHA-256 of the file's bytes: the hash of the source it is, when it is one source, and a
    /// name for a bundle's exact bytes. `None` when the file cannot be read.
    pub sha256: Option<String>,
    /// About how many bytes reading it decodes: a gzip file's trailer states its decompressed
    /// size (modulo 2³², of the last member); other files count as their size.
    pub decoded_size: u64,
}

/// The most a deflate stream expands (258-byte matches of one bit each).
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Surveys `file` (see [`Survey`]); an unreadable file gives the default, empty survey.
pub(crate) fn survey(file: &InputFile) -> Survey {
    if file.error.is_some() {
        return Survey::default();
    }
    let Ok((mut opened, _)) = open_regular(&file.path) else {
        return Survey::default();
    };
    let mut seen = SurveyWriter {
        hasher: Sha256::new(),
        size: 0,
        magic: Vec::with_capacity(2),
        trailer: [0; 4],
    };
    if io::copy(&mut opened, &mut seen).is_err() {
        return Survey::default();
    }
    let size = seen.size;
    let decoded_size = if size >= 18 && seen.magic == [0x1f, 0x8b] {
        let stated = u64::from(u32::from_le_bytes(seen.trailer));
        // Concatenated members or more than 4 GiB: the trailer understates; a file cut short
        // ends in any 4 bytes, often beyond what deflate can expand to (1,032x), and a group
        // planned on it would close after one file. Flow logs compress about 5-15x.
        if stated < size || stated > size.saturating_mul(MAX_DEFLATE_RATIO) {
            size * 10
        } else {
            stated
        }
    } else {
        size
    };
    Survey {
        size,
        sha256: Some(hex(&seen.hasher.finalize())),
        decoded_size,
    }
}

/// Takes a file's bytes for [`survey`]: hashes them, and keeps the first two and the last four.
struct SurveyWriter {
    hasher: Sha256,
    size: u64,
    magic: Vec<u8>,
    trailer: [u8; 4],
}

impl io::Write for SurveyWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.size += buf.len() as u64;
        let wanted = 2 - self.magic.len();
        self.magic.extend_from_slice(&buf[..wanted.min(buf.len())]);
        // The last four bytes so far: those of `buf`, after as many earlier ones as it lacks.
        let kept = 4 - buf.len().min(4);
        self.trailer.copy_within(4 - kept.., 0);
        self.trailer[kept..].copy_from_slice(&buf[buf.len() - (4 - kept)..]);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// SHA-256 of a file that is one source (not a bundle): the hash its source report will carry.
/// `None` for bundles and unreadable files.
pub(crate) fn single_source_hash(file: &InputFile) -> Option<String> {
    if is_bundle(file).unwrap_or(true) {
        return None;
    }
    survey(file).sha256
}

/// A decoder of every member of a gzip stream, through std's buffer: unlike
/// `flate2::read::MultiGzDecoder`'s, it is not zeroed when the reader under it fills a buffer
/// without reading it (`read_buf`: a file, or the sniffed head chained to its file, as when
/// telling a tar.gz from a .log.gz). Readers of flowdex's own (counting, hashing) still get it
/// zeroed once per stream.
fn gzip_decoder<R: Read>(raw: R) -> flate2::bufread::MultiGzDecoder<io::BufReader<R>> {
    flate2::bufread::MultiGzDecoder::new(io::BufReader::with_capacity(GZIP_BUFFER, raw))
}

/// Bytes of compressed input read at a time.
const GZIP_BUFFER: usize = 32 * 1024;

/// The messages of the flate2 and zip errors that flowdex tells apart: the crates give them no
/// kind of their own. The reader tests break on them (a checksum failure, gzip padding), so an
/// upgrade that rewords one is caught.
const GZIP_CHECKSUM_FAILED: &str = "corrupt gzip stream does not have a matching checksum";
const NOT_A_GZIP_HEADER: &str = "invalid gzip header";
const ZIP_CHECKSUM_FAILED: &str = "Invalid checksum";

/// Whether the compressed bytes a gzip decoder has read but not used are all zeros.
fn unread_input_is_zeros<R>(decoded: &Expansion<flate2::bufread::MultiGzDecoder<io::BufReader<R>>>) -> bool {
    decoded.inner.get_ref().buffer().iter().all(|&b| b == 0)
}

/// Whether a file is a bundle (zip, tar, or tar in gzip), by its first bytes; an error for an
/// unreadable file or one that is not a regular file.
fn is_bundle(file: &InputFile) -> io::Result<bool> {
    if let Some(error) = &file.error {
        return Err(io::Error::other(error.to_string()));
    }
    let (mut f, _) = open_regular(&file.path).map_err(|e| io::Error::other(e.to_string()))?;
    let (kind, head) = sniff(&mut f);
    Ok(match kind {
        Kind::Zip | Kind::Tar => true,
        Kind::Gzip => {
            let mut decoder = gzip_decoder(head.chain(f));
            // A corrupt stream is not a bundle; reading it as a source reports the damage.
            matches!(sniff(&mut decoder), (Kind::Tar, Head { error: None, .. }))
        }
        _ if head.error.is_some() => return Err(head.error.expect("just checked")),
        _ => false,
    })
}

fn report_failure(meta: SourceMeta, error: SourceError, sink: &mut dyn RecordSink) {
    let id = sink.begin_source(&meta);
    let mut report = SourceReport::new(meta, id);
    report.error = Some(error);
    sink.end_source(report);
}

/// Why an entry name must not be used: it would leave the bundle if extracted.
fn unsafe_entry_name(name: &str) -> Option<&'static str> {
    let b = name.as_bytes();
    if name.starts_with('/') || name.starts_with('\\') || (b.len() >= 2 && b[1] == b':') {
        Some("is an absolute path")
    } else if name.split(['/', '\\']).any(|c| c == "..") {
        Some("climbs out of the bundle with `..`")
    } else {
        None
    }
}

/// Whether a bundle entry is the object AWS writes to test an export destination (a tarred
/// `aws s3 sync` copy holds it as the folder does, where the walk leaves it out).
fn is_write_test_object(entry: &str) -> bool {
    entry.rsplit(['/', '\\']).next() == Some(AWS_WRITE_TEST_OBJECT)
}

/// A bundle as a source of its own: what its failures are recorded under.
fn bundle_meta(bundle: &InputFile) -> SourceMeta {
    SourceMeta {
        name: bundle.name.clone(),
        path: bundle.path.clone(),
        entry: None,
        s3: S3Key::default(),
    }
}

fn entry_meta(bundle: &InputFile, entry: &str) -> SourceMeta {
    SourceMeta {
        name: format!("{}!{}", bundle.name, entry),
        path: bundle.path.clone(),
        entry: Some(entry.to_owned()),
        s3: S3Key::from_key(entry),
    }
}

/// The names a bundle's entries are known by, each once. A tar may hold one name twice (`tar
/// -r` appends a newer copy and keeps the old), and two sources of one name would make
/// `bundle!name` point at either: a repeat is named `name#2` (or the next number no name has
/// taken), which every read of the same bundle gives the same entry, as entries come in order.
#[derive(Default)]
struct EntryNames(UniqueNames);

impl EntryNames {
    fn meta(&mut self, bundle: &InputFile, name: &str) -> SourceMeta {
        let unique = self.0.take(name);
        SourceMeta {
            // The object key is the entry's name (control characters escaped, which no S3 key
            // part that flowdex reads holds).
            s3: S3Key::from_key(name),
            ..entry_meta(bundle, &unique)
        }
    }
}

/// Names handed out once each: a name already taken comes back as `name#2`, or the next
/// number no name has taken. Bundle entries and the sources of an index are named so.
#[derive(Debug, Default)]
pub struct UniqueNames {
    taken: std::collections::HashSet<String>,
    /// Per repeated name, the number its next repeat tries first: a bundle of thousands of
    /// copies of one name must not try every number from 2 for each.
    next: std::collections::HashMap<String, u64>,
}

impl UniqueNames {
    /// Names that are taken already.
    pub fn with_taken(names: impl IntoIterator<Item = String>) -> UniqueNames {
        UniqueNames {
            taken: names.into_iter().collect(),
            next: Default::default(),
        }
    }

    /// `name` if no one has it, else the first free `name#N`; taken from then on.
    pub fn take(&mut self, name: &str) -> String {
        if self.taken.insert(name.to_owned()) {
            return name.to_owned();
        }
        // Names are never given back: the numbers before `next` stay taken.
        let next = self.next.entry(name.to_owned()).or_insert(2);
        let unique = loop {
            let candidate = format!("{name}#{next}");
            *next += 1;
            if !self.taken.contains(&candidate) {
                break candidate;
            }
        };
        self.taken.insert(unique.clone());
        unique
    }
}

/// How reading a tar stream ended.
enum TarEnd {
    /// At its end-of-archive blocks.
    Clean,
    /// Where the stream broke (reported as a failed source).
    Broken,
}

fn read_tar(
    stream: &mut dyn Read,
    bundle: &InputFile,
    options: &ReadOptions,
    sink: &mut dyn RecordSink,
) -> io::Result<TarEnd> {
    let mut archive = tar::Archive::new(stream);
    let mut names = EntryNames::default();
    let mut last = String::from("(start)");
    // Whether the bundle's stream ended or failed inside the last entry: reported with that
    // entry, not again as a source of its own.
    let mut broken = false;
    for entry in archive.entries()? {
        let mut entry = match entry {
            Ok(_) | Err(_) if broken => return Ok(TarEnd::Broken),
            Ok(e) => e,
            Err(e) => {
                let meta = entry_meta(bundle, &format!("(after {last})"));
                report_failure(
                    meta,
                    SourceError::Corrupt {
                        what: "tar stream",
                        after_line: 0,
                        message: e.to_string(),
                    },
                    sink,
                );
                return Ok(TarEnd::Broken);
            }
        };
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if is_write_test_object(&raw) {
            continue;
        }
        // Known and reported by a name safe to print; judged by the name as written.
        let name = super::printable(&raw).into_owned();
        use tar::EntryType as T;
        let kind = entry.header().entry_type();
        // No source: no name taken.
        if matches!(
            kind,
            T::Directory | T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink
        ) {
            continue;
        }
        let meta = names.meta(bundle, &name);
        // The name it is known by, for a break after it.
        last.clone_from(meta.entry.as_ref().expect("an entry's meta names it"));
        match kind {
            T::Regular | T::Continuous | T::GNUSparse => {}
            T::Symlink | T::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let why = if target.is_empty() {
                    "is a link"
                } else {
                    "is a link; links are not followed"
                };
                report_failure(meta, SourceError::UnsafeEntry { name, why }, sink);
                continue;
            }
            _ => {
                report_failure(
                    meta,
                    SourceError::UnsafeEntry {
                        name,
                        why: "is a device, FIFO or other special file",
                    },
                    sink,
                );
                continue;
            }
        }
        if let Some(why) = unsafe_entry_name(&raw) {
            report_failure(meta, SourceError::UnsafeEntry { name, why }, sink);
            continue;
        }
        let stated = entry.size();
        // Each entry is a source of its own size: told by its header, and skipped unread (the
        // bundle's stream is still checked for its ratio).
        if stated > options.limits.max_source_bytes {
            let limit = options.limits.max_source_bytes;
            report_failure(meta, SourceError::TooLarge { size: stated, limit }, sink);
            continue;
        }
        let mut whole = Whole {
            inner: &mut entry,
            left: stated,
            stated,
            broken: false,
        };
        read_source(meta, &mut whole, options, sink);
        broken = whole.broken;
        if broken {
            let entry = last.clone();
            report_failure(bundle_meta(bundle), SourceError::Stopped { entry }, sink);
        }
    }
    Ok(TarEnd::Clean)
}

/// A tar entry's bytes, ending in an error when the bundle ends before the size its header
/// states: the tar reader then just stops, and a cut entry would read as a whole one.
struct Whole<R> {
    inner: R,
    left: u64,
    stated: u64,
    /// Whether the bundle's stream ended or failed inside the entry.
    broken: bool,
}

impl<R: Read> Read for Whole<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).inspect_err(|_| self.broken = true)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            self.broken = true;
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the entry ends after {} of the {} bytes its header states: the bundle is cut short",
                    self.stated - self.left,
                    self.stated
                ),
            ));
        }
        self.left = self.left.saturating_sub(n as u64);
        Ok(n)
    }
}

fn read_zip(bundle: &InputFile, options: &ReadOptions, sink: &mut dyn RecordSink) {
    let opened = File::open(&bundle.path)
        .map_err(|e| SourceError::Io { message: e.to_string() })
        .and_then(|f| {
            zip::ZipArchive::new(BufReader::new(f)).map_err(|e| SourceError::Corrupt {
                what: "zip directory",
                after_line: 0,
                message: format!("{e}; its entries are read in order from their own headers instead"),
            })
        });
    let mut archive = match opened {
        Ok(a) => a,
        Err(e @ SourceError::Corrupt { .. }) => {
            report_failure(bundle_meta(bundle), e, sink);
            return read_zip_in_order(bundle, options, sink, "its directory is missing");
        }
        Err(e) => return report_failure(bundle_meta(bundle), e, sink),
    };
    // The zip crate keeps one entry per name, the last: the others are reached only through
    // their local headers, which a streaming writer leaves without the entries' sizes.
    let directory = directory_entries(&bundle.path, archive.central_directory_start());
    if let Some(directory) = directory.ok().filter(|d| d.entries > archive.len()) {
        if !directory.sizes_after_data {
            return read_zip_in_order(bundle, options, sink, "its directory lists a name twice");
        }
        let error = SourceError::Unread {
            what: "earlier entries under names it lists again, written with their sizes after their data",
        };
        report_failure(bundle_meta(bundle), error, sink);
    }
    let mut names = EntryNames::default();
    for i in 0..archive.len() {
        // Named before it is opened: an entry that cannot be opened keeps its name.
        let name = archive
            .name_for_index(i)
            .map_or_else(|| format!("(entry #{})", i + 1), |n| super::printable(n).into_owned());
        match archive.by_index(i) {
            Ok(mut entry) => {
                read_zip_entry(&mut entry, bundle, &mut names, options, sink);
            }
            Err(e) => {
                let meta = names.meta(bundle, &name);
                let error = match e {
                    zip::result::ZipError::UnsupportedArchive(_) => SourceError::Unsupported {
                        what: "a zip entry compressed other than by deflate, or encrypted,",
                        advice: "; extract the bundle and give flowdex its files",
                    },
                    e => SourceError::Corrupt {
                        what: "zip entry",
                        after_line: 0,
                        message: e.to_string(),
                    },
                };
                report_failure(meta, error, sink);
            }
        }
    }
}

/// What a zip's central directory lists, read from its own headers.
struct Directory {
    entries: usize,
    /// Some entry's local header leaves its sizes to a descriptor after its data (flag bit 3).
    sizes_after_data: bool,
}

/// Reads the central directory at `start`.
fn directory_entries(path: &Path, start: u64) -> io::Result<Directory> {
    const SIGNATURE: &[u8] = b"PK\x01\x02";
    let mut file = BufReader::new(File::open(path)?);
    file.seek(SeekFrom::Start(start))?;
    let mut header = [0u8; 46];
    let mut directory = Directory {
        entries: 0,
        sizes_after_data: false,
    };
    while file.read_exact(&mut header).is_ok() && header.starts_with(SIGNATURE) {
        let u16_at = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
        directory.sizes_after_data |= u16_at(8) & (1 << 3) != 0;
        // The name, the extra field and the comment follow the fixed part.
        file.seek_relative(i64::from(u16_at(28)) + i64::from(u16_at(30)) + i64::from(u16_at(32)))?;
        directory.entries += 1;
    }
    Ok(directory)
}

/// A zip whose directory cannot be used (missing: cut short, as a copy interrupted; or listing
/// a name twice, `why`): its entries read in order from their local headers, each whole one
/// kept, until one cannot be read.
fn read_zip_in_order(bundle: &InputFile, options: &ReadOptions, sink: &mut dyn RecordSink, why: &str) {
    let file = match File::open(&bundle.path) {
        Ok(file) => file,
        Err(e) => return report_failure(bundle_meta(bundle), SourceError::Io { message: e.to_string() }, sink),
    };
    let mut stream = BufReader::new(file);
    let mut names = EntryNames::default();
    let mut last = String::from("(start)");
    loop {
        match zip::read::read_zipfile_from_stream(&mut stream) {
            // The directory's start: every entry was read.
            Ok(None) => return,
            Ok(Some(mut entry)) => {
                if let Some(name) = read_zip_entry(&mut entry, bundle, &mut names, options, sink) {
                    last = name;
                }
            }
            Err(e) => {
                let meta = entry_meta(bundle, &format!("(after {last})"));
                let message = match e {
                    zip::result::ZipError::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
                        "the file ends here, before its directory: it is cut short, and any entries after \
                         this point are lost"
                            .to_owned()
                    }
                    e => e.to_string(),
                };
                let error = SourceError::Corrupt {
                    what: "zip read in order",
                    after_line: 0,
                    message: format!("{message} (read so because {why})"),
                };
                return report_failure(meta, error, sink);
            }
        }
    }
}

/// Reads one zip entry as a source (or reports why not); returns the name it is known by in
/// the bundle, `None` for what is no source (a folder, AWS's write probe).
fn read_zip_entry<R: Read>(
    entry: &mut zip::read::ZipFile<'_, R>,
    bundle: &InputFile,
    names: &mut EntryNames,
    options: &ReadOptions,
    sink: &mut dyn RecordSink,
) -> Option<String> {
    if entry.is_dir() || is_write_test_object(entry.name()) {
        return None;
    }
    let name = super::printable(entry.name()).into_owned();
    let meta = names.meta(bundle, &name);
    let known_as = meta.entry.clone();
    if let Some(why) =
        unsafe_entry_name(entry.name()).or(entry.enclosed_name().is_none().then_some("leaves the bundle"))
    {
        report_failure(meta, SourceError::UnsafeEntry { name, why }, sink);
    } else if entry.is_symlink() {
        let why = "is a link; links are not followed";
        report_failure(meta, SourceError::UnsafeEntry { name, why }, sink);
    } else {
        let compressed = Rc::new(Cell::new(entry.compressed_size().max(1)));
        let mut stream = Expansion::new(entry, compressed, &options.limits);
        read_source(meta, &mut stream, options, sink);
    }
    known_as
}

/// Reads one source from its raw bytes: hashes them, peels compression layers, parses.
fn read_source(meta: SourceMeta, raw: &mut dyn Read, options: &ReadOptions, sink: &mut dyn RecordSink) {
    let mut state = SourceState::begin(meta, options, sink);
    let mut hashing = Hashing {
        inner: raw,
        hasher: Sha256::new(),
        bytes: 0,
    };
    let result = state.read_layers(&mut hashing);
    state.finish(result, hashing, false);
}

struct SourceState<'a> {
    parser: LineParser,
    report: SourceReport,
    options: &'a ReadOptions,
    sink: &'a mut dyn RecordSink,
    /// Compression layers peeled so far (gzip in gzip, base64 payloads).
    depth: u32,
    /// The innermost compression layer, to name it when its stream breaks.
    decoding: Option<&'static str>,
    /// For a source that is a whole file: the file and its size and time when it was opened,
    /// to tell whether it changed while it was read.
    stamp: Option<(&'a File, FileStamp)>,
}

/// A regular file's size and modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileStamp {
    /// The stamp of an open file, by its descriptor: what was read, whatever its name now
    /// points to. `NotAFile` for anything but a regular file.
    fn of(file: &File) -> Result<FileStamp, SourceError> {
        let m = file
            .metadata()
            .map_err(|e| SourceError::Io { message: e.to_string() })?;
        if !m.is_file() {
            return Err(SourceError::NotAFile);
        }
        Ok(FileStamp {
            len: m.len(),
            modified: m.modified().ok(),
        })
    }
}

/// Opens `path` for reading when it is a regular file. It is opened without waiting and then
/// checked by its descriptor: opening a FIFO for reading waits for a writer, perhaps forever, and
/// checking the name before opening it costs a second walk of the path (a tenth of reading a
/// 3 KB object) and may see another file than the one opened.
fn open_regular(path: &Path) -> Result<(File, FileStamp), SourceError> {
    let mut options = File::options();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options
        .open(path)
        .map_err(|e| SourceError::Io { message: e.to_string() })?;
    let stamp = FileStamp::of(&file)?;
    Ok((file, stamp))
}

/// Layers a source may nest: gzip around gzip (Firehose), base64 gzip in JSON (Lambda events).
const MAX_LAYERS: u32 = 4;

impl<'a> SourceState<'a> {
    fn begin(meta: SourceMeta, options: &'a ReadOptions, sink: &'a mut dyn RecordSink) -> SourceState<'a> {
        let id = sink.begin_source(&meta);
        let fallback = options.log_format.clone().unwrap_or_else(LogFormat::default_v2);
        SourceState {
            parser: LineParser::new(fallback, true, options.limits.max_line_bytes),
            report: SourceReport::new(meta, id),
            options,
            sink,
            depth: 0,
            decoding: None,
            stamp: None,
        }
    }

    /// Ends the source: hashes every byte of it, also those after a point where decoding broke
    /// off, and hands the report to the sink.
    /// `zeros_end_it`: the source's error is forgiven if every byte left is zero (see the
    /// gzip padding in [`read_input`]).
    fn finish<R: Read>(self, result: Result<(), SourceError>, mut hashing: Hashing<R>, zeros_end_it: bool) {
        let SourceState {
            mut report,
            parser,
            sink,
            stamp,
            ..
        } = self;
        let mut rest = ZerosOnly(true);
        let _ = io::copy(&mut hashing, &mut rest);
        report.error = result.err().filter(|_| !(zeros_end_it && rest.0));
        report.size = hashing.bytes;
        report.sha256 = hex(&hashing.hasher.finalize());
        if let Some((file, before)) = stamp {
            let after = FileStamp::of(file).ok();
            if report.error.is_none() && (after != Some(before) || hashing.bytes != before.len) {
                report.error = Some(SourceError::ChangedWhileRead);
            }
        }
        if report.form == Form::Unknown && report.error.is_none() {
            report.form = if parser.saw_timestamp_prefix() {
                Form::CloudwatchExport
            } else if report.headers > 0 {
                Form::S3Text
            } else {
                Form::BareLines
            };
        }
        sink.end_source(report);
    }

    fn read_layers(&mut self, raw: &mut dyn Read) -> Result<(), SourceError> {
        let (kind, head) = sniff(raw);
        self.read_kind(kind, head, raw)
    }

    /// Reads a stream whose first bytes, `head`, were already taken and told to be `kind`.
    fn read_kind(&mut self, kind: Kind, mut head: Head, raw: &mut dyn Read) -> Result<(), SourceError> {
        // Bytes cut short by an error tell too little to call them binary or UTF-16: the error
        // is what went wrong.
        if matches!(kind, Kind::Binary | Kind::Utf16) {
            if let Some(e) = head.error.take() {
                return Err(self.classify(e));
            }
        }
        let mut stream = head.chain(raw);
        match kind {
            Kind::Gzip if self.depth < MAX_LAYERS => {
                self.report.gzip = true;
                self.depth += 1;
                let outer = self.decoding.replace("gzip stream");
                let input = Rc::new(Cell::new(0));
                let decoder = gzip_decoder(Counting {
                    inner: stream,
                    count: input.clone(),
                });
                let mut decoded = Expansion::new(decoder, input, &self.options.limits);
                let result = self.read_layers(&mut decoded);
                self.decoding = outer;
                self.depth -= 1;
                result
            }
            Kind::Gzip => Err(SourceError::Unsupported {
                what: "more than 4 nested compression layers",
                advice: "",
            }),
            Kind::Zip | Kind::Tar => Err(SourceError::Unsupported {
                what: "a bundle inside a bundle or a compressed file",
                advice: "; extract the outer bundle and give flowdex the inner one",
            }),
            Kind::Parquet => Err(SourceError::Unsupported {
                what: "Parquet delivery",
                advice: "; convert the objects to text (for example with DuckDB) meanwhile",
            }),
            Kind::Binary => Err(SourceError::Binary),
            Kind::Utf16 => Err(SourceError::Utf16),
            Kind::Text => self.read_content(&mut stream),
        }
    }

    fn read_content(&mut self, stream: &mut dyn Read) -> Result<(), SourceError> {
        let mut buffered = BufReader::with_capacity(8 * 1024, stream);
        let first = loop {
            let buf = buffered.fill_buf().map_err(|e| self.classify(e))?;
            if buf.starts_with(UTF8_BOM) {
                buffered.consume(UTF8_BOM.len());
                self.parser.bom_skipped();
                continue;
            }
            break buf.iter().copied().find(|b| !b.is_ascii_whitespace());
        };
        if matches!(first, Some(b'{' | b'[')) {
            // JSON's events are no lines of the file: none keeps the mark.
            self.parser.forget_bom();
            self.report.form = Form::Json;
            return self.read_json(&mut buffered);
        }
        let max_line = self.options.limits.max_line_bytes;
        let result = for_each_line(&mut buffered, max_line, |event| {
            self.parser.event(event, &mut self.report, &mut *self.sink)
        });
        result.map_err(|e| self.classify(e))
    }

    fn read_json(&mut self, buffered: &mut dyn BufRead) -> Result<(), SourceError> {
        let mut nested_error = None;
        let result = walk_values(buffered, &mut |item| match item {
            JsonItem::Message(message) => {
                // A text payload before this event numbered its blank lines too: counting only
                // events would give this one the number of a payload line, and `show` the wrong
                // line for it.
                self.report.lines += 1;
                let line = self.report.lines + self.report.blank_lines;
                // A message may end in the line break of the text it was read from, as a line
                // of a file may end in `\r`.
                let message = message.trim_end_matches(['\n', '\r']);
                let limit = self.options.limits.max_line_bytes;
                if message.len() > limit {
                    let reason = RejectReason::TooLong {
                        len: message.len() as u64,
                        limit,
                    };
                    let raw = message.as_bytes();
                    return self.parser.reject(line, reason, raw, &mut self.report, &mut *self.sink);
                }
                self.parser
                    .line(line, message.as_bytes(), &mut self.report, &mut *self.sink);
            }
            JsonItem::Payload(bytes) if self.depth < MAX_LAYERS => {
                self.depth += 1;
                let form = self.report.form;
                match self.read_layers(&mut bytes.as_slice()) {
                    Ok(()) => {}
                    // A payload that is no flow-log text is one event that carries no record.
                    Err(e @ (SourceError::Binary | SourceError::Utf16 | SourceError::Unsupported { .. })) => {
                        self.reject_event(format!("the payload: {e}"))
                    }
                    // A payload that breaks fails the source, as a file that breaks does (its
                    // records may hold corrupt values); the payloads after it are read still.
                    Err(e) => {
                        nested_error.get_or_insert(e);
                    }
                }
                self.report.form = form;
                self.depth -= 1;
            }
            JsonItem::Payload(_) => self.reject_event("the payload is nested deeper than flowdex reads".into()),
            JsonItem::Bad(why) => self.reject_event(why.into()),
            JsonItem::Broken {
                line,
                column,
                message,
                unread,
            } => {
                let skipped = match unread {
                    0 => String::new(),
                    n => format!("; the {n} bytes after it on that line were not read"),
                };
                self.reject_event(format!("not JSON at line {line}, column {column}: {message}{skipped}"))
            }
        });
        if let Some(e) = nested_error {
            return Err(e);
        }
        result.map_err(|e| match e {
            WalkError::Io(e) => self.classify(e),
            WalkError::Truncated { line, column, message } => SourceError::Json { line, column, message },
        })
    }

    /// Counts a log event that carries no record as a rejected line.
    fn reject_event(&mut self, why: String) {
        self.report.lines += 1;
        let line = self.report.lines + self.report.blank_lines;
        self.parser.reject(
            line,
            RejectReason::BadEvent { why },
            b"",
            &mut self.report,
            &mut *self.sink,
        );
    }

    fn classify(&self, e: io::Error) -> SourceError {
        let after_line = self.report.lines + self.report.blank_lines;
        if let Some(bomb) = e.get_ref().and_then(|inner| inner.downcast_ref::<BombError>()) {
            return SourceError::Bomb {
                after_line,
                limit: bomb.0.clone(),
            };
        }
        // A checksum that fails at a stream's or entry's end: the whole stream was read, every
        // record of it unverified, not only the last.
        let message = e.to_string();
        let checked = if message == GZIP_CHECKSUM_FAILED {
            Some("gzip stream")
        } else if message == ZIP_CHECKSUM_FAILED {
            Some("zip entry")
        } else {
            None
        };
        if let Some(what) = checked {
            return SourceError::Unverified {
                what,
                after_line: Some(after_line),
                message,
            };
        }
        match self.decoding {
            Some(what) => SourceError::Corrupt {
                what,
                after_line,
                message: e.to_string(),
            },
            None => SourceError::Io { message: e.to_string() },
        }
    }
}

/// What a bundle failure says of bytes after a tar's end blocks that are not zeros.
const AFTER_TAR: &str = "data after the tar's end (a second archive appended?)";

/// A sink that tells whether every byte written to it was zero.
struct ZerosOnly(bool);

impl io::Write for ZerosOnly {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 &= buf.iter().all(|&b| b == 0);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Passes bytes through while hashing and counting them.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Counts the compressed bytes a decoder consumes, for the expansion ratio.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// The error a decompressor's output gives when it grows beyond the limits.
#[derive(Debug)]
struct BombError(String);

impl fmt::Display for BombError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "decompressed data exceeds {}", self.0)
    }
}

impl std::error::Error for BombError {}

/// Stops a decompressor whose output outgrows its input by more than the limits allow.
struct Expansion<R> {
    inner: R,
    input: Rc<Cell<u64>>,
    output: u64,
    limits: Limits,
}

impl<R> Expansion<R> {
    fn new(inner: R, input: Rc<Cell<u64>>, limits: &Limits) -> Self {
        Expansion {
            inner,
            input,
            output: 0,
            limits: limits.clone(),
        }
    }
}

impl<R: Read> Read for Expansion<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.output += n as u64;
        let l = &self.limits;
        if self.output > l.max_source_bytes {
            return Err(io::Error::other(BombError(format!("{} bytes", l.max_source_bytes))));
        }
        if self.output > l.ratio_grace_bytes && self.output > self.input.get().saturating_mul(l.max_ratio) {
            return Err(io::Error::other(BombError(format!(
                "{}x its compressed size",
                l.max_ratio
            ))));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_that_leave_the_bundle() {
        assert!(unsafe_entry_name("../etc/passwd").is_some());
        assert!(unsafe_entry_name("a/../../b").is_some());
        assert!(unsafe_entry_name("/etc/passwd").is_some());
        assert!(unsafe_entry_name("C:\\x").is_some());
        assert!(unsafe_entry_name("a\\..\\b").is_some());
        assert!(unsafe_entry_name("AWSLogs/1/x..log.gz").is_none());
    }

    #[test]
    fn a_repeated_entry_name_takes_the_next_number_no_entry_has() {
        let bundle = InputFile {
            path: "b.tar".into(),
            name: "b.tar".into(),
            error: None,
        };
        let mut names = EntryNames::default();
        let got: Vec<String> = ["a", "a", "a#3", "a", "b", "a", "a#2"]
            .iter()
            .map(|n| names.meta(&bundle, n).entry.unwrap())
            .collect();
        assert_eq!(got, ["a", "a#2", "a#3", "a#4", "b", "a#5", "a#2#2"]);
    }

    #[test]
    fn sniffs_kinds() {
        let k = |b: &[u8]| sniff(&mut &b[..]).0;
        assert_eq!(k(b"\x1f\x8b\x08"), Kind::Gzip);
        assert_eq!(k(b"PK\x03\x04"), Kind::Zip);
        assert_eq!(k(b"PAR1xxxx"), Kind::Parquet);
        assert_eq!(k(b"version srcaddr\n"), Kind::Text);
        assert_eq!(k(b"\x00\x01\x02"), Kind::Binary);
        // A database page: NULs and small numbers after a text magic.
        let mut page = b"SQLite format 3\0\x10\0\x01\x01\0@  \0\0\0\x02".to_vec();
        page.resize(512, 0);
        page[100] = 0x0d;
        assert_eq!(k(&page), Kind::Binary);
        // Text after or before a zero-filled block, and a stray control byte in a line.
        let line = b"2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1418530010 1418530070 ACCEPT OK\n";
        assert_eq!(k(&[&[0u8; 300][..], line].concat()), Kind::Text);
        assert_eq!(k(&[&line[..], &[0u8; 300]].concat()), Kind::Text);
        assert_eq!(k(&[&line[..], b"\x01", line].concat()), Kind::Text);
        assert_eq!(k(b"%PDF-1.7\n"), Kind::Binary);
        assert_eq!(k(b""), Kind::Text);
    }
}
