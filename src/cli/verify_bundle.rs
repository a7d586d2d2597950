//! `flowdex verify-bundle`: check every file of an evidence bundle (folder or tar) against its
//! `SHA256SUMS`; exit 0 when intact, 1 when a file is changed, missing, extra or unsafe (each
//! named on stdout), 2 when the bundle cannot be read or its `SHA256SUMS` is malformed.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The bundle: a folder or a `.tar` written by `flowdex export`.
    bundle: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let v = flowdex::export::verify(&args.bundle)?;
    let out = &mut BufWriter::new(io::stdout().lock());
    let path = args.bundle.display();
    for problem in &v.problems {
        writeln!(out, "{path}: {problem}")?;
    }
    if v.is_intact() {
        writeln!(
            out,
            "{path}: intact: the {} files {} lists match it ({} is not listed); its SHA-256: {}",
            v.intact.len(),
            flowdex::export::SUMS_FILE,
            flowdex::export::CREATED_FILE,
            v.fingerprint
        )?;
    } else {
        writeln!(
            out,
            "{path}: NOT intact: {}, {} match {} (SHA-256 {})",
            super::counted(v.problems.len() as u64, "problem", "problems"),
            super::counted(v.intact.len() as u64, "file", "files"),
            flowdex::export::SUMS_FILE,
            v.fingerprint
        )?;
    }
    out.flush()?;
    Ok(if v.is_intact() { 0 } else { 1 })
}
