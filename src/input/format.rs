//! A flow log's field order: from an S3 header line, from an AWS format string
//! (`${version} ${account-id} ...`), or one of AWS's default formats.

use std::fmt;
use std::sync::Arc;

use crate::record::{Field, FieldSet, FormatField};

/// The ordered fields of a flow log, as its header or format string names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFormat {
    columns: Vec<FormatField>,
    known: FieldSet,
}

/// Why a header line or format string is not a usable log format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("the format names no fields")]
    Empty,
    #[error("field `{0}` appears twice")]
    Duplicate(String),
    #[error("`{name}` is not a field name (names are lowercase letters, digits and `-`){hint}")]
    BadName { name: String, hint: String },
}

/// The version 2 default format, used for headerless input when no `--log-format` is given.
pub const DEFAULT_V2: &str = "version account-id interface-id srcaddr dstaddr srcport dstport \
     protocol packets bytes start end action log-status";

/// The Transit Gateway default format.
pub const DEFAULT_TGW: &str = "version resource-type account-id tgw-id tgw-attachment-id \
     tgw-src-vpc-account-id tgw-dst-vpc-account-id tgw-src-vpc-id tgw-dst-vpc-id tgw-src-subnet-id \
     tgw-dst-subnet-id tgw-src-eni tgw-dst-eni tgw-src-az-id tgw-dst-az-id tgw-pair-attachment-id \
     srcaddr dstaddr srcport dstport protocol packets bytes start end log-status type \
     packets-lost-no-route packets-lost-blackhole packets-lost-mtu-exceeded \
     packets-lost-ttl-expired tcp-flags region flow-direction pkt-src-aws-service \
     pkt-dst-aws-service";

impl LogFormat {
    /// Parses a format given as names (`version account-id ...`, a header line) or as AWS
    /// format-string tokens (`${version} ${account-id} ...`, also Terraform's `$${...}`),
    /// separated by runs of white space.
    pub fn parse(text: &str) -> Result<LogFormat, FormatError> {
        LogFormat::from_names(text.split_ascii_whitespace())
    }

    /// Builds a format from field names (bare or `${name}`).
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<LogFormat, FormatError> {
        let mut columns = Vec::new();
        let mut known = FieldSet::EMPTY;
        let mut unknown_names: Vec<Arc<str>> = Vec::new();
        for raw in names {
            let name = strip_format_token(raw);
            if !is_plausible_name(name) {
                let hint = crate::record::nearest_name(name, Field::ALL.iter().map(|f| f.name()))
                    .map(|field| format!("; did you mean `{field}`?"))
                    .unwrap_or_default();
                return Err(FormatError::BadName {
                    name: raw.to_owned(),
                    hint,
                });
            }
            match Field::from_name(name) {
                Some(field) => {
                    if known.contains(field) {
                        return Err(FormatError::Duplicate(name.to_owned()));
                    }
                    known.insert(field);
                    columns.push(FormatField::Known(field));
                }
                None => {
                    if unknown_names.iter().any(|u| &**u == name) {
                        return Err(FormatError::Duplicate(name.to_owned()));
                    }
                    let name: Arc<str> = name.into();
                    unknown_names.push(name.clone());
                    columns.push(FormatField::Unknown(name));
                }
            }
        }
        if columns.is_empty() {
            return Err(FormatError::Empty);
        }
        Ok(LogFormat { columns, known })
    }

    /// AWS's version 2 default format. Every headerless source starts with it, so it is parsed
    /// once per process.
    pub fn default_v2() -> LogFormat {
        static V2: std::sync::LazyLock<LogFormat> =
            std::sync::LazyLock::new(|| LogFormat::parse(DEFAULT_V2).expect("the v2 default format parses"));
        V2.clone()
    }

    /// AWS's Transit Gateway default format.
    pub fn default_tgw() -> LogFormat {
        LogFormat::parse(DEFAULT_TGW).expect("the TGW default format parses")
    }

    /// Every VPC field up to and including `version`, in AWS table order (what the console
    /// offers as "all fields" for that version).
    pub fn vpc_up_to_version(version: u8) -> LogFormat {
        LogFormat::from_names(
            Field::ALL
                .iter()
                .filter(|f| !f.is_tgw_only() && f.version() <= version)
                .map(|f| f.name()),
        )
        .expect("field names are valid")
    }

    pub fn columns(&self) -> &[FormatField] {
        &self.columns
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The known fields the format carries.
    pub fn known_fields(&self) -> FieldSet {
        self.known
    }

    /// The names of the format's columns that are no field flowdex knows, in order.
    pub fn unknown_names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().filter_map(|c| match c {
            FormatField::Unknown(name) => Some(&**name),
            FormatField::Known(_) => None,
        })
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.columns.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(c.name())?;
        }
        Ok(())
    }
}

fn strip_format_token(token: &str) -> &str {
    let t = token.strip_prefix('$').unwrap_or(token);
    let t = t.strip_prefix('$').unwrap_or(t);
    t.strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap_or(token)
}

fn is_plausible_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// Whether a line's first token may start a header line: a known field name, bare or as a
/// `${...}` token. Records mostly start with a number, an ID, an address, an upper-case word or
/// `-`, but a free-text field may hold a field's name: the line parser decides
/// (`LineParser::line`).
pub fn starts_like_header(first_token: &str) -> bool {
    let first = first_token.as_bytes().first().copied().unwrap_or(b'0');
    (first.is_ascii_lowercase() || first == b'$') && Field::from_name(strip_format_token(first_token)).is_some()
}

/// How many of a line's words name fields flowdex knows, and how many words it has.
pub fn known_names(line: &str) -> (usize, usize) {
    line.split_ascii_whitespace().fold((0, 0), |(known, words), word| {
        let is_known = Field::from_name(strip_format_token(word)).is_some();
        (known + usize::from(is_known), words + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_string_and_header_agree() {
        let a = LogFormat::parse("${version} ${account-id} ${interface-id}").unwrap();
        let b = LogFormat::parse("version  account-id interface-id").unwrap();
        let c = LogFormat::parse("$${version} $${account-id} $${interface-id}").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.len(), 3);
    }

    #[test]
    fn unknown_names_are_kept_duplicates_refused() {
        let f = LogFormat::parse("srcaddr future-field-x dstaddr").unwrap();
        assert_eq!(f.columns()[1], FormatField::Unknown("future-field-x".into()));
        assert_eq!(
            LogFormat::parse("srcaddr srcaddr"),
            Err(FormatError::Duplicate("srcaddr".into()))
        );
        assert!(matches!(
            LogFormat::parse("srcaddr Bad"),
            Err(FormatError::BadName { .. })
        ));
        assert_eq!(LogFormat::parse("  "), Err(FormatError::Empty));
    }

    #[test]
    fn defaults_have_aws_field_counts() {
        assert_eq!(LogFormat::default_v2().len(), 14);
        assert_eq!(LogFormat::default_tgw().len(), 36);
        assert_eq!(LogFormat::vpc_up_to_version(5).len(), 29);
        assert_eq!(LogFormat::vpc_up_to_version(7).len(), 39);
        assert_eq!(LogFormat::vpc_up_to_version(8).len(), 40);
        assert_eq!(LogFormat::vpc_up_to_version(11).len(), 54);
    }

    #[test]
    fn header_detection() {
        assert!(starts_like_header("version"));
        assert!(starts_like_header("instance-id"));
        assert!(starts_like_header("${srcaddr}"));
        assert!(!starts_like_header("2"));
        assert!(!starts_like_header("eni-123"));
        assert!(!starts_like_header("-"));
        assert!(!starts_like_header("ACCEPT"));
    }
}
