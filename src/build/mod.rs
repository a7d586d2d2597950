//! Building an index: records → segments → a published manifest. Takes records from any
//! source through [`crate::input::RecordSink`]; the CLI wires the readers to it.

mod segment;
mod writer;

pub use segment::{Mark, SegmentBuilder};
pub use writer::{BuildSummary, IndexWriter, Skipped, Worker, SUMMARY_LISTS};
