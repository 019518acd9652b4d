//! One function per subcommand: arguments to options, `ops::*`, output.

use std::io::{self, BufRead, IsTerminal, Write};
use std::time::Duration;

use anyhow::Context;
use bouncectl::config::{self, Config};
use bouncectl::exit::{Exit, ExitCode};
use bouncectl::ops::{self, admin, check, stats};
use bouncectl::report::MessageReport;
use bouncectl::store::ResetTarget;

use crate::cli::{BlockArgs, CheckArgs, Cli, Command, Global, ResetArgs, StatsArgs};
use crate::output;

/// Runs the parsed command line and returns the exit status.
pub fn dispatch(cli: Cli) -> Exit {
    let g = &cli.global;
    let result = config::load(g.config.as_deref())
        .map_err(anyhow::Error::from)
        .and_then(|config| {
            for w in &config.warnings {
                eprintln!("bouncectl: warning: {w}");
            }
            match &cli.command {
                Command::GenerateDocs { dir } => crate::docs::generate(dir).map(|()| Exit::Ok),
                Command::Check(a) => check_cmd(g, &config, a),
                Command::Stats(a) => stats_cmd(g, &config, a),
                Command::Block(a) => block_cmd(g, &config, a),
                Command::Reset(a) => reset_cmd(g, &config, a),
            }
        });
    match result {
        Ok(exit) => exit,
        Err(e) => {
            output::error(&e);
            exit_of(&e)
        }
    }
}

/// The sysexits code of an error: the first library error in its chain.
fn exit_of(e: &anyhow::Error) -> Exit {
    for cause in e.chain() {
        if let Some(x) = cause.downcast_ref::<ops::Error>() {
            return x.exit();
        }
        if let Some(x) = cause.downcast_ref::<config::Error>() {
            return x.exit();
        }
        if let Some(x) = cause.downcast_ref::<bouncectl::store::Error>() {
            return x.exit();
        }
        if cause.downcast_ref::<io::Error>().is_some() {
            return Exit::DataErr;
        }
    }
    Exit::IoErr
}

struct CheckObserver {
    json: bool,
    verbose: u8,
    /// Text mode: one line per message (a person is looking: a terminal,
    /// `--dry-run` or `-v`); otherwise, as in cron, the summary only.
    per_message: bool,
    /// Block-buffered: one `write` per 8 KiB, not per line, unless a
    /// person is watching (`flush_lines`).
    out: io::BufWriter<io::StdoutLock<'static>>,
    /// A JSON line is built here, then written in one go.
    line: Vec<u8>,
    /// Stdout is a terminal: show each line as it is written.
    flush_lines: bool,
    open: bool,
    bar: Option<indicatif::ProgressBar>,
}

impl check::Observer for CheckObserver {
    fn message(&mut self, r: &MessageReport) {
        if !self.open {
            return;
        }
        self.open = if self.json {
            output::json_message(&mut self.out, &mut self.line, r)
        } else if self.per_message {
            output::line(&mut self.out, r)
        } else {
            return;
        };
        if self.flush_lines && self.open {
            self.open = self.out.flush().is_ok();
        }
    }

    fn renderer(&self) -> Option<check::Render> {
        Some(if self.json {
            |r, out| {
                r.write_json(out);
                out.push(b'\n');
            }
        } else if self.per_message {
            |r, out| {
                // (Writing to a `Vec` cannot fail.)
                let _ = writeln!(out, "{r}");
            }
        } else {
            |_, _| {}
        })
    }

    fn rendered(&mut self, bytes: &[u8]) {
        if !self.open || bytes.is_empty() {
            return;
        }
        self.open = self.out.write_all(bytes).is_ok();
        if self.flush_lines && self.open {
            self.open = self.out.flush().is_ok();
        }
    }

    fn problem(&mut self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("bouncectl: {text}")),
            None => eprintln!("bouncectl: {text}"),
        }
    }

    fn info(&mut self, text: &str) {
        if self.verbose > 0 {
            self.problem(text);
        }
    }

    fn progress(&mut self, site: &str, done: u64, total: u64) {
        // Only for long work on a terminal; cron sees nothing.
        if total < 200 || !io::stderr().is_terminal() {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
        bar.set_length(total);
        bar.set_message(site.to_string());
        bar.set_position(done);
        if done >= total {
            bar.finish_and_clear();
            self.bar = None;
        }
    }
}

fn check_cmd(g: &Global, config: &Config, a: &CheckArgs) -> anyhow::Result<Exit> {
    let opts = check::Options {
        paths: a.paths.clone(),
        site: a.site.clone(),
        dry_run: a.dry_run,
        db: ops::database_path(g.db.clone(), config),
        wait: Duration::from_secs(a.wait),
        now: bouncectl::time::now(),
        per_transaction: bouncectl::store::transaction_messages(),
    };
    let terminal = io::stdout().is_terminal();
    let mut obs = CheckObserver {
        json: g.json,
        verbose: g.verbose,
        per_message: !g.quiet && (a.dry_run || g.verbose > 0 || terminal),
        out: io::BufWriter::with_capacity(64 * 1024, io::stdout().lock()),
        line: Vec::new(),
        flush_lines: terminal,
        open: true,
        bar: None,
    };
    let report = check::run(config, &opts, &mut obs)?;
    if obs.open {
        if g.json {
            output::json_line(&mut obs.out, &report.summary);
        } else if !g.quiet {
            output::line(&mut obs.out, &report.summary);
        }
        let _ = obs.out.flush();
    }
    Ok(report.exit.unwrap_or(Exit::Ok))
}

fn stats_cmd(g: &Global, config: &Config, a: &StatsArgs) -> anyhow::Result<Exit> {
    let opts = stats::Options {
        db: ops::database_path(g.db.clone(), config),
        addresses: a.addresses.clone(),
        blocked: a.blocked,
        site: a.site.clone(),
    };
    let report = stats::run(&opts)?;
    let mut out = io::stdout().lock();
    match report {
        stats::Report::Blocked(list) => {
            if g.json {
                output::line(&mut out, &serde_json::to_string(&list)?);
            } else {
                for a in list {
                    if !output::line(&mut out, &a) {
                        break;
                    }
                }
            }
        }
        stats::Report::Totals(s) => {
            let text = if g.json {
                serde_json::to_string(&s)?
            } else {
                bouncectl::report::text::stats(&s)
            };
            output::line(&mut out, &text);
        }
        stats::Report::Addresses(list) => {
            for s in list {
                let text = if g.json {
                    serde_json::to_string(&s)?
                } else {
                    bouncectl::report::text::address(&s)
                };
                output::line(&mut out, &text);
            }
        }
    }
    Ok(Exit::Ok)
}

fn block_cmd(g: &Global, config: &Config, a: &BlockArgs) -> anyhow::Result<Exit> {
    let mut addresses = a.addresses.clone();
    if let Some(f) = &a.file {
        let reader: Box<dyn BufRead> = if f == "-" {
            Box::new(io::stdin().lock())
        } else {
            Box::new(io::BufReader::new(
                std::fs::File::open(f).with_context(|| format!("cannot read {f}"))?,
            ))
        };
        for line in reader.lines() {
            let line = line.with_context(|| format!("cannot read {f}"))?;
            let t = line.trim();
            if !t.is_empty() && !t.starts_with('#') {
                addresses.push(t.to_string());
            }
        }
    }
    let opts = admin::BlockOptions {
        db: ops::database_path(g.db.clone(), config),
        site: a.site.clone(),
        addresses,
        reason: a.reason.clone(),
        wait: Duration::from_secs(a.wait),
        now: bouncectl::time::now(),
    };
    let (site, n) = admin::block(config, &opts)?;
    // Like check's summary line: stdout, silent with -q.
    let mut out = io::stdout().lock();
    if g.json {
        let doc = serde_json::json!({"type": "block", "site": site, "newly_blocked": n});
        output::line(&mut out, &doc);
    } else if !g.quiet {
        output::line(&mut out, &format_args!("{n} newly blocked in site {site}"));
    }
    Ok(Exit::Ok)
}

fn reset_cmd(g: &Global, config: &Config, a: &ResetArgs) -> anyhow::Result<Exit> {
    let target = if a.all {
        ResetTarget::All
    } else if let Some(d) = a.older_than {
        ResetTarget::OlderThanDays(d)
    } else {
        ResetTarget::Addresses(a.addresses.clone())
    };
    let opts = admin::ResetOptions {
        db: ops::database_path(g.db.clone(), config),
        site: a.site.clone(),
        target,
        wait: Duration::from_secs(a.wait),
        now: bouncectl::time::now(),
    };
    let n = admin::reset(config, &opts)?;
    let mut out = io::stdout().lock();
    if g.json {
        let doc = serde_json::json!({"type": "reset", "site": a.site, "reset": n});
        output::line(&mut out, &doc);
    } else if !g.quiet {
        let site = a
            .site
            .as_deref()
            .map_or("every site".to_string(), |s| format!("site {s}"));
        output::line(&mut out, &format_args!("{n} counters reset in {site}"));
    }
    Ok(Exit::Ok)
}
