//! Store benchmark (`cargo bench --bench store`; `-- --quick` for a smaller run).
//!
//! 1. Recording 100,000 bounce events the way `check` does (batches of
//!    `mailbox::BATCH_MESSAGES` recorded with `Store::record`, a commit
//!    every `store::TRANSACTION_MESSAGES`, WAL + `synchronous = NORMAL`),
//!    against a same-run baseline: a plain `INSERT` of the same rows into a
//!    bare table, in one transaction and in the same number of transactions
//!    (`synchronous = FULL`). Then the same recording with `Store::sync`
//!    after every commit, which is what `check` does before deleting from a
//!    server; and, for comparison, one transaction per batch.
//! 2. `stats` (totals; the `--json` query set) on a database of 1,000,000
//!    addresses, through the library and through the built binary, against
//!    the same totals computed with `GROUP BY` over the base tables (what the
//!    aggregate tables save).
//!
//! Targets: recording <= 2 s, stats <= 200 ms.
//!
//! Reading the recording figure: each bounce changes one row in each of
//! two trees with random keys (the ledger by content hash, the counter by
//! address), so every batch commit writes thousands of distinct 4 KiB pages
//! to the WAL, where the plain baseline appends to one table. The "cpu" and
//! "wrote" notes separate that I/O from computation. "close" is the final
//! checkpoint when the store is dropped, which a real run also pays.

use std::path::Path;
use std::time::{Duration, Instant};

use bouncectl::config::Config;
use bouncectl::message::{Classification, Kind, Reason, Recipient};
use bouncectl::store::{Fingerprint, Item, Store};
use rusqlite::{Connection, params};

const BATCH: usize = bouncectl::mailbox::BATCH_MESSAGES;
const PER_TX: usize = bouncectl::store::TRANSACTION_MESSAGES;
const NOW: i64 = 1_795_449_660;

/// xorshift64*: deterministic data without a `rand` dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Skewed towards 0, like receiving domains (a few large providers, a
    /// long tail of small ones).
    fn skewed(&mut self, n: u64) -> u64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((u * u * u) * n as f64) as u64
    }
}

const REASONS: [Reason; 6] = [
    Reason::UserUnknown,
    Reason::MailboxFull,
    Reason::HostUnknown,
    Reason::Rejected,
    Reason::SpamDetected,
    Reason::Expired,
];

fn address(i: u64, domains: u64, rng: &mut Rng) -> String {
    format!("user{i}@d{}.example", rng.skewed(domains))
}

fn bounce(address: String, reason: Reason) -> Classification {
    Classification {
        kind: Kind::Bounce,
        message_id: None,
        recipients: vec![Recipient {
            diagnostic: Some(format!(
                "550 5.1.1 <{address}>: Recipient address rejected: User unknown"
            )),
            address,
            status: Some("5.1.1".into()),
            reply_code: Some(550),
            action: Some("failed".into()),
            reason,
            hard: reason.hardness(true),
        }],
        feedback_type: None,
        explanation: None,
    }
}

fn config() -> Config {
    let mut c = Config::builtin();
    c.sites[0].name = "lists.example.com".into();
    c
}

/// CPU seconds (user + system) and bytes written by this process so far,
/// from /proc (Linux): on a shared machine wall time alone says little.
fn usage() -> (f64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|t| t.parse::<f64>().ok()).sum()
    });
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let wchar = io
        .lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks / 100.0, wchar)
}

/// Runs `f`, returning its wall time and a "cpu .. s, wrote .. MB" note.
fn measured<T>(f: impl FnOnce() -> T) -> (T, Duration, String) {
    let (cpu0, w0) = usage();
    let start = Instant::now();
    let out = f();
    let wall = start.elapsed();
    let (cpu1, w1) = usage();
    (
        out,
        wall,
        format!(
            "cpu {:.2} s, wrote {:.0} MB",
            cpu1 - cpu0,
            (w1 - w0) as f64 / 1e6
        ),
    )
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Part 1: `record_batch` against plain inserts of the same rows.
fn bench_record(dir: &Path, events: usize) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Half as many addresses as events: most addresses bounce twice.
    let distinct = (events / 2) as u64;
    let msgs: Vec<(Fingerprint, Classification)> = (0..events)
        .map(|i| {
            let a = rng.below(distinct);
            let r = REASONS[rng.below(REASONS.len() as u64) as usize];
            (
                Fingerprint::of(format!("message {i}").as_bytes()),
                bounce(address(a, 2_000, &mut Rng(a + 1)), r),
            )
        })
        .collect();

    let config = config();
    // `check`'s write path: a batch at a time, a commit every `per_tx`
    // messages, and with `sync` the fsync that precedes a server deletion.
    let run = |name: &str, per_tx: usize, sync: bool| {
        let mut store = Store::open(&dir.join(name)).unwrap();
        let (counted, wall, note) = measured(|| {
            let mut counted = 0u64;
            for (i, chunk) in msgs.chunks(BATCH).enumerate() {
                let items: Vec<Item<'_>> = chunk
                    .iter()
                    .map(|(fp, c)| Item {
                        source_uid: None,
                        fingerprint: *fp,
                        classification: c,
                    })
                    .collect();
                for o in store
                    .record(&config, "lists.example.com", &items, NOW)
                    .unwrap()
                {
                    counted += u64::from(o.counted);
                }
                if ((i + 1) * BATCH).is_multiple_of(per_tx) || (i + 1) * BATCH >= msgs.len() {
                    store.commit().unwrap();
                    if sync {
                        store.sync().unwrap();
                    }
                }
            }
            counted
        });
        assert_eq!(counted, events as u64);
        (store, wall, note)
    };
    let (store, record, record_note) = run("record.db", PER_TX, false);
    let ((), close, close_note) = measured(|| drop(store));
    let (store, synced, synced_note) = run("record-sync.db", PER_TX, true);
    drop(store);
    let (store, per_batch, per_batch_note) = run("record-batch.db", BATCH, false);
    drop(store);

    let plain = |name: &str, per_tx: usize| -> (Duration, String) {
        let mut conn = Connection::open(dir.join(name)).unwrap();
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn.execute_batch(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, site TEXT, address TEXT, reason TEXT,
             status TEXT, diagnostic TEXT, at INTEGER, fingerprint BLOB)",
        )
        .unwrap();
        let ((), wall, note) = measured(|| {
            for chunk in msgs.chunks(per_tx) {
                let tx = conn.transaction().unwrap();
                {
                    let mut stmt = tx
                        .prepare_cached(
                            "INSERT INTO events VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        )
                        .unwrap();
                    for (fp, c) in chunk {
                        let r = &c.recipients[0];
                        stmt.execute(params![
                            "lists.example.com",
                            r.address,
                            r.reason.as_str(),
                            r.status,
                            r.diagnostic,
                            NOW,
                            &fp.0[..]
                        ])
                        .unwrap();
                    }
                }
                tx.commit().unwrap();
            }
        });
        (wall, note)
    };
    let (one_tx, one_note) = plain("plain-one.db", events);
    let (same_tx, same_note) = plain("plain-batched.db", PER_TX);

    let n = events;
    let tx = n.div_ceil(PER_TX);
    let verdict = if secs(record) <= 2.0 { "ok" } else { "MISSED" };
    println!(
        "record: {n} bounce events, batches of {BATCH}, {tx} transactions of {PER_TX}: {:.3} s ({:.0} events/s; {record_note}) [target <= 2 s: {verdict}]",
        secs(record),
        n as f64 / secs(record),
    );
    println!(
        "  then close (final checkpoint): {:.3} s ({close_note})",
        secs(close)
    );
    println!(
        "  with Store::sync after each commit (server path): {:.3} s ({synced_note})",
        secs(synced)
    );
    println!(
        "  one transaction per batch of {BATCH} instead: {:.3} s ({per_batch_note})",
        secs(per_batch)
    );
    println!(
        "  baseline plain INSERT, 1 transaction:     {:.3} s ({one_note}) -> record is {:.1}x",
        secs(one_tx),
        secs(record) / secs(one_tx)
    );
    println!(
        "  baseline plain INSERT, {tx} transactions: {:.3} s ({same_note}) -> record is {:.1}x",
        secs(same_tx),
        secs(record) / secs(same_tx)
    );
}

/// Builds a database of `addresses` counters (two sites) with one event
/// each, in one transaction with prepared statements, then computes the
/// aggregates once (`Store::rebuild_totals`).
fn build_big(path: &Path, addresses: u64) -> Duration {
    drop(Store::open(path).unwrap());
    let mut conn = Connection::open(path).unwrap();
    bouncectl::store::schema::configure(&conn).unwrap();
    let start = Instant::now();
    let tx = conn.transaction().unwrap();
    {
        let mut rng = Rng(42);
        let mut counter = tx
            .prepare(
                "INSERT INTO counters (site, address, domain, bounces, last_at, blocked_at, block_reason, blocked_by, last_event)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .unwrap();
        let mut event = tx
            .prepare(
                "INSERT INTO events (site, address, reason, status, diagnostic, at, fingerprint)
                 VALUES (?1, ?2, ?3, '5.1.1', '550 5.1.1 user unknown', ?4, ?5)",
            )
            .unwrap();
        for i in 0..addresses {
            let site = if i % 4 == 0 {
                "news.example.com"
            } else {
                "lists.example.com"
            };
            let domain = format!("d{}.example", rng.skewed(50_000));
            let address = format!("user{i}@{domain}");
            let bounces = 1 + rng.below(5) as i64;
            let at = NOW - rng.below(365 * 86_400) as i64;
            let blocked = bounces >= 5;
            let reason = REASONS[rng.below(REASONS.len() as u64) as usize].as_str();
            event
                .execute(params![site, address, reason, at, &i.to_le_bytes()[..]])
                .unwrap();
            counter
                .execute(params![
                    site,
                    address,
                    domain,
                    bounces,
                    at,
                    blocked.then_some(at),
                    blocked.then_some(reason),
                    blocked.then_some("limit"),
                    tx.last_insert_rowid()
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    drop(conn);
    Store::open(path).unwrap().rebuild_totals().unwrap();
    start.elapsed()
}

/// Part 2: `stats` on a big database.
fn bench_stats(dir: &Path, addresses: u64) {
    let path = dir.join("big.db");
    let build = build_big(&path, addresses);
    println!(
        "built {addresses} addresses (+{addresses} events) in one transaction: {:.1} s",
        secs(build)
    );

    let runs = 7;
    let lib: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let store = Store::open_existing(&path).unwrap().unwrap();
            let stats = store.stats().unwrap();
            let json = serde_json::to_string(&stats).unwrap();
            assert!(
                stats.sites.iter().map(|s| s.addresses).sum::<u64>() == addresses
                    && json.len() > 100
            );
            start.elapsed()
        })
        .collect();
    let lib = median(lib);
    println!(
        "stats (open + totals + JSON, library): {:.2} ms median of {runs} [target <= 200 ms: {}]",
        lib.as_secs_f64() * 1e3,
        if lib <= Duration::from_millis(200) {
            "ok"
        } else {
            "MISSED"
        }
    );

    let bin: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_bouncectl"))
                .env_remove("BOUNCECTL_CONFIG")
                .env("XDG_CONFIG_HOME", dir)
                .arg("--db")
                .arg(&path)
                .args(["--json", "stats"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            start.elapsed()
        })
        .collect();
    println!(
        "bouncectl --json stats (whole process):  {:.2} ms median of {runs}",
        median(bin).as_secs_f64() * 1e3
    );

    // The other `stats` modes, for the record.
    let some: String = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT address FROM counters WHERE address LIKE 'user12345@%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let store = Store::open_existing(&path).unwrap().unwrap();
    let (one, wall, _) = measured(|| store.address(&some).unwrap());
    println!(
        "stats ADDRESS (counters per site + events): {:.2} ms ({} sites)",
        wall.as_secs_f64() * 1e3,
        one.sites.len()
    );
    let (list, wall, _) = measured(|| store.blocked(None).unwrap());
    println!(
        "stats --blocked: {} addresses in {:.0} ms",
        list.len(),
        wall.as_secs_f64() * 1e3
    );
    drop(store);

    // The same totals without the aggregate tables.
    let conn = Connection::open(&path).unwrap();
    let start = Instant::now();
    let mut q = conn
        .prepare(
            "SELECT site, count(*), sum(bounces), count(blocked_at) FROM counters GROUP BY site",
        )
        .unwrap();
    let sites: Vec<(String, i64, i64, i64)> = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut q = conn
        .prepare("SELECT reason, count(*) FROM events GROUP BY reason")
        .unwrap();
    let reasons = q.query_map([], |r| r.get::<_, String>(0)).unwrap().count();
    let mut q = conn
        .prepare("SELECT domain, sum(bounces) AS n FROM counters GROUP BY domain ORDER BY n DESC LIMIT 20")
        .unwrap();
    let domains = q.query_map([], |r| r.get::<_, String>(0)).unwrap().count();
    let group_by = start.elapsed();
    assert!(sites.len() == 2 && reasons > 0 && domains == 20);
    println!(
        "  baseline GROUP BY over the base tables:  {:.1} ms -> aggregates are {:.0}x faster",
        group_by.as_secs_f64() * 1e3,
        secs(group_by) / secs(lib)
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (events, addresses) = if quick {
        (10_000, 100_000)
    } else {
        (100_000, 1_000_000)
    };
    // `--only-record` / `--only-stats` run one part.
    let only = |part: &str| std::env::args().all(|a| !a.starts_with("--only-") || a == part);
    let dir = tempfile::tempdir().unwrap();
    if only("--only-record") {
        bench_record(dir.path(), events);
    }
    if only("--only-stats") {
        bench_stats(dir.path(), addresses);
    }
}
