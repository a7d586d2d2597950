//! Golden indexes: an index written by each format version, kept forever in `tests/compat/`,
//! must open, verify and give the same answers with every later flowdex (tantivy keeps such
//! tests). `tests/compat/v1` was built with
//! `flowdex build --threads 1 --output tests/compat/v1 tests/fixtures/` from the fixtures as
//! they were then; those fixture files must not change.

mod common;

use std::path::Path;

use common::index_records;
use flowdex::format::dictionary::{ip_bytes, Term};
use flowdex::format::schema::Column;
use flowdex::read::Index;
use flowdex::record::{Action, Field};

fn golden(version: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat").join(version)
}

#[test]
fn version_1_opens_verifies_and_answers_as_it_did() {
    let dir = golden("v1");
    let index = Index::open(&dir).unwrap();
    index.verify().unwrap();
    let m = index.manifest();
    assert_eq!((m.format_version, m.records(), m.sources.len()), (1, 31, 11));
    assert_eq!(m.sources.iter().map(|s| s.rejected).sum::<u64>(), 8);

    // Every record equals what the reader makes of the same fixture line today.
    let records = index_records(&dir);
    assert_eq!(records.len(), 31);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, source) in m.sources.iter().map(|s| (s.name.clone(), s)) {
        let read = common::read(&[root.join(&name)], None);
        assert_eq!(
            read.reports[0].sha256, source.sha256,
            "{name} changed since the golden index was built"
        );
        for (_, want, _) in &read.records {
            let got = records
                .iter()
                .find(|(n, r)| *n == name && r.provenance.line == want.provenance.line)
                .unwrap_or_else(|| panic!("{name}:{} missing", want.provenance.line));
            let mut got = got.1.clone();
            got.provenance.source = want.provenance.source;
            assert_eq!(&got, want);
        }
    }

    // A posting lookup: the three records from 10.0.0.1.
    let seg = &index.segments()[0];
    let dict = seg.dictionary(Column::Field(Field::Srcaddr)).unwrap().unwrap();
    let term = dict
        .find(&Term::Ip(ip_bytes("10.0.0.1".parse().unwrap())))
        .unwrap()
        .unwrap();
    let ids = seg.posting(Column::Field(Field::Srcaddr), &dict, term).unwrap();
    let hits: Vec<_> = records
        .iter()
        .enumerate()
        .filter(|(i, _)| ids.contains(*i as u32))
        .map(|(_, r)| r)
        .collect();
    assert_eq!(hits.len(), 3);
    assert!(hits.iter().all(|(_, r)| r.srcaddr == Some("10.0.0.1".parse().unwrap())));
    assert!(hits.iter().any(|(_, r)| r.action == Some(Action::Accept)));
}
