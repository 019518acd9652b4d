//! Classify one message read from stdin and print the verdict as JSON.
//! No network, no database: the pure classifier on its own.
//!
//! ```sh
//! cargo run --example classify < tests/fixtures/maildir/bsd/lhost-postfix-13.eml
//! ```

use std::io::Read;

fn main() -> std::process::ExitCode {
    let mut raw = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut raw) {
        eprintln!("classify: cannot read stdin: {e}");
        return std::process::ExitCode::from(65);
    }
    let verdict = bouncectl::message::classify(&raw, &bouncectl::message::Options::default());
    match serde_json::to_string_pretty(&verdict) {
        Ok(json) => {
            println!("{json}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("classify: {e}");
            std::process::ExitCode::from(70)
        }
    }
}
