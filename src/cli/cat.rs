//! `flowdex cat`: read inputs, print the parsed records, summarise sources and rejects on stderr.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;

use flowdex::input::{self, Rejection, SourceMeta, SourceReport, Totals};
use flowdex::output::{OutputFormat, RecordWriter, SourceRef};
use flowdex::record::{Field, FlowRecord};

use super::ReadArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    read: ReadArgs,
    /// Output format: jsonl, csv or table. Default: table on a terminal, jsonl otherwise.
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// Add `_source` (path, or bundle!entry) and `_line` to each record.
    #[arg(long)]
    with_source: bool,
    /// Columns for csv and table output, comma-separated field names.
    #[arg(long, value_delimiter = ',', value_name = "FIELDS")]
    fields: Vec<String>,
    /// Write every rejected line (source, line, reason, text) as JSON lines to this new file (an
    /// existing one is refused); a line that is not UTF-8 also has its bytes in base64.
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// Print no summary on stderr.
    #[arg(long, short)]
    quiet: bool,
}

/// Rejected lines listed on stderr; the rest are counted (and all go to `--rejects`).
const REJECTS_SHOWN: usize = 20;

pub fn run(args: Args) -> anyhow::Result<i32> {
    args.read.refuse_missing("nothing was read")?;
    let options = args.read.options()?;
    let format = match &args.format {
        Some(name) => OutputFormat::parse(name)
            .with_context(|| format!("unknown --format `{name}`; use jsonl, csv, table or raw"))?,
        None if io::stdout().is_terminal() => OutputFormat::Table,
        None => OutputFormat::Jsonl,
    };
    let columns = args
        .fields
        .iter()
        .map(|name| {
            Field::lookup(name).with_context(|| {
                let names = Field::ALL.iter().map(|f| f.key());
                match flowdex::record::nearest_name(name, names) {
                    Some(field) => format!("--fields: unknown field `{name}`; did you mean `{field}`?"),
                    None => format!("--fields: unknown field `{name}`"),
                }
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // A new file only: `--rejects` naming an input (or other evidence) must not erase it.
    let rejects = match &args.rejects {
        Some(path) => Some(BufWriter::new(File::create_new(path).map_err(|e| {
            // A link to nowhere exists too: `create_new` refuses to follow it.
            if e.kind() == io::ErrorKind::AlreadyExists {
                anyhow::anyhow!(
                    "{}: already exists; give --rejects a new file (flowdex never replaces one)",
                    path.display()
                )
            } else {
                anyhow::Error::new(e).context(format!("{}: cannot create the rejects file", path.display()))
            }
        })?)),
        None => None,
    };
    let stdout = io::stdout().lock();
    let mut sink = CatSink {
        writer: RecordWriter::new(
            BufWriter::with_capacity(1 << 16, stdout),
            format,
            columns,
            args.with_source,
        ),
        names: Vec::new(),
        totals: Totals::default(),
        problems: Vec::new(),
        shown_rejects: 0,
        rejects,
        error: None,
    };
    for file in input::discover(&args.read.inputs) {
        input::read_input(&file, &options, &mut sink);
        if let Some(e) = sink.error.take() {
            return Err(e.into());
        }
    }
    let CatSink {
        writer,
        totals,
        problems,
        mut rejects,
        ..
    } = sink;
    writer.finish()?;
    if let Some(r) = rejects.as_mut() {
        r.flush()?;
    }
    if !args.quiet {
        let stderr = &mut io::stderr().lock();
        for p in &problems {
            writeln!(stderr, "flowdex: {p}")?;
        }
        let more = totals.rejected.saturating_sub(REJECTS_SHOWN as u64);
        if more > 0 {
            writeln!(
                stderr,
                "flowdex: ... and {more} more rejected lines (list them all with --rejects FILE)"
            )?;
        }
        writeln!(
            stderr,
            "flowdex: {} sources ({} failed), {} lines: {} headers, {} records, {} rejected; {} blank lines",
            totals.sources,
            totals.failed_sources,
            totals.lines,
            totals.headers,
            totals.records,
            totals.rejected,
            totals.blank_lines
        )?;
    }
    Ok(if totals.rejected > 0 || totals.failed_sources > 0 {
        1
    } else {
        0
    })
}

struct CatSink<W: Write> {
    writer: RecordWriter<W>,
    names: Vec<String>,
    totals: Totals,
    problems: Vec<String>,
    shown_rejects: usize,
    rejects: Option<BufWriter<File>>,
    /// The first output error; reading stops at the next input file.
    error: Option<io::Error>,
}

impl<W: Write> input::RecordSink for CatSink<W> {
    fn begin_source(&mut self, meta: &SourceMeta) -> u32 {
        self.names.push(meta.name.clone());
        (self.names.len() - 1) as u32
    }

    fn record(&mut self, record: &FlowRecord, raw: &[u8], _format: &flowdex::input::LogFormat) {
        if self.error.is_some() {
            return;
        }
        let p = record.provenance;
        let source = SourceRef {
            name: &self.names[p.source as usize],
            line: p.line,
        };
        if let Err(e) = self.writer.write(record, Some(raw), Some(source)) {
            self.error = Some(e);
        }
    }

    fn reject(&mut self, r: &Rejection<'_>) {
        let name = &self.names[r.source as usize];
        if self.shown_rejects < REJECTS_SHOWN {
            self.shown_rejects += 1;
            self.problems.push(format!("{name}:{}: rejected: {}", r.line, r.reason));
        }
        if let Some(out) = self.rejects.as_mut() {
            let mut entry = serde_json::json!({
                "_source": name,
                "_line": r.line,
                "reason": r.reason.to_string(),
                "text": String::from_utf8_lossy(r.raw),
            });
            // The text shows U+FFFD for bytes that are not UTF-8: the bytes themselves are
            // evidence, kept beside it.
            if std::str::from_utf8(r.raw).is_err() {
                use base64::Engine;
                entry["bytes_base64"] = base64::engine::general_purpose::STANDARD.encode(r.raw).into();
            }
            if let Err(e) = writeln!(out, "{entry}") {
                self.error.get_or_insert(e);
            }
        }
    }

    fn end_source(&mut self, report: SourceReport) {
        if let Some(e) = &report.error {
            self.problems.push(format!("{}: {e}", report.meta.name));
        }
        if let Some(notice) = report.notice() {
            self.problems.push(format!("warning: {}: {notice}", report.meta.name));
        }
        self.totals.add(&report);
    }
}
