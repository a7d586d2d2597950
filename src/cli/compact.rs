//! `flowdex compact`: merge an index's segments into as few as the memory budget allows.

use std::path::PathBuf;

use flowdex::build::IndexWriter;

#[derive(clap::Args)]
pub struct Args {
    /// The index folder.
    index: PathBuf,
    /// Memory for records held before they are written as a segment (e.g. 512M, 2G).
    #[arg(long, default_value = "512M", value_parser = super::parse_size, value_name = "SIZE")]
    memory: usize,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    // Segments of an older format version are rewritten in this one: compacting is how an
    // index is brought up to date.
    let index = flowdex::read::Index::open(&args.index)?;
    let current = index
        .segments()
        .iter()
        .all(|s| s.format_version() == flowdex::format::FORMAT_VERSION);
    let mut writer = IndexWriter::open(&args.index, args.memory)?;
    let before = writer.manifest().segments.len();
    // Nothing to merge: the index stays as it is, and so does its manifest's SHA-256, which
    // evidence bundles cite as the index's id. Damage is still refused, as a merge refuses it:
    // "nothing to merge" must not read as "sound".
    if before <= 1 && current {
        for segment in index.segments() {
            segment.check_sections()?;
        }
        eprintln!(
            "flowdex: {}: {}; nothing to merge",
            args.index.display(),
            super::counted(before as u64, "segment", "segments")
        );
        return Ok(0);
    }
    writer.compact()?;
    writer.publish()?;
    let after = flowdex::read::read_manifest(&args.index)?.segments.len();
    if before == 1 {
        eprintln!(
            "flowdex: {}: 1 segment rewritten in format version {}",
            args.index.display(),
            flowdex::format::FORMAT_VERSION
        );
    } else {
        eprintln!(
            "flowdex: {}: {before} segments merged into {after}",
            args.index.display()
        );
    }
    Ok(0)
}
