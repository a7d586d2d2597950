//! Corpus → tantivy index: every record flowdex's readers find becomes one document, every
//! field of flowdex's record model one tantivy field named by its output key (`tcp_flags`,
//! `flow_direction`). Numbers are u64, addresses tantivy IP fields (IPv4 as IPv4-mapped, as
//! flowdex compares them), words and identifiers raw strings; all are indexed for term and range
//! queries, fast for aggregations, and stored so that a search returns whole records.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use flowdex::input::{self, ReadOptions, RecordSink, SourceMeta, SourceReport};
use flowdex::record::{Field, FieldKind, FlowRecord, Value};
use tantivy::schema::{self, IntoIpv6Addr, Schema, FAST, INDEXED, STORED, STRING};
use tantivy::{Index, IndexWriter, TantivyDocument};

/// One indexing thread per core of the benchmark machine (2 cores, 24 GiB).
const THREADS: usize = 2;
/// 1 GiB per thread, well within 24 GiB: the 2 M-record corpus fits in one flush per thread, so
/// its index is a segment per thread, searched in parallel.
const MEMORY: usize = THREADS << 30;

/// Indexes every record under `corpus` into a new index at `out`, published by renaming a
/// finished `OUT.tmp`, so that an interrupted build never looks like an index.
pub fn build(corpus: &Path, out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        bail!("{}: already exists; remove it to build again", out.display());
    }
    let tmp = PathBuf::from(format!("{}.tmp", out.display()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("{}: removing a failed build", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("{}: creating", tmp.display()))?;
    let (schema, fields) = schema();
    let index = Index::create_in_dir(&tmp, schema)?;
    let mut writer: IndexWriter = index.writer_with_num_threads(THREADS, MEMORY)?;
    let t = Instant::now();
    // One reader feeds both indexing threads: reading in parallel was measured no faster (the
    // indexing threads are the bottleneck), and files read in order keep each segment's
    // documents in corpus order.
    let mut sink = Indexer {
        writer: &writer,
        fields: &fields,
        records: 0,
        rejected: 0,
        failed_sources: 0,
        error: None,
    };
    for file in input::discover(&[corpus.to_path_buf()]) {
        input::read_input(&file, &ReadOptions::default(), &mut sink);
    }
    let (records, rejected, failed_sources) = (sink.records, sink.rejected, sink.failed_sources);
    if let Some(e) = sink.error {
        return Err(e.into());
    }
    writer.commit()?;
    writer.wait_merging_threads()?;
    let secs = t.elapsed().as_secs_f64();
    let segments = index.searchable_segment_ids()?.len();
    let mut bytes = 0;
    for entry in std::fs::read_dir(&tmp)? {
        bytes += entry?.metadata()?.len();
    }
    std::fs::rename(&tmp, out).with_context(|| format!("{}: publishing {}", out.display(), tmp.display()))?;
    println!(
        "tantivy: {records} records in {secs:.1} s ({:.0} records/s), {bytes} bytes on disk, {segments} segments; \
         {rejected} lines rejected, {failed_sources} sources failed",
        records as f64 / secs
    );
    Ok(())
}

/// The schema, and each flowdex field's tantivy field.
fn schema() -> (Schema, Vec<(Field, schema::Field)>) {
    let mut builder = Schema::builder();
    let fields = Field::ALL
        .iter()
        .map(|&f| {
            let name = f.key();
            let field = match f.kind() {
                FieldKind::UInt => builder.add_u64_field(name, INDEXED | FAST | STORED),
                FieldKind::Ip => builder.add_ip_addr_field(name, INDEXED | FAST | STORED),
                FieldKind::Enum | FieldKind::Text => builder.add_text_field(name, STRING | FAST | STORED),
            };
            (f, field)
        })
        .collect();
    (builder.build(), fields)
}

/// Turns each record into a document; counts what the readers could not read.
struct Indexer<'w> {
    writer: &'w IndexWriter,
    fields: &'w [(Field, schema::Field)],
    records: u64,
    rejected: u64,
    failed_sources: u64,
    error: Option<tantivy::TantivyError>,
}

impl RecordSink for Indexer<'_> {
    fn begin_source(&mut self, _: &SourceMeta) -> u32 {
        0
    }

    fn record(&mut self, record: &FlowRecord, _: &[u8], _: &input::LogFormat) {
        if self.error.is_some() {
            return;
        }
        let mut doc = TantivyDocument::new();
        for &(f, field) in self.fields {
            match record.get(f) {
                None => {}
                Some(Value::UInt(n)) => doc.add_u64(field, n),
                Some(Value::Ip(ip)) => doc.add_ip_addr(field, ip.into_ipv6_addr()),
                Some(Value::Str(s)) => doc.add_text(field, s),
            }
        }
        match self.writer.add_document(doc) {
            Ok(_) => self.records += 1,
            Err(e) => self.error = Some(e),
        }
    }

    fn end_source(&mut self, report: SourceReport) {
        self.rejected += report.rejected;
        self.failed_sources += u64::from(report.error.is_some());
    }
}
