//! `flowdex seen`: for each value (address, CIDR, port, ENI or other AWS id, or `@file` of
//! them), whether the index holds it, how often, as source and destination, first and last
//! seen — from dictionaries and postings alone. Exit 0 when some value was seen, 1 when none
//! was, 2 on an error.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;

use flowdex::output::TableWriter;
use flowdex::query::{list_entries, no_values_in, read_list_file};
use flowdex::read::Index;
use flowdex::seen::{self, Lookup, Seen};
use flowdex::time::format_rfc3339;

#[derive(clap::Args)]
pub struct Args {
    /// The index folder.
    index: PathBuf,
    /// Values to look up, or `@FILE` (one per line, `#` comments).
    #[arg(required = true, value_name = "VALUE")]
    values: Vec<String>,
    /// Output format: table or jsonl. Default: table on a terminal, jsonl otherwise.
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let table = match args.format.as_deref() {
        Some("table") => true,
        Some("jsonl" | "json") => false,
        Some(other) => anyhow::bail!("unknown --format `{other}`; use table or jsonl"),
        None => io::stdout().is_terminal(),
    };
    // As in a search: a list's bad value is named by its file and line, and a list of no
    // values is refused, not answered with nothing.
    let (mut values, mut lookups) = (Vec::new(), Vec::new());
    for v in &args.values {
        match v.strip_prefix('@') {
            Some(path) => {
                let text = read_list_file(path).with_context(|| format!("cannot read the list `{path}`"))?;
                let before = values.len();
                for (line, value) in list_entries(&text) {
                    lookups.push(Lookup::parse(value).with_context(|| format!("{path} line {line}"))?);
                    values.push(value.to_owned());
                }
                if values.len() == before {
                    anyhow::bail!(no_values_in(path));
                }
            }
            None => {
                lookups.push(Lookup::parse(v)?);
                values.push(v.clone());
            }
        }
    }
    let index = Index::open(&args.index)?;
    let found = seen::seen(&index, &lookups)?;
    let out = &mut BufWriter::new(io::stdout().lock());
    let time = |t: Option<u64>| t.map(|t| format_rfc3339(t as i64));
    if table {
        let headers = ["value", "records", "as_src", "as_dst", "first_seen", "last_seen"];
        let mut t = TableWriter::new(headers.iter().map(|h| (*h).to_owned()).collect());
        let count = |n: Option<u64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
        for (value, s) in values.iter().zip(&found) {
            t.row(
                out,
                vec![
                    value.clone(),
                    s.records.to_string(),
                    count(s.as_src),
                    count(s.as_dst),
                    time(s.first_seen).unwrap_or_else(|| "-".into()),
                    time(s.last_seen).unwrap_or_else(|| "-".into()),
                ],
            )?;
        }
        t.finish(out)?;
    } else {
        for (value, s) in values.iter().zip(&found) {
            let Seen {
                records,
                as_src,
                as_dst,
                first_seen,
                last_seen,
            } = s;
            let entry = serde_json::json!({
                "value": value,
                "seen": *records > 0,
                "records": records,
                "as_src": as_src,
                "as_dst": as_dst,
                "first_seen": time(*first_seen),
                "last_seen": time(*last_seen),
            });
            writeln!(out, "{entry}")?;
        }
    }
    out.flush()?;
    Ok(if found.iter().any(|s| s.records > 0) { 0 } else { 1 })
}
