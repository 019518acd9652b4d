//! Shared test helpers: run the built binary in a clean environment.

#![allow(dead_code)]

pub mod dovecot;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The fixtures directory (`tests/fixtures`).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A `bouncectl` command with every `BOUNCECTL_*` variable removed and
/// XDG/HOME pointed into `home`, so no user configuration leaks in.
pub fn bouncectl(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bouncectl"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("BOUNCECTL_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .stdin(Stdio::null());
    cmd
}

/// Runs a command and returns its output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run bouncectl")
}

/// Stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The JSON Lines of a `--json` run.
pub fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// True when tests that need real servers must not skip (`CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}
