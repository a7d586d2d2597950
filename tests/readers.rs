//! The input readers against real and vendor-published fixtures (from `../shared`, never
//! committed) and against this repository's own fixtures, one per quirk and delivery form.

mod common;

use std::net::IpAddr;

use common::{fixture, read, real_fixtures};
use flowdex::input::{Form, RejectReason, SourceError, DEFAULT_TGW};
use flowdex::record::{Action, Field, FlowDirection, LogStatus, TrafficType, Value};

const V5: &str = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr region az-id sublocation-type sublocation-id pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path";
const AWS_TGW_EXAMPLE: &str = "version interface-id account-id vpc-id subnet-id instance-id srcaddr dstaddr srcport dstport protocol tcp-flags type pkt-srcaddr pkt-dstaddr action log-status";
const OTEL_TGW_CW: &str = "version account-id tgw-id tgw-attachment-id tgw-src-vpc-id tgw-dst-vpc-id tgw-src-subnet-id tgw-dst-subnet-id tgw-src-eni tgw-dst-eni tgw-src-az-id tgw-dst-az-id tgw-pair-attachment-id srcaddr dstaddr srcport dstport protocol packets bytes start end log-status type tcp-flags flow-direction region";

fn v(n: u8) -> String {
    flowdex::input::LogFormat::vpc_up_to_version(n).to_string()
}

/// A row of the fixture table: file, --log-format, lines, headers, records, rejected, fails.
type Expected<'a> = (&'a str, Option<&'a str>, u64, u64, u64, u64, bool);

/// Every real fixture with the counts a careful reader of it expects.
#[test]
fn real_fixtures_parse_with_expected_counts() {
    let Some(dir) = real_fixtures() else {
        eprintln!("../shared/fixtures/real is not here; skipping the real-fixture table");
        return;
    };
    let v7 = v(7);
    let v8 = v(8);
    let table: &[Expected<'_>] = &[
        // Line 1 names the fields; two lines carry trailing `#comments` from the docs.
        (
            "awsdocs-amazon-vpc-user-guide/custom-nat-gateway.log",
            None,
            7,
            1,
            4,
            2,
            false,
        ),
        // The last line has a double space.
        (
            "awsdocs-amazon-vpc-user-guide/custom-v3-tcp-flag-sequence.log",
            None,
            9,
            1,
            8,
            0,
            false,
        ),
        // One line is a literal `...`.
        (
            "awsdocs-amazon-vpc-user-guide/custom-v3-transit-gateway.log",
            None,
            6,
            1,
            4,
            1,
            false,
        ),
        (
            "awsdocs-amazon-vpc-user-guide/custom-v5-service-traffic-path-direction.log",
            None,
            3,
            1,
            2,
            0,
            false,
        ),
        (
            "awsdocs-amazon-vpc-user-guide/default-accepted-rejected.log",
            None,
            2,
            0,
            2,
            0,
            false,
        ),
        (
            "awsdocs-amazon-vpc-user-guide/default-ipv6.log",
            None,
            1,
            0,
            1,
            0,
            false,
        ),
        (
            "awsdocs-amazon-vpc-user-guide/default-nodata-skipdata.log",
            None,
            2,
            0,
            2,
            0,
            false,
        ),
        (
            "awsdocs-amazon-vpc-user-guide/default-sg-nacl-icmp.log",
            None,
            2,
            0,
            2,
            0,
            false,
        ),
        ("elastic-beats/accept-reject-traffic.log", None, 5, 1, 4, 0, false),
        // YAML, not a flow log: every non-blank line is rejected, none lost.
        ("elastic-beats/aws-vpc-flow-logs.yml", None, 90, 0, 0, 90, false),
        ("elastic-beats/bad.log", None, 1, 0, 0, 1, false),
        ("elastic-beats/custom-nat-gateway.log", None, 3, 1, 2, 0, false),
        (
            "elastic-beats/custom-transit-gateway.log",
            Some(AWS_TGW_EXAMPLE),
            1,
            0,
            1,
            0,
            false,
        ),
        ("elastic-beats/ipv6.log", None, 1, 0, 1, 0, false),
        ("elastic-beats/no-data-skip-data.log", None, 2, 0, 2, 0, false),
        // A blank line between two header+record blocks.
        ("elastic-beats/tcp-flag-sequence-skip-data.log", None, 4, 2, 2, 0, false),
        ("elastic-beats/tcp-flag-sequence.log", None, 2, 1, 1, 0, false),
        // Mixed 14-, 39- and 36-field lines: the v2 lines parse, the others are rejected.
        (
            "elastic-integrations/deploy-tf-files-test-extra-samples.log",
            None,
            9,
            0,
            7,
            2,
            false,
        ),
        (
            "elastic-integrations/test-ecs-samples.log",
            Some(&v7),
            10,
            0,
            10,
            0,
            false,
        ),
        ("elastic-integrations/test-extra-samples.log", None, 7, 0, 7, 0, false),
        // The header repeats before every record.
        (
            "elastic-integrations/test-tcp-flag-sequence.log",
            None,
            6,
            3,
            3,
            0,
            false,
        ),
        (
            "elastic-integrations/test-tgw-samples.log",
            Some(DEFAULT_TGW),
            10,
            0,
            10,
            0,
            false,
        ),
        (
            "elastic-integrations/test-v5-all-fields.log",
            Some(V5),
            1,
            0,
            1,
            0,
            false,
        ),
        ("elastic-integrations/test-v8-samples.log", Some(&v8), 1, 0, 1, 0, false),
        (
            "elastic-integrations/test-with-message-field.log",
            None,
            1,
            0,
            1,
            0,
            false,
        ),
        // Line 17 has a 9-digit start: kept, as it is a valid number.
        ("foxio-logslash/vpc_flow_in.log", None, 50, 0, 50, 0, false),
        (
            "goaccess-issue-1341/cloudwatch-export-sample.txt",
            None,
            5,
            0,
            5,
            0,
            false,
        ),
        ("grafana-loki/vpcflowlog.log.gz", None, 4, 1, 3, 0, false),
        (
            "kentik-ktranslate/cwl-subscription-data-message.json",
            None,
            1,
            0,
            1,
            0,
            false,
        ),
        (
            "kentik-ktranslate/cwl-subscription-logevent-with-extractedFields.json",
            None,
            1,
            0,
            1,
            0,
            false,
        ),
        ("kentik-ktranslate/s3-v2-with-header.log", None, 7, 1, 6, 0, false),
        ("kentik-ktranslate/s3-v3-with-header.log", None, 2, 1, 1, 0, false),
        ("obsrvbl-flowlogs-reader/V2_RECORDS.log", None, 5, 0, 5, 0, false),
        ("obsrvbl-flowlogs-reader/V3_FILE.log", None, 3, 1, 2, 0, false),
        ("obsrvbl-flowlogs-reader/V4_FILE.log", None, 3, 1, 2, 0, false),
        // Ends with a `bogus line`.
        ("obsrvbl-flowlogs-reader/V5_FILE.log", None, 4, 1, 2, 1, false),
        ("obsrvbl-flowlogs-reader/V6_FILE.log", None, 2, 1, 1, 0, false),
        ("obsrvbl-flowlogs-reader/flows.parquet", None, 0, 0, 0, 0, true),
        (
            "obsrvbl-flowlogs-reader/millisecond-timestamp-skipdata.log",
            None,
            1,
            0,
            1,
            0,
            false,
        ),
        (
            "otel-collector-contrib/valid_tgw_flow_cw.json",
            Some(OTEL_TGW_CW),
            1,
            0,
            1,
            0,
            false,
        ),
        ("otel-collector-contrib/valid_tgw_flow_log.log", None, 2, 1, 1, 0, false),
        ("otel-collector-contrib/valid_vpc_flow_cw.json", None, 2, 0, 2, 0, false),
        (
            "otel-collector-contrib/valid_vpc_flow_cw_custom.json",
            Some("version interface-id srcaddr dstaddr"),
            2,
            0,
            2,
            0,
            false,
        ),
        ("otel-collector-contrib/valid_vpc_flow_log.log", None, 2, 1, 1, 0, false),
        (
            "otel-collector-contrib/valid_vpc_flow_log_ecs.log",
            None,
            2,
            1,
            1,
            0,
            false,
        ),
        (
            "otel-collector-contrib/valid_vpc_flow_log_multi.log",
            None,
            3,
            1,
            2,
            0,
            false,
        ),
        (
            "splunk-aws-firehose-flowlogs-processor/firehose-direct-record-payloads.jsonl",
            None,
            4,
            0,
            4,
            0,
            false,
        ),
        (
            "splunk-aws-lambda-cloudwatchlogs-processor/cwl-subscription-awslogs-data.json",
            None,
            1,
            0,
            1,
            0,
            false,
        ),
        (
            "splunk-aws-lambda-cloudwatchlogs-processor/cwl-subscription-awslogs-data.json.gz",
            None,
            1,
            0,
            1,
            0,
            false,
        ),
        (
            "splunk-aws-lambda-cloudwatchlogs-processor/lambda-event-awslogs.json",
            None,
            1,
            0,
            1,
            0,
            false,
        ),
    ];
    let mut listed = std::collections::BTreeSet::new();
    for &(file, format, lines, headers, records, rejected, fails) in table {
        listed.insert(file.to_owned());
        let got = read(&[dir.join(file)], format);
        assert_eq!(got.reports.len(), 1, "{file}");
        let r = &got.reports[0];
        assert_eq!(
            (r.lines, r.headers, r.records, r.rejected, r.error.is_some()),
            (lines, headers, records, rejected, fails),
            "{file}: {r}"
        );
        assert_eq!(r.sha256.len(), 64, "{file} is hashed");
    }
    // A new fixture must get a row: nothing in shared/ goes untested.
    for entry in walkdir::WalkDir::new(&dir).sort_by_file_name() {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(&dir).unwrap().to_string_lossy().into_owned();
        if entry.file_type().is_file() && rel != "SOURCES.md" {
            assert!(listed.contains(&rel), "{rel} has no row in the fixture table");
        }
    }
}

#[test]
fn real_fixture_values_are_typed_as_aws_documents_them() {
    let Some(dir) = real_fixtures() else { return };
    // A genuine gzip S3 object with a header.
    let loki = read(&[dir.join("grafana-loki/vpcflowlog.log.gz")], None);
    assert_eq!(loki.reports[0].form, Form::S3Text);
    assert!(loki.reports[0].gzip);
    // Milliseconds become seconds.
    let ms = read(
        &[dir.join("obsrvbl-flowlogs-reader/millisecond-timestamp-skipdata.log")],
        None,
    );
    let r = &ms.records[0].1;
    assert_eq!(
        (r.start, r.end, r.log_status),
        (Some(1_512_564_058), Some(1_512_564_059), Some(LogStatus::SkipData))
    );
    // The double-spaced AWS example line parses like the others.
    let flags = read(
        &[dir.join("awsdocs-amazon-vpc-user-guide/custom-v3-tcp-flag-sequence.log")],
        None,
    );
    assert_eq!(flags.records.last().unwrap().1.tcp_flags, Some(19));
    // The real CloudWatch export: the time-stamp prefix equals the record's start.
    let cw = read(&[dir.join("goaccess-issue-1341/cloudwatch-export-sample.txt")], None);
    assert_eq!(cw.reports[0].form, Form::CloudwatchExport);
    assert_eq!(cw.records[0].1.start, Some(1_537_648_094));
    // A Lambda event: base64, then gzip, then a DATA_MESSAGE.
    let lambda = read(
        &[dir.join("splunk-aws-lambda-cloudwatchlogs-processor/lambda-event-awslogs.json")],
        None,
    );
    assert_eq!(
        lambda.records[0].1.interface_id.as_deref(),
        Some("eni-0c19436730cc350ae")
    );
    // The NAT gateway example: no `version`, instance-id `-`, pkt-dstaddr differs.
    let nat = read(
        &[dir.join("awsdocs-amazon-vpc-user-guide/custom-nat-gateway.log")],
        None,
    );
    let r = &nat.records[0].1;
    assert_eq!(r.version, None);
    assert!(!r.fields.contains(Field::Version) && r.fields.contains(Field::InstanceId));
    assert_eq!(r.instance_id, None);
    assert_ne!(r.dstaddr, r.pkt_dstaddr);
    // TGW custom order with packets-lost before start.
    let tgw = read(&[dir.join("otel-collector-contrib/valid_tgw_flow_log.log")], None);
    let r = &tgw.records[0].1;
    assert!(r.is_tgw());
    assert_eq!(
        (r.packets_lost_no_route, r.packets_lost_ttl_expired, r.start),
        (Some(1), Some(4), Some(1_700_000_000))
    );
}

#[test]
fn s3_text_quirks() {
    let got = read(&[fixture("s3-text-quirks.log")], None);
    let r = got.report("s3-text-quirks.log");
    assert_eq!(
        (r.lines, r.blank_lines, r.headers, r.records, r.rejected),
        (9, 2, 2, 7, 0),
        "{r}"
    );
    assert_eq!(r.form, Form::S3Text);
    let recs: Vec<_> = got.records.iter().map(|(_, r, _)| r).collect();
    // CRLF and double spaces.
    assert_eq!(recs[0].action, Some(Action::Accept));
    assert_eq!(recs[1].srcaddr, Some("172.31.9.69".parse().unwrap()));
    // `-` in numeric fields is None; the fields are still part of the format.
    assert_eq!((recs[2].srcport, recs[2].packets, recs[2].action), (None, None, None));
    assert!(recs[2].fields.contains(Field::Srcport));
    // Milliseconds.
    assert_eq!(recs[3].start, Some(1_512_564_058));
    // IPv6, compressed too.
    assert_eq!(recs[4].dstaddr, Some("2a02:cf40::".parse::<IpAddr>().unwrap()));
    // The re-armed header: another order, an unknown field kept as text, non-ASCII kept.
    assert_eq!(recs[5].srcaddr, Some("10.0.0.1".parse().unwrap()));
    assert_eq!(recs[5].extra[0].name.as_ref(), "future-field-x");
    assert_eq!(recs[5].extra[0].value.as_deref(), Some("some-value"));
    assert_eq!(recs[5].subnet_id.as_deref(), Some("subnet-0aб1"));
    assert_eq!(recs[5].start, Some(164_000_066), "a 9-digit start is kept as given");
    assert_eq!(recs[6].extra[0].value, None);
    // Provenance is the 1-based line in the file, blank lines included.
    let lines: Vec<u64> = recs.iter().map(|r| r.provenance.line).collect();
    assert_eq!(lines, [2, 3, 6, 7, 8, 10, 11]);
    // The raw line is handed out byte for byte (without the line ending).
    assert_eq!(got.records[0].2, b"2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK");
}

#[test]
fn every_bad_line_is_rejected_with_its_reason_and_nothing_else_is_lost() {
    let got = read(&[fixture("rejects.log")], None);
    let r = got.report("rejects.log");
    assert_eq!((r.lines, r.headers, r.records, r.rejected), (10, 1, 2, 7), "{r}");
    let reasons: Vec<(u64, &str)> = got.rejects.iter().map(|(_, l, why)| (*l, why.as_str())).collect();
    let expect = [
        (3, "wrong field count: 13 fields, the format has 14"),
        (4, "bad srcaddr: `10.0.0.999` is not an IP address"),
        (5, "bad srcport: `70000` is out of range (max 65535)"),
        (6, "bad action: `MAYBE` is not one of ACCEPT REJECT"),
        (7, "bad packets: `-5` is not a number"),
        (8, "wrong field count: 1 field, the format has 14"),
        (10, "not UTF-8 text"),
    ];
    assert_eq!(reasons, expect);
    assert_eq!(
        r.rejects.iter().map(|x| x.line).collect::<Vec<_>>(),
        [3, 4, 5, 6, 7, 8, 10]
    );
}

#[test]
fn cloudwatch_and_firehose_forms() {
    let cw = read(&[fixture("cloudwatch-export.txt")], None);
    assert_eq!(cw.reports[0].form, Form::CloudwatchExport);
    assert_eq!(cw.records.len(), 3);
    assert_eq!(cw.records[1].1.log_status, Some(LogStatus::NoData));
    for (file, n) in [
        ("get-log-events.json", 3),
        ("filter-log-events.json", 4),
        ("subscription.json.gz", 2),
        ("lambda-event.json", 2),
        ("firehose-concatenated.json", 3),
        ("firehose-ndjson.json", 3),
    ] {
        let got = read(&[fixture(file)], None);
        let r = &got.reports[0];
        assert_eq!(
            (r.form, r.lines, r.records, r.rejected, r.error.is_none()),
            (Form::Json, n, n, 0, true),
            "{file}: {r}"
        );
        // Provenance of a JSON source is the event number.
        let numbers: Vec<u64> = got.records.iter().map(|(_, r, _)| r.provenance.line).collect();
        assert_eq!(numbers, (1..=n).collect::<Vec<_>>(), "{file}");
        assert_eq!(got.records[0].1.srcaddr, Some("10.5.81.0".parse().unwrap()), "{file}");
    }
}

#[test]
fn a_cloudwatch_time_stamp_that_is_no_time_is_named_as_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(fixture("cloudwatch-export.txt")).unwrap();
    // Month 13 on the second line.
    let text = good.replacen("2018-09-22T20:29:12.000Z", "2018-13-22T20:29:12.000Z", 1);
    let p = dir.path().join("export.txt");
    std::fs::write(&p, text).unwrap();
    let got = read(std::slice::from_ref(&p), None);
    let r = &got.reports[0];
    assert_eq!((r.records, r.rejected), (2, 1), "{r}");
    assert_eq!(r.rejects[0].line, 2);
    assert_eq!(
        r.rejects[0].reason.to_string(),
        "bad time stamp: `2018-13-22T20:29:12.000Z` is not a valid RFC 3339 time"
    );
    // The first line's stamp damaged: the lines after it are still read.
    let text = good.replacen("2018-09-22T20:28:14.000Z", "2018-09-22T25:28:14.000Z", 1);
    std::fs::write(&p, text).unwrap();
    let got = read(&[p], None);
    let r = &got.reports[0];
    assert_eq!((r.records, r.rejected, r.rejects[0].line), (2, 1, 1), "{r}");
}

#[test]
fn transit_gateway_and_custom_formats() {
    let got = read(&[fixture("tgw-s3.log")], None);
    assert_eq!(got.records.len(), 2);
    let r = &got.records[0].1;
    assert!(r.is_tgw());
    assert_eq!(r.tgw_id.as_deref(), Some("tgw-0123456789abcdef0"));
    assert_eq!(r.resource_type.as_deref(), Some("TransitGatewayAttachment"));
    assert_eq!(r.action, None, "TGW records have no action");
    assert_eq!(r.flow_direction, Some(FlowDirection::Ingress));
    assert_eq!(got.records[1].1.packets_lost_no_route, Some(3));

    // Headerless v5 needs its format; without it the line is rejected with advice.
    let without = read(&[fixture("bare-v5.log")], None);
    assert_eq!(without.rejects.len(), 1);
    assert!(
        without.rejects[0].2.contains("--log-format"),
        "{}",
        without.rejects[0].2
    );
    let with = read(
        &[fixture("bare-v5.log")],
        Some(&format!("${{{}}}", V5.replace(' ', "} ${"))),
    );
    let r = &with.records[0].1;
    assert_eq!(with.reports[0].form, Form::BareLines);
    assert_eq!(r.traffic_path.map(|t| t.0), Some(8));
    assert_eq!(r.traffic_type, Some(TrafficType::Ipv4));
    assert_eq!(r.pkt_dst_aws_service.as_deref(), Some("S3"));
    assert_eq!(r.get(Field::TcpFlags), Some(Value::UInt(19)));
}

#[test]
fn parquet_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.log.parquet");
    std::fs::write(&p, b"PAR1\x15\x04rest").unwrap();
    let got = read(&[p], None);
    let e = got.reports[0].error.as_ref().unwrap();
    assert!(matches!(e, SourceError::Unsupported { .. }));
    assert!(e.to_string().contains("Parquet delivery is not supported yet"), "{e}");
}

#[test]
fn a_header_is_told_from_free_text_that_starts_with_a_field_name() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    // Tag values `end` and `start` are field names; the lines read as records, not headers.
    let tags = write(
        "tags.log",
        "instance-tag region az-id\nprod us-east-1 use1-az1\nend us-east-1 use1-az2\nweb us-west-2 usw2-az1\n",
    );
    let got = read(&[tags], None);
    assert_eq!(
        (got.reports[0].headers, got.reports[0].records),
        (1, 3),
        "{}",
        got.reports[0]
    );
    assert_eq!(got.records[1].1.instance_tag.as_deref(), Some("end"));
    let tags = write(
        "tags2.log",
        "instance-tag srcaddr dstaddr action\nstart 1.2.3.4 5.6.7.8 ACCEPT\nversion srcaddr instance-tag action\n2 1.2.3.4 x REJECT\n",
    );
    let got = read(&[tags], None);
    assert_eq!(
        (got.reports[0].headers, got.reports[0].records),
        (2, 2),
        "{}",
        got.reports[0]
    );
    assert_eq!(got.records[1].1.action, Some(Action::Reject));
    // A header whose first name is a field flowdex does not know (yet), first or merged later.
    let future = write(
        "future.log",
        "future-x version srcaddr dstaddr\nx 2 10.0.0.1 203.0.113.9\nfuture-x version dstaddr srcaddr\ny 2 10.0.0.1 203.0.113.9\n",
    );
    let got = read(&[future], None);
    assert_eq!(
        (got.reports[0].headers, got.reports[0].records),
        (2, 2),
        "{}",
        got.reports[0]
    );
    assert_eq!(got.records[0].1.extra[0].value.as_deref(), Some("x"));
    assert_eq!(got.records[1].1.srcaddr, Some("203.0.113.9".parse().unwrap()));
    // A damaged record starting with a field's name is rejected, not taken for a header.
    let damaged = write(
        "damaged.log",
        "instance-tag region az-id\nprod us-east-1 use1-az1\nend us-east-1 use1-az2 x\nweb us-west-2 usw2-az1\n",
    );
    let got = read(&[damaged], None);
    let r = &got.reports[0];
    assert_eq!((r.headers, r.records, r.rejected), (1, 2, 1), "{r}");
}

/// Headers repeated mid-file: a byte-order mark before one (files that each had one, joined)
/// does not hide it; one that cannot be used leaves the lines after it unread until the next,
/// never read in the previous header's order; one of mostly new fields is still a header.
#[test]
fn every_header_of_a_merged_file_is_used_or_stops_the_lines_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let bom = write(
        "bom.log",
        b"\xef\xbb\xbfsrcaddr dstaddr action\n10.0.0.1 10.0.0.2 ACCEPT\n\xef\xbb\xbfdstaddr srcaddr action\n10.0.0.3 10.0.0.4 REJECT\n",
    );
    let got = read(&[bom], None);
    assert_eq!(
        (got.reports[0].headers, got.reports[0].records),
        (2, 2),
        "{}",
        got.reports[0]
    );
    assert_eq!(got.records[1].1.srcaddr, Some("10.0.0.4".parse().unwrap()));
    let unusable = write(
        "unusable.log",
        b"srcaddr dstaddr action\n10.0.0.1 10.0.0.2 ACCEPT\ndstaddr srcaddr srcaddr\n10.0.0.3 10.0.0.4 REJECT\n\nsrcaddr dstaddr action\n10.0.0.5 10.0.0.6 ACCEPT\n",
    );
    let got = read(&[unusable], None);
    let r = &got.reports[0];
    assert_eq!((r.headers, r.records, r.rejected), (2, 2, 2), "{r}");
    assert!(matches!(r.rejects[0].reason, RejectReason::BadHeader { .. }), "{r}");
    assert_eq!(
        (r.rejects[1].line, &r.rejects[1].reason),
        (4, &RejectReason::AfterUnusableHeader { header: 3 })
    );
    let future = write("future.log", b"srcaddr dstaddr new-a new-b\n10.0.0.1 10.0.0.2 x y\n");
    let got = read(&[future], None);
    assert_eq!(
        (got.reports[0].headers, got.reports[0].records),
        (1, 1),
        "{}",
        got.reports[0]
    );
    assert_eq!(got.records[0].1.extra[1].value.as_deref(), Some("y"));
}

/// JSON that holds no log event reads cleanly but is named; PowerShell's shapes (`Events`,
/// `Message`) are log events.
#[test]
fn json_without_log_events_gets_a_notice_and_powershell_shapes_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let line = "2 123456789010 eni-1 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK";
    let files = [
        ("other.json", r#"{"foo": 1, "bar": [1, 2, 3]}"#.to_string()),
        (
            "ps-array.json",
            format!(r#"[{{"Timestamp":"2014-12-14T04:06:50Z","Message":"{line}"}}]"#),
        ),
        ("ps-events.json", format!(r#"{{"Events":[{{"Message":"{line}"}}]}}"#)),
    ];
    for (name, text) in &files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let paths: Vec<_> = files.iter().map(|(name, _)| dir.path().join(name)).collect();
    let got = read(&paths, None);
    let by_name = |n: &str| got.reports.iter().find(|r| r.meta.name.ends_with(n)).unwrap();
    let other = by_name("other.json");
    assert_eq!((other.records, other.error.is_none()), (0, true));
    assert!(other.notice().is_some_and(|n| n.contains("no log event")), "{other}");
    for n in ["ps-array.json", "ps-events.json"] {
        let r = by_name(n);
        assert_eq!((r.records, r.rejected, r.notice()), (1, 0, None), "{r}");
    }
}

/// `cat` treats its arguments as `build` does: a path that is not there is refused (exit 2)
/// before anything is read, a field name typed wrong gets a suggestion, and limits take sizes.
#[test]
fn cat_refuses_a_missing_path_and_reads_sizes_and_suggests_fields() {
    let cat = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_flowdex"))
            .arg("cat")
            .args(args)
            .output()
            .unwrap()
    };
    let present = fixture("tgw-s3.log");
    let present = present.to_str().unwrap();
    let out = cat(&[present, "/no/such/flow.log"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/no/such/flow.log: no such file or folder; nothing was read"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    let out = cat(&["--fields", "dstadr", present]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown field `dstadr`; did you mean `dstaddr`?"),
        "{stderr}"
    );
    // A tenth of a K is not all of the 740 bytes the gzip holds; a line of 1K is longer than
    // any of the file's.
    let gz = fixture("subscription.json.gz");
    let out = cat(&["--format", "jsonl", "--max-source-bytes", "0.1K", gz.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(": stopped: it expands beyond 102 bytes"), "{stderr}");
    let out = cat(&["--format", "jsonl", "--max-line-bytes", "1K", present]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
}
