//! flowdex: offline forensics on AWS VPC Flow Logs.
//!
//! The modules follow the data's path: [`input`] reads every form in which flow logs are
//! delivered into [`record::FlowRecord`]s with provenance; [`build`] writes them as segments in
//! the on-disk [`format`]; [`read`] maps segments back; [`query`] turns query text into a bound
//! query; [`exec`] answers its filter from postings and blocks; [`agg`] computes `stats`;
//! [`search`] runs the whole pipeline; [`coverage`] says which interfaces the logs cover when,
//! so that no records can be told from no logs; [`recheck`] goes back to the sources an index
//! was built from (hashes, original lines); [`seen`] answers "was this value ever there" from
//! the dictionaries alone; [`export`] writes a query's records as a verifiable evidence bundle;
//! [`output`] prints records and rows for people and scripts; [`synth`] makes realistic corpora
//! with known incidents for tests and benchmarks.
//! The command-line interface in `src/cli/` only wires these together.

pub mod agg;
pub mod build;
pub mod coverage;
pub mod exec;
pub mod export;
pub mod format;
pub mod input;
pub mod output;
pub mod query;
pub mod read;
pub mod recheck;
pub mod record;
pub mod search;
pub mod seen;
pub mod synth;
pub mod time;
