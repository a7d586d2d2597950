//! Containers and hostile input: gzip (multi-member, truncated, bombs), folder trees with S3 keys,
//! tar, tar.gz and zip bundles read as streams, entries that would escape the bundle, links,
//! binary garbage and over-long lines. Each is built here, in a temporary folder.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{fixture, read, read_with};
use flowdex::input::{Limits, ReadOptions, RejectReason, SourceError};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn quirks() -> Vec<u8> {
    std::fs::read(fixture("s3-text-quirks.log")).unwrap()
}

/// Runs the real binary.
fn flowdex(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_flowdex"))
        .args(args)
        .output()
        .unwrap()
}

/// Builds the folder `in` under `dir` into `idx` beside it with the real binary.
fn build_in(dir: &Path) -> (PathBuf, std::process::Output) {
    let idx = dir.join("idx");
    let built = flowdex(&[
        "build",
        "--output",
        idx.to_str().unwrap(),
        dir.join("in").to_str().unwrap(),
    ]);
    (idx, built)
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
    p
}

/// Appends an entry with exactly this name, bypassing the tar crate's own path checks (hostile
/// bundles are made by tools that have none).
fn append_raw(b: &mut tar::Builder<Vec<u8>>, name: &str, kind: tar::EntryType, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    if kind == tar::EntryType::Symlink {
        h.set_link_name("/etc/passwd").unwrap();
    }
    h.set_cksum();
    b.append(&h, data).unwrap();
}

#[test]
fn gzip_members_are_all_read_and_form_is_detected_without_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let text = quirks();
    let cut = text.iter().position(|b| *b == b'\n').unwrap() + 1;
    let mut two_members = gzip(&text[..cut]);
    two_members.extend(gzip(&text[cut..]));
    let p = write(dir.path(), "renamed.txt", &two_members);
    let got = read(&[p], None);
    let r = &got.reports[0];
    assert!(r.gzip);
    assert_eq!((r.records, r.rejected, r.error.is_none()), (7, 0, true), "{r}");
    assert_eq!(r.size, two_members.len() as u64);
}

#[test]
fn folder_trees_keep_s3_key_metadata_in_a_deterministic_order() {
    let dir = tempfile::tempdir().unwrap();
    let key = |fl: &str, hhmm: &str| {
        format!("AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/04/28/123456789012_vpcflowlogs_us-east-1_{fl}_20240428T{hhmm}Z_0123abcd.log.gz")
    };
    for (fl, t) in [("fl-0bbb", "1305"), ("fl-0aaa", "1310"), ("fl-0aaa", "1300")] {
        write(dir.path(), &key(fl, t), &gzip(&quirks()));
    }
    write(dir.path(), "AWSLogs/aws-account-id=111122223333/aws-service=vpcflowlogs/aws-region=eu-west-1/year=2024/month=04/day=28/hour=13/x.log", &quirks());
    let got = read(&[dir.path().to_path_buf()], None);
    let names: Vec<&str> = got
        .reports
        .iter()
        .map(|r| r.meta.name.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        names[0],
        "123456789012_vpcflowlogs_us-east-1_fl-0aaa_20240428T1300Z_0123abcd.log.gz"
    );
    assert_eq!(names[3], "x.log");
    let s3 = &got.reports[0].meta.s3;
    assert_eq!(
        (
            s3.account_id.as_deref(),
            s3.region.as_deref(),
            s3.flow_log_id.as_deref(),
            s3.file_time,
            s3.partition.as_deref()
        ),
        (
            Some("123456789012"),
            Some("us-east-1"),
            Some("fl-0aaa"),
            Some(1_714_309_200),
            Some("2024-04-28")
        )
    );
    let hive = &got.reports[3].meta.s3;
    assert_eq!(
        (hive.account_id.as_deref(), hive.partition.as_deref()),
        (Some("111122223333"), Some("2024-04-28T13"))
    );
    assert_eq!(got.records.len(), 28);
}

fn hostile_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    append_raw(&mut b, "AWSLogs/", tar::EntryType::Directory, b"");
    append_raw(&mut b, "AWSLogs/a.log.gz", tar::EntryType::Regular, &gzip(&quirks()));
    append_raw(&mut b, "../../evil.log", tar::EntryType::Regular, &quirks());
    append_raw(&mut b, "/etc/cron.d/evil.log", tar::EntryType::Regular, &quirks());
    append_raw(&mut b, "link.log", tar::EntryType::Symlink, b"");
    append_raw(&mut b, "inner.tar", tar::EntryType::Regular, &{
        let mut inner = tar::Builder::new(Vec::new());
        append_raw(&mut inner, "x.log", tar::EntryType::Regular, &quirks());
        inner.into_inner().unwrap()
    });
    append_raw(
        &mut b,
        "garbage.bin",
        tar::EntryType::Regular,
        &[0u8, 159, 146, 150, 0, 1, 2, 3],
    );
    append_raw(&mut b, "b.log", tar::EntryType::Regular, &quirks());
    b.into_inner().unwrap()
}

fn check_hostile_bundle(got: &common::Collected, bundle: &str) {
    let err = |suffix: &str| got.report(&format!("{bundle}!{suffix}")).error.clone();
    assert_eq!(got.report(&format!("{bundle}!AWSLogs/a.log.gz")).records, 7);
    assert!(matches!(err("../../evil.log"), Some(SourceError::UnsafeEntry { why, .. }) if why.contains("..")));
    assert!(
        matches!(err("/etc/cron.d/evil.log"), Some(SourceError::UnsafeEntry { why, .. }) if why.contains("absolute"))
    );
    assert!(matches!(err("garbage.bin"), Some(SourceError::Binary)));
    assert_eq!(
        got.report(&format!("{bundle}!b.log")).records,
        7,
        "the bundle is read on after bad entries"
    );
    assert!(
        got.records.iter().all(|(name, _, _)| !name.contains("evil")),
        "escaping entries are never read"
    );
    assert!(got.records[0].0.ends_with(&format!("{bundle}!AWSLogs/a.log.gz")));
}

#[test]
fn tar_and_tar_gz_bundles_report_escaping_entries_links_and_nesting() {
    let dir = tempfile::tempdir().unwrap();
    let tar = hostile_tar();
    let got = read(&[write(dir.path(), "bundle.tar", &tar)], None);
    check_hostile_bundle(&got, "bundle.tar");
    assert!(matches!(
        got.report("bundle.tar!link.log").error,
        Some(SourceError::UnsafeEntry { .. })
    ));
    assert!(matches!(
        got.report("bundle.tar!inner.tar").error,
        Some(SourceError::Unsupported { .. })
    ));
    assert_eq!(got.reports.len(), 7, "the directory entry is not a source");

    let got = read(&[write(dir.path(), "evidence.data", &gzip(&tar))], None);
    check_hostile_bundle(&got, "evidence.data");
}

#[test]
fn zip_bundles_are_read_entry_by_entry() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("case.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&p).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in [
        ("AWSLogs/a.log.gz", gzip(&quirks())),
        ("../../evil.log", quirks()),
        ("/etc/cron.d/evil.log", quirks()),
        ("garbage.bin", vec![0u8, 159, 146, 150, 0, 1, 2, 3]),
        ("b.log", quirks()),
    ] {
        z.start_file(name, opts).unwrap();
        z.write_all(&data).unwrap();
    }
    z.finish().unwrap();
    let got = read(&[p], None);
    check_hostile_bundle(&got, "case.zip");
}

/// A zip cut short has no directory: its whole entries are read in order from their own
/// headers, the cut one fails, and the end says what was lost.
#[test]
fn a_zip_cut_short_keeps_its_whole_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for name in ["e1.log", "e2.log", "e3.log"] {
        z.start_file(name, opts).unwrap();
        z.write_all(&numbered_lines(300)).unwrap();
    }
    let zipped = z.finish().unwrap().into_inner();
    // Two whole entries and part of the third: no directory.
    let third = zipped.windows(6).position(|w| w == b"e3.log").unwrap();
    let p = write(dir.path(), "cut.zip", &zipped[..third + 200]);
    let got = read(&[p], None);
    assert_eq!(got.report("cut.zip!e1.log").records, 300);
    assert_eq!(got.report("cut.zip!e2.log").records, 300);
    assert!(got.report("cut.zip!e3.log").error.is_some());
    let directory = got.report("cut.zip").error.as_ref().unwrap().to_string();
    assert!(
        directory.contains("read in order from their own headers"),
        "{directory}"
    );
    assert!(!directory.contains("after line 0"), "{directory}");
}

/// The zip crate keeps one entry per name: a zip listing a name twice is read in order from
/// its local headers, and the second entry of the name is a source of its own.
#[test]
fn a_zip_holding_a_name_twice_loses_neither_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, lines) in [("x.log", 3), ("y.log", 4), ("z.log", 5)] {
        z.start_file(name, opts).unwrap();
        z.write_all(&numbered_lines(lines)).unwrap();
    }
    let mut zipped = z.finish().unwrap().into_inner();
    // The writer refuses a name twice: rename the third entry in its local and central headers.
    for at in 0..zipped.len() - 5 {
        if &zipped[at..at + 5] == b"z.log" {
            zipped[at] = b'x';
        }
    }
    let p = write(dir.path(), "dup.zip", &zipped);
    let got = read(&[p], None);
    let names: Vec<&str> = got.names.iter().map(|n| n.rsplit('!').next().unwrap()).collect();
    assert_eq!(names, ["x.log", "y.log", "x.log#2"]);
    let records: Vec<u64> = got.reports.iter().map(|r| r.records).collect();
    assert_eq!(records, [3, 4, 5]);
    assert!(got.reports.iter().all(|r| r.error.is_none()));
    // Written as a stream, the entries' sizes follow their data (flag bit 3, here set in the
    // directory): reading in order could not pass the first entry, so the directory's
    // entries are read, and the bundle says what was not.
    let mut streamed = zipped.clone();
    let mut at = 0;
    while let Some(found) = streamed[at..].windows(4).position(|w| w == b"PK\x01\x02") {
        at += found;
        streamed[at + 8] |= 1 << 3;
        at += 4;
    }
    let p = write(dir.path(), "streamed.zip", &streamed);
    let got = read(&[p], None);
    assert_eq!(got.report("streamed.zip!x.log").records, 5);
    assert_eq!(got.report("streamed.zip!y.log").records, 4);
    assert!(matches!(
        got.report("streamed.zip").error,
        Some(SourceError::Unread { .. })
    ));
}

/// Old tars have no magic; a zip entry flowdex cannot decompress is named and called
/// unsupported, not corrupt.
#[test]
fn old_tars_are_read_and_unsupported_zip_entries_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_old();
    h.set_path("v7.log").unwrap();
    h.set_size(numbered_lines(3).len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &numbered_lines(3)[..]).unwrap();
    let v7 = write(dir.path(), "v7.tar", &b.into_inner().unwrap());
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for name in ["a.log", "b.log"] {
        z.start_file(name, stored).unwrap();
        z.write_all(&numbered_lines(2)).unwrap();
    }
    let mut zipped = z.finish().unwrap().into_inner();
    // b.log becomes bzip2 (method 12) in its local and central headers.
    let local = zipped.windows(4).rposition(|w| w == b"PK\x03\x04").unwrap();
    zipped[local + 8] = 12;
    let central = zipped.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
    zipped[central + 10] = 12;
    let zip = write(dir.path(), "bz.zip", &zipped);
    let got = read(&[v7, zip], None);
    assert_eq!(got.report("v7.tar!v7.log").records, 3, "{:?}", got.names);
    assert_eq!(got.report("bz.zip!a.log").records, 2);
    let bz = got.report("bz.zip!b.log").error.as_ref().unwrap();
    assert!(matches!(bz, SourceError::Unsupported { .. }), "{bz}");
}

#[test]
fn decompression_bombs_are_stopped_per_entry_and_the_bundle_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut bomb_text = quirks();
    bomb_text.extend(std::iter::repeat_n(b"                                       \n", 200_000).flatten());
    let bomb = gzip(&bomb_text);
    assert!(
        bomb.len() * 100 < bomb_text.len(),
        "the test bomb must out-expand the limit: {} -> {}",
        bomb.len(),
        bomb_text.len()
    );
    let mut b = tar::Builder::new(Vec::new());
    append_raw(&mut b, "bomb.log.gz", tar::EntryType::Regular, &bomb);
    append_raw(&mut b, "after.log", tar::EntryType::Regular, &quirks());
    let p = write(dir.path(), "b.tar", &b.into_inner().unwrap());
    let options = ReadOptions {
        limits: Limits {
            max_ratio: 100,
            ratio_grace_bytes: 1 << 20,
            ..Limits::default()
        },
        ..Default::default()
    };
    let got = read_with(std::slice::from_ref(&p), &options);
    let bomb_report = got.report("b.tar!bomb.log.gz");
    assert!(
        matches!(bomb_report.error, Some(SourceError::Bomb { .. })),
        "{bomb_report}"
    );
    assert!(bomb_report.error.as_ref().unwrap().to_string().contains("--max-ratio"));
    assert_eq!(bomb_report.records, 7, "records before the limit are kept");
    assert_eq!(got.report("b.tar!after.log").records, 7);

    let options = ReadOptions {
        limits: Limits {
            max_source_bytes: 4096,
            ..Limits::default()
        },
        ..Default::default()
    };
    let got = read_with(&[p], &options);
    // Its header states more bytes than a source may have: not read, and the next one is.
    assert!(matches!(
        got.report("b.tar!bomb.log.gz").error,
        Some(SourceError::TooLarge { limit: 4096, .. })
    ));
    assert_eq!(got.report("b.tar!after.log").records, 7);
}

/// In a `.tar.gz` each entry is held to a source's size by its header, not the bundle's stream
/// as a whole; and a stream stopped inside an entry (a bomb) says that the entries after it
/// were not read, rather than leaving them unnamed.
#[test]
fn a_tar_gz_holds_each_entry_to_the_limits_and_names_what_a_stop_left_unread() {
    let dir = tempfile::tempdir().unwrap();
    let entry = numbered_lines(200);
    let mut b = tar::Builder::new(Vec::new());
    for name in ["e1.log", "e2.log", "e3.log"] {
        append_raw(&mut b, name, tar::EntryType::Regular, &entry);
    }
    let p = write(dir.path(), "b.tar.gz", &gzip(&b.into_inner().unwrap()));
    // Room for one entry, not for two: each is read.
    let options = ReadOptions {
        limits: Limits {
            max_source_bytes: entry.len() as u64 + 100,
            ..Limits::default()
        },
        ..Default::default()
    };
    let got = read_with(std::slice::from_ref(&p), &options);
    for name in ["e1.log", "e2.log", "e3.log"] {
        let r = got.report(&format!("b.tar.gz!{name}"));
        assert_eq!((r.records, &r.error), (200, &None), "{r}");
    }
    // A bomb between two entries stops the stream inside it.
    let mut b = tar::Builder::new(Vec::new());
    append_raw(&mut b, "e1.log", tar::EntryType::Regular, &entry);
    append_raw(&mut b, "bomb.log", tar::EntryType::Regular, &vec![b'0'; 64 << 20]);
    append_raw(&mut b, "e3.log", tar::EntryType::Regular, &entry);
    let p = write(dir.path(), "bomb.tar.gz", &gzip(&b.into_inner().unwrap()));
    let got = read(&[p], None);
    assert_eq!(got.report("bomb.tar.gz!e1.log").records, 200);
    assert!(matches!(
        got.report("bomb.tar.gz!bomb.log").error,
        Some(SourceError::Bomb { .. })
    ));
    let bundle = got.report("bomb.tar.gz");
    assert_eq!(
        bundle.error,
        Some(SourceError::Stopped {
            entry: "bomb.log".into()
        })
    );
    assert!(got.names.iter().all(|n| !n.ends_with("e3.log")), "{:?}", got.names);
}

#[test]
fn truncated_gzip_keeps_what_came_before_and_says_where_it_broke() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = Vec::new();
    for i in 0..5000 {
        writeln!(
            text,
            "2 123456789010 eni-1 10.0.{}.{} 10.9.9.9 443 {} 6 1 40 1418530010 1418530070 ACCEPT OK",
            i / 256,
            i % 256,
            1024 + i
        )
        .unwrap();
    }
    let gz = gzip(&text);
    let p = write(dir.path(), "cut.log.gz", &gz[..gz.len() / 2]);
    let next = write(dir.path(), "next.log", &quirks());
    let got = read(&[p, next], None);
    let r = &got.reports[0];
    let Some(SourceError::Corrupt { what, after_line, .. }) = &r.error else {
        panic!("{r}")
    };
    assert_eq!(*what, "gzip stream");
    assert!(r.records > 1000 && r.records < 5000, "{r}");
    assert_eq!(*after_line, r.lines);
    // The half line before the break is not taken for a record.
    assert!(r.rejects.iter().all(|x| x.reason == RejectReason::Truncated));
    assert_eq!(got.reports[1].records, 7, "the next source is read");
    assert_eq!(
        r.size,
        (gz.len() / 2) as u64,
        "every byte is hashed, also after the break"
    );
}

#[test]
fn a_source_that_breaks_within_its_first_bytes_keeps_the_lines_before_the_break() {
    // Quiet interfaces write objects of a few hundred bytes: a break there falls within the
    // bytes read to tell the source's kind.
    let dir = tempfile::tempdir().unwrap();
    let text = numbered_lines(3);
    let gz = gzip(&text);
    let cut = write(dir.path(), "cut.log.gz", &gz[..gz.len() - 8]);
    let mut flipped = gz.clone();
    let crc = flipped.len() - 8;
    flipped[crc] ^= 1;
    let flipped = write(dir.path(), "crc.log.gz", &flipped);
    let mut b = tar::Builder::new(Vec::new());
    append_raw(&mut b, "f0.log", tar::EntryType::Regular, &numbered_lines(50));
    let tar = b.into_inner().unwrap();
    let line = numbered_lines(1).len();
    let cut_tar = write(dir.path(), "cut.tar", &tar[..512 + 4 * line]);
    let got = read(&[cut, flipped, cut_tar], None);
    let [cut, flipped, entry, _bundle] = &got.reports[..] else {
        panic!("{:?}", got.names)
    };
    for r in [cut, flipped] {
        assert_eq!(r.records, 3, "{r}");
        assert!(
            r.error.as_ref().is_some_and(|e| e.to_string().contains("after line 3")),
            "{r}"
        );
    }
    assert_eq!(entry.records, 4, "{entry}");
    assert!(entry.error.is_some(), "{entry}");
}

/// A Firehose transform event's `records[].data`: a payload that breaks fails the source but
/// costs no other payload; one that is no flow-log text is one rejected event.
#[test]
fn one_bad_payload_of_a_json_source_costs_no_other_payload() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let subscription = |lines: usize| {
        let events: Vec<serde_json::Value> = String::from_utf8(numbered_lines(lines))
            .unwrap()
            .lines()
            .map(|l| serde_json::json!({"id": "1", "timestamp": 1, "message": l}))
            .collect();
        gzip(
            serde_json::json!({"messageType": "DATA_MESSAGE", "logEvents": events})
                .to_string()
                .as_bytes(),
        )
    };
    let event = |payloads: &[Vec<u8>]| {
        let records: Vec<serde_json::Value> = payloads
            .iter()
            .map(|p| serde_json::json!({"recordId": "r", "data": base64::engine::general_purpose::STANDARD.encode(p)}))
            .collect();
        serde_json::json!({ "records": records }).to_string()
    };
    let cut = subscription(3);
    let cut = cut[..cut.len() - 20].to_vec();
    let broken = write(
        dir.path(),
        "broken.json",
        event(&[subscription(2), cut, subscription(4)]).as_bytes(),
    );
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(
            String::from_utf8(numbered_lines(1))
                .unwrap()
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    let wide = write(
        dir.path(),
        "wide.json",
        event(&[subscription(2), utf16, subscription(4)]).as_bytes(),
    );
    let got = read(&[broken, wide], None);
    let [broken, wide] = &got.reports[..] else {
        panic!("{:?}", got.names)
    };
    assert!(broken.records >= 6, "{broken}");
    assert!(matches!(broken.error, Some(SourceError::Corrupt { .. })), "{broken}");
    assert_eq!(
        (wide.records, wide.rejected, wide.error.as_ref()),
        (6, 1, None),
        "{wide}"
    );
    assert!(wide.rejects[0].reason.to_string().contains("UTF-16"), "{wide}");
}

/// `n` v2 lines, the `i`th with source port 1024 + i.
fn numbered_lines(n: usize) -> Vec<u8> {
    let mut text = Vec::new();
    for i in 0..n {
        writeln!(
            text,
            "2 123456789010 eni-1 10.0.0.1 10.9.9.9 {} 443 6 1 40 1418530010 1418530070 ACCEPT OK",
            1024 + i
        )
        .unwrap();
    }
    text
}

/// Gzip with stored (uncompressed) deflate blocks: a flipped data byte then changes a value
/// without breaking the deflate stream, and only the CRC-32 at the end can tell.
fn stored_gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `data` with the byte at `at` changed from the digit it holds to another digit.
fn flip_digit(mut data: Vec<u8>, at: usize) -> Vec<u8> {
    let at = at + data[at..].iter().position(u8::is_ascii_digit).unwrap();
    data[at] = if data[at] == b'9' { b'8' } else { data[at] + 1 };
    data
}

#[test]
fn a_gzip_checksum_that_fails_leaves_every_record_of_the_stream_unverified() {
    let dir = tempfile::tempdir().unwrap();
    let gz = stored_gzip(&numbered_lines(2000));
    let p = write(dir.path(), "flipped.log.gz", &flip_digit(gz.clone(), gz.len() / 2));
    let got = read(&[p], None);
    let r = &got.reports[0];
    assert_eq!(r.records, 2000, "every line still reads as a record: {r}");
    let Some(error @ SourceError::Unverified { after_line, .. }) = &r.error else {
        panic!("{r}")
    };
    assert_eq!(*after_line, Some(2000));
    assert!(error.to_string().contains("may hold corrupt values"), "{error}");

    // A stored zip entry: the zip's own CRC-32 is the only check.
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("a.log", stored).unwrap();
    z.write_all(&numbered_lines(2000)).unwrap();
    let zipped = z.finish().unwrap().into_inner();
    let p = write(dir.path(), "flipped.zip", &flip_digit(zipped.clone(), zipped.len() / 2));
    let got = read(&[p], None);
    let r = &got.reports[0];
    assert!(
        matches!(
            &r.error,
            Some(SourceError::Unverified {
                what: "zip entry",
                after_line: Some(2000),
                ..
            })
        ),
        "{r}"
    );
}

#[test]
fn a_name_a_tar_holds_twice_names_two_sources_that_recheck_tells_apart() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let old = numbered_lines(2);
    let new = numbered_lines(3);
    // `tar -r` appends a newer copy under the same name; a real entry may even look renamed.
    append_raw(&mut b, "a.log", tar::EntryType::Regular, &old);
    append_raw(&mut b, "a.log#2", tar::EntryType::Regular, &numbered_lines(1));
    append_raw(&mut b, "a.log", tar::EntryType::Regular, &new);
    let tar = write(dir.path(), "in/b.tar", &b.into_inner().unwrap());
    let got = read(std::slice::from_ref(&tar), None);
    let names: Vec<String> = got.reports.iter().map(|r| r.meta.name.clone()).collect();
    let bundle = tar.display().to_string();
    assert_eq!(
        names,
        [
            format!("{bundle}!a.log"),
            format!("{bundle}!a.log#2"),
            format!("{bundle}!a.log#3")
        ]
    );
    assert_eq!(got.reports.iter().map(|r| r.records).collect::<Vec<_>>(), [2, 1, 3]);
    // Re-read from the bundle, each source is found as the one its name says.
    let idx = dir.path().join("idx");
    common::build(&idx, &[tar], &ReadOptions::default(), 1);
    let index = flowdex::read::Index::open(&idx).unwrap();
    let check = flowdex::recheck::check_sources(index.sources().unwrap(), &[], None);
    assert_eq!(check.sources.len(), 3);
    assert!(check.all_intact(), "{:?}", check.sources);
}

#[test]
fn a_search_warns_of_records_shown_from_a_source_that_failed_its_check() {
    let dir = tempfile::tempdir().unwrap();
    let gz = stored_gzip(&numbered_lines(2000));
    let flipped = write(dir.path(), "in/flipped.log.gz", &flip_digit(gz.clone(), gz.len() / 2));
    let clean = numbered_lines(3)
        .iter()
        .map(|&b| if b == b'6' { b'1' } else { b })
        .collect::<Vec<u8>>();
    write(dir.path(), "in/clean.log", &clean);
    let (idx, built) = build_in(dir.path());
    assert_eq!(
        built.status.code(),
        Some(1),
        "a source failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let search = |query: &str| {
        let out = flowdex(&["search", "--format", "jsonl", idx.to_str().unwrap(), query]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    // The clean file's records are protocol 1, the flipped file's 6.
    let (shown, warned) = search("protocol = 6 and srcport < 1030");
    assert_eq!(shown.lines().count(), 6, "{shown}");
    let name_of_flipped = flipped.display().to_string();
    let name = &name_of_flipped;
    assert!(
        warned.contains(&format!("6 records shown come from {name}, which failed while read:"))
            && warned.contains("may hold corrupt values"),
        "{warned}"
    );
    let (shown, warned) = search("protocol = 1");
    assert_eq!(shown.lines().count(), 3, "{shown}");
    assert!(!warned.contains("failed while read"), "{warned}");
    // An aggregation says how many of the records it counted come from the failed source,
    // through postings, raw columns or records alike; and nothing of the clean file's.
    for query in [
        "protocol = 6 and srcport < 1030 | stats count()",
        "protocol = 6 and srcport < 1030 | stats sum(bytes) by srcport",
        "protocol = 6 | filter srcport < 1030 | stats count_distinct(dstport)",
    ] {
        let (_, warned) = search(query);
        assert!(
            warned.contains(&format!(
                "6 records aggregated come from {name}, which failed while read:"
            )),
            "{query}: {warned}"
        );
    }
    let (_, warned) = search("protocol = 1 | stats count() by srcport");
    assert!(!warned.contains("failed while read"), "{warned}");
    // A limit before `stats` chooses among the matches: the count is a bound. And the records
    // are counted as decoded, none held, so a small --memory still answers.
    let (_, warned) = search("protocol = 6 and srcport < 1030 | limit 2 | stats count()");
    assert!(
        warned.contains(&format!("up to 6 records aggregated come from {name}")),
        "{warned}"
    );
    let out = flowdex(&[
        "search",
        "--memory",
        "1K",
        idx.to_str().unwrap(),
        "protocol = 6 and srcport < 1030 | stats count()",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // The manifest lists the failed source, and verify holds it to the sources file.
    let index = flowdex::read::Index::open(&idx).unwrap();
    assert_eq!(index.manifest().failed_sources.as_ref().map(Vec::len), Some(1));
    assert_eq!(flowdex(&["verify", idx.to_str().unwrap()]).status.code(), Some(0));
    let mut manifest = index.manifest().clone();
    drop(index);
    manifest.failed_sources = Some(Vec::new());
    let manifest_path = idx.join("MANIFEST");
    let good = std::fs::read(&manifest_path).unwrap();
    std::fs::write(&manifest_path, manifest.encode()).unwrap();
    let out = flowdex(&["verify", idx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("as the sources that failed with records"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&manifest_path, good).unwrap();
    // An evidence bundle of the records says it in its manifest.
    let bundle = dir.path().join("bundle");
    let out = flowdex(&[
        "export",
        idx.to_str().unwrap(),
        "srcport < 1030",
        "--output",
        bundle.to_str().unwrap(),
    ]);
    let warned = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{warned}");
    // It warns as a search does, and its original lines say so too.
    assert!(
        warned.contains(&format!(
            "6 exported records come from {name}, which failed while read:"
        )) && !warned.contains("clean.log"),
        "{warned}"
    );
    let lines = std::fs::read_to_string(bundle.join("original-lines.txt")).unwrap();
    assert_eq!(
        lines
            .matches("== failed while read, its records may hold corrupt values: ")
            .count(),
        1,
        "{lines}"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    let errors: Vec<(String, bool)> = manifest["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_owned(), s["error"].is_string()))
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .all(|(name, failed)| *failed == (*name == name_of_flipped)),
        "{errors:?}"
    );
}

/// A `.tar.gz` of one entry whose gzip trailer's CRC-32 does not match its bytes.
fn tar_gz_failing_its_check(name: &str, content: &[u8]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_cksum();
    tar.append_data(&mut h, name, content).unwrap();
    let mut tgz = stored_gzip(&tar.into_inner().unwrap());
    let crc = tgz.len() - 8;
    tgz[crc] ^= 1;
    tgz
}

#[test]
fn failures_are_not_added_again_by_a_rebuild_and_a_failed_tar_gz_marks_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    write(
        &input,
        "b.tar.gz",
        &tar_gz_failing_its_check("a.log", &numbered_lines(10)),
    );
    std::fs::create_dir_all(input.join("empty")).unwrap();
    let fifo = input.join("pipe");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let idx = dir.path().join("idx");
    let inputs = [input.join("b.tar.gz"), input.join("empty"), fifo];
    let first = common::build(&idx, &inputs, &ReadOptions::default(), 1);
    assert_eq!(
        (first.sources_added, first.failed_sources, first.records_added),
        (4, 4, 10),
        "{first:?}"
    );
    let sources = flowdex::read::Index::open(&idx).unwrap().sources().unwrap().to_vec();
    let entry = sources.iter().find(|s| s.entry.is_some()).unwrap();
    assert!(
        entry
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("read from the bundle") && e.contains("may hold corrupt values")),
        "{entry:?}"
    );

    let again = common::build(&idx, &inputs, &ReadOptions::default(), 1);
    assert_eq!((again.sources_added, again.failed_sources), (0, 3), "{again:?}");
    assert!(
        !again.first_failures.is_empty()
            && again
                .first_failures
                .iter()
                .all(|p| p.ends_with("(the index records this failure already)")),
        "{again:?}"
    );
    let index = flowdex::read::Index::open(&idx).unwrap();
    assert_eq!(index.sources().unwrap(), &sources[..], "nothing added");

    // The same bundle again with other entries, failing its check the same way: the bundle's
    // failure is the one recorded, and the new entries still carry it.
    write(
        &input,
        "b.tar.gz",
        &tar_gz_failing_its_check("c.log", &numbered_lines(4)),
    );
    let changed = common::build(&idx, &inputs[..1], &ReadOptions::default(), 1);
    assert_eq!((changed.sources_added, changed.failed_sources), (1, 2), "{changed:?}");
    let index = flowdex::read::Index::open(&idx).unwrap();
    let new = index.sources().unwrap().last().unwrap();
    assert!(
        new.entry.as_deref() == Some("c.log")
            && new
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("read from the bundle")),
        "{new:?}"
    );
}

#[test]
fn a_tar_gz_is_read_to_its_gzip_trailer_and_its_checksum_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for name in ["a.log", "b.log"] {
        append_raw(&mut b, name, tar::EntryType::Regular, &numbered_lines(500));
    }
    let tar = b.into_inner().unwrap();
    let gz = stored_gzip(&tar);
    let flipped = write(dir.path(), "flipped.tgz", &flip_digit(gz.clone(), gz.len() / 3));
    let cut = write(dir.path(), "cut.tgz", &gz[..gz.len() - 8]);
    let sound = write(dir.path(), "sound.tgz", &gz);
    for (path, fails) in [(flipped, true), (cut, true), (sound, false)] {
        let got = read(std::slice::from_ref(&path), None);
        let records: u64 = got.reports.iter().map(|r| r.records).sum();
        assert_eq!(records, 1000, "{}", path.display());
        let failed: Vec<&SourceError> = got.reports.iter().filter_map(|r| r.error.as_ref()).collect();
        if fails {
            assert!(
                matches!(failed[..], [SourceError::Unverified { after_line: None, .. }]),
                "{}: {failed:?}",
                path.display()
            );
        } else {
            assert!(failed.is_empty(), "{failed:?}");
        }
    }
    // After the tar: zeros are padding; a second archive or other bytes were not read.
    let padded = write(dir.path(), "padded.tgz", &[gz.clone(), vec![0; 10_000]].concat());
    let two = write(dir.path(), "two.tgz", &[gz.clone(), gz.clone()].concat());
    let text = write(
        dir.path(),
        "text.tgz",
        &[gz.clone(), b"hello, not gzip\n".to_vec()].concat(),
    );
    // A plain tar the same.
    let tar_padded = write(dir.path(), "padded.tar", &[tar.clone(), vec![0; 10_000]].concat());
    let tar_two = write(dir.path(), "two.tar", &[tar.clone(), tar.clone()].concat());
    let tar_text = write(
        dir.path(),
        "text.tar",
        &[tar.clone(), b"hello, not a tar\n".to_vec()].concat(),
    );
    for (path, unread) in [
        (padded, false),
        (two, true),
        (text, true),
        (tar_padded, false),
        (tar_two, true),
        (tar_text, true),
    ] {
        let got = read(std::slice::from_ref(&path), None);
        let failed: Vec<&SourceError> = got.reports.iter().filter_map(|r| r.error.as_ref()).collect();
        assert_eq!(failed.len(), usize::from(unread), "{}: {failed:?}", path.display());
        assert!(
            failed.iter().all(|e| matches!(e, SourceError::Unread { .. })),
            "{failed:?}"
        );
    }
}

#[test]
fn a_tar_entry_cut_short_is_reported_not_read_as_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    append_raw(&mut b, "f0.log", tar::EntryType::Regular, &numbered_lines(50));
    let tar = b.into_inner().unwrap();
    // The header block, then ten whole lines of the entry.
    let line = numbered_lines(1).len();
    let p = write(dir.path(), "cut.tar", &tar[..512 + 10 * line]);
    let got = read(&[p], None);
    let r = &got.reports[0];
    assert_eq!(r.records, 10, "{r}");
    let Some(error) = &r.error else { panic!("{r}") };
    assert!(
        error
            .to_string()
            .contains(&format!("after {} of the {} bytes", 10 * line, 50 * line)),
        "{error}"
    );
    // The cut entry, and the bundle saying that what came after it, if anything, was lost.
    assert_eq!(got.reports.len(), 2, "{:?}", got.names);
    assert_eq!(
        got.reports[1].error,
        Some(SourceError::Stopped { entry: "f0.log".into() })
    );
}

#[test]
fn garbage_and_over_long_lines() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = write(dir.path(), "garbage", &[0x00, 0xff, 0x13, 0x37, 0x00]);
    let mut long = quirks();
    long.extend(b"\n");
    long.extend(std::iter::repeat_n(b'7', 3 << 20));
    long.extend(b"\n10.0.0.5 10.0.0.6 x subnet-3 1640000600 1640000660 ACCEPT\n");
    let long = write(dir.path(), "long.log", &long);
    let got = read(&[garbage, long], None);
    assert!(matches!(got.reports[0].error, Some(SourceError::Binary)));
    let r = &got.reports[1];
    assert_eq!((r.records, r.rejected), (8, 1), "{r}");
    assert!(matches!(r.rejects[0].reason, RejectReason::TooLong { len, .. } if len == 3 << 20));

    // Every line over the limit is rejected, wherever it falls in the reads, and no other.
    let lines = numbered_lines(5000);
    let width = numbered_lines(1).len() - 1;
    let p = write(dir.path(), "many.log", &lines);
    for (limit, rejected) in [(width - 1, 5000), (width, 0)] {
        let options = ReadOptions {
            limits: Limits {
                max_line_bytes: limit,
                ..Limits::default()
            },
            ..Default::default()
        };
        let r = &read_with(std::slice::from_ref(&p), &options).reports[0];
        assert_eq!(
            (r.rejected, r.records),
            (rejected, 5000 - rejected),
            "limit {limit}: {r}"
        );
    }
    // A JSON event's message is a line too.
    let text = String::from_utf8(numbered_lines(3)).unwrap();
    let events: Vec<String> = text.lines().map(|l| format!(r#"{{"message":"{l}"}}"#)).collect();
    let p = write(dir.path(), "events.json", events.join("\n").as_bytes());
    let options = ReadOptions {
        limits: Limits {
            max_line_bytes: width - 1,
            ..Limits::default()
        },
        ..Default::default()
    };
    let r = &read_with(std::slice::from_ref(&p), &options).reports[0];
    assert_eq!((r.rejected, r.records), (3, 0), "{r}");
}

#[test]
fn unreadable_paths_are_reported_and_the_run_goes_on() {
    let got = read(
        &[PathBuf::from("/nonexistent/flows.log"), fixture("s3-text-quirks.log")],
        None,
    );
    assert!(matches!(got.reports[0].error, Some(SourceError::Io { .. })));
    assert_eq!(got.reports[1].records, 7);
}

#[test]
fn fifos_are_refused_without_waiting_for_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("flows.log");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // Given by name and found in a folder walk: both refused, the rest read.
    let got = read(&[fifo, dir.path().to_path_buf(), fixture("s3-text-quirks.log")], None);
    assert_eq!(got.reports.len(), 3);
    assert!(
        matches!(got.reports[0].error, Some(SourceError::NotAFile)),
        "{}",
        got.reports[0]
    );
    assert!(
        matches!(got.reports[1].error, Some(SourceError::NotAFile)),
        "{}",
        got.reports[1]
    );
    assert_eq!(got.reports[2].records, 7);
}

#[test]
fn a_survey_hashes_the_bytes_and_reads_the_decoded_size_from_the_gzip_trailer() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    // Larger than one read, so the trailer's bytes arrive over several writes.
    let text: Vec<u8> = (0..40_000)
        .flat_map(|i| format!("{i} {}\n", i * 7919 % 65_536).into_bytes())
        .collect();
    let compressed = gzip(&text);
    assert!(compressed.len() > 3 * 8192, "{}", compressed.len());
    let plain = write(dir.path(), "plain.log", &text);
    let gz = write(dir.path(), "flows.log.gz", &compressed);
    let fifo = dir.path().join("fifo.log");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let survey = |path: &Path| {
        flowdex::input::survey(&flowdex::input::InputFile {
            path: path.to_path_buf(),
            name: path.display().to_string(),
            error: None,
        })
    };
    let sha = |b: &[u8]| format!("{:x}", Sha256::digest(b));
    let got = survey(&gz);
    assert_eq!(
        (got.size, got.sha256.as_deref(), got.decoded_size),
        (
            compressed.len() as u64,
            Some(sha(&compressed).as_str()),
            text.len() as u64
        )
    );
    let got = survey(&plain);
    assert_eq!(
        (got.size, got.sha256.as_deref(), got.decoded_size),
        (text.len() as u64, Some(sha(&text).as_str()), text.len() as u64)
    );
    // Cut short, it ends in bytes stating more than deflate can give: ten times its size.
    let mut cut = compressed[..compressed.len() - 3].to_vec();
    cut.extend([0xff; 3]);
    let got = survey(&write(dir.path(), "cut.log.gz", &cut));
    assert_eq!(got.decoded_size, 10 * cut.len() as u64);
    // Neither waits for a writer nor hashes anything.
    assert_eq!(survey(&fifo), flowdex::input::Survey::default());
    assert_eq!(
        survey(&dir.path().join("missing.log")),
        flowdex::input::Survey::default()
    );
}

/// Collects like `Collected`, and appends a line to `path` when the first record arrives: the
/// file changes while it is being read.
struct Appending {
    path: PathBuf,
    appended: bool,
    inner: common::Collected,
}

impl flowdex::input::RecordSink for Appending {
    fn begin_source(&mut self, meta: &flowdex::input::SourceMeta) -> u32 {
        self.inner.begin_source(meta)
    }
    fn record(&mut self, record: &flowdex::record::FlowRecord, raw: &[u8], format: &flowdex::input::LogFormat) {
        if !self.appended {
            self.appended = true;
            let mut f = std::fs::OpenOptions::new().append(true).open(&self.path).unwrap();
            std::io::Write::write_all(&mut f, b"2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1 2 ACCEPT OK\n").unwrap();
        }
        self.inner.record(record, raw, format);
    }
    fn end_source(&mut self, report: flowdex::input::SourceReport) {
        self.inner.end_source(report);
    }
}

#[test]
fn a_file_that_changes_while_it_is_read_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "growing.log", &quirks());
    let mut sink = Appending {
        path: path.clone(),
        appended: false,
        inner: common::Collected::default(),
    };
    for file in flowdex::input::discover(std::slice::from_ref(&path)) {
        flowdex::input::read_input(&file, &Default::default(), &mut sink);
    }
    let r = &sink.inner.reports[0];
    assert!(matches!(r.error, Some(SourceError::ChangedWhileRead)), "{r}");
    // Read again when nothing writes to it: clean.
    let again = read(&[path], None);
    assert_eq!(again.reports[0].error, None);
}

#[test]
fn a_nul_byte_inside_a_line_rejects_that_line_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = quirks();
    // Past the bytes a source's form is told from, so the source is text.
    text.extend(b"\nversion account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status");
    text.extend(b"\n2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1418530010 1418530070 ACC\0EPT OK\n");
    text.extend(b"2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1418530010 1418530070 ACCEPT OK\n");
    let path = write(dir.path(), "nul.log", &text);
    let got = read(&[path], None);
    let r = &got.reports[0];
    assert_eq!(r.error, None, "{r}");
    assert_eq!((r.headers, r.records, r.rejected), (3, 8, 1), "{r}");
    assert!(
        r.rejects[0].reason.to_string().contains("action"),
        "{}",
        r.rejects[0].reason
    );
}

#[test]
fn messages_may_end_in_a_line_break_and_reasons_show_control_characters_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let line =
        "2 633112549318 eni-d68830d4 209.141.42.153 10.155.108.192 54252 8088 6 1 40 1537648094 1537648129 ACCEPT OK";
    let json = write(
        dir.path(),
        "events.json",
        format!(r#"{{"events":[{{"message":"{line}\n"}},{{"message":"{line}\r\n"}}]}}"#).as_bytes(),
    );
    let crcr = write(dir.path(), "crcr.log", format!("{line}\r\r\n").as_bytes());
    let got = read(&[json, crcr], None);
    assert_eq!(got.reports[0].records, 2, "{}", got.reports[0]);
    let reason = got.reports[1].rejects[0].reason.to_string();
    assert_eq!(reason, "bad log-status: `OK\\r` is not one of OK NODATA SKIPDATA");
}

#[test]
fn the_aws_write_test_object_is_left_out_of_bundles_as_out_of_folders() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    append_raw(
        &mut b,
        "AWSLogs/aws-logs-write-test",
        tar::EntryType::Regular,
        b"Permission Check Successful",
    );
    append_raw(&mut b, "AWSLogs/a.log", tar::EntryType::Regular, &quirks());
    let p = write(dir.path(), "sync.tar", &b.into_inner().unwrap());
    let got = read(&[p], None);
    assert_eq!(
        got.names,
        ["sync.tar!AWSLogs/a.log".to_owned()].map(|n| format!("{}/{n}", dir.path().display()))
    );
    assert_eq!(got.reports[0].rejected, 0);
}

#[test]
fn zero_filled_blocks_lose_their_lines_only_and_utf16_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let line = "2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1418530010 1418530070 ACCEPT OK\n";
    // A zero-filled block in the first bytes (a copy cut short, a crash), and a NUL in an ID.
    let mut text = vec![0u8; 4096];
    text.extend(format!("\n{line}{line}").as_bytes());
    text.extend(line.replace("eni-1", "eni-\u{0}1").as_bytes());
    // Zeros over the middle of a line, separators included: its field count means nothing.
    let mut zeroed = line.as_bytes().to_vec();
    zeroed[20..50].fill(0);
    text.extend(&zeroed);
    let zeros = write(dir.path(), "zeros.log", &text);
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(line.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let utf16 = write(dir.path(), "powershell.json", &utf16);
    let got = read(&[zeros, utf16], None);
    let r = &got.reports[0];
    assert_eq!((r.error.as_ref(), r.records, r.rejected), (None, 2, 3), "{r}");
    assert_eq!(r.rejects[0].reason, RejectReason::NulBytes);
    assert!(
        r.rejects[1].reason.to_string().contains("`eni-\\01`"),
        "{}",
        r.rejects[1].reason
    );
    assert_eq!((r.rejects[2].line, &r.rejects[2].reason), (5, &RejectReason::NulBytes));
    assert_eq!(got.reports[1].error, Some(SourceError::Utf16));
}

#[test]
fn zeros_after_the_last_gzip_member_end_the_stream_and_other_bytes_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let gz = gzip(&numbered_lines(100));
    let padded = [gz.clone(), vec![0u8; 100_000]].concat();
    let mut garbage = padded.clone();
    garbage.extend(b"not gzip");
    let padded = write(dir.path(), "padded.log.gz", &padded);
    let garbage = write(dir.path(), "garbage.log.gz", &garbage);
    let got = read(&[padded, garbage], None);
    let (p, g) = (&got.reports[0], &got.reports[1]);
    assert_eq!((p.error.as_ref(), p.records), (None, 100), "{p}");
    assert_eq!(g.records, 100, "{g}");
    assert!(matches!(g.error, Some(SourceError::Corrupt { .. })), "{g}");
}

/// Names a suspect chose (a tar entry, a file) may hold control characters: they are escaped
/// in the name a source is known by, so nothing printed carries a raw escape sequence or line
/// break, and the escaped name still leads `show` to the line.
#[test]
fn control_characters_in_names_are_escaped_wherever_names_go() {
    let dir = tempfile::tempdir().unwrap();
    let evil = "\u{1b}[2J\u{1b}[31mevil\u{1b}[0m\n.log";
    let mut b = tar::Builder::new(Vec::new());
    append_raw(&mut b, evil, tar::EntryType::Regular, &numbered_lines(3));
    let bundle = write(dir.path(), "in/b.tar", &b.into_inner().unwrap());
    write(dir.path(), "in/line\nbreak.log", &numbered_lines(2));
    let (idx, built) = build_in(dir.path());
    assert_eq!(
        built.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let index = flowdex::read::Index::open(&idx).unwrap();
    let names: Vec<String> = index.sources().unwrap().iter().map(|s| s.name.clone()).collect();
    let escaped = format!("{}!\\u{{1b}}[2J\\u{{1b}}[31mevil\\u{{1b}}[0m\\n.log", bundle.display());
    assert!(names.contains(&escaped), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with("in/line\\nbreak.log")), "{names:?}");
    let out = flowdex(&[
        "search",
        "--format",
        "raw",
        "--with-source",
        idx.to_str().unwrap(),
        "srcport < 1030",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
    let shown = flowdex(&["show", idx.to_str().unwrap(), &format!("{escaped}:2")]);
    assert_eq!(
        shown.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    assert!(!String::from_utf8_lossy(&shown.stdout).contains('\u{1b}'));
    // verify finds each source where it was, by its path, and names it escaped when it changed.
    let folder = dir.path().join("in");
    let out = flowdex(&["verify", idx.to_str().unwrap(), "--sources", folder.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("sources: 2 intact, 0 changed"), "{stdout}");
    assert!(!stdout.contains("not at their indexed path"), "{stdout}");
    write(dir.path(), "in/line\nbreak.log", &numbered_lines(3));
    let out = flowdex(&["verify", idx.to_str().unwrap(), "--sources"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("in/line\\nbreak.log: CHANGED at "), "{stdout}");
    assert!(stdout.lines().all(|l| !l.starts_with("break.log")), "{stdout}");
}
