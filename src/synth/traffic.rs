//! What happens on the network: background conversations and the injected incidents, turned into
//! flow-log records for each 5-minute window. A window's records depend only on the seed and the
//! window, so windows can be made in parallel and in any order.
//!
//! A conversation has a request and usually a response. In VPC corpora each direction is logged
//! by every interface it crosses (both ends when both are ours); in transit-gateway corpora it is
//! logged once, at the gateway, when it crosses between VPCs. Internet traffic enters and leaves
//! through the shared VPC in transit-gateway corpora (central inspection), and through each VPC's
//! own internet gateway in VPC corpora.

use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;

use crate::record::{Action, LogStatus};

use super::rng::Rng;
use super::topology::{aws_service_address, Role, Topology, DEV, EXFIL_HOST, EXTERNAL, PROD, SHARED};

/// The public address of the port scan.
pub(crate) const SCANNER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
/// Where the exfiltrated data goes.
pub(crate) const EXFIL_DEST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);

pub(crate) const WINDOW_SECS: u64 = 300;
pub(crate) const WINDOWS_PER_DAY: u64 = 86_400 / WINDOW_SECS;

/// Stream names for [`Rng::new`], so that no two purposes share random numbers.
const STREAM_WEIGHT: u64 = 1;
const STREAM_WINDOW: u64 = 2;
const STREAM_INCIDENT: u64 = 3;
const STREAM_PLAN: u64 = 4;

/// Which incident a record belongs to: its request direction (`Match`, what the truth file
/// counts) or the answers to it (`Reverse`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tag {
    Background,
    Match(usize),
    Reverse(usize),
}

/// One flow-log record before it is given the format's fields.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rec {
    pub status: LogStatus,
    /// The interface that logged it; [`EXTERNAL`] for a transit-gateway record.
    pub at: u16,
    /// Direction relative to `at` (for the gateway: always into it, from the source's attachment).
    pub egress: bool,
    /// Addresses as in the packets (a pod's address, not its node's).
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_eni: u16,
    pub dst_eni: u16,
    pub srcport: u16,
    pub dstport: u16,
    pub protocol: u8,
    pub packets: u64,
    pub bytes: u64,
    pub start: u64,
    pub end: u64,
    pub action: Action,
    pub flags: u16,
    /// `packets-lost-no-route` of a transit-gateway record.
    pub lost: u64,
    pub tag: Tag,
}

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;

/// One exchange between a client and a server within one aggregation interval.
struct Conv {
    client: u16,
    server: u16,
    client_ip: IpAddr,
    server_ip: IpAddr,
    sport: u16,
    dport: u16,
    protocol: u8,
    start: u64,
    end: u64,
    req: (u64, u64),
    /// Packets and bytes of the answer; `None` when nothing answers (UDP syslog, rejects).
    resp: Option<(u64, u64)>,
    flags: (u16, u16),
    /// What the server's security group did.
    action: Action,
    incident: Option<usize>,
}

/// Incident numbers, the order of `truth.json`.
pub(crate) const PORT_SCAN: usize = 0;
pub(crate) const EXFILTRATION: usize = 1;
pub(crate) const DB_REJECTS: usize = 2;
const LATERAL: usize = 3;
pub(crate) const INCIDENTS: usize = 4;

/// When an incident happens: `count` events spread evenly over `span` minutes from `minute` of
/// the incident day.
#[derive(Clone, Copy, Debug)]
struct Schedule {
    minute: u64,
    span: u64,
    count: u64,
}

impl Schedule {
    /// The events whose minute (relative to the schedule's start) is in `lo..hi`.
    fn events_in(&self, lo: i64, hi: i64) -> Range<u64> {
        // Event i happens at minute i * span / count, so the events of [lo, hi) are those from
        // ceil(lo * count / span) to ceil(hi * count / span).
        let clamp = |m: i64| m.clamp(0, self.span as i64) as u64;
        let first = |m: u64| (m * self.count).div_ceil(self.span);
        first(clamp(lo))..first(clamp(hi))
    }

    fn minute_of(&self, event: u64) -> u64 {
        self.minute + event * self.span / self.count
    }
}

/// The injected incidents: who, how much, when.
pub(crate) struct Incidents {
    /// Minutes from the corpus start to the incident day's midnight.
    day_minute: u64,
    schedules: [Schedule; INCIDENTS],
    pub scan_target: u16,
    /// Distinct ports probed; probes after the first `scan_ports.len()` are retries.
    scan_ports: Vec<u16>,
    scan_sport: u16,
    pub exfil_host: u16,
    exfil_sport: u16,
    pub db_client: u16,
    pub db_server: u16,
    pub lateral_server: u16,
}

/// Ports a scanner tries first (nmap's most common), before random ones.
const TOP_PORTS: [u16; 40] = [
    80, 23, 443, 21, 22, 25, 3389, 110, 445, 139, 143, 53, 135, 3306, 8080, 1723, 111, 995, 993, 5900, 1025, 587, 8888,
    199, 1720, 465, 548, 113, 81, 6001, 10000, 514, 5060, 179, 1026, 2000, 8443, 8000, 32768, 554,
];

/// Ports scanners of the background knock on.
const NOISE_PORTS: [u16; 14] = [
    22, 23, 445, 3389, 1433, 3306, 5900, 8080, 8443, 6379, 9200, 25, 21, 5432,
];

/// Traffic of each UTC hour, relative (us-east business hours peak in the UTC afternoon).
const HOUR_WEIGHT: [u64; 24] = [
    60, 52, 46, 42, 40, 40, 42, 48, 56, 64, 72, 80, 88, 96, 100, 100, 98, 96, 92, 88, 82, 76, 70, 64,
];

/// Everything needed to make any window's records.
pub(crate) struct Traffic {
    pub topo: Topology,
    pub seed: u64,
    /// Unix seconds of the first window.
    pub start: u64,
    pub windows: u64,
    /// Whether records are logged at the transit gateway rather than at interfaces.
    pub tgw: bool,
    /// Background records in total, and the running sum of window weights (`windows + 1` items).
    background: u64,
    cumulative: Vec<u64>,
    pub incidents: Incidents,
}

impl Traffic {
    /// Plans a corpus of exactly `records` records. The caller has checked that `records` leaves
    /// room for the incidents (see [`super::MIN_RECORDS`]).
    pub(crate) fn new(seed: u64, start: u64, days: u64, records: u64, tgw: bool) -> Traffic {
        let topo = Topology::new(seed);
        let windows = days * WINDOWS_PER_DAY;
        let incidents = Incidents::new(&topo, seed, records, days);
        let mut cumulative = Vec::with_capacity(windows as usize + 1);
        let mut sum = 0u64;
        cumulative.push(0);
        for w in 0..windows {
            let t = start + w * WINDOW_SECS;
            let hour = (t % 86_400 / 3600) as usize;
            // 1970-01-01 was a Thursday, so (days + 4) % 7 is 0 on Sundays.
            let weekday = (t / 86_400 + 4) % 7;
            let week = if weekday == 0 || weekday == 6 { 70 } else { 100 };
            let noise = Rng::new(&[seed, STREAM_WEIGHT, w]).range(85, 115);
            sum += HOUR_WEIGHT[hour] * week * noise;
            cumulative.push(sum);
        }
        let mut traffic = Traffic {
            topo,
            seed,
            start,
            windows,
            tgw,
            background: 0,
            cumulative,
            incidents,
        };
        let incident_records: u64 = traffic
            .incident_windows()
            .map(|w| traffic.incident_records(w).len() as u64)
            .sum();
        // Exact as long as the caller kept to MIN_RECORDS: incidents never take a third of it.
        traffic.background = records.saturating_sub(incident_records);
        traffic
    }

    /// Background records of window `w`: the window's share of the weights, rounded so that the
    /// shares add up to exactly the total.
    fn quota(&self, w: u64) -> usize {
        let total = u128::from(*self.cumulative.last().unwrap_or(&1)).max(1);
        let upto = |i: usize| u128::from(self.background) * u128::from(self.cumulative[i]) / total;
        (upto(w as usize + 1) - upto(w as usize)) as usize
    }

    /// The records of window `w` (0-based from the start), in the order they are written.
    pub(crate) fn window(&self, w: u64, out: &mut Vec<Rec>) {
        out.clear();
        let quota = self.quota(w);
        let mut rng = Rng::new(&[self.seed, STREAM_WINDOW, w]);
        let t0 = self.start + w * WINDOW_SECS;
        while out.len() < quota {
            self.background(&mut rng, t0, out, quota);
        }
        // AWS files are not sorted either.
        out.extend(self.incident_records(w));
    }

    /// Windows that can hold incident records.
    fn incident_windows(&self) -> Range<u64> {
        let first = self.incidents.day_minute / 5;
        first..(first + WINDOWS_PER_DAY).min(self.windows)
    }

    fn incident_records(&self, w: u64) -> Vec<Rec> {
        let mut out = Vec::new();
        let inc = &self.incidents;
        let lo = (w * 5) as i64 - inc.day_minute as i64;
        for (kind, s) in inc.schedules.iter().enumerate() {
            for event in s.events_in(lo - s.minute as i64, lo + 5 - s.minute as i64) {
                let minute = inc.day_minute + s.minute_of(event);
                let t = self.start + minute * 60;
                let mut rng = Rng::new(&[self.seed, STREAM_INCIDENT, kind as u64, event]);
                let conv = self.incident(kind, event, t, &mut rng);
                self.emit(&conv, &mut rng, &mut out, usize::MAX);
            }
        }
        out
    }

    fn incident(&self, kind: usize, event: u64, t: u64, rng: &mut Rng) -> Conv {
        let inc = &self.incidents;
        let topo = &self.topo;
        let ip = |eni: u16| IpAddr::V4(topo.enis[usize::from(eni)].ipv4);
        let mut conv = match kind {
            PORT_SCAN => {
                let n = inc.scan_ports.len() as u64;
                // Retries go back to earlier ports, from the next source port, as nmap does.
                let (port, sport) = if event < n {
                    (inc.scan_ports[event as usize], inc.scan_sport)
                } else {
                    (inc.scan_ports[((event - n) * 7 % n) as usize], inc.scan_sport + 1)
                };
                let start = t + rng.below(60);
                Conv {
                    client: EXTERNAL,
                    server: inc.scan_target,
                    client_ip: IpAddr::V4(SCANNER),
                    server_ip: ip(inc.scan_target),
                    sport,
                    dport: port,
                    protocol: TCP,
                    start,
                    end: start,
                    req: (1, 44),
                    resp: None,
                    flags: (2, 0),
                    action: Action::Reject,
                    incident: None,
                }
            }
            EXFILTRATION => {
                let count = inc.schedules[EXFILTRATION].count;
                // Four parallel connections, each logged once a minute while it lasts.
                let bytes = rng.range(100_000_000, 250_000_000);
                let packets = bytes / rng.range(1380, 1448) + 1;
                let flags = if event < 4 {
                    (2, 18)
                } else if event + 4 >= count {
                    (1, 1)
                } else {
                    (0, 0)
                };
                let start = t + rng.below(3);
                Conv {
                    client: inc.exfil_host,
                    server: EXTERNAL,
                    client_ip: ip(inc.exfil_host),
                    server_ip: IpAddr::V4(EXFIL_DEST),
                    sport: inc.exfil_sport + (event % 4) as u16,
                    dport: 443,
                    protocol: TCP,
                    start,
                    end: t + 59 - rng.below(2),
                    req: (packets, bytes),
                    resp: Some((packets / 2, packets / 2 * 52)),
                    flags,
                    action: Action::Accept,
                    incident: None,
                }
            }
            DB_REJECTS => {
                let server = &topo.enis[usize::from(inc.db_server)];
                let packets = rng.range(1, 3);
                let start = t + rng.below(50);
                Conv {
                    client: inc.db_client,
                    server: inc.db_server,
                    client_ip: ip(inc.db_client),
                    server_ip: ip(inc.db_server),
                    sport: ephemeral(rng, Role::App),
                    dport: server.db_port,
                    protocol: TCP,
                    start,
                    end: start + (packets - 1) * 3,
                    req: (packets, packets * 60),
                    resp: None,
                    flags: (2, 0),
                    action: Action::Reject,
                    incident: None,
                }
            }
            _ => {
                // Lateral movement: first SSH, then RDP, from the dev host that probed the database.
                let ssh = event < inc.schedules[LATERAL].count.div_ceil(2);
                let packets = rng.range(200, 3000);
                let start = t + rng.below(10);
                Conv {
                    client: inc.db_client,
                    server: inc.lateral_server,
                    client_ip: ip(inc.db_client),
                    server_ip: ip(inc.lateral_server),
                    sport: ephemeral(rng, Role::App),
                    dport: if ssh { 22 } else { 3389 },
                    protocol: TCP,
                    start,
                    end: t + 59 - rng.below(5),
                    req: (packets, packets * rng.range(80, 300)),
                    resp: Some((packets, packets * rng.range(200, 1200))),
                    flags: (3, 19),
                    action: Action::Accept,
                    incident: None,
                }
            }
        };
        conv.incident = Some(kind);
        conv
    }

    /// Adds the records of one background conversation (or status line), stopping at `quota`.
    fn background(&self, rng: &mut Rng, t0: u64, out: &mut Vec<Rec>, quota: usize) {
        let topo = &self.topo;
        // Conversation kinds, with weights chosen so that the records come out at about
        // 85% TCP, 12% UDP, 3% ICMP, 5% REJECT, 2-3% IPv6 and 1% NODATA (a test checks).
        const WEIGHTS: [u32; 15] = [
            2200, 220, 1500, 700, 700, 500, 100, 150, 100, 150, 150, 1000, 300, 150, 202,
        ];
        let kind = rng.weighted(&WEIGHTS);
        let minute = t0 + 60 * rng.below(5);
        if kind == 14 {
            // Idle interfaces log NODATA; rarely, a SKIPDATA line says records were dropped.
            let status = if rng.below(100) == 0 {
                LogStatus::SkipData
            } else {
                LogStatus::NoData
            };
            let at = if self.tgw {
                EXTERNAL
            } else {
                rng.below(topo.enis.len() as u64) as u16
            };
            let none = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
            out.push(Rec {
                status,
                at,
                egress: false,
                src: none,
                dst: none,
                src_eni: EXTERNAL,
                dst_eni: EXTERNAL,
                srcport: 0,
                dstport: 0,
                protocol: 0,
                packets: 0,
                bytes: 0,
                start: minute + rng.below(3),
                end: minute + 59 - rng.below(3),
                action: Action::Accept,
                flags: 0,
                lost: 0,
                tag: Tag::Background,
            });
            return;
        }
        let vpc3 = |rng: &mut Rng, w: [u32; 3]| rng.weighted(&w);
        let instance = |rng: &mut Rng, w: [u32; 3]| {
            let vpc = rng.weighted(&w);
            topo.instances(vpc).pick(rng)
        };
        let in_group = |rng: &mut Rng, roles: &[Role], vpc: usize| {
            let present = || roles.iter().copied().filter(|r| !topo.group(*r, vpc).is_empty());
            let k = rng.below(present().count() as u64) as usize;
            let role = present().nth(k).unwrap_or(roles[0]);
            topo.group(role, vpc).pick(rng)
        };
        let mut c = Conv {
            client: EXTERNAL,
            server: EXTERNAL,
            client_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            server_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            sport: 0,
            dport: 443,
            protocol: TCP,
            start: 0,
            end: 0,
            req: (0, 0),
            resp: None,
            flags: (0, 0),
            action: Action::Accept,
            incident: None,
        };
        let mut long = false;
        match kind {
            // Internet clients of the public web tier, over IPv4 and (kind 1) IPv6.
            0 | 1 => {
                let vpc = vpc3(rng, [70, 30, 0]);
                let lb = vpc == PROD && rng.per_mille(150);
                c.server = topo.group(if lb { Role::Lb } else { Role::Web }, vpc).pick(rng);
                c.client_ip = if kind == 1 {
                    IpAddr::V6(topo.peer_v6(rng))
                } else {
                    IpAddr::V4(topo.peer(rng))
                };
                c.dport = if rng.per_mille(850) { 443 } else { 80 };
                c.sport = ephemeral(rng, Role::Batch);
            }
            // Instances calling out: APIs on the internet, S3 and DynamoDB.
            2 => {
                let vpc = vpc3(rng, [55, 30, 15]);
                c.client = in_group(
                    rng,
                    &[Role::App, Role::Ecs, Role::Eks, Role::Batch, Role::Ci, Role::Proxy],
                    vpc,
                );
                let has_v6 = topo.enis[usize::from(c.client)].ipv6.is_some();
                c.server_ip = if has_v6 && rng.per_mille(60) {
                    IpAddr::V6(topo.peer_v6(rng))
                } else if rng.per_mille(250) {
                    IpAddr::V4(aws_service_address(rng))
                } else {
                    IpAddr::V4(topo.peer(rng))
                };
                c.dport = if rng.per_mille(900) { 443 } else { 80 };
                long = rng.per_mille(300);
            }
            // Web tier to application tier, application tier to databases, within a VPC.
            3 | 4 => {
                let vpc = vpc3(rng, [60, 40, 0]);
                if kind == 3 {
                    c.client = topo.group(Role::Web, vpc).pick(rng);
                    c.server = in_group(rng, &[Role::App, Role::Ecs, Role::Eks], vpc);
                    c.dport = 8080;
                } else {
                    c.client = in_group(rng, &[Role::App, Role::Ecs, Role::Eks, Role::Batch], vpc);
                    c.server = topo.group(Role::Db, vpc).pick(rng);
                    c.dport = topo.enis[usize::from(c.server)].db_port;
                    long = rng.per_mille(400);
                }
            }
            // DNS and NTP from everywhere to the shared VPC.
            5 | 6 => {
                c.client = instance(rng, [50, 30, 20]);
                c.protocol = if kind == 6 || rng.per_mille(900) { UDP } else { TCP };
                if kind == 5 {
                    c.server = topo.group(Role::Dns, SHARED).pick(rng);
                    c.dport = 53;
                    c.req = (rng.range(1, 2), 0);
                    c.req.1 = c.req.0 * rng.range(60, 120);
                    c.resp = Some((c.req.0, c.req.0 * rng.range(100, 500)));
                } else {
                    c.server = topo.group(Role::Ntp, SHARED).pick(rng);
                    c.dport = 123;
                    c.req = (1, 76);
                    c.resp = Some((1, 76));
                    if rng.per_mille(500) {
                        c.sport = 123;
                    }
                }
            }
            // Monitoring scrapes (node exporter) and pings.
            7 | 8 => {
                c.client = topo.group(Role::Monitor, SHARED).pick(rng);
                c.server = instance(rng, [50, 30, 20]);
                if kind == 7 {
                    c.dport = 9100;
                } else {
                    c.protocol = ICMP;
                    let p = rng.range(1, 4);
                    c.req = (p, p * 84);
                    c.resp = Some(c.req);
                }
            }
            // Directory: LDAP, LDAPS and Kerberos.
            9 => {
                c.client = instance(rng, [60, 40, 0]);
                c.server = topo.group(Role::Ldap, SHARED).pick(rng);
                c.dport = [389, 389, 636, 88][rng.below(4) as usize];
                if c.dport == 88 && rng.per_mille(500) {
                    c.protocol = UDP;
                    c.req = (1, rng.range(200, 1500));
                    c.resp = Some((1, rng.range(300, 1400)));
                }
            }
            // Administration: SSH to bastions from the office, RDP from bastions, CI deploying.
            10 => match rng.below(3) {
                0 => {
                    c.client_ip = IpAddr::V4(rng.pick(&topo.admins));
                    c.server = topo.group(Role::Bastion, vpc3(rng, [60, 40, 0])).pick(rng);
                    c.dport = 22;
                    long = true;
                }
                1 => {
                    let vpc = vpc3(rng, [60, 40, 0]);
                    c.client = topo.group(Role::Bastion, vpc).pick(rng);
                    c.server = topo.group(Role::Windows, vpc).pick(rng);
                    c.dport = 3389;
                    long = true;
                }
                _ => {
                    c.client = topo.group(Role::Ci, SHARED).pick(rng);
                    c.server = topo.group(Role::App, vpc3(rng, [50, 50, 0])).pick(rng);
                    c.dport = 22;
                }
            },
            // Internet background radiation: probes the security groups reject.
            11 => {
                let vpc = vpc3(rng, [60, 40, 0]);
                c.server = topo
                    .group(if rng.per_mille(800) { Role::Web } else { Role::Bastion }, vpc)
                    .pick(rng);
                c.client_ip = IpAddr::V4(topo.peers[rng.below(topo.peers.len() as u64) as usize]);
                c.action = Action::Reject;
                if rng.per_mille(200) {
                    c.protocol = ICMP;
                    c.req = (1, 84);
                } else {
                    c.dport = rng.pick(&NOISE_PORTS);
                    c.sport = rng.range(1024, 65535) as u16;
                    let p = rng.range(1, 2);
                    c.req = (p, p * rng.range(40, 60));
                    c.flags = (2, 0);
                }
            }
            // Logs to the syslog collectors (no answer), web traffic through the proxies.
            12 => {
                c.client = instance(rng, [60, 40, 0]);
                if rng.per_mille(500) {
                    c.server = topo.group(Role::Logging, SHARED).pick(rng);
                    c.protocol = UDP;
                    c.dport = 514;
                    let p = rng.log_uniform(6);
                    c.req = (p, p * rng.range(120, 600));
                } else {
                    c.server = topo.group(Role::Proxy, SHARED).pick(rng);
                    c.dport = 3128;
                }
            }
            // Interface endpoints of AWS APIs, centralised in the shared VPC.
            _ => {
                c.client = instance(rng, [50, 30, 20]);
                c.server = topo.group(Role::Endpoint, SHARED).pick(rng);
            }
        }
        self.fill_in(&mut c, rng, minute, long);
        self.emit(&c, rng, out, quota);
    }

    /// Fills what a background conversation left open: addresses, client port, times, volumes,
    /// TCP flags.
    fn fill_in(&self, c: &mut Conv, rng: &mut Rng, minute: u64, long: bool) {
        let topo = &self.topo;
        let v6 = c.client_ip.is_ipv6() || c.server_ip.is_ipv6();
        let address = |eni: u16, rng: &mut Rng| {
            let e = &topo.enis[usize::from(eni)];
            if !e.pods.is_empty() && rng.per_mille(700) {
                IpAddr::V4(rng.pick(&e.pods))
            } else {
                e.primary(v6)
            }
        };
        if c.client != EXTERNAL {
            c.client_ip = address(c.client, rng);
        }
        if c.server != EXTERNAL {
            c.server_ip = address(c.server, rng);
        }
        if c.protocol == ICMP {
            c.sport = 0;
            c.dport = 0;
        } else if c.sport == 0 {
            let role = if c.client == EXTERNAL {
                Role::Batch
            } else {
                topo.enis[usize::from(c.client)].role
            };
            c.sport = ephemeral(rng, role);
        }
        let mut long = long;
        if c.protocol == TCP && c.action == Action::Accept {
            // Flags are OR-ed over the interval: SYN+FIN (3) and SYN-ACK+FIN (19) for connections
            // that open and close within it, SYN/SYN-ACK for ones that open, none for ones that
            // carry on, FIN for ones that close, RST for refused ones.
            let (flags, is_long) = match rng.below(100) {
                0..40 => ((3, 19), false),
                40..58 => ((2, 18), true),
                58..83 => ((0, 0), true),
                83..95 => ((1, 1), true),
                _ => ((2, 4), false),
            };
            c.flags = flags;
            long |= is_long && rng.per_mille(600);
        }
        let j = if long { rng.below(5) } else { rng.below(60) };
        c.start = minute + j;
        c.end = if long {
            minute + 55 + rng.below(5)
        } else {
            c.start + rng.below(8.min(60 - j))
        };
        if c.req.0 == 0 {
            let p = rng.log_uniform(if long { 14 } else { 6 });
            c.req = (p, p * rng.range(52, 600));
        }
        if c.resp.is_none() && c.action == Action::Accept && c.protocol != UDP {
            let p = if c.flags.1 == 4 { 1 } else { c.req.0 * rng.range(1, 3) };
            let size = if c.flags.1 == 4 { 40 } else { rng.range(200, 1500) };
            c.resp = Some((p, p * size));
        }
    }

    /// Turns a conversation into records, as many as fit below `quota`.
    fn emit(&self, c: &Conv, rng: &mut Rng, out: &mut Vec<Rec>, quota: usize) {
        let request = Rec {
            status: LogStatus::Ok,
            at: EXTERNAL,
            egress: false,
            src: c.client_ip,
            dst: c.server_ip,
            src_eni: c.client,
            dst_eni: c.server,
            srcport: c.sport,
            dstport: c.dport,
            protocol: c.protocol,
            packets: c.req.0,
            bytes: c.req.1,
            start: c.start,
            end: c.end,
            action: c.action,
            flags: c.flags.0,
            lost: 0,
            tag: c.incident.map_or(Tag::Background, Tag::Match),
        };
        let response = c
            .resp
            .filter(|_| c.action == Action::Accept)
            .map(|(packets, bytes)| Rec {
                src: c.server_ip,
                dst: c.client_ip,
                src_eni: c.server,
                dst_eni: c.client,
                srcport: c.dport,
                dstport: c.sport,
                packets,
                bytes,
                flags: c.flags.1,
                tag: c.incident.map_or(Tag::Background, Tag::Reverse),
                ..request
            });
        let mut push = |rec: Rec| {
            if out.len() < quota {
                out.push(rec);
            }
        };
        if self.tgw {
            if self.topo.side_vpc(c.client) == self.topo.side_vpc(c.server) {
                return;
            }
            for rec in std::iter::once(request).chain(response) {
                // A few packets find no route now and then (a route table being changed).
                let lost = if rng.per_mille(2) { rng.range(1, 3) } else { 0 };
                push(Rec { lost, ..rec });
            }
            return;
        }
        // The client's security group lets its own traffic out; the server's decides.
        let sides = |rec: Rec, push: &mut dyn FnMut(Rec)| {
            if rec.src_eni != EXTERNAL {
                push(Rec {
                    at: rec.src_eni,
                    egress: true,
                    action: Action::Accept,
                    ..rec
                });
            }
            if rec.dst_eni != EXTERNAL {
                push(Rec {
                    at: rec.dst_eni,
                    egress: false,
                    ..rec
                });
            }
        };
        sides(request, &mut push);
        if let Some(response) = response {
            sides(response, &mut push);
        }
    }

    /// The flow log (index into the corpus's flow logs) that delivers `rec`.
    pub(crate) fn flow_log_of(&self, rec: &Rec) -> usize {
        if self.tgw {
            0
        } else {
            self.topo.enis[usize::from(rec.at)].vpc
        }
    }
}

/// An ephemeral client port: Windows and Linux use different ranges.
fn ephemeral(rng: &mut Rng, role: Role) -> u16 {
    if role == Role::Windows {
        rng.range(49_152, 65_535) as u16
    } else {
        rng.range(32_768, 60_999) as u16
    }
}

impl Incidents {
    fn new(topo: &Topology, seed: u64, records: u64, days: u64) -> Incidents {
        let mut rng = Rng::new(&[seed, STREAM_PLAN]);
        let day = days.saturating_sub(1).min(27);
        // Sizes grow with the corpus up to full scale; the smallest corpus still holds each.
        let ports = (records / 25).clamp(10, 3000);
        let mut scan_ports: Vec<u16> = TOP_PORTS.iter().copied().take(ports as usize).collect();
        let mut seen: std::collections::HashSet<u16> = scan_ports.iter().copied().collect();
        while (scan_ports.len() as u64) < ports {
            let p = rng.range(1, 65_535) as u16;
            if seen.insert(p) {
                scan_ports.push(p);
            }
        }
        for i in (1..scan_ports.len()).rev() {
            scan_ports.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let probes = ports + ports / 10;
        let schedules = [
            Schedule {
                minute: 3 * 60,
                span: 60,
                count: probes,
            },
            Schedule {
                minute: 13 * 60,
                span: 180,
                count: (records / 1000).clamp(3, 180),
            },
            Schedule {
                minute: 9 * 60,
                span: 120,
                count: (records / 2000).clamp(3, 60),
            },
            Schedule {
                minute: 20 * 60,
                span: 120,
                count: (records / 5000).clamp(2, 20),
            },
        ];
        let first = |role: Role, vpc: usize, ok: &dyn Fn(u16) -> bool| {
            topo.group(role, vpc).enis.iter().copied().find(|&e| ok(e)).unwrap_or(0)
        };
        let any = |_: u16| true;
        Incidents {
            day_minute: day * 1440,
            schedules,
            scan_target: first(Role::Web, PROD, &any),
            scan_ports,
            scan_sport: rng.range(40_000, 60_000) as u16,
            exfil_host: first(Role::App, PROD, &|e| topo.enis[usize::from(e)].ipv4 == EXFIL_HOST),
            exfil_sport: rng.range(32_768, 60_000) as u16,
            db_client: first(Role::App, DEV, &any),
            db_server: first(Role::Db, PROD, &|e| topo.enis[usize::from(e)].db_port == 5432),
            lateral_server: first(Role::Windows, PROD, &any),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_place_every_event_exactly_once() {
        for (count, span) in [(3300u64, 60u64), (3, 180), (180, 180), (7, 120), (1, 5)] {
            let s = Schedule { minute: 0, span, count };
            let mut seen = 0;
            for lo in (-10..span as i64 + 10).step_by(5) {
                for e in s.events_in(lo, lo + 5) {
                    let m = s.minute_of(e) as i64;
                    assert!(m >= lo && m < lo + 5);
                    seen += 1;
                }
            }
            assert_eq!(seen, count);
        }
    }

    #[test]
    fn windows_hold_exactly_the_planned_records() {
        for tgw in [false, true] {
            let t = Traffic::new(5, 1_711_929_600, 2, 5000, tgw);
            let mut total = 0;
            let mut buf = Vec::new();
            for w in 0..t.windows {
                t.window(w, &mut buf);
                total += buf.len();
                assert!(buf.iter().all(|r| r.end >= r.start && r.end - r.start <= 59));
                let t0 = t.start + w * WINDOW_SECS;
                assert!(buf.iter().all(|r| r.start >= t0 && r.end < t0 + WINDOW_SECS));
            }
            assert_eq!(total, 5000);
        }
    }

    #[test]
    fn record_mix_is_as_documented() {
        let t = Traffic::new(9, 1_711_929_600, 3, 60_000, false);
        let mut recs = Vec::new();
        let mut all = Vec::new();
        for w in 0..t.windows {
            t.window(w, &mut recs);
            all.extend(recs.iter().filter(|r| r.tag == Tag::Background).copied());
        }
        let share = |f: &dyn Fn(&Rec) -> bool| all.iter().filter(|r| f(r)).count() as f64 / all.len() as f64;
        let within = |name: &str, x: f64, lo: f64, hi: f64| assert!((lo..hi).contains(&x), "{name}: {x:.4}");
        within("tcp", share(&|r| r.protocol == TCP), 0.80, 0.88);
        within("udp", share(&|r| r.protocol == UDP), 0.10, 0.15);
        within("icmp", share(&|r| r.protocol == ICMP), 0.02, 0.04);
        within(
            "reject",
            share(&|r| r.status == LogStatus::Ok && r.action == Action::Reject),
            0.04,
            0.06,
        );
        within("ipv6", share(&|r| r.src.is_ipv6()), 0.015, 0.035);
        within("nodata", share(&|r| r.status == LogStatus::NoData), 0.006, 0.014);
    }
}
