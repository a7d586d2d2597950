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
    let (old_input, new_input, index) = (
        work.path().join("old"),
        work.path().join("new"),
        work.path().join("idx"),
    );
    std::fs::create_dir_all(&old_input).unwrap();
    std::fs::create_dir_all(&new_input).unwrap();
    write_corpus(&old_input, 2, 1000);
    write_corpus(&new_input, 40, 6000);
    assert!(build_cmd(&index, &old_input).status().unwrap().code() == Some(0));
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
