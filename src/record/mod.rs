//! The record model: one flow-log record with every field AWS defines, typed, plus where it came
//! from. No I/O lives here; `input` fills records, everything after reads them.

mod field;
mod value;

pub use field::{fold_name, nearest_name, Field, FieldKind, FieldSet};
pub use value::{check_text, Action, FieldType, FlowDirection, LogStatus, TrafficPath, TrafficType, Value, ValueError};

use std::net::IpAddr;
use std::sync::Arc;

/// Where a record came from: the source (numbered by whoever reads the inputs, see
/// `input::RecordSink::begin_source`) and the 1-based line in the source's decompressed text. For
/// JSON deliveries (CloudWatch, Firehose) the "line" is the 1-based number of the log event in the
/// source, because one JSON line can carry many events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Provenance {
    pub source: u32,
    pub line: u64,
}

/// One position of a flow log's format: a field, or a name this version does not know (its
/// values are kept as text in [`FlowRecord::extra`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormatField {
    Known(Field),
    Unknown(Arc<str>),
}

impl FormatField {
    pub fn name(&self) -> &str {
        match self {
            FormatField::Known(f) => f.name(),
            FormatField::Unknown(name) => name,
        }
    }
}

/// A field the reader does not know (a future AWS version), kept as opaque text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraField {
    pub name: Arc<str>,
    pub value: Option<String>,
}

macro_rules! record {
    ($( $variant:ident => $member:ident : $ty:ty ),* $(,)?) => {
        /// One flow-log record. Every field is `None` when the record's format does not carry it
        /// or when the line had `-` there; [`FlowRecord::fields`] tells the two apart.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct FlowRecord {
            $( pub $member: Option<$ty>, )*
            /// The fields the record's format carried (`-` included).
            pub fields: FieldSet,
            /// Fields of the format the reader does not know, in format order.
            pub extra: Vec<ExtraField>,
            pub provenance: Provenance,
        }

        impl FlowRecord {
            /// The value of `field`, or `None` for `-` and for a field the format lacks.
            pub fn get(&self, field: Field) -> Option<Value<'_>> {
                match field {
                    $( Field::$variant => self.$member.as_ref().map(FieldType::value), )*
                }
            }

            /// Sets `field` from its flow-log text (`-` clears it). Reuses the record's text
            /// buffers, so a reader that keeps one record per thread does not allocate per line.
            pub fn set_text(&mut self, field: Field, text: &str) -> Result<(), ValueError> {
                field.text_setter()(self, text)
            }

            /// Sets `field` from a typed value (`None` clears it), as read back from an index.
            pub fn set_value(&mut self, field: Field, value: Option<Value<'_>>) -> Result<(), ValueError> {
                match field {
                    $( Field::$variant => {
                        FieldType::assign_value(&mut self.$member, value)?;
                    } )*
                }
                Ok(())
            }

            /// Clears the values of the fields not in `kept`.
            pub fn clear_except(&mut self, kept: FieldSet) {
                $( if !kept.contains(Field::$variant) { self.$member = None; } )*
            }

            /// Clears every value, keeping nothing of the previous record.
            pub fn clear(&mut self) {
                self.clear_except(FieldSet::EMPTY);
                self.fields = FieldSet::EMPTY;
                self.extra.clear();
                self.provenance = Provenance::default();
            }
        }

        impl Field {
            /// The largest value of a number field (65,535 for a port); `None` for others.
            pub fn max_number(self) -> Option<u64> {
                match self {
                    $( Field::$variant => <$ty as FieldType>::max_number(), )*
                }
            }

            /// [`FlowRecord::set_text`] for this field alone: a reader picks each column's
            /// setter once per format, not a field by matching on it for every value (29 a
            /// line, a tenth of parsing a v5 line).
            pub fn text_setter(self) -> TextSetter {
                match self {
                    $( Field::$variant => |r, text| {
                        FieldType::assign(&mut r.$member, text)?;
                        r.after_text(Field::$variant)
                    }, )*
                }
            }
        }
    };
}

/// Sets one field of a record from its flow-log text ([`Field::text_setter`]).
pub type TextSetter = fn(&mut FlowRecord, &str) -> Result<(), ValueError>;

impl FlowRecord {
    /// What setting `field` from text does after the value is parsed: times in milliseconds
    /// become seconds. Inlined with a constant field, it vanishes for all but the two times.
    #[inline(always)]
    fn after_text(&mut self, field: Field) -> Result<(), ValueError> {
        match field {
            Field::Start => self.start = self.start.map(unix_seconds).transpose()?,
            Field::End => self.end = self.end.map(unix_seconds).transpose()?,
            _ => {}
        }
        Ok(())
    }

    /// Writes the record as the flow-log line AWS would deliver for `format`: each value in its
    /// plain text form (`-` for none), separated by single spaces. Reading the line back gives
    /// the same record; whether it also gives the same bytes as the line the record was read
    /// from is what the index's original-line column records. Runs once per record at build
    /// time, hence formatting on the stack ([`Value::with_text`]).
    pub fn write_line(&self, format: &[FormatField], out: &mut Vec<u8>) {
        let mut extras = self.extra.iter();
        for (i, column) in format.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            let value = match column {
                FormatField::Known(field) => self.get(*field),
                FormatField::Unknown(_) => extras.next().and_then(|e| e.value.as_deref()).map(Value::Str),
            };
            match value {
                None => out.push(b'-'),
                Some(v) => v.with_text(|text| out.extend_from_slice(text.as_bytes())),
            }
        }
    }
}

record! {
    Version => version: u8,
    AccountId => account_id: String,
    InterfaceId => interface_id: String,
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
    VpcId => vpc_id: String,
    SubnetId => subnet_id: String,
    InstanceId => instance_id: String,
    TcpFlags => tcp_flags: u16,
    Type => traffic_type: TrafficType,
    PktSrcaddr => pkt_srcaddr: IpAddr,
    PktDstaddr => pkt_dstaddr: IpAddr,
    Region => region: String,
    AzId => az_id: String,
    SublocationType => sublocation_type: String,
    SublocationId => sublocation_id: String,
    PktSrcAwsService => pkt_src_aws_service: String,
    PktDstAwsService => pkt_dst_aws_service: String,
    FlowDirection => flow_direction: FlowDirection,
    TrafficPath => traffic_path: TrafficPath,
    EcsClusterArn => ecs_cluster_arn: String,
    EcsClusterName => ecs_cluster_name: String,
    EcsContainerInstanceArn => ecs_container_instance_arn: String,
    EcsContainerInstanceId => ecs_container_instance_id: String,
    EcsContainerId => ecs_container_id: String,
    EcsSecondContainerId => ecs_second_container_id: String,
    EcsServiceName => ecs_service_name: String,
    EcsTaskDefinitionArn => ecs_task_definition_arn: String,
    EcsTaskArn => ecs_task_arn: String,
    EcsTaskId => ecs_task_id: String,
    RejectReason => reject_reason: String,
    ResourceId => resource_id: String,
    EncryptionStatus => encryption_status: u8,
    InstanceTag => instance_tag: String,
    InstanceTag2 => instance_tag_2: String,
    InterfaceTag => interface_tag: String,
    InterfaceTag2 => interface_tag_2: String,
    AsgTag => asg_tag: String,
    AsgTag2 => asg_tag_2: String,
    InterfaceType => interface_type: String,
    NextHopInterfaceId => next_hop_interface_id: String,
    NextHopSubnetId => next_hop_subnet_id: String,
    NextHopAzId => next_hop_az_id: String,
    NextHopVpcId => next_hop_vpc_id: String,
    NextHopInterfaceType => next_hop_interface_type: String,
    ResourceType => resource_type: String,
    TgwId => tgw_id: String,
    TgwAttachmentId => tgw_attachment_id: String,
    TgwSrcVpcAccountId => tgw_src_vpc_account_id: String,
    TgwDstVpcAccountId => tgw_dst_vpc_account_id: String,
    TgwSrcVpcId => tgw_src_vpc_id: String,
    TgwDstVpcId => tgw_dst_vpc_id: String,
    TgwSrcSubnetId => tgw_src_subnet_id: String,
    TgwDstSubnetId => tgw_dst_subnet_id: String,
    TgwSrcEni => tgw_src_eni: String,
    TgwDstEni => tgw_dst_eni: String,
    TgwSrcAzId => tgw_src_az_id: String,
    TgwDstAzId => tgw_dst_az_id: String,
    TgwPairAttachmentId => tgw_pair_attachment_id: String,
    PacketsLostNoRoute => packets_lost_no_route: u64,
    PacketsLostBlackhole => packets_lost_blackhole: u64,
    PacketsLostMtuExceeded => packets_lost_mtu_exceeded: u64,
    PacketsLostTtlExpired => packets_lost_ttl_expired: u64,
}

/// The seconds a record covers, from its `start` and `end`: that span; its `start` when its
/// end is before its start (AWS never writes one; a damaged line may); its one time when the
/// other is `-`; `None` with neither. Searches place records in time windows by it, and a
/// value's first and last seen are its records' earliest and latest covered seconds.
pub fn covered_span(start: Option<u64>, end: Option<u64>) -> Option<(u64, u64)> {
    match (start, end) {
        (Some(s), Some(e)) => Some((s, e.max(s))),
        (Some(t), None) | (None, Some(t)) => Some((t, t)),
        (None, None) => None,
    }
}

/// Timestamps of 10^11 and more are milliseconds: flowlogs-reader met such records "contra the
/// docs" (format reference §3.5), and no real second count reaches 10^11 before the year 5138.
pub const MILLISECONDS_THRESHOLD: u64 = 100_000_000_000;

/// Seconds from seconds or milliseconds. A value that is still 10^11 or more after dividing by
/// 1000 is neither (a microsecond count, or garbage) and is refused: storing it as seconds would
/// be a wrong value, and writing it back would read as a different one.
pub fn unix_seconds(t: u64) -> Result<u64, ValueError> {
    if t < MILLISECONDS_THRESHOLD {
        Ok(t)
    } else if t / 1000 < MILLISECONDS_THRESHOLD {
        Ok(t / 1000)
    } else {
        Err(ValueError::OutOfRange {
            max: MILLISECONDS_THRESHOLD * 1000 - 1,
        })
    }
}

impl FlowRecord {
    /// Whether this record came from a Transit Gateway flow log (it carries a TGW-only field).
    pub fn is_tgw(&self) -> bool {
        self.fields.iter().any(Field::is_tgw_only)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_text_types_every_kind_and_dash_is_none() {
        let mut r = FlowRecord::default();
        r.set_text(Field::Srcaddr, "2001:db8::1").unwrap();
        r.set_text(Field::Dstport, "443").unwrap();
        r.set_text(Field::Action, "REJECT").unwrap();
        r.set_text(Field::InterfaceId, "eni-0abc").unwrap();
        r.set_text(Field::Packets, "-").unwrap();
        assert_eq!(r.get(Field::Srcaddr), Some(Value::Ip("2001:db8::1".parse().unwrap())));
        assert_eq!(r.get(Field::Dstport), Some(Value::UInt(443)));
        assert_eq!(r.get(Field::Action), Some(Value::Str("REJECT")));
        assert_eq!(r.get(Field::InterfaceId), Some(Value::Str("eni-0abc")));
        assert_eq!(r.get(Field::Packets), None);
        assert!(r.set_text(Field::Dstport, "70000").is_err());
        assert!(r.set_text(Field::Action, "MAYBE").is_err());
    }

    #[test]
    fn millisecond_times_become_seconds() {
        let mut r = FlowRecord::default();
        r.set_text(Field::Start, "1512564058000").unwrap();
        r.set_text(Field::End, "164000066").unwrap();
        assert_eq!(r.start, Some(1_512_564_058));
        assert_eq!(r.end, Some(164_000_066));
    }

    #[test]
    fn times_that_are_neither_seconds_nor_milliseconds_are_refused() {
        // Found by fuzzing: a microsecond count became "milliseconds" of the year 49900, and
        // the line the record writes read back as another time.
        let mut r = FlowRecord::default();
        assert_eq!(
            r.set_text(Field::Start, "1512564058201000"),
            Err(ValueError::OutOfRange {
                max: 99_999_999_999_999
            })
        );
        assert!(r.set_text(Field::End, "18446744073709551615").is_err());
        r.set_text(Field::Start, "99999999999999").unwrap();
        assert_eq!(r.start, Some(99_999_999_999));
    }
}
