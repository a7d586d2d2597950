//! Reader throughput: gzip decode + parse of a synthetic v5 corpus, beside decode alone and beside
//! `zcat` of the same files, each the median of several runs. Not a timed test: it prints numbers.
//!
//!     cargo bench --bench read                         # 2 M records (about 40 MB of .log.gz)
//!     FLOWDEX_BENCH_RECORDS=20000000 cargo bench --bench read
//!
//! The corpus is written once under `target/bench-corpus/` and reused.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use flate2::read::MultiGzDecoder;
use rayon::prelude::*;

use flowdex::input::{self, InputFile, ReadOptions, RecordSink, SourceMeta, SourceReport};
use flowdex::record::FlowRecord;
use flowdex::synth::{self, SynthConfig};

const RUNS: usize = 5;

fn main() {
    let records: u64 = std::env::var("FLOWDEX_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let corpus = ensure_corpus(records);
    let files: Vec<PathBuf> = input::discover(std::slice::from_ref(&corpus))
        .into_iter()
        .map(|f| f.path)
        .filter(|p| p.to_string_lossy().ends_with(".log.gz"))
        .collect();
    let compressed: u64 = files
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    println!(
        "corpus: {} files, {records} records, {:.1} MB of .log.gz, {} threads",
        files.len(),
        compressed as f64 / 1e6,
        rayon::current_num_threads()
    );

    let (decode, text_bytes) = median(|| decode_only(&files));
    let (parse, parsed) = median(|| decode_and_parse(&files));
    assert_eq!(parsed, records, "every record is parsed");
    let zcat = median(|| (zcat(&files), 0)).0;

    let mb = text_bytes as f64 / 1e6;
    let row = |name: &str, d: Duration| {
        let s = d.as_secs_f64();
        println!(
            "{name:<28} {:>8.3} s  {:>7.2} M records/s  {:>7.0} MB/s of text",
            s,
            records as f64 / s / 1e6,
            mb / s
        );
    };
    row("decode only (rayon)", decode);
    row("decode + parse (rayon)", parse);
    row("zcat (1 process)", zcat);
    println!(
        "decode+parse runs at {:.0}% of decode-only throughput; {:.1}x zcat",
        decode.as_secs_f64() / parse.as_secs_f64() * 100.0,
        zcat.as_secs_f64() / parse.as_secs_f64()
    );
}

fn ensure_corpus(records: u64) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/bench-corpus/v5-{records}-gz6"));
    if !dir.join("truth.json").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        // gzip level 6, as AWS writes (synth defaults to the faster level 1).
        let config = SynthConfig {
            records,
            gzip_level: 6,
            ..SynthConfig::default()
        };
        synth::write_corpus(&config, &dir).expect("write the benchmark corpus");
    }
    dir
}

/// Runs `f` [`RUNS`] times and returns the median time with the last run's count.
fn median(mut f: impl FnMut() -> (Duration, u64)) -> (Duration, u64) {
    let mut runs: Vec<(Duration, u64)> = (0..RUNS).map(|_| f()).collect();
    runs.sort();
    runs[RUNS / 2]
}

fn decode_only(files: &[PathBuf]) -> (Duration, u64) {
    let t = Instant::now();
    let bytes = files
        .par_iter()
        .map(|p| {
            let mut d = MultiGzDecoder::new(std::fs::File::open(p).expect("open"));
            io::copy(&mut d as &mut dyn Read, &mut io::sink()).expect("decode")
        })
        .sum();
    (t.elapsed(), bytes)
}

struct Count(u64);

impl RecordSink for Count {
    fn begin_source(&mut self, _: &SourceMeta) -> u32 {
        0
    }
    fn record(&mut self, _: &FlowRecord, _: &[u8], _: &flowdex::input::LogFormat) {
        self.0 += 1;
    }
    fn end_source(&mut self, report: SourceReport) {
        assert!(report.error.is_none() && report.rejected == 0, "{report}");
    }
}

fn decode_and_parse(files: &[PathBuf]) -> (Duration, u64) {
    let options = ReadOptions::default();
    let t = Instant::now();
    let records = files
        .par_iter()
        .map(|p| {
            let mut sink = Count(0);
            let file = InputFile {
                path: p.clone(),
                name: p.to_string_lossy().into_owned(),
                error: None,
            };
            input::read_input(&file, &options, &mut sink);
            sink.0
        })
        .sum();
    (t.elapsed(), records)
}

fn zcat(files: &[PathBuf]) -> Duration {
    let t = Instant::now();
    for chunk in files.chunks(2000) {
        let status = Command::new("zcat")
            .args(chunk)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run zcat");
        assert!(status.success());
    }
    t.elapsed()
}
