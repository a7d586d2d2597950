//! What a corpus holds, for the people and tests that check an analysis against it: counts taken
//! from the records as they were written, never estimated.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::record::{Action, Field, FieldSet, LogStatus};
use crate::time::format_rfc3339;

use super::render::View;
use super::topology::{REGION, SHARED};
use super::traffic::{Tag, Traffic, DB_REJECTS, EXFILTRATION, EXFIL_DEST, INCIDENTS, PORT_SCAN, SCANNER};
use super::{format_name, SynthConfig};

/// The contents of `truth.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Truth {
    pub config: TruthConfig,
    pub topology: TruthTopology,
    pub totals: TruthTotals,
    pub incidents: Vec<Incident>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TruthConfig {
    pub records: u64,
    pub days: u32,
    pub seed: u64,
    /// `v2` ... `v11`, `tgw`, or `custom`.
    pub format: String,
    /// The header line of every file.
    pub log_format: String,
    pub gzip_level: u32,
    pub start: String,
    pub start_unix: i64,
    /// The end of the last window (exclusive).
    pub end: String,
    pub end_unix: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TruthTopology {
    pub region: &'static str,
    pub transit_gateway: String,
    pub vpcs: Vec<TruthVpc>,
    pub flow_logs: Vec<TruthFlowLog>,
    pub interfaces: u64,
    /// Size of the pool public peers are drawn from (IPv4 and IPv6).
    pub public_peers: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TruthVpc {
    pub name: &'static str,
    pub account_id: &'static str,
    pub vpc_id: String,
    pub cidr: String,
    pub ipv6_cidr: String,
    pub interfaces: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TruthFlowLog {
    pub flow_log_id: String,
    pub account_id: &'static str,
    /// The VPC or transit gateway the flow log covers.
    pub resource_id: String,
}

/// Counts over every record written.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TruthTotals {
    pub files: u64,
    pub records: u64,
    /// Text before compression, header lines included.
    pub text_bytes: u64,
    pub gzip_bytes: u64,
    pub nodata: u64,
    pub skipdata: u64,
    /// Records with `action` REJECT (none when the format has no `action`).
    pub reject: u64,
    pub ipv6: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmp: u64,
}

/// One injected incident. Its records are those that `matches` describes (all fields of the
/// predicate are in every format flowdex synth writes); answers to them are counted apart.
#[derive(Clone, Debug, Serialize)]
pub struct Incident {
    pub kind: &'static str,
    pub summary: &'static str,
    /// The predicate that selects the incident's records, and nothing else in the corpus.
    pub matches: String,
    /// The predicate of the answers (empty when nothing answers).
    pub reverse_matches: String,
    pub src: String,
    pub dst: String,
    pub protocol: u8,
    /// Destination ports, when there are at most [`PORTS_LISTED`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_ports: Option<Vec<u16>>,
    pub distinct_dst_ports: u64,
    pub first_start: Option<String>,
    pub first_start_unix: Option<u64>,
    pub last_start: Option<String>,
    pub last_start_unix: Option<u64>,
    pub records: u64,
    pub bytes: u64,
    pub reject_records: u64,
    pub reverse_records: u64,
    pub reverse_bytes: u64,
    /// `interface-id`s of the matching records (none for transit-gateway records).
    pub interface_ids: Vec<String>,
}

/// Port lists longer than this are given as a count only.
pub const PORTS_LISTED: usize = 16;

/// Running counts, merged across threads. Every merge is a sum, minimum, maximum or union, so
/// the result does not depend on the order windows were made in.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tally {
    pub totals: TruthTotals,
    incidents: [IncidentTally; INCIDENTS],
}

#[derive(Clone, Debug, Default)]
struct IncidentTally {
    records: u64,
    bytes: u64,
    reject: u64,
    first: Option<u64>,
    last: Option<u64>,
    ports: BTreeSet<u16>,
    interfaces: BTreeSet<String>,
    reverse_records: u64,
    reverse_bytes: u64,
}

impl Tally {
    /// Counts one record as written: only the fields in `fields` are in the file.
    pub(crate) fn add(&mut self, view: &View<'_>, fields: FieldSet, tag: Tag) {
        let has = |field: Field| fields.contains(field);
        let t = &mut self.totals;
        t.records += 1;
        match view.log_status.filter(|_| has(Field::LogStatus)) {
            Some(LogStatus::NoData) => t.nodata += 1,
            Some(LogStatus::SkipData) => t.skipdata += 1,
            _ => {}
        }
        let reject = has(Field::Action) && view.action == Some(Action::Reject);
        t.reject += u64::from(reject);
        t.ipv6 += u64::from(has(Field::Srcaddr) && view.srcaddr.is_some_and(|a| a.is_ipv6()));
        match view.protocol.filter(|_| has(Field::Protocol)) {
            Some(6) => t.tcp += 1,
            Some(17) => t.udp += 1,
            Some(1) => t.icmp += 1,
            _ => {}
        }
        match tag {
            Tag::Background => {}
            Tag::Match(k) => {
                let i = &mut self.incidents[k];
                i.records += 1;
                i.bytes += view.bytes.filter(|_| has(Field::Bytes)).unwrap_or(0);
                i.reject += u64::from(reject);
                if let Some(start) = view.start.filter(|_| has(Field::Start)) {
                    i.first = Some(i.first.map_or(start, |f| f.min(start)));
                    i.last = Some(i.last.map_or(start, |l| l.max(start)));
                }
                if let Some(port) = view.dstport.filter(|_| has(Field::Dstport)) {
                    i.ports.insert(port);
                }
                if let Some(id) = view.interface_id.filter(|_| has(Field::InterfaceId)) {
                    if !i.interfaces.contains(id) {
                        i.interfaces.insert(id.to_owned());
                    }
                }
            }
            Tag::Reverse(k) => {
                let i = &mut self.incidents[k];
                i.reverse_records += 1;
                i.reverse_bytes += view.bytes.filter(|_| has(Field::Bytes)).unwrap_or(0);
            }
        }
    }

    pub(crate) fn merge(mut self, other: Tally) -> Tally {
        let (a, b) = (&mut self.totals, other.totals);
        a.files += b.files;
        a.records += b.records;
        a.text_bytes += b.text_bytes;
        a.gzip_bytes += b.gzip_bytes;
        a.nodata += b.nodata;
        a.skipdata += b.skipdata;
        a.reject += b.reject;
        a.ipv6 += b.ipv6;
        a.tcp += b.tcp;
        a.udp += b.udp;
        a.icmp += b.icmp;
        for (a, b) in self.incidents.iter_mut().zip(other.incidents) {
            a.records += b.records;
            a.bytes += b.bytes;
            a.reject += b.reject;
            a.first = a.first.into_iter().chain(b.first).min();
            a.last = a.last.into_iter().chain(b.last).max();
            a.ports.extend(b.ports);
            a.interfaces.extend(b.interfaces);
            a.reverse_records += b.reverse_records;
            a.reverse_bytes += b.reverse_bytes;
        }
        self
    }
}

/// Puts the truth together from the plan and the counts.
pub(crate) fn assemble(config: &SynthConfig, traffic: &Traffic, tally: Tally) -> Truth {
    let topo = &traffic.topo;
    let end = config.start + i64::from(config.days) * 86_400;
    let vpcs = topo
        .vpcs
        .iter()
        .enumerate()
        .map(|(v, vpc)| TruthVpc {
            name: vpc.name,
            account_id: vpc.account,
            vpc_id: vpc.id.clone(),
            cidr: vpc.cidr.clone(),
            ipv6_cidr: vpc.ipv6_cidr(),
            interfaces: topo.enis.iter().filter(|e| e.vpc == v).count() as u64,
        })
        .collect();
    let flow_logs = if traffic.tgw {
        vec![TruthFlowLog {
            flow_log_id: topo.tgw_flow_log.clone(),
            account_id: topo.vpcs[SHARED].account,
            resource_id: topo.tgw_id.clone(),
        }]
    } else {
        topo.vpcs
            .iter()
            .map(|v| TruthFlowLog {
                flow_log_id: v.flow_log.clone(),
                account_id: v.account,
                resource_id: v.id.clone(),
            })
            .collect()
    };
    let inc = &traffic.incidents;
    let ip = |eni: u16| topo.enis[usize::from(eni)].ipv4.to_string();
    let db_port = topo.enis[usize::from(inc.db_server)].db_port;
    let (dev, db, win, exfil) = (
        ip(inc.db_client),
        ip(inc.db_server),
        ip(inc.lateral_server),
        ip(inc.exfil_host),
    );
    let describe = |kind: usize| -> (&'static str, &'static str, String, String, String, String) {
        match kind {
            PORT_SCAN => (
                "port-scan",
                "one internet host sends SYNs to thousands of ports of a web server; all rejected",
                format!("srcaddr = {SCANNER}"),
                String::new(),
                SCANNER.to_string(),
                ip(inc.scan_target),
            ),
            EXFILTRATION => (
                "exfiltration",
                "an application instance uploads tens of gigabytes to one internet address over HTTPS",
                format!("srcaddr = {exfil} and dstaddr = {EXFIL_DEST} and dstport = 443"),
                format!("srcaddr = {EXFIL_DEST} and dstaddr = {exfil} and srcport = 443"),
                exfil.clone(),
                EXFIL_DEST.to_string(),
            ),
            DB_REJECTS => (
                "rejected-database-access",
                "a dev host tries the prod database port again and again; prod's security group rejects it",
                format!("srcaddr = {dev} and dstaddr = {db} and dstport = {db_port}"),
                String::new(),
                dev.clone(),
                db.clone(),
            ),
            _ => (
                "lateral-movement",
                "the same dev host then logs in to a prod Windows host over SSH and RDP",
                format!("srcaddr = {dev} and dstaddr = {win} and dstport in (22, 3389)"),
                format!("srcaddr = {win} and dstaddr = {dev} and srcport in (22, 3389)"),
                dev.clone(),
                win.clone(),
            ),
        }
    };
    let Tally { totals, incidents } = tally;
    let incidents = incidents
        .into_iter()
        .enumerate()
        .map(|(k, t)| (describe(k), t))
        .map(|((kind, summary, matches, reverse_matches, src, dst), t)| Incident {
            kind,
            summary,
            matches,
            reverse_matches,
            src,
            dst,
            protocol: 6,
            dst_ports: (t.ports.len() <= PORTS_LISTED).then(|| t.ports.iter().copied().collect()),
            distinct_dst_ports: t.ports.len() as u64,
            first_start: t.first.map(|s| format_rfc3339(s as i64)),
            first_start_unix: t.first,
            last_start: t.last.map(|s| format_rfc3339(s as i64)),
            last_start_unix: t.last,
            records: t.records,
            bytes: t.bytes,
            reject_records: t.reject,
            reverse_records: t.reverse_records,
            reverse_bytes: t.reverse_bytes,
            interface_ids: t.interfaces.into_iter().collect(),
        })
        .collect();
    Truth {
        config: TruthConfig {
            records: config.records,
            days: config.days,
            seed: config.seed,
            format: format_name(&config.format),
            log_format: config.format.to_string(),
            gzip_level: config.gzip_level,
            start: format_rfc3339(config.start),
            start_unix: config.start,
            end: format_rfc3339(end),
            end_unix: end,
        },
        topology: TruthTopology {
            region: REGION,
            transit_gateway: topo.tgw_id.clone(),
            vpcs,
            flow_logs,
            interfaces: topo.enis.len() as u64,
            public_peers: (topo.peers.len() + topo.peers_v6.len()) as u64,
        },
        totals,
        incidents,
    }
}
