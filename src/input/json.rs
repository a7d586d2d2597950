//! JSON deliveries, streamed without holding the document: `aws logs get-log-events` and
//! `filter-log-events` output (`events[].message`), subscription payloads (`logEvents[]`), Lambda
//! events (`awslogs.data`, base64 gzip), Firehose records (`{"message": ...}`, with or without a
//! newline between them) and Firehose transform events (`records[].data`, base64). Top-level
//! values may be concatenated, newline-separated or wrapped in an array.

use std::fmt;
use std::io::{BufRead, Read};

use base64::Engine;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// What the walker finds in the JSON.
pub(crate) enum JsonItem {
    /// One flow-log record line (a log event's `message`).
    Message(String),
    /// A base64 `data` payload, decoded: gzip or text to be read again.
    Payload(Vec<u8>),
}

/// Reads every top-level JSON value of `reader` and hands its items to `f`. Stops at the first
/// syntax error, returning it (items before it were handed out).
pub(crate) fn walk_values(reader: &mut dyn BufRead, f: &mut dyn FnMut(JsonItem)) -> Result<(), serde_json::Error> {
    loop {
        // Skip white space between values; stop at the end.
        loop {
            let buf = match reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) => return Err(serde_json::Error::io(e)),
            };
            if buf.is_empty() {
                return Ok(());
            }
            let ws = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let done = ws < buf.len();
            reader.consume(ws);
            if done {
                break;
            }
        }
        let mut de = serde_json::Deserializer::from_reader(ReadOnly(&mut *reader));
        Walk { emit: f }.deserialize(&mut de)?;
    }
}

/// Keeps serde_json's reader from seeing the `BufRead` methods it does not need.
struct ReadOnly<'a>(&'a mut dyn BufRead);

impl Read for ReadOnly<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

struct Walk<'a> {
    emit: &'a mut dyn FnMut(JsonItem),
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// A CloudWatch control message's events say this instead of carrying a record.
const CONTROL_MESSAGE_PREFIX: &str = "CWL CONTROL MESSAGE";

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let emit = self.emit;
        let mut control = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "message" => {
                    if let Some(msg) = map.next_value::<Option<StringOrOther>>()?.and_then(|m| m.0) {
                        if !control && !msg.starts_with(CONTROL_MESSAGE_PREFIX) {
                            emit(JsonItem::Message(msg));
                        }
                    }
                }
                "events" | "logEvents" | "records" | "awslogs" if !control => {
                    map.next_value_seed(Walk { emit: &mut *emit })?
                }
                "data" => {
                    if let Some(data) = map.next_value::<StringOrOther>()?.0 {
                        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data.trim()) {
                            emit(JsonItem::Payload(bytes));
                        }
                    }
                }
                "messageType" => {
                    control = map.next_value::<StringOrOther>()?.0.as_deref() == Some("CONTROL_MESSAGE");
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let emit = self.emit;
        while seq.next_element_seed(Walk { emit: &mut *emit })?.is_some() {}
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A string, or `None` for any other JSON value in that place.
struct StringOrOther(Option<String>);

impl<'de> de::Deserialize<'de> for StringOrOther {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringOrOther;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<StringOrOther, E> {
                Ok(StringOrOther(Some(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<StringOrOther, E> {
                Ok(StringOrOther(Some(s)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StringOrOther, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(StringOrOther(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StringOrOther, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(StringOrOther(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<StringOrOther, E> {
                Ok(StringOrOther(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<StringOrOther, E> {
                Ok(StringOrOther(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<StringOrOther, E> {
                Ok(StringOrOther(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<StringOrOther, E> {
                Ok(StringOrOther(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<StringOrOther, E> {
                Ok(StringOrOther(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(json: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut r = std::io::BufReader::new(json.as_bytes());
        walk_values(&mut r, &mut |item| {
            if let JsonItem::Message(m) = item {
                out.push(m)
            }
        })
        .unwrap();
        out
    }

    #[test]
    fn every_json_shape_yields_its_messages() {
        assert_eq!(
            messages(r#"{"events":[{"message":"a"},{"message":"b"}],"nextToken":"x"}"#),
            ["a", "b"]
        );
        assert_eq!(messages(r#"{"message":"a"}{"message":"b"}"#), ["a", "b"]);
        assert_eq!(messages("{\"message\":\"a\"}\n{\"message\":\"b\"}\n"), ["a", "b"]);
        assert_eq!(
            messages(r#"[{"events":[{"message":"a"}]},{"events":[{"message":"b"}]}]"#),
            ["a", "b"]
        );
        assert_eq!(
            messages(r#"{"messageType":"CONTROL_MESSAGE","logEvents":[{"message":"CWL CONTROL MESSAGE: x"}]}"#),
            Vec::<String>::new()
        );
        assert_eq!(
            messages(r#"{"incidents":[{"kind":"scan"}],"message":7}"#),
            Vec::<String>::new()
        );
    }

    #[test]
    fn syntax_errors_keep_what_came_before() {
        let mut out = 0;
        let mut r = std::io::BufReader::new(r#"{"message":"a"}{"message":"#.as_bytes());
        let res = walk_values(&mut r, &mut |_| out += 1);
        assert_eq!(out, 1);
        assert!(res.is_err());
    }
}
