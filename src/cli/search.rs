//! `flowdex search`: run a query against an index; exit 0 when something matched, 1 when
//! nothing did, 2 on an error. After the answer, a warning on stderr names the gaps and SKIPDATA
//! in the searched window (see `flowdex::coverage::blind_spots`): there, no record proves nothing.

use std::collections::BTreeSet;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use flowdex::coverage::{self, BlindSpots, Coverage, State, Subject};
use flowdex::exec::{HeldRecord, Hit, Keeper, Route, SearchError};
use flowdex::format::sources::SourceLabel;
use flowdex::output::{columns_for, write_rows, OutputFormat, RecordWriter, SourceRef};
use flowdex::query::{self, QueryError};
use flowdex::read::Index;
use flowdex::record::{Field, FieldSet, FlowRecord, Provenance};
use flowdex::search::{self, Answer};
use flowdex::time::format_rfc3339;

#[derive(clap::Args)]
pub struct Args {
    /// The index folder.
    index: PathBuf,
    /// The query: a filter (`addr = 198.51.100.7 and dstport = 22`) or a pipeline
    /// (`filter action = "REJECT" | stats count() by srcaddr | sort count() desc | limit 10`).
    query: String,
    /// Output format: table, jsonl, csv, or raw (each record's original line, byte for byte).
    /// Default: table on a terminal, jsonl otherwise.
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// Add `_source` and `_line` to each record (raw: prefix each line with `source:line:`).
    #[arg(long)]
    with_source: bool,
    /// Only records whose [start, end] overlaps the window from this time (RFC 3339, a date, a
    /// month or Unix seconds).
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// ... to this time.
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Memory for matching records or aggregate groups (e.g. 512M, 2G); a query needing more
    /// fails clearly.
    #[arg(long, default_value = "1600M", value_parser = super::parse_size, value_name = "SIZE")]
    memory: usize,
    /// Print the plan (postings used, candidates, blocks to read per segment); run nothing.
    #[arg(long)]
    explain: bool,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let bound = match bind(&args) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("flowdex: {e}");
            return Ok(2);
        }
    };
    // Every match of a search with a time window lies in it: only the segments that overlap
    // it are opened. One that names an interface opens all, so that its warning can tell an
    // interface silent in the window from one the index does not know; `--explain` lists all.
    let window = coverage::searched_window(&bound.filter);
    let index = match (window, coverage::named_interfaces(&bound.filter)) {
        (Some(window), None) if !args.explain => Index::open_window(&args.index, window)?,
        _ => Index::open(&args.index)?,
    };
    let format = match &args.format {
        Some(name) => OutputFormat::parse(name)
            .with_context(|| format!("unknown --format `{name}`; use table, jsonl, csv or raw"))?,
        None if io::stdout().is_terminal() => OutputFormat::Table,
        None => OutputFormat::Jsonl,
    };
    let out = &mut BufWriter::new(io::stdout().lock());
    if args.explain {
        let plans = flowdex::exec::explain(&index, &bound.filter)?;
        writeln!(out, "filter: {}", bound.filter)?;
        for (test, route) in flowdex::exec::routes(&bound.filter) {
            let fields = |fields: &[Field]| fields.iter().map(|f| f.name()).collect::<Vec<_>>().join(" and ");
            let how = match route {
                Route::Postings if test.cond.is_empty() => {
                    format!("postings of {}: the records with a value", fields(&test.fields))
                }
                Route::Postings if test.negate => format!(
                    "postings of {}: the records with a value, less those matching",
                    fields(&test.fields)
                ),
                Route::Postings => format!("postings of {}", fields(&test.fields)),
                Route::ZoneMaps if test.fields.is_empty() => {
                    "zone maps of start and end, then each candidate record's times".into()
                }
                Route::ZoneMaps => format!("zone maps of {}, then each candidate record", fields(&test.fields)),
                Route::Records => "each candidate record".into(),
            };
            writeln!(out, "  {test}: {how}")?;
        }
        let (mut candidates, mut blocks, mut total) = (0, 0, 0);
        for p in &plans {
            writeln!(
                out,
                "{}: {} records, {} candidates from postings{}, {} of {} blocks to read",
                p.file,
                p.records,
                p.candidates,
                if p.exact { " (exact)" } else { " (to check in blocks)" },
                p.blocks_to_read,
                p.blocks
            )?;
            candidates += p.candidates;
            blocks += p.blocks_to_read;
            total += p.blocks;
        }
        writeln!(
            out,
            "estimated records: at most {candidates}; blocks to read: {blocks} of {total}"
        )?;
        if let Some((n, keys)) = search::limit_plan(&bound) {
            let keys: Vec<String> = keys
                .iter()
                .map(|(f, desc)| format!("{}{}", f.name(), if *desc { " desc" } else { "" }))
                .collect();
            if n == 0 {
                writeln!(out, "limit 0: no block is read")?;
            } else if keys.is_empty() {
                writeln!(out, "limit {n}: every block above is read")?;
            } else {
                writeln!(
                    out,
                    "limit {n}: blocks are read best first by their zone maps ({}), and each segment stops \
                     at the first block that cannot hold one of its first {n} records: at most the blocks above",
                    keys.join(", ")
                )?;
            }
        }
        out.flush()?;
        return Ok(0);
    }
    if format == OutputFormat::Raw && bound.stats.is_some() {
        eprintln!(
            "flowdex: --format raw prints records, and this query's answer is aggregate rows; use table, jsonl or csv"
        );
        return Ok(2);
    }
    // The sources of the records shown that failed while read, for a warning after them.
    let mut failed = FailedSources::default();
    // The interfaces of the matches, for the coverage warning; known only when records come back.
    let (empty, matched) = if search::answers_in_batches(&bound) {
        let mut interfaces = BTreeSet::new();
        let mut empty = true;
        let failed = &mut failed;
        let shown = search::shown_fields(&bound);
        let mut w = record_writer(&mut *out, &index, format, shown.clone(), args.with_source);
        let record_format = w.format().clone();
        let print = |record: &FlowRecord, line: Option<&[u8]>| {
            let mut text = Vec::with_capacity(line.map_or(PRINTED_GUESS, <[u8]>::len));
            Printed {
                text: record_format
                    .format(record, line, &mut text)
                    .map(|()| text.into_boxed_slice()),
                start: record.start,
                end: record.end,
                provenance: record.provenance,
                interface_id: record.interface_id.clone(),
            }
        };
        let keeper = Keeper {
            bytes: PRINTED_BYTES,
            lines: format == OutputFormat::Raw,
            make: &print,
            least: None,
            // Chosen columns, and the interface for the coverage warning; else every field.
            fields: shown.map(|columns| {
                let mut set = FieldSet::EMPTY;
                columns
                    .into_iter()
                    .chain([Field::InterfaceId])
                    .for_each(|f| set.insert(f));
                set
            }),
        };
        search::records_in_batches(&index, &bound, args.memory, &keeper, &mut |hits| {
            empty &= hits.is_empty();
            // Read in place: the batch is freed by `records_in_batches`, the last one on an
            // idle core.
            for h in hits.iter() {
                let text = h
                    .record
                    .text
                    .as_ref()
                    .map_err(|e| SearchError::Output(io::Error::new(e.kind(), e.to_string())))?;
                let source = SourceRef {
                    name: &h.source.name,
                    line: h.record.provenance.line,
                };
                w.write_formatted(text, Some(source)).map_err(SearchError::Output)?;
                failed.note(&h.source);
                if let Some(interface) = &h.record.interface_id {
                    if !interfaces.contains(interface) {
                        interfaces.insert(interface.clone());
                    }
                }
            }
            Ok(())
        })?;
        w.finish()?;
        (empty, Some(interfaces.into_iter().collect::<Vec<_>>()))
    } else {
        let answer = search::run_within(&index, &bound, args.memory)?;
        let empty = answer.is_empty();
        match answer {
            Answer::Records { hits, fields } => {
                hits.iter().for_each(|h| failed.note(&h.source));
                let interfaces: BTreeSet<&str> = hits.iter().filter_map(|h| h.record.interface_id.as_deref()).collect();
                let matched = interfaces.into_iter().map(str::to_owned).collect();
                let mut w = record_writer(&mut *out, &index, format, fields, args.with_source);
                write_hits(&mut w, &index, format, &hits)?;
                w.finish()?;
                (empty, Some(matched))
            }
            Answer::Rows(rows) => {
                write_rows(&mut *out, format, &rows)?;
                let from_failed = search::aggregated_from_failed(&index, &bound)?;
                failed.aggregated = Some(from_failed.at_most);
                for (source, records) in from_failed.counts {
                    failed.by_id.insert(source.id, (source, records));
                }
                (empty, None)
            }
        }
    };
    out.flush()?;
    failed.warn(&args.index);
    let blind = coverage::blind_spots(&index, &bound.filter, matched.as_deref())
        .with_context(|| format!("{}: checking coverage", args.index.display()))?;
    warn_blind_spots(&index, &blind, &args.index)?;
    Ok(if empty { 1 } else { 0 })
}

/// A matching record as printed while its block was decoded (formatting on every core as the
/// records come, not one core after), with what output order and the coverage warning need.
struct Printed {
    /// Without provenance or line end: see [`flowdex::output::RecordFormat::format`].
    text: io::Result<Box<[u8]>>,
    start: Option<u64>,
    end: Option<u64>,
    provenance: Provenance,
    interface_id: Option<String>,
}

impl HeldRecord for Printed {
    fn place(&self) -> (Option<u64>, Option<u64>, Provenance) {
        (self.start, self.end, self.provenance)
    }
}

/// Bytes of a printed v5 record's JSON, about: room reserved for its text.
const PRINTED_GUESS: usize = 640;

/// Bytes a printed record costs at its peak: its text, the hit, and its share of the records
/// being decoded. Measured: 653,283 v5 records of one address printed as JSON peaked at 838 MB,
/// 585 MB more than the same search printing none (900 bytes a record). A record of every field
/// prints about 2 KB of JSON, so a printed record is given the room of a held one.
const PRINTED_BYTES: u64 = flowdex::exec::RECORD_BYTES;

/// Hits whose original lines `--format raw` reads at once: the lines are read after the hits
/// (which took the memory budget) were sorted, so only so many are held.
const RAW_CHUNK: usize = 65_536;

/// Writes records, with their original lines for `--format raw`.
fn write_hits<W: Write>(
    w: &mut RecordWriter<W>,
    index: &Index,
    format: OutputFormat,
    hits: &[Hit],
) -> Result<(), SearchError> {
    let chunk = if format == OutputFormat::Raw {
        RAW_CHUNK
    } else {
        hits.len().max(1)
    };
    for hits in hits.chunks(chunk) {
        let lines = if format == OutputFormat::Raw {
            index.original_lines(&hits.iter().map(|h| h.at).collect::<Vec<_>>())?
        } else {
            Vec::new()
        };
        w.write_each(hits.len(), |i| {
            let h = &hits[i];
            (
                &h.record,
                lines.get(i).map(Vec::as_slice),
                Some(SourceRef {
                    name: &h.source.name,
                    line: h.record.provenance.line,
                }),
            )
        })
        .map_err(SearchError::Output)?;
    }
    Ok(())
}

/// The sources of records shown whose reading failed (a gzip checksum, a truncated stream, a
/// file changed while read): their records are in the index, and the failure says how far they
/// can be trusted, so a responder must hear it where the records are used, not only at build
/// time.
#[derive(Default)]
struct FailedSources {
    /// Per source id (two sources may share a name: a path indexed again after it changed):
    /// its label and the records shown (or aggregated) from it.
    by_id: std::collections::BTreeMap<u32, (std::sync::Arc<SourceLabel>, u64)>,
    /// The records were aggregated into rows, not shown; `true` when the aggregation chose
    /// among them (a limit before `stats`), so the counts are at most what it counted.
    aggregated: Option<bool>,
}

impl FailedSources {
    fn note(&mut self, source: &std::sync::Arc<SourceLabel>) {
        if source.error.is_none() {
            return;
        }
        self.by_id.entry(source.id).or_insert_with(|| (source.clone(), 0)).1 += 1;
    }

    fn warn(&self, index: &Path) {
        let (one, many) = match self.aggregated {
            None => ("record shown comes", "records shown come"),
            Some(_) => ("record aggregated comes", "records aggregated come"),
        };
        let up_to = if self.aggregated == Some(true) { "up to " } else { "" };
        let failed: Vec<(&str, u64, &str)> = self
            .by_id
            .values()
            .map(|(source, shown)| {
                (
                    source.name.as_str(),
                    *shown,
                    source.error.as_deref().unwrap_or_default(),
                )
            })
            .collect();
        warn_failed_sources(
            &failed,
            up_to,
            [one, many],
            &format!("see `flowdex info {}`", index.display()),
        );
    }
}

/// Warns that records come from sources that failed while read: `failed` holds each source's
/// name, how many of the records come from it, and its error; `records` says them in the
/// singular and the plural ("record shown comes"); `rest` where the sources not named are.
pub(super) fn warn_failed_sources(failed: &[(&str, u64, &str)], up_to: &str, records: [&str; 2], rest: &str) {
    for (name, count, error) in failed.iter().take(WARN_SUBJECTS) {
        let records = super::noun(*count, records[0], records[1]);
        eprintln!("flowdex: warning: {up_to}{count} {records} from {name}, which failed while read: {error}");
    }
    if failed.len() > WARN_SUBJECTS {
        eprintln!(
            "flowdex: warning: and records from {} more sources that failed while read; {rest}",
            failed.len() - WARN_SUBJECTS
        );
    }
}

/// Subjects and ranges per subject a warning shows before it counts the rest.
const WARN_SUBJECTS: usize = 5;
const WARN_RANGES: usize = 3;

/// Says on stderr where the search could not see: gaps and SKIPDATA in its window.
fn warn_blind_spots(index: &Index, blind: &BlindSpots, path: &Path) -> anyhow::Result<()> {
    for name in &blind.unknown_interfaces {
        eprintln!("flowdex: warning: {}", unknown_interface(index, name)?);
    }
    if blind.subjects.is_empty() {
        return Ok(());
    }
    let mut subjects: Vec<&Coverage> = blind.subjects.iter().collect();
    // The largest blind time first: that is where a missing record most likely hides.
    let blind_secs = |c: &Coverage| c.ranges.iter().map(|r| r.to - r.from).sum::<u64>();
    subjects.sort_by(|a, b| blind_secs(b).cmp(&blind_secs(a)).then_with(|| a.key.cmp(&b.key)));
    let place = if blind.window.is_some() {
        "inside the searched window"
    } else {
        "in the index (the search had no time window)"
    };
    for c in subjects.iter().take(WARN_SUBJECTS) {
        let shown = &c.ranges[..c.ranges.len().min(WARN_RANGES)];
        let mut parts = Vec::new();
        for (state, what) in [(State::Gap, "no delivery"), (State::SkipData, "SKIPDATA")] {
            let spans: Vec<String> = shown
                .iter()
                .filter(|r| r.state == state)
                .map(|r| span(r.from, r.to))
                .collect();
            if !spans.is_empty() {
                parts.push(format!("{what} {}", spans.join(", ")));
            }
        }
        let mut parts = parts.join(" and ");
        if c.ranges.len() > WARN_RANGES {
            parts.push_str(&format!(" (and {} more ranges)", c.ranges.len() - WARN_RANGES));
        }
        let name = match &c.key.subject {
            Subject::Interface(s) => s.clone(),
            Subject::FlowLog(s) => format!("flow log {s}"),
            Subject::Source(s) => format!("source {s}"),
        };
        eprintln!("flowdex: warning: {name} has {parts} {place}; absence of records there proves nothing");
    }
    if subjects.len() > WARN_SUBJECTS {
        // Named for what the rest hold: a search without a window looks for SKIPDATA alone.
        let rest = &subjects[WARN_SUBJECTS..];
        let what = if rest.iter().flat_map(|c| &c.ranges).any(|r| r.state == State::Gap) {
            "with gaps or SKIPDATA"
        } else {
            "with SKIPDATA"
        };
        eprintln!(
            "flowdex: warning: and {} more {what}; see `flowdex coverage {}`",
            subjects.len() - WARN_SUBJECTS,
            path.display()
        );
    }
    Ok(())
}

/// What to say of an interface a filter names that no record has as its `interface-id`: where
/// else the index holds it (a Transit Gateway's ENI, a next hop), or that it holds it nowhere.
pub fn unknown_interface(index: &Index, name: &str) -> anyhow::Result<String> {
    let others = coverage::other_fields_holding(index, name)?;
    Ok(match others.as_slice() {
        [] => format!("{name} is nowhere in the index; no search can find its traffic"),
        _ => format!(
            "{name} is no record's interface-id; the index holds it as {} (search `{}`)",
            others.iter().map(|f| f.name()).collect::<Vec<_>>().join(", "),
            others
                .iter()
                .map(|f| format!("{} = {name}", f.key()))
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    })
}

/// `2024-04-28T10:05Z..10:20Z`: minutes unless seconds matter, the date once when it repeats.
fn span(from: u64, to: u64) -> String {
    let short = |t: u64| {
        let s = format_rfc3339(t as i64);
        match s.strip_suffix(":00Z") {
            Some(m) => format!("{m}Z"),
            None => s,
        }
    };
    let (a, b) = (short(from), short(to));
    match (a.split_once('T'), b.split_once('T')) {
        (Some((da, _)), Some((db, tb))) if da == db => format!("{a}..{tb}"),
        _ => format!("{a}..{b}"),
    }
}

/// The writer of a search's records: the columns the query chose, or else the fields the index
/// carries, those flowdex does not know included.
fn record_writer<W: Write>(
    out: W,
    index: &Index,
    format: OutputFormat,
    chosen: Option<Vec<Field>>,
    with_source: bool,
) -> RecordWriter<W> {
    let extras = if chosen.is_none() {
        index.extra_fields()
    } else {
        Vec::new()
    };
    let columns = chosen.unwrap_or_else(|| columns_for(format, index.fields()));
    RecordWriter::new(out, format, columns, with_source).with_extra_columns(extras)
}

fn bind(args: &Args) -> Result<query::Bound, QueryError> {
    let parsed = query::parse(&args.query, &query::read_list_file)?;
    let mut bound = query::bind(&parsed, &args.query)?;
    query::bind_time_window(&mut bound, args.from.as_deref(), args.to.as_deref())?;
    Ok(bound)
}
