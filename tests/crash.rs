//! Crash safety with real processes: `flowdex build` killed (SIGKILL) at many moments leaves an
//! index that opens, verifies, and holds either the old state or the new one, never a mix.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use flowdex::read::Index;

fn write_corpus(dir: &Path, files: usize, lines: usize) {
    for f in 0..files {
        let mut text = String::from("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n");
        for i in 0..lines {
            let t = 1_714_000_000 + (f * lines + i) as u64;
            text.push_str(&format!(
                "2 123456789012 eni-{f:08x} 10.{}.{}.{} 198.51.100.{} {} 443 6 3 {} {t} {} ACCEPT OK\n",
                f % 250,
                i / 250 % 250,
                i % 250,
                i % 200,
                1024 + i % 60000,
                100 + i,
                t + 60
            ));
        }
        let path = dir.join(format!("f{f:04}.log.gz"));
        let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        gz.finish().unwrap();
    }
}

/// An index of 2,000 records in `work/idx`, and `files` more files of 6,000 records each in
/// `work/new` to build into it.
fn old_index_and_new_input(work: &Path, files: usize) -> (std::path::PathBuf, std::path::PathBuf) {
    let (old_input, new_input, index) = (work.join("old"), work.join("new"), work.join("idx"));
    std::fs::create_dir_all(&old_input).unwrap();
    std::fs::create_dir_all(&new_input).unwrap();
    write_corpus(&old_input, 2, 1000);
    write_corpus(&new_input, files, 6000);
    assert_eq!(build_cmd(&index, &old_input).status().unwrap().code(), Some(0));
    (new_input, index)
}

fn build_cmd(index: &Path, input: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flowdex"));
    c.args(["build", "--quiet", "--memory", "4M", "--output"])
        .arg(index)
        .arg(input);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

#[test]
fn a_killed_build_leaves_the_previous_index_intact() {
    let work = tempfile::tempdir().unwrap();
    let (new_input, index) = old_index_and_new_input(work.path(), 40);
    let old = Index::open(&index).unwrap().manifest().records();
    assert_eq!(old, 2000);

    // Time a full build once, then kill builds at moments spread over that span.
    let copy = work.path().join("timing");
    let t = Instant::now();
    assert!(build_cmd(&copy, &new_input).status().unwrap().success());
    let full = t.elapsed();
    let new_total = old + Index::open(&copy).unwrap().manifest().records();

    let mut killed_mid_build = 0;
    for step in 1..=12u32 {
        let mut child = build_cmd(&index, &new_input).spawn().unwrap();
        std::thread::sleep(full * step / 13);
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok();
        child.wait().unwrap();
        killed_mid_build += u32::from(!finished);
        let ix = Index::open(&index).unwrap_or_else(|e| panic!("kill #{step}: {e}"));
        ix.verify().unwrap_or_else(|e| panic!("kill #{step}: {e}"));
        let n = ix.manifest().records();
        assert!(
            n == old || n == new_total,
            "kill #{step}: {n} records is neither {old} nor {new_total}"
        );
        if n == new_total {
            break;
        }
    }
    assert!(
        killed_mid_build > 0,
        "no build was interrupted (the machine was too fast or too slow)"
    );
    // A complete build afterwards cleans up and reaches the new state.
    build_cmd(&index, &new_input).status().unwrap();
    let ix = Index::open(&index).unwrap();
    ix.verify().unwrap();
    assert_eq!(ix.manifest().records(), new_total);
    let leftovers: Vec<_> = std::fs::read_dir(&index)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Runs `flowdex build` under a file-size limit, so that writing a segment fails as on a full
/// disk (the shell ignores SIGXFSZ, so the write returns an error instead of killing the build).
fn build_with_file_limit(index: &Path, input: &Path, kib: u64) -> std::process::Output {
    let script =
        format!("trap '' XFSZ; ulimit -f {kib}; exec \"$0\" build --quiet --memory 64M --output \"$1\" \"$2\"");
    Command::new("sh")
        .args(["-c", &script, env!("CARGO_BIN_EXE_flowdex")])
        .arg(index)
        .arg(input)
        .output()
        .unwrap()
}

/// The files of a folder with their bytes, by name.
fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_full_disk_fails_the_build_clearly_and_leaves_the_index_as_it_was() {
    let work = tempfile::tempdir().unwrap();
    let (new_input, index) = old_index_and_new_input(work.path(), 20);
    let before = files_of(&index);
    // 1 MiB per file: the old index's files fit, a segment of 120,000 records does not.
    let out = build_with_file_limit(&index, &new_input, 1024);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("File too large"), "{stderr}");
    assert!(stderr.contains(".fdx"), "the error names the file: {stderr}");
    let after = files_of(&index);
    assert_eq!(
        after.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        before.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        "the failed build's files are removed"
    );
    assert!(after == before, "the previous index is byte for byte as it was");
    Index::open(&index).unwrap().verify().unwrap();
}

#[test]
fn searches_during_a_build_see_one_published_state_or_the_other() {
    let work = tempfile::tempdir().unwrap();
    let (new_input, index) = old_index_and_new_input(work.path(), 30);
    let bound = {
        let text = "stats count() as n";
        let parsed = flowdex::query::parse(text, &|_| Ok(String::new())).unwrap();
        flowdex::query::bind(&parsed, text).unwrap()
    };
    let count = || match flowdex::search::run(&Index::open(&index).unwrap(), &bound).unwrap() {
        flowdex::search::Answer::Rows(r) => format!("{:?}", r.rows[0][0]),
        other => panic!("{other:?}"),
    };
    let old = count();
    let mut child = build_cmd(&index, &new_input).spawn().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let mut searches = 0;
    while child.try_wait().unwrap().is_none() {
        seen.insert(count());
        searches += 1;
    }
    assert!(child.wait().unwrap().success());
    let new = count();
    seen.insert(new.clone());
    assert!(searches > 3, "only {searches} searches ran during the build");
    assert!(
        seen.iter().all(|c| *c == old || *c == new),
        "searches saw {seen:?}; only {old} or {new} are states"
    );
}

/// Queries over the load test's corpus: needles, CIDRs, ports, interfaces, time windows, with
/// and without aggregation.
fn load_queries(n: usize) -> Vec<String> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    (0..n)
        .map(|_| {
            let (f, i) = (next(40), next(1000));
            let ip = format!("10.{f}.{}.{}", i / 250 % 250, i % 250);
            let t = 1_714_000_000 + next(240_000);
            match next(6) {
                0 => format!("srcaddr = {ip}"),
                1 => format!("addr = 198.51.100.{} and dstport = 443 | stats count() as n", next(200)),
                2 => format!("srcaddr = 10.{f}.0.0/16 | stats sum(bytes) as b by dstaddr | sort b desc | limit 5"),
                3 => format!("interface_id = eni-{f:08x} and time = {t} | stats count() by srcport | limit 3"),
                4 => format!("srcport = {} or srcaddr = {ip}", 1024 + i),
                _ => format!("start >= {t} and start <= {} and not dstport = 443", t + 600),
            }
        })
        .collect()
}

/// The worker of the load test: answers every query of `load_queries` on the index named by
/// `FLOWDEX_LOAD_INDEX` and writes the answers to `FLOWDEX_LOAD_OUT`.
#[test]
#[ignore = "run by load_test_8_processes_agree_with_one, in child processes"]
fn load_worker() {
    let index = Index::open(Path::new(&std::env::var("FLOWDEX_LOAD_INDEX").unwrap())).unwrap();
    let mut out = String::new();
    for q in load_queries(1000) {
        let parsed = flowdex::query::parse(&q, &|_| Ok(String::new())).unwrap();
        let bound = flowdex::query::bind(&parsed, &q).unwrap();
        let answer = flowdex::search::run(&index, &bound).unwrap();
        out.push_str(&format!("{q}\n{answer:?}\n"));
    }
    std::fs::write(std::env::var("FLOWDEX_LOAD_OUT").unwrap(), out).unwrap();
}

#[test]
fn load_test_8_processes_agree_with_one() {
    let work = tempfile::tempdir().unwrap();
    let (input, index) = (work.path().join("in"), work.path().join("idx"));
    std::fs::create_dir_all(&input).unwrap();
    write_corpus(&input, 40, 500);
    assert_eq!(build_cmd(&index, &input).status().unwrap().code(), Some(0));
    let worker = |out: &Path| {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "load_worker", "--ignored", "--quiet"])
            .env("FLOWDEX_LOAD_INDEX", &index)
            .env("FLOWDEX_LOAD_OUT", out)
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let single = work.path().join("single");
    assert!(worker(&single).wait().unwrap().success());
    let expected = std::fs::read(&single).unwrap();
    assert_eq!(expected.iter().filter(|b| **b == b'\n').count(), 2000);
    let outs: Vec<_> = (0..8).map(|i| work.path().join(format!("out{i}"))).collect();
    let children: Vec<_> = outs.iter().map(|o| worker(o)).collect();
    for (i, mut c) in children.into_iter().enumerate() {
        assert!(c.wait().unwrap().success(), "worker {i} failed");
    }
    for (i, o) in outs.iter().enumerate() {
        assert!(std::fs::read(o).unwrap() == expected, "worker {i} answered differently");
    }
}

#[test]
fn a_build_takes_only_an_index_or_an_empty_folder_and_leaves_other_files_alone() {
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    write_corpus(&input, 1, 10);
    let build = |output: &Path| {
        let mut c = build_cmd(output, &input);
        c.stderr(Stdio::piped());
        let out = c.output().unwrap();
        (out.status.code(), String::from_utf8(out.stderr).unwrap())
    };
    let file = work.path().join("a-file");
    std::fs::write(&file, "notes").unwrap();
    let (code, err) = build(&file);
    assert_eq!(code, Some(2));
    assert!(err.contains("is a file; give the index a folder"), "{err}");
    // A folder of other files: refused, and nothing in it touched (a `.tmp` file included,
    // which clearing an interrupted build's leftovers would have removed).
    let other = work.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.tmp"), "keep me").unwrap();
    let (code, err) = build(&other);
    assert_eq!(code, Some(2));
    assert!(err.contains("holds `notes.tmp` and is not a flowdex index"), "{err}");
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
    // What a first build killed before its manifest leaves is cleared, and the build runs.
    let interrupted = work.path().join("interrupted");
    std::fs::create_dir_all(&interrupted).unwrap();
    for leftover in ["LOCK", "seg-00000001.fdx.tmp", "sources-00000001.fdx"] {
        std::fs::write(interrupted.join(leftover), "partial").unwrap();
    }
    assert_eq!(build(&interrupted), (Some(0), String::new()));
    assert_eq!(Index::open(&interrupted).unwrap().manifest().records(), 10);
    // An input path that is not there (a typo): refused, and the index left as it was, rather
    // than recording the failure in it for good.
    let before = std::fs::read(interrupted.join("MANIFEST")).unwrap();
    let mut c = build_cmd(&interrupted, &input);
    let out = c
        .arg(work.path().join("typo.log"))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("typo.log: no such file or folder; nothing was built"),
        "{err}"
    );
    assert_eq!(std::fs::read(interrupted.join("MANIFEST")).unwrap(), before);
}

#[test]
fn an_index_inside_its_own_input_tree_is_not_read_as_evidence() {
    let work = tempfile::tempdir().unwrap();
    write_corpus(work.path(), 2, 10);
    let index = work.path().join("idx");
    for _ in 0..2 {
        let mut c = build_cmd(&index, work.path());
        c.stderr(Stdio::piped());
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let index = Index::open(&index).unwrap();
    let names: Vec<String> = index.sources().unwrap().iter().map(|s| s.name.clone()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.ends_with(".log.gz")), "{names:?}");
}
