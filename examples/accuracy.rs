//! Accuracy of the classifier on the labelled public corpus:
//! `cargo run --release --example accuracy`. Prints every mismatch, then
//! the six figures the golden test asserts. With file arguments, prints the
//! verdicts on those files instead (for working on rules).

#[path = "../tests/classify/score.rs"]
mod score;

use std::io::Write;

fn main() {
    let mut out = std::io::stdout().lock();
    let files: Vec<String> = std::env::args().skip(1).collect();
    if !files.is_empty() {
        for f in files {
            let Ok(source) = bouncectl::mailbox::local::Source::open(&f) else {
                eprintln!("cannot open {f}");
                continue;
            };
            for m in source.flatten() {
                if std::env::var_os("ACCURACY_PARTS").is_some() {
                    let p = bouncectl::message::mime::parse(&m.bytes);
                    for l in &p.leaves {
                        let _ = writeln!(
                            out,
                            "-- part {} depth {} {} bytes",
                            l.ctype.mime,
                            l.depth,
                            l.body().len()
                        );
                    }
                }
                let c = bouncectl::message::classify(&m.bytes, &Default::default());
                let json = serde_json::to_string_pretty(&c).unwrap_or_default();
                // A closed pipe (`| head`) just ends the output.
                if writeln!(out, "{f}: {json}").is_err() {
                    return;
                }
            }
        }
        return;
    }
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let samples = score::classify_corpus(&fixtures);
    let _ = write!(out, "{}", score::Score::of(&samples));
}
