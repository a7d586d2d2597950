//! `flowdex coverage`: which time ranges of each interface (or flow log) the index has records,
//! only NODATA, SKIPDATA or nothing for. Exit 0, 2 on an error.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};

use flowdex::coverage::{self, Coverage, Options, Report, Subject};
use flowdex::output::TableWriter;
use flowdex::query::{parse_duration, time_range, TIME_FORMS};
use flowdex::read::Index;
use flowdex::time::format_rfc3339;

#[derive(clap::Args)]
pub struct Args {
    /// The index folder.
    index: PathBuf,
    /// Only this interface (repeat for more). Records without an interface-id are then left out.
    #[arg(long, value_name = "ID")]
    eni: Vec<String>,
    /// Window start (RFC 3339, a date, a month or Unix seconds, as for `search`). With a window,
    /// gaps run to its edges; without one, each interface's ranges run from its first to its
    /// last record.
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Window end (a date or month means its end).
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Slot width: 30s, 1m, 5m, 10m, 1h... (5m: one S3 delivery).
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = parse_bin)]
    bin: u64,
    /// table or jsonl (one object per range).
    #[arg(long, default_value = "table", value_name = "FORMAT")]
    format: String,
}

fn parse_bin(text: &str) -> Result<u64, String> {
    parse_duration(text).ok_or_else(|| format!("`{text}` is not a duration like 1m, 5m or 1h"))
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let time = |text: &Option<String>, flag: &str| -> anyhow::Result<Option<(u64, u64)>> {
        text.as_deref()
            .map(|t| time_range(t).with_context(|| format!("{flag} `{t}`: not a time ({TIME_FORMS})")))
            .transpose()
    };
    let (from, to) = (time(&args.from, "--from")?, time(&args.to, "--to")?);
    let window = match (from, to) {
        (None, None) => None,
        // An open end is the index's (see `coverage`).
        (f, t) => Some((f.map_or(0, |r| r.0), t.map_or(u64::MAX, |r| r.1))),
    };
    let json = match args.format.as_str() {
        "table" => false,
        "jsonl" | "json" => true,
        other => bail!("unknown --format `{other}`; use table or jsonl"),
    };
    let index = Index::open(&args.index)?;
    let options = Options {
        window,
        bin: args.bin,
        interfaces: (!args.eni.is_empty()).then(|| args.eni.clone()),
        counts: true,
    };
    let report = coverage::coverage(&index, &options).with_context(|| args.index.display().to_string())?;
    for name in &report.unknown_interfaces {
        eprintln!("flowdex: warning: {}", super::search::unknown_interface(&index, name)?);
    }
    let out = &mut BufWriter::new(io::stdout().lock());
    if json {
        write_jsonl(out, &report)?;
    } else {
        write_table(out, &report)?;
    }
    out.flush()?;
    Ok(0)
}

/// The subject's columns: interface, flow-log id, source; one of them set.
fn subject_columns(c: &Coverage) -> [Option<&str>; 3] {
    match &c.key.subject {
        Subject::Interface(s) => [Some(s), None, None],
        Subject::FlowLog(s) => [None, Some(s), None],
        Subject::Source(s) => [None, None, Some(s)],
    }
}

/// One JSON line: a range, keys in this order.
#[derive(serde::Serialize)]
struct JsonRange<'a> {
    account_id: Option<&'a str>,
    interface_id: Option<&'a str>,
    flow_log_id: Option<&'a str>,
    source: Option<&'a str>,
    from: String,
    to: String,
    state: &'static str,
    records: u64,
}

fn write_jsonl(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    for c in &report.subjects {
        let [interface_id, flow_log_id, source] = subject_columns(c);
        for r in &c.ranges {
            let line = JsonRange {
                account_id: c.key.account_id.as_deref(),
                interface_id,
                flow_log_id,
                source,
                from: format_rfc3339(r.from as i64),
                to: format_rfc3339(r.to as i64),
                state: r.state.as_str(),
                records: r.records,
            };
            serde_json::to_writer(&mut *out, &line)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

/// A time as the search table prints it: UTC, `2024-04-28 10:05:00`.
fn table_time(t: u64) -> String {
    let mut s = format_rfc3339(t as i64).replacen('T', " ", 1);
    s.pop();
    s
}

fn write_table(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    let headers = ["account_id", "interface_or_log", "from", "to", "state", "records"];
    let mut table = TableWriter::new(headers.iter().map(|h| (*h).to_owned()).collect());
    for c in &report.subjects {
        let [interface, flow_log, source] = subject_columns(c);
        let subject = match (interface, flow_log, source) {
            (Some(i), _, _) => i.to_owned(),
            (_, Some(f), _) => format!("flow log {f}"),
            (_, _, s) => format!("source {}", s.unwrap_or_default()),
        };
        for r in &c.ranges {
            table.row(
                out,
                vec![
                    c.key.account_id.clone().unwrap_or_else(|| "-".to_owned()),
                    subject.clone(),
                    table_time(r.from),
                    table_time(r.to),
                    r.state.as_str().to_owned(),
                    r.records.to_string(),
                ],
            )?;
        }
    }
    table.finish(out)?;
    if let Some((lo, hi)) = report.window {
        writeln!(
            out,
            "window {} .. {} UTC, slots of {} s; `to` is exclusive",
            table_time(lo),
            table_time(hi + 1),
            report.bin
        )?;
    }
    Ok(())
}
