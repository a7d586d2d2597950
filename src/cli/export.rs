//! `flowdex export`: write the records a query matches as an evidence bundle (a folder, or a
//! tar when the output ends in `.tar`); exit 0 when something matched, 1 when nothing did (the
//! bundle is still written: it documents the empty answer), 2 on an error.

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use flowdex::export::{self, ExportError, Request};
use flowdex::query::{self, QueryError};
use flowdex::read::Index;

#[derive(clap::Args)]
pub struct Args {
    /// The index folder.
    index: PathBuf,
    /// The query, as for `flowdex search`; it must print records (no `stats`).
    query: String,
    /// Where to write the bundle: a new folder, or a `.tar` file. Never replaces anything.
    #[arg(long, value_name = "DIR|FILE.tar")]
    output: PathBuf,
    /// A note for the report (case number, analyst, why), kept in manifest.json.
    #[arg(long, value_name = "TEXT")]
    note: Option<String>,
    /// Only records whose [start, end] overlaps the window from this time (RFC 3339, a date, a
    /// month or Unix seconds).
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// ... to this time.
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Memory for the matching records (e.g. 512M, 2G); a query needing more fails clearly.
    #[arg(long, default_value = "1600M", value_parser = super::parse_size, value_name = "SIZE")]
    memory: usize,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let read = RefCell::new(Vec::new());
    let bound = match bind(&args, &read) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("flowdex: {e}");
            return Ok(2);
        }
    };
    let index = Index::open(&args.index)?;
    // Inside the index folder, a bundle under a name the index uses would be taken by the next
    // build for an interrupted build's leftover; and evidence belongs beside the index.
    let folder = |p: &std::path::Path| p.canonicalize().ok();
    let parent = args.output.parent().map(|p| {
        if p.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            p
        }
    });
    if let (Some(index_dir), Some(parent)) = (folder(&args.index), parent.and_then(folder)) {
        if parent.starts_with(&index_dir) {
            anyhow::bail!(
                "{}: inside the index folder {}; write the bundle outside it",
                args.output.display(),
                args.index.display()
            );
        }
    }
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let query_files = read.into_inner();
    let request = Request {
        query: &args.query,
        from: args.from.as_deref(),
        memory: args.memory,
        to: args.to.as_deref(),
        note: args.note.as_deref(),
        query_files: &query_files,
        created,
    };
    let bundle = match export::export(&index, &bound, &request) {
        Ok(b) => b,
        Err(e @ ExportError::Aggregate) => {
            eprintln!("flowdex: {e}");
            return Ok(2);
        }
        Err(e) => return Err(e.into()),
    };
    bundle.write(&args.output)?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&bundle.file("manifest.json").expect("every bundle has a manifest").bytes)?;
    let records = manifest["counts"]["records"].as_u64().unwrap_or(0);
    // As `search` does: records of a source that failed while read may be corrupt, and the
    // responder must hear it where the records are used.
    let failed: Vec<(&str, u64, &str)> = manifest["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let error = s["error"].as_str()?;
            Some((
                s["name"].as_str().unwrap_or_default(),
                s["records_matched"].as_u64().unwrap_or(0),
                error,
            ))
        })
        .collect();
    super::search::warn_failed_sources(
        &failed,
        "",
        ["exported record comes", "exported records come"],
        "manifest.json names them",
    );
    eprintln!(
        "flowdex: wrote {}: {records} records from {} sources; {} files, {} and {} (which it does not list); \
         SHA-256 of {}: {}",
        args.output.display(),
        manifest["counts"]["sources"],
        bundle.listed_files(),
        export::SUMS_FILE,
        export::CREATED_FILE,
        export::SUMS_FILE,
        bundle.fingerprint()
    );
    Ok(if records == 0 { 1 } else { 0 })
}

/// Binds the query as `search` does, keeping each `@file` list it reads for the bundle.
fn bind(args: &Args, read: &RefCell<Vec<(String, String)>>) -> Result<query::Bound, QueryError> {
    let read_file = |path: &str| {
        let text = query::read_list_file(path)?;
        read.borrow_mut().push((path.to_owned(), text.clone()));
        Ok(text)
    };
    let parsed = query::parse(&args.query, &read_file)?;
    let mut bound = query::bind(&parsed, &args.query)?;
    query::bind_time_window(&mut bound, args.from.as_deref(), args.to.as_deref())?;
    Ok(bound)
}
