//! `flowdex synth`: write a synthetic corpus and say on stderr how much and how fast.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use flowdex::input::LogFormat;
use flowdex::synth::{self, SynthConfig, FORMAT_NAMES};
use flowdex::time::parse_rfc3339;

#[derive(clap::Args)]
pub struct Args {
    /// Folder to write the corpus into (created if missing; must be empty).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Records to write, exactly (NODATA and SKIPDATA lines included).
    #[arg(long, default_value_t = SynthConfig::default().records, value_name = "N")]
    records: u64,
    /// Days of traffic.
    #[arg(long, default_value_t = SynthConfig::default().days, value_name = "D")]
    days: u32,
    /// Seed; the same seed gives byte-identical files.
    #[arg(long, default_value_t = SynthConfig::default().seed, value_name = "S")]
    seed: u64,
    /// Columns to write: v2, v3, v4, v5, v7, v8, v9, v10, v11 (all VPC fields up to that version)
    /// or tgw (the transit-gateway default format).
    #[arg(long, default_value = "v5", value_name = "FORMAT", value_parser = parse_format)]
    format: LogFormat,
    /// First day (UTC midnight), as YYYY-MM-DD.
    #[arg(long, default_value = "2024-04-01", value_name = "DATE", value_parser = parse_day)]
    start: i64,
    /// gzip level, 0 to 9. AWS's files are about level 6, which takes about twice as long.
    #[arg(long, default_value_t = SynthConfig::default().gzip_level, value_name = "LEVEL")]
    gzip_level: u32,
}

fn parse_format(name: &str) -> Result<LogFormat, String> {
    synth::format_by_name(name).ok_or_else(|| format!("use one of {}", FORMAT_NAMES.join(", ")))
}

fn parse_day(day: &str) -> Result<i64, String> {
    parse_rfc3339(&format!("{day}T00:00:00Z")).ok_or_else(|| "give a date as YYYY-MM-DD".to_owned())
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let config = SynthConfig {
        records: args.records,
        days: args.days,
        seed: args.seed,
        format: args.format,
        start: args.start,
        gzip_level: args.gzip_level,
    };
    let began = Instant::now();
    let report = synth::write_corpus(&config, &args.out).context("synth")?;
    let secs = began.elapsed().as_secs_f64();
    eprintln!(
        "flowdex: synth wrote {} files, {} records, {} bytes in {secs:.2} s ({:.0} records/s); truth in {}",
        report.files,
        report.records,
        report.bytes,
        report.records as f64 / secs.max(1e-9),
        args.out.join("truth.json").display()
    );
    Ok(0)
}
