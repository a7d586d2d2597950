//! Which addresses a `like /regex/` matches, when the regex only asks for the address's text
//! to begin with one of some literals (`^10\.`, `^172\.1[6-9]\.`, `^192\.168\.`, the
//! patterns of AWS's own flow-log queries): the IPv4 addresses as ranges, and whether any IPv6
//! address can match at all. An address dictionary is then searched by range, a few binary
//! searches, rather than by writing every term as text and running the regex on it: on a
//! 20 M-record index that was two thirds of the egress query's time, and writing the IPv6
//! terms alone was a fifth of its filter after that.

use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Hir, HirKind, Look};

/// The addresses whose text a literal-prefix regex matches ([`address_prefixes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressPrefixes {
    /// IPv4 addresses whose dotted-decimal text matches: inclusive ranges, ascending, disjoint.
    pub ipv4: Vec<(u32, u32)>,
    /// Whether the text of some IPv6 address may begin with one of the literals. When not, no
    /// IPv6 address matches and the regex need not run on any.
    pub ipv6: bool,
}

/// The addresses `pattern` matches, or `None` when the pattern is not `^` followed by literal
/// prefixes only (no other anchor, class or repetition that a prefix test would get wrong).
/// The regex must be parsed with the `regex` crate's default syntax, as `like` parses it.
pub fn address_prefixes(pattern: &str) -> Option<AddressPrefixes> {
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    // Every match starts at the text's start, and no other assertion (`$`, `\b`, a second `^`,
    // which the literal extractor would take for empty text) limits what the literals match.
    let unanchored = without_leading_start(&hir)?;
    if !unanchored.properties().look_set().is_empty() {
        return None;
    }
    let prefixes = Extractor::new().kind(ExtractKind::Prefix).extract(&unanchored);
    let mut ranges = Vec::new();
    let mut ipv6 = false;
    for literal in prefixes.literals()? {
        if !literal.is_exact() {
            return None;
        }
        // A literal that is not ASCII text starts no address's text.
        if let Ok(text) = std::str::from_utf8(literal.as_bytes()) {
            ranges.extend(starting_with(text));
            ipv6 |= ipv6_text_may_start_with(text);
        }
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some(last) if u64::from(lo) <= u64::from(last.1) + 1 => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    Some(AddressPrefixes { ipv4: merged, ipv6 })
}

/// Whether the text of an IPv6 address may begin with `prefix`. An address dictionary's IPv6
/// terms are written by the standard library, in lowercase hex digits and colons; it writes a
/// dotted IPv4 tail only after a colon (`::ffff:1.2.3.4`, which flowdex reads as IPv4 anyway).
/// So a prefix with any other character, or with a dot before its first colon, begins none.
fn ipv6_text_may_start_with(prefix: &str) -> bool {
    let allowed = prefix
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f' | b':' | b'.'));
    let dot_after_colon = match (prefix.find('.'), prefix.find(':')) {
        (Some(dot), Some(colon)) => colon < dot,
        (Some(_), None) => false,
        (None, _) => true,
    };
    allowed && dot_after_colon
}

/// `hir` without the `^` that begins each of its matches; `None` when some way to match does
/// not begin with one.
fn without_leading_start(hir: &Hir) -> Option<Hir> {
    match hir.kind() {
        HirKind::Look(Look::Start) => Some(Hir::empty()),
        HirKind::Concat(parts) => match parts.split_first() {
            Some((first, rest)) => Some(Hir::concat(
                std::iter::once(without_leading_start(first)?)
                    .chain(rest.iter().cloned())
                    .collect(),
            )),
            None => None,
        },
        HirKind::Capture(group) => without_leading_start(&group.sub),
        HirKind::Alternation(branches) => branches
            .iter()
            .map(without_leading_start)
            .collect::<Option<Vec<_>>>()
            .map(Hir::alternation),
        _ => None,
    }
}

/// The IPv4 addresses whose dotted-decimal text starts with `prefix`, as ranges.
fn starting_with(prefix: &str) -> Vec<(u32, u32)> {
    let parts: Vec<&str> = prefix.split('.').collect();
    let Some((partial, whole)) = parts.split_last() else {
        return Vec::new();
    };
    if parts.len() > 4 {
        return Vec::new();
    }
    // The octets the prefix gives whole must be written as addresses write them.
    let mut high = 0u32;
    for octet in whole {
        match octet.parse::<u8>() {
            Ok(v) if v.to_string() == *octet => high = high << 8 | u32::from(v),
            _ => return Vec::new(),
        }
    }
    // Bits below the octet that `partial` begins.
    let low_bits = 8 * (4 - parts.len() as u32);
    let mut out: Vec<(u32, u32)> = Vec::new();
    for v in 0..=255u32 {
        if !v.to_string().starts_with(partial) {
            continue;
        }
        let lo = (high << 8 | v) << low_bits;
        let hi = lo | ((1u64 << low_bits) - 1) as u32;
        match out.last_mut() {
            Some(last) if u64::from(last.1) + 1 == u64::from(lo) => last.1 = hi,
            _ => out.push((lo, hi)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn contains(ranges: &[(u32, u32)], ip: Ipv4Addr) -> bool {
        let n = u32::from(ip);
        ranges.iter().any(|&(lo, hi)| lo <= n && n <= hi)
    }

    #[test]
    fn the_rfc1918_patterns_of_aws_queries_are_their_networks() {
        let r = |p: &str| address_prefixes(p).expect("a prefix pattern").ipv4;
        let net = |a: [u8; 4], bits: u32| {
            let lo = u32::from(Ipv4Addr::from(a));
            (lo, lo | (u32::MAX >> bits))
        };
        assert_eq!(r(r"^10\."), vec![net([10, 0, 0, 0], 8)]);
        assert_eq!(r(r"^172\.1[6-9]\."), vec![net([172, 16, 0, 0], 14)]);
        assert_eq!(r(r"^192\.168\."), vec![net([192, 168, 0, 0], 16)]);
        assert_eq!(
            r(r"^(10|192\.168)\."),
            vec![net([10, 0, 0, 0], 8), net([192, 168, 0, 0], 16)]
        );
    }

    #[test]
    fn patterns_that_are_not_anchored_literal_prefixes_are_left_to_the_regex() {
        for p in [
            r"10\.",
            r"^10\.0\.0\.1$",
            r"^10\.\d+",
            r"^10\.\b",
            r"(?m)^10\.",
            r"^1|2",
            r"^1+\.",
            // A second anchor that the literals would not show.
            r"^1^2",
            r"^10\.\A",
            r"(?:^1){2}",
            r"^1(^|2)",
            r"\b^1",
        ] {
            assert_eq!(address_prefixes(p), None, "{p}");
        }
    }

    #[test]
    fn ranges_match_exactly_the_addresses_the_regex_matches() {
        let patterns = [
            r"^1",
            r"^10\.",
            r"^1\.2\.3\.4",
            r"^25",
            r"^0\.",
            r"^01\.",
            r"^256",
            r"^1\.2\.3\.4\.",
            r"^",
            r"^a",
            r"^(1|22)\.",
            r"^19[0-2]\.168\.1",
            r"^(?i)1\.",
            r"(^1\.)",
            r"^1\.|^22\.",
            r"^1\.2\.",
            r"^3\.4\.5\.",
            r"^::",
            r"^::ffff:10\.",
            r"^fe80",
            r"^(?i)FE",
            r"^10:",
            r"^192:168",
            r"^1:|^10\.",
            r"^64:ff9b::10\.",
        ];
        // Every first octet with assorted other octets, and addresses around the edges.
        let mut addresses: Vec<Ipv4Addr> = Vec::new();
        for a in 0..=255u8 {
            for b in [0, 1, 2, 9, 10, 19, 25, 99, 100, 168, 199, 200, 255] {
                addresses.push(Ipv4Addr::new(a, b, 3, 4));
                addresses.push(Ipv4Addr::new(a, b, 255, 45));
                addresses.push(Ipv4Addr::new(a, 2, b, 0));
                addresses.push(Ipv4Addr::new(3, 4, 5, b));
            }
        }
        let ipv6: Vec<Ipv6Addr> = [
            "::",
            "::1",
            "::1.2.3.4",
            "::ffff:10.0.0.1",
            "::ffff:0:10.0.0.1",
            "64:ff9b::10.0.0.1",
            "1::",
            "10::1",
            "100:1::",
            "192:168::1",
            "2001:db8::1",
            "fe80::1",
            "ff02::1:ff00:1",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        for p in patterns {
            let prefixes = address_prefixes(p).unwrap_or_else(|| panic!("{p} is a prefix pattern"));
            let re = regex::Regex::new(p).unwrap();
            for ip in &addresses {
                assert_eq!(
                    contains(&prefixes.ipv4, *ip),
                    re.is_match(&ip.to_string()),
                    "{p} on {ip}"
                );
            }
            if !prefixes.ipv6 {
                for ip in &ipv6 {
                    assert!(
                        !re.is_match(&ip.to_string()),
                        "{p} is said to match no IPv6 text, but matches {ip}"
                    );
                }
            }
        }
    }
}
