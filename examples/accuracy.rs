//! Accuracy of the classifier on the labelled public corpus:
//! `cargo run --release --example accuracy`. Prints every mismatch, then
//! the six figures the golden test asserts.

#[path = "../tests/classify/score.rs"]
mod score;

fn main() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let samples = score::classify_corpus(&fixtures);
    print!("{}", score::Score::of(&samples));
}
