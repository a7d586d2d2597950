//! `flowdex info`: what an index holds, as text or JSON.

use std::io::Write;
use std::path::PathBuf;

use flowdex::format::SectionKind;
use flowdex::output::human_bytes;
use flowdex::read::Index;

#[derive(clap::Args)]
pub struct Args {
    /// The index folder.
    index: PathBuf,
    /// text or json.
    #[arg(long, default_value = "text", value_name = "FORMAT")]
    format: String,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let index = Index::open(&args.index)?;
    let m = index.manifest();
    let mut sections: Vec<(SectionKind, u64)> = Vec::new();
    for seg in index.segments() {
        for (kind, n) in seg.section_sizes() {
            match sections.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, total)) => *total += n,
                None => sections.push((kind, n)),
            }
        }
    }
    sections.sort();
    let size: u64 = m.segments.iter().map(|s| s.size).sum();
    let file_size = |name: &str| std::fs::metadata(args.index.join(name)).map(|m| m.len());
    let manifest_size = file_size(flowdex::read::MANIFEST_FILE)?;
    let sources_size = m.sources_file.as_deref().map(file_size).transpose()?.unwrap_or(0);
    let sources = index.sources()?;
    let rejected = m.rejected_lines;
    let min = m.segments.iter().filter_map(|s| s.min_start).min();
    let max = m.segments.iter().filter_map(|s| s.max_end).max();
    let rfc = |t: Option<u64>| t.map(|t| flowdex::time::format_rfc3339(t as i64));
    let out = &mut std::io::stdout().lock();
    match args.format.as_str() {
        "json" => {
            let info = serde_json::json!({
                "format_version": m.format_version,
                "generation": m.generation,
                "records": m.records(),
                "rejected": rejected,
                "segments": m.segments,
                "time_range": { "min": min, "max": max, "min_rfc3339": rfc(min), "max_rfc3339": rfc(max) },
                "size_bytes": size + manifest_size + sources_size,
                "size_by_section": sections.iter().map(|(k, n)| (k.name(), *n)).collect::<std::collections::BTreeMap<_, _>>(),
                // `path` is the source's name, as `_source` gives it (`bundle!entry` inside a
                // bundle); `file` and `entry` say where it was read.
                "sources": sources.iter().map(|s| serde_json::json!({
                    "id": s.id, "path": s.name, "file": s.path, "entry": s.entry, "sha256": s.sha256,
                    "size": s.size, "form": s.form, "gzip": s.gzip,
                    "records": s.records, "rejected": s.rejected, "lines": s.lines, "headers": s.headers,
                    "blank_lines": s.blank_lines, "s3": s.s3, "error": s.error,
                    "rejects": s.rejects.iter().map(|r| serde_json::json!({ "line": r.line, "reason": r.reason })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&info)?)?;
        }
        "text" => {
            writeln!(out, "index          {}", args.index.display())?;
            writeln!(out, "format version {}", m.format_version)?;
            writeln!(out, "generation     {}", m.generation)?;
            writeln!(out, "records        {}", m.records())?;
            writeln!(out, "rejected lines {rejected}")?;
            writeln!(out, "sources        {}", m.source_count)?;
            writeln!(out, "segments       {}", m.segments.len())?;
            writeln!(
                out,
                "time range     {} .. {}",
                rfc(min).unwrap_or_else(|| "-".into()),
                rfc(max).unwrap_or_else(|| "-".into())
            )?;
            writeln!(
                out,
                "size           {} ({} bytes)",
                human_bytes(size + manifest_size + sources_size),
                size + manifest_size + sources_size
            )?;
            for (kind, n) in &sections {
                writeln!(
                    out,
                    "  {:<13}{:>12} bytes  {:>5.1}%",
                    kind.name(),
                    n,
                    *n as f64 * 100.0 / size.max(1) as f64
                )?;
            }
            writeln!(out, "  {:<13}{:>12} bytes", "manifest", manifest_size)?;
            writeln!(out, "  {:<13}{:>12} bytes", "sources", sources_size)?;
            writeln!(out, "sources:")?;
            for s in sources {
                let problem = s.error.as_deref().map(|e| format!("  ERROR: {e}")).unwrap_or_default();
                writeln!(
                    out,
                    "  {}  {:>9} records {:>5} rejected  {}{problem}",
                    short(&s.sha256),
                    s.records,
                    s.rejected,
                    s.name
                )?;
            }
        }
        other => anyhow::bail!("unknown --format `{other}`; use text or json"),
    }
    Ok(0)
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or("(unread)    ")
}
