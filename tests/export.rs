//! Evidence bundles: the records and original lines a bundle holds are exactly what a linear
//! scan of the parsed sources matches; two exports differ only in `created.json`; any change to
//! a bundle is named by `verify-bundle`; hostile bundles are never read outside themselves.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{build, fixture, read_with};
use flowdex::export::{self, Bundle, Request, CREATED_FILE, SUMS_FILE};
use flowdex::input::ReadOptions;
use flowdex::query;
use flowdex::read::Index;

fn flowdex(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowdex"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A synthetic corpus with its index, in one temporary folder (`corpus/`, `idx/`).
struct Case {
    dir: tempfile::TempDir,
    truth: serde_json::Value,
}

impl Case {
    fn synth(records: u64, seed: u64) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let corpus = dir.path().join("corpus");
        let config = flowdex::synth::SynthConfig {
            records,
            days: 2,
            seed,
            format: flowdex::synth::format_by_name("v5").unwrap(),
            ..Default::default()
        };
        flowdex::synth::write_corpus(&config, &corpus).unwrap();
        build(
            &dir.path().join("idx"),
            std::slice::from_ref(&corpus),
            &ReadOptions::default(),
            2,
        );
        let truth = serde_json::from_str(&std::fs::read_to_string(corpus.join("truth.json")).unwrap()).unwrap();
        Case { dir, truth }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The source address of the injected incident of `kind`.
    fn incident_src(&self, kind: &str) -> String {
        let incident = self.truth["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in truth.json"));
        incident["src"].as_str().unwrap().to_owned()
    }
}

fn export_lib(index: &Index, text: &str, created: i64) -> Bundle {
    let parsed = query::parse(text, &|_| Ok(String::new())).unwrap();
    let bound = query::bind(&parsed, text).unwrap();
    let request = Request {
        query: text,
        from: None,
        to: None,
        note: Some("case 17"),
        query_files: &[],
        created,
        memory: flowdex::search::DEFAULT_MEMORY,
    };
    export::export(index, &bound, &request).unwrap()
}

/// (source name, line) → line bytes, as `original-lines.txt` lists them.
fn original_lines(text: &[u8]) -> BTreeMap<(String, u64), Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut source = None;
    for line in text.split(|&b| b == b'\n') {
        if let Some(header) = line.strip_prefix(b"== source ") {
            let header = String::from_utf8(header.to_vec()).unwrap();
            source = Some(header.split_once(": ").unwrap().1.to_owned());
        } else if line.starts_with(b"==") || line.starts_with(b"#") || line.is_empty() {
            continue;
        } else {
            let colon = line.iter().position(|&b| b == b':').unwrap();
            let number: u64 = std::str::from_utf8(&line[..colon]).unwrap().parse().unwrap();
            let name = source.clone().expect("a line after a source header");
            assert!(out.insert((name, number), line[colon + 1..].to_vec()).is_none());
        }
    }
    out
}

/// Checks a bundle against a linear scan of the parsed inputs: the same records, each with its
/// original line, and a manifest that counts them and names their sources' hashes.
fn check_against_scan(bundle: &Bundle, inputs: &[PathBuf], text: &str) {
    let read = read_with(inputs, &ReadOptions::default()).without_duplicate_sources();
    let parsed = query::parse(text, &|_| Ok(String::new())).unwrap();
    let bound = query::bind(&parsed, text).unwrap();
    let want: BTreeMap<(String, u64), Vec<u8>> = read
        .records
        .iter()
        .filter(|(_, r, _)| bound.filter.matches(r))
        .map(|(name, r, raw)| ((name.clone(), r.provenance.line), raw.clone()))
        .collect();
    assert!(!want.is_empty(), "{text}: the scan matches nothing");
    let got = original_lines(&bundle.file("original-lines.txt").unwrap().bytes);
    assert_eq!(got, want, "{text}: original lines");

    let jsonl = &bundle.file("records.jsonl").unwrap().bytes;
    let json_keys: BTreeSet<(String, u64)> = jsonl
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).unwrap();
            (v["_source"].as_str().unwrap().to_owned(), v["_line"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(json_keys, want.keys().cloned().collect(), "{text}: records.jsonl");
    let csv = String::from_utf8(bundle.file("records.csv").unwrap().bytes.clone()).unwrap();
    assert_eq!(
        csv.lines().count(),
        want.len() + 1,
        "{text}: records.csv has a header and a row per record"
    );

    let manifest: serde_json::Value = serde_json::from_slice(&bundle.file("manifest.json").unwrap().bytes).unwrap();
    assert_eq!(manifest["query"], text);
    assert_eq!(manifest["note"], "case 17");
    assert_eq!(manifest["counts"]["records"].as_u64().unwrap(), want.len() as u64);
    let hashes: BTreeMap<String, String> = read
        .reports
        .iter()
        .map(|r| (r.meta.name.clone(), r.sha256.clone()))
        .collect();
    let contributing: BTreeSet<&String> = want.keys().map(|(name, _)| name).collect();
    let listed = manifest["sources"].as_array().unwrap();
    assert_eq!(listed.len(), contributing.len());
    let mut matched = 0;
    for s in listed {
        let name = s["name"].as_str().unwrap().to_owned();
        assert!(contributing.contains(&name), "{name} contributed nothing");
        assert_eq!(s["sha256"].as_str().unwrap(), hashes[&name], "{name}");
        matched += s["records_matched"].as_u64().unwrap();
    }
    assert_eq!(matched, want.len() as u64);
}

#[test]
fn a_bundle_holds_what_a_linear_scan_matches_on_a_synth_incident() {
    let case = Case::synth(20_000, 5);
    let index = Index::open(&case.path("idx")).unwrap();
    for text in [
        format!("srcaddr = {}", case.incident_src("port-scan")),
        "action = REJECT and dstport = 22".to_owned(),
    ] {
        let bundle = export_lib(&index, &text, 0);
        check_against_scan(&bundle, &[case.path("corpus")], &text);
        let manifest: serde_json::Value = serde_json::from_slice(&bundle.file("manifest.json").unwrap().bytes).unwrap();
        let scan_records = &manifest["counts"]["records"];
        let svg = String::from_utf8(bundle.file("timeline.svg").unwrap().bytes.clone()).unwrap();
        assert!(svg.contains(&format!("{scan_records} records from")), "{svg}");
    }
}

#[test]
fn a_bundle_holds_what_a_linear_scan_matches_on_the_fixtures() {
    let mut inputs = vec![fixture("")];
    inputs.extend(common::real_fixtures());
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &inputs, &ReadOptions::default(), 2);
    let index = Index::open(dir.path()).unwrap();
    // Every record: the lines that are not what the record writes back (CloudWatch time
    // stamps, JSON events, odd spacing) must come out byte for byte too.
    for text in ["limit 10000000", "action = REJECT"] {
        let bundle = export_lib(&index, text, 0);
        check_against_scan(&bundle, &inputs, text);
    }
}

#[test]
fn the_index_id_is_the_sha256_of_its_manifest_file() {
    let case = Case::synth(2_000, 6);
    let index = Index::open(&case.path("idx")).unwrap();
    let bundle = export_lib(&index, "action = REJECT", 0);
    let manifest: serde_json::Value = serde_json::from_slice(&bundle.file("manifest.json").unwrap().bytes).unwrap();
    let file = std::fs::read(case.path("idx").join(flowdex::read::MANIFEST_FILE)).unwrap();
    assert_eq!(
        manifest["index"]["id"].as_str().unwrap(),
        export::bundle::sha256_hex(&file)
    );
    assert_eq!(manifest["index"]["format_version"], flowdex::format::FORMAT_VERSION);
}

#[test]
fn two_exports_differ_only_in_the_creation_file() {
    let case = Case::synth(3_000, 7);
    let index = Index::open(&case.path("idx")).unwrap();
    let a = export_lib(&index, "dstport = 22 or dstport = 3389", 1_700_000_000);
    let b = export_lib(&index, "dstport = 22 or dstport = 3389", 1_800_000_000);
    assert_eq!(a.files.len(), b.files.len());
    for (x, y) in a.files.iter().zip(&b.files) {
        assert_eq!(x.path, y.path);
        if x.path != CREATED_FILE {
            assert_eq!(x.bytes, y.bytes, "{}", x.path);
        }
    }
    assert_ne!(a.file(CREATED_FILE), b.file(CREATED_FILE));
    assert_eq!(a.fingerprint(), b.fingerprint());
}

/// The files of a bundle on disk (folder or tar), by name.
fn files_on_disk(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    if path.is_dir() {
        for e in walk(path) {
            let name = e.strip_prefix(path).unwrap().to_str().unwrap().to_owned();
            out.insert(name, std::fs::read(&e).unwrap());
        }
    } else {
        let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_str().unwrap().to_owned();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            out.insert(name, bytes);
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The byte ranges of `name`'s data in a tar.
fn tar_data_range(tar: &Path, name: &str) -> std::ops::Range<usize> {
    let mut archive = tar::Archive::new(std::fs::File::open(tar).unwrap());
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some(name) {
            let at = entry.raw_file_position() as usize;
            return at..at + entry.size() as usize;
        }
    }
    panic!("{name} not in {}", tar.display())
}

#[test]
fn the_binary_exports_byte_identical_folders_and_tars_twice() {
    let case = Case::synth(5_000, 8);
    let src = case.incident_src("port-scan");
    let query = format!("srcaddr = {src} or dstport = 22");
    let run = |out: &str| {
        let o = flowdex(
            &["export", "idx", &query, "--output", out, "--note", "case 9"],
            case.dir.path(),
        );
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    };
    for out in ["a", "b", "a.tar", "b.tar"] {
        run(out);
    }
    let (a, b) = (files_on_disk(&case.path("a")), files_on_disk(&case.path("b")));
    let (at, bt) = (files_on_disk(&case.path("a.tar")), files_on_disk(&case.path("b.tar")));
    for other in [&b, &at, &bt] {
        assert_eq!(a.keys().collect::<Vec<_>>(), other.keys().collect::<Vec<_>>());
        for (name, bytes) in &a {
            if name != CREATED_FILE {
                assert_eq!(bytes, &other[name], "{name}");
            }
        }
    }
    // The tars differ at most inside created.json's data (its length is fixed).
    let (x, y) = (
        std::fs::read(case.path("a.tar")).unwrap(),
        std::fs::read(case.path("b.tar")).unwrap(),
    );
    assert_eq!(x.len(), y.len());
    let created = tar_data_range(&case.path("a.tar"), CREATED_FILE);
    for (i, (p, q)) in x.iter().zip(&y).enumerate() {
        assert!(
            p == q || created.contains(&i),
            "the tars differ at byte {i}, outside {CREATED_FILE}"
        );
    }
    for bundle in ["a", "a.tar"] {
        let o = flowdex(&["verify-bundle", bundle], case.dir.path());
        assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
        assert!(stdout(&o).contains("intact"));
    }
}

#[test]
fn sha256sum_checks_an_exported_folder() {
    if Command::new("sha256sum").arg("--version").output().is_err() {
        return; // Nothing to compare with on this machine; flowdex's own check is tested above.
    }
    let case = Case::synth(2_000, 9);
    let o = flowdex(
        &["export", "idx", "action = REJECT", "--output", "out"],
        case.dir.path(),
    );
    assert_eq!(o.status.code(), Some(0));
    let check = Command::new("sha256sum")
        .args(["--strict", "-c", SUMS_FILE])
        .current_dir(case.path("out"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

#[test]
fn verify_bundle_names_every_changed_missing_or_extra_file() {
    let case = Case::synth(3_000, 10);
    let ioc = case.path("iocs.txt");
    std::fs::write(&ioc, format!("# scanner\n{}\n", case.incident_src("port-scan"))).unwrap();
    let o = flowdex(
        &["export", "idx", "addr in @iocs.txt", "--output", "good"],
        case.dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let listed: Vec<String> = std::fs::read_to_string(case.path("good").join(SUMS_FILE))
        .unwrap()
        .lines()
        .map(|l| l[66..].to_owned())
        .collect();
    assert!(listed.contains(&"query-files/1-iocs.txt".to_owned()), "{listed:?}");
    for (n, name) in listed.iter().enumerate() {
        let copy = case.path(&format!("changed-{n}"));
        copy_dir(&case.path("good"), &copy);
        let mut bytes = std::fs::read(copy.join(name)).unwrap();
        bytes[0] ^= 0x20;
        std::fs::write(copy.join(name), bytes).unwrap();
        let o = flowdex(&["verify-bundle", copy.to_str().unwrap()], case.dir.path());
        assert_eq!(o.status.code(), Some(1), "{name}");
        assert!(
            stdout(&o).contains(&format!("{name}: changed")),
            "{name}: {}",
            stdout(&o)
        );
        assert!(stdout(&o).contains("NOT intact"), "{}", stdout(&o));
    }
    let copy = case.path("missing");
    copy_dir(&case.path("good"), &copy);
    std::fs::remove_file(copy.join("records.csv")).unwrap();
    std::fs::write(copy.join("planted.txt"), "x").unwrap();
    let o = flowdex(&["verify-bundle", "missing"], case.dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("records.csv: missing"), "{}", stdout(&o));
    assert!(stdout(&o).contains("planted.txt: not listed"), "{}", stdout(&o));
    // created.json is outside SHA256SUMS by design: changing it leaves the bundle intact.
    let copy = case.path("recreated");
    copy_dir(&case.path("good"), &copy);
    std::fs::write(copy.join(CREATED_FILE), "{}").unwrap();
    assert_eq!(
        flowdex(&["verify-bundle", "recreated"], case.dir.path()).status.code(),
        Some(0)
    );
}

#[test]
fn verify_bundle_names_a_changed_file_inside_a_tar() {
    let case = Case::synth(3_000, 11);
    let o = flowdex(
        &["export", "idx", "action = REJECT", "--output", "good.tar"],
        case.dir.path(),
    );
    assert_eq!(o.status.code(), Some(0));
    for name in ["records.csv", "manifest.json", "original-lines.txt", "timeline.svg"] {
        let mut bytes = std::fs::read(case.path("good.tar")).unwrap();
        let range = tar_data_range(&case.path("good.tar"), name);
        bytes[range.start + range.len() / 2] ^= 0x01;
        let bad = case.path("bad.tar");
        std::fs::write(&bad, bytes).unwrap();
        let o = flowdex(&["verify-bundle", "bad.tar"], case.dir.path());
        assert_eq!(o.status.code(), Some(1), "{name}");
        assert!(
            stdout(&o).contains(&format!("{name}: changed")),
            "{name}: {}",
            stdout(&o)
        );
    }
    // A tar cut short, or a file that is no tar, is named with where it broke, not with the
    // tar library's bare words.
    let bytes = std::fs::read(case.path("good.tar")).unwrap();
    let cut = tar_data_range(&case.path("good.tar"), "records.csv");
    std::fs::write(case.path("cut.tar"), &bytes[..cut.start + cut.len() / 2]).unwrap();
    std::fs::write(case.path("note.txt"), "not a tar\n").unwrap();
    let mut zipped = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zipped
        .start_file("a.txt", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::fs::write(case.path("b.zip"), zipped.finish().unwrap().into_inner()).unwrap();
    for (file, said) in [
        (
            "cut.tar",
            "cut.tar: not a readable tar (in or after entry `records.csv`): ",
        ),
        ("note.txt", "note.txt: not a readable tar (at its first entry): "),
        ("b.zip", "b.zip: a zip file; decompress it first"),
    ] {
        let o = flowdex(&["verify-bundle", file], case.dir.path());
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{file}: {stderr}");
        assert!(stderr.contains(said), "{file}: {stderr}");
    }
}

/// A bundle folder tarred again (`tar -cf b.tar -C bundle .`, names starting `./`) is the same
/// bundle; a compressed one is named as such.
#[test]
fn verify_bundle_reads_a_bundle_tarred_again_and_names_a_compressed_one() {
    let case = Case::synth(3_000, 12);
    let o = flowdex(
        &["export", "idx", "action = REJECT", "--output", "folder"],
        case.dir.path(),
    );
    assert_eq!(o.status.code(), Some(0));
    let tarred = std::process::Command::new("tar")
        .args(["-cf", "again.tar", "-C", "folder", "."])
        .current_dir(case.dir.path())
        .status()
        .unwrap();
    assert!(tarred.success());
    let o = flowdex(&["verify-bundle", "again.tar"], case.dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &std::fs::read(case.path("again.tar")).unwrap()).unwrap();
    std::fs::write(case.path("again.tgz"), gz.finish().unwrap()).unwrap();
    let o = flowdex(&["verify-bundle", "again.tgz"], case.dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("a gzip file; decompress it first"),
        "{o:?}"
    );
    std::fs::write(
        case.path("again.tar.zst"),
        [&[0x28, 0xb5, 0x2f, 0xfd][..], b"frame"].concat(),
    )
    .unwrap();
    let o = flowdex(&["verify-bundle", "again.tar.zst"], case.dir.path());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("a zstd file; decompress it first"),
        "{o:?}"
    );
}

#[test]
fn verify_bundle_never_reads_outside_a_hostile_bundle() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "outside").unwrap();
    let hash = export::bundle::sha256_hex(b"outside");
    // A folder whose SHA256SUMS names a file outside it, with the right hash.
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join(SUMS_FILE), format!("{hash}  ../secret\n")).unwrap();
    let o = flowdex(&["verify-bundle", "folder"], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("../secret"));
    // A link inside the bundle is reported, not followed.
    #[cfg(unix)]
    {
        let linked = dir.path().join("linked");
        std::fs::create_dir(&linked).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), linked.join("a.txt")).unwrap();
        std::fs::write(linked.join(SUMS_FILE), format!("{hash}  a.txt\n")).unwrap();
        let o = flowdex(&["verify-bundle", "linked"], dir.path());
        assert_eq!(o.status.code(), Some(1));
        assert!(stdout(&o).contains("a.txt: not read"), "{}", stdout(&o));
    }
    // A tar with an entry named `../escaped`: reported, and nothing is written anywhere.
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("../escaped", &b"x"[..]),
        (SUMS_FILE, format!("{hash}  a.txt\n").as_bytes()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append(&header, data).unwrap();
    }
    std::fs::write(dir.path().join("hostile.tar"), tar.into_inner().unwrap()).unwrap();
    let o = flowdex(&["verify-bundle", "hostile.tar"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("../escaped: not read"), "{}", stdout(&o));
    assert!(stdout(&o).contains("a.txt: missing"), "{}", stdout(&o));
    assert!(!dir.path().parent().unwrap().join("escaped").exists());
}

#[test]
fn export_refuses_stats_and_never_replaces_an_output() {
    let case = Case::synth(2_000, 12);
    let o = flowdex(
        &[
            "export",
            "idx",
            "action = REJECT | stats count() by srcaddr",
            "--output",
            "rows",
        ],
        case.dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("stats"));
    assert!(!case.path("rows").exists());

    std::fs::create_dir(case.path("taken")).unwrap();
    std::fs::write(case.path("taken/notes.txt"), "mine").unwrap();
    std::fs::write(case.path("taken.tar"), "mine").unwrap();
    for out in ["taken", "taken.tar"] {
        let o = flowdex(&["export", "idx", "action = REJECT", "--output", out], case.dir.path());
        assert_eq!(o.status.code(), Some(2), "{out}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"), "{out}");
    }
    assert_eq!(std::fs::read_to_string(case.path("taken/notes.txt")).unwrap(), "mine");
    assert_eq!(std::fs::read_to_string(case.path("taken.tar")).unwrap(), "mine");
    // A missing folder is named, once, not the temporary file.
    let o = flowdex(
        &["export", "idx", "action = REJECT", "--output", "nodir/x.tar"],
        case.dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "flowdex: nodir: no such folder; create it first"
    );
    let leftovers: Vec<_> = std::fs::read_dir(case.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_export_that_matches_nothing_is_written_and_exits_1() {
    let case = Case::synth(2_000, 13);
    let o = flowdex(
        &[
            "export",
            "idx",
            "srcaddr = 192.0.2.1",
            "--output",
            "empty.tar",
            "--from",
            "2024-04-01",
        ],
        case.dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let files = files_on_disk(&case.path("empty.tar"));
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest["counts"]["records"], 0);
    assert_eq!(manifest["from"], "2024-04-01");
    let svg = String::from_utf8_lossy(&files["timeline.svg"]);
    assert!(svg.contains("No matching records"), "{svg}");
    assert!(
        svg.contains("srcaddr = 192.0.2.1 (from 2024-04-01 to the last record)"),
        "{svg}"
    );
    assert_eq!(
        flowdex(&["verify-bundle", "empty.tar"], case.dir.path()).status.code(),
        Some(0)
    );
}

/// The manifest's byte and packet counts are exact sums, however large: three flows of
/// 2⁶⁴ − 1 bytes add up past 64 bits, as `stats sum(bytes)` gives them.
#[test]
fn the_manifest_sums_bytes_past_64_bits() {
    let line = "2 eni-a 10.0.0.1 10.0.0.2 1711929600 1711929660 18446744073709551615 18446744073709551615 ACCEPT OK\n";
    let text = format!(
        "version interface-id srcaddr dstaddr start end packets bytes action log-status\n{}",
        line.repeat(3)
    );
    let (dir, _index) = common::index_of_text(&text);
    let o = flowdex(&["export", "idx", "srcaddr = 10.0.0.1", "--output", "out"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let manifest = std::fs::read_to_string(dir.path().join("out/manifest.json")).unwrap();
    let sum = "55340232221128654845";
    for key in ["bytes", "packets"] {
        assert!(
            manifest.contains(&format!("\"{key}\": {sum}")) || manifest.contains(&format!("\"{key}\":{sum}")),
            "{key}: {manifest}"
        );
    }
    let o = flowdex(&["search", "idx", "stats sum(bytes)"], dir.path());
    assert_eq!(stdout(&o).trim(), format!("{{\"sum(bytes)\":{sum}}}"));
}

/// A bundle is not written inside the index folder, where the next build would take a name
/// the index uses for an interrupted build's leftover; and a leftover a build cannot remove
/// (a folder under such a name) is named, not the index folder.
#[test]
fn a_bundle_stays_out_of_the_index_folder() {
    let case = Case::synth(2_000, 9);
    let o = flowdex(
        &["export", "idx", "action = REJECT", "--output", "idx/MANIFEST.tmp"],
        case.dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("inside the index folder idx"));
    assert!(!case.path("idx/MANIFEST.tmp").exists());
    std::fs::create_dir(case.path("idx/MANIFEST.tmp")).unwrap();
    let o = flowdex(&["build", "--output", "idx", "corpus"], case.dir.path());
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("MANIFEST.tmp: cannot remove this leftover of an interrupted build"),
        "{err}"
    );
}

/// The manifest's first and last times are the seconds the records cover, as searches place
/// them: a record with one time at that time, one whose end is before its start at its start.
#[test]
fn a_bundle_s_first_and_last_times_are_the_seconds_its_records_cover() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    std::fs::write(
        dir.path().join("logs/odd.log"),
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
         2 1 eni-1 10.9.9.9 10.1.2.3 1 2 6 1 60 - 1712000200 ACCEPT OK\n\
         2 1 eni-1 10.9.9.9 10.1.2.4 1 2 6 1 60 1712000300 - ACCEPT OK\n\
         2 1 eni-1 10.9.9.9 10.1.2.4 1 2 6 1 60 1712000400 1712000350 ACCEPT OK\n",
    )
    .unwrap();
    build(
        &dir.path().join("idx"),
        &[dir.path().join("logs")],
        &ReadOptions::default(),
        1,
    );
    let o = flowdex(&["export", "idx", "srcaddr = 10.9.9.9", "--output", "b"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("b/manifest.json")).unwrap()).unwrap();
    let counts = &manifest["counts"];
    assert_eq!(
        (counts["first_start"].as_str(), counts["last_end"].as_str()),
        (Some("2024-04-01T19:36:40Z"), Some("2024-04-01T19:40:00Z")),
        "{counts}"
    );
}
