//! A tantivy index of a flow-log corpus, as the second peer of `benches/search.rs`: the same
//! records as flowdex's index, read with flowdex's own input readers, so that the two answer the
//! same questions over the same data.
//!
//!     tantivy-peer build CORPUS_DIR INDEX_DIR
//!     tantivy-peer query INDEX_DIR QUERIES_FILE RUNS
//!
//! `build` indexes every record (see [`build`]) and prints its time, rate and size on disk.
//! `query` runs each query of a JSON file (see [`query::Spec`]) in-process and warm, and prints
//! one line per query: `MEDIAN s  ROWS rows  MATCHED matched  NAME`.
//!
//! A crate of its own, outside flowdex's package and workspace, so that flowdex's `cargo build`
//! and `cargo test` never compile tantivy.

mod build;
mod query;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str =
    "usage: tantivy-peer build CORPUS_DIR INDEX_DIR\n       tantivy-peer query INDEX_DIR QUERIES_FILE RUNS";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["build", corpus, index] => build::build(&PathBuf::from(corpus), &PathBuf::from(index)),
        ["query", index, queries, runs] => match runs.parse::<usize>() {
            Ok(runs) if runs > 0 => query::run(&PathBuf::from(index), &PathBuf::from(queries), runs),
            _ => Err(anyhow::anyhow!("RUNS must be a positive number, not `{runs}`")),
        },
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tantivy-peer: {e:#}");
            ExitCode::from(2)
        }
    }
}
