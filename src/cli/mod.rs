//! Command-line interface: argument parsing, terminal output, exit codes. One file per
//! subcommand; this is the only place where the library's modules are wired together.
//!
//! Exit codes follow grep: 0 success (something matched or everything read cleanly), 1 nothing
//! matched or some input was rejected, 2 an error. A closed pipe (`| head`) is not an error.

mod build;
mod cat;
mod compact;
mod coverage;
mod export;
mod info;
mod search;
mod seen;
mod show;
mod synth;
mod verify;
mod verify_bundle;

use std::io;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use flowdex::input::{Limits, LogFormat, ReadOptions};

#[derive(Parser)]
#[command(
    name = "flowdex",
    version,
    about = "Offline forensics on AWS VPC Flow Logs",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read flow logs in any delivery form and print the parsed records.
    Cat(cat::Args),
    /// Build or extend an index from flow logs (atomic; sources already indexed are skipped).
    Build(build::Args),
    /// Search an index: filters, CIDRs, IOC lists, time windows, stats, sort, limit.
    Search(search::Args),
    /// Which time ranges of each interface have records, only NODATA, SKIPDATA or nothing.
    Coverage(coverage::Args),
    /// Show what an index holds: records, sources, time span, size by section.
    Info(info::Args),
    /// Check every checksum and invariant of an index, and with --sources its source files.
    Verify(verify::Args),
    /// Whether values (IPs, CIDRs, ports, ENIs, ids, @file) appear: counts, first and last
    /// seen, from the dictionaries alone.
    Seen(seen::Args),
    /// Print the original lines behind record references (SOURCE:LINE), checked against the
    /// source files' SHA-256.
    Show(show::Args),
    /// Write the records a query matches as a verifiable evidence bundle (folder or .tar).
    Export(export::Args),
    /// Check every file of an evidence bundle against its SHA256SUMS.
    VerifyBundle(verify_bundle::Args),
    /// Merge an index's segments.
    Compact(compact::Args),
    /// Write a realistic synthetic corpus in the S3 layout, with injected incidents.
    Synth(synth::Args),
}

/// How inputs are read; shared by every command that reads flow logs.
#[derive(clap::Args, Clone, Debug)]
pub struct ReadArgs {
    /// Files, folders (walked recursively) or tar/zip bundles.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Field order of headerless input (CloudWatch, Firehose, bare lines), as the flow log's
    /// format string (`${version} ${account-id} ...`) or plain names. Default: the v2 format.
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Stop a decompressor whose output exceeds this many times its input.
    #[arg(long, default_value_t = Limits::default().max_ratio, value_name = "N")]
    pub max_ratio: u64,
    /// Stop reading a source after this many decompressed bytes (e.g. 64G).
    #[arg(long, default_value_t = Limits::default().max_source_bytes, value_parser = parse_size_u64, value_name = "SIZE")]
    pub max_source_bytes: u64,
    /// Reject lines longer than this many bytes (e.g. 64K).
    #[arg(long, default_value_t = Limits::default().max_line_bytes, value_parser = parse_size, value_name = "SIZE")]
    pub max_line_bytes: usize,
}

impl ReadArgs {
    /// Refuses inputs that are not there: a path typed wrong is more likely than evidence gone,
    /// and reading the rest would pass for reading everything. `nothing` says what was not done.
    pub fn refuse_missing(&self, nothing: &str) -> anyhow::Result<()> {
        match self.inputs.iter().find(|p| p.symlink_metadata().is_err()) {
            Some(missing) => anyhow::bail!(
                "{}: no such file or folder; {nothing} (check the path)",
                missing.display()
            ),
            None => Ok(()),
        }
    }

    pub fn options(&self) -> anyhow::Result<ReadOptions> {
        let log_format = match &self.log_format {
            Some(text) => Some(LogFormat::parse(text).map_err(|e| anyhow::anyhow!("--log-format `{text}`: {e}"))?),
            None => None,
        };
        // A name typed by hand that is no field is most likely a typo, and its column would
        // be kept as text under that name, out of every search on the real field.
        for name in log_format.iter().flat_map(LogFormat::unknown_names) {
            let names = flowdex::record::Field::ALL.iter().map(|f| f.name());
            let hint = match flowdex::record::nearest_name(name, names) {
                Some(field) => format!("; did you mean `{field}`?"),
                None => ".".to_owned(),
            };
            eprintln!(
                "flowdex: warning: --log-format: `{name}` is no flow-log field flowdex knows{hint} \
                 Its column is kept as text under that name."
            );
        }
        Ok(ReadOptions {
            log_format,
            limits: Limits {
                max_line_bytes: self.max_line_bytes,
                max_ratio: self.max_ratio,
                max_source_bytes: self.max_source_bytes,
                ..Limits::default()
            },
        })
    }
}

/// `n` and its noun, singular for one: "1 source", "3 sources".
pub fn counted(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", noun(n, one, many))
}

/// The noun for `n` things: `one` for one, else `many`.
pub fn noun<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// [`parse_size`] for a limit counted in `u64`.
fn parse_size_u64(text: &str) -> Result<u64, String> {
    parse_size(text).map(|n| n as u64)
}

/// Parses `512M`, `1.5G`, `1048576`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let (number, unit) = t.split_at(t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len()));
    let mult: u64 = match unit.to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(format!("`{text}`: unknown unit (use K, M or G)")),
    };
    let not_a_size = || format!("`{text}` is not a size like 512M, 1.5G or 2G");
    let bytes = match number.split_once('.') {
        None => number.parse::<u64>().map_err(|_| not_a_size())?.checked_mul(mult),
        Some((whole, fraction)) => {
            // Exact to the byte: whole units, then the fraction's share of one, rounded down.
            let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
            if !digits(whole) || !digits(fraction) || fraction.is_empty() || fraction.len() > 9 {
                return Err(not_a_size());
            }
            let whole: u64 = if whole.is_empty() {
                0
            } else {
                whole.parse().map_err(|_| not_a_size())?
            };
            let scale = 10u64.pow(fraction.len() as u32);
            let part =
                u128::from(fraction.parse::<u64>().map_err(|_| not_a_size())?) * u128::from(mult) / u128::from(scale);
            whole
                .checked_mul(mult)
                .and_then(|w| w.checked_add(u64::try_from(part).ok()?))
        }
    };
    bytes
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Runs the command line and returns the process exit code.
pub fn run() -> i32 {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Build(_) | Command::Compact(_)) {
        super::keep_large_allocations_out_of_arenas();
    } else {
        super::keep_freed_memory_in_arenas();
    }
    let result = match cli.command {
        Command::Cat(args) => cat::run(args),
        Command::Build(args) => build::run(args),
        Command::Search(args) => search::run(args),
        Command::Coverage(args) => coverage::run(args),
        Command::Info(args) => info::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Show(args) => show::run(args),
        Command::Seen(args) => seen::run(args),
        Command::Export(args) => export::run(args),
        Command::VerifyBundle(args) => verify_bundle::run(args),
        Command::Compact(args) => compact::run(args),
        Command::Synth(args) => synth::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            eprintln!("flowdex: {e:#}");
            2
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_units_and_fractions_to_the_byte() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size(".5K"), Ok(512));
        assert_eq!(parse_size("0.001K"), Ok(1));
        assert!(parse_size("1.5X").unwrap_err().contains("unknown unit"));
        assert!(parse_size("1.G").is_err());
        assert!(parse_size("1..5G").is_err());
        assert!(parse_size("99999999999G").unwrap_err().contains("too large"));
    }
}
