//! Coverage against what was delivered: a hand-written S3 corpus with missing 5-minute objects,
//! SKIPDATA and NODATA lines gives exact ranges (library, `flowdex coverage` golden files, the
//! search warning); on random synthetic corpora with objects deleted and on the fixtures, the
//! index's answer equals an independent oracle computed from the parsed records.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{build, fixture, read_with, Collected};
use flowdex::coverage::{self, Coverage, Key, Options, Range, State, Subject};
use flowdex::input::ReadOptions;
use flowdex::read::Index;
use flowdex::record::LogStatus;

/// 2024-04-28T10:00:00Z.
const BASE: u64 = 1_714_298_400;
const ACCOUNT: &str = "111122223333";
const V2: &str = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status";
/// A format without interface-id: its records are grouped by flow log.
const NO_ENI: &str = "version account-id srcaddr dstaddr start end action log-status";

fn object_path(root: &Path, flow_log: &str, w: u64) -> PathBuf {
    let minutes = w * 5;
    root.join(format!(
        "AWSLogs/{ACCOUNT}/vpcflowlogs/us-east-1/2024/04/28/\
         {ACCOUNT}_vpcflowlogs_us-east-1_{flow_log}_20240428T{:02}{:02}Z_0123abcd.log",
        10 + minutes / 60,
        minutes % 60
    ))
}

/// Twelve 5-minute windows from 10:00 of two flow logs, written as AWS delivers them, except
/// that the objects of 10:15 and 10:20 (both logs) and of 10:50 (`fl-0bbb`) are missing.
///
/// - `eni-a`: one OK record per window; at 10:40 also a SKIPDATA line.
/// - `eni-b`: OK records until 10:25, NODATA at 10:30 and 10:35, then nothing (detached).
/// - `fl-0bbb` logs without interface-id: one OK record per window.
fn write_hand_corpus(root: &Path) {
    for w in 0..12u64 {
        let t = BASE + 300 * w;
        if w != 3 && w != 4 {
            let mut text = format!("{V2}\n");
            text += &format!(
                "2 {ACCOUNT} eni-a 10.0.0.1 10.0.0.2 40000 443 6 5 500 {} {} ACCEPT OK\n",
                t + 10,
                t + 70
            );
            if w == 8 {
                text += &format!("2 {ACCOUNT} eni-a - - - - - - - {} {} - SKIPDATA\n", t, t + 59);
            }
            if w < 6 {
                text += &format!(
                    "2 {ACCOUNT} eni-b 10.0.0.3 10.0.0.4 40001 22 6 3 300 {} {} REJECT OK\n",
                    t + 30,
                    t + 90
                );
            } else if w < 8 {
                text += &format!("2 {ACCOUNT} eni-b - - - - - - - {} {} - NODATA\n", t + 5, t + 64);
            }
            write(&object_path(root, "fl-0aaa", w), &text);
        }
        if w != 3 && w != 4 && w != 10 {
            let text = format!(
                "{NO_ENI}\n2 {ACCOUNT} 10.9.0.1 10.9.0.2 {} {} ACCEPT OK\n",
                t + 20,
                t + 80
            );
            write(&object_path(root, "fl-0bbb", w), &text);
        }
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn hand_index() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    write_hand_corpus(&corpus);
    let idx = dir.path().join("idx");
    build(&idx, &[corpus], &ReadOptions::default(), 2);
    (dir, idx)
}

/// Ranges as (from, to) in minutes after 10:00 (seconds when not whole), state, records.
fn short(ranges: &[Range]) -> Vec<(String, String, State, u64)> {
    let at = |t: u64| {
        let d = t as i64 - BASE as i64;
        if d % 60 == 0 {
            format!("{}m", d / 60)
        } else {
            format!("{d}s")
        }
    };
    ranges
        .iter()
        .map(|r| (at(r.from), at(r.to), r.state, r.records))
        .collect()
}

fn find<'a>(subjects: &'a [Coverage], subject: &Subject) -> &'a Coverage {
    subjects
        .iter()
        .find(|c| &c.key.subject == subject)
        .unwrap_or_else(|| panic!("no {subject:?} in {subjects:?}"))
}

fn r(from: &str, to: &str, state: State, records: u64) -> (String, String, State, u64) {
    (from.to_owned(), to.to_owned(), state, records)
}

#[test]
fn missing_objects_skipdata_and_nodata_give_exact_ranges() {
    let (_dir, idx) = hand_index();
    let index = Index::open(&idx).unwrap();
    let report = coverage::coverage(&index, &Options::default()).unwrap();
    // The index's span: the first start (10:00:10) to the last end (10:56:20).
    assert_eq!(report.window, Some((BASE + 10, BASE + 3380)));
    assert_eq!(report.subjects.len(), 3);
    let eni = |s: &str| Subject::Interface(s.to_owned());
    use State::*;
    let a = find(&report.subjects, &eni("eni-a"));
    assert_eq!(a.key.account_id.as_deref(), Some(ACCOUNT));
    assert_eq!(
        short(&a.ranges),
        [
            r("10s", "15m", Records, 3),
            r("15m", "25m", Gap, 0),
            r("25m", "40m", Records, 3),
            r("40m", "45m", SkipData, 2),
            r("45m", "3381s", Records, 3),
        ]
    );
    // Trimmed at its last record: a detached interface has no gap after it.
    let b = find(&report.subjects, &eni("eni-b"));
    assert_eq!(
        short(&b.ranges),
        [
            r("10s", "15m", Records, 3),
            r("15m", "25m", Gap, 0),
            r("25m", "30m", Records, 1),
            r("30m", "40m", NoData, 2),
        ]
    );
    let fl = find(&report.subjects, &Subject::FlowLog("fl-0bbb".into()));
    assert_eq!(fl.key.account_id.as_deref(), Some(ACCOUNT));
    assert_eq!(
        short(&fl.ranges),
        [
            r("10s", "15m", Records, 3),
            r("15m", "25m", Gap, 0),
            r("25m", "50m", Records, 5),
            r("50m", "55m", Gap, 0),
            r("55m", "3381s", Records, 1),
        ]
    );
}

#[test]
fn an_explicit_window_reports_gaps_to_its_edges_and_silent_interfaces() {
    let (_dir, idx) = hand_index();
    let index = Index::open(&idx).unwrap();
    use State::*;
    let options = Options {
        window: Some((BASE - 600, BASE + 4199)),
        interfaces: Some(vec!["eni-b".into(), "eni-zzz".into()]),
        ..Options::default()
    };
    let report = coverage::coverage(&index, &options).unwrap();
    assert_eq!(report.unknown_interfaces, ["eni-zzz"]);
    assert_eq!(report.subjects.len(), 1, "only eni-b: no flow log without interfaces");
    assert_eq!(
        short(&report.subjects[0].ranges),
        [
            r("-10m", "0m", Gap, 0),
            r("0m", "15m", Records, 3),
            r("15m", "25m", Gap, 0),
            r("25m", "30m", Records, 1),
            r("30m", "40m", NoData, 2),
            r("40m", "70m", Gap, 0),
        ]
    );
    // A window ending at 10:25:00 holds one second of the 10:25 slot, in which eni-b delivered
    // (at 10:25:30): the slot is judged by its records, not reported as a one-second gap.
    let options = Options {
        window: Some((BASE + 600, BASE + 1500)),
        interfaces: Some(vec!["eni-b".into()]),
        ..Options::default()
    };
    let report = coverage::coverage(&index, &options).unwrap();
    assert_eq!(
        short(&report.subjects[0].ranges),
        [
            r("10m", "15m", Records, 1),
            r("15m", "25m", Gap, 0),
            r("25m", "1501s", Records, 0),
        ]
    );
    // An interface the index knows but that is silent in the window: one gap over all of it.
    let options = Options {
        window: Some((BASE + 2700, BASE + 3599)),
        interfaces: Some(vec!["eni-b".into()]),
        ..Options::default()
    };
    let report = coverage::coverage(&index, &options).unwrap();
    assert_eq!(report.subjects[0].key.account_id.as_deref(), Some(ACCOUNT));
    assert_eq!(short(&report.subjects[0].ranges), [r("45m", "60m", Gap, 0)]);
    // A 1-minute grid sees the minutes of a window no record overlapped.
    let options = Options {
        window: Some((BASE, BASE + 299)),
        bin: 60,
        interfaces: Some(vec!["eni-a".into()]),
        counts: true,
    };
    let report = coverage::coverage(&index, &options).unwrap();
    assert_eq!(
        short(&report.subjects[0].ranges),
        [r("0m", "2m", Records, 1), r("2m", "5m", Gap, 0)]
    );
}

#[test]
fn the_skipdata_postings_find_every_skipdata_slot() {
    let (_dir, idx) = hand_index();
    let index = Index::open(&idx).unwrap();
    let found = coverage::skipdata(&index, None, coverage::DEFAULT_BIN, None).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].key.subject, Subject::Interface("eni-a".into()));
    assert_eq!(short(&found[0].ranges), [r("40m", "45m", State::SkipData, 1)]);
    // Asked about some interfaces, it reads only theirs.
    let only = |names: &[&str]| {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        coverage::skipdata(&index, None, coverage::DEFAULT_BIN, Some(&names)).unwrap()
    };
    assert_eq!(only(&["eni-a", "eni-b"]), found);
    assert!(only(&["eni-b"]).is_empty());
    assert!(only(&["eni-nowhere"]).is_empty());
    assert!(only(&[]).is_empty());
}

fn flowdex(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flowdex")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn golden(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(got, want, "{} differs", path.display());
}

#[test]
fn the_coverage_command_prints_the_golden_table_and_jsonl() {
    let (_dir, idx) = hand_index();
    let idx = idx.to_str().unwrap();
    let (code, table, err) = flowdex(&["coverage", idx]);
    assert_eq!((code, err.as_str()), (0, ""));
    golden("coverage.table", &table);
    let (code, jsonl, err) = flowdex(&[
        "coverage",
        idx,
        "--format",
        "jsonl",
        "--from",
        "2024-04-28T09:50:00Z",
        "--to",
        "2024-04-28T11:09:59Z",
        "--eni",
        "eni-a",
        "--eni",
        "eni-gone",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        err,
        "flowdex: warning: eni-gone is nowhere in the index; no search can find its traffic\n"
    );
    golden("coverage-window.jsonl", &jsonl);
    let (code, _, err) = flowdex(&["coverage", idx, "--bin", "0m"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = flowdex(&["coverage", idx, "--from", "yesterday"]);
    assert_eq!(code, 2);
    assert!(err.contains("--from `yesterday`"), "{err}");
}

#[test]
fn search_warns_about_gaps_and_skipdata_in_its_window_only() {
    let (_dir, idx) = hand_index();
    let idx = idx.to_str().unwrap();
    let window = ["--from", "2024-04-28T09:50:00Z", "--to", "2024-04-28T11:09:59Z"];
    let mut args = vec![
        "search",
        idx,
        "interface_id = eni-a and dstport = 443",
        "--format",
        "jsonl",
    ];
    args.extend(window);
    let (code, out, err) = flowdex(&args);
    assert_eq!((code, out.lines().count()), (0, 10));
    assert_eq!(
        err,
        "flowdex: warning: eni-a has no delivery 2024-04-28T09:50Z..10:00Z, 2024-04-28T10:15Z..10:25Z and \
         SKIPDATA 2024-04-28T10:40Z..10:45Z (and 1 more ranges) inside the searched window; absence of records \
         there proves nothing\n"
    );
    // A window the logs cover: no warning. The time condition may come from the query too.
    let (code, _, err) = flowdex(&[
        "search",
        idx,
        "interface_id = eni-a and time >= 2024-04-28T10:25:00Z and time <= 2024-04-28T10:39:59Z",
        "--format",
        "jsonl",
    ]);
    assert_eq!((code, err.as_str()), (0, ""));
    // Nothing matched and no interface named: SKIPDATA anywhere in the window is worth saying.
    let mut args = vec!["search", idx, "srcaddr = 192.0.2.1", "--format", "jsonl"];
    args.extend(window);
    let (code, _, err) = flowdex(&args);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "flowdex: warning: eni-a has SKIPDATA 2024-04-28T10:40Z..10:45Z inside the searched window; absence of \
         records there proves nothing\n"
    );
    // The interfaces of the matches: eni-b's records stop at 10:40, so its gaps run to 11:10.
    let mut args = vec!["search", idx, "dstport = 22", "--format", "jsonl"];
    args.extend(window);
    let (code, _, err) = flowdex(&args);
    assert_eq!(code, 0);
    assert!(
        err.starts_with("flowdex: warning: eni-b has no delivery 2024-04-28T09:50Z..10:00Z, 2024-04-28T10:15Z..10:25Z, 2024-04-28T10:40Z..11:10Z inside"),
        "{err}"
    );
}

/// Coverage computed from the parsed records, without the index: each record marks the slots its
/// [start, end] overlaps within the window, counts in the first, and slots are merged into ranges.
fn oracle(read: &Collected, options: &Options, window: (u64, u64)) -> Vec<Coverage> {
    let (lo, hi, bin) = (window.0, window.1, options.bin);
    // A slot at the window's edge is judged by all its records: the window's slots' edges.
    let (slots_lo, slots_hi) = (lo / bin * bin, (hi / bin + 1) * bin - 1);
    let mut marks: BTreeMap<Key, BTreeMap<u64, (u8, u64)>> = BTreeMap::new();
    let s3: HashMap<&str, &flowdex::input::S3Key> = read
        .reports
        .iter()
        .map(|r| (r.meta.name.as_str(), &r.meta.s3))
        .collect();
    for (name, rec, _) in &read.records {
        let (Some(s), Some(e)) = (rec.start, rec.end) else {
            continue;
        };
        let (s, e) = (s.min(e), s.max(e));
        if s > slots_hi || e < slots_lo {
            continue;
        }
        let in_window = s <= hi && e >= lo;
        let key = match &rec.interface_id {
            Some(i) => Key {
                account_id: rec.account_id.clone(),
                subject: Subject::Interface(i.clone()),
            },
            None if options.interfaces.is_some() => continue,
            None => {
                let k = s3[name.as_str()];
                Key {
                    account_id: rec.account_id.clone().or_else(|| k.account_id.clone()),
                    subject: match &k.flow_log_id {
                        Some(f) => Subject::FlowLog(f.clone()),
                        None => Subject::Source(name.clone()),
                    },
                }
            }
        };
        if let (Some(want), Subject::Interface(i)) = (&options.interfaces, &key.subject) {
            if !want.contains(i) {
                continue;
            }
        }
        let status = match rec.log_status {
            Some(LogStatus::SkipData) => 4,
            Some(LogStatus::NoData) => 2,
            _ => 1,
        };
        // A SKIPDATA line outside the window says nothing of a drop inside it.
        if status == 4 && !in_window {
            continue;
        }
        let slots = marks.entry(key).or_default();
        let first = s.max(slots_lo) / bin;
        for slot in first..=e.min(slots_hi) / bin {
            let m = slots.entry(slot).or_default();
            m.0 |= status;
            m.1 += u64::from(slot == first && in_window);
        }
    }
    // With a window, a named interface the corpus has but that is silent in the window is one
    // gap over all of it.
    if let (Some(_), Some(want)) = (options.window, &options.interfaces) {
        for name in want {
            let silent = !marks.keys().any(|k| k.subject == Subject::Interface(name.clone()));
            let account = read
                .records
                .iter()
                .find(|(_, r, _)| r.interface_id.as_ref() == Some(name));
            if let (true, Some((_, r, _))) = (silent, account) {
                let key = Key {
                    account_id: r.account_id.clone(),
                    subject: Subject::Interface(name.clone()),
                };
                marks.insert(key, BTreeMap::new());
            }
        }
    }
    let mut out = Vec::new();
    for (key, slots) in marks {
        let (begin, end) = match options.window {
            Some(_) => (lo / bin, hi / bin),
            None => match (slots.keys().next(), slots.keys().last()) {
                (Some(f), Some(l)) => (*f, *l),
                _ => continue,
            },
        };
        let mut ranges: Vec<Range> = Vec::new();
        for slot in begin..=end {
            let (state, records) = match slots.get(&slot) {
                None => (State::Gap, 0),
                Some((m, n)) if m & 4 != 0 => (State::SkipData, *n),
                Some((m, n)) if m & 1 != 0 => (State::Records, *n),
                Some((_, n)) => (State::NoData, *n),
            };
            let (from, to) = ((slot * bin).max(lo), ((slot + 1) * bin).min(hi + 1));
            match ranges.last_mut() {
                Some(last) if last.state == state => {
                    last.to = to;
                    last.records += records;
                }
                _ => ranges.push(Range {
                    from,
                    to,
                    state,
                    records,
                }),
            }
        }
        out.push(Coverage { key, ranges });
    }
    out
}

fn check_against_oracle(paths: &[PathBuf], options: &Options) {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), paths, &ReadOptions::default(), 2);
    let index = Index::open(dir.path()).unwrap();
    let read = read_with(paths, &ReadOptions::default()).without_duplicate_sources();
    let report = coverage::coverage(&index, options).unwrap();
    let window = report.window.expect("a dated corpus");
    if options.window.is_none() {
        let dated = || read.records.iter().filter_map(|(_, r, _)| r.start.zip(r.end));
        let lo = dated().map(|(s, _)| s).min().unwrap();
        let hi = dated().map(|(_, e)| e).max().unwrap();
        assert_eq!(window, (lo, hi), "the index's span");
    }
    let want = oracle(&read, options, window);
    assert_eq!(report.subjects.len(), want.len(), "subjects");
    for (got, want) in report.subjects.iter().zip(&want) {
        assert_eq!(got, want, "{options:?}");
    }
    // Every record in the window is counted once.
    let counted: u64 = report.subjects.iter().flat_map(|c| &c.ranges).map(|r| r.records).sum();
    assert!(counted > 0);
    // The SKIPDATA ranges alone, as a search's warning finds them (from the segments' SKIPDATA
    // sections), are the oracle's.
    let skipdata = coverage::skipdata(&index, options.window, options.bin, options.interfaces.as_deref()).unwrap();
    assert_eq!(skipdata_spans(&skipdata), skipdata_spans(&want), "{options:?}");
    // Without counts, the named interfaces' slots come from the segments' slot runs where the
    // window lies on the grid's edges: the same ranges, counting nothing.
    let uncounted = Options {
        counts: false,
        ..options.clone()
    };
    let fast = coverage::coverage(&index, &uncounted).unwrap();
    assert_eq!(fast.unknown_interfaces, report.unknown_interfaces);
    assert_eq!(without_counts(&fast.subjects), without_counts(&want), "{uncounted:?}");
}

fn without_counts(subjects: &[Coverage]) -> Vec<Coverage> {
    let mut out = subjects.to_vec();
    out.iter_mut().flat_map(|c| &mut c.ranges).for_each(|r| r.records = 0);
    out
}

/// Rewrites a gzip'd flow-log object with the log-status of every `every`-th record line
/// turned from OK to SKIPDATA; returns how many were turned.
fn turn_to_skipdata(path: &Path, every: usize) -> usize {
    use std::io::{Read, Write};
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut turned = 0;
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let mut tokens: Vec<&str> = line.split(' ').collect();
            match tokens.iter().position(|t| *t == "OK") {
                Some(at) if i % every == 1 => {
                    tokens[at] = "SKIPDATA";
                    turned += 1;
                    tokens.join(" ")
                }
                _ => line.to_owned(),
            }
        })
        .collect();
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
    gz.write_all((lines.join("\n") + "\n").as_bytes()).unwrap();
    gz.finish().unwrap();
    turned
}

/// Each subject's SKIPDATA ranges, for subjects that have any.
fn skipdata_spans(subjects: &[Coverage]) -> Vec<(Key, Vec<(u64, u64)>)> {
    subjects
        .iter()
        .map(|c| {
            let spans = c.ranges.iter().filter(|r| r.state == State::SkipData);
            (c.key.clone(), spans.map(|r| (r.from, r.to)).collect::<Vec<_>>())
        })
        .filter(|(_, spans)| !spans.is_empty())
        .collect()
}

#[test]
fn coverage_of_random_synthetic_corpora_with_lost_objects_agrees_with_a_scan() {
    for (seed, format) in [(21u64, "v5"), (22, "v2"), (23, "tgw")] {
        let corpus = common::synth_corpus(6000, 1, seed, format);
        // Lose every 7th object, as a broken delivery or an incomplete download would.
        let objects = flowdex::input::discover(&[corpus.path().to_path_buf()]);
        let mut lost = 0;
        for (i, f) in objects.iter().enumerate() {
            if i % 7 == 3 && f.path.extension().is_some_and(|e| e == "gz") {
                std::fs::remove_file(&f.path).unwrap();
                lost += 1;
            }
        }
        assert!(lost > 10);
        // Synth writes SKIPDATA about once in 10,000 records: turn more records to SKIPDATA.
        let mut turned = 0;
        for (i, f) in objects.iter().enumerate() {
            if i % 5 == 1 && f.path.exists() && f.path.extension().is_some_and(|e| e == "gz") {
                turned += turn_to_skipdata(&f.path, 17);
            }
        }
        assert!(turned > 20, "{turned}");
        let paths = [corpus.path().to_path_buf()];
        check_against_oracle(&paths, &Options::default());
        check_against_oracle(
            &paths,
            &Options {
                // 03:07:30 .. 09:59:59 on 10-minute slots: a window not on the grid.
                window: Some((1_711_940_850, 1_711_965_599)),
                bin: 600,
                interfaces: None,
                counts: true,
            },
        );
    }
}

#[test]
fn coverage_of_named_interfaces_agrees_with_a_scan() {
    let corpus = common::synth_corpus(5000, 1, 31, "v5");
    let mut turned = 0;
    for f in flowdex::input::discover(&[corpus.path().to_path_buf()]) {
        if f.path.extension().is_some_and(|e| e == "gz") {
            turned += turn_to_skipdata(&f.path, 29);
        }
    }
    assert!(turned > 50, "{turned}");
    let paths = [corpus.path().to_path_buf()];
    let read = read_with(&paths, &ReadOptions::default());
    let mut enis: Vec<String> = read
        .records
        .iter()
        .filter_map(|(_, r, _)| r.interface_id.clone())
        .collect();
    enis.sort();
    enis.dedup();
    let some: Vec<String> = enis.iter().step_by(5).cloned().collect();
    assert!(some.len() > 2);
    check_against_oracle(
        &paths,
        &Options {
            interfaces: Some(some.clone()),
            ..Options::default()
        },
    );
    check_against_oracle(
        &paths,
        &Options {
            window: Some((1_711_951_200, 1_711_958_399)),
            interfaces: Some(some.clone()),
            bin: 60,
            counts: true,
        },
    );
    // On the 5-minute grid of the slot runs, with an interface the index does not know.
    let mut with_unknown = some;
    with_unknown.push("eni-0000000000000000".into());
    check_against_oracle(
        &paths,
        &Options {
            window: Some((1_711_951_200, 1_711_958_399)),
            interfaces: Some(with_unknown),
            ..Options::default()
        },
    );
}

#[test]
fn coverage_of_the_fixtures_agrees_with_a_scan() {
    let mut paths = vec![fixture("")];
    paths.extend(common::real_fixtures());
    check_against_oracle(&paths, &Options::default());
}

#[test]
fn a_record_whose_end_is_before_its_start_covers_the_span_between() {
    // AWS never writes it, but a damaged or hand-made line may: the scan places it by its span,
    // as the oracle does, also where the block's zone maps alone would put it outside.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("reversed.log");
    write(
        &log,
        "version account-id interface-id start end log-status\n\
         2 123 eni-r 1711944000 1711940400 OK\n\
         2 123 eni-r 1711944000 1711940400 SKIPDATA\n",
    );
    let window = Some((1_711_941_000, 1_711_941_899));
    let options = Options {
        window,
        ..Options::default()
    };
    check_against_oracle(std::slice::from_ref(&log), &options);
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &[log], &ReadOptions::default(), 1);
    let report = coverage::coverage(&Index::open(dir.path()).unwrap(), &options).unwrap();
    assert_eq!(report.subjects.len(), 1);
    assert_eq!(report.subjects[0].ranges[0].state, State::SkipData);
}

#[test]
fn a_window_beyond_the_index_finds_nothing_and_says_where_the_records_are() {
    let (_dir, idx) = hand_index();
    let idx = idx.to_str().unwrap();
    for window in [["--from", "2024-05-01"], ["--to", "2024-03-01"]] {
        let mut args = vec!["search", idx, "dstport = 443"];
        args.extend(window);
        let (code, out, err) = flowdex(&args);
        assert_eq!((code, out.as_str(), err.as_str()), (1, "", ""), "{window:?}");
    }
    let (code, _, err) = flowdex(&["coverage", idx, "--from", "2024-05-01"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no record of the index is in the window from 2024-05-01T00:00:00Z: its records span 2024-04-28T"),
        "{err}"
    );
    let (code, _, err) = flowdex(&["coverage", idx, "--from", "2024-05-01", "--to", "2024-04-30"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("the window 2024-05-01T00:00:00Z .. 2024-04-30T23:59:59Z ends before it starts"),
        "{err}"
    );
}

#[test]
fn a_search_naming_an_interface_the_index_lacks_says_so_without_a_window_too() {
    let (_dir, idx) = hand_index();
    let idx = idx.to_str().unwrap();
    let (code, out, err) = flowdex(&["search", idx, "interface_id = eni-mistyped"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("eni-mistyped is nowhere in the index"), "{err}");
    // And with a window the index has no record in.
    let (code, _, err) = flowdex(&["search", idx, "interface_id = eni-mistyped", "--from", "2024-05-01"]);
    assert_eq!(code, 1);
    assert!(err.contains("eni-mistyped is nowhere in the index"), "{err}");
}

/// An ENI that is a Transit Gateway's end, not a record's interface: the warning names the
/// field that holds it, rather than saying no search can find it.
#[test]
fn a_search_naming_a_transit_gateway_eni_as_interface_is_told_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &[fixture("tgw-s3.log")], &ReadOptions::default(), 1);
    let idx = dir.path().to_str().unwrap();
    let (code, out, err) = flowdex(&["search", idx, "interface_id = eni-0aaaaaaaaaaaaaaaa"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.contains(
            "eni-0aaaaaaaaaaaaaaaa is no record's interface-id; the index holds it as tgw-src-eni \
             (search `tgw_src_eni = eni-0aaaaaaaaaaaaaaaa`)"
        ),
        "{err}"
    );
    let (code, out, _) = flowdex(&["search", idx, "tgw_src_eni = eni-0aaaaaaaaaaaaaaaa"]);
    assert_eq!((code, out.lines().count()), (0, 1));
}

/// Without a time window a search warns of SKIPDATA alone, and its count of the subjects it
/// does not list says so, not "gaps or SKIPDATA"; in a window, of both.
#[test]
fn the_count_of_unlisted_subjects_names_what_they_hold() {
    let corpus = common::synth_corpus(60_000, 3, 5, "v5");
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &[corpus.path().to_path_buf()], &ReadOptions::default(), 2);
    let idx = dir.path().to_str().unwrap();
    let (code, _, stderr) = flowdex(&["search", "--format", "jsonl", idx, "dstport = 443"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(" more with SKIPDATA; see `flowdex coverage"),
        "{stderr}"
    );
    assert!(!stderr.contains("gaps"), "{stderr}");
    // In a window it looks for gaps too, and finds them.
    let (code, _, stderr) = flowdex(&[
        "search",
        "--format",
        "jsonl",
        idx,
        "time = 2024-04-02 and dstport = 443",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(" more with gaps or SKIPDATA; see `flowdex coverage"),
        "{stderr}"
    );
}
