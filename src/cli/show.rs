//! `flowdex show`: the original lines behind record references (`SOURCE:LINE`, as `search
//! --with-source` prints them), read again from the source when it is still at its recorded path
//! and checked against the SHA-256 the index recorded; from the index when it is not.
//!
//! Exit 0 when every line came from an intact source, 1 when some source is missing or changed
//! (its lines are then printed from the index) or a reference holds no record (a header line,
//! a line past the end, a rejected line, shown with its reason), 2 on an error (unknown
//! reference).

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;

use flowdex::read::Index;
use flowdex::recheck::{self, LineRef, SourceState};

#[derive(clap::Args)]
pub struct Args {
    /// The index folder.
    index: PathBuf,
    /// Record references: `SOURCE:LINE` (the `_source` and `_line` of `search --with-source`).
    #[arg(required = true, value_name = "REF")]
    refs: Vec<String>,
    /// Output format: text, or jsonl (one object per line).
    #[arg(long, default_value = "text", value_name = "FORMAT")]
    format: String,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let jsonl = match args.format.as_str() {
        "text" => false,
        "jsonl" | "json" => true,
        other => anyhow::bail!("unknown --format `{other}`; use text or jsonl"),
    };
    let refs = args
        .refs
        .iter()
        .map(|r| {
            LineRef::parse(r).with_context(|| {
                if r.ends_with(":0") {
                    format!("`{r}`: lines are numbered from 1")
                } else {
                    format!("`{r}` is not a reference; write SOURCE:LINE")
                }
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let index = Index::open(&args.index)?;
    let shown = recheck::show(&index, &refs)?;
    let out = &mut BufWriter::new(io::stdout().lock());
    let (mut all_intact, mut all_found) = (true, true);
    for s in &shown {
        all_intact &= s.state.is_intact();
        if !jsonl {
            writeln!(out, "== {}", s.source.name)?;
            writeln!(out, "   {}", describe(&s.state, &s.source.sha256, &s.source.path))?;
        }
        for shown in &s.lines {
            let (line, indexed, on_disk) = (shown.line, &shown.indexed, &shown.on_disk);
            // The file's bytes are the evidence when they still hash as indexed; otherwise
            // the index's copy is.
            let (text, from) = match (&s.state, on_disk, indexed) {
                (SourceState::Intact { .. }, Some(l), _) => (Some(l), "source"),
                (_, _, Some(l)) => (Some(l), "index"),
                _ => (None, "none"),
            };
            // A line of the file that is no record of the index is shown as such: it must not
            // pass for indexed evidence.
            let no_record = shown.no_record_reason(s.source, &s.state);
            all_found &= indexed.is_some();
            if jsonl {
                let entry = serde_json::json!({
                    "_source": s.source.name,
                    "_line": line,
                    "text": text.map(|t| String::from_utf8_lossy(t)),
                    "from": from,
                    "record": indexed.is_some(),
                    "rejected": shown.rejected_reason(s.source),
                    "no_record": no_record,
                    "source_state": s.state.as_str(),
                    "sha256_indexed": s.source.sha256,
                    "sha256_now": match &s.state {
                        SourceState::Intact { .. } => Some(&s.source.sha256),
                        SourceState::Changed { sha256, .. } => Some(sha256),
                        _ => None,
                    },
                    "file_line_differs": matches!((indexed, on_disk), (Some(a), Some(b)) if a != b),
                });
                writeln!(out, "{entry}")?;
                continue;
            }
            match (text, no_record) {
                (Some(t), None) => {
                    write!(out, "{line}:")?;
                    out.write_all(t)?;
                    writeln!(out)?;
                }
                (text, why) => {
                    let why = why.unwrap_or_default();
                    write!(out, "{line}: (no record: {why})")?;
                    if let Some(t) = text {
                        out.write_all(b" ")?;
                        out.write_all(t)?;
                    }
                    writeln!(out)?;
                }
            }
            if let (Some(a), Some(b)) = (indexed, on_disk) {
                if a != b {
                    write!(out, "{line}: now in the file: ")?;
                    out.write_all(b)?;
                    writeln!(out)?;
                }
            }
        }
    }
    out.flush()?;
    Ok(if all_intact && all_found { 0 } else { 1 })
}

fn describe(state: &SourceState, indexed_sha: &str, path: &str) -> String {
    match state {
        SourceState::Intact { at, .. } => {
            format!("source file {at}: SHA-256 {indexed_sha} matches the index; lines read from the file")
        }
        SourceState::Changed { at, sha256 } => format!(
            "source file {at} CHANGED since it was indexed (SHA-256 now {sha256}, indexed {indexed_sha}); \
             lines below are the index's copy"
        ),
        SourceState::Missing => format!("source file {path} not found; lines rebuilt from the index"),
        SourceState::Unreadable { at, why } => {
            format!("source file {at} cannot be read ({why}); lines rebuilt from the index")
        }
    }
}
