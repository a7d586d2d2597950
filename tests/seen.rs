//! `flowdex seen` against a linear scan of the parsed records: for addresses, CIDRs, ports,
//! ENIs and accounts, present and absent, the same counts and first/last times.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{build, fixture, read_with, real_fixtures};
use flowdex::format::schema::POSTING_FIELDS;
use flowdex::input::ReadOptions;
use flowdex::read::Index;
use flowdex::record::{Field, FieldKind, FlowRecord, Value};
use flowdex::seen::{self, Lookup, Seen};

/// The answer by scanning: which records hold the value. An address is a source in `srcaddr`
/// or `pkt-srcaddr` and a destination in `dstaddr` or `pkt-dstaddr`, a port in `srcport` or
/// `dstport`; any other value is sought in every indexed text field.
fn scan(records: &[&FlowRecord], value: &str) -> Seen {
    let holds = |r: &FlowRecord, f: Field| match r.get(f) {
        None => false,
        Some(Value::Ip(ip)) => {
            let b = flowdex::format::dictionary::ip_bytes(ip);
            flowdex::query::ip_ranges(value)
                .unwrap()
                .iter()
                .any(|(lo, hi)| *lo <= b && b <= *hi)
        }
        Some(v) => v.to_string() == value,
    };
    let (src, dst): (Vec<Field>, Vec<Field>) = if flowdex::query::ip_ranges(value).is_some() {
        (
            vec![Field::Srcaddr, Field::PktSrcaddr],
            vec![Field::Dstaddr, Field::PktDstaddr],
        )
    } else if value.len() < 12 && value.parse::<u16>().is_ok() {
        (vec![Field::Srcport], vec![Field::Dstport])
    } else {
        let text = POSTING_FIELDS.iter().copied().filter(|f| f.kind() == FieldKind::Text);
        (text.collect(), Vec::new())
    };
    let mut s = Seen::default();
    if !dst.is_empty() {
        s.as_src = Some(0);
        s.as_dst = Some(0);
    }
    for r in records {
        let a = src.iter().any(|&f| holds(r, f));
        let b = dst.iter().any(|&f| holds(r, f));
        if a {
            s.as_src = s.as_src.map(|n| n + 1);
        }
        if b {
            s.as_dst = s.as_dst.map(|n| n + 1);
        }
        if a || b {
            s.records += 1;
            // A record covers its start to its end; one time alone, or an end before the
            // start, places it at one second.
            let covered = match (r.start, r.end) {
                (Some(s), Some(e)) if e >= s => Some((s, e)),
                (Some(t), _) | (None, Some(t)) => Some((t, t)),
                (None, None) => None,
            };
            if let Some((first, last)) = covered {
                s.first_seen = Some(s.first_seen.map_or(first, |f| f.min(first)));
                s.last_seen = Some(s.last_seen.map_or(last, |l| l.max(last)));
            }
        }
    }
    s
}

fn values_of(records: &[&FlowRecord]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for (i, r) in records.iter().enumerate().step_by(97) {
        if let Some(ip) = r.srcaddr {
            v.push(ip.to_string());
            if ip.is_ipv4() {
                let o = match ip {
                    std::net::IpAddr::V4(a) => a.octets(),
                    _ => unreachable!(),
                };
                v.push(format!("{}.{}.0.0/{}", o[0], o[1], 8 + (i % 3) * 8));
            }
        }
        if let Some(ip) = r.dstaddr {
            v.push(ip.to_string());
        }
        if let Some(p) = r.dstport {
            v.push(p.to_string());
        }
        // Behind a NAT gateway, the far end is only a packet address; a Transit Gateway
        // names the ENIs, subnets, VPCs and accounts at both ends.
        for ip in [r.pkt_srcaddr, r.pkt_dstaddr].into_iter().flatten() {
            v.push(ip.to_string());
        }
        for id in [
            &r.interface_id,
            &r.tgw_src_eni,
            &r.tgw_dst_eni,
            &r.tgw_dst_subnet_id,
            &r.tgw_src_vpc_id,
            &r.tgw_pair_attachment_id,
            &r.tgw_dst_vpc_account_id,
        ]
        .into_iter()
        .flatten()
        {
            v.push(id.clone());
        }
        if let Some(a) = &r.account_id {
            v.push(a.clone());
        }
    }
    v.extend(
        [
            "203.0.113.254",
            "2001:db8::dead",
            "0.0.0.0/0",
            "::/0",
            "65000",
            "eni-0000000000000000",
            "i-0123",
            "999999999999",
            // The ends of tests/fixtures/tgw-s3.log's Transit Gateway flow.
            "eni-0bbbbbbbbbbbbbbbb",
            "subnet-0aaaaaaaaaaaaaaaa",
            "vpc-0bbbbbbbbbbbbbbbb",
            "210987654321",
            "tgw-attach-0fedcba9876543210",
            // The odd times' addresses.
            "10.9.9.9",
            "10.9.9.10",
            "10.9.9.11",
        ]
        .map(String::from),
    );
    v.sort();
    v.dedup();
    v
}

#[test]
fn seen_agrees_with_a_linear_scan() {
    let corpus = common::synth_corpus(20_000, 3, 31, "v5");
    // Records with one time, or an end before the start, beside ones with both.
    let odd = tempfile::tempdir().unwrap();
    std::fs::write(
        odd.path().join("odd-times.log"),
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
         2 1 eni-1 10.9.9.9 10.1.2.3 1 2 6 1 60 - 1712000200 ACCEPT OK\n\
         2 1 eni-1 10.9.9.9 10.1.2.4 1 2 6 1 60 1712000300 - ACCEPT OK\n\
         2 1 eni-1 10.9.9.10 10.1.2.4 1 2 6 1 60 1712000400 1712000350 ACCEPT OK\n\
         2 1 eni-1 10.9.9.11 10.1.2.5 1 2 6 1 60 - - ACCEPT OK\n",
    )
    .unwrap();
    let mut paths: Vec<PathBuf> = vec![corpus.path().to_path_buf(), fixture(""), odd.path().to_path_buf()];
    paths.extend(real_fixtures());
    let dir = tempfile::tempdir().unwrap();
    // Two builds: two segments whose answers must merge.
    build(dir.path(), &paths[..1], &ReadOptions::default(), 2);
    build(dir.path(), &paths[1..], &ReadOptions::default(), 2);
    let index = Index::open(dir.path()).unwrap();
    assert!(index.segments().len() > 1);
    let read = read_with(&paths, &ReadOptions::default()).without_duplicate_sources();
    let records: Vec<&FlowRecord> = read.records.iter().map(|(_, r, _)| r).collect();
    let values = values_of(&records);
    assert!(values.len() > 300, "{}", values.len());
    let lookups: Vec<Lookup> = values.iter().map(|v| Lookup::parse(v).unwrap()).collect();
    let got = seen::seen(&index, &lookups).unwrap();
    let mut absent = 0;
    for (v, g) in values.iter().zip(&got) {
        assert_eq!(*g, scan(&records, v), "{v}");
        absent += usize::from(g.records == 0);
    }
    assert!(absent >= 3 && absent < values.len() / 2, "{absent} absent");
}

#[test]
fn the_command_reads_lists_and_exits_like_grep() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &[fixture("")], &ReadOptions::default(), 1);
    let list = dir.path().join("iocs.txt");
    std::fs::write(&list, "# IOCs\n172.31.16.139\n203.0.113.254 # never seen\n").unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_flowdex"))
            .arg("seen")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[&format!("@{}", list.display()), "--format", "jsonl"]);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["value"], "172.31.16.139");
    assert_eq!(lines[0]["seen"], true);
    assert!(lines[0]["first_seen"].as_str().unwrap().ends_with('Z'));
    assert_eq!(lines[1]["seen"], false);
    assert_eq!(lines[1]["first_seen"], serde_json::Value::Null);
    assert_eq!(run(&["203.0.113.254"]).status.code(), Some(1));
    let bad = run(&["not-a-value"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`not-a-value` is not an address"));
    // As in a search: a list's bad value is named by file and line; a list of none is refused.
    let bad_list = list.with_file_name("bad.txt");
    std::fs::write(&bad_list, "10.0.0.1\nnot-a-value\n").unwrap();
    let bad = run(&[&format!("@{}", bad_list.display())]);
    assert_eq!(bad.status.code(), Some(2));
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(
        said.contains("bad.txt line 2: `not-a-value` is not an address"),
        "{said}"
    );
    let empty = list.with_file_name("empty.txt");
    std::fs::write(&empty, "# nothing yet\n\n").unwrap();
    let out = run(&[&format!("@{}", empty.display())]);
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("empty.txt` holds no values"), "{said}");
}
