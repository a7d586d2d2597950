//! From planned records to what a flow log delivers: the values of a record's fields (a
//! [`View`] borrowing its text from the topology), its text line, the same values as a
//! [`FlowRecord`], and the S3 object key of each file.
//!
//! Text and records are both made from one `View`, so they cannot disagree about a value; the
//! round-trip test checks that the reader parses the text back into the record.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};

use crate::input::LogFormat;
use crate::record::{
    Action, ExtraField, Field, FieldSet, FlowDirection, FlowRecord, FormatField, LogStatus, TrafficPath, TrafficType,
};
use crate::time::civil_from_days;

use super::rng::mix;
use super::topology::{aws_service, Eni, Topology, AZ_IDS, DEV, EXTERNAL, REGION, SHARED};
use super::traffic::{Rec, Traffic, WINDOW_SECS};

pub(crate) struct Renderer<'a> {
    traffic: &'a Traffic,
    format: &'a LogFormat,
    fields: FieldSet,
    /// The `version` value: the highest version among the format's fields (format reference §1.4).
    version: u8,
    header: String,
}

/// A value as it is written in a line and kept in a [`FlowRecord`].
trait Cell: Copy {
    type Owned;
    fn write(self, buf: &mut Vec<u8>);
    fn store(self, slot: &mut Option<Self::Owned>);
}

macro_rules! number_cell {
    ($($t:ty),*) => {$(
        impl Cell for $t {
            type Owned = $t;
            fn write(self, buf: &mut Vec<u8>) {
                write_decimal(buf, u64::from(self));
            }
            fn store(self, slot: &mut Option<$t>) {
                *slot = Some(self);
            }
        }
    )*};
}
number_cell!(u8, u16, u64);

macro_rules! word_cell {
    ($($t:ty),*) => {$(
        impl Cell for $t {
            type Owned = $t;
            fn write(self, buf: &mut Vec<u8>) {
                buf.extend_from_slice(self.as_str().as_bytes());
            }
            fn store(self, slot: &mut Option<$t>) {
                *slot = Some(self);
            }
        }
    )*};
}
word_cell!(Action, LogStatus, FlowDirection, TrafficType);

impl Cell for TrafficPath {
    type Owned = TrafficPath;
    fn write(self, buf: &mut Vec<u8>) {
        write_decimal(buf, u64::from(self.0));
    }
    fn store(self, slot: &mut Option<TrafficPath>) {
        *slot = Some(self);
    }
}

impl Cell for IpAddr {
    type Owned = IpAddr;
    fn write(self, buf: &mut Vec<u8>) {
        match self {
            IpAddr::V4(ip) => write_ipv4(buf, ip),
            // Writing into a Vec cannot fail. IPv6 is rare enough for `Display` to do.
            IpAddr::V6(ip) => {
                let _ = write!(buf, "{ip}");
            }
        }
    }
    fn store(self, slot: &mut Option<IpAddr>) {
        *slot = Some(self);
    }
}

impl Cell for &str {
    type Owned = String;
    fn write(self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(self.as_bytes());
    }
    /// Reuses the record's buffer, so a record refilled for every line does not allocate.
    fn store(self, slot: &mut Option<String>) {
        match slot {
            Some(s) => {
                s.clear();
                s.push_str(self);
            }
            None => *slot = Some(self.to_owned()),
        }
    }
}

macro_rules! view {
    ($( $variant:ident => $member:ident : $ty:ty ),* $(,)?) => {
        /// Every field's value for one record, `None` for `-`. Text is borrowed from the topology.
        pub(crate) struct View<'a> {
            $( pub $member: Option<$ty>, )*
        }

        impl View<'_> {
            /// Gives `out` the values of the fields in `fields`; the others stay as they are
            /// (`None` in a record from [`Renderer::blank`]).
            pub(crate) fn store(&self, fields: FieldSet, out: &mut FlowRecord) {
                $(
                    if fields.contains(Field::$variant) {
                        match self.$member {
                            Some(v) => v.store(&mut out.$member),
                            None => out.$member = None,
                        }
                    }
                )*
            }

            /// Appends the text of `field`'s value, `-` for none.
            pub(crate) fn write(&self, field: Field, buf: &mut Vec<u8>) {
                match field {
                    $( Field::$variant => match self.$member {
                        Some(v) => v.write(buf),
                        None => buf.push(b'-'),
                    }, )*
                }
            }
        }
    };
}

view! {
    Version => version: u8,
    AccountId => account_id: &'a str,
    InterfaceId => interface_id: &'a str,
    Srcaddr => srcaddr: IpAddr,
    Dstaddr => dstaddr: IpAddr,
    Srcport => srcport: u16,
    Dstport => dstport: u16,
    Protocol => protocol: u8,
    Packets => packets: u64,
    Bytes => bytes: u64,
    Start => start: u64,
    End => end: u64,
    Action => action: Action,
    LogStatus => log_status: LogStatus,
    VpcId => vpc_id: &'a str,
    SubnetId => subnet_id: &'a str,
    InstanceId => instance_id: &'a str,
    TcpFlags => tcp_flags: u16,
    Type => traffic_type: TrafficType,
    PktSrcaddr => pkt_srcaddr: IpAddr,
    PktDstaddr => pkt_dstaddr: IpAddr,
    Region => region: &'a str,
    AzId => az_id: &'a str,
    SublocationType => sublocation_type: &'a str,
    SublocationId => sublocation_id: &'a str,
    PktSrcAwsService => pkt_src_aws_service: &'a str,
    PktDstAwsService => pkt_dst_aws_service: &'a str,
    FlowDirection => flow_direction: FlowDirection,
    TrafficPath => traffic_path: TrafficPath,
    EcsClusterArn => ecs_cluster_arn: &'a str,
    EcsClusterName => ecs_cluster_name: &'a str,
    EcsContainerInstanceArn => ecs_container_instance_arn: &'a str,
    EcsContainerInstanceId => ecs_container_instance_id: &'a str,
    EcsContainerId => ecs_container_id: &'a str,
    EcsSecondContainerId => ecs_second_container_id: &'a str,
    EcsServiceName => ecs_service_name: &'a str,
    EcsTaskDefinitionArn => ecs_task_definition_arn: &'a str,
    EcsTaskArn => ecs_task_arn: &'a str,
    EcsTaskId => ecs_task_id: &'a str,
    RejectReason => reject_reason: &'a str,
    ResourceId => resource_id: &'a str,
    EncryptionStatus => encryption_status: u8,
    InstanceTag => instance_tag: &'a str,
    InstanceTag2 => instance_tag_2: &'a str,
    InterfaceTag => interface_tag: &'a str,
    InterfaceTag2 => interface_tag_2: &'a str,
    AsgTag => asg_tag: &'a str,
    AsgTag2 => asg_tag_2: &'a str,
    InterfaceType => interface_type: &'a str,
    NextHopInterfaceId => next_hop_interface_id: &'a str,
    NextHopSubnetId => next_hop_subnet_id: &'a str,
    NextHopAzId => next_hop_az_id: &'a str,
    NextHopVpcId => next_hop_vpc_id: &'a str,
    NextHopInterfaceType => next_hop_interface_type: &'a str,
    ResourceType => resource_type: &'a str,
    TgwId => tgw_id: &'a str,
    TgwAttachmentId => tgw_attachment_id: &'a str,
    TgwSrcVpcAccountId => tgw_src_vpc_account_id: &'a str,
    TgwDstVpcAccountId => tgw_dst_vpc_account_id: &'a str,
    TgwSrcVpcId => tgw_src_vpc_id: &'a str,
    TgwDstVpcId => tgw_dst_vpc_id: &'a str,
    TgwSrcSubnetId => tgw_src_subnet_id: &'a str,
    TgwDstSubnetId => tgw_dst_subnet_id: &'a str,
    TgwSrcEni => tgw_src_eni: &'a str,
    TgwDstEni => tgw_dst_eni: &'a str,
    TgwSrcAzId => tgw_src_az_id: &'a str,
    TgwDstAzId => tgw_dst_az_id: &'a str,
    TgwPairAttachmentId => tgw_pair_attachment_id: &'a str,
    PacketsLostNoRoute => packets_lost_no_route: u64,
    PacketsLostBlackhole => packets_lost_blackhole: u64,
    PacketsLostMtuExceeded => packets_lost_mtu_exceeded: u64,
    PacketsLostTtlExpired => packets_lost_ttl_expired: u64,
}

impl<'a> Renderer<'a> {
    pub(crate) fn new(traffic: &'a Traffic, format: &'a LogFormat) -> Renderer<'a> {
        let fields = format.known_fields();
        let version = fields.iter().map(Field::version).max().unwrap_or(2);
        // The header line names the format's fields (format reference §4.2).
        let header = format!("{format}\n");
        Renderer {
            traffic,
            format,
            fields,
            version,
            header,
        }
    }

    /// A record to [`fill`](Self::fill) again and again: the format's fields, and its unknown
    /// columns as the reader keeps them (always `-` here).
    pub(crate) fn blank(&self) -> FlowRecord {
        let extra = self
            .format
            .columns()
            .iter()
            .filter_map(|c| match c {
                FormatField::Unknown(name) => Some(ExtraField {
                    name: name.clone(),
                    value: None,
                }),
                FormatField::Known(_) => None,
            })
            .collect();
        FlowRecord {
            fields: self.fields,
            extra,
            ..FlowRecord::default()
        }
    }

    /// The values of `rec`'s fields. Every field gets a value, including those the format does
    /// not carry: writing and storing pick the format's.
    pub(crate) fn view(&self, rec: &Rec) -> View<'a> {
        let topo: &'a Topology = &self.traffic.topo;
        let tgw = self.traffic.tgw;
        let ok = rec.status == LogStatus::Ok;
        let local: Option<&'a Eni> = (!tgw).then(|| &topo.enis[usize::from(rec.at)]);
        // Fields of an interface record that carried traffic; NODATA and SKIPDATA lines keep
        // only version, account, interface, times and status (format reference §2, v2 table).
        let traffic_at: Option<&'a Eni> = local.filter(|_| ok);
        let gateway = tgw && ok;
        let v6 = rec.src.is_ipv6();
        let (remote_eni, remote_ip) = if rec.egress {
            (rec.dst_eni, rec.dst)
        } else {
            (rec.src_eni, rec.src)
        };
        let remote: Option<&'a Eni> = (remote_eni != EXTERNAL).then(|| &topo.enis[usize::from(remote_eni)]);

        // An interface logs its own primary address, whatever address the packet carried (§3.2).
        let (srcaddr, dstaddr) = match traffic_at {
            Some(e) if rec.egress => (e.primary(v6), rec.dst),
            Some(e) => (rec.src, e.primary(v6)),
            None => (rec.src, rec.dst),
        };
        let account = match local {
            Some(e) => topo.vpcs[e.vpc].account,
            None => topo.vpcs[SHARED].account,
        };
        let ecs = traffic_at.and_then(|e| e.ecs.as_deref());
        let tags = traffic_at.and_then(|e| e.tags.as_deref());
        let hop = traffic_at.and_then(|e| self.next_hop(e, remote));
        // The dev VPC blocks inbound internet traffic with VPC Block Public Access.
        let bpa =
            traffic_at.is_some_and(|e| e.vpc == DEV && !rec.egress && remote.is_none() && rec.action == Action::Reject);

        // Transit gateway (version 6). An internet address is on the shared VPC's side.
        let zone = |eni: u16, other: u16| {
            let e = if eni == EXTERNAL { other } else { eni };
            if e == EXTERNAL {
                0
            } else {
                topo.subnets[topo.enis[usize::from(e)].subnet].az
            }
        };
        let (src_az, dst_az) = (zone(rec.src_eni, rec.dst_eni), zone(rec.dst_eni, rec.src_eni));
        let s = &topo.vpcs[topo.side_vpc(rec.src_eni)];
        let d = &topo.vpcs[topo.side_vpc(rec.dst_eni)];
        let g = |value: &'a str| gateway.then_some(value);

        View {
            version: Some(self.version),
            account_id: Some(account),
            interface_id: local.map(|e| e.id.as_str()),
            srcaddr: ok.then_some(srcaddr),
            dstaddr: ok.then_some(dstaddr),
            srcport: ok.then_some(rec.srcport),
            dstport: ok.then_some(rec.dstport),
            protocol: ok.then_some(rec.protocol),
            packets: ok.then_some(rec.packets),
            bytes: ok.then_some(rec.bytes),
            start: Some(rec.start),
            end: Some(rec.end),
            // Transit gateways have no security groups, so their records have no action (§6).
            action: traffic_at.map(|_| rec.action),
            log_status: Some(rec.status),

            vpc_id: traffic_at.map(|e| topo.vpcs[e.vpc].id.as_str()),
            subnet_id: traffic_at.map(|e| topo.subnets[e.subnet].id.as_str()),
            instance_id: traffic_at.and_then(|e| e.instance.as_deref()),
            tcp_flags: ok.then_some(rec.flags),
            traffic_type: ok.then_some(if v6 { TrafficType::Ipv6 } else { TrafficType::Ipv4 }),
            pkt_srcaddr: ok.then_some(rec.src),
            pkt_dstaddr: ok.then_some(rec.dst),

            region: ok.then_some(REGION),
            az_id: traffic_at.map(|e| AZ_IDS[topo.subnets[e.subnet].az]),
            sublocation_type: None,
            sublocation_id: None,

            pkt_src_aws_service: ok.then(|| aws_service(rec.src)).flatten(),
            pkt_dst_aws_service: ok.then(|| aws_service(rec.dst)).flatten(),
            flow_direction: ok.then_some(if rec.egress {
                FlowDirection::Egress
            } else {
                FlowDirection::Ingress
            }),
            traffic_path: traffic_at
                .filter(|_| rec.egress)
                .map(|e| TrafficPath(traffic_path(e, remote, remote_ip))),

            // Version 7: only interfaces of ECS tasks carry these.
            ecs_cluster_arn: ecs.map(|e| e.cluster_arn.as_str()),
            ecs_cluster_name: ecs.map(|e| e.cluster_name.as_str()),
            ecs_container_instance_arn: ecs.and_then(|e| e.container_instance_arn.as_deref()),
            ecs_container_instance_id: ecs.and_then(|e| e.container_instance_id.as_deref()),
            ecs_container_id: ecs.map(|e| e.container_id.as_str()),
            ecs_second_container_id: ecs.and_then(|e| e.second_container_id.as_deref()),
            ecs_service_name: ecs.map(|e| e.service_name.as_str()),
            ecs_task_definition_arn: ecs.map(|e| e.task_definition_arn.as_str()),
            ecs_task_arn: ecs.map(|e| e.task_arn.as_str()),
            ecs_task_id: ecs.map(|e| e.task_id.as_str()),

            reject_reason: bpa.then_some("BPA"),
            // Version 9: only regional NAT gateways fill it, and this estate has none.
            resource_id: None,
            encryption_status: traffic_at.map(|_| encryption_status(rec, remote.is_some())),

            // Version 11: tags of instances, and the next hop inside the VPC.
            instance_tag: tags.map(|t| t.instance.as_str()),
            instance_tag_2: tags.map(|t| t.instance_2.as_str()),
            interface_tag: tags.map(|t| t.interface.as_str()),
            interface_tag_2: None,
            asg_tag: tags.and_then(|t| t.asg.as_deref()),
            asg_tag_2: None,
            interface_type: traffic_at.and_then(|e| e.interface_type),
            next_hop_interface_id: hop.map(|h| h.interface),
            next_hop_subnet_id: hop.map(|h| h.subnet),
            next_hop_az_id: hop.map(|h| h.az),
            next_hop_vpc_id: hop.map(|h| h.vpc),
            next_hop_interface_type: hop.and_then(|h| h.kind),

            resource_type: g("TransitGateway"),
            tgw_id: g(&topo.tgw_id),
            tgw_attachment_id: g(&s.attachment),
            tgw_src_vpc_account_id: g(s.account),
            tgw_dst_vpc_account_id: g(d.account),
            tgw_src_vpc_id: g(&s.id),
            tgw_dst_vpc_id: g(&d.id),
            tgw_src_subnet_id: g(&s.attachment_subnets[src_az]),
            tgw_dst_subnet_id: g(&d.attachment_subnets[dst_az]),
            tgw_src_eni: g(&s.attachment_enis[src_az]),
            tgw_dst_eni: g(&d.attachment_enis[dst_az]),
            tgw_src_az_id: g(AZ_IDS[src_az]),
            tgw_dst_az_id: g(AZ_IDS[dst_az]),
            tgw_pair_attachment_id: g(&d.attachment),
            packets_lost_no_route: gateway.then_some(rec.lost),
            packets_lost_blackhole: gateway.then_some(0),
            packets_lost_mtu_exceeded: gateway.then_some(0),
            packets_lost_ttl_expired: gateway.then_some(0),
        }
    }

    /// Gives `out` (from [`blank`](Self::blank)) the format's fields of `rec`.
    pub(crate) fn fill(&self, rec: &Rec, out: &mut FlowRecord) {
        self.view(rec).store(self.fields, out);
    }

    pub(crate) fn fields(&self) -> FieldSet {
        self.fields
    }

    /// The interface a packet goes to next inside the VPC: the peer in the same VPC, or the
    /// transit-gateway attachment for another VPC; none for the internet gateway.
    fn next_hop(&self, local: &'a Eni, remote: Option<&'a Eni>) -> Option<Hop<'a>> {
        let topo: &'a Topology = &self.traffic.topo;
        let remote = remote?;
        let vpc = &topo.vpcs[local.vpc];
        Some(if remote.vpc == local.vpc {
            let subnet = &topo.subnets[remote.subnet];
            Hop {
                interface: &remote.id,
                subnet: &subnet.id,
                az: AZ_IDS[subnet.az],
                vpc: &vpc.id,
                kind: remote.interface_type,
            }
        } else {
            let az = topo.subnets[local.subnet].az;
            Hop {
                interface: &vpc.attachment_enis[az],
                subnet: &vpc.attachment_subnets[az],
                az: AZ_IDS[az],
                vpc: &vpc.id,
                kind: Some("transit_gateway"),
            }
        })
    }

    /// The header line, with its newline: the first line of every file.
    pub(crate) fn header(&self) -> &str {
        &self.header
    }

    /// Appends the record's line: the format's fields in column order, single spaces, `-` for
    /// none, numbers in decimal, addresses as `Display` writes them, enums as their AWS word.
    pub(crate) fn write_line(&self, view: &View<'_>, buf: &mut Vec<u8>) {
        for (i, column) in self.format.columns().iter().enumerate() {
            if i > 0 {
                buf.push(b' ');
            }
            match column {
                FormatField::Known(field) => view.write(*field, buf),
                FormatField::Unknown(_) => buf.push(b'-'),
            }
        }
        buf.push(b'\n');
    }

    /// The S3 object key of flow log `flow_log`'s file for window `w` (format reference §4.1).
    pub(crate) fn object_key(&self, flow_log: usize, w: u64) -> String {
        let topo = &self.traffic.topo;
        let (account, id) = if self.traffic.tgw {
            (topo.vpcs[SHARED].account, topo.tgw_flow_log.as_str())
        } else {
            (topo.vpcs[flow_log].account, topo.vpcs[flow_log].flow_log.as_str())
        };
        let t = self.traffic.start + w * WINDOW_SECS;
        let (y, mo, d) = civil_from_days((t / 86_400) as i64);
        let (h, mi) = (t % 86_400 / 3600, t % 3600 / 60);
        // The trailing hash only has to look like AWS's and stay the same for a seed.
        let hash = mix(&[self.traffic.seed, w, flow_log as u64]) as u32;
        format!(
            "AWSLogs/{account}/vpcflowlogs/{REGION}/{y:04}/{mo:02}/{d:02}/\
             {account}_vpcflowlogs_{REGION}_{id}_{y:04}{mo:02}{d:02}T{h:02}{mi:02}Z_{hash:08x}.log.gz"
        )
    }
}

#[derive(Clone, Copy)]
struct Hop<'a> {
    interface: &'a str,
    subnet: &'a str,
    az: &'static str,
    vpc: &'a str,
    kind: Option<&'static str>,
}

/// `traffic-path` of egress traffic (§2, version 5): 1 inside the VPC (the transit gateway's
/// attachment is an interface in the VPC), 7 or 2 to S3 and DynamoDB through the gateway
/// endpoint, 8 or 2 through the internet gateway (7 and 8 are the Nitro-only codes).
fn traffic_path(local: &Eni, remote: Option<&Eni>, remote_ip: IpAddr) -> u8 {
    if remote.is_some() {
        1
    } else if !local.nitro {
        2
    } else if matches!(aws_service(remote_ip), Some("S3" | "DYNAMODB")) {
        7
    } else {
        8
    }
}

/// `encryption-status` (§2, version 10): Nitro encrypts traffic between our instances (1), and
/// port 443 counts as application-encrypted (2, or 3 with both); the internet is not covered (0).
fn encryption_status(rec: &Rec, internal: bool) -> u8 {
    let tls = rec.srcport == 443 || rec.dstport == 443;
    match (internal, tls) {
        (true, true) => 3,
        (true, false) => 1,
        (false, true) if aws_service(rec.src).is_some() || aws_service(rec.dst).is_some() => 2,
        _ => 0,
    }
}

/// Two-digit pairs "00".."99", so that a number takes half as many divisions.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Appends `n` in decimal. Room for the longest number is appended first and the digits are
/// written into it in place, then the rest is cut off: copying just the digits cost a `memcpy`
/// call per number, and building them on the stack first stalled on store forwarding.
fn write_decimal(buf: &mut Vec<u8>, n: u64) {
    let at = buf.len();
    buf.extend_from_slice(&[0u8; 20]);
    let len = decimal_into(&mut buf[at..at + 20], n);
    buf.truncate(at + len);
}

/// Writes `n` at the start of `out` (20 bytes, room for any `u64`), returning its length.
fn decimal_into(out: &mut [u8], mut n: u64) -> usize {
    let len = n.checked_ilog10().unwrap_or(0) as usize + 1;
    let mut i = len;
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        out[i] = PAIRS[pair];
        out[i + 1] = PAIRS[pair + 1];
    }
    if n >= 10 {
        out[0] = PAIRS[n as usize * 2];
        out[1] = PAIRS[n as usize * 2 + 1];
    } else {
        out[0] = b'0' + n as u8;
    }
    len
}

/// The text of every octet, padded to 4 bytes, and its length: an address is four fixed-size
/// copies.
const OCTETS: [([u8; 4], u8); 256] = {
    let mut table = [([0u8; 4], 0u8); 256];
    let mut n = 0;
    while n < 256 {
        let (h, t, o) = ((n / 100) as u8, (n / 10 % 10) as u8, (n % 10) as u8);
        table[n] = if n >= 100 {
            ([b'0' + h, b'0' + t, b'0' + o, 0], 3)
        } else if n >= 10 {
            ([b'0' + t, b'0' + o, 0, 0], 2)
        } else {
            ([b'0' + o, 0, 0, 0], 1)
        };
        n += 1;
    }
    table
};

fn write_ipv4(buf: &mut Vec<u8>, ip: Ipv4Addr) {
    // As `write_decimal`: make room, write in place, cut.
    let at = buf.len();
    buf.extend_from_slice(&[0u8; 20]);
    let out = &mut buf[at..at + 20];
    let mut len = 0;
    for (i, octet) in ip.octets().into_iter().enumerate() {
        let (text, n) = OCTETS[usize::from(octet)];
        out[len..len + 4].copy_from_slice(&text);
        len += usize::from(n);
        if i < 3 {
            out[len] = b'.';
            len += 1;
        }
    }
    buf.truncate(at + len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_addresses_print_as_display_does() {
        let mut buf = Vec::new();
        for n in [0u64, 7, 9, 10, 99, 100, 101, 999, 1000, 65_535, 1_711_929_600, u64::MAX] {
            buf.clear();
            write_decimal(&mut buf, n);
            assert_eq!(buf, n.to_string().as_bytes());
        }
        for ip in ["0.0.0.0", "10.1.9.132", "255.255.255.255", "198.51.100.7"] {
            buf.clear();
            write_ipv4(&mut buf, ip.parse().unwrap());
            assert_eq!(buf, ip.as_bytes());
        }
    }
}
