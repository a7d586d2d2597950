//! What a segment's columns are: one per flow-log field (column id = field id) plus the
//! columns every record has (format, source, line, unknown fields); which fields get postings;
//! how enum values are coded; how many records a block holds (`index-format.md`, "Columns").

use crate::record::{Action, Field, FieldKind, FlowDirection, LogStatus, TrafficType};

/// Records per block a writer makes. Small enough that a needle query decompresses little
/// around each hit, large enough that per-block overhead (column headers, zstd frames, index
/// entries) stays a few percent (index-format.md, "Why these choices": 4096 → 1024 made a
/// 195-record needle 2.5x faster for 3 % more index).
pub const BLOCK_RECORDS: usize = 1024;

/// Column ids 0..72 are fields; these follow.
pub const FORMAT_COLUMN: usize = 128;
pub const SOURCE_COLUMN: usize = 129;
pub const LINE_COLUMN: usize = 130;
pub const EXTRAS_COLUMN: usize = 131;
pub const ORIGINAL_LINE_COLUMN: usize = 132;
pub const COLUMN_COUNT: usize = 133;

/// Tag of a format position that is a known field (its id follows).
pub const FORMAT_KNOWN: u8 = 0;
/// Tag of a format position this version does not know (its name follows).
pub const FORMAT_UNKNOWN: u8 = 1;

/// First byte of a stored original line: the whole line follows.
pub const ORIGINAL_WHOLE: u8 = 0;
/// First byte of a stored original line: what follows goes before the written line.
pub const ORIGINAL_PREFIX: u8 = 1;

/// The original line from a stored original-line value and the line the record writes.
pub fn original_line(stored: Option<&[u8]>, written: Vec<u8>) -> Option<Vec<u8>> {
    match stored {
        None => Some(written),
        Some([ORIGINAL_WHOLE, line @ ..]) => Some(line.to_vec()),
        Some([ORIGINAL_PREFIX, prefix @ ..]) => Some([prefix, &written].concat()),
        Some(_) => None,
    }
}

/// A column of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Column {
    Field(Field),
    /// Number of the record's format in the formats table (which fields its line carried).
    Format,
    /// Source id (the manifest's `sources[].id`).
    Source,
    /// Line in the source (event number for JSON sources).
    Line,
    /// Values of fields this version does not know, dictionary-coded.
    Extras,
    /// The source line, for records whose line is not the one [`FlowRecord::write_line`]
    /// writes for them (byte strings; null when the written line is the original).
    ///
    /// [`FlowRecord::write_line`]: crate::record::FlowRecord::write_line
    OriginalLine,
}

impl Column {
    pub fn id(self) -> usize {
        match self {
            Column::Field(f) => usize::from(f.id()),
            Column::Format => FORMAT_COLUMN,
            Column::Source => SOURCE_COLUMN,
            Column::Line => LINE_COLUMN,
            Column::Extras => EXTRAS_COLUMN,
            Column::OriginalLine => ORIGINAL_LINE_COLUMN,
        }
    }

    pub fn from_id(id: usize) -> Option<Column> {
        match id {
            FORMAT_COLUMN => Some(Column::Format),
            SOURCE_COLUMN => Some(Column::Source),
            LINE_COLUMN => Some(Column::Line),
            EXTRAS_COLUMN => Some(Column::Extras),
            ORIGINAL_LINE_COLUMN => Some(Column::OriginalLine),
            _ => u8::try_from(id).ok().and_then(Field::from_id).map(Column::Field),
        }
    }

    /// Every column in id order.
    pub fn all() -> impl Iterator<Item = Column> {
        (0..COLUMN_COUNT).filter_map(Column::from_id)
    }

    pub fn name(self) -> &'static str {
        match self {
            Column::Field(f) => f.name(),
            Column::Format => "(format)",
            Column::Source => "(source)",
            Column::Line => "(line)",
            Column::Extras => "(unknown fields)",
            Column::OriginalLine => "(original line)",
        }
    }

    /// The column whose dictionary and postings this one's may share (`index-format.md`,
    /// "Twins"): a packet-level address is the interface's own address unless a NAT gateway,
    /// a secondary address or a middlebox came between, so the two usually hold the same
    /// terms and records.
    pub fn twin_base(self) -> Option<Column> {
        match self {
            Column::Field(Field::PktSrcaddr) => Some(Column::Field(Field::Srcaddr)),
            Column::Field(Field::PktDstaddr) => Some(Column::Field(Field::Dstaddr)),
            _ => None,
        }
    }

    /// Whether the column stores term numbers of its dictionary (addresses, text, extras)
    /// rather than values.
    pub fn stores_term_numbers(self) -> bool {
        match self {
            Column::Field(f) => matches!(f.kind(), FieldKind::Ip | FieldKind::Text),
            Column::Extras => true,
            _ => false,
        }
    }
}

/// Fields with a posting per distinct value: what responders filter on.
pub const POSTING_FIELDS: &[Field] = &[
    Field::AccountId,
    Field::InterfaceId,
    Field::Srcaddr,
    Field::Dstaddr,
    Field::Srcport,
    Field::Dstport,
    Field::Protocol,
    Field::Action,
    Field::LogStatus,
    Field::VpcId,
    Field::SubnetId,
    Field::InstanceId,
    Field::TcpFlags,
    Field::Type,
    Field::PktSrcaddr,
    Field::PktDstaddr,
    Field::Region,
    Field::FlowDirection,
    Field::TrafficPath,
    Field::ResourceType,
    Field::TgwId,
    Field::TgwAttachmentId,
    Field::TgwSrcVpcAccountId,
    Field::TgwDstVpcAccountId,
    Field::TgwSrcVpcId,
    Field::TgwDstVpcId,
    Field::TgwSrcSubnetId,
    Field::TgwDstSubnetId,
    Field::TgwSrcEni,
    Field::TgwDstEni,
    Field::TgwPairAttachmentId,
];

/// The word of an enum field's stored code.
pub fn enum_word(field: Field, code: u64) -> Option<&'static str> {
    let i = usize::try_from(code).ok()?;
    match field {
        Field::Action => Action::ALL.get(i).map(|v| v.as_str()),
        Field::LogStatus => LogStatus::ALL.get(i).map(|v| v.as_str()),
        Field::FlowDirection => FlowDirection::ALL.get(i).map(|v| v.as_str()),
        Field::Type => TrafficType::ALL.get(i).map(|v| v.as_str()),
        _ => None,
    }
}
