//! The query language: text → syntax tree (`parse`) → bound query with typed values (`bind`).
//! Never touches the index: `exec` runs bound queries.

mod bind;
mod parse;
mod prefix;
mod show;

pub use bind::{
    bind, bind_time_window, Aggregate, AggregateFn, Bound, Cond, Filter, GroupBy, KeyOf, RecordStage, RowFilter,
    RowNumber, RowStage, RowValue, Test,
};
pub use bind::{ip_range, ip_ranges, overlaps, time_range, TIME_FORMS};
pub use parse::{
    list_entries, no_values_in, parse, parse_duration, read_list_file, CmpOp, Expr, FileReader, Query, Stage,
};

use std::fmt;

/// Byte offsets of a piece of the query text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
}

/// A query the language cannot accept, with where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError {
    pub message: String,
    pub span: Span,
    /// The query text, to show the line and a caret under the offending column.
    pub text: String,
    pub suggestion: Option<String>,
    /// The command-line option `text` was given to (`--from`), when it is not the query.
    pub option: Option<&'static str>,
}

impl QueryError {
    pub fn at(text: &str, span: Span, message: &str, suggestion: Option<String>) -> QueryError {
        QueryError {
            message: message.to_owned(),
            span,
            text: text.to_owned(),
            suggestion,
            option: None,
        }
    }

    /// A bad value of a command-line option that takes query values (`--from`, `--to`).
    pub fn option(option: &'static str, text: &str, message: &str) -> QueryError {
        QueryError {
            option: Some(option),
            ..QueryError::at(text, Span::new(0, text.len()), message, None)
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(option) = self.option {
            return write!(f, "{option} `{}`: {}", self.text, self.message);
        }
        // The line holding the error, and a caret under its column.
        let start = self.span.start.min(self.text.len());
        let line_start = self.text[..start].rfind('\n').map_or(0, |p| p + 1);
        let line_end = self.text[start..].find('\n').map_or(self.text.len(), |p| start + p);
        let line_no = self.text[..line_start].matches('\n').count() + 1;
        let column = self.text[line_start..start].chars().count();
        let width = self.text[start..self.span.end.clamp(start, line_end)]
            .chars()
            .count()
            .max(1);
        write!(f, "query line {line_no}, column {}: {}", column + 1, self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, "; did you mean `{s}`?")?;
        }
        // The caret's indent keeps the line's tabs, so that it lines up wherever tabs stop.
        let indent: String = self.text[line_start..start]
            .chars()
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(
            f,
            "\n  {}\n  {indent}{}",
            &self.text[line_start..line_end],
            "^".repeat(width)
        )
    }
}

impl std::error::Error for QueryError {}
