//! Provenance to the line: `show` gives back every record's original line, from the source when
//! it is intact and from the index when it is not; `verify --sources` finds sources that are
//! missing, changed or extra. Sources are copied to a temporary folder so they can be tampered
//! with.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{build, fixture, read_with, real_fixtures};
use flowdex::input::ReadOptions;
use flowdex::read::Index;
use flowdex::recheck::{self, LineRef, SourceState};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A copy of the fixtures (own and, when present, real) in a temporary folder, and an index of
/// it built with the copy's paths.
fn evidence() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    copy_tree(&fixture(""), &src.join("own"));
    if let Some(real) = real_fixtures() {
        copy_tree(&real, &src.join("real"));
    }
    let idx = tmp.path().join("idx");
    build(&idx, std::slice::from_ref(&src), &ReadOptions::default(), 2);
    (tmp, src, idx)
}

fn all_refs(src: &Path) -> Vec<(LineRef, Vec<u8>)> {
    let read = read_with(&[src.to_path_buf()], &ReadOptions::default()).without_duplicate_sources();
    read.records
        .into_iter()
        .map(|(name, r, raw)| {
            (
                LineRef {
                    source: name,
                    line: r.provenance.line,
                },
                raw,
            )
        })
        .collect()
}

#[test]
fn show_gives_every_line_from_intact_sources_and_from_the_index_when_they_are_gone() {
    let (_tmp, src, idx) = evidence();
    let index = Index::open(&idx).unwrap();
    let refs = all_refs(&src);
    assert!(refs.len() > 30);
    let asked: Vec<LineRef> = refs.iter().map(|(r, _)| r.clone()).collect();
    let check = |gone: bool| {
        let shown = recheck::show(&index, &asked).unwrap();
        let mut n = 0;
        for s in &shown {
            assert_eq!(
                matches!(s.state, SourceState::Missing),
                gone,
                "{}: {:?}",
                s.source.name,
                s.state
            );
            for shown in &s.lines {
                let (line, indexed, on_disk) = (&shown.line, &shown.indexed, &shown.on_disk);
                let want = &refs
                    .iter()
                    .find(|(r, _)| r.source == s.source.name && r.line == *line)
                    .unwrap()
                    .1;
                assert_eq!(indexed.as_ref(), Some(want), "{}:{line}", s.source.name);
                assert_eq!(on_disk.as_ref(), (!gone).then_some(want), "{}:{line}", s.source.name);
                n += 1;
            }
        }
        assert_eq!(n, refs.len());
    };
    check(false);
    std::fs::remove_dir_all(&src).unwrap();
    check(true);
}

#[test]
fn verify_sources_reports_changed_missing_and_extra_files() {
    let (tmp, src, idx) = evidence();
    let index = Index::open(&idx).unwrap();
    let m = index.sources().unwrap();
    let check = recheck::check_sources(m, &[], None);
    assert!(check.all_intact(), "{:?}", check.sources);
    assert!(!check.sources.is_empty());

    // One byte of one source changed, another removed, a new file added.
    let changed = src.join("own/bare-v5.log");
    let mut bytes = std::fs::read(&changed).unwrap();
    bytes[3] ^= 1;
    std::fs::write(&changed, bytes).unwrap();
    std::fs::remove_file(src.join("own/tgw-s3.log")).unwrap();
    std::fs::write(
        src.join("own/new.log"),
        "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1 2 ACCEPT OK\n",
    )
    .unwrap();
    let state_of = |check: &recheck::SourcesCheck<'_>, suffix: &str| {
        check
            .sources
            .iter()
            .find(|(s, _)| s.name.ends_with(suffix))
            .unwrap()
            .1
            .clone()
    };
    let check = recheck::check_sources(m, &[], None);
    assert!(matches!(state_of(&check, "bare-v5.log"), SourceState::Changed { .. }));
    assert_eq!(state_of(&check, "tgw-s3.log"), SourceState::Missing);
    assert!(check.extra.is_empty(), "without folders nothing is extra");

    // By content under a folder, after the evidence moved elsewhere.
    let moved = tmp.path().join("moved");
    std::fs::rename(&src, &moved).unwrap();
    let check = recheck::check_sources(m, std::slice::from_ref(&moved), None);
    assert!(
        matches!(state_of(&check, "s3-text-quirks.log"), SourceState::Intact { at, .. } if at.starts_with(&*moved.to_string_lossy()))
    );
    assert_eq!(state_of(&check, "tgw-s3.log"), SourceState::Missing);
    assert_eq!(
        state_of(&check, "bare-v5.log"),
        SourceState::Missing,
        "moved and changed: not found"
    );
    let extra: Vec<&str> = check.extra.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(extra.len(), 2, "{extra:?}");
    assert!(extra.iter().any(|n| n.ends_with("new.log")) && extra.iter().any(|n| n.ends_with("bare-v5.log")));

    // The command says so and exits 1.
    let out = Command::new(env!("CARGO_BIN_EXE_flowdex"))
        .args(["verify", idx.to_str().unwrap(), "--sources", moved.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("tgw-s3.log: MISSING"), "{stdout}");
    assert!(stdout.contains("new.log: EXTRA"), "{stdout}");
    // The sources found in the moved folder are counted, not listed one by one.
    assert!(!stdout.contains("s3-text-quirks.log"), "{stdout}");
    let intact = check.sources.iter().filter(|(_, s)| s.is_intact()).count();
    assert!(
        stdout.contains(&format!(
            "sources: {intact} intact ({intact} of them under --sources, not at their indexed path)"
        )),
        "{stdout}"
    );
}

/// Line 3 of `s3-text-quirks.log`: runs of spaces, so the index stores it rather than writing it.
fn quirky_line() -> Vec<u8> {
    let text = std::fs::read(fixture("s3-text-quirks.log")).unwrap();
    let line = text.split(|b| *b == b'\n').nth(2).unwrap();
    assert!(line.windows(2).any(|w| w == b"  "));
    line.strip_suffix(b"\r").unwrap_or(line).to_vec()
}

#[test]
fn show_says_when_a_source_changed_and_prints_the_indexed_line() {
    let (_tmp, src, idx) = evidence();
    let source = src.join("own/s3-text-quirks.log");
    let original = std::fs::read_to_string(&source).unwrap();
    std::fs::write(&source, original.replacen("49761", "49762", 1)).unwrap();
    let name = source.to_string_lossy().into_owned();
    let out = Command::new(env!("CARGO_BIN_EXE_flowdex"))
        .args(["show", idx.to_str().unwrap(), &format!("{name}:3")])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("CHANGED since it was indexed"), "{stdout}");
    let indexed = String::from_utf8(quirky_line()).unwrap();
    assert!(stdout.contains(&format!("3:{indexed}\n")), "{stdout}");
    let now = indexed.replacen("49761", "49762", 1);
    assert!(stdout.contains(&format!("3: now in the file: {now}\n")), "{stdout}");
    // An unknown reference is an error.
    let out = Command::new(env!("CARGO_BIN_EXE_flowdex"))
        .args(["show", idx.to_str().unwrap(), "no-such-file:3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no source named `no-such-file`"));
}

#[test]
fn show_reads_lines_inside_bundles() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read(fixture("s3-text-quirks.log")).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    b.append_data(&mut header, "logs/a.log", &text[..]).unwrap();
    let bundle = tmp.path().join("case.tar");
    std::fs::write(&bundle, b.into_inner().unwrap()).unwrap();
    let idx = tmp.path().join("idx");
    build(&idx, std::slice::from_ref(&bundle), &ReadOptions::default(), 1);
    let index = Index::open(&idx).unwrap();
    let name = index.sources().unwrap()[0].name.clone();
    assert!(name.ends_with("!logs/a.log"), "{name}");
    let shown = recheck::show(&index, &[LineRef { source: name, line: 3 }]).unwrap();
    assert!(shown[0].state.is_intact(), "{:?}", shown[0].state);
    assert_eq!(shown[0].lines[0].indexed, Some(quirky_line()));
    assert_eq!(shown[0].lines[0].on_disk, Some(quirky_line()));
}

#[test]
fn show_exits_1_for_a_reference_that_holds_no_record() {
    let (_tmp, src, idx) = evidence();
    let (first, _) = all_refs(&src).into_iter().next().unwrap();
    let show = |line: u64| {
        Command::new(env!("CARGO_BIN_EXE_flowdex"))
            .arg("show")
            .arg(&idx)
            .arg(format!("{}:{line}", first.source))
            .output()
            .unwrap()
    };
    let found = show(first.line);
    assert_eq!(
        found.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&found.stderr)
    );
    let past_the_end = show(1_000_000);
    assert_eq!(past_the_end.status.code(), Some(1));
    let text = String::from_utf8_lossy(&past_the_end.stdout);
    assert!(text.contains("1000000: (no record: the source has "), "{text}");
}

#[test]
fn a_folder_where_a_source_was_is_unreadable_not_missing() {
    let (_tmp, src, idx) = evidence();
    let index = Index::open(&idx).unwrap();
    let gone = src.join("own/bare-v5.log");
    std::fs::remove_file(&gone).unwrap();
    std::fs::create_dir(&gone).unwrap();
    let check = recheck::check_sources(index.sources().unwrap(), &[], None);
    let (_, state) = check
        .sources
        .iter()
        .find(|(s, _)| s.name.ends_with("own/bare-v5.log"))
        .unwrap();
    assert!(
        matches!(state, SourceState::Unreadable { why, .. } if why.contains("not a regular file")),
        "{state:?}"
    );
}

#[test]
fn the_rejects_file_keeps_the_bytes_of_a_line_that_is_not_utf8() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let line = b"2 1 eni-\xff\xfe 10.0.0.1 10.0.0.2 1 2 6 1 40 1418530010 1418530070 ACCEPT OK";
    let log = dir.path().join("bytes.log");
    std::fs::write(&log, [&line[..], b"\n"].concat()).unwrap();
    let rejects = dir.path().join("rejects.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_flowdex"))
        .args([
            "cat",
            "--quiet",
            "--rejects",
            rejects.to_str().unwrap(),
            log.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let entry: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&rejects).unwrap().trim()).unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(entry["bytes_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, line);
    // An existing file, the input itself here, is refused and left whole.
    let out = Command::new(env!("CARGO_BIN_EXE_flowdex"))
        .args([
            "cat",
            "--quiet",
            "--rejects",
            log.to_str().unwrap(),
            log.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already exists; give --rejects a new file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&log).unwrap(), [&line[..], b"\n"].concat());
}

/// A rejected line of a source still on disk is shown as what it is, no record, with the
/// reason it was rejected, and `show` exits 1 as for any reference that holds no record.
#[test]
fn show_names_a_rejected_line_as_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("rej.log");
    std::fs::write(
        &log,
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
         2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1418530010 1418530070 ACCEPT OK\n\
         2 123456789010 eni-1 10.0.0.999 10.0.0.2 1 2 6 1 1 1418530010 1418530070 ACCEPT OK\n\n",
    )
    .unwrap();
    let idx = dir.path().join("idx");
    build(&idx, std::slice::from_ref(&log), &ReadOptions::default(), 1);
    let name = log.display().to_string();
    let show = |reference: &str, format: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_flowdex"))
            .args(["show", "--format", format])
            .arg(&idx)
            .arg(reference)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let (code, text) = show(&format!("{name}:2"), "text");
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = show(&format!("{name}:3"), "text");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "3: (no record: the index rejected this line: bad srcaddr: `10.0.0.999` is not an IP address) 2 "
        ),
        "{text}"
    );
    let (code, jsonl) = show(&format!("{name}:3"), "jsonl");
    let entry: serde_json::Value = serde_json::from_str(jsonl.trim()).unwrap();
    assert_eq!(
        (code, &entry["record"], entry["rejected"].is_string()),
        (Some(1), &serde_json::json!(false), true)
    );
    // The other lines that hold no record say what they are too, with the source file there
    // as well as changed or gone.
    for (reference, why) in [
        (1, "1: (no record: a header line (field names)) version account-id"),
        (4, "4: (no record: a blank line)"),
        (5, "5: (no record: the source has 4 lines)"),
    ] {
        let (code, text) = show(&format!("{name}:{reference}"), "text");
        assert_eq!(code, Some(1), "{text}");
        assert!(text.contains(why), "{text}");
    }
    // Changed, its text is no evidence: the blank line 4 now holds words.
    let mut changed = std::fs::read_to_string(&log).unwrap();
    changed.push_str("now words\n");
    std::fs::write(&log, changed.replace("\n\nnow words\n", "\nnow words\n")).unwrap();
    let (_, text) = show(&format!("{name}:4"), "text");
    assert!(text.contains("4: (no record: a header or a blank line)"), "{text}");
    std::fs::remove_file(&log).unwrap();
    let (_, text) = show(&format!("{name}:1"), "text");
    assert!(text.contains("1: (no record: a header or a blank line)"), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_flowdex"))
        .arg("show")
        .arg(&idx)
        .arg(format!("{name}:0"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":0`: lines are numbered from 1"));
}

/// Past where a failed source's reading stopped, `show` does not claim the file ends there.
#[test]
fn show_says_how_far_a_failed_source_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..20_000)
        .map(|i| {
            format!(
                "2 1 eni-1 10.0.{}.{} 10.0.0.2 1 2 6 1 1 1418530010 1418530070 ACCEPT OK\n",
                i / 250,
                i % 250
            )
        })
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let log = dir.path().join("cut.log.gz");
    std::fs::write(&log, &gz[..gz.len() / 2]).unwrap();
    let idx = dir.path().join("idx");
    build(&idx, std::slice::from_ref(&log), &ReadOptions::default(), 1);
    let out = Command::new(env!("CARGO_BIN_EXE_flowdex"))
        .arg("show")
        .arg(&idx)
        .arg(format!("{}:19999", log.display()))
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("19999: (no record: the index read only "), "{shown}");
    assert!(
        shown.contains(" lines of this source, which failed: gzip stream is corrupt or truncated"),
        "{shown}"
    );
}

/// A file changed at an indexed path and built again is a second source under a name of its
/// own (`NAME#2`), so that each `NAME:LINE` points at one line; `show` gives each its own line
/// and state, and `verify --sources` says nothing of an intact source that a copy sits beside.
#[test]
fn a_changed_file_built_again_is_a_source_of_its_own_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("logs");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("b.log");
    let text = "version interface-id srcaddr dstaddr start end action log-status\n\
                2 eni-a 10.0.0.1 10.0.0.2 1711929600 1711929660 ACCEPT OK\n\
                2 eni-a 10.0.0.3 10.0.0.2 1711929600 1711929660 ACCEPT OK\n";
    std::fs::write(&file, text).unwrap();
    let idx = tmp.path().join("idx");
    let flowdex = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_flowdex")).args(args).output().unwrap();
    let (i, f) = (idx.to_str().unwrap(), file.to_str().unwrap());
    assert!(flowdex(&["build", "-q", "--output", i, f]).status.success());
    std::fs::write(&file, text.replacen("ACCEPT OK\n2", "REJECT OK\n2", 1)).unwrap();
    let out = flowdex(&["build", "--output", i, f]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{f}: the index holds other content under this name; this content is added as {f}#2"
        )),
        "{stderr}"
    );
    let out = flowdex(&["search", "--with-source", "--format", "jsonl", i, "srcaddr = 10.0.0.1"]);
    let sources: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            format!(
                "{}:{} {}",
                v["_source"].as_str().unwrap(),
                v["_line"],
                v["action"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(sources, [format!("{f}:2 ACCEPT"), format!("{f}#2:2 REJECT")]);
    // The first is the index's copy of a changed file (exit 1); the second is the file now.
    let out = flowdex(&["show", "--format", "jsonl", i, &format!("{f}:2")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ACCEPT OK"));
    let out = flowdex(&["show", i, &format!("{f}#2:2")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("2:2 eni-a 10.0.0.1 10.0.0.2 1711929600 1711929660 REJECT OK"),
        "{stdout}"
    );
    // A copy of the file beside it: the source is where it was, not one under --sources elsewhere.
    std::fs::copy(&file, dir.join("a-copy.log")).unwrap();
    let out = flowdex(&["verify", i, "--sources", dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("not at their indexed path"), "{stdout}");
    assert!(
        stdout.contains("sources: 1 intact, 1 changed, 0 missing, 0 unreadable, 0 extra"),
        "{stdout}"
    );
    // The same, with the folder spelt otherwise, and from above the index: its own files are
    // not evidence, and a changed source is not also a file the index lacks.
    for sources in ["./logs", "."] {
        let out = Command::new(env!("CARGO_BIN_EXE_flowdex"))
            .args(["verify", "idx", "--sources", sources])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains("not at their indexed path"), "{sources}: {stdout}");
        assert!(
            stdout.contains("sources: 1 intact, 1 changed, 0 missing, 0 unreadable, 0 extra"),
            "{sources}: {stdout}"
        );
    }
}

/// A file name that is not UTF-8 is shown with U+FFFD, but the index keeps its bytes: the
/// source is found again, not reported missing.
#[cfg(unix)]
#[test]
fn a_source_whose_name_is_not_utf8_is_found_again() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("logs");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(std::ffi::OsStr::from_bytes(b"bad\xffname.log"));
    std::fs::write(&file, std::fs::read(fixture("bare-v5.log")).unwrap()).unwrap();
    let idx = tmp.path().join("idx");
    build(&idx, std::slice::from_ref(&dir), &ReadOptions::default(), 1);
    let index = Index::open(&idx).unwrap();
    let check = recheck::check_sources(index.sources().unwrap(), &[], None);
    assert!(check.all_intact(), "{:?}", check.sources);
    let by_content = recheck::check_sources(index.sources().unwrap(), &[dir], None);
    assert!(
        by_content.all_intact()
            && by_content
                .sources
                .iter()
                .all(|(_, s)| matches!(s, SourceState::Intact { moved: false, .. })),
        "{:?}",
        by_content.sources
    );
}
