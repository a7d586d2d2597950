//! The fuzz targets' inputs on stable: every seed (`fuzz/seeds/TARGET/`) and every reproducer of
//! a bug a fuzzer found (`tests/fuzz/TARGET/`, named after the bug) goes through the same harness
//! the target runs (`fuzz/src/lib.rs`), so a fixed bug stays fixed without nightly or cargo-fuzz.
//! The harnesses panic when flowdex breaks an invariant; here that fails the test, naming the file.

mod common;
#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::Path;

fn replay(target: &str, harness: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut replayed = 0;
    for dir in [
        root.join("fuzz/seeds").join(target),
        root.join("tests/fuzz").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).unwrap();
            if std::panic::catch_unwind(|| harness(&data)).is_err() {
                panic!("{} breaks an invariant (see the panic above)", path.display());
            }
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no inputs for {target}");
}

#[test]
fn line_parser_inputs() {
    replay("line_parser", harness::line_parser);
}

#[test]
fn log_format_inputs() {
    replay("log_format", harness::log_format);
}

#[test]
fn gzip_inputs() {
    replay("gzip", harness::gzip);
}

#[test]
fn tar_inputs() {
    replay("tar", harness::tar);
}

#[test]
fn zip_inputs() {
    replay("zip", harness::zip);
}

#[test]
fn cloudwatch_json_inputs() {
    replay("cloudwatch_json", harness::cloudwatch_json);
}

#[test]
fn query_parser_inputs() {
    replay("query_parser", harness::query_parser);
}

#[test]
fn segment_inputs() {
    replay("segment", harness::segment);
}

#[test]
fn sources_inputs() {
    replay("sources", harness::sources);
}

#[test]
fn differential_inputs() {
    replay("differential", harness::differential);
}

/// Reads `text` as one S3 text source and returns the reasons of its rejected lines.
fn rejects_of(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.log");
    std::fs::write(&path, text).unwrap();
    let read = common::read(&[path], None);
    read.rejects.into_iter().map(|(_, _, reason)| reason).collect()
}

#[test]
fn microsecond_times_are_rejected_as_out_of_range() {
    let rejects = rejects_of(&format!(
        "{}\n2 123456789010 eni-1 - - - - - - - 1512564058201000 1512564059 - SKIPDATA\n",
        flowdex::input::DEFAULT_V2
    ));
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert!(rejects[0].contains("out of range"), "{rejects:?}");
}

#[test]
fn addresses_with_long_digit_runs_are_rejected_not_a_panic() {
    let rejects = rejects_of(&format!(
        "{}\n2 123456789010 eni-1 99999999999 10.0.0.1 1 2 6 1 40 1700000000 1700000060 ACCEPT OK\n",
        flowdex::input::DEFAULT_V2
    ));
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert!(rejects[0].contains("IP address"), "{rejects:?}");
}

#[test]
fn a_column_stated_larger_than_its_zstd_frame_can_hold_is_corrupt_not_allocated() {
    // The reproducer's column index says a column decompresses to almost 4 GiB; the reader
    // allocated that before decompressing.
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/segment/zstd-stated-size-of-4-gib-allocated-up-front");
    let mut data = std::fs::read(path).unwrap()[1..].to_vec();
    // Section checksums now catch the damage at open; an attacker can recompute them, and the
    // size check behind them must still hold.
    harness::fix_checksums(&mut data);
    let seg = flowdex::read::Segment::from_bytes(Path::new("seg.fdx"), Box::new(data)).unwrap();
    let errors: Vec<String> = (0..seg.block_count())
        .filter_map(|b| seg.read_records(b).err())
        .map(|e| e.to_string())
        .collect();
    assert!(errors.iter().any(|e| e.contains("zstd frame can hold")), "{errors:?}");
}

#[test]
fn an_event_after_a_text_payload_with_a_blank_line_has_a_line_number_of_its_own() {
    // Events were numbered by counting events and payload lines but not the payload's blank
    // lines, so the event took the number of the payload's last line and `show` gave that line.
    let reproducer = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/cloudwatch_json/event-after-a-text-payload-with-a-blank-line-took-a-payload-line-number");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("firehose.json");
    std::fs::write(&path, &std::fs::read(reproducer).unwrap()[1..]).unwrap();
    let read = common::read(&[path], None);
    let lines: Vec<u64> = read.records.iter().map(|(_, r, _)| r.provenance.line).collect();
    assert_eq!(lines, [1, 3, 4]);
}

/// The segment of golden `tests/compat/{golden}` with its header saying `version`, its
/// checksums made to hold: only the version's rules may refuse it.
fn relabelled(golden: &str, version: u32) -> flowdex::read::Segment {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/compat")
        .join(golden)
        .join("seg-00000000.fdx");
    let mut data = std::fs::read(path).unwrap();
    data[8..12].copy_from_slice(&version.to_le_bytes());
    harness::fix_checksums(&mut data);
    flowdex::read::Segment::from_bytes(Path::new("seg.fdx"), Box::new(data)).unwrap()
}

#[test]
fn a_version_6_segment_relabelled_version_5_is_refused_where_it_uses_version_6_forms() {
    use flowdex::format::schema::Column;
    use flowdex::record::Field;
    let (v6, v5) = (relabelled("v6", 6), relabelled("v6", 5));
    // A complement posting is a version 6 dictionary form.
    let action = Column::Field(Field::Action);
    assert!(v6.dictionary(action).unwrap().is_some());
    let refused = v5.dictionary(action).unwrap_err().to_string();
    assert!(refused.contains("no version 5 dictionary"), "{refused}");
    // Bit-packed frames: every block reads in version 6; some block fails in version 5.
    let read = |seg: &flowdex::read::Segment| {
        (0..seg.block_count())
            .map(|b| seg.read_column(b, Column::Line))
            .collect::<Vec<_>>()
    };
    assert!(read(&v6).iter().all(Result::is_ok));
    let errors: Vec<String> = read(&v5)
        .into_iter()
        .filter_map(Result::err)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("bit-packed column where none may be")),
        "{errors:?}"
    );
}

#[test]
fn the_sections_of_version_7_are_required_from_it_and_refused_before() {
    assert!(relabelled("v7", 7).skipdata().unwrap().is_some());
    assert!(relabelled("v7", 7).slot_runs().unwrap().is_some());
    let refused = relabelled("v7", 6).skipdata().unwrap_err().to_string();
    assert!(
        refused.contains("a version 6 segment has no skipdata section"),
        "{refused}"
    );
    let refused = relabelled("v7", 6).slot_runs().err().unwrap().to_string();
    assert!(
        refused.contains("a version 6 segment has no slot runs section"),
        "{refused}"
    );
    let missing = relabelled("v6", 7).skipdata().unwrap_err().to_string();
    assert!(missing.contains("skipdata"), "{missing}");
    let missing = relabelled("v6", 7).slot_runs().err().unwrap().to_string();
    assert!(missing.contains("slot runs"), "{missing}");
}

#[test]
fn block_entries_that_do_not_cover_the_records_are_corrupt_when_first_used() {
    // Opening a segment no longer decodes its block entries (a search whose postings find
    // nothing in it reads none); their checks moved to first use and must still hold there.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/segment/fixtures-v7");
    let mut data = std::fs::read(path).unwrap()[1..].to_vec();
    let blocks = section(&data, 2);
    // The first block now starts at record 1: record 0 is in no block.
    data[blocks..blocks + 4].copy_from_slice(&1u32.to_le_bytes());
    harness::fix_checksums(&mut data);
    let seg = flowdex::read::Segment::from_bytes(Path::new("seg.fdx"), Box::new(data)).unwrap();
    let error = seg.blocks().unwrap_err().to_string();
    assert!(error.contains("blocks do not cover the records in order"), "{error}");
    assert!(seg.read_records(0).is_err());
    assert!(seg.verify().is_err());
}

#[test]
fn a_footer_record_count_the_blocks_cannot_hold_is_refused_at_open() {
    // With the block entries decoded on first use, `verify` sized a vector by the footer's
    // count before reading them (u64::MAX: a capacity-overflow panic), and a count past 2³²
    // let block ends overflow 32-bit record ids.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/segment/fixtures-v7");
    for count in [u64::MAX, 1 << 32, 0] {
        let mut data = std::fs::read(&path).unwrap()[1..].to_vec();
        let footer = data.len() - flowdex::format::FOOTER_SIZE + flowdex::format::FOOTER_RECORD_COUNT;
        data[footer..footer + 8].copy_from_slice(&count.to_le_bytes());
        harness::fix_checksums(&mut data);
        let error = flowdex::read::Segment::from_bytes(Path::new("seg.fdx"), Box::new(data))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("cannot hold the footer's"), "{count}: {error:?}");
    }
}

/// The offset of the first section of `kind` in a segment's bytes (`index-format.md`,
/// "Directory").
fn section(b: &[u8], kind: u32) -> usize {
    let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let footer = b.len() - 40;
    (u64_at(footer)..footer)
        .step_by(32)
        .find(|&entry| u32_at(entry) == kind)
        .map(|entry| u64_at(entry + 8))
        .expect("the segment has the section")
}
