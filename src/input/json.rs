//! JSON deliveries, streamed without holding the document: `aws logs get-log-events` and
//! `filter-log-events` output (`events[].message`), subscription payloads (`logEvents[]`), Lambda
//! events (`awslogs.data`, base64 gzip), Firehose records (`{"message": ...}`, with or without a
//! newline between them) and Firehose transform events (`records[].data`, base64). Top-level
//! values may be concatenated, newline-separated or wrapped in an array. Keys match in any case
//! (AWS Tools for PowerShell write `Events` and `Message`).

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
    /// A log event that carries no record: a `message` that is not text, a `data` payload
    /// that is not base64. It is rejected, not skipped, so that the counts reconcile.
    Bad(&'static str),
    /// Text that is not JSON, from where a value broke to the end of its line (see
    /// [`walk_values`]): rejected as one event.
    Broken {
        line: usize,
        column: usize,
        message: String,
        /// Bytes after the break, to the end of its line, that were skipped unread.
        unread: u64,
    },
}

/// Why reading JSON stopped.
#[derive(Debug)]
pub(crate) enum WalkError {
    Io(std::io::Error),
    /// The text ended inside a value (a file cut short), at a 1-based line and column.
    Truncated {
        line: usize,
        column: usize,
        message: String,
    },
}

/// Reads every top-level JSON value of `reader` and hands its items to `f`. A value that is
/// not JSON does not end the source: from where it broke to the end of that line is handed out
/// as one [`JsonItem::Broken`], and reading goes on at the next line (newline-delimited
/// Firehose records lose the bad one only). A value that broke on a later line than it began
/// on goes on at the start of that line: the value before it was left open, and this line may
/// start the next one. Only text ending inside a value stops the walk.
pub(crate) fn walk_values(reader: &mut dyn BufRead, f: &mut dyn FnMut(JsonItem)) -> Result<(), WalkError> {
    // Where the next unread byte is: each value gets a deserializer of its own, which counts
    // lines and columns from the value's first byte.
    let mut at = Position { line: 1, column: 0 };
    let mut reader = Resumed {
        put_back: Vec::new(),
        taken: 0,
        inner: reader,
    };
    let mut line_read = Vec::new();
    loop {
        // Skip white space between values; stop at the end.
        loop {
            let buf = reader.fill_buf().map_err(WalkError::Io)?;
            if buf.is_empty() {
                return Ok(());
            }
            let ws = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            at.pass(&buf[..ws]);
            let done = ws < buf.len();
            reader.consume(ws);
            if done {
                break;
            }
        }
        let start = at;
        line_read.clear();
        let mut counted = Counted {
            inner: &mut reader,
            at: &mut at,
            line_read: &mut line_read,
        };
        let mut de = serde_json::Deserializer::from_reader(&mut counted);
        let Err(e) = (Walk { emit: f, events: false }).deserialize(&mut de) else {
            continue;
        };
        if e.io_error_kind().is_some() {
            return Err(WalkError::Io(std::io::Error::from(e)));
        }
        let message = e.to_string();
        // serde_json says where, counted from the value: the source's position is said apart.
        let message = match message.rsplit_once(" at line ") {
            Some((m, _)) => m.to_owned(),
            None => message,
        };
        // serde_json's column 0 is just after a line break: the line's first column.
        let (line, column) = (
            start.line + e.line().saturating_sub(1),
            if e.line() <= 1 {
                start.column + e.column()
            } else {
                e.column().max(1)
            },
        );
        if e.is_eof() {
            return Err(WalkError::Truncated { line, column, message });
        }
        // Broken at the first byte (past indentation) of a later line than the value began
        // on: the value was left open, and the line may start the next one. Read it again from
        // its start. A break further into a line skips the rest of it: what it held before the
        // break was handed out already.
        let at_line_start = line_read
            .split_last()
            .is_some_and(|(_, before)| before.iter().all(u8::is_ascii_whitespace));
        let unread = if line > start.line && at_line_start {
            reader.put_back(&line_read);
            at = Position { line, column: 0 };
            0
        } else {
            skip_line(&mut reader, &mut at).map_err(WalkError::Io)?
        };
        f(JsonItem::Broken {
            line,
            column,
            message,
            unread,
        });
    }
}

/// Consumes the rest of the current line, its line break included; returns how many bytes
/// came before the line break.
fn skip_line(reader: &mut dyn BufRead, at: &mut Position) -> std::io::Result<u64> {
    let mut skipped = 0;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(skipped);
        }
        let (n, done) = match memchr::memchr(b'\n', buf) {
            Some(p) => (p + 1, true),
            None => (buf.len(), false),
        };
        at.pass(&buf[..n]);
        reader.consume(n);
        skipped += (n - usize::from(done)) as u64;
        if done {
            return Ok(skipped);
        }
    }
}

/// A `BufRead` with bytes put back in front of it.
struct Resumed<'a> {
    put_back: Vec<u8>,
    /// Bytes of `put_back` already read.
    taken: usize,
    inner: &'a mut dyn BufRead,
}

impl Resumed<'_> {
    fn put_back(&mut self, bytes: &[u8]) {
        let mut front = bytes.to_vec();
        front.extend_from_slice(&self.put_back[self.taken..]);
        (self.put_back, self.taken) = (front, 0);
    }
}

impl Read for Resumed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Resumed<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.taken < self.put_back.len() {
            return Ok(&self.put_back[self.taken..]);
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        if self.taken < self.put_back.len() {
            self.taken += n;
        } else {
            self.inner.consume(n);
        }
    }
}

/// A line (1-based) and the bytes before it on that line.
#[derive(Clone, Copy, Debug)]
struct Position {
    line: usize,
    column: usize,
}

impl Position {
    /// Moves past `bytes`: serde_json reads a byte at a time, so this is one compare a byte.
    fn pass(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                (self.line, self.column) = (self.line + 1, 0);
            } else {
                self.column += 1;
            }
        }
    }
}

/// Hands serde_json the bytes of a `BufRead` through `Read` alone, counting their position
/// and keeping those of the current line (to read it again if a value breaks on it).
struct Counted<'a, 'p> {
    inner: &'a mut dyn BufRead,
    at: &'p mut Position,
    line_read: &'p mut Vec<u8>,
}

impl Read for Counted<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.at.pass(&buf[..n]);
        match memchr::memrchr(b'\n', &buf[..n]) {
            Some(p) => {
                self.line_read.clear();
                self.line_read.extend_from_slice(&buf[p + 1..n]);
            }
            None => self.line_read.extend_from_slice(&buf[..n]),
        }
        Ok(n)
    }
}

struct Walk<'a> {
    emit: &'a mut dyn FnMut(JsonItem),
    /// Whether the value is (in) a list of log events (`events`, `logEvents`), whose objects
    /// each carry a `message`.
    events: bool,
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
        let mut message = false;
        while let Some(key) = map.next_key::<String>()? {
            // Keys in any case: AWS Tools for PowerShell write `Events` and `Message`.
            let is = |name: &str| key.eq_ignore_ascii_case(name);
            if is("message") {
                message = true;
                match map.next_value::<StringOrOther>()?.0 {
                    Some(msg) if !control && !msg.starts_with(CONTROL_MESSAGE_PREFIX) => emit(JsonItem::Message(msg)),
                    Some(_) => {}
                    None if control => {}
                    None => emit(JsonItem::Bad("the log event's message is not text")),
                }
            } else if !control && (is("events") || is("logEvents") || is("records") || is("awslogs")) {
                map.next_value_seed(Walk {
                    emit: &mut *emit,
                    events: is("events") || is("logEvents"),
                })?;
            } else if is("data") {
                match map.next_value::<StringOrOther>()?.0 {
                    Some(data) => match base64::engine::general_purpose::STANDARD.decode(data.trim()) {
                        Ok(bytes) => emit(JsonItem::Payload(bytes)),
                        Err(_) => emit(JsonItem::Bad("the data payload is not base64")),
                    },
                    None => emit(JsonItem::Bad("the data payload is not text")),
                }
            } else if is("messageType") {
                control = map.next_value::<StringOrOther>()?.0.as_deref() == Some("CONTROL_MESSAGE");
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if self.events && !message && !control {
            emit(JsonItem::Bad("the log event has no message"));
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (emit, events) = (self.emit, self.events);
        while seq
            .next_element_seed(Walk {
                emit: &mut *emit,
                events,
            })?
            .is_some()
        {}
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
        assert_eq!(messages(r#"{"incidents":[{"kind":"scan"}],"message":"x"}"#), ["x"]);
        // AWS Tools for PowerShell: `Get-CWLLogEvent | ConvertTo-Json` and the like.
        assert_eq!(
            messages(r#"[{"Timestamp":"2014-12-14T04:06:50Z","Message":"a"},{"Message":"b"}]"#),
            ["a", "b"]
        );
        assert_eq!(
            messages(r#"{"Events":[{"Message":"a"}],"NextForwardToken":"f"}"#),
            ["a"]
        );
    }

    #[test]
    fn events_without_a_record_are_handed_out_as_bad() {
        let bad = |json: &str| {
            let mut out = Vec::new();
            let mut r = std::io::BufReader::new(json.as_bytes());
            walk_values(&mut r, &mut |item| match item {
                JsonItem::Bad(why) => out.push(why),
                JsonItem::Message(m) => out.push(if m == "ok" { "ok" } else { "?" }),
                JsonItem::Payload(_) => out.push("payload"),
                JsonItem::Broken { .. } => out.push("broken"),
            })
            .unwrap();
            out
        };
        assert_eq!(
            bad(r#"{"events":[{"message":"ok"},{"message":7},{"message":null},{"message":["a"]},{"id":1}]}"#),
            [
                "ok",
                "the log event's message is not text",
                "the log event's message is not text",
                "the log event's message is not text",
                "the log event has no message"
            ]
        );
        assert_eq!(
            bad(r#"{"awslogs":{"data":"H4sI!!!"}}"#),
            ["the data payload is not base64"]
        );
        assert_eq!(bad(r#"{"awslogs":{"data":42}}"#), ["the data payload is not text"]);
        assert_eq!(bad(r#"{"awslogs":{"data":"aGk="}}"#), ["payload"]);
    }

    #[test]
    fn a_value_cut_short_stops_the_walk_and_says_where() {
        let mut out = 0;
        let mut r = std::io::BufReader::new(r#"{"message":"a"}{"message":"#.as_bytes());
        let res = walk_values(&mut r, &mut |_| out += 1);
        assert_eq!(out, 1);
        assert!(matches!(res, Err(WalkError::Truncated { line: 1, .. })), "{res:?}");
    }

    /// What the walk hands out, as text: messages, and `broken L:C` for text that is not JSON.
    fn walked(json: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut r = std::io::BufReader::new(json.as_bytes());
        walk_values(&mut r, &mut |item| match item {
            JsonItem::Message(m) => out.push(m),
            JsonItem::Broken {
                line, column, message, ..
            } => {
                assert!(!message.contains("at line"), "{message}");
                out.push(format!("broken {line}:{column}"))
            }
            _ => out.push("other".into()),
        })
        .unwrap();
        out
    }

    #[test]
    fn text_that_is_not_json_costs_its_line_and_reading_goes_on() {
        assert_eq!(
            walked("{\"message\":\"a\"}\n{\"message\":\"b\"}\n   garbage\n{\"message\":\"c\"}\n"),
            ["a", "b", "broken 3:4", "c"]
        );
        // An object left open on line 2 breaks on line 3, which is read again from its start,
        // indented or not.
        assert_eq!(
            walked("{\"message\":\"a\"}\n{\"message\":\"b\"\n{\"message\":\"c\"}\n"),
            ["a", "b", "broken 3:1", "c"]
        );
        assert_eq!(
            walked("{\"message\":\"a\"}\n{\"message\":\"b\",\n        {\"message\":\"c\"}\n"),
            ["a", "b", "broken 3:9", "c"]
        );
        // A break further into a later line: what that line held before it is not read twice.
        let got = walked("{\"events\":[\n{\"message\":\"a\"},\n{\"message\":\"b\"|,\n{\"message\":\"c\"}\n]}\n");
        assert_eq!(got.iter().filter(|m| *m == "b").count(), 1, "{got:?}");
        assert_eq!(got.iter().filter(|m| *m == "c").count(), 1, "{got:?}");
        // Pretty-printed output damaged in one event: the events after it are still read.
        let pretty = "{\n  \"events\": [\n    {\"message\": \"a\"},\n    {\"message\": \"b\" ]],\n    {\"message\": \"c\"}\n  ]\n}\n";
        let got = walked(pretty);
        assert_eq!(got.first().map(String::as_str), Some("a"));
        assert_eq!(got.iter().filter(|m| *m == "c").count(), 1, "{got:?}");
    }
}
