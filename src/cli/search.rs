//! `flowdex search`: run a query against an index; exit 0 when something matched, 1 when
//! nothing did, 2 on an error.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;

use flowdex::output::{write_rows, OutputFormat, RecordWriter, SourceRef};
use flowdex::query::{self, QueryError};
use flowdex::read::Index;
use flowdex::search::{self, Answer};

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
    let index = Index::open(&args.index)?;
    let format = match &args.format {
        Some(name) => OutputFormat::parse(name)
            .with_context(|| format!("unknown --format `{name}`; use table, jsonl, csv or raw"))?,
        None if io::stdout().is_terminal() => OutputFormat::Table,
        None => OutputFormat::Jsonl,
    };
    let out = &mut BufWriter::new(io::stdout().lock());
    if args.explain {
        let plans = flowdex::exec::explain(&index, &bound.filter)?;
        writeln!(out, "filter: {:?}", bound.filter)?;
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
        out.flush()?;
        return Ok(0);
    }
    if format == OutputFormat::Raw && bound.stats.is_some() {
        eprintln!(
            "flowdex: --format raw prints records, and this query's answer is aggregate rows; use table, jsonl or csv"
        );
        return Ok(2);
    }
    let answer = search::run(&index, &bound)?;
    let empty = answer.is_empty();
    match answer {
        Answer::Records { hits, fields } => {
            let lines = if format == OutputFormat::Raw {
                let at: Vec<_> = hits.iter().map(|h| h.at).collect();
                index.read_lines(&at)?.into_iter().map(|l| l.line).collect()
            } else {
                Vec::new()
            };
            let mut w = RecordWriter::new(&mut *out, format, fields.unwrap_or_default(), args.with_source);
            for (i, h) in hits.iter().enumerate() {
                w.write(
                    &h.record,
                    lines.get(i).map(Vec::as_slice),
                    Some(SourceRef {
                        name: &h.source,
                        line: h.record.provenance.line,
                    }),
                )?;
            }
            w.finish()?;
        }
        Answer::Rows(rows) => write_rows(out, format, &rows)?,
    }
    out.flush()?;
    Ok(if empty { 1 } else { 0 })
}

fn bind(args: &Args) -> Result<query::Bound, QueryError> {
    let read_file = |path: &str| std::fs::read_to_string(path);
    let parsed = query::parse(&args.query, &read_file)?;
    let mut bound = query::bind(&parsed, &args.query)?;
    query::bind_time_window(&mut bound, args.from.as_deref(), args.to.as_deref())?;
    Ok(bound)
}
