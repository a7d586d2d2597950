//! flowdex: offline forensics on AWS VPC Flow Logs.
//!
//! The modules follow the data's path: [`input`] reads every form in which flow logs are
//! delivered into [`record::FlowRecord`]s with provenance; [`output`] prints records for people
//! and scripts; [`synth`] makes realistic corpora with known incidents for tests and benchmarks.
//! The command-line interface in `src/cli/` only wires these together.

pub mod build;
pub mod format;
pub mod input;
pub mod output;
pub mod read;
pub mod record;
pub mod synth;
pub mod time;
