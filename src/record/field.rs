//! The fields AWS defines for VPC and Transit Gateway flow logs, with stable numeric ids.
//!
//! A field's id is its position in [`Field::ALL`]. Ids are shared by the record model, the on-disk
//! format and the query language, so new fields are only ever appended.

use std::fmt;

/// How a field's text is typed in [`FlowRecord`](super::FlowRecord).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// An unsigned integer (ports, counters, times, bitmasks, small codes).
    UInt,
    /// An IPv4 or IPv6 address.
    Ip,
    /// One of a closed set of words (action, log-status, flow-direction, type).
    Enum,
    /// An identifier or free word kept as text (ENI, VPC, account, ARN, tag, ...).
    Text,
}

macro_rules! fields {
    ($( $variant:ident = $name:literal, $kind:ident, $version:literal; )*) => {
        /// A flow-log field, named as in the AWS format string (`${srcaddr}` is `Field::Srcaddr`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Field { $( $variant, )* }

        impl Field {
            /// Every field, in id order: the VPC fields in AWS table order (versions 2 to 11),
            /// then the fields only Transit Gateway flow logs carry (version 6).
            pub const ALL: &'static [Field] = &[ $( Field::$variant, )* ];

            /// The AWS name, as in a header line or a `${...}` format token.
            pub fn name(self) -> &'static str {
                match self { $( Field::$variant => $name, )* }
            }

            /// Looks a field up by its AWS name (`pkt-srcaddr`). Exact match only: the query
            /// language does its own forgiving lookup ([`Field::lookup`]). Every source's header
            /// comes through here, so it is a `match` rather than a scan of [`Field::ALL`].
            pub fn from_name(name: &str) -> Option<Field> {
                match name { $( $name => Some(Field::$variant), )* _ => None }
            }

            /// How the field's value is typed.
            pub fn kind(self) -> FieldKind {
                match self { $( Field::$variant => FieldKind::$kind, )* }
            }

            /// The flow-log version that introduced the field.
            pub fn version(self) -> u8 {
                match self { $( Field::$variant => $version, )* }
            }
        }
    };
}

fields! {
    Version = "version", UInt, 2;
    AccountId = "account-id", Text, 2;
    InterfaceId = "interface-id", Text, 2;
    Srcaddr = "srcaddr", Ip, 2;
    Dstaddr = "dstaddr", Ip, 2;
    Srcport = "srcport", UInt, 2;
    Dstport = "dstport", UInt, 2;
    Protocol = "protocol", UInt, 2;
    Packets = "packets", UInt, 2;
    Bytes = "bytes", UInt, 2;
    Start = "start", UInt, 2;
    End = "end", UInt, 2;
    Action = "action", Enum, 2;
    LogStatus = "log-status", Enum, 2;
    VpcId = "vpc-id", Text, 3;
    SubnetId = "subnet-id", Text, 3;
    InstanceId = "instance-id", Text, 3;
    TcpFlags = "tcp-flags", UInt, 3;
    Type = "type", Enum, 3;
    PktSrcaddr = "pkt-srcaddr", Ip, 3;
    PktDstaddr = "pkt-dstaddr", Ip, 3;
    Region = "region", Text, 4;
    AzId = "az-id", Text, 4;
    SublocationType = "sublocation-type", Text, 4;
    SublocationId = "sublocation-id", Text, 4;
    PktSrcAwsService = "pkt-src-aws-service", Text, 5;
    PktDstAwsService = "pkt-dst-aws-service", Text, 5;
    FlowDirection = "flow-direction", Enum, 5;
    TrafficPath = "traffic-path", UInt, 5;
    EcsClusterArn = "ecs-cluster-arn", Text, 7;
    EcsClusterName = "ecs-cluster-name", Text, 7;
    EcsContainerInstanceArn = "ecs-container-instance-arn", Text, 7;
    EcsContainerInstanceId = "ecs-container-instance-id", Text, 7;
    EcsContainerId = "ecs-container-id", Text, 7;
    EcsSecondContainerId = "ecs-second-container-id", Text, 7;
    EcsServiceName = "ecs-service-name", Text, 7;
    EcsTaskDefinitionArn = "ecs-task-definition-arn", Text, 7;
    EcsTaskArn = "ecs-task-arn", Text, 7;
    EcsTaskId = "ecs-task-id", Text, 7;
    RejectReason = "reject-reason", Text, 8;
    ResourceId = "resource-id", Text, 9;
    EncryptionStatus = "encryption-status", UInt, 10;
    InstanceTag = "instance-tag", Text, 11;
    InstanceTag2 = "instance-tag-2", Text, 11;
    InterfaceTag = "interface-tag", Text, 11;
    InterfaceTag2 = "interface-tag-2", Text, 11;
    AsgTag = "asg-tag", Text, 11;
    AsgTag2 = "asg-tag-2", Text, 11;
    InterfaceType = "interface-type", Text, 11;
    NextHopInterfaceId = "next-hop-interface-id", Text, 11;
    NextHopSubnetId = "next-hop-subnet-id", Text, 11;
    NextHopAzId = "next-hop-az-id", Text, 11;
    NextHopVpcId = "next-hop-vpc-id", Text, 11;
    NextHopInterfaceType = "next-hop-interface-type", Text, 11;
    ResourceType = "resource-type", Text, 6;
    TgwId = "tgw-id", Text, 6;
    TgwAttachmentId = "tgw-attachment-id", Text, 6;
    TgwSrcVpcAccountId = "tgw-src-vpc-account-id", Text, 6;
    TgwDstVpcAccountId = "tgw-dst-vpc-account-id", Text, 6;
    TgwSrcVpcId = "tgw-src-vpc-id", Text, 6;
    TgwDstVpcId = "tgw-dst-vpc-id", Text, 6;
    TgwSrcSubnetId = "tgw-src-subnet-id", Text, 6;
    TgwDstSubnetId = "tgw-dst-subnet-id", Text, 6;
    TgwSrcEni = "tgw-src-eni", Text, 6;
    TgwDstEni = "tgw-dst-eni", Text, 6;
    TgwSrcAzId = "tgw-src-az-id", Text, 6;
    TgwDstAzId = "tgw-dst-az-id", Text, 6;
    TgwPairAttachmentId = "tgw-pair-attachment-id", Text, 6;
    PacketsLostNoRoute = "packets-lost-no-route", UInt, 6;
    PacketsLostBlackhole = "packets-lost-blackhole", UInt, 6;
    PacketsLostMtuExceeded = "packets-lost-mtu-exceeded", UInt, 6;
    PacketsLostTtlExpired = "packets-lost-ttl-expired", UInt, 6;
}

impl Field {
    /// The stable id (position in [`Field::ALL`]).
    pub fn id(self) -> u8 {
        self as u8
    }

    /// The field with this id, if any.
    pub fn from_id(id: u8) -> Option<Field> {
        Field::ALL.get(usize::from(id)).copied()
    }

    /// Looks a field up the way people type it: case-insensitive, with `-`, `_` or camelCase
    /// (`pkt_srcaddr`, `pktSrcaddr`, `interfaceId`, `LOG-STATUS`).
    pub fn lookup(name: &str) -> Option<Field> {
        let folded = fold_name(name);
        Field::ALL.iter().copied().find(|f| fold_name(f.name()) == folded)
    }

    /// The key used for the field in JSON and CSV output: the AWS name with `_` for `-`.
    pub fn key(self) -> &'static str {
        FIELD_KEYS[usize::from(self.id())]
    }

    /// Whether the field is one a Transit Gateway flow log carries and a VPC flow log does not.
    pub fn is_tgw_only(self) -> bool {
        self >= Field::ResourceType
    }
}

/// A field name as names are compared: lower case, without `-` and `_` (`srcAddr`,
/// `src-addr` and `SRC_ADDR` are one name).
pub fn fold_name(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '-' && *c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The candidate nearest to `name` (a typo of it), compared as field names are; `None` when
/// none is within a few edits.
pub fn nearest_name<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let folded = fold_name(name);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&folded, &fold_name(c)), c))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, _)| *d <= 2.max(folded.len() / 4))
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

static FIELD_KEYS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    Field::ALL
        .iter()
        .map(|f| &*Box::leak(f.name().replace('-', "_").into_boxed_str()))
        .collect()
});

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of fields, as a bitmask over field ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FieldSet(u128);

impl FieldSet {
    pub const EMPTY: FieldSet = FieldSet(0);

    pub fn insert(&mut self, field: Field) {
        self.0 |= 1u128 << field.id();
    }

    pub fn contains(self, field: Field) -> bool {
        self.0 & (1u128 << field.id()) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The fields in the set, in id order. Walks the set bits only: the segment builder asks
    /// every record for its fields new to the segment, almost always none.
    pub fn iter(self) -> impl Iterator<Item = Field> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let id = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Some(Field::ALL[id])
        })
    }

    pub fn bits(self) -> u128 {
        self.0
    }

    pub fn from_bits(bits: u128) -> FieldSet {
        let all = (1u128 << Field::ALL.len()) - 1;
        FieldSet(bits & all)
    }
}

impl FromIterator<Field> for FieldSet {
    fn from_iter<I: IntoIterator<Item = Field>>(iter: I) -> Self {
        let mut set = FieldSet::EMPTY;
        for f in iter {
            set.insert(f);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_positions_and_names_unique() {
        for (i, f) in Field::ALL.iter().enumerate() {
            assert_eq!(usize::from(f.id()), i);
            assert_eq!(Field::from_id(f.id()), Some(*f));
            assert_eq!(Field::from_name(f.name()), Some(*f));
        }
        assert_eq!(Field::ALL.len(), 72);
        assert!(Field::ALL.len() <= 128, "FieldSet is a u128");
    }

    #[test]
    fn a_field_set_iterates_its_fields_in_id_order() {
        let mut set = FieldSet::EMPTY;
        assert_eq!(set.iter().count(), 0);
        let picked: Vec<Field> = Field::ALL.iter().copied().filter(|f| f.id() % 3 != 1).collect();
        for f in &picked {
            set.insert(*f);
        }
        assert_eq!(set.iter().collect::<Vec<_>>(), picked);
        let all = FieldSet::from_bits(u128::MAX);
        assert_eq!(all.iter().collect::<Vec<_>>(), Field::ALL);
    }

    #[test]
    fn lookup_accepts_the_spellings_people_use() {
        assert_eq!(Field::lookup("srcAddr"), Some(Field::Srcaddr));
        assert_eq!(Field::lookup("pkt_srcaddr"), Some(Field::PktSrcaddr));
        assert_eq!(Field::lookup("interfaceId"), Some(Field::InterfaceId));
        assert_eq!(Field::lookup("LOG-STATUS"), Some(Field::LogStatus));
        assert_eq!(Field::lookup("flow_direction"), Some(Field::FlowDirection));
        assert_eq!(Field::lookup("dstprt"), None);
        assert_eq!(Field::TgwSrcVpcId.key(), "tgw_src_vpc_id");
    }
}
