//! Helpers shared by the integration tests: a sink that collects everything the readers say.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};

use flowdex::input::{self, LogFormat, ReadOptions, Rejection, SourceMeta, SourceReport};
use flowdex::record::FlowRecord;

/// Everything read from some inputs.
#[derive(Default)]
pub struct Collected {
    pub names: Vec<String>,
    /// (source name, record, raw line)
    pub records: Vec<(String, FlowRecord, Vec<u8>)>,
    /// (source name, line, reason)
    pub rejects: Vec<(String, u64, String)>,
    pub reports: Vec<SourceReport>,
}

impl input::RecordSink for Collected {
    fn begin_source(&mut self, meta: &SourceMeta) -> u32 {
        self.names.push(meta.name.clone());
        (self.names.len() - 1) as u32
    }
    fn record(&mut self, record: &FlowRecord, raw: &[u8], _format: &flowdex::input::LogFormat) {
        let name = self.names[record.provenance.source as usize].clone();
        self.records.push((name, record.clone(), raw.to_vec()));
    }
    fn reject(&mut self, r: &Rejection<'_>) {
        self.rejects
            .push((self.names[r.source as usize].clone(), r.line, r.reason.to_string()));
    }
    fn end_source(&mut self, report: SourceReport) {
        self.reports.push(report);
    }
}

impl Collected {
    pub fn report(&self, name_suffix: &str) -> &SourceReport {
        self.reports
            .iter()
            .find(|r| r.meta.name.ends_with(name_suffix))
            .unwrap_or_else(|| panic!("no source ending in {name_suffix}: {:?}", self.names))
    }
}

impl Collected {
    /// Leaves out records of sources whose bytes repeat an earlier source's: an index holds
    /// each content once (the first copy in input order).
    pub fn without_duplicate_sources(mut self) -> Collected {
        let mut seen = std::collections::HashSet::new();
        let dup: std::collections::HashSet<String> = self
            .reports
            .iter()
            .filter(|r| !r.sha256.is_empty() && !seen.insert(r.sha256.clone()))
            .map(|r| r.meta.name.clone())
            .collect();
        self.records.retain(|(name, _, _)| !dup.contains(name));
        self.reports.retain(|r| !dup.contains(&r.meta.name));
        self
    }
}

/// Reads `paths` with the given `--log-format` (None: the v2 default) and default limits.
pub fn read_with(paths: &[PathBuf], options: &ReadOptions) -> Collected {
    let mut c = Collected::default();
    for file in input::discover(paths) {
        input::read_input(&file, options, &mut c);
    }
    for r in &c.reports {
        assert_eq!(
            r.lines,
            r.headers + r.records + r.rejected,
            "counts must reconcile: {r}"
        );
    }
    c
}

pub fn read(paths: &[PathBuf], log_format: Option<&str>) -> Collected {
    let options = ReadOptions {
        log_format: log_format.map(|f| LogFormat::parse(f).unwrap()),
        ..Default::default()
    };
    read_with(paths, &options)
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The shared real-world fixtures, when this checkout sits beside `shared/` (CI has it).
pub fn real_fixtures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/real");
    dir.is_dir().then_some(dir)
}

/// A synthetic corpus (`flowdex synth`) of `records` records over `days` days in flow-log
/// format `format`, written to a new temporary folder.
pub fn synth_corpus(records: u64, days: u32, seed: u64, format: &str) -> tempfile::TempDir {
    let corpus = tempfile::tempdir().unwrap();
    let config = flowdex::synth::SynthConfig {
        records,
        days,
        seed,
        format: flowdex::synth::format_by_name(format).unwrap(),
        ..Default::default()
    };
    flowdex::synth::write_corpus(&config, corpus.path()).unwrap();
    corpus
}

/// The index of one log file holding `text`, built on one thread; both live in the returned
/// folder.
pub fn index_of_text(text: &str) -> (tempfile::TempDir, flowdex::read::Index) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("flows.log");
    std::fs::write(&log, text).unwrap();
    let idx = dir.path().join("idx");
    build(&idx, &[log], &ReadOptions::default(), 1);
    let index = flowdex::read::Index::open(&idx).unwrap();
    (dir, index)
}

/// Builds (or extends) the index in `dir` from `paths`, as `flowdex build` does.
pub fn build(dir: &Path, paths: &[PathBuf], options: &ReadOptions, threads: usize) -> flowdex::build::BuildSummary {
    build_within(dir, paths, options, threads, 64 << 20)
}

/// [`build`] with a memory budget (segments hold about a quarter of it).
pub fn build_within(
    dir: &Path,
    paths: &[PathBuf],
    options: &ReadOptions,
    threads: usize,
    memory: usize,
) -> flowdex::build::BuildSummary {
    let writer = flowdex::build::IndexWriter::open(dir, memory).unwrap();
    let mut files = input::discover(paths);
    input::sort_for_build(&mut files);
    let surveyed = files.into_iter().map(|f| (input::survey(&f), f)).collect();
    let files = writer.drop_known(surveyed, |(s, _)| s.sha256.clone(), |(_, f)| f.name.clone());
    writer
        .add_parallel(
            &files,
            threads,
            |(s, _)| s.decoded_size,
            |(_, f), w| input::read_input(f, options, w),
            |_| {},
        )
        .unwrap();
    writer.publish().unwrap()
}

/// Source id → source name, for every source of `index`.
fn source_names(index: &flowdex::read::Index) -> std::collections::HashMap<u32, String> {
    index
        .sources()
        .unwrap()
        .iter()
        .map(|s| (s.id, s.name.clone()))
        .collect()
}

/// Every record of the index in `dir`, with the name of its source, in index order.
pub fn index_records(dir: &Path) -> Vec<(String, FlowRecord)> {
    let index = flowdex::read::Index::open(dir).unwrap();
    let names = source_names(&index);
    let mut out = Vec::new();
    for seg in index.segments() {
        for block in 0..seg.block_count() {
            for r in seg.read_records(block).unwrap() {
                out.push((names[&r.provenance.source].clone(), r));
            }
        }
    }
    out
}

/// Every record's original line as the index gives it, keyed by (source name, line).
pub fn index_lines(dir: &Path) -> std::collections::BTreeMap<(String, u64), Vec<u8>> {
    let index = flowdex::read::Index::open(dir).unwrap();
    let names = source_names(&index);
    let mut out = std::collections::BTreeMap::new();
    for seg in index.segments() {
        let dicts = seg.dictionaries();
        for (block, b) in seg.blocks().unwrap().iter().enumerate() {
            for r in seg
                .read_lines_at(block, &(0..b.record_count).collect::<Vec<_>>(), &dicts)
                .unwrap()
            {
                let p = r.record.provenance;
                out.insert((names[&p.source].clone(), p.line), r.line);
            }
        }
    }
    out
}
