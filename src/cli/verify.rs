//! `flowdex verify`: walk every checksum and invariant of an index.

use std::io::Write;
use std::path::PathBuf;

use flowdex::read::Index;

#[derive(clap::Args)]
pub struct Args {
    /// The index folder.
    index: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let index = Index::open(&args.index)?;
    index.verify()?;
    let m = index.manifest();
    writeln!(
        std::io::stdout(),
        "{}: sound: {} segments, {} records, {} sources",
        args.index.display(),
        m.segments.len(),
        m.records(),
        m.sources.len()
    )?;
    Ok(0)
}
