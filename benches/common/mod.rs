//! What the build and search benchmarks share: the synthetic corpus (gzip level 6, as AWS
//! writes) under `target/bench-corpus/`, settings from the environment, medians.

use std::path::{Path, PathBuf};
use std::time::Duration;

use flowdex::synth::{self, SynthConfig};

/// A setting from the environment, or `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The folder of benchmark corpora and indexes.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-corpus")
}

/// The v5 corpus of `records` records over 30 days, written once and reused.
pub fn corpus(records: u64) -> PathBuf {
    let corpus = root().join(format!("v5-{records}-gz6"));
    if !corpus.join("truth.json").exists() {
        let _ = std::fs::remove_dir_all(&corpus);
        let config = SynthConfig {
            records,
            gzip_level: 6,
            ..SynthConfig::default()
        };
        synth::write_corpus(&config, &corpus).expect("write the corpus");
    }
    corpus
}
