//! `flowdex verify`: walk every checksum and invariant of an index; with `--sources`, also
//! re-read its source files and re-hash them. Exit 0 when all is sound, 1 when sources are
//! missing, changed or extra, 2 when the index itself is damaged.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use flowdex::read::{Index, IndexError};
use flowdex::recheck::{self, SourceState};

#[derive(clap::Args)]
pub struct Args {
    /// The index folder.
    index: PathBuf,
    /// Also check the source files: at their recorded paths (no value), or found by content
    /// under these folders (then files the index lacks are reported as extra).
    #[arg(long, value_name = "DIR", num_args = 0..)]
    sources: Option<Vec<PathBuf>>,
}

/// Damage as `verify` reports it: without the advice, meant for other commands, to run it.
fn damage(error: IndexError) -> anyhow::Error {
    match error {
        IndexError::Corrupt { path, corrupt } => {
            anyhow::anyhow!(
                "{}: damaged: {corrupt}; rebuild the index from its sources",
                path.display()
            )
        }
        error => error.into(),
    }
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let index = Index::open(&args.index).map_err(damage)?;
    index.verify().map_err(damage)?;
    let m = index.manifest();
    let out = &mut BufWriter::new(io::stdout().lock());
    writeln!(
        out,
        "{}: sound: {}, {}, {}",
        args.index.display(),
        super::counted(m.segments.len() as u64, "segment", "segments"),
        super::counted(m.records(), "record", "records"),
        super::counted(m.source_count, "source", "sources")
    )?;
    let Some(dirs) = &args.sources else {
        out.flush()?;
        return Ok(0);
    };
    let check = recheck::check_sources(index.sources()?, dirs, Some(&args.index));
    let mut counts = [0usize; 4];
    // Sources found elsewhere than their indexed path (a copy of the evidence under
    // --sources) are counted, not listed: listed, a moved corpus buries the problems.
    let mut moved = 0;
    for (source, state) in &check.sources {
        let (slot, line) = match state {
            SourceState::Intact { moved: false, .. } => (0, None),
            SourceState::Intact { moved: true, .. } => {
                moved += 1;
                (0, None)
            }
            SourceState::Changed { at, sha256 } => (
                1,
                Some(format!("CHANGED at {at}: SHA-256 {sha256}, indexed {}", source.sha256)),
            ),
            SourceState::Missing => (2, Some("MISSING".to_owned())),
            SourceState::Unreadable { at, why } => (3, Some(format!("UNREADABLE at {at}: {why}"))),
        };
        counts[slot] += 1;
        if let Some(line) = line {
            writeln!(out, "{}: {line}", source.name)?;
        }
    }
    for (name, sha256) in &check.extra {
        writeln!(out, "{name}: EXTRA: not in the index (SHA-256 {sha256})")?;
    }
    let elsewhere = if moved > 0 {
        format!(" ({moved} of them under --sources, not at their indexed path)")
    } else {
        String::new()
    };
    writeln!(
        out,
        "sources: {} intact{elsewhere}, {} changed, {} missing, {} unreadable, {} extra",
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        check.extra.len()
    )?;
    out.flush()?;
    Ok(if check.all_intact() { 0 } else { 1 })
}
