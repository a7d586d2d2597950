//! Typed field values: the enums AWS defines, and parsing of one field's text.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// A field's value, borrowed from a record. Enum fields are given as their AWS word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value<'a> {
    UInt(u64),
    Ip(IpAddr),
    Str(&'a str),
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::UInt(n) => write!(f, "{n}"),
            Value::Ip(ip) => write!(f, "{ip}"),
            Value::Str(s) => f.write_str(s),
        }
    }
}

impl Value<'_> {
    /// Calls `f` with the value's text as a flow log writes it (what `Display` gives), formatted
    /// on the stack: patterns run over every term of a dictionary, and building the record's
    /// line runs once per record at build time.
    pub fn with_text<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        // The longest text: an IPv6 address ending in an IPv4 one, 45 characters.
        let mut buf = [0u8; 45];
        let len = match *self {
            Value::Str(s) => return f(s),
            Value::UInt(n) => write_decimal(n, &mut buf),
            Value::Ip(IpAddr::V4(ip)) => {
                let mut len = 0;
                for (k, octet) in ip.octets().into_iter().enumerate() {
                    if k > 0 {
                        buf[len] = b'.';
                        len += 1;
                    }
                    len += write_decimal(u64::from(octet), &mut buf[len..]);
                }
                len
            }
            Value::Ip(ip) => {
                use std::io::Write as _;
                let mut rest = &mut buf[..];
                write!(rest, "{ip}").expect("an IPv6 address is at most 45 characters");
                45 - rest.len()
            }
        };
        f(std::str::from_utf8(&buf[..len]).expect("digits, dots and colons are ASCII"))
    }
}

/// Writes `n` in decimal at the start of `out` (20 bytes hold any `u64`); returns the length.
/// Digits go straight to their place: copying them from a scratch array cost a `memmove` call
/// per number.
fn write_decimal(n: u64, out: &mut [u8]) -> usize {
    // The length from a table of powers: computing each power again was most of printing a
    // record's numbers and addresses.
    let len = 1 + POWERS_OF_TEN[1..].iter().take_while(|&&p| n >= p).count();
    let mut rest = n;
    for slot in out[..len].iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    len
}

/// 10⁰ to 10¹⁹: a `u64` of `k` digits is at least `POWERS_OF_TEN[k - 1]`.
const POWERS_OF_TEN: [u64; 20] = {
    let mut powers = [1u64; 20];
    let mut k = 1;
    while k < 20 {
        powers[k] = powers[k - 1] * 10;
        k += 1;
    }
    powers
};

/// Why a field's text is not a valid value for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("not a number")]
    NotANumber,
    #[error("out of range (max {max})")]
    OutOfRange { max: u64 },
    #[error("not an IP address")]
    BadIp,
    #[error("not one of {}", expected.trim_end())]
    NotInSet { expected: &'static str },
    #[error("text holding a control character (a damaged part of the file?)")]
    ControlCharacter,
    #[error("not a valid RFC 3339 time")]
    NotATime,
}

/// A type a field's text parses into. `assign` and `assign_value` write into an existing slot so
/// that text fields reuse their buffer from one record to the next.
pub trait FieldType: Sized {
    fn parse(text: &str) -> Result<Self, ValueError>;
    fn value(&self) -> Value<'_>;

    /// The inverse of [`FieldType::value`].
    fn from_value(value: Value<'_>) -> Result<Self, ValueError>;

    /// The largest value of a number type; `None` for other types.
    fn max_number() -> Option<u64> {
        None
    }

    fn assign(slot: &mut Option<Self>, text: &str) -> Result<(), ValueError> {
        *slot = if text == "-" { None } else { Some(Self::parse(text)?) };
        Ok(())
    }

    fn assign_value(slot: &mut Option<Self>, value: Option<Value<'_>>) -> Result<(), ValueError> {
        *slot = value.map(Self::from_value).transpose()?;
        Ok(())
    }
}

/// Parses decimal ASCII digits without sign or spaces, refusing anything above `max`.
pub fn parse_decimal(text: &str, max: u64) -> Result<u64, ValueError> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() > 20 {
        return Err(if bytes.iter().all(u8::is_ascii_digit) && !bytes.is_empty() {
            ValueError::OutOfRange { max }
        } else {
            ValueError::NotANumber
        });
    }
    let mut n: u64 = 0;
    for &b in bytes {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Err(ValueError::NotANumber);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d)))
            .ok_or(ValueError::OutOfRange { max })?;
    }
    if n > max {
        return Err(ValueError::OutOfRange { max });
    }
    Ok(n)
}

macro_rules! uint_type {
    ($($t:ty),*) => {$(
        impl FieldType for $t {
            fn parse(text: &str) -> Result<Self, ValueError> {
                // The cast cannot truncate: parse_decimal refused anything above MAX.
                parse_decimal(text, <$t>::MAX as u64).map(|n| n as $t)
            }
            fn value(&self) -> Value<'_> {
                Value::UInt(u64::from(*self))
            }
            fn from_value(value: Value<'_>) -> Result<Self, ValueError> {
                match value {
                    Value::UInt(n) => <$t>::try_from(n).map_err(|_| ValueError::OutOfRange { max: <$t>::MAX as u64 }),
                    _ => Err(ValueError::NotANumber),
                }
            }
            fn max_number() -> Option<u64> {
                Some(<$t>::MAX as u64)
            }
        }
    )*};
}
uint_type!(u8, u16, u64);

impl FieldType for IpAddr {
    fn parse(text: &str) -> Result<Self, ValueError> {
        parse_ip(text).ok_or(ValueError::BadIp)
    }
    fn value(&self) -> Value<'_> {
        Value::Ip(*self)
    }
    fn from_value(value: Value<'_>) -> Result<Self, ValueError> {
        match value {
            Value::Ip(ip) => Ok(ip),
            _ => Err(ValueError::BadIp),
        }
    }
}

/// Parses an IP literal. Dotted-quad IPv4 (the common case) has a fast path; everything else
/// (IPv6 in any RFC 5952 form) goes through the standard library.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    parse_ipv4(text.as_bytes())
        .map(IpAddr::V4)
        // An IPv4-mapped address (`::ffff:a.b.c.d`) is the IPv4 address it maps, as the index
        // stores it and a query names it: the record is the same whichever way it is read.
        .or_else(|| text.parse::<IpAddr>().ok().map(|ip| ip.to_canonical()))
}

/// Dotted-quad IPv4 in one pass over the bytes: four parsed lines of a v5 record hold four
/// addresses, and a loop per octet with its own bounds checks cost twice as much.
fn parse_ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    if b.len() < 7 || b.len() > 15 {
        return None;
    }
    let mut octets = [0u8; 4];
    let (mut k, mut n, mut digits) = (0, 0u32, 0);
    for &c in b {
        if c == b'.' {
            if digits == 0 || k == 3 {
                return None;
            }
            octets[k] = n as u8;
            (k, n, digits) = (k + 1, 0, 0);
            continue;
        }
        let d = c.wrapping_sub(b'0');
        // Leading zeros are refused, as the standard library does (they read as octal
        // elsewhere); no octet has a fourth digit or a value above 255.
        if d > 9 || (digits == 1 && n == 0) || digits == 3 {
            return None;
        }
        n = n * 10 + u32::from(d);
        digits += 1;
        if n > 255 {
            return None;
        }
    }
    if digits == 0 || k != 3 {
        return None;
    }
    octets[3] = n as u8;
    Some(Ipv4Addr::from(octets))
}

/// Text values are IDs, names and tags: a control character (a NUL from a zero-filled part of a
/// damaged file) is damage, not part of a value a responder could search for.
pub fn check_text(text: &str) -> Result<(), ValueError> {
    // A fold, not `any`: without an early exit the compiler checks many bytes at a time.
    match text.bytes().fold(false, |seen, b| seen | (b < 0x20) | (b == 0x7f)) {
        true => Err(ValueError::ControlCharacter),
        false => Ok(()),
    }
}

impl FieldType for String {
    fn parse(text: &str) -> Result<Self, ValueError> {
        check_text(text)?;
        Ok(text.to_owned())
    }
    fn value(&self) -> Value<'_> {
        Value::Str(self)
    }
    fn from_value(value: Value<'_>) -> Result<Self, ValueError> {
        Ok(value.to_string())
    }
    fn assign_value(slot: &mut Option<Self>, value: Option<Value<'_>>) -> Result<(), ValueError> {
        match (slot.as_mut(), value) {
            (Some(s), Some(Value::Str(text))) => {
                s.clear();
                s.push_str(text);
            }
            (_, value) => *slot = value.map(Self::from_value).transpose()?,
        }
        Ok(())
    }
    fn assign(slot: &mut Option<Self>, text: &str) -> Result<(), ValueError> {
        check_text(text)?;
        if text == "-" {
            *slot = None;
        } else if let Some(s) = slot {
            s.clear();
            s.push_str(text);
        } else {
            *slot = Some(text.to_owned());
        }
        Ok(())
    }
}

macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident { $( $variant:ident = $word:literal ),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $( $variant, )* }

        impl $name {
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )* ];

            /// The word AWS writes for this value.
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $word, )* }
            }
        }

        impl FieldType for $name {
            fn parse(text: &str) -> Result<Self, ValueError> {
                match text {
                    $( $word => Ok($name::$variant), )*
                    _ => Err(ValueError::NotInSet { expected: concat!($( $word, " " ),*) }),
                }
            }
            fn value(&self) -> Value<'_> {
                Value::Str(self.as_str())
            }
            fn from_value(value: Value<'_>) -> Result<Self, ValueError> {
                match value {
                    Value::Str(s) => Self::parse(s),
                    _ => Err(ValueError::NotInSet { expected: concat!($( $word, " " ),*) }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word_enum!(
    /// `action`: whether security groups and network ACLs let the traffic through.
    Action { Accept = "ACCEPT", Reject = "REJECT" }
);
word_enum!(
    /// `log-status`: whether the interval was logged normally.
    LogStatus { Ok = "OK", NoData = "NODATA", SkipData = "SKIPDATA" }
);
word_enum!(
    /// `flow-direction`, relative to the interface that captured the traffic.
    FlowDirection { Ingress = "ingress", Egress = "egress" }
);
word_enum!(
    /// `type`: the kind of traffic.
    TrafficType { Ipv4 = "IPv4", Ipv6 = "IPv6", Efa = "EFA" }
);

/// `traffic-path`: the path egress traffic takes to its destination. AWS documents codes 1 to 8;
/// the raw code is kept so that a code added later is not lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrafficPath(pub u8);

impl TrafficPath {
    /// AWS's description of the code, when it documents one.
    pub fn description(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "through another resource in the same VPC",
            2 => "through an internet gateway or a gateway VPC endpoint",
            3 => "through a virtual private gateway",
            4 => "through an intra-region VPC peering connection",
            5 => "through an inter-region VPC peering connection",
            6 => "through a local gateway",
            7 => "through a gateway VPC endpoint (Nitro-based instances only)",
            8 => "through an internet gateway (Nitro-based instances only)",
            _ => return None,
        })
    }
}

impl FieldType for TrafficPath {
    fn parse(text: &str) -> Result<Self, ValueError> {
        u8::parse(text).map(TrafficPath)
    }
    fn value(&self) -> Value<'_> {
        Value::UInt(u64::from(self.0))
    }
    fn from_value(value: Value<'_>) -> Result<Self, ValueError> {
        u8::from_value(value).map(TrafficPath)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_text_gives_what_display_gives() {
        let mut numbers = vec![0, 1, 9, 10, 99, 100, 255, 1_000_000, u64::MAX - 1, u64::MAX];
        numbers.extend((0..20).map(|k| 10u64.pow(k)));
        numbers.extend((1..20).map(|k| 10u64.pow(k) - 1));
        let ips = [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.100.9",
            "::",
            "2001:db8::1",
            "::ffff:192.0.2.1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "0:0:0:0:0:ffff:255.255.255.255",
        ];
        let values = numbers
            .into_iter()
            .map(Value::UInt)
            .chain(ips.iter().map(|ip| Value::Ip(ip.parse().unwrap())))
            // Every octet, in every place.
            .chain(
                (0..=255u8).map(|o| Value::Ip(std::net::Ipv4Addr::new(o, 255 - o, o ^ 0xa5, o.wrapping_mul(7)).into())),
            )
            .chain([Value::Str("eni-0abc"), Value::Str("")]);
        for v in values {
            assert_eq!(v.with_text(str::to_owned), v.to_string(), "{v:?}");
        }
    }

    #[test]
    fn ipv4_fast_path_agrees_with_std() {
        for s in [
            "10.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "256.1.1.1",
            "1..2.3",
            "1.2.3.4 ",
            "a.b.c.d",
            "1.2.3.-",
            "99999999999",
            "1.2.3.4444444",
        ] {
            assert_eq!(parse_ipv4(s.as_bytes()), s.parse().ok(), "{s}");
        }
        // Strings of digits and dots, most of them near-addresses: the same answer as std.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            let mut s = String::new();
            let len = 5 + x % 12;
            for _ in 0..len {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                s.push(b"0123456789.2.5"[(x >> 59) as usize % 14] as char);
            }
            assert_eq!(parse_ipv4(s.as_bytes()), s.parse().ok(), "{s}");
        }
    }

    #[test]
    fn decimal_limits() {
        assert_eq!(parse_decimal("65535", 65535), Ok(65535));
        assert_eq!(
            parse_decimal("65536", 65535),
            Err(ValueError::OutOfRange { max: 65535 })
        );
        assert_eq!(
            parse_decimal("18446744073709551616", u64::MAX),
            Err(ValueError::OutOfRange { max: u64::MAX })
        );
        assert_eq!(parse_decimal("-1", 10), Err(ValueError::NotANumber));
        assert_eq!(parse_decimal("", 10), Err(ValueError::NotANumber));
    }
}
