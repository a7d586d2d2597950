//! Query text → syntax tree. The language is CloudWatch Logs Insights' pipeline (`fields`,
//! `filter`, `stats`, `sort`, `limit`, `display`, `dedup`) plus a bare filter expression as the
//! first stage. Every node keeps its byte span so errors can point at the column. Names and
//! values stay text here; `bind` gives them meaning.

use std::sync::Arc;

use super::{QueryError, Span};

#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub stages: Vec<Stage>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    Fields(Vec<Name>),
    Display(Vec<Name>),
    Filter(Expr),
    Stats(Stats),
    Sort(Vec<(Name, bool)>),
    Limit(u64),
    Dedup(Vec<Name>),
}

/// A name as written (a field, a pseudo-field, an aggregate's name).
#[derive(Clone, Debug, PartialEq)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

/// A value as written: a number, address, CIDR, time, word or quoted string.
#[derive(Clone, Debug, PartialEq)]
pub struct Literal {
    pub text: String,
    pub quoted: bool,
    pub span: Span,
    /// For a value of a list file (`in @iocs.txt`), its path and 1-based line: the span is
    /// then the `@path` of the query.
    pub list_line: Option<(Arc<str>, usize)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Pattern {
    Regex(String),
    Text(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// `name not in ...`, `name not like ...`: a comparison, like `!=` (the field has a value,
    /// and it is none of them), where `not name in ...` is the negation of one.
    Excluding(Box<Expr>),
    Compare {
        name: Name,
        op: CmpOp,
        value: Literal,
    },
    /// `name in (a, b)` or `name in @file` (the file's lines, already read).
    In {
        name: Name,
        values: Vec<Literal>,
    },
    Like {
        name: Name,
        pattern: Pattern,
        span: Span,
    },
    Has {
        name: Name,
        value: Literal,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub aggregates: Vec<Aggregate>,
    pub by: Vec<GroupKey>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub function: Name,
    /// `None` for `count()` and `count(*)`.
    pub argument: Option<Name>,
    pub alias: Option<Name>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum GroupKey {
    Field {
        name: Name,
        alias: Option<Name>,
    },
    /// `bin(5m)`: time buckets of this many seconds of the record's start.
    Bin {
        seconds: u64,
        alias: Option<Name>,
        span: Span,
    },
}

impl GroupKey {
    /// Where the key is written (`srcaddr`, `bin(5m)`), its alias left out.
    pub fn span(&self) -> Span {
        match self {
            GroupKey::Field { name, .. } => name.span,
            GroupKey::Bin { span, .. } => *span,
        }
    }

    pub fn alias(&self) -> Option<&Name> {
        match self {
            GroupKey::Field { alias, .. } | GroupKey::Bin { alias, .. } => alias.as_ref(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Regex(String),
    Op(&'static str),
    At(String),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    span: Span,
}

/// Reads `in @file` lists; the CLI gives the real file system, tests give a map.
pub type FileReader<'a> = dyn Fn(&str) -> std::io::Result<String> + 'a;

/// Parses a query. `read_file` is asked for the contents of `@file` lists.
pub fn parse(text: &str, read_file: &FileReader<'_>) -> Result<Query, QueryError> {
    let tokens = lex(text)?;
    let mut p = Parser {
        tokens,
        at: 0,
        text,
        read_file,
    };
    let mut stages = Vec::new();
    loop {
        stages.push(p.stage(stages.is_empty())?);
        match p.peek() {
            None => break,
            Some(Tok::Op("|")) => {
                p.at += 1;
            }
            Some(_) => return Err(p.error_here("expected `|` or the end of the query")),
        }
    }
    Ok(Query { stages })
}

const OPS: &[&str] = &["==", "!=", "<=", ">=", "=", "<", ">", "(", ")", "[", "]", ",", "|"];

fn lex(text: &str) -> Result<Vec<Token>, QueryError> {
    let b = text.as_bytes();
    let mut out: Vec<Token> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let after_like = matches!(out.last(), Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case("like"));
        if c == b'/' && after_like {
            // In a regex only `\/` is an escape; other backslashes belong to the regex.
            let (re, end) = delimited(text, start, '/', "/regex/", |c| (c == '/').then_some('/'))?;
            i = end;
            out.push(Token {
                tok: Tok::Regex(re),
                span: Span::new(start, i),
            });
            continue;
        }
        if c == b'"' || c == b'\'' {
            let (s, end) = delimited(text, start, char::from(c), "string", Some)?;
            i = end;
            out.push(Token {
                tok: Tok::Str(s),
                span: Span::new(start, i),
            });
            continue;
        }
        if let Some(op) = OPS.iter().find(|op| text[i..].starts_with(**op)) {
            i += op.len();
            out.push(Token {
                tok: Tok::Op(op),
                span: Span::new(start, i),
            });
            continue;
        }
        let word_end = |mut j: usize| {
            while j < b.len() && !b[j].is_ascii_whitespace() && !b"()[]|,=!<>\"'".contains(&b[j]) {
                j += text[j..].chars().next().map_or(1, char::len_utf8);
            }
            j
        };
        if c == b'@' {
            i = word_end(i + 1);
            out.push(Token {
                tok: Tok::At(text[start + 1..i].to_owned()),
                span: Span::new(start, i),
            });
            continue;
        }
        i = word_end(i);
        if i == start {
            return Err(QueryError::at(
                text,
                Span::new(start, start + 1),
                "unexpected character",
                None,
            ));
        }
        out.push(Token {
            tok: Tok::Word(text[start..i].to_owned()),
            span: Span::new(start, i),
        });
    }
    Ok(out)
}

/// Reads a literal from its opening delimiter at `start` to the closing `close`: the text and
/// where it ends. `escape` gives what a backslash and the next character stand for, or `None`
/// to keep both.
fn delimited(
    text: &str,
    start: usize,
    close: char,
    what: &str,
    escape: impl Fn(char) -> Option<char>,
) -> Result<(String, usize), QueryError> {
    let mut out = String::new();
    let mut chars = text[start + 1..].char_indices();
    while let Some((at, ch)) = chars.next() {
        match ch {
            '\\' => match chars.next() {
                Some((_, next)) => match escape(next) {
                    Some(e) => out.push(e),
                    None => {
                        out.push('\\');
                        out.push(next);
                    }
                },
                None => break,
            },
            c if c == close => return Ok((out, start + 1 + at + 1)),
            c => out.push(c),
        }
    }
    Err(QueryError::at(
        text,
        Span::new(start, text.len()),
        &format!("unterminated {what}"),
        None,
    ))
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    text: &'a str,
    read_file: &'a FileReader<'a>,
}

const COMMANDS: &[&str] = &["fields", "display", "filter", "stats", "sort", "limit", "dedup"];

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at).map(|t| &t.tok)
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn span_here(&self) -> Span {
        match self.tokens.get(self.at) {
            Some(t) => t.span,
            None => Span::new(self.text.len(), self.text.len()),
        }
    }

    fn error_here(&self, what: &str) -> QueryError {
        QueryError::at(self.text, self.span_here(), what, None)
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(o)) if *o == op) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect_op(&mut self, op: &str) -> Result<(), QueryError> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(self.error_here(&format!("expected `{op}`")))
        }
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.peek_word(word) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn name(&mut self, what: &str) -> Result<Name, QueryError> {
        match self.tokens.get(self.at) {
            Some(Token {
                tok: Tok::Word(w),
                span,
            }) => {
                let name = Name {
                    text: w.clone(),
                    span: *span,
                };
                self.at += 1;
                Ok(name)
            }
            // Insights queries name CloudWatch's own fields; flow logs have their own.
            Some(Token { tok: Tok::At(w), .. }) => {
                let instead = match w.to_ascii_lowercase().as_str() {
                    "timestamp" => "`start` or `end` (and `time = ...` to filter by time)",
                    "message" => "`--format raw` for the original lines",
                    _ => "a flow-log field",
                };
                Err(self.error_here(&format!("`@{w}` is a CloudWatch Logs field; here use {instead}")))
            }
            _ => Err(self.error_here(&format!("expected {what}"))),
        }
    }

    /// A field name, or after `stats` an aggregate's column as its default name reads
    /// (`count()`, `sum(bytes)`), as Insights queries write `sort count(*) desc`.
    fn column_name(&mut self, what: &str) -> Result<Name, QueryError> {
        let mut name = self.name(what)?;
        if self.eat_op("(") {
            let argument = if self.eat_op(")") {
                String::new()
            } else {
                let argument = self.name("a field name or *")?.text;
                self.expect_op(")")?;
                argument
            };
            name.text = format!("{}({argument})", name.text);
            name.span.end = self.tokens[self.at - 1].span.end;
        }
        Ok(name)
    }

    fn names(&mut self) -> Result<Vec<Name>, QueryError> {
        let mut v = vec![self.column_name("a field name")?];
        while self.eat_op(",") {
            v.push(self.column_name("a field name")?);
        }
        Ok(v)
    }

    fn stage(&mut self, first: bool) -> Result<Stage, QueryError> {
        let command = match self.peek() {
            Some(Tok::Word(w)) => COMMANDS.iter().find(|c| w.eq_ignore_ascii_case(c)).copied(),
            _ => None,
        };
        // `fields` etc. are commands only when not used as a field in a bare filter.
        let command = command.filter(|_| {
            !matches!(
                self.tokens.get(self.at + 1).map(|t| &t.tok),
                Some(Tok::Op("=" | "==" | "!=" | "<" | "<=" | ">" | ">="))
            )
        });
        let Some(command) = command else {
            if first && self.peek().is_some() {
                return Ok(Stage::Filter(self.expr()?));
            }
            return Err(self.error_here("expected a command: fields, filter, stats, sort, limit, display or dedup"));
        };
        self.at += 1;
        Ok(match command {
            "fields" => Stage::Fields(self.names()?),
            "display" => Stage::Display(self.names()?),
            "dedup" => Stage::Dedup(self.names()?),
            "filter" => Stage::Filter(self.expr()?),
            "stats" => Stage::Stats(self.stats()?),
            "sort" => {
                let mut keys = Vec::new();
                loop {
                    let name = self.column_name("a field or aggregate name to sort by")?;
                    let desc = if self.eat_word("desc") {
                        true
                    } else {
                        self.eat_word("asc");
                        false
                    };
                    keys.push((name, desc));
                    if !self.eat_op(",") {
                        break;
                    }
                }
                Stage::Sort(keys)
            }
            "limit" => {
                let span = self.span_here();
                let n = self.name("a number")?;
                Stage::Limit(
                    n.text
                        .parse()
                        .map_err(|_| QueryError::at(self.text, span, "expected a number", None))?,
                )
            }
            _ => unreachable!("COMMANDS lists every command"),
        })
    }

    fn stats(&mut self) -> Result<Stats, QueryError> {
        let mut aggregates = Vec::new();
        loop {
            let function = self.name("an aggregate such as count(), sum(bytes)")?;
            self.expect_op("(")?;
            let argument = if self.eat_op(")") {
                None
            } else {
                let arg = self.name("a field name")?;
                self.expect_op(")")?;
                (arg.text != "*").then_some(arg)
            };
            let alias = if self.eat_word("as") {
                Some(self.name("a name")?)
            } else {
                None
            };
            let end = self.tokens[self.at - 1].span.end;
            aggregates.push(Aggregate {
                span: Span::new(function.span.start, end),
                function,
                argument,
                alias,
            });
            if !self.eat_op(",") {
                break;
            }
        }
        let mut by = Vec::new();
        if self.eat_word("by") {
            loop {
                let name = self.name("a field name or bin(...)")?;
                if name.text.eq_ignore_ascii_case("bin") && self.eat_op("(") {
                    let d = self.name("a duration such as 5m, 1h, 1d")?;
                    self.expect_op(")")?;
                    let seconds = parse_duration(&d.text).ok_or_else(|| {
                        QueryError::at(self.text, d.span, "not a duration (use s, m, h or d, as in 5m)", None)
                    })?;
                    let alias = if self.eat_word("as") {
                        Some(self.name("a name")?)
                    } else {
                        None
                    };
                    by.push(GroupKey::Bin {
                        seconds,
                        alias,
                        span: Span::new(name.span.start, d.span.end + 1),
                    });
                } else {
                    let alias = if self.eat_word("as") {
                        Some(self.name("a name")?)
                    } else {
                        None
                    };
                    by.push(GroupKey::Field { name, alias });
                }
                if !self.eat_op(",") {
                    break;
                }
            }
        }
        Ok(Stats { aggregates, by })
    }

    fn expr(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.and()?;
        while self.eat_word("or") {
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.unary()?;
        while self.eat_word("and") {
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        if self.eat_word("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat_op("(") {
            let e = self.expr()?;
            self.expect_op(")")?;
            return Ok(e);
        }
        self.predicate()
    }

    fn literal(&mut self) -> Result<Literal, QueryError> {
        match self.tokens.get(self.at).cloned() {
            Some(Token {
                tok: Tok::Word(w),
                span,
            }) => {
                self.at += 1;
                Ok(Literal {
                    text: w,
                    quoted: false,
                    span,
                    list_line: None,
                })
            }
            Some(Token { tok: Tok::Str(s), span }) => {
                self.at += 1;
                Ok(Literal {
                    text: s,
                    quoted: true,
                    span,
                    list_line: None,
                })
            }
            _ => Err(self.error_here("expected a value")),
        }
    }

    fn predicate(&mut self) -> Result<Expr, QueryError> {
        let name = self.column_name("a field name")?;
        let negated = self.peek_word("not")
            && matches!(self.tokens.get(self.at + 1).map(|t| &t.tok), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("in") || w.eq_ignore_ascii_case("like"));
        if negated {
            self.at += 1;
        }
        let e = if self.eat_word("in") {
            let values = if let Some(Token {
                tok: Tok::At(path),
                span,
            }) = self.tokens.get(self.at).cloned()
            {
                self.at += 1;
                let contents = (self.read_file)(&path).map_err(|e| {
                    QueryError::at(self.text, span, &format!("cannot read the list `{path}`: {e}"), None)
                })?;
                let path: Arc<str> = path.into();
                let values: Vec<Literal> = list_entries(&contents)
                    .map(|(line, l)| Literal {
                        text: l.to_owned(),
                        quoted: false,
                        span,
                        list_line: Some((path.clone(), line)),
                    })
                    .collect();
                // A list file cut short or the wrong file would otherwise say "none of these
                // was seen".
                if values.is_empty() {
                    return Err(QueryError::at(self.text, span, &no_values_in(&path), None));
                }
                values
            } else {
                // Insights writes lists in brackets: `in ["a", "b"]`.
                let close = if self.eat_op("[") {
                    "]"
                } else {
                    self.expect_op("(")?;
                    ")"
                };
                let mut v = vec![self.literal()?];
                while self.eat_op(",") {
                    v.push(self.literal()?);
                }
                self.expect_op(close)?;
                v
            };
            Expr::In { name, values }
        } else if self.eat_word("like") {
            let span = self.span_here();
            let pattern = match self.tokens.get(self.at).map(|t| t.tok.clone()) {
                Some(Tok::Regex(r)) => Pattern::Regex(r),
                Some(Tok::Str(s)) => Pattern::Text(s),
                _ => return Err(self.error_here("expected /regex/ or \"text\" after like")),
            };
            self.at += 1;
            Expr::Like { name, pattern, span }
        } else if self.eat_word("has") {
            Expr::Has {
                name,
                value: self.literal()?,
            }
        } else {
            let op = match self.peek() {
                Some(Tok::Op("=" | "==")) => CmpOp::Eq,
                Some(Tok::Op("!=")) => CmpOp::Ne,
                Some(Tok::Op("<")) => CmpOp::Lt,
                Some(Tok::Op("<=")) => CmpOp::Le,
                Some(Tok::Op(">")) => CmpOp::Gt,
                Some(Tok::Op(">=")) => CmpOp::Ge,
                _ => return Err(self.error_here("expected a comparison (= != < <= > >=), in, like or has")),
            };
            self.at += 1;
            Expr::Compare {
                name,
                op,
                value: self.literal()?,
            }
        };
        Ok(if negated { Expr::Excluding(Box::new(e)) } else { e })
    }
}

/// `5m` → 300. Units: s, m, h, d.
pub fn parse_duration(text: &str) -> Option<u64> {
    let unit_at = text.find(|c: char| !c.is_ascii_digit())?;
    let n: u64 = text[..unit_at].parse().ok()?;
    let mult = match &text[unit_at..] {
        "s" | "sec" => 1,
        "m" | "min" => 60,
        "h" | "hr" => 3600,
        "d" | "day" => 86_400,
        _ => return None,
    };
    (n > 0).then(|| n * mult)
}

/// Bytes a list file may hold: millions of addresses, not a device or a runaway file.
const LIST_FILE_LIMIT: u64 = 256 << 20;

/// Reads a list file (`in @iocs.txt`, `flowdex seen @file`): a regular file of at most
/// [`LIST_FILE_LIMIT`] bytes of UTF-8 text. `@/dev/zero` held 14 GB before it was stopped,
/// and a FIFO without a writer blocks.
pub fn read_list_file(path: &str) -> std::io::Result<String> {
    use std::io::{Error, Read};
    // Asked before opening: opening a FIFO waits for a writer.
    if !std::fs::metadata(path)?.is_file() {
        return Err(Error::other("not a regular file"));
    }
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.len() > LIST_FILE_LIMIT {
        return Err(Error::other(format!(
            "{} bytes, more than a list may hold ({LIST_FILE_LIMIT} bytes)",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(LIST_FILE_LIMIT + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > LIST_FILE_LIMIT {
        return Err(Error::other(format!(
            "more than a list may hold ({LIST_FILE_LIMIT} bytes)"
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        Error::other(format!("line {line} is not UTF-8 text"))
    })
}

/// What to say of a list file that holds no values: an empty list is a mistake (a wrong file,
/// an export that failed), not a question whose answer is "nothing".
pub fn no_values_in(path: &str) -> String {
    format!("the list `{path}` holds no values (only blank lines and # comments)")
}

/// The values of a list file (`in @iocs.txt`, `flowdex seen @file`), each with its 1-based
/// line: one per line, `#` starts a comment, blank lines are skipped.
pub fn list_entries(contents: &str) -> impl Iterator<Item = (usize, &str)> {
    contents
        .lines()
        .enumerate()
        // A byte-order mark (Notepad writes one) is not part of the first value.
        .map(|(i, l)| (i + 1, l.trim_start_matches('\u{feff}')))
        .map(|(i, l)| (i, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_files_are_regular_files_of_utf8_text() {
        let err = read_list_file("/dev/null").unwrap_err().to_string();
        assert_eq!(err, "not a regular file");
        let dir = tempfile::tempdir().unwrap();
        // A FIFO without a writer: opening it would wait forever.
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let err = read_list_file(fifo.to_str().unwrap()).unwrap_err().to_string();
            assert_eq!(err, "not a regular file");
        }
        let path = dir.path().join("iocs.txt");
        std::fs::write(&path, b"1.2.3.4\n# fine\n\xff\xfe\n").unwrap();
        let err = read_list_file(path.to_str().unwrap()).unwrap_err().to_string();
        assert_eq!(err, "line 3 is not UTF-8 text");
        std::fs::write(&path, "1.2.3.4\n5.6.7.8\n").unwrap();
        assert_eq!(read_list_file(path.to_str().unwrap()).unwrap(), "1.2.3.4\n5.6.7.8\n");
    }

    fn q(text: &str) -> Query {
        parse(text, &|_| Ok("10.0.0.1\n# comment\n10.0.0.0/8 # inline\n\n".into())).unwrap()
    }

    #[test]
    fn insights_queries_parse() {
        let query = q("fields srcaddr, dstaddr, dstport, action, bytes\n| filter action = \"REJECT\"\n| stats sum(bytes) as total_bytes by srcaddr, dstaddr\n| sort total_bytes desc\n| limit 20");
        assert_eq!(query.stages.len(), 5);
        assert!(matches!(&query.stages[4], Stage::Limit(20)));
        let query = q("fields srcaddr | filter flow_direction = \"egress\" and not srcaddr like /^10\\./ and not srcaddr like /^172\\.1[6-9]\\./");
        let Stage::Filter(Expr::And(_, right)) = &query.stages[1] else {
            panic!()
        };
        assert!(
            matches!(&**right, Expr::Not(inner) if matches!(&**inner, Expr::Like { pattern: Pattern::Regex(r), .. } if r == "^172\\.1[6-9]\\."))
        );
    }

    #[test]
    fn bare_filters_lists_and_bins() {
        let query = q("addr = 198.51.100.7 and dstport = 22");
        assert!(matches!(&query.stages[0], Stage::Filter(Expr::And(..))));
        let query = q("addr in @iocs.txt | stats count() as n, count_distinct(dstport) by srcaddr, bin(5m)");
        let Stage::Filter(Expr::In { values, .. }) = &query.stages[0] else {
            panic!()
        };
        assert_eq!(
            values.iter().map(|v| v.text.as_str()).collect::<Vec<_>>(),
            ["10.0.0.1", "10.0.0.0/8"]
        );
        let Stage::Stats(s) = &query.stages[1] else { panic!() };
        assert_eq!(s.by.len(), 2);
        assert!(matches!(s.by[1], GroupKey::Bin { seconds: 300, .. }));
        assert_eq!(s.aggregates[1].argument.as_ref().unwrap().text, "dstport");
    }

    #[test]
    fn errors_point_at_the_column() {
        let e = parse("srcaddr = 1.2.3.4 | sortt x", &|_| Ok(String::new())).unwrap_err();
        assert_eq!(e.span.start, 20);
        // After a tab, the caret's indent holds the tab too.
        let e = parse("srcaddr = 1.2.3.4\t| sortt x", &|_| Ok(String::new())).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("\n  srcaddr = 1.2.3.4\t| sortt x\n                   \t  ^^^^^"),
            "{e}"
        );
        let e = parse("srcaddr like /abc", &|_| Ok(String::new())).unwrap_err();
        assert!(e.message.contains("unterminated"));
        assert!(parse("srcaddr in @missing", &|_| Err(std::io::Error::other("gone")))
            .unwrap_err()
            .message
            .contains("missing"));
    }

    #[test]
    fn a_list_file_needs_a_value_and_may_start_with_a_byte_order_mark() {
        for contents in ["", "\n\n", "# IOCs from the report\n  # none yet\n"] {
            let e = parse("srcaddr in @iocs.txt", &|_| Ok(contents.to_owned())).unwrap_err();
            assert!(e.message.contains("holds no values"), "{contents:?}: {}", e.message);
        }
        let query = parse("srcaddr in @iocs.txt", &|_| Ok("\u{feff}10.0.0.3\n10.0.0.4".to_owned())).unwrap();
        let Stage::Filter(Expr::In { values, .. }) = &query.stages[0] else {
            panic!()
        };
        assert_eq!(
            values.iter().map(|v| v.text.as_str()).collect::<Vec<_>>(),
            ["10.0.0.3", "10.0.0.4"]
        );
    }
}
