// Scores the classifier against the labelled corpus (`public.jsonl`).
// Shared by the `classify` integration tests and `examples/accuracy.rs`
// (plain comments: this file is also pulled in with `include!`).

use std::fmt;
use std::path::Path;

use bouncectl::mailbox::local::Source;
use bouncectl::message::{self, Classification, Kind};
use serde_json::Value;

/// One labelled file and what the classifier said about each of its mails.
pub struct Sample {
    /// Path relative to the fixtures directory.
    pub file: String,
    /// Label kind (lhost, rhost, rfc3464, rfc3834, arf, notbounce).
    pub kind: String,
    /// Expected recipient entries, all mails in order.
    pub expect: Vec<Value>,
    /// The classifier's verdicts, one per mail.
    pub got: Vec<Classification>,
}

/// Reads the labels and classifies every labelled file.
pub fn classify_corpus(fixtures: &Path) -> Vec<Sample> {
    let labels = std::fs::read_to_string(fixtures.join("public.jsonl")).unwrap_or_default();
    let opts = message::Options::default();
    labels
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("label line is JSON");
            let file = v["file"].as_str().expect("label has a file").to_string();
            let path = fixtures.join(&file);
            let source = Source::open(&path.to_string_lossy()).expect("fixture opens");
            let got = source
                .map(|m| message::classify(&m.expect("fixture reads").bytes, &opts))
                .collect();
            Sample {
                file,
                kind: v["kind"].as_str().unwrap_or("").to_string(),
                expect: v["expect"].as_array().cloned().unwrap_or_default(),
                got,
            }
        })
        .collect()
}

/// Accuracy figures over the corpus.
#[derive(Default)]
pub struct Score {
    /// Labelled files.
    pub files: usize,
    /// Expected recipient entries.
    pub entries: usize,
    pub found: usize,
    pub reason: usize,
    pub hard: usize,
    pub status: usize,
    pub rcode: usize,
    /// Files of kind rfc3834 / arf / notbounce reported as bounces.
    pub wrong_bounces: Vec<String>,
    /// One line per mismatch: file, field, expected vs got.
    pub mismatches: Vec<String>,
}

const PLACEHOLDER: &str = "undisclosed-recipient-in-headers@libsisimai.org.invalid";

impl Score {
    /// Compares every sample with its labels.
    pub fn of(samples: &[Sample]) -> Score {
        let mut s = Score {
            files: samples.len(),
            ..Score::default()
        };
        for sample in samples {
            if matches!(sample.kind.as_str(), "rfc3834" | "arf" | "notbounce")
                && sample.got.iter().any(|c| c.kind == Kind::Bounce)
            {
                s.wrong_bounces.push(sample.file.clone());
            }
            let all: Vec<(&Classification, &message::Recipient)> = sample
                .got
                .iter()
                .flat_map(|c| c.recipients.iter().map(move |r| (c, r)))
                .collect();
            for e in &sample.expect {
                s.entries += 1;
                let text = |k: &str| e[k].as_str().unwrap_or("").to_string();
                let (rcpt, reason, status, rcode) =
                    (text("rcpt"), text("reason"), text("status"), text("rcode"));
                let mut names = vec![rcpt.clone()];
                names.extend(
                    e["rcpt_alt"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str().map(String::from)),
                );
                let file = &sample.file;
                if reason == "delivered" {
                    // A success DSN: right when nothing is reported for it.
                    let ok = !all
                        .iter()
                        .any(|(_, r)| names.iter().any(|n| n.eq_ignore_ascii_case(&r.address)));
                    let n = usize::from(ok);
                    (s.found, s.reason, s.hard, s.status, s.rcode) = (
                        s.found + n,
                        s.reason + n,
                        s.hard + n,
                        s.status + n,
                        s.rcode + n,
                    );
                    if !ok {
                        s.mismatches
                            .push(format!("{file}: delivered {rcpt} reported as a failure"));
                    }
                    continue;
                }
                if rcpt == PLACEHOLDER {
                    // A complaint that names nobody: right when we name nobody.
                    let ok = sample
                        .got
                        .iter()
                        .any(|c| c.kind == Kind::Complaint && c.recipients.is_empty());
                    let n = usize::from(ok);
                    (s.found, s.reason, s.hard, s.status, s.rcode) = (
                        s.found + n,
                        s.reason + n,
                        s.hard + n,
                        s.status + n,
                        s.rcode + n,
                    );
                    if !ok {
                        s.mismatches
                            .push(format!("{file}: expected a complaint naming nobody"));
                    }
                    continue;
                }
                let Some((_, got)) = all
                    .iter()
                    .find(|(_, r)| names.iter().any(|n| n.eq_ignore_ascii_case(&r.address)))
                else {
                    let got: Vec<String> = sample
                        .got
                        .iter()
                        .map(|c| {
                            format!(
                                "{}{:?}",
                                c.kind.as_str(),
                                c.recipients.iter().map(|r| &r.address).collect::<Vec<_>>()
                            )
                        })
                        .collect();
                    s.mismatches.push(format!(
                        "{file}: rcpt expected {rcpt} ({reason}) got {}",
                        got.join(" ")
                    ));
                    continue;
                };
                s.found += 1;
                let diag = got.diagnostic.clone().unwrap_or_default();
                let diag: String = diag.chars().take(160).collect();
                let checks = [
                    ("reason", reason.clone(), got.reason.as_str().to_string()),
                    (
                        "hard",
                        json_bool(&e["hard"]),
                        got.hard.map_or("null".into(), |h| h.to_string()),
                    ),
                    ("status", status, got.status.clone().unwrap_or_default()),
                    (
                        "rcode",
                        rcode,
                        got.reply_code.map(|c| c.to_string()).unwrap_or_default(),
                    ),
                ];
                for (i, (field, exp, g)) in checks.into_iter().enumerate() {
                    let counter = match i {
                        0 => &mut s.reason,
                        1 => &mut s.hard,
                        2 => &mut s.status,
                        _ => &mut s.rcode,
                    };
                    if exp == g {
                        *counter += 1;
                    } else {
                        s.mismatches.push(format!(
                            "{file}: {field} expected {exp:?} got {g:?} ({reason}) | {diag}"
                        ));
                    }
                }
            }
        }
        s
    }

    /// A percentage of the expected entries.
    pub fn pct(&self, n: usize) -> f64 {
        if self.entries == 0 {
            0.0
        } else {
            100.0 * n as f64 / self.entries as f64
        }
    }
}

fn json_bool(v: &Value) -> String {
    v.as_bool().map_or("null".into(), |b| b.to_string())
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.mismatches {
            writeln!(f, "  {m}")?;
        }
        writeln!(
            f,
            "files {} / recipient entries {}",
            self.files, self.entries
        )?;
        writeln!(
            f,
            "recipient found   {:6.2}% ({})",
            self.pct(self.found),
            self.found
        )?;
        writeln!(
            f,
            "reason equal      {:6.2}% ({})",
            self.pct(self.reason),
            self.reason
        )?;
        writeln!(
            f,
            "hard equal        {:6.2}% ({})",
            self.pct(self.hard),
            self.hard
        )?;
        writeln!(
            f,
            "status equal      {:6.2}% ({})",
            self.pct(self.status),
            self.status
        )?;
        writeln!(
            f,
            "reply-code equal  {:6.2}% ({})",
            self.pct(self.rcode),
            self.rcode
        )?;
        writeln!(
            f,
            "non-bounces reported as bounces: {} {:?}",
            self.wrong_bounces.len(),
            self.wrong_bounces
        )
    }
}
