//! Classifier throughput over the public corpus, single thread:
//! `cargo bench --bench classify`. Reports messages/s and MB/s, and the
//! ratio to a baseline measured in the same run (SHA-256 of the same bytes,
//! the least work any tool that looks at every byte must do).
//!
//! With `BOUNCECTL_BENCH_ONE_PASS=1` it classifies the corpus once and
//! exits, for instruction counts that do not depend on a noisy machine:
//! `BOUNCECTL_BENCH_ONE_PASS=1 valgrind --tool=callgrind target/release/deps/classify-*`.
//! `BOUNCECTL_BENCH_PASSES=N` (with it) classifies the corpus N times: the
//! difference between two and one pass is the per-pass cost without the
//! one-time building of the phrase automata.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bouncectl::mailbox::local::Source;
use bouncectl::message::{Options, classify};
use sha2::{Digest, Sha256};

fn corpus() -> Vec<Vec<u8>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/maildir");
    let mut files = Vec::new();
    for dir in ["bsd", "not"] {
        if let Ok(rd) = std::fs::read_dir(root.join(dir)) {
            files.extend(rd.flatten().map(|e| e.path()));
        }
    }
    files.sort();
    let mut mails = Vec::new();
    for f in files {
        if let Ok(src) = Source::open(&f.to_string_lossy()) {
            mails.extend(src.flatten().map(|m| m.bytes));
        }
    }
    mails
}

/// Runs `f` over the corpus repeatedly for at least `min` and returns the
/// time per corpus pass.
fn measure(mails: &[Vec<u8>], min: Duration, mut f: impl FnMut(&[u8])) -> Duration {
    let start = Instant::now();
    let mut passes = 0u32;
    while start.elapsed() < min || passes < 3 {
        for m in mails {
            f(m);
        }
        passes += 1;
    }
    start.elapsed() / passes
}

fn main() {
    let mails = corpus();
    assert!(!mails.is_empty(), "empty corpus");
    let bytes: usize = mails.iter().map(Vec::len).sum();
    let opts = Options::default();
    if std::env::var_os("BOUNCECTL_BENCH_ONE_PASS").is_some() {
        let passes: usize = std::env::var("BOUNCECTL_BENCH_PASSES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        for _ in 0..passes {
            for m in &mails {
                black_box(classify(black_box(m), &opts));
            }
        }
        println!("classified {} messages {passes} time(s)", mails.len());
        return;
    }
    let min = Duration::from_secs(3);
    // Warm up caches and the allocator.
    measure(&mails, Duration::from_millis(300), |m| {
        black_box(classify(black_box(m), &opts));
    });
    let classify_pass = measure(&mails, min, |m| {
        black_box(classify(black_box(m), &opts));
    });
    let sha_pass = measure(&mails, min, |m| {
        black_box(Sha256::digest(black_box(m)));
    });
    let per_s = |d: Duration| mails.len() as f64 / d.as_secs_f64();
    let mb_s = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    println!(
        "corpus: {} messages, {:.2} MB",
        mails.len(),
        bytes as f64 / 1e6
    );
    println!(
        "classify: {:>10.0} messages/s {:>8.1} MB/s",
        per_s(classify_pass),
        mb_s(classify_pass)
    );
    println!(
        "sha256:   {:>10.0} messages/s {:>8.1} MB/s (baseline)",
        per_s(sha_pass),
        mb_s(sha_pass)
    );
    println!(
        "classify time / sha256 time: {:.1}x",
        classify_pass.as_secs_f64() / sha_pass.as_secs_f64()
    );
}
