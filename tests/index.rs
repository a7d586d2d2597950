//! The index against the reader it was built from: every record comes back identical, every
//! posting holds exactly the records a linear scan of the parsed input finds, damage is
//! detected, rebuilds are idempotent and builds exclude each other.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::{build, fixture, index_lines, index_records, read_with, real_fixtures};
use flowdex::format::dictionary::{ip_bytes, Term};
use flowdex::format::schema::{Column, POSTING_FIELDS};
use flowdex::input::ReadOptions;
use flowdex::read::Index;
use flowdex::record::{Field, FieldKind, FlowRecord, Value};

fn inputs() -> Vec<PathBuf> {
    let mut v = vec![fixture("")];
    v.extend(real_fixtures());
    v
}

/// Records keyed by (source name, line), provenance source ids left out (they are numbered
/// differently by the reader and the index).
fn keyed(records: impl IntoIterator<Item = (String, FlowRecord)>) -> BTreeMap<(String, u64), FlowRecord> {
    records
        .into_iter()
        .map(|(name, mut r)| {
            let line = r.provenance.line;
            r.provenance.source = 0;
            ((name, line), r)
        })
        .collect()
}

#[test]
fn every_record_comes_back_identical_to_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let options = ReadOptions::default();
    let summary = build(dir.path(), &inputs(), &options, 2);
    let read = read_with(&inputs(), &options).without_duplicate_sources();
    let lines: BTreeMap<(String, u64), Vec<u8>> = read
        .records
        .iter()
        .map(|(n, r, raw)| ((n.clone(), r.provenance.line), raw.clone()))
        .collect();
    let expect = keyed(read.records.into_iter().map(|(n, r, _)| (n, r)));
    let got = keyed(index_records(dir.path()));
    assert_eq!(got.len(), expect.len());
    for (k, r) in &expect {
        assert_eq!(got.get(k), Some(r), "{k:?}");
    }
    // Every original line comes back byte for byte: CRLF files, CloudWatch time stamps,
    // millisecond times, odd spacing and all.
    let got_lines = index_lines(dir.path());
    for (k, line) in &lines {
        assert_eq!(
            got_lines.get(k).map(|l| String::from_utf8_lossy(l)),
            Some(String::from_utf8_lossy(line)),
            "{k:?}"
        );
    }
    assert_eq!(summary.records_added, expect.len() as u64);
    Index::open(dir.path()).unwrap().verify().unwrap();
}

#[test]
fn records_are_in_day_then_interface_then_time_order_within_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &inputs(), &ReadOptions::default(), 1);
    let index = Index::open(dir.path()).unwrap();
    let mut days = std::collections::HashSet::new();
    for seg in index.segments() {
        let mut last = (0, false, String::new(), 0, 0, 0);
        for block in 0..seg.block_count() {
            for r in seg.read_records(block).unwrap() {
                let eni = r.interface_id.clone();
                days.insert(r.start.unwrap_or(0) / 86_400);
                let key = (
                    r.start.unwrap_or(0) / 86_400,
                    eni.is_none(),
                    eni.unwrap_or_default(),
                    r.start.unwrap_or(0),
                    r.provenance.source,
                    r.provenance.line,
                );
                assert!(key >= last, "{key:?} after {last:?}");
                last = key;
            }
        }
    }
    assert!(days.len() > 1, "the inputs span days");
}

/// Records come by day, then interface: an interface seen only on the second day comes before
/// one seen on both in the records, not in the slot runs, and an interface's subjects keep the
/// order of their first records whatever their account terms; the segment verifies.
#[test]
fn slot_runs_are_by_interface_whatever_the_day_order_of_records() {
    let (_dir, index) = common::index_of_text(
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
         2 222222222222 eni-b 10.0.0.1 10.0.0.2 1 2 6 1 40 1714262400 1714262460 ACCEPT OK\n\
         2 111111111111 eni-b 10.0.0.1 10.0.0.2 1 2 6 1 40 1714263000 1714263060 ACCEPT OK\n\
         2 222222222222 eni-b - - - - - - - 1714348800 1714348860 - SKIPDATA\n\
         2 333333333333 eni-a 10.0.0.3 10.0.0.2 1 2 6 1 40 1714349000 1714349060 ACCEPT OK\n",
    );
    index.verify().unwrap();
    let seg = &index.segments()[0];
    // Day one holds eni-b's first two records, day two eni-b's SKIPDATA record and eni-a's.
    let records = seg.read_records(0).unwrap();
    let order: Vec<(&str, u64)> = records
        .iter()
        .map(|r| (r.interface_id.as_deref().unwrap(), r.start.unwrap()))
        .collect();
    assert_eq!(
        order,
        [
            ("eni-b", 1714262400),
            ("eni-b", 1714263000),
            ("eni-a", 1714349000),
            ("eni-b", 1714348800)
        ]
    );
    let runs = seg.slot_runs().unwrap().unwrap().all().unwrap();
    let subjects: Vec<(u32, Option<u32>)> = runs.iter().map(|s| (s.interface, s.account)).collect();
    // Terms: eni-a 0, eni-b 1; accounts 111… 0, 222… 1, 333… 2.
    assert_eq!(subjects, [(0, Some(2)), (1, Some(1)), (1, Some(0))]);
}

#[test]
fn the_column_index_tells_which_number_columns_have_no_null() {
    // The fixtures mix formats (every column has nulls somewhere in a block); a v5 corpus has
    // blocks without any.
    let corpus = common::synth_corpus(6000, 2, 5, "v5");
    let dir = tempfile::tempdir().unwrap();
    let mut paths = inputs();
    paths.push(corpus.path().to_path_buf());
    build(dir.path(), &paths, &ReadOptions::default(), 1);
    let index = Index::open(dir.path()).unwrap();
    let (mut complete, mut with_nulls, mut told) = (0, 0, 0);
    for seg in index.segments() {
        for (block, b) in seg.blocks().unwrap().iter().enumerate() {
            for field in Field::ALL.iter().filter(|f| f.kind() == FieldKind::UInt) {
                let column = Column::Field(*field);
                let Some(values) = seg.read_column(block, column).unwrap() else {
                    assert!(!seg.has_no_nulls(block, column).unwrap());
                    continue;
                };
                let none_null = (0..values.len()).all(|i| values.get(i).is_some());
                // Never claimed wrongly; a bit-packed length may leave it untold.
                let says = seg.has_no_nulls(block, column).unwrap();
                assert!(
                    !says || none_null && b.record_count >= 2,
                    "{field:?} in block {block} of {}",
                    seg.path().display()
                );
                if none_null {
                    complete += 1;
                    told += usize::from(says);
                } else {
                    with_nulls += 1;
                }
            }
        }
    }
    assert!(
        complete > 0 && with_nulls > 0 && told * 10 >= complete * 9,
        "{complete} complete ({told} told), {with_nulls} with nulls"
    );
}

fn term_of(field: Field, v: Value<'_>) -> Option<Vec<u8>> {
    Some(match (field.kind(), v) {
        (FieldKind::Ip, Value::Ip(ip)) => ip_bytes(ip).to_vec(),
        (FieldKind::Text, Value::Str(s)) => s.as_bytes().to_vec(),
        _ => return None,
    })
}

#[test]
fn postings_hold_exactly_what_a_linear_scan_finds() {
    let dir = tempfile::tempdir().unwrap();
    let options = ReadOptions::default();
    build(dir.path(), &inputs(), &options, 2);
    let read = read_with(&inputs(), &options).without_duplicate_sources();
    let index = Index::open(dir.path()).unwrap();
    let names: BTreeMap<u32, String> = index
        .sources()
        .unwrap()
        .iter()
        .map(|s| (s.id, s.name.clone()))
        .collect();
    let mut checked = 0;
    for &field in POSTING_FIELDS {
        // Every distinct value the reader saw, plus one it never saw.
        let mut values: BTreeSet<String> = read
            .records
            .iter()
            .filter_map(|(_, r, _)| r.get(field).map(|v| v.to_string()))
            .collect();
        values.insert("absent-value".into());
        for value in &values {
            let expect: BTreeSet<(String, u64)> = read
                .records
                .iter()
                .filter(|(_, r, _)| r.get(field).is_some_and(|v| v.to_string() == *value))
                .map(|(n, r, _)| (n.clone(), r.provenance.line))
                .collect();
            let mut got = BTreeSet::new();
            for seg in index.segments() {
                let Some(dict) = seg.dictionary(Column::Field(field)).unwrap() else {
                    continue;
                };
                let probe_owned;
                let probe = match field.kind() {
                    FieldKind::UInt | FieldKind::Enum => {
                        let n = match field.kind() {
                            FieldKind::UInt => value.parse::<u64>().ok(),
                            _ => (0..8u64)
                                .find(|c| flowdex::format::schema::enum_word(field, *c) == Some(value.as_str())),
                        };
                        match n {
                            Some(n) => Term::UInt(n),
                            None => continue,
                        }
                    }
                    _ => {
                        let v = match field.kind() {
                            FieldKind::Ip => match value.parse() {
                                Ok(ip) => Value::Ip(ip),
                                Err(_) => continue,
                            },
                            _ => Value::Str(value),
                        };
                        probe_owned = term_of(field, v).unwrap();
                        if field.kind() == FieldKind::Ip {
                            Term::Ip(probe_owned.clone().try_into().unwrap())
                        } else {
                            Term::Bytes(&probe_owned)
                        }
                    }
                };
                let Some(t) = dict.find(&probe).unwrap() else { continue };
                let ids = seg.posting(Column::Field(field), &dict, t).unwrap();
                let mut by_block: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
                for id in ids {
                    let b = seg
                        .blocks()
                        .unwrap()
                        .iter()
                        .position(|b| id < b.first_record + b.record_count)
                        .unwrap();
                    by_block
                        .entry(b)
                        .or_default()
                        .push(id - seg.blocks().unwrap()[b].first_record);
                }
                for (b, offsets) in by_block {
                    let recs = seg.read_records(b).unwrap();
                    for o in offsets {
                        let r = &recs[o as usize];
                        got.insert((names[&r.provenance.source].clone(), r.provenance.line));
                    }
                }
            }
            assert_eq!(got, expect, "{field} = {value}");
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} values checked");
}

#[test]
fn a_second_identical_build_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let options = ReadOptions::default();
    let first = build(dir.path(), &inputs(), &options, 2);
    assert!(first.sources_added > 0);
    let manifest = std::fs::read(dir.path().join("MANIFEST")).unwrap();
    let second = build(dir.path(), &inputs(), &options, 2);
    assert_eq!((second.sources_added, second.records_added), (0, 0));
    assert_eq!(
        second.skipped.len() as u64,
        first.sources_added + first.skipped.len() as u64
    );
    // Every input of the second build is a copy of a source the first one indexed.
    assert!(second.skipped.iter().all(|s| s.in_index), "{:?}", second.skipped);
    assert_eq!(
        std::fs::read(dir.path().join("MANIFEST")).unwrap(),
        manifest,
        "nothing was published"
    );
    // A new source is added on its own.
    let extra = tempfile::tempdir().unwrap();
    std::fs::write(extra.path().join("new.log"), "srcaddr dstaddr\n192.0.2.1 192.0.2.2\n").unwrap();
    let third = build(dir.path(), &[extra.path().to_path_buf()], &options, 1);
    assert_eq!((third.sources_added, third.records_added), (1, 1));
}

#[test]
fn a_second_build_waits_for_no_one_it_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let _first = flowdex::build::IndexWriter::open(dir.path(), 1 << 20).unwrap();
    let Err(e) = flowdex::build::IndexWriter::open(dir.path(), 1 << 20) else {
        panic!("two writers at once")
    };
    assert!(e.to_string().contains("another flowdex build"), "{e}");
}

#[test]
fn compaction_keeps_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let options = ReadOptions::default();
    for p in inputs() {
        build(dir.path(), &[p], &options, 1);
    }
    let before = keyed(index_records(dir.path()));
    let lines_before = index_lines(dir.path());
    let segments = Index::open(dir.path()).unwrap().segments().len();
    assert!(segments > 1);
    let mut w = flowdex::build::IndexWriter::open(dir.path(), 64 << 20).unwrap();
    w.compact().unwrap();
    w.publish().unwrap();
    let index = Index::open(dir.path()).unwrap();
    assert_eq!(index.segments().len(), 1);
    index.verify().unwrap();
    assert_eq!(keyed(index_records(dir.path())), before);
    assert_eq!(index_lines(dir.path()), lines_before);
    let files = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("seg-"))
        .count();
    assert_eq!(files, 1, "old segment files are removed");
    // Compacting one segment again changes nothing, not even the manifest's bytes, which
    // evidence bundles cite by their SHA-256.
    let manifest = std::fs::read(dir.path().join("MANIFEST")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowdex"))
        .arg("compact")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 segment; nothing to merge"));
    assert_eq!(std::fs::read(dir.path().join("MANIFEST")).unwrap(), manifest);
}

/// Compaction rewrites records from their blocks: damage in the postings it does not read
/// must stop it, not vanish with the old segment.
#[test]
fn compaction_refuses_a_damaged_segment_and_leaves_the_index_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    for p in inputs() {
        build(dir.path(), &[p], &ReadOptions::default(), 1);
    }
    let last = Index::open(dir.path())
        .unwrap()
        .segments()
        .last()
        .unwrap()
        .path()
        .to_path_buf();
    let mut bytes = std::fs::read(&last).unwrap();
    let (_, sections) = flowdex::format::decode_footer(&bytes).unwrap();
    let postings = sections
        .iter()
        .find(|s| s.kind == flowdex::format::SectionKind::Postings && s.length > 0)
        .unwrap();
    bytes[(postings.offset + postings.length / 2) as usize] ^= 0x10;
    std::fs::write(&last, &bytes).unwrap();
    let manifest = std::fs::read(dir.path().join("MANIFEST")).unwrap();
    let mut w = flowdex::build::IndexWriter::open(dir.path(), 64 << 20).unwrap();
    let err = w.compact().unwrap_err().to_string();
    assert!(err.contains("postings") && err.contains("checksum"), "{err}");
    drop(w);
    assert_eq!(std::fs::read(dir.path().join("MANIFEST")).unwrap(), manifest);
    assert_eq!(std::fs::read(&last).unwrap(), bytes);
    // `verify` names the damage, without telling to run itself.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowdex"))
        .args(["verify", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("damaged: postings")
            && stderr.contains("rebuild the index")
            && !stderr.contains("run `flowdex verify`"),
        "{stderr}"
    );
}

/// An index of one segment built in `dir`, and that segment's path and bytes with `bit`
/// flipped in the middle of its column data.
fn one_segment_damaged_in_column_data(dir: &Path, bit: u8) -> (PathBuf, Vec<u8>) {
    build(dir, &[fixture("s3-text-quirks.log")], &ReadOptions::default(), 1);
    let path = only_segment(dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let (_, sections) = flowdex::format::decode_footer(&bytes).unwrap();
    let data = sections
        .iter()
        .find(|s| s.kind == flowdex::format::SectionKind::ColumnData)
        .unwrap();
    bytes[(data.offset + data.length / 2) as usize] ^= bit;
    (path, bytes)
}

#[test]
fn compact_refuses_a_damaged_index_of_one_segment_too() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = one_segment_damaged_in_column_data(dir.path(), 0x10);
    std::fs::write(&path, &bytes).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowdex"))
        .args(["compact", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("checksum") && !stderr.contains("nothing to merge"),
        "{stderr}"
    );
}

/// Damage in the column data is named by its frame's block and column, not by the start of a
/// section that may be hundreds of megabytes long.
#[test]
fn verify_names_the_damaged_frame_of_the_column_data() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = one_segment_damaged_in_column_data(dir.path(), 0x01);
    let err = flowdex::read::Segment::from_bytes(&path, Box::new(bytes))
        .and_then(|s| s.verify())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("block 0, column ") && err.contains("frame checksum mismatch"),
        "{err}"
    );
}

fn only_segment(dir: &Path) -> PathBuf {
    let index = Index::open(dir).unwrap();
    index.segments()[0].path().to_path_buf()
}

#[test]
fn every_flipped_byte_and_every_truncation_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    build(
        dir.path(),
        &[fixture("s3-text-quirks.log"), fixture("tgw-s3.log")],
        &ReadOptions::default(),
        1,
    );
    let path = only_segment(dir.path());
    let good = std::fs::read(&path).unwrap();
    let open = |bytes: Vec<u8>| flowdex::read::Segment::from_bytes(&path, Box::new(bytes)).and_then(|s| s.verify());
    open(good.clone()).unwrap();
    for i in 0..good.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = good.clone();
            bad[i] ^= bit;
            assert!(open(bad).is_err(), "flipping bit {bit:#x} of byte {i} went unnoticed");
        }
    }
    for len in 0..good.len() {
        assert!(
            open(good[..len].to_vec()).is_err(),
            "truncation to {len} bytes went unnoticed"
        );
    }
    // A zeroed page.
    let mut zeroed = good.clone();
    for b in zeroed.iter_mut().skip(64).take(4096) {
        *b = 0;
    }
    assert!(open(zeroed).is_err());
}

#[test]
fn searches_on_a_damaged_segment_fail_or_answer_exactly_right() {
    let dir = tempfile::tempdir().unwrap();
    build(
        dir.path(),
        &[
            fixture("s3-text-quirks.log"),
            fixture("tgw-s3.log"),
            fixture("bare-v5.log"),
        ],
        &ReadOptions::default(),
        1,
    );
    let path = only_segment(dir.path());
    let good = std::fs::read(&path).unwrap();
    // Postings alone (an exact count), records with a needle, a CIDR aggregation, a scan.
    let queries = [
        "srcaddr = 172.31.16.139 | stats count()",
        "addr = 172.31.9.69",
        "srcaddr = 172.31.0.0/16 | stats sum(bytes) as b by dstport",
        "bytes > 1000",
    ];
    let bound: Vec<_> = queries
        .iter()
        .map(|q| flowdex::query::bind(&flowdex::query::parse(q, &|_| Ok(String::new())).unwrap(), q).unwrap())
        .collect();
    let answers = |bytes: &[u8]| -> Vec<Option<String>> {
        std::fs::write(&path, bytes).unwrap();
        let Ok(index) = Index::open(dir.path()) else {
            return vec![None; queries.len()];
        };
        bound
            .iter()
            .map(|b| flowdex::search::run(&index, b).ok().map(|a| format!("{a:?}")))
            .collect()
    };
    let right = answers(&good);
    assert!(right
        .iter()
        .all(|a| a.as_ref().is_some_and(|a| a.contains("172.31") || a.contains("Int("))));
    let mut failed = 0;
    // Every third byte: every section and field class, at a third of the cost.
    for i in (0..good.len()).step_by(3) {
        let mut bad = good.clone();
        bad[i] ^= 0x10;
        for (q, got) in queries.iter().zip(answers(&bad)) {
            match got {
                None => failed += 1,
                Some(a) => assert_eq!(
                    Some(&a),
                    right[queries.iter().position(|x| x == q).unwrap()].as_ref(),
                    "byte {i}: `{q}` answered wrongly"
                ),
            }
        }
    }
    assert!(failed > 0);
    std::fs::write(&path, &good).unwrap();
}

#[test]
fn a_damaged_manifest_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &[fixture("s3-text-quirks.log")], &ReadOptions::default(), 1);
    let m = dir.path().join("MANIFEST");
    let mut bytes = std::fs::read(&m).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 4;
    std::fs::write(&m, bytes).unwrap();
    let Err(e) = Index::open(dir.path()) else {
        panic!("opened a damaged manifest")
    };
    assert!(
        e.to_string().contains("MANIFEST") && e.to_string().contains("checksum"),
        "{e}"
    );
}

#[test]
fn synth_corpora_round_trip_through_the_index() {
    for (format, seed) in [("v5", 3), ("v11", 4), ("tgw", 5)] {
        let corpus = common::synth_corpus(6000, 2, seed, format);
        let dir = tempfile::tempdir().unwrap();
        let options = ReadOptions::default();
        let paths = [corpus.path().to_path_buf()];
        // A small memory budget makes several segments.
        let writer = flowdex::build::IndexWriter::open(dir.path(), 128 << 10).unwrap();
        let surveyed = flowdex::input::discover(&paths)
            .into_iter()
            .map(|f| (flowdex::input::survey(&f), f))
            .collect();
        let files = writer.drop_known(surveyed, |(s, _)| s.sha256.clone(), |(_, f)| f.name.clone());
        writer
            .add_parallel(
                &files,
                2,
                |(s, _)| s.decoded_size,
                |(_, f), w| flowdex::input::read_input(f, &options, w),
                |_| {},
            )
            .unwrap();
        writer.publish().unwrap();
        let index = Index::open(dir.path()).unwrap();
        assert!(
            index.segments().len() > 2,
            "{format}: {} segments",
            index.segments().len()
        );
        index.verify().unwrap();
        let read = read_with(&paths, &options).without_duplicate_sources();
        let expect = keyed(read.records.iter().map(|(n, r, _)| (n.clone(), r.clone())));
        assert_eq!(expect.len(), 6000);
        assert_eq!(keyed(index_records(dir.path())), expect, "{format}");
        let lines: BTreeMap<(String, u64), Vec<u8>> = read
            .records
            .iter()
            .map(|(n, r, raw)| ((n.clone(), r.provenance.line), raw.clone()))
            .collect();
        assert_eq!(index_lines(dir.path()), lines, "{format}");
    }
}

/// Every file of an index folder but the lock, by name.
fn index_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "LOCK")
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn builds_are_byte_identical_for_any_input_order_and_thread_count() {
    let corpus = common::synth_corpus(20_000, 2, 21, "v5");
    let days = corpus.path().join("AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/04");
    let mut roots: Vec<PathBuf> = std::fs::read_dir(&days).unwrap().map(|e| e.unwrap().path()).collect();
    roots.sort();
    assert!(roots.len() >= 2);
    roots.push(fixture(""));
    let out = tempfile::tempdir().unwrap();
    let build = |name: &str, threads: &str, roots: &[PathBuf]| {
        let dir = out.path().join(name);
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_flowdex"))
            .args(["build", "--quiet", "--memory", "1M", "--threads", threads, "--output"])
            .arg(&dir)
            .args(roots)
            .status()
            .unwrap();
        assert!(status.code().is_some_and(|c| c <= 1), "{status}");
        index_files(&dir)
    };
    let one = build("one", "1", &roots);
    let segments = one.keys().filter(|k| k.starts_with("seg-")).count();
    assert!(segments > 3, "a small budget makes several segments: {segments}");
    let mut reversed = roots.clone();
    reversed.reverse();
    for (name, threads, roots) in [("two", "2", &roots), ("four-reversed", "4", &reversed)] {
        let other = build(name, threads, roots);
        assert_eq!(
            other.keys().collect::<Vec<_>>(),
            one.keys().collect::<Vec<_>>(),
            "{name}"
        );
        for (file, bytes) in &one {
            assert!(other[file] == *bytes, "{name}: {file} differs");
        }
    }
}

/// A folder holding one log of `lines` under a header with packet addresses.
fn pkt_log(lines: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let header = "version interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status pkt-srcaddr pkt-dstaddr\n";
    std::fs::write(dir.path().join("flows.log"), header.to_owned() + lines).unwrap();
    dir
}

#[test]
fn packet_addresses_share_terms_and_postings_with_their_twins() {
    // Synthetic v5 records: the packet's addresses are the record's but for the secondary
    // addresses of some interfaces.
    let corpus = common::synth_corpus(6000, 2, 3, "v5");
    // A NAT gateway's two records of one flow: `pkt-dstaddr` is the internet host behind the
    // gateway's own address, so the two columns' terms differ. Then two records whose packet
    // sources are each other's record sources: the same terms and counts, other ids.
    let nat = pkt_log(
        "5 eni-0aaaaaaaaaaaaaaa1 10.0.1.5 10.0.0.220 43416 5001 6 5 100 1712000000 1712000060 ACCEPT OK 10.0.1.5 203.0.113.5\n\
         5 eni-0aaaaaaaaaaaaaaa1 10.0.0.220 203.0.113.5 43416 5001 6 5 100 1712000000 1712000060 ACCEPT OK 10.0.1.5 203.0.113.5\n\
         5 eni-0aaaaaaaaaaaaaaa3 10.0.3.1 10.0.3.9 1 2 6 1 40 1712000000 1712000060 ACCEPT OK 10.0.3.2 10.0.3.9\n\
         5 eni-0aaaaaaaaaaaaaaa3 10.0.3.2 10.0.3.9 1 2 6 1 40 1712000000 1712000060 ACCEPT OK 10.0.3.1 10.0.3.9\n",
    );
    // Packet addresses that are the record's, always.
    let plain = pkt_log(
        "5 eni-0aaaaaaaaaaaaaaa2 10.0.1.5 10.0.2.6 43416 443 6 5 100 1712000000 1712000060 ACCEPT OK 10.0.1.5 10.0.2.6\n\
         5 eni-0aaaaaaaaaaaaaaa2 10.0.2.6 10.0.1.5 443 43416 6 5 100 1712000000 1712000060 ACCEPT OK 10.0.2.6 10.0.1.5\n\
         5 eni-0aaaaaaaaaaaaaaa2 10.0.1.5 10.0.2.7 43417 443 6 5 100 1712000001 1712000061 REJECT OK 10.0.1.5 10.0.2.7\n",
    );
    // Swapped packet sources alone: the same terms, so the twins share them, but two postings
    // of their own.
    let swapped = pkt_log(
        "5 eni-0aaaaaaaaaaaaaaa3 10.0.3.1 10.0.3.9 1 2 6 1 40 1712000000 1712000060 ACCEPT OK 10.0.3.2 10.0.3.9\n\
         5 eni-0aaaaaaaaaaaaaaa3 10.0.3.2 10.0.3.9 1 2 6 1 40 1712000000 1712000060 ACCEPT OK 10.0.3.1 10.0.3.9\n",
    );
    // Whether the packet columns' terms are the record columns' (`None`: either), and how many
    // postings are shared and own (`None`: most are shared, some not).
    for (paths, twin_terms, counts) in [
        (vec![plain.path().to_path_buf()], Some(true), Some((2 + 3, 0))),
        (vec![swapped.path().to_path_buf()], Some(true), Some((1, 2))),
        (vec![corpus.path().to_path_buf()], None, None),
        (
            vec![corpus.path().to_path_buf(), nat.path().to_path_buf()],
            Some(false),
            None,
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let options = ReadOptions::default();
        build(dir.path(), &paths, &options, 1);
        let index = Index::open(dir.path()).unwrap();
        assert_eq!(index.segments().len(), 1);
        // verify compares every posting, shared or not, with the ids its column holds.
        index.verify().unwrap();
        let read = read_with(&paths, &options).without_duplicate_sources();
        assert_eq!(
            keyed(index_records(dir.path())),
            keyed(read.records.iter().map(|(n, r, _)| (n.clone(), r.clone())))
        );
        let seg = &index.segments()[0];
        let (mut shared, mut own) = (0, 0);
        for field in [Field::PktSrcaddr, Field::PktDstaddr] {
            let dict = seg.dictionary(Column::Field(field)).unwrap().unwrap();
            if let Some(twin) = twin_terms {
                assert_eq!(dict.has_twin_terms(), twin, "{field}");
            }
            // Without the postings section's length, where the last own posting ends is unknown;
            // a twin's shared terms say so themselves.
            let told = if dict.has_twin_terms() {
                dict.len()
            } else {
                dict.len() - 1
            };
            for t in 0..told {
                let (lo, hi) = dict.posting_range(t, u64::MAX).unwrap().unwrap();
                if lo == hi {
                    shared += 1;
                } else {
                    own += 1;
                }
            }
        }
        if let Some(counts) = counts {
            assert_eq!((shared, own), counts);
            continue;
        }
        assert!(shared > 10 * own && own > 0, "{shared} shared, {own} own postings");
        // The NAT flow is found by its packet-level destination: two records in `pkt-dstaddr`,
        // one in `dstaddr`, so this posting is the twin's own.
        if twin_terms == Some(false) {
            let dict = seg.dictionary(Column::Field(Field::PktDstaddr)).unwrap().unwrap();
            let host = Term::Ip(ip_bytes("203.0.113.5".parse().unwrap()));
            let t = dict.find(&host).unwrap().unwrap();
            assert_eq!(
                seg.posting(Column::Field(Field::PktDstaddr), &dict, t).unwrap().len(),
                2
            );
        }
    }
}

#[test]
fn packet_addresses_equal_to_their_bases_add_no_column_bytes() {
    let lines = |pkt: bool| {
        let extra = |a: &str, b: &str| if pkt { format!(" {a} {b}") } else { String::new() };
        let mut text = format!(
            "version srcaddr dstaddr srcport dstport protocol packets bytes start end action{}\n",
            extra("pkt-srcaddr", "pkt-dstaddr")
        );
        for i in 0..3000u32 {
            let (src, dst) = (
                format!("10.0.{}.{}", i % 7, i % 250),
                format!("10.1.{}.{}", i % 5, i % 199),
            );
            text += &format!(
                "2 {src} {dst} {} 443 6 1 40 {} {} ACCEPT{}\n",
                1024 + i,
                1_712_000_000 + i,
                1_712_000_060 + i,
                extra(&src, &dst)
            );
        }
        text
    };
    let column_data = |pkt: bool| {
        let input = tempfile::tempdir().unwrap();
        std::fs::write(input.path().join("flows.log"), lines(pkt)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        build(dir.path(), &[input.path().to_path_buf()], &ReadOptions::default(), 1);
        let index = Index::open(dir.path()).unwrap();
        index.verify().unwrap();
        let sizes = index.segments()[0].section_sizes();
        sizes
            .iter()
            .find(|(kind, _)| *kind == flowdex::format::SectionKind::ColumnData)
            .unwrap()
            .1
    };
    // Three blocks of each packet column point at their bases' frames.
    assert_eq!(column_data(true), column_data(false));
}

#[test]
fn ends_come_back_through_both_decoders_whatever_their_start() {
    // An end after its start, one before it, one without a start, a null end.
    let input = tempfile::tempdir().unwrap();
    std::fs::write(
        input.path().join("ends.log"),
        "version srcaddr dstaddr srcport dstport protocol packets bytes start end action\n\
         2 10.0.0.1 10.0.0.2 1 2 6 1 40 1712000000 1712000060 ACCEPT\n\
         2 10.0.0.1 10.0.0.2 1 2 6 1 40 1712000100 1712000000 ACCEPT\n\
         2 10.0.0.1 10.0.0.2 1 2 6 1 40 - 1712000200 ACCEPT\n\
         2 10.0.0.1 10.0.0.2 1 2 6 1 40 1712000300 - ACCEPT\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let paths = [input.path().to_path_buf()];
    build(dir.path(), &paths, &ReadOptions::default(), 1);
    let index = Index::open(dir.path()).unwrap();
    index.verify().unwrap();
    let seg = &index.segments()[0];
    let end = Column::Field(Field::End);
    let whole = seg.read_column(0, end).unwrap().unwrap();
    let whole: Vec<Option<u64>> = (0..whole.len()).map(|i| whole.get(i)).collect();
    let some = seg.read_column_at(0, end, &[0, 1, 2, 3]).unwrap().unwrap();
    let records = seg.read_records(0).unwrap();
    let want: Vec<Option<u64>> = records.iter().map(|r| r.end).collect();
    assert_eq!(whole, want);
    assert_eq!(some, want);
    // Both times at once, `start` decoded once for both.
    let starts: Vec<Option<u64>> = records.iter().map(|r| r.start).collect();
    let (s, e) = seg.read_times(0).unwrap();
    let (s, e) = (s.unwrap(), e.unwrap());
    assert_eq!(
        (0..4).map(|i| (s.get(i), e.get(i))).collect::<Vec<_>>(),
        starts.iter().copied().zip(want.iter().copied()).collect::<Vec<_>>()
    );
    assert_eq!(
        seg.read_times_at(0, &[1, 3]).unwrap(),
        (Some(vec![starts[1], starts[3]]), Some(vec![want[1], want[3]]))
    );
    let mut read: Vec<Option<u64>> = read_with(&paths, &ReadOptions::default())
        .records
        .iter()
        .map(|(_, r, _)| r.end)
        .collect();
    let mut got = want.clone();
    read.sort();
    got.sort();
    assert_eq!(got, read);
}

#[test]
fn the_commonest_value_is_the_complement_of_the_others_and_the_nulls() {
    // Five ACCEPTs, two REJECTs and two NODATA records without an action.
    let mut lines = String::new();
    for (i, action) in ["ACCEPT", "REJECT", "ACCEPT", "ACCEPT", "REJECT", "ACCEPT", "ACCEPT"]
        .iter()
        .enumerate()
    {
        lines += &format!(
            "5 eni-0aaaaaaaaaaaaaaa1 10.0.1.5 10.0.2.{i} 43416 443 6 5 100 171200000{i} 1712000060 {action} OK 10.0.1.5 10.0.2.{i}\n"
        );
    }
    lines += "5 eni-0aaaaaaaaaaaaaaa1 - - - - - - - 1712000001 1712000060 - NODATA - -\n";
    lines += "5 eni-0aaaaaaaaaaaaaaa1 - - - - - - - 1712000003 1712000060 - NODATA - -\n";
    let input = pkt_log(&lines);
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &[input.path().to_path_buf()], &ReadOptions::default(), 1);
    let index = Index::open(dir.path()).unwrap();
    // verify compares every posting, the complement and the nulls' too, with the column.
    index.verify().unwrap();
    let seg = &index.segments()[0];
    let records = seg.read_records(0).unwrap();
    // The reader's records, in the index's record order (told apart by line): the scan the
    // postings are compared with.
    let read = read_with(&[input.path().to_path_buf()], &ReadOptions::default());
    let scanned: Vec<&FlowRecord> = records
        .iter()
        .map(|r| {
            let line = r.provenance.line;
            &read
                .records
                .iter()
                .find(|(_, s, _)| s.provenance.line == line)
                .unwrap()
                .1
        })
        .collect();
    for (field, nulls) in [(Field::Action, 2), (Field::LogStatus, 0), (Field::Protocol, 2)] {
        let column = Column::Field(field);
        let dict = seg.dictionary(column).unwrap().unwrap();
        let null_posting = dict.complement_nulls(u64::MAX).unwrap().expect("a complement posting");
        assert_eq!(null_posting.count, nulls, "{field}");
        for t in 0..dict.len() {
            let Term::UInt(code) = dict.term(t).unwrap() else {
                panic!()
            };
            let text = seg.value(field, code, None).unwrap().to_string();
            let want: Vec<u32> = (0..scanned.len() as u32)
                .filter(|&i| scanned[i as usize].get(field).is_some_and(|v| v.to_string() == text))
                .collect();
            assert_eq!(
                seg.posting(column, &dict, t).unwrap().iter().collect::<Vec<_>>(),
                want,
                "{field} {code}"
            );
        }
    }
    // The answers through the searcher match a scan of the records.
    let accepted = records
        .iter()
        .filter(|r| r.action == Some(flowdex::record::Action::Accept))
        .count();
    assert_eq!(accepted, 5);
    let bound = flowdex::query::bind(
        &flowdex::query::parse("action = ACCEPT", &|_: &str| unreachable!()).unwrap(),
        "action = ACCEPT",
    )
    .unwrap();
    assert_eq!(flowdex::exec::count(&index, &bound.filter).unwrap(), 5);
}

#[test]
fn records_decoded_into_reused_records_keep_nothing_of_the_previous_ones() {
    // The fixtures mix formats, versions and `-`: a record decoded over one of another format
    // must lose the fields it lacks, its nulls and its unknown fields.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &inputs(), &ReadOptions::default(), 1);
    let index = Index::open(dir.path()).unwrap();
    let mut reused = Vec::new();
    let mut compared = 0;
    for seg in index.segments() {
        let dicts = seg.dictionaries();
        // Every block's records, forwards then backwards, into the same records.
        for block in (0..seg.block_count()).chain((0..seg.block_count()).rev()) {
            let n = seg.blocks().unwrap()[block].record_count;
            for offsets in [(0..n).collect::<Vec<u32>>(), (0..n).rev().step_by(3).rev().collect()] {
                seg.read_records_into(block, &offsets, None, &dicts, &mut reused)
                    .unwrap();
                let fresh = seg.read_records_at(block, &offsets, None, &dicts).unwrap();
                // The first offsets.len() are the block's; records after them are spares.
                assert_eq!(reused[..offsets.len()], fresh[..], "block {block}");
                compared += fresh.len();
            }
        }
    }
    assert!(compared > 400, "{compared}");
}

#[test]
fn original_lines_come_in_the_order_asked_repeats_included() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &inputs(), &ReadOptions::default(), 1);
    let index = Index::open(dir.path()).unwrap();
    // Every record of every block, backwards, each asked for twice, and the first again.
    let mut at = Vec::new();
    for (s, seg) in index.segments().iter().enumerate() {
        for (b, block) in seg.blocks().unwrap().iter().enumerate() {
            for offset in 0..block.record_count {
                let place = flowdex::read::RecordAt {
                    segment: s as u32,
                    block: b as u32,
                    offset,
                };
                at.extend([place, place]);
            }
        }
    }
    at.reverse();
    at.push(at[0]);
    let lines = index.original_lines(&at).unwrap();
    assert_eq!(lines.len(), at.len());
    for (place, line) in at.iter().zip(&lines) {
        let seg = &index.segments()[place.segment as usize];
        let one = seg
            .read_lines_at(place.block as usize, &[place.offset], &seg.dictionaries())
            .unwrap();
        assert_eq!(&one[0].line, line, "{place:?}");
        assert!(!line.is_empty());
    }
}

#[test]
fn copies_among_the_inputs_are_listed_with_the_source_they_repeat() {
    let inputs = tempfile::tempdir().unwrap();
    let line = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
                2 123456789012 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1714000000 1714000060 ACCEPT OK\n";
    for name in ["a.log", "b.log"] {
        std::fs::write(inputs.path().join(name), line).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let first = build(dir.path(), &[inputs.path().to_path_buf()], &ReadOptions::default(), 2);
    assert_eq!(first.sources_added, 1);
    let name = |f: &str| inputs.path().join(f).to_string_lossy().into_owned();
    assert_eq!(
        first.skipped,
        [flowdex::build::Skipped {
            name: name("b.log"),
            same_as: name("a.log"),
            in_index: false,
            rejected_in_index: 0,
        }]
    );
}

#[test]
fn a_second_build_of_the_same_files_says_they_are_already_in_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let idx = dir.path().join("idx");
    let build = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowdex"))
            .args(["build", "--output"])
            .arg(&idx)
            .arg(fixture("tgw-s3.log"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8(out.stderr).unwrap()
    };
    build();
    let said = build();
    assert!(said.contains("tgw-s3.log: already in the index"), "{said}");
    assert!(!said.contains("the same bytes as"), "{said}");
    // One file given twice to a new index is read once, and said to be given twice.
    let fresh = dir.path().join("fresh");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowdex"))
        .args(["build", "--output"])
        .arg(&fresh)
        .args([fixture("tgw-s3.log"), fixture("tgw-s3.log")])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("tgw-s3.log: given twice"), "{said}");
}

#[test]
fn a_path_that_is_no_index_is_told_for_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::copy(fixture("tgw-s3.log"), logs.join("a.log")).unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let info = |p: &Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowdex"))
            .arg("info")
            .arg(p)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8(out.stderr).unwrap()
    };
    let said = info(&dir.path().join("missing"));
    assert!(said.contains("missing: no such folder"), "{said}");
    let said = info(&logs.join("a.log"));
    assert!(said.contains("a.log: is a file, not an index folder"), "{said}");
    let said = info(&logs);
    assert!(
        said.contains("it holds `a.log`); to index the flow logs in it: `flowdex build --output NEW.idx "),
        "{said}"
    );
    let said = info(&dir.path().join("empty"));
    assert!(
        said.contains("not a flowdex index (no MANIFEST); build one with `flowdex build --output "),
        "{said}"
    );
    // An interrupted first build's leftovers are no flow logs.
    let half = dir.path().join("half");
    std::fs::create_dir(&half).unwrap();
    for name in ["MANIFEST.tmp", "seg-00000000.fdx.tmp", "LOCK"] {
        std::fs::write(half.join(name), "").unwrap();
    }
    let said = info(&half);
    assert!(
        said.contains("not a flowdex index (no MANIFEST); build one with"),
        "{said}"
    );
}

#[test]
fn a_build_names_failed_sources_however_many_lines_it_rejected() {
    // Six rejected lines fill the summary's list of rejects; a source that broke, sorted
    // after them, must still be named.
    let inputs = tempfile::tempdir().unwrap();
    std::fs::write(inputs.path().join("a.log"), "a\nb\nc\nd\ne\nf\n").unwrap();
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&std::fs::read(fixture("tgw-s3.log")).unwrap()).unwrap();
        e.finish().unwrap()
    };
    std::fs::write(inputs.path().join("b.log.gz"), &gz[..gz.len() / 2]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let idx = dir.path().join("idx");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowdex"))
        .args(["build", "--output"])
        .arg(&idx)
        .arg(inputs.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("b.log.gz: "), "the failed source is named: {stderr}");
    assert!(stderr.contains("more rejected lines: `flowdex info"), "{stderr}");
    assert!(!stderr.contains("more failed sources"), "{stderr}");
}

#[test]
fn a_build_names_its_first_rejected_lines_and_info_lists_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let summary = build(dir.path(), &[fixture("rejects.log")], &ReadOptions::default(), 2);
    assert!(summary.rejected_added > 5, "{summary:?}");
    assert_eq!(summary.first_rejects.len(), 5);
    assert!(summary
        .first_rejects
        .iter()
        .all(|p| p.contains("rejects.log:") && p.contains(": rejected: ")));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowdex"))
        .args(["info", "--format", "json"])
        .arg(dir.path())
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Every count a source has, so that they reconcile: lines = headers + records + rejected.
    let source = &info["sources"][0];
    let count = |k: &str| source[k].as_u64().unwrap_or_else(|| panic!("{k}: {source}"));
    assert_eq!(count("lines"), count("headers") + count("records") + count("rejected"));
    assert!(source["blank_lines"].is_u64() && source["gzip"].is_boolean() && source["entry"].is_null());
    assert!(source["file"].as_str().unwrap().ends_with("rejects.log"), "{source}");
    let rejects = info["sources"][0]["rejects"].as_array().unwrap();
    assert_eq!(rejects.len() as u64, summary.rejected_added);
    assert!(rejects[0]["reason"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(rejects[0]["line"].as_u64().is_some());
}

#[test]
fn a_damaged_sources_file_is_refused_before_any_name_is_read_from_it() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &inputs(), &ReadOptions::default(), 2);
    let name = Index::open(dir.path())
        .unwrap()
        .manifest()
        .sources_file
        .clone()
        .unwrap();
    let path = dir.path().join(name);
    let clean = std::fs::read(&path).unwrap();
    // Every byte of the entries' chunks, one at a time, in steps: a name, or the wrong name,
    // must never come back from a damaged file.
    let mut checked = 0;
    for at in (64..clean.len() - 4).step_by(7) {
        let mut bytes = clean.clone();
        bytes[at] ^= 8;
        std::fs::write(&path, &bytes).unwrap();
        // Damage to the header or the table may already fail the opening.
        if let Ok(index) = Index::open(dir.path()) {
            assert!(index.source(0).is_err(), "byte {at}");
            assert!(index.source_labels(&[0, 1]).is_err(), "byte {at}");
            checked += 1;
        }
    }
    assert!(checked > 10);
}

#[test]
fn verify_finds_a_manifest_whose_counts_and_spans_disagree_with_the_index() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &inputs(), &ReadOptions::default(), 2);
    let clean = flowdex::read::read_manifest(dir.path()).unwrap();
    type Edit = dyn Fn(&mut flowdex::format::manifest::Manifest);
    let edits: [(&str, &Edit); 4] = [
        ("spans", &|m| {
            m.segments[0].min_start = m.segments[0].min_start.map(|t| t + 1)
        }),
        ("spans", &|m| m.segments[0].max_end = None),
        ("rejected lines", &|m| m.rejected_lines += 1),
        ("next source id", &|m| m.next_source = 0),
    ];
    for (what, edit) in edits {
        let mut m = clean.clone();
        edit(&mut m);
        std::fs::write(dir.path().join("MANIFEST"), m.encode()).unwrap();
        let err = Index::open(dir.path()).unwrap().verify().unwrap_err().to_string();
        assert!(err.contains(what), "{what}: {err}");
    }
    std::fs::write(dir.path().join("MANIFEST"), clean.encode()).unwrap();
    Index::open(dir.path()).unwrap().verify().unwrap();
}

/// Entries of a sources file whose own counts disagree, or whose hash is no SHA-256, are damage
/// even under a good checksum.
#[test]
fn verify_finds_a_source_entry_whose_counts_disagree() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &inputs(), &ReadOptions::default(), 2);
    let clean = flowdex::read::read_manifest(dir.path()).unwrap();
    let entries = Index::open(dir.path()).unwrap().sources().unwrap().to_vec();
    let name = clean.sources_file.clone().unwrap();
    type Edit = dyn Fn(&mut flowdex::format::manifest::SourceEntry);
    let edits: [(&str, &Edit); 2] = [
        ("headers +", &|s| s.lines += 1),
        ("no SHA-256", &|s| s.sha256 = "zz".into()),
    ];
    for (what, edit) in edits {
        let mut edited = entries.clone();
        edit(&mut edited[0]);
        let bytes = flowdex::format::sources::encode(&edited);
        std::fs::write(dir.path().join(&name), &bytes).unwrap();
        let mut m = clean.clone();
        m.sources_crc = Some(flowdex::format::sources::stored_crc(&bytes));
        std::fs::write(dir.path().join("MANIFEST"), m.encode()).unwrap();
        let err = Index::open(dir.path()).unwrap().verify().unwrap_err().to_string();
        assert!(err.contains(what), "{what}: {err}");
    }
}

/// A segment or sources file of another build, of the same name and size, is not taken for the
/// index's own: the manifest records their checksums.
#[test]
fn files_of_another_build_are_refused_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let text = |protocol: u8| {
        format!(
            "version interface-id srcaddr dstaddr protocol start end action log-status\n\
             2 eni-a 10.0.0.1 10.0.0.2 {protocol} 1711929600 1711929660 ACCEPT OK\n"
        )
    };
    let (ours, theirs) = (tmp.path().join("ours"), tmp.path().join("theirs"));
    // One byte differs: the protocol, 6 or 7.
    for (idx, protocol) in [(&theirs, 7), (&ours, 6)] {
        std::fs::write(logs.join("a.log"), text(protocol)).unwrap();
        build(idx, std::slice::from_ref(&logs), &ReadOptions::default(), 1);
    }
    for file in ["seg-00000000.fdx", "sources-00000001.fdx"] {
        let swapped = tmp.path().join(format!("swapped-{file}"));
        std::fs::create_dir(&swapped).unwrap();
        for entry in std::fs::read_dir(&ours).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), swapped.join(entry.file_name())).unwrap();
        }
        std::fs::copy(theirs.join(file), swapped.join(file)).unwrap();
        let err = Index::open(&swapped).err().unwrap().to_string();
        assert!(err.contains("a file of another build"), "{file}: {err}");
    }
    Index::open(&ours).unwrap().verify().unwrap();
}

/// A byte-order mark before a file's first line is part of that line's original bytes: the
/// index gives the line back with it, as the file holds it (and as its SHA-256 covers it).
#[test]
fn a_byte_order_mark_stays_on_the_first_line_it_preceded() {
    let record = "2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1418530010 1418530070 ACCEPT OK";
    let (dir, index) = common::index_of_text(&format!("\u{feff}{record}\n{record}\n"));
    assert_eq!(index.manifest().records(), 2);
    let lines = index_lines(&dir.path().join("idx"));
    let got: Vec<&Vec<u8>> = lines.values().collect();
    assert_eq!(
        got,
        [
            &[b"\xEF\xBB\xBF", record.as_bytes()].concat(),
            &record.as_bytes().to_vec()
        ]
    );
}

/// The mark belongs to the first line whatever becomes of it: rejected as too long, it does not
/// move to the next line. And `--format raw`, which streams lines, leaves it out.
#[test]
fn a_byte_order_mark_is_the_first_lines_only_and_raw_output_leaves_it_out() {
    let record = "2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1418530010 1418530070 ACCEPT OK";
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("bom.log");
    std::fs::write(&log, format!("\u{feff}{record} {}\n{record}\n", "x".repeat(200))).unwrap();
    let options = ReadOptions {
        limits: flowdex::input::Limits {
            max_line_bytes: 150,
            ..flowdex::input::Limits::default()
        },
        ..ReadOptions::default()
    };
    let got = read_with(std::slice::from_ref(&log), &options);
    assert_eq!((got.records.len(), got.reports[0].rejected), (1, 1));
    assert_eq!(got.records[0].2, record.as_bytes(), "line 2 is the file's line 2");

    let (dir, _index) = common::index_of_text(&format!("\u{feff}{record}\n"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowdex"))
        .args(["search", "--format", "raw"])
        .arg(dir.path().join("idx"))
        .arg("version = 2")
        .output()
        .unwrap();
    assert_eq!(out.stdout, [record.as_bytes(), b"\n"].concat());
}

/// What a checksum cannot catch in a manifest rewritten with a valid one: a segment left out
/// (its sources' records no longer add up), generation 0. And a segment span with one bound
/// `null`, as earlier builds wrote for a segment of starts only, is kept for time windows.
#[test]
fn verify_finds_a_forged_manifest_and_windows_keep_half_known_spans() {
    use flowdex::format::manifest::Manifest;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    std::fs::write(
        &a,
        "version interface-id srcaddr dstaddr start end action log-status\n\
         2 eni-a 10.0.0.1 10.0.0.2 1711929600 1711929660 ACCEPT OK\n",
    )
    .unwrap();
    std::fs::write(
        &b,
        "version interface-id srcaddr dstaddr start action log-status\n\
         2 eni-b 10.0.0.1 10.0.0.3 1711933200 ACCEPT OK\n",
    )
    .unwrap();
    let idx = dir.path().join("idx");
    build(&idx, std::slice::from_ref(&a), &ReadOptions::default(), 1);
    build(&idx, std::slice::from_ref(&b), &ReadOptions::default(), 1);
    let manifest_path = idx.join("MANIFEST");
    let good = std::fs::read(&manifest_path).unwrap();
    let manifest = Manifest::decode(&good).unwrap();
    assert_eq!(manifest.segments.len(), 2);
    let verify = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowdex"))
            .args(["verify", idx.to_str().unwrap()])
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let forge = |edit: &dyn Fn(&mut Manifest)| {
        let mut m = manifest.clone();
        edit(&mut m);
        std::fs::write(&manifest_path, m.encode()).unwrap();
    };
    forge(&|m| {
        m.segments.pop();
    });
    let (code, err) = verify();
    assert_eq!(code, Some(2));
    assert!(
        err.contains("counts 1 records in its segments and 2 from its sources"),
        "{err}"
    );
    forge(&|m| m.generation = 0);
    let (code, err) = verify();
    assert_eq!(code, Some(2));
    assert!(err.contains("generation 0"), "{err}");
    // b.log's segment as an earlier build wrote it: no `end` column, so no `max_end`.
    forge(&|m| m.segments[1].max_end = None);
    let index = Index::open_window(&idx, (1711933200, 1711933260)).unwrap();
    assert_eq!(index.segments().len(), 1, "the start-only segment is kept");
    std::fs::write(&manifest_path, good).unwrap();
    assert_eq!(verify().0, Some(0));
}

/// `verify` holds a term's time span to its segment's version: from version 10 the seconds
/// its records cover, before it their smallest start and largest end. The same segment bytes,
/// labelled version 9, differ from that rule for records with one time.
#[test]
fn verify_takes_a_term_s_time_span_by_the_segment_s_version() {
    let (_dir, index) = common::index_of_text(
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
         2 1 eni-1 10.9.9.9 10.1.2.3 1 2 6 1 60 - 1712000200 ACCEPT OK\n\
         2 1 eni-1 10.9.9.9 10.1.2.4 1 2 6 1 60 1712000300 - ACCEPT OK\n",
    );
    let path = index.segments()[0].path().to_path_buf();
    let mut bytes = std::fs::read(&path).unwrap();
    let segment = |bytes: &[u8]| flowdex::read::Segment::from_bytes(&path, Box::new(bytes.to_vec())).unwrap();
    segment(&bytes).verify().unwrap();
    use flowdex::format::{crc32, HEADER_CRC_OFFSET, HEADER_VERSION_OFFSET};
    bytes[HEADER_VERSION_OFFSET..HEADER_CRC_OFFSET].copy_from_slice(&9u32.to_le_bytes());
    let crc = crc32(&bytes[..HEADER_CRC_OFFSET]);
    bytes[HEADER_CRC_OFFSET..HEADER_CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
    let err = segment(&bytes).verify().unwrap_err().to_string();
    assert!(err.contains("time span differs from the records"), "{err}");
}
