//! Golden indexes: an index written by each format version, kept in `tests/compat/`, must open,
//! verify and give the same answers with every later flowdex that reads that version (tantivy
//! keeps such tests), and be refused clearly by one that does not. `tests/compat/vN` was built
//! with `flowdex build --threads 1 --output tests/compat/vN tests/fixtures/` from the fixtures
//! as they were then (`v9` and `v10` from the eleven files `v8` holds, named one by one); those
//! fixture files must not change.
//!
//! Versions 1 and 2 were never released: version 2 (original lines, field order, term time
//! spans) replaced 1, and version 3 (page checksums, stored column frames with checksums)
//! replaced 2, before the first release; they are kept only to prove the refusal. Version 4
//! (postings of a few ids as gaps), version 5 (packed posting references, narrow integer
//! terms, twins, `end` minus `start`), version 6 (bit-packed column frames, complement
//! postings, compressed source entries), version 7 (the SKIPDATA section), version 8 (byte
//! planes), version 9 (records by day first) and version 10 (time spans of the seconds records
//! cover) are read beside version 3.

mod common;

use std::path::Path;

use common::{index_lines, index_records};
use flowdex::coverage;
use flowdex::format::dictionary::{ip_bytes, Term};
use flowdex::format::schema::Column;
use flowdex::read::{Index, IndexError};
use flowdex::record::{Action, Field};

fn golden(version: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat").join(version)
}

#[test]
fn versions_1_and_2_are_refused_with_advice() {
    for old in [1, 2] {
        match Index::open(&golden(&format!("v{old}"))) {
            Err(
                e @ IndexError::Version {
                    found,
                    expected: flowdex::format::FORMAT_VERSION,
                    ..
                },
            ) if found == old => {
                assert!(e.to_string().contains("rebuild the index from its sources"), "{e}");
            }
            other => panic!("v{old}: {:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn version_3_opens_verifies_and_answers_as_it_did() {
    opens_verifies_and_answers_as_it_did(3);
}

#[test]
fn version_4_opens_verifies_and_answers_as_it_did() {
    opens_verifies_and_answers_as_it_did(4);
}

#[test]
fn version_5_opens_verifies_and_answers_as_it_did() {
    opens_verifies_and_answers_as_it_did(5);
}

#[test]
fn version_6_opens_verifies_and_answers_as_it_did() {
    opens_verifies_and_answers_as_it_did(6);
    // The golden holds version 6's complement postings, which verify compared with a scan.
    let index = Index::open(&golden("v6")).unwrap();
    let seg = &index.segments()[0];
    let complemented: Vec<Column> = seg
        .columns()
        .iter()
        .copied()
        .filter(|&c| {
            seg.dictionary(c)
                .unwrap()
                .is_some_and(|d| d.complement_nulls(u64::MAX).unwrap().is_some())
        })
        .collect();
    assert!(complemented.contains(&Column::Field(Field::Action)), "{complemented:?}");
}

#[test]
fn version_7_opens_verifies_and_answers_as_it_did() {
    opens_verifies_and_answers_as_it_did(7);
    // Version 7 lists its SKIPDATA records in a section; before it, coverage finds them through
    // the log-status postings. Both goldens hold the same fixtures' SKIPDATA lines.
    let open = |v: &str| Index::open(&golden(v)).unwrap();
    assert!(open("v7").segments()[0]
        .skipdata()
        .unwrap()
        .is_some_and(|s| !s.is_empty()));
    assert!(open("v6").segments()[0].skipdata().unwrap().is_none());
    let found = |v: &str| coverage::skipdata(&open(v), None, coverage::DEFAULT_BIN, None).unwrap();
    let v7 = found("v7");
    assert!(!v7.is_empty());
    assert_eq!(found("v6"), v7);
}

#[test]
fn version_8_opens_verifies_and_answers_as_it_did() {
    opens_verifies_and_answers_as_it_did(8);
}

#[test]
fn version_9_opens_verifies_and_answers_as_it_did() {
    opens_verifies_and_answers_as_it_did(9);
}

#[test]
fn version_10_opens_verifies_and_answers_as_it_did() {
    opens_verifies_and_answers_as_it_did(10);
}

fn opens_verifies_and_answers_as_it_did(version: u32) {
    let dir = golden(&format!("v{version}"));
    let index = Index::open(&dir).unwrap();
    index.verify().unwrap();
    let m = index.manifest();
    let sources = index.sources().unwrap();
    assert_eq!((m.format_version, m.records(), sources.len()), (version, 31, 11));
    assert_eq!(sources.iter().map(|s| s.rejected).sum::<u64>(), 8);
    assert_eq!(m.rejected_lines, 8);

    // Every record equals what the reader makes of the same fixture line today.
    let records = index_records(&dir);
    assert_eq!(records.len(), 31);
    let lines = index_lines(&dir);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, source) in sources.iter().map(|s| (s.name.clone(), s)) {
        let read = common::read(&[root.join(&name)], None);
        assert_eq!(
            read.reports[0].sha256, source.sha256,
            "{name} changed since the golden index was built"
        );
        for (_, want, raw) in &read.records {
            assert_eq!(lines[&(name.clone(), want.provenance.line)], *raw);
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
    // Its time span, kept beside the posting: the seconds its records cover (version 10 on),
    // or their smallest start and largest end.
    let span = dict.posting_ref(term).unwrap().unwrap();
    let covered = hits
        .iter()
        .filter_map(|(_, r)| flowdex::record::covered_span(r.start, r.end));
    let want = if version >= flowdex::format::COVERED_SPANS_SINCE {
        (
            covered.clone().map(|c| c.0).min().unwrap_or(u64::MAX),
            covered.map(|c| c.1).max().unwrap_or(0),
        )
    } else {
        (
            hits.iter().filter_map(|(_, r)| r.start).min().unwrap_or(u64::MAX),
            hits.iter().filter_map(|(_, r)| r.end).max().unwrap_or(0),
        )
    };
    assert_eq!((span.first_start, span.last_end), want);
}

#[test]
fn a_version_3_index_takes_current_segments_and_is_then_current() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(golden("v3")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let input = tempfile::tempdir().unwrap();
    let log = input.path().join("more.log");
    std::fs::write(
        &log,
        "version srcaddr dstaddr srcport dstport protocol packets bytes start end action\n\
         2 10.0.0.1 10.9.9.9 1 2 6 1 40 1418530010 1418530070 ACCEPT\n\
         2 10.0.0.1 10.9.9.8 3 4 6 1 40 1418530011 1418530071 REJECT\n",
    )
    .unwrap();
    common::build(dir.path(), &[log], &flowdex::input::ReadOptions::default(), 1);
    let index = Index::open(dir.path()).unwrap();
    index.verify().unwrap();
    assert_eq!(
        (index.manifest().format_version, index.manifest().records()),
        (flowdex::format::FORMAT_VERSION, 33)
    );
    // 10.0.0.1 now has records in a version 3 segment (a roaring posting, fixed references)
    // and a current one (gaps, packed references).
    let mut found = 0;
    for seg in index.segments() {
        let dict = seg.dictionary(Column::Field(Field::Srcaddr)).unwrap().unwrap();
        if let Some(term) = dict.find(&Term::Ip(ip_bytes("10.0.0.1".parse().unwrap()))).unwrap() {
            found += seg.posting(Column::Field(Field::Srcaddr), &dict, term).unwrap().len();
        }
    }
    assert_eq!(found, 5);
}

/// `tests/compat/vN-twins` was built with `flowdex build --threads 1 --memory 1K --output
/// tests/compat/vN-twins tests/compat/twins-input/`: one segment per file, the first with
/// packet addresses that share their base's terms and postings, the second (a NAT gateway,
/// swapped packet sources) with terms of their own and only some postings shared, the third
/// (swapped packet sources) with its base's terms but postings of its own.
#[test]
fn version_5_twins_open_verify_and_answer_as_they_did() {
    twins_open_verify_and_answer_as_they_did("v5-twins");
}

#[test]
fn version_6_twins_open_verify_and_answer_as_they_did() {
    twins_open_verify_and_answer_as_they_did("v6-twins");
}

fn twins_open_verify_and_answer_as_they_did(golden_name: &str) {
    let dir = golden(golden_name);
    let index = Index::open(&dir).unwrap();
    index.verify().unwrap();
    assert_eq!(index.segments().len(), 3);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = common::read(&[root.join("tests/compat/twins-input")], None);
    let key =
        |name: &str, r: &flowdex::record::FlowRecord| (name.rsplit('/').next().unwrap().to_owned(), r.provenance.line);
    let mut records = index_records(&dir);
    records.iter_mut().for_each(|(_, r)| r.provenance.source = 0);
    let mut want: Vec<_> = read
        .records
        .iter()
        .map(|(n, r, _)| {
            let mut r = r.clone();
            r.provenance.source = 0;
            (key(n, &r), r)
        })
        .collect();
    let mut got: Vec<_> = records.iter().map(|(n, r)| (key(n, r), r.clone())).collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want);

    // Every packet address's posting holds the records a scan finds, shared or not.
    let mut first = 0;
    let mut checked = 0;
    for (s, seg) in index.segments().iter().enumerate() {
        let in_segment = &records[first..first + seg.record_count() as usize];
        first += seg.record_count() as usize;
        for (field, twin_terms) in [(Field::PktSrcaddr, s != 1), (Field::PktDstaddr, s != 1)] {
            let column = Column::Field(field);
            let dict = seg.dictionary(column).unwrap().unwrap();
            assert_eq!(dict.has_twin_terms(), twin_terms);
            for t in 0..dict.len() {
                let Term::Ip(b) = dict.term(t).unwrap() else { panic!() };
                let ip = flowdex::format::dictionary::ip_from_bytes(b);
                let ids = seg.posting(column, &dict, t).unwrap();
                let hits: Vec<u32> = (0..in_segment.len() as u32)
                    .filter(|&i| {
                        in_segment[i as usize]
                            .1
                            .get(field)
                            .is_some_and(|v| v.to_string() == ip.to_string())
                    })
                    .collect();
                assert_eq!(ids.iter().collect::<Vec<_>>(), hits, "{field} = {ip}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 + 3 + 4 + 3 + 3 + 2);
}

/// `compact` on a one-segment index of an older version rewrites it in this one (it is how an
/// index is brought up to date), where on a current one-segment index it does nothing.
#[test]
fn compact_brings_a_one_segment_index_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["MANIFEST", "seg-00000000.fdx", "sources-00000001.fdx"] {
        std::fs::copy(golden("v8").join(file), dir.path().join(file)).unwrap();
    }
    let version = |dir: &std::path::Path| {
        let index = flowdex::read::Index::open(dir).unwrap();
        assert_eq!(index.segments().len(), 1);
        index.segments()[0].format_version()
    };
    assert_eq!(version(dir.path()), 8);
    let compact = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowdex"))
            .arg("compact")
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let said = compact();
    assert!(said.contains("1 segment rewritten in format version"), "{said}");
    assert_eq!(version(dir.path()), flowdex::format::FORMAT_VERSION);
    assert!(compact().contains("nothing to merge"));
}
