//! Synthetic corpora: realistic VPC (or transit-gateway) flow logs in the S3 layout, with injected
//! incidents and a `truth.json` that counts them exactly. For tests, benchmarks and demos.
//!
//! Owns the made-up estate (`topology`), the traffic in it (`traffic`), turning planned records
//! into [`FlowRecord`]s and lines (`render`), and the truth file (`truth`). It does not read flow
//! logs: the round-trip test reads corpora back with `input`.
//!
//! Everything is a function of the configuration. Each 5-minute window draws from its own random
//! stream, so windows are made in parallel and the files are byte-identical for a seed.

mod render;
mod rng;
mod topology;
mod traffic;
mod truth;

pub use truth::{Incident, Truth, TruthConfig, TruthFlowLog, TruthTopology, TruthTotals, TruthVpc, PORTS_LISTED};

use std::fs;
use std::io;
use std::path::Path;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use rayon::prelude::*;

use crate::input::LogFormat;
use crate::record::FlowRecord;

use render::Renderer;
use traffic::{Rec, Traffic, WINDOWS_PER_DAY};
use truth::Tally;

/// The smallest corpus: room for every incident, which needs up to a third of it.
pub const MIN_RECORDS: u64 = 100;
/// The longest corpus, in days.
pub const MAX_DAYS: u32 = 3660;
/// Start and end times stay below this, so they keep ten digits and can never be taken for
/// milliseconds by a reader (format reference §3.5).
const MAX_TIME: i64 = 9_999_999_999;

/// The format names `flowdex synth --format` accepts.
pub const FORMAT_NAMES: &[&str] = &["v2", "v3", "v4", "v5", "v7", "v8", "v9", "v10", "v11", "tgw"];

/// What to make.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    /// Records in the corpus, exactly (NODATA and SKIPDATA lines count; header lines do not).
    pub records: u64,
    pub days: u32,
    pub seed: u64,
    /// The columns written. A format with transit-gateway fields makes a transit-gateway flow
    /// log; any other makes one VPC flow log per VPC.
    pub format: LogFormat,
    /// Unix seconds of the first window; on a 5-minute boundary.
    pub start: i64,
    /// gzip level of the files, 0 to 9. AWS compresses at about level 6, but on two cores level 6
    /// alone takes longer than making a million records a second allows, so the default is 1
    /// (files about half again as large).
    pub gzip_level: u32,
}

impl Default for SynthConfig {
    fn default() -> SynthConfig {
        SynthConfig {
            records: 100_000,
            days: 30,
            seed: 1,
            format: LogFormat::vpc_up_to_version(5),
            // 2024-04-01T00:00:00Z
            start: 1_711_929_600,
            gzip_level: 1,
        }
    }
}

/// What [`write_corpus`] wrote.
#[derive(Clone, Debug)]
pub struct SynthReport {
    /// `.log.gz` files (`truth.json` not counted).
    pub files: u64,
    pub records: u64,
    /// Bytes of the `.log.gz` files.
    pub bytes: u64,
    pub truth: Truth,
}

/// The format called `name` (one of [`FORMAT_NAMES`]): every VPC field up to that version, or
/// the transit-gateway default format.
pub fn format_by_name(name: &str) -> Option<LogFormat> {
    if name == "tgw" {
        return Some(LogFormat::default_tgw());
    }
    FORMAT_NAMES
        .contains(&name)
        .then(|| name[1..].parse().ok().map(LogFormat::vpc_up_to_version))
        .flatten()
}

/// The name of `format` in [`FORMAT_NAMES`], or `custom`.
pub fn format_name(format: &LogFormat) -> String {
    FORMAT_NAMES
        .iter()
        .find(|n| format_by_name(n).as_ref() == Some(format))
        .map_or_else(|| "custom".to_owned(), |n| (*n).to_owned())
}

impl SynthConfig {
    fn check(&self) -> io::Result<()> {
        let invalid = |what: String| Err(io::Error::new(io::ErrorKind::InvalidInput, what));
        if self.records < MIN_RECORDS {
            return invalid(format!(
                "{} records are too few: the incidents need a corpus of at least {MIN_RECORDS}",
                self.records
            ));
        }
        if self.days == 0 || self.days > MAX_DAYS {
            return invalid(format!("{} days: give 1 to {MAX_DAYS}", self.days));
        }
        if self.start < 0 || self.start % 300 != 0 {
            return invalid(format!(
                "start {} is not a 5-minute boundary at or after 1970",
                self.start
            ));
        }
        if self.gzip_level > 9 {
            return invalid(format!("gzip level {}: give 0 to 9", self.gzip_level));
        }
        if self.start + i64::from(self.days) * 86_400 > MAX_TIME {
            return invalid(format!(
                "start {} plus {} days goes past the year 2286",
                self.start, self.days
            ));
        }
        Ok(())
    }

    fn traffic(&self) -> Traffic {
        let tgw = self.format.known_fields().iter().any(|f| f.is_tgw_only());
        // `check` made start non-negative.
        Traffic::new(self.seed, self.start as u64, u64::from(self.days), self.records, tgw)
    }
}

/// Writes the corpus under `out` (created if missing; it must be empty, so that no earlier corpus
/// mixes in) and `out/truth.json`.
pub fn write_corpus(config: &SynthConfig, out: &Path) -> io::Result<SynthReport> {
    config.check()?;
    prepare_folder(out)?;
    let traffic = config.traffic();
    let job = Job {
        traffic: &traffic,
        renderer: Renderer::new(&traffic, &config.format),
        flow_logs: flow_logs(&traffic),
        out,
        level: Compression::new(config.gzip_level),
    };
    // Folders first, so that the parallel writers only create files. A day of windows covers
    // at most two dates, the second of which is also the next day's first (or the last window's).
    let mut firsts: Vec<u64> = (0..traffic.windows).step_by(WINDOWS_PER_DAY as usize).collect();
    firsts.push(traffic.windows - 1);
    for fl in 0..job.flow_logs {
        for &w in &firsts {
            let key = job.renderer.object_key(fl, w);
            let folder = out.join(key.rsplit_once('/').map_or("", |(dir, _)| dir));
            fs::create_dir_all(&folder).map_err(|e| at(&folder, e))?;
        }
    }
    let tally = (0..traffic.windows)
        .into_par_iter()
        .map_init(|| Worker::new(job.level), |worker, w| job.write_window(worker, w))
        .try_reduce(Tally::default, |a, b| Ok(a.merge(b)))?;
    let truth = truth::assemble(config, &traffic, tally);
    let path = out.join("truth.json");
    let mut json = serde_json::to_vec_pretty(&truth).map_err(io::Error::other)?;
    json.push(b'\n');
    fs::write(&path, json).map_err(|e| at(&path, e))?;
    let t = &truth.totals;
    Ok(SynthReport {
        files: t.files,
        records: t.records,
        bytes: t.gzip_bytes,
        truth,
    })
}

/// Makes the same records as [`write_corpus`] in memory, in the order a reader meets them in
/// the written corpus (objects in key order, records in file order), calling
/// `f(object_key, record)`. The key is relative to the corpus folder, with `/` separators.
pub fn generate(config: &SynthConfig, mut f: impl FnMut(&str, &FlowRecord)) -> io::Result<()> {
    config.check()?;
    let traffic = config.traffic();
    let renderer = Renderer::new(&traffic, &config.format);
    let flow_logs = flow_logs(&traffic);
    let mut objects: Vec<(String, usize, u64)> = (0..flow_logs)
        .flat_map(|fl| (0..traffic.windows).map(move |w| (fl, w)))
        .map(|(fl, w)| (renderer.object_key(fl, w), fl, w))
        .collect();
    // A folder walk in name order meets the keys in byte order: every key has the same
    // fixed-width folders, so ordering the whole keys orders each level.
    objects.sort();
    let mut recs = Vec::new();
    let mut made = None;
    let mut record = renderer.blank();
    for (key, fl, w) in &objects {
        if made != Some(*w) {
            traffic.window(*w, &mut recs);
            made = Some(*w);
        }
        for rec in recs.iter().filter(|r| traffic.flow_log_of(r) == *fl) {
            renderer.fill(rec, &mut record);
            f(key, &record);
        }
    }
    Ok(())
}

fn flow_logs(traffic: &Traffic) -> usize {
    if traffic.tgw {
        1
    } else {
        traffic.topo.vpcs.len()
    }
}

/// What every window of a corpus being written shares.
struct Job<'a> {
    traffic: &'a Traffic,
    renderer: Renderer<'a>,
    flow_logs: usize,
    out: &'a Path,
    level: Compression,
}

/// Buffers one thread reuses from window to window.
struct Worker {
    recs: Vec<Rec>,
    text: Vec<u8>,
    gzip: Vec<u8>,
    deflate: Gzip,
}

impl Worker {
    fn new(level: Compression) -> Worker {
        Worker {
            recs: Vec::new(),
            text: Vec::new(),
            gzip: Vec::new(),
            deflate: Gzip::new(level),
        }
    }
}

/// Writes single-member gzip files with the header flate2's `GzEncoder` writes, reusing one
/// compressor (reset for each file): a new `GzEncoder` per file allocated and zeroed about 300 KB,
/// which took about a sixth of the CPU time when files hold 20 KB of text.
struct Gzip {
    deflate: Compress,
    /// The header: no name, modification time 0, operating system "unknown" (255), so the bytes
    /// are the same on every platform.
    header: [u8; 10],
}

impl Gzip {
    fn new(level: Compression) -> Gzip {
        // RFC 1952 XFL: 2 for the slowest, best compression, 4 for the fastest.
        let xfl = match level.level() {
            9.. => 2,
            0 | 1 => 4,
            _ => 0,
        };
        Gzip {
            deflate: Compress::new(level, false),
            header: [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255],
        }
    }

    /// Replaces `out` with `text` compressed.
    fn compress(&mut self, text: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        self.deflate.reset();
        out.clear();
        out.extend_from_slice(&self.header);
        loop {
            out.reserve(text.len() / 2 + 64);
            let done = self.deflate.total_in() as usize;
            let status = self
                .deflate
                .compress_vec(&text[done..], out, FlushCompress::Finish)
                .map_err(io::Error::other)?;
            if status == Status::StreamEnd {
                break;
            }
        }
        let mut crc = Crc::new();
        crc.update(text);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        // ISIZE is the length modulo 2^32.
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        Ok(())
    }
}

impl Job<'_> {
    /// Writes the files of window `w` (one per flow log that has records in it).
    fn write_window(&self, worker: &mut Worker, w: u64) -> io::Result<Tally> {
        let Worker {
            recs,
            text,
            gzip,
            deflate,
        } = worker;
        let mut tally = Tally::default();
        self.traffic.window(w, recs);
        for fl in 0..self.flow_logs {
            text.clear();
            text.extend_from_slice(self.renderer.header().as_bytes());
            let mut records = 0;
            for rec in recs.iter().filter(|r| self.traffic.flow_log_of(r) == fl) {
                let view = self.renderer.view(rec);
                self.renderer.write_line(&view, text);
                tally.add(&view, self.renderer.fields(), rec.tag);
                records += 1;
            }
            if records == 0 {
                // AWS writes no object for a window without records.
                continue;
            }
            deflate.compress(text, gzip)?;
            let path = self.out.join(self.renderer.object_key(fl, w));
            fs::write(&path, &*gzip).map_err(|e| at(&path, e))?;
            tally.totals.files += 1;
            tally.totals.text_bytes += text.len() as u64;
            tally.totals.gzip_bytes += gzip.len() as u64;
        }
        Ok(tally)
    }
}

fn prepare_folder(out: &Path) -> io::Result<()> {
    fs::create_dir_all(out).map_err(|e| at(out, e))?;
    if fs::read_dir(out).map_err(|e| at(out, e))?.next().is_some() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{}: the folder is not empty; give a new or empty folder", out.display()),
        ));
    }
    Ok(())
}

/// Puts the path in front of an I/O error's message.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for name in FORMAT_NAMES {
            let format = format_by_name(name).unwrap();
            assert_eq!(format_name(&format), *name);
        }
        assert_eq!(format_by_name("v6"), None);
        assert_eq!(format_by_name("v12"), None);
        assert_eq!(format_name(&LogFormat::parse("srcaddr dstaddr").unwrap()), "custom");
    }

    #[test]
    fn gzip_files_decompress_and_repeat() {
        use std::io::{Read, Write};
        let text: Vec<u8> = (0..50_000u32)
            .flat_map(|i| format!("{} {}\n", i, i % 97).into_bytes())
            .collect();
        for level in [0, 1, 6, 9] {
            let level = Compression::new(level);
            let mut reference = flate2::write::GzEncoder::new(Vec::new(), level);
            reference.write_all(&text).unwrap();
            let reference = reference.finish().unwrap();
            let mut gzip = Gzip::new(level);
            let (mut first, mut second) = (Vec::new(), Vec::new());
            gzip.compress(&text, &mut first).unwrap();
            // The reset leaves nothing of the previous file.
            gzip.compress(&text, &mut second).unwrap();
            assert!(first == second, "level {level:?}");
            assert_eq!(first[..10], reference[..10], "the header GzEncoder writes");
            let mut back = Vec::new();
            flate2::read::MultiGzDecoder::new(&first[..])
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == text, "level {level:?}");
            // Blocks may be cut elsewhere (GzEncoder hands the input over 32 KB at a time), but
            // the size is about the same.
            assert!(
                first.len() * 100 <= reference.len() * 102,
                "level {level:?}: {} {}",
                first.len(),
                reference.len()
            );
        }
    }

    #[test]
    fn bad_configs_are_refused() {
        let ok = SynthConfig {
            records: 1000,
            days: 1,
            ..SynthConfig::default()
        };
        assert!(ok.check().is_ok());
        assert!(SynthConfig {
            records: 99,
            ..ok.clone()
        }
        .check()
        .is_err());
        assert!(SynthConfig { days: 0, ..ok.clone() }.check().is_err());
        assert!(SynthConfig {
            start: ok.start + 1,
            ..ok.clone()
        }
        .check()
        .is_err());
        assert!(SynthConfig {
            gzip_level: 10,
            ..ok.clone()
        }
        .check()
        .is_err());
        assert!(SynthConfig { start: MAX_TIME, ..ok }.check().is_err());
    }
}
