//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the
//! same checks as the fuzz targets, so a plain `cargo test` catches
//! regressions on every input the fuzzer found interesting.

use std::path::{Path, PathBuf};

#[allow(unreachable_pub)]
#[path = "../../fuzz/src/lib.rs"]
mod targets;

/// Every file of `fuzz/corpus/<target>`, sorted; fails if there are none.
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus dir {} is missing: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("corpus dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus dir {} is empty", dir.display());
    files
}

/// A fuzz target's body.
type Check = fn(&[u8]);

fn replay(target: &str, check: Check) {
    let files = corpus(target);
    for file in &files {
        let data = std::fs::read(file).expect("read corpus file");
        let result = std::panic::catch_unwind(|| check(&data));
        if let Err(panic) = result {
            eprintln!("{target}: {} failed", file.display());
            std::panic::resume_unwind(panic);
        }
    }
    println!("{target}: replayed {} corpus files", files.len());
}

#[test]
fn decode_frames_corpus() {
    replay("decode_frames", targets::decode_frames);
}

#[test]
fn parse_replies_corpus() {
    replay("parse_replies", targets::parse_replies);
}

#[test]
fn stream_id_corpus() {
    replay("stream_id", targets::stream_id);
}

#[test]
fn consumer_corpus() {
    replay("consumer", targets::consumer);
}

#[cfg(feature = "sim")]
#[test]
fn model_corpus() {
    replay("model", targets::model);
}
