//! The committed man page and completions match the code; the README's first
//! command works on a fresh home directory.

use std::path::Path;

use crate::support::{bouncectl, json_lines, run, stderr};

#[test]
fn man_page_and_completions_match_the_cli_definition() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(bouncectl(tmp.path()).arg("generate-docs").arg(tmp.path()));
    assert!(out.status.success(), "{}", stderr(&out));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in [
        "man/bouncectl.1",
        "completions/bouncectl.bash",
        "completions/_bouncectl",
        "completions/bouncectl.fish",
    ] {
        let fresh = std::fs::read_to_string(tmp.path().join(file)).unwrap();
        let committed = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        assert!(
            fresh == committed,
            "{file} is out of date with the CLI definition: run `cargo run -- generate-docs .` and commit the result"
        );
    }
}

#[test]
fn man_page_documents_every_config_key_and_exit_code() {
    let man =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/bouncectl.1"))
            .unwrap();
    for table in [
        bouncectl::config::TOP_KEYS,
        bouncectl::config::SITE_KEYS,
        bouncectl::config::MAILBOX_KEYS,
    ] {
        for key in table {
            assert!(
                man.contains(&format!("\\fB{}\\fR", key.name.replace('-', "\\-"))),
                "man page lacks key {}",
                key.name
            );
        }
    }
    for code in ["64", "65", "69", "74", "75", "77", "78"] {
        assert!(
            man.contains(&format!("\\fB{code}\\fR")),
            "man page lacks exit code {code}"
        );
    }
    for section in [
        "EXIT STATUS",
        "FILES",
        "ENVIRONMENT",
        "CONFIGURATION",
        "BOUNCECTL_DB",
        "BOUNCECTL_CONFIG",
    ] {
        assert!(man.contains(section), "man page lacks {section}");
    }
}

/// The README's first set-up command, run as a newcomer would (fresh HOME,
/// no configuration): it must succeed and record the bundled samples into
/// the default database; a second run finds them all already seen.
#[test]
fn readme_first_command_checks_the_bundled_samples_into_the_default_database() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("cargo run --release -- "))
        .expect("README has a `cargo run --release -- ...` command");
    let args: Vec<&str> = line["cargo run --release -- ".len()..]
        .split('#')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let home = tempfile::tempdir().unwrap();
    let summary = |out: &std::process::Output| {
        assert!(out.status.success(), "{}", stderr(out));
        json_lines(out).pop().expect("a summary line")
    };
    let first = summary(&run(bouncectl(home.path())
        .args(&args)
        .arg("--json")
        .current_dir(root)));
    assert!(
        home.path().join("data/bouncectl/bounces.db").exists(),
        "default database not created"
    );
    assert!(first["messages"].as_u64().unwrap() >= 403, "{first}");
    assert!(first["bounces"].as_u64().unwrap() >= 350, "{first}");
    // The corpus holds a few byte-identical samples under two names: the
    // second copy is rightly already seen; nothing else is.
    assert!(first["already_seen"].as_u64().unwrap() <= 10, "{first}");
    let again = summary(&run(bouncectl(home.path())
        .args(&args)
        .arg("--json")
        .current_dir(root)));
    assert_eq!(again["already_seen"], first["messages"], "{again}");
    assert_eq!(again["counted"], 0, "{again}");
}
