//! Evidence bundles: the records a query matches, written so that a report can carry them and
//! anyone can check them later. Runs the query through [`crate::search`], reads the matches'
//! original lines from the index, and lays out the files; [`bundle`] writes and verifies them.
//! Does not aggregate: a `stats` query is refused ([`ExportError::Aggregate`]).
//!
//! A bundle holds (see `README.txt`, which every bundle carries):
//!
//! - `manifest.json`: query, time window, note, flowdex version, the index's id and format
//!   version, counts, and each source that contributed (name, path, SHA-256, S3 key fields,
//!   records matched, first and last line).
//! - `records.jsonl`, `records.csv`: the matching records in search order, with `_source` and
//!   `_line`; a `fields` stage chooses their columns as it does for `search`.
//! - `original-lines.txt`: each record's line byte for byte, grouped by source, in line order.
//! - `timeline.svg`: records and bytes per time bin, ACCEPT / REJECT / no action.
//! - `query-files/`: the `@file` lists the query read, as read.
//! - `SHA256SUMS`, and `created.json`, the only file whose bytes change between two exports.
//!
//! The index id is the SHA-256 of the index's `MANIFEST` file, so `sha256sum IDX/MANIFEST`
//! shows which index (and which build of it) a bundle came from.

pub mod bundle;
mod timeline;

pub use bundle::{verify, Bundle, BundleError, BundleFile, Problem, Verification, CREATED_FILE, SUMS_FILE};

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::exec::{Hit, SearchError};
use crate::format::manifest::SourceEntry;
use crate::input::S3Key;
use crate::output::{OutputFormat, RecordWriter, SourceRef};
use crate::query::Bound;
use crate::read::{Index, IndexError};
use crate::record::{Action, Field, FieldSet};
use crate::search::{self, Answer};
use crate::time::format_rfc3339;
use bundle::sha256_hex;
use timeline::Timeline;

/// Raised when the layout or meaning of a bundle's files changes.
pub const BUNDLE_FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "this query aggregates (`stats`), and an export holds records: export the filter without \
         `| stats ...`, and aggregate with `flowdex search`"
    )]
    Aggregate,
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// What was asked, as the analyst wrote it; all of it goes into the manifest.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub query: &'a str,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub note: Option<&'a str>,
    /// The `@file` lists the query read: (path as written in the query, contents).
    pub query_files: &'a [(String, String)],
    /// When the bundle is made, Unix seconds: only `created.json` holds it.
    pub created: i64,
    /// Memory the search may hold (see [`search::run_within`]).
    pub memory: usize,
}

/// Runs `bound` on `index` and lays out the bundle of its matching records.
pub fn export(index: &Index, bound: &Bound, request: &Request<'_>) -> Result<Bundle, ExportError> {
    if bound.stats.is_some() {
        return Err(ExportError::Aggregate);
    }
    let Answer::Records { hits, fields } = search::run_within(index, bound, request.memory)? else {
        return Err(ExportError::Aggregate);
    };
    let at: Vec<_> = hits.iter().map(|h| h.at).collect();
    let lines = index.original_lines(&at)?;
    let sources = contributions(index, &hits)?;
    let query_files = query_files(request.query_files);
    let timeline = Timeline::of(hits.iter().map(|h| &*h.record));

    let manifest = BundleManifest {
        bundle_format: BUNDLE_FORMAT,
        flowdex_version: env!("CARGO_PKG_VERSION"),
        query: request.query,
        from: request.from,
        to: request.to,
        note: request.note,
        query_files: query_files
            .iter()
            .map(|(written, file)| QueryFileEntry {
                path: written,
                file: &file.path,
                sha256: sha256_hex(&file.bytes),
            })
            .collect(),
        index: IndexId {
            // Re-encoding gives the MANIFEST file's bytes, and of the manifest that answered the
            // query, even if a build has published a new one since the index was opened.
            id: sha256_hex(&index.manifest().encode()),
            format_version: index.manifest().format_version,
            generation: index.manifest().generation,
            records: index.manifest().records(),
            sources: index.manifest().source_count as usize,
        },
        counts: Counts::of(&hits, sources.len()),
        timeline_bin_seconds: timeline.width,
        sources: sources
            .iter()
            .map(|c| ContributingSource {
                name: &c.entry.name,
                path: &c.entry.path,
                entry: c.entry.entry.as_deref(),
                size: c.entry.size,
                sha256: &c.entry.sha256,
                s3: &c.entry.s3,
                form: &c.entry.form,
                records_in_source: c.entry.records,
                records_matched: c.hits.len() as u64,
                first_line: c.hits.first().map_or(0, |&i| hits[i].record.provenance.line),
                last_line: c.hits.last().map_or(0, |&i| hits[i].record.provenance.line),
                error: c.entry.error.as_deref(),
            })
            .collect(),
    };
    let mut manifest_json = serde_json::to_vec_pretty(&manifest).expect("a bundle manifest serializes");
    manifest_json.push(b'\n');

    let mut files = vec![
        BundleFile {
            path: "README.txt".into(),
            bytes: README.as_bytes().to_vec(),
        },
        BundleFile {
            path: "manifest.json".into(),
            bytes: manifest_json,
        },
        BundleFile {
            path: "records.jsonl".into(),
            bytes: write_records(
                &hits,
                OutputFormat::Jsonl,
                fields.clone().unwrap_or_default(),
                Vec::new(),
            ),
        },
        BundleFile {
            path: "records.csv".into(),
            bytes: {
                // Fields flowdex does not know get columns too, unless the query chose its fields.
                let extras = if fields.is_none() {
                    carried_extras(&hits)
                } else {
                    Vec::new()
                };
                write_records(
                    &hits,
                    OutputFormat::Csv,
                    fields.unwrap_or_else(|| carried_fields(&hits)),
                    extras,
                )
            },
        },
        BundleFile {
            path: "original-lines.txt".into(),
            bytes: original_lines(&hits, &lines, &sources),
        },
        BundleFile {
            path: "timeline.svg".into(),
            bytes: timeline.svg(&chart_title(request)).into_bytes(),
        },
    ];
    files.extend(query_files.into_iter().map(|(_, f)| f));
    let created = serde_json::json!({
        "created": format_rfc3339(request.created),
        "about": "When the bundle was written. The only file not in SHA256SUMS: two exports of the same query on the same index differ in this file alone.",
    });
    let mut created = serde_json::to_vec_pretty(&created).expect("json serializes");
    created.push(b'\n');
    Ok(Bundle::seal(files, created))
}

/// The query, and the time window when one was given: what the chart shows matches of.
fn chart_title(request: &Request<'_>) -> String {
    match (request.from, request.to) {
        (None, None) => request.query.to_owned(),
        (from, to) => format!(
            "{} (from {} to {})",
            request.query,
            from.unwrap_or("the first record"),
            to.unwrap_or("the last record")
        ),
    }
}

/// A source that contributed, with the positions in `hits` of its records (in line order).
struct Contribution {
    entry: SourceEntry,
    hits: Vec<usize>,
}

/// The contributing sources in name order (the order of `original-lines.txt`). A record whose
/// source the manifest lacks is damage (`flowdex verify` reports it), not something to skip.
fn contributions(index: &Index, hits: &[Hit]) -> Result<Vec<Contribution>, IndexError> {
    let mut by_id: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, h) in hits.iter().enumerate() {
        by_id.entry(h.record.provenance.source).or_default().push(i);
    }
    let mut out = Vec::with_capacity(by_id.len());
    for (id, mut positions) in by_id {
        let entry = index.source(id)?.ok_or_else(|| IndexError::Other {
            path: index.dir().to_path_buf(),
            what: format!("a matching record names source {id}, which the manifest lacks; run `flowdex verify`"),
        })?;
        positions.sort_by_key(|&i| hits[i].record.provenance.line);
        out.push(Contribution { entry, hits: positions });
    }
    out.sort_by(|a, b| (&a.entry.name, a.entry.id).cmp(&(&b.entry.name, b.entry.id)));
    Ok(out)
}

/// Each `@file` the query read, once, as `query-files/N-name`.
fn query_files(read: &[(String, String)]) -> Vec<(&str, BundleFile)> {
    let mut seen = std::collections::BTreeSet::new();
    read.iter()
        .filter(|(path, _)| seen.insert(path.as_str()))
        .enumerate()
        .map(|(i, (path, text))| {
            let base = path.rsplit(['/', '\\']).next().unwrap_or(path);
            let plain: String = base
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "._-".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let file = BundleFile {
                path: format!("query-files/{}-{plain}", i + 1),
                bytes: text.as_bytes().to_vec(),
            };
            (path.as_str(), file)
        })
        .collect()
}

fn write_records(hits: &[Hit], format: OutputFormat, columns: Vec<Field>, extras: Vec<Arc<str>>) -> Vec<u8> {
    let mut w = RecordWriter::new(Vec::new(), format, columns, true).with_extra_columns(extras);
    for h in hits {
        let source = SourceRef {
            name: &h.source.name,
            line: h.record.provenance.line,
        };
        w.write(&h.record, None, Some(source))
            .expect("writing to memory cannot fail");
    }
    w.finish().expect("writing to memory cannot fail")
}

/// The fields any matching record carried, in field-id order: the CSV's columns, so that it is
/// not padded with every field AWS ever defined.
fn carried_fields(hits: &[Hit]) -> Vec<Field> {
    let mut carried = FieldSet::EMPTY;
    for h in hits {
        h.record.fields.iter().for_each(|f| carried.insert(f));
    }
    Field::ALL.iter().copied().filter(|f| carried.contains(*f)).collect()
}

/// The names of the fields flowdex does not know that the hits carry, in the order first met.
fn carried_extras(hits: &[Hit]) -> Vec<Arc<str>> {
    let mut names: Vec<Arc<str>> = Vec::new();
    for e in hits.iter().flat_map(|h| &h.record.extra) {
        if !names.contains(&e.name) {
            names.push(e.name.clone());
        }
    }
    names
}

fn original_lines(hits: &[Hit], lines: &[Vec<u8>], sources: &[Contribution]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(
        b"# The original line of every matching record, byte for byte, grouped by source in line order.\n\
          # Each line is LINE:TEXT, LINE being the line number in the source (for JSON sources, the event).\n",
    );
    for (n, c) in sources.iter().enumerate() {
        out.extend_from_slice(
            format!(
                "\n== source {} of {}: {}\n== sha256: {}\n== records: {}\n",
                n + 1,
                sources.len(),
                c.entry.name,
                c.entry.sha256,
                c.hits.len()
            )
            .as_bytes(),
        );
        if let Some(error) = &c.entry.error {
            out.extend_from_slice(
                format!("== failed while read, its records may hold corrupt values: {error}\n").as_bytes(),
            );
        }
        for &i in &c.hits {
            out.extend_from_slice(format!("{}:", hits[i].record.provenance.line).as_bytes());
            out.extend_from_slice(&lines[i]);
            out.push(b'\n');
        }
    }
    out
}

#[derive(Serialize)]
struct BundleManifest<'a> {
    bundle_format: u32,
    flowdex_version: &'static str,
    query: &'a str,
    from: Option<&'a str>,
    to: Option<&'a str>,
    note: Option<&'a str>,
    query_files: Vec<QueryFileEntry<'a>>,
    index: IndexId,
    counts: Counts,
    timeline_bin_seconds: u64,
    sources: Vec<ContributingSource<'a>>,
}

#[derive(Serialize)]
struct QueryFileEntry<'a> {
    path: &'a str,
    file: &'a str,
    sha256: String,
}

#[derive(Serialize)]
struct IndexId {
    /// SHA-256 of the index's `MANIFEST` file.
    id: String,
    format_version: u32,
    generation: u64,
    records: u64,
    sources: usize,
}

#[derive(Serialize)]
struct Counts {
    records: u64,
    accept: u64,
    reject: u64,
    no_action: u64,
    /// Sums as wide as `stats sum()`'s: thousands of records near 2⁶⁴ bytes each still add up.
    packets: u128,
    bytes: u128,
    sources: usize,
    first_start: Option<String>,
    last_end: Option<String>,
}

impl Counts {
    fn of(hits: &[Hit], sources: usize) -> Counts {
        let action = |a: Option<Action>| hits.iter().filter(|h| h.record.action == a).count() as u64;
        let sum = |f: fn(&Hit) -> Option<u64>| hits.iter().filter_map(f).map(u128::from).sum();
        // The seconds the records cover, as searches place them: never a last before a first.
        let covered = || {
            hits.iter()
                .filter_map(|h| crate::record::covered_span(h.record.start, h.record.end))
        };
        Counts {
            records: hits.len() as u64,
            accept: action(Some(Action::Accept)),
            reject: action(Some(Action::Reject)),
            no_action: action(None),
            packets: sum(|h| h.record.packets),
            bytes: sum(|h| h.record.bytes),
            sources,
            first_start: covered()
                .map(|(first, _)| first)
                .min()
                .map(|t| format_rfc3339(t as i64)),
            last_end: covered().map(|(_, last)| last).max().map(|t| format_rfc3339(t as i64)),
        }
    }
}

#[derive(Serialize)]
struct ContributingSource<'a> {
    name: &'a str,
    path: &'a str,
    entry: Option<&'a str>,
    size: u64,
    sha256: &'a str,
    s3: &'a S3Key,
    form: &'a str,
    records_in_source: u64,
    records_matched: u64,
    first_line: u64,
    last_line: u64,
    /// Why reading the source failed, when it did: its records may hold corrupt values.
    error: Option<&'a str>,
}

const README: &str = "\
This is a flowdex evidence bundle: the flow-log records one query matched in one index.

manifest.json       the query, its time window and the analyst's note; flowdex version; the
                    index (id = SHA-256 of its MANIFEST file, format version); counts; every
                    source that contributed: name, path, size, SHA-256, S3 key fields, records
                    matched, first and last line, and the error if reading it failed (its
                    records may then hold corrupt values)
records.jsonl       the matching records, one JSON object per line, with _source and _line
records.csv         the same records as CSV
original-lines.txt  each record's line exactly as the source held it, grouped by source, in
                    line order, as LINE:TEXT; a source that failed while read says so
timeline.svg        records and bytes per time bin, ACCEPT / REJECT / no action (UTC)
query-files/        the @file lists the query read, if any
SHA256SUMS          SHA-256 of every file above
created.json        when the bundle was written; not in SHA256SUMS, so that exporting the
                    same query from the same index again gives identical files otherwise

To check the bundle: flowdex verify-bundle BUNDLE, or, in the extracted folder,
sha256sum -c SHA256SUMS. To check a record against its source, compare its line in
original-lines.txt with that line of the source file whose SHA-256 manifest.json lists.
The SHA-256 of SHA256SUMS names the whole bundle; quote it in the report.
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_files_get_plain_unique_names() {
        let read = [
            ("lists/iocs v2.txt".to_owned(), "1.2.3.4\n".to_owned()),
            ("../other/iocs v2.txt".to_owned(), "5.6.7.8\n".to_owned()),
            ("lists/iocs v2.txt".to_owned(), "1.2.3.4\n".to_owned()),
        ];
        let names: Vec<String> = query_files(&read).into_iter().map(|(_, f)| f.path).collect();
        assert_eq!(names, ["query-files/1-iocs_v2.txt", "query-files/2-iocs_v2.txt"]);
    }
}
