//! Counting, blocking and the `stats`/`block`/`reset` subcommands, end to
//! end: the built binary on local sources, with a temporary config and
//! database and the hidden test clock (`BOUNCECTL_TEST_NOW`).
//!
//! Tests in the `classified` module need real classifications of corpus
//! files (`tests/fixtures/maildir/bsd`, expectations from the labels in
//! `public.jsonl`). While the classifier is still the skeleton's stub they
//! say so on stderr and return early; once it lands they run in full. Every
//! other test passes with any classifier.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::support::{bouncectl, fixtures, json_lines, run, stderr, stdout};

mod classified;

/// 2026-11-23T16:01:00Z.
const NOW: i64 = 1_795_449_660;
const NOW_RFC3339: &str = "2026-11-23T16:01:00Z";

/// A temporary home with a config file and a database path.
struct Env {
    tmp: tempfile::TempDir,
    db: PathBuf,
    config: PathBuf,
}

impl Env {
    fn new(config: &str) -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("data/bounces.db");
        let path = tmp.path().join("config.toml");
        std::fs::write(&path, config).unwrap();
        Env {
            tmp,
            db,
            config: path,
        }
    }

    /// One site `a` with the given limit.
    fn one_site(limit: u32) -> Env {
        Env::new(&format!("[[site]]\nname = \"a\"\nbounce_limit = {limit}\n"))
    }

    /// `bouncectl --config C --db D` at the test clock.
    fn cmd(&self) -> Command {
        let mut c = bouncectl(self.tmp.path());
        c.arg("--config")
            .arg(&self.config)
            .arg("--db")
            .arg(&self.db);
        c.env("BOUNCECTL_TEST_NOW", NOW.to_string());
        c
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = run(self.cmd().args(args));
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        out
    }

    /// `check --json` on corpus files; returns the summary object.
    fn check(&self, args: &[&str], files: &[&str]) -> Value {
        let mut c = self.cmd();
        c.args(["--json", "check"])
            .args(args)
            .args(files.iter().map(|f| corpus(f)));
        let out = run(&mut c);
        assert!(out.status.success(), "check {files:?}: {}", stderr(&out));
        let lines = json_lines(&out);
        assert_eq!(
            lines.len(),
            files.len() + 1,
            "one line per message and a summary"
        );
        lines.last().unwrap().clone()
    }

    fn stats(&self, args: &[&str]) -> Value {
        let out = self.ok(&[&["--json", "stats"], args].concat());
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
    }

    fn blocked(&self, args: &[&str]) -> Vec<String> {
        let out = self.ok(&[&["stats", "--blocked"], args].concat());
        stdout(&out).lines().map(str::to_owned).collect()
    }
}

/// A corpus file by name (`lhost-postfix-13`), as a path string.
fn corpus(name: &str) -> String {
    fixtures()
        .join("maildir/bsd")
        .join(format!("{name}.eml"))
        .display()
        .to_string()
}

/// Holds the OS lock on `<db>.lock` as another run would.
fn hold_lock(db: &Path) -> File {
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(db.with_extension("db.lock"))
        .unwrap();
    f.try_lock().unwrap();
    f
}

#[test]
fn stats_on_missing_database_is_empty_and_creates_nothing() {
    let env = Env::one_site(3);
    assert_eq!(
        env.stats(&[]),
        json!({"sites": [], "reasons": {}, "domains": []})
    );
    assert_eq!(env.blocked(&[]), Vec::<String>::new());
    let one = env.stats(&["Nobody@Example.org"]);
    assert_eq!(
        one,
        json!({"address": "nobody@example.org", "sites": [], "events": []})
    );
    assert!(
        !env.db.parent().unwrap().exists(),
        "no database directory was created"
    );
}

#[test]
fn block_shows_in_stats_and_reset_lifts_it() {
    let env = Env::one_site(3);
    let out = env.ok(&["--json", "block", "Kijitora@Example.JP", "neko@example.org"]);
    assert_eq!(
        json_lines(&out),
        vec![json!({"type": "block", "site": "a", "newly_blocked": 2})]
    );
    let again = env.ok(&[
        "--json",
        "block",
        "--reason",
        "other",
        "kijitora@example.jp",
    ]);
    assert_eq!(json_lines(&again)[0]["newly_blocked"], 0, "already blocked");

    assert_eq!(
        env.blocked(&[]),
        vec!["kijitora@example.jp", "neko@example.org"]
    );
    assert_eq!(env.blocked(&["--site", "a"]).len(), 2);
    assert_eq!(
        env.stats(&[]),
        json!({"sites": [{"site": "a", "addresses": 2, "bounces": 0, "blocked": 2}], "reasons": {}, "domains": []})
    );
    assert_eq!(
        env.stats(&["kijitora@example.jp"]),
        json!({
            "address": "kijitora@example.jp",
            "sites": [{"site": "a", "bounces": 0, "blocked": true, "blocked_at": NOW_RFC3339, "block_reason": "manual"}],
            "events": []
        })
    );

    let out = env.ok(&["--json", "reset", "KIJITORA@example.jp"]);
    assert_eq!(json_lines(&out)[0]["reset"], 1);
    assert_eq!(env.blocked(&[]), vec!["neko@example.org"]);
    env.ok(&["reset", "--all", "--yes"]);
    assert_eq!(env.blocked(&[]), Vec::<String>::new());
    assert_eq!(env.stats(&[])["sites"], json!([]));
}

#[test]
fn block_reads_addresses_from_file_and_stdin() {
    let env = Env::one_site(3);
    let list = env.tmp.path().join("list.txt");
    std::fs::write(
        &list,
        "# suppression list\na@example.org\n\n  b@example.org  \n",
    )
    .unwrap();
    env.ok(&[
        "block",
        "--file",
        list.to_str().unwrap(),
        "--reason",
        "import",
    ]);
    let mut c = env.cmd();
    c.args(["block", "--file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"c@example.org\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        env.blocked(&[]),
        vec!["a@example.org", "b@example.org", "c@example.org"]
    );
    assert_eq!(
        env.stats(&["a@example.org"])["sites"][0]["block_reason"],
        "import"
    );
}

#[test]
fn blocked_text_output_is_one_address_per_line_and_nothing_else() {
    let env = Env::new("[[site]]\nname = \"a\"\n[[site]]\nname = \"b\"\n");
    env.ok(&[
        "-v",
        "block",
        "--site",
        "a",
        "x@example.org",
        "y@example.org",
    ]);
    env.ok(&["block", "--site", "b", "y@example.org", "z@example.org"]);
    let out = env.ok(&["-v", "stats", "--blocked"]);
    assert_eq!(
        stdout(&out),
        "x@example.org\ny@example.org\nz@example.org\n"
    );
    assert_eq!(
        env.blocked(&["--site", "b"]),
        vec!["y@example.org", "z@example.org"]
    );
    let only_b = env.stats(&["--site", "b"]);
    assert_eq!(
        only_b["sites"],
        json!([{"site": "b", "addresses": 2, "bounces": 0, "blocked": 2}])
    );
}

#[test]
fn reset_all_without_yes_is_refused_with_64() {
    let env = Env::one_site(3);
    env.ok(&["block", "x@example.org"]);
    let out = run(env.cmd().args(["reset", "--all"]));
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert_eq!(env.blocked(&[]), vec!["x@example.org"], "nothing was reset");
    let out = run(env.cmd().args(["reset"]));
    assert_eq!(out.status.code(), Some(64), "reset needs a target");
}

#[test]
fn block_of_something_not_an_address_is_a_usage_error() {
    let env = Env::one_site(3);
    let out = run(env.cmd().args(["block", "not-an-address"]));
    assert_eq!(out.status.code(), Some(64));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

#[test]
fn reset_older_than_forgets_stale_counts_by_the_test_clock() {
    let env = Env::one_site(3);
    // A manual block is not a count: --older-than never lifts it.
    env.ok(&["block", "x@example.org"]);
    let later = (NOW + 400 * 86_400).to_string();
    let out = run(env.cmd().env("BOUNCECTL_TEST_NOW", &later).args([
        "--json",
        "reset",
        "--older-than",
        "30",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["reset"], 0);
    assert_eq!(env.blocked(&[]), vec!["x@example.org"]);
}

#[test]
fn check_while_another_run_holds_the_lock_exits_75_touching_nothing() {
    let env = Env::one_site(1);
    env.ok(&["block", "x@example.org"]);
    let before = env.stats(&[]);
    let held = hold_lock(&env.db);
    let start = std::time::Instant::now();
    let out = run(env
        .cmd()
        .args(["--json", "check", "--wait", "1"])
        .arg(corpus("lhost-postfix-13")));
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(
        start.elapsed() >= std::time::Duration::from_secs(1),
        "waited --wait seconds"
    );
    assert!(
        stdout(&out).is_empty(),
        "nothing reported: {}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("in use by another bouncectl run"), "{err}");
    // block and reset wait for the lock too.
    let out = run(env.cmd().args(["block", "--wait", "0", "y@example.org"]));
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert_eq!(env.stats(&[]), before, "stats reads while the lock is held");
    // Nothing reached the ledger: once the lock is free the message is new.
    drop(held);
    let summary = env.check(&["--wait", "0"], &["lhost-postfix-13"]);
    assert_eq!(summary["already_seen"], 0, "{summary}");
}

#[test]
fn unreadable_input_exits_65_with_nothing_recorded() {
    let env = Env::one_site(1);
    let missing = env.tmp.path().join("no-such.eml");
    let out = run(env
        .cmd()
        .args(["--json", "check"])
        .arg(corpus("lhost-postfix-13"))
        .arg(&missing));
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(stderr(&out).contains("no-such.eml"), "{}", stderr(&out));
    assert!(!env.db.exists(), "no database was written");
    assert_eq!(
        env.stats(&[]),
        json!({"sites": [], "reasons": {}, "domains": []})
    );
}

#[test]
fn database_on_a_path_nobody_can_create_exits_74() {
    let env = Env::one_site(1);
    let file = env.tmp.path().join("regular-file");
    std::fs::write(&file, "x").unwrap();
    // Root can write anywhere except under a regular file or in /proc.
    let under_file = file.join("bounces.db");
    let under_proc = PathBuf::from("/proc/bouncectl-test/bounces.db");
    let check = vec!["check".to_string(), corpus("lhost-postfix-13")];
    let block = vec!["block".to_string(), "x@example.org".into()];
    // (`stats` on /proc/... is a database that does not exist: empty, exit 0.)
    let stats = vec!["stats".to_string()];
    for (db, args) in [
        (&under_file, &check),
        (&under_file, &block),
        (&under_file, &stats),
        (&under_proc, &check),
        (&under_proc, &block),
    ] {
        {
            let out = run(bouncectl(env.tmp.path())
                .arg("--config")
                .arg(&env.config)
                .arg("--db")
                .arg(db)
                .args(args));
            assert_eq!(
                out.status.code(),
                Some(74),
                "{db:?} {args:?}: {}",
                stderr(&out)
            );
            let err = stderr(&out);
            assert_eq!(err.lines().count(), 1, "one line: {err}");
            assert!(
                err.contains(db.parent().unwrap().to_str().unwrap()),
                "names the path: {err}"
            );
        }
    }
}

#[test]
fn database_from_a_newer_bouncectl_is_refused_with_74() {
    let env = Env::one_site(1);
    env.ok(&["block", "x@example.org"]);
    let conn = rusqlite::Connection::open(&env.db).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    for args in [&["stats"][..], &["block", "y@example.org"]] {
        let out = run(env.cmd().args(args));
        assert_eq!(out.status.code(), Some(74), "{args:?}");
        assert!(
            stderr(&out).contains("schema version 999"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn second_check_of_the_same_files_counts_nothing() {
    let env = Env::one_site(2);
    let files = [
        "lhost-postfix-13",
        "lhost-yahoo-03",
        "arf-17",
        "rfc3834-04",
        "lhost-mailru-01",
    ];
    let first = env.check(&[], &files);
    assert_eq!(first["already_seen"], 0, "{first}");
    let stats = env.stats(&[]);
    let second = env.check(&[], &files);
    assert_eq!(second["already_seen"], files.len(), "{second}");
    assert_eq!(second["counted"], 0, "{second}");
    assert_eq!(second["newly_blocked"], 0, "{second}");
    assert_eq!(env.stats(&[]), stats, "nothing changed");
    // The same files in a Maildir: the same content is the same message
    // (a corpus file that begins with an mbox "From " line was read as an
    // mbox above; the fingerprint does not see that line).
    let maildir = env.tmp.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    for f in files {
        std::fs::copy(corpus(f), maildir.join("cur").join(format!("{f}:2,S"))).unwrap();
    }
    let out = env.ok(&["--json", "check", maildir.to_str().unwrap()]);
    assert_eq!(
        json_lines(&out).last().unwrap()["already_seen"],
        files.len()
    );
}

#[test]
fn dry_run_records_nothing() {
    let env = Env::one_site(1);
    let out = env.ok(&["--json", "check", "--dry-run", &corpus("lhost-postfix-13")]);
    assert_eq!(json_lines(&out)[0]["action_taken"], "dry_run");
    assert!(!env.db.exists());
}

/// Makes a file unwritable even for root (`chattr +i`), or for everyone
/// else by its mode; undone on drop so the temporary directory can go.
struct WriteProtected(PathBuf);

impl WriteProtected {
    fn new(path: &Path) -> Option<WriteProtected> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
        let protected = WriteProtected(path.to_path_buf());
        if OpenOptions::new().append(true).open(path).is_err() {
            return Some(protected);
        }
        let chattr = Command::new("chattr").arg("+i").arg(path).output();
        let ok = chattr.is_ok_and(|o| o.status.success())
            && OpenOptions::new().append(true).open(path).is_err();
        ok.then_some(protected)
    }
}

impl Drop for WriteProtected {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = Command::new("chattr").arg("-i").arg(&self.0).output();
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o644));
    }
}

#[test]
fn write_protected_database_is_refused_by_writers_and_read_by_stats() {
    let env = Env::one_site(1);
    env.ok(&["block", "x@example.org"]);
    let Some(_guard) = WriteProtected::new(&env.db) else {
        eprintln!("SKIPPED: cannot write-protect a file here (no chattr as root)");
        return;
    };
    for args in [
        vec!["check".to_string(), corpus("lhost-postfix-13")],
        vec!["block".into(), "y@example.org".into()],
        vec!["reset".into(), "x@example.org".into()],
    ] {
        let out = run(env.cmd().args(&args));
        assert_eq!(out.status.code(), Some(74), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("is read-only") && err.contains("bounces.db"),
            "{err}"
        );
    }
    assert_eq!(
        env.blocked(&[]),
        vec!["x@example.org"],
        "stats still reads it"
    );
}

#[test]
fn killed_run_leaves_no_stale_lock() {
    let env = Env::one_site(0);
    env.ok(&["block", "x@example.org"]);
    // `check -` takes the lock, then waits for its message on stdin.
    let mut first = env
        .cmd()
        .args(["check", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let out = run(env
            .cmd()
            .args(["block", "--wait", "0", "probe@example.org"]));
        if out.status.code() == Some(75) {
            break; // the first run holds the lock now
        }
        // Undo the probe; the first run may have taken the lock since.
        let out = run(env
            .cmd()
            .args(["reset", "--wait", "0", "probe@example.org"]));
        match out.status.code() {
            Some(75) => break,
            Some(0) => {}
            _ => panic!("reset: {}", stderr(&out)),
        }
        assert!(
            std::time::Instant::now() < until,
            "the first run never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    // The OS dropped the lock with the process: no stale lock file to clean.
    assert!(env.db.with_extension("db.lock").exists());
    let out = run(env
        .cmd()
        .args(["--json", "check", "--wait", "0"])
        .arg(corpus("lhost-postfix-13")));
    assert!(out.status.success(), "{}", stderr(&out));
    env.ok(&["reset", "probe@example.org"]); // in case the lock beat its reset
    assert_eq!(env.blocked(&[]), vec!["x@example.org"]);
}

/// From cron (stdout not a terminal, no `--dry-run`), `check` prints its
/// summary line and nothing else; `-q` silences that too; `--dry-run` and
/// `-v` show one line per message.
#[test]
fn check_from_cron_prints_only_the_summary() {
    let home = tempfile::tempdir().unwrap();
    let dir = fixtures().join("maildir/not");
    let check = |args: &[&str]| {
        let mut c = bouncectl(home.path());
        c.arg("--db")
            .arg(home.path().join("b.db"))
            .args(args)
            .arg(&dir);
        run(&mut c)
    };
    let o = check(&["check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("2 messages: "), "{text}");
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    let o = check(&["-q", "check"]);
    assert!(o.status.success() && o.stdout.is_empty() && o.stderr.is_empty());
    assert_eq!(stdout(&check(&["check", "--dry-run"])).lines().count(), 3);
    assert_eq!(stdout(&check(&["-v", "check"])).lines().count(), 3);
}
