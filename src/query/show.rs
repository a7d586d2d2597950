//! Bound filters written out for `--explain`: in the query language where it has a form (the
//! pseudo-fields, CIDRs and times as a responder writes them), in words where binding made
//! something it has none for (`time overlaps A .. B`, ranges `lo..hi`), and long value lists (an
//! IOC file) cut short, so that the plan of `addr in @iocs.txt` is one line rather than a dump
//! of a thousand byte arrays.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use super::bind::{Cond, Filter, Test};
use crate::record::Field;
use crate::time::format_seconds as time;

/// Values of a list written out before the rest is only counted.
const LISTED: usize = 5;

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::All => f.write_str("every record"),
            Filter::Or(parts) if parts.is_empty() => f.write_str("no record"),
            Filter::And(parts) => join(f, parts, " and "),
            Filter::Or(parts) => join(f, parts, " or "),
            // `f = -` binds to "not: f has a value".
            Filter::Not(inner) => match &**inner {
                Filter::Test(t) if t.negate && t.cond.is_empty() => {
                    write!(f, "{} = -", target_name(&t.fields))
                }
                Filter::Test(Test {
                    cond: Cond::TimeOverlap(0, u64::MAX),
                    ..
                }) => f.write_str("time = -"),
                inner => write!(f, "not {}", Operand(inner)),
            },
            Filter::Test(t) => t.fmt(f),
        }
    }
}

/// A filter inside another, in parentheses when it combines several.
struct Operand<'a>(&'a Filter);

impl fmt::Display for Operand<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Filter::And(parts) | Filter::Or(parts) if parts.len() > 1 => write!(f, "({})", self.0),
            other => other.fmt(f),
        }
    }
}

fn join(f: &mut fmt::Formatter<'_>, parts: &[Filter], separator: &str) -> fmt::Result {
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            f.write_str(separator)?;
        }
        write!(f, "{}", Operand(part))?;
    }
    Ok(())
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = target_name(&self.fields);
        let not = if self.negate { "!" } else { "" };
        if self.cond.is_empty() {
            // No value passes: negated, it is `target != -`, "has a value".
            return write!(f, "{target} {not}= -");
        }
        match &self.cond {
            Cond::TimeOverlap(lo, hi) => match (*lo, *hi) {
                // Every record with a time overlaps all of time.
                (0, u64::MAX) => f.write_str("time != -"),
                (0, hi) => write!(f, "time <= {}", time(hi)),
                (lo, u64::MAX) => write!(f, "time >= {}", time(lo)),
                (lo, hi) => write!(f, "time overlaps {} .. {}", time(lo), time(hi)),
            },
            Cond::Regex { regex, .. } => write!(f, "{target} {}like /{}/", negated(self.negate), regex.as_str()),
            Cond::Contains(text) => write!(f, "{target} {}like {text:?}", negated(self.negate)),
            Cond::FlagsAll(mask) => write!(f, "{target} has {mask}"),
            Cond::Words(words) => values(f, &target, not, words.iter().map(|w| format!("{w:?}"))),
            Cond::Ips(ranges) => values(f, &target, not, ranges.iter().map(|&(lo, hi)| address_range(lo, hi))),
            Cond::Numbers(ranges) => match ranges[..] {
                // One open range reads best as a comparison.
                [(0, hi)] if hi != u64::MAX && !self.negate => write!(f, "{target} <= {}", number(&self.fields, hi)),
                [(lo, u64::MAX)] if lo != 0 && !self.negate => write!(f, "{target} >= {}", number(&self.fields, lo)),
                _ => values(
                    f,
                    &target,
                    not,
                    ranges.iter().map(|&(lo, hi)| match (lo, hi) {
                        _ if lo == hi => number(&self.fields, lo),
                        (lo, u64::MAX) => format!("{}..", number(&self.fields, lo)),
                        _ => format!("{}..{}", number(&self.fields, lo), number(&self.fields, hi)),
                    }),
                ),
            },
        }
    }
}

/// `target = v`, or `target in (v1, v2, … n more)`; `not` is `!` for a negated test (`!=`,
/// `not in`).
fn values(
    f: &mut fmt::Formatter<'_>,
    target: &str,
    not: &str,
    values: impl ExactSizeIterator<Item = String>,
) -> fmt::Result {
    let count = values.len();
    if count == 1 {
        return write!(f, "{target} {not}= {}", values.collect::<String>());
    }
    let listed: Vec<String> = values.take(LISTED).collect();
    let op = if not.is_empty() { "in" } else { "not in" };
    write!(f, "{target} {op} ({}", listed.join(", "))?;
    if count > LISTED {
        write!(f, ", … {} more", count - LISTED)?;
    }
    f.write_str(")")
}

/// What a test's fields are called in a query: the pseudo-fields for address and port pairs.
pub(super) fn target_name(fields: &[Field]) -> String {
    match fields {
        [Field::Srcaddr, Field::Dstaddr] => "addr".into(),
        [Field::Srcaddr, Field::Dstaddr, Field::PktSrcaddr, Field::PktDstaddr] => "any_addr".into(),
        [Field::Srcport, Field::Dstport] => "port".into(),
        _ => fields
            .iter()
            .map(|f| f.name().replace('-', "_"))
            .collect::<Vec<_>>()
            .join("|"),
    }
}

/// A number of the test's fields: a time for `start` and `end`.
fn number(fields: &[Field], n: u64) -> String {
    if matches!(fields, [Field::Start] | [Field::End]) {
        time(n)
    } else {
        n.to_string()
    }
}

/// An address, a CIDR, or `lo..hi` for a range that is neither (IPv4 as IPv4).
fn address_range(lo: [u8; 16], hi: [u8; 16]) -> String {
    let (l, h) = (u128::from_be_bytes(lo), u128::from_be_bytes(hi));
    let show = |b: [u8; 16]| match Ipv6Addr::from(b).to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(Ipv6Addr::from(b)),
    };
    let host_bits = (l ^ h).count_ones();
    let is_prefix = (l ^ h).checked_add(1).is_none_or(u128::is_power_of_two) && l & (l ^ h) == 0;
    match show(lo) {
        _ if l == h => show(lo).to_string(),
        IpAddr::V4(v4) if is_prefix && host_bits <= 32 => format!("{v4}/{}", 32 - host_bits),
        IpAddr::V6(v6) if is_prefix => format!("{v6}/{}", 128 - host_bits),
        first => format!("{first}..{}", show(hi)),
    }
}

/// `not ` before a word of a negated test (`srcaddr not like /^10\./`).
fn negated(negate: bool) -> &'static str {
    if negate {
        "not "
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use crate::query::{bind, parse};

    fn shown(query: &str) -> String {
        let parsed = parse(query, &|_| Ok(String::new())).expect("parses");
        bind(&parsed, query).expect("binds").filter.to_string()
    }

    #[test]
    fn filters_read_back_as_queries() {
        assert_eq!(shown("addr = 10.1.9.132"), "addr = 10.1.9.132");
        assert_eq!(shown("srcaddr = 10.0.0.0/8"), "srcaddr = 10.0.0.0/8");
        assert_eq!(shown("dstaddr = 2001:db8::/32"), "dstaddr = 2001:db8::/32");
        assert_eq!(
            shown("dstport in (22, 443) and action != REJECT"),
            "dstport in (22, 443) and action != \"REJECT\""
        );
        assert_eq!(shown("bytes > 1000"), "bytes >= 1001");
        assert_eq!(shown("dstport != 0"), "dstport != 0");
        assert_eq!(shown("srcport != 22"), "srcport != 22");
        assert_eq!(
            shown("not (port = 22 or pkt_srcaddr = 1.2.3.4)"),
            "not (port = 22 or pkt_srcaddr = 1.2.3.4)"
        );
        assert_eq!(
            shown("time = 2024-04-28"),
            "time overlaps 2024-04-28T00:00:00Z .. 2024-04-28T23:59:59Z"
        );
        assert_eq!(shown("srcaddr like /^10\\./"), "srcaddr like /^10\\./");
        assert_eq!(shown("tcp_flags has SYN"), "tcp_flags has 2");
    }

    #[test]
    fn long_lists_are_cut_short() {
        let list: Vec<String> = (1..=8).map(|i| format!("10.0.0.{i}")).collect();
        assert_eq!(
            shown(&format!("addr in ({})", list.join(", "))),
            "addr in (10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4, 10.0.0.5, … 3 more)"
        );
    }
}
