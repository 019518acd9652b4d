//! Writing to stdout and stderr: data to stdout (a closed pipe ends the
//! output quietly, as `head` expects), one-line errors to stderr.

use std::io::{self, Write};

/// Writes a line to stdout; `false` once the reader has gone away.
pub fn line(out: &mut impl Write, text: &dyn std::fmt::Display) -> bool {
    match writeln!(out, "{text}") {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => false,
        Err(_) => false,
    }
}

/// Writes a value as one JSON line, serialised straight into `out` (no
/// intermediate string); `false` once the reader has gone away.
pub fn json_line(out: &mut impl Write, value: &impl serde::Serialize) -> bool {
    serde_json::to_writer(&mut *out, value).is_ok() && out.write_all(b"\n").is_ok()
}

/// Writes a message report as one JSON line, built in `line` by its own
/// writer (serde_json's string escaping was most of the cost of `check
/// --json`); `false` once the reader has gone away.
pub fn json_message(
    out: &mut impl Write,
    line: &mut Vec<u8>,
    report: &bouncectl::report::MessageReport,
) -> bool {
    line.clear();
    report.write_json(line);
    line.push(b'\n');
    out.write_all(line).is_ok()
}

/// Prints an error and its causes on one line.
pub fn error(e: &anyhow::Error) {
    let mut text = format!("bouncectl: {e}");
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    eprintln!("{}", text.replace('\n', " "));
}
