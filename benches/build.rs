//! Index build: whole-process `flowdex build` on a synthetic v5 corpus (30 days), beside `zcat`
//! of the same files (the peer a build must not be slower than), with peak memory and index size
//! against the `.log.gz` input. Medians of several runs. Not a timed test: it prints numbers.
//!
//!     cargo bench --bench build                           # 2 M records
//!     FLOWDEX_BENCH_RECORDS=20000000 FLOWDEX_BENCH_RUNS=3 cargo bench --bench build
//!
//! Corpus and indexes live under `target/bench-corpus/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::{env_or, median};

fn main() {
    let records: u64 = env_or("FLOWDEX_BENCH_RECORDS", 2_000_000);
    let runs: usize = env_or("FLOWDEX_BENCH_RUNS", 3) as usize;
    // gzip level 6, as AWS writes: the index size is compared with these files.
    let corpus = common::corpus(records);
    let files: Vec<PathBuf> = walk(&corpus)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".log.gz"))
        .collect();
    let gz_bytes: u64 = files.iter().map(|p| p.metadata().map(|m| m.len()).unwrap_or(0)).sum();
    let exe = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/flowdex");
    assert!(exe.exists(), "build the binary first: cargo build --release");
    println!(
        "corpus: {records} records in {} files, {:.1} MB of .log.gz ({:.1} bytes/record)",
        files.len(),
        gz_bytes as f64 / 1e6,
        gz_bytes as f64 / records as f64
    );

    let index = common::root().join(format!("v5-{records}-gz6.idx"));
    let mut builds = Vec::new();
    let mut peak_kb = 0u64;
    for _ in 0..runs {
        let _ = std::fs::remove_dir_all(&index);
        let (t, kb) = timed(
            Command::new(&exe)
                .args(["build", "--quiet", "--output"])
                .arg(&index)
                .arg(&corpus),
        );
        builds.push(t);
        peak_kb = peak_kb.max(kb.unwrap_or(0));
    }
    let zcats: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            for chunk in files.chunks(2000) {
                let ok = Command::new("zcat")
                    .args(chunk)
                    .stdout(std::process::Stdio::null())
                    .status()
                    .expect("zcat")
                    .success();
                assert!(ok);
            }
            t.elapsed()
        })
        .collect();
    let index_bytes: u64 = walk(&index)
        .iter()
        .map(|p| p.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    let build = median(builds);
    let zcat = median(zcats);
    let rate = |d: Duration| records as f64 / d.as_secs_f64() / 1e6;
    println!(
        "flowdex build (whole process) {:>8.2} s  {:>6.2} M records/s  peak RSS {} MiB",
        build.as_secs_f64(),
        rate(build),
        peak_kb / 1024
    );
    println!(
        "zcat (1 process)              {:>8.2} s  {:>6.2} M records/s",
        zcat.as_secs_f64(),
        rate(zcat)
    );
    println!(
        "build is {:.2}x zcat's throughput",
        zcat.as_secs_f64() / build.as_secs_f64()
    );
    println!(
        "index: {:.1} MB, {:.1} bytes/record, {:.2}x the .log.gz input",
        index_bytes as f64 / 1e6,
        index_bytes as f64 / records as f64,
        index_bytes as f64 / gz_bytes as f64
    );
    let info = Command::new(&exe)
        .arg("info")
        .arg(&index)
        .output()
        .expect("flowdex info");
    // The size-by-section lines of `flowdex info` (indented, before the list of sources).
    let info = String::from_utf8_lossy(&info.stdout);
    for line in info
        .lines()
        .skip_while(|l| !l.starts_with("size"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
    {
        println!("{line}");
    }
}

/// Runs a command to completion; returns its time and, where `/usr/bin/time` exists, its peak RSS
/// in KiB.
fn timed(cmd: &mut Command) -> (Duration, Option<u64>) {
    let gnu_time = Path::new("/usr/bin/time");
    let t = Instant::now();
    if gnu_time.exists() {
        let mut wrapped = Command::new(gnu_time);
        wrapped.args(["-f", "%M"]).arg(cmd.get_program()).args(cmd.get_args());
        let out = wrapped.output().expect("run the build");
        let elapsed = t.elapsed();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let kb = String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok());
        (elapsed, kb)
    } else {
        assert!(cmd.status().expect("run the build").success());
        (t.elapsed(), None)
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
