//! `flowdex build`: read inputs in parallel into an index folder, atomically.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use flowdex::build::{IndexWriter, SUMMARY_LISTS};
use flowdex::input::{self, InputFile, Survey};
use flowdex::output::human_bytes;
use rayon::prelude::*;

use super::{counted, noun, ReadArgs};

#[derive(clap::Args)]
pub struct Args {
    /// The index folder (created if missing; sources already in it are skipped).
    #[arg(long, short, value_name = "IDX")]
    output: PathBuf,
    #[command(flatten)]
    read: ReadArgs,
    /// Memory for the records being built into segments (e.g. 512M, 2G); a quarter of it is one
    /// segment's worth.
    #[arg(long, default_value = "512M", value_parser = super::parse_size, value_name = "SIZE")]
    memory: usize,
    /// Reading threads (default: one per core, at most 4). The index is the same for any number.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// After adding, merge all segments into as few as the memory budget allows.
    #[arg(long)]
    compact: bool,
    /// Print no progress and no summary.
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let started = Instant::now();
    let options = args.read.options()?;
    let threads = args.threads.unwrap_or_else(rayon::current_num_threads).max(1);
    // A failed source stays recorded in the index: a missing one is refused before anything
    // is built.
    args.read.refuse_missing("nothing was built")?;
    let mut writer = IndexWriter::open(&args.output, args.memory)?;
    let mut files = input::discover_outside(&args.read.inputs, Some(&args.output));
    input::sort_for_build(&mut files);
    // One read of each file before any is parsed: its hash, to leave out what the index holds
    // or another input repeats, and its sizes, to plan and show the work.
    let surveyed: Vec<(InputFile, Survey)> = files
        .into_par_iter()
        .map(|file| {
            let survey = input::survey(&file);
            (file, survey)
        })
        .collect();
    let files = writer.drop_known(
        surveyed,
        |(_, survey)| survey.sha256.clone(),
        |(file, _)| file.name.clone(),
    );
    let total_bytes: u64 = files.iter().map(|(_, survey)| survey.size).sum();
    let progress = progress_bar(total_bytes, args.quiet);
    let records = AtomicU64::new(0);

    let read = |(file, _): &(InputFile, Survey), worker: &mut flowdex::build::Worker<'_>| {
        let mut sink = Counting {
            inner: worker,
            records: &records,
        };
        input::read_input(file, &options, &mut sink);
    };
    let done = |(_, survey): &(InputFile, Survey)| {
        progress.inc(survey.size);
        let n = records.load(Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        progress.set_message(format!("{n} records, {:.2} M records/s", n as f64 / secs / 1e6));
    };
    let result = writer.add_parallel(&files, threads, |(_, survey)| survey.decoded_size, read, done);
    progress.finish_and_clear();
    result?;
    if args.compact {
        writer.compact()?;
    }
    let summary = writer.publish()?;
    if !args.quiet {
        let index = flowdex::read::read_manifest(&args.output)?;
        let size: u64 = index.segments.iter().map(|s| s.size).sum();
        let secs = started.elapsed().as_secs_f64();
        let info = format!("`flowdex info {} --format json`", args.output.display());
        print_listed(
            &summary.first_failures,
            summary.failed_sources,
            ["failed source", "failed sources"],
            &format!("{info} gives each one's error"),
        );
        print_listed(
            &summary.first_rejects,
            summary.rejected_added,
            ["rejected line", "rejected lines"],
            &format!("{info} lists them (up to 100,000 a source)"),
        );
        for notice in summary.notices.iter().take(SUMMARY_LISTS) {
            eprintln!("flowdex: warning: {notice}");
        }
        if summary.notices.len() > SUMMARY_LISTS {
            eprintln!(
                "flowdex: warning: and {} more sources like these",
                summary.notices.len() - SUMMARY_LISTS
            );
        }
        for s in summary.skipped.iter().take(SUMMARY_LISTS) {
            match (s.name == s.same_as, s.in_index) {
                (true, true) => eprintln!("flowdex: skipped {}: already in the index", s.name),
                (true, false) => eprintln!("flowdex: skipped {}: given twice", s.name),
                (false, true) => eprintln!(
                    "flowdex: skipped {}: the same bytes as {} (in the index)",
                    s.name, s.same_as
                ),
                (false, false) => eprintln!(
                    "flowdex: skipped {}: the same bytes as {} (read in this build)",
                    s.name, s.same_as
                ),
            }
        }
        if summary.skipped.len() > SUMMARY_LISTS {
            eprintln!(
                "flowdex: skipped {} more inputs already held",
                summary.skipped.len() - SUMMARY_LISTS
            );
        }
        let with_rejects = summary.skipped.iter().filter(|s| s.rejected_in_index > 0).count();
        if with_rejects > 0 {
            eprintln!(
                "flowdex: {with_rejects} skipped sources had rejected lines when the index read them; an index \
                 keeps a source as first read: to read them again (under another --log-format), build a new index"
            );
        }
        let in_index = summary.skipped.iter().filter(|s| s.in_index).count();
        eprintln!(
            "flowdex: added {} ({} already in the index, {} of other inputs, {} failed), {}, {} in {:.1} s ({:.2} M records/s)",
            counted(summary.sources_added, "source", "sources"),
            in_index,
            counted((summary.skipped.len() - in_index) as u64, "copy", "copies"),
            summary.failed_sources,
            counted(summary.records_added, "record", "records"),
            counted(summary.rejected_added, "rejected line", "rejected lines"),
            secs,
            summary.records_added as f64 / secs.max(1e-9) / 1e6
        );
        eprintln!(
            "flowdex: {} now holds {} from {} in {}, {}",
            args.output.display(),
            counted(index.records(), "record", "records"),
            counted(index.source_count, "source", "sources"),
            counted(index.segments.len() as u64, "segment", "segments"),
            human_bytes(size)
        );
    }
    Ok(if summary.rejected_added > 0 || summary.failed_sources > 0 {
        1
    } else {
        0
    })
}

/// Prints the `listed` first of `total` problems, then how many more there are (`nouns`: one,
/// many) and where to find them.
fn print_listed(listed: &[String], total: u64, nouns: [&str; 2], where_all: &str) {
    for problem in listed {
        eprintln!("flowdex: {problem}");
    }
    if let Some(more) = total.checked_sub(listed.len() as u64).filter(|&n| n > 0) {
        eprintln!(
            "flowdex: and {more} more {}: {where_all}",
            noun(more, nouns[0], nouns[1])
        );
    }
}

fn progress_bar(total: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {binary_bytes}/{binary_total_bytes} {msg} ETA {eta}")
            .expect("a valid template"),
    );
    bar
}

/// Counts records for the progress bar on their way to the worker.
struct Counting<'a, S> {
    inner: S,
    records: &'a AtomicU64,
}

impl<S: input::RecordSink> input::RecordSink for Counting<'_, &mut S> {
    fn begin_source(&mut self, meta: &input::SourceMeta) -> u32 {
        self.inner.begin_source(meta)
    }
    fn record(&mut self, record: &flowdex::record::FlowRecord, raw: &[u8], format: &input::LogFormat) {
        self.inner.record(record, raw, format);
    }
    fn reject(&mut self, rejection: &input::Rejection<'_>) {
        self.inner.reject(rejection);
    }
    fn end_source(&mut self, report: input::SourceReport) {
        self.records.fetch_add(report.records, Ordering::Relaxed);
        self.inner.end_source(report);
    }
}
