//! `check`: fetch, classify, record, then remove (SPEC section 5).
//!
//! The order inside each bounded batch is what makes the guarantees hold:
//! messages are classified, the batch is committed in one transaction (ledger,
//! counters, events, blocks), and only then are the recorded messages removed
//! from the server. A message whose source identity or fingerprint is in the
//! ledger is skipped, so a run that died anywhere is completed by the next.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{After, Config, Site};
use crate::exit::{Exit, ExitCode};
use crate::mailbox::local::{LocalMessage, Source};
use crate::mailbox::{self, BATCH_BYTES, BATCH_MESSAGES, MessageRef};
use crate::message::{self, Classification, Kind};
use crate::report::{Action, MessageReport, Summary};
use crate::store::{Fingerprint, Item, RunLock, Store};
use crate::time::Timestamp;

/// What the binary asks `check` to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Local sources; empty = every configured site's mailbox.
    pub paths: Vec<String>,
    /// `--site` for local sources (or to limit server runs to one site).
    pub site: Option<String>,
    /// Classify and report only.
    pub dry_run: bool,
    /// The database file.
    pub db: PathBuf,
    /// How long to wait for another run's lock.
    pub wait: Duration,
    /// The time to record events at.
    pub now: Timestamp,
}

/// Receives what `check` does as it happens.
pub trait Observer {
    /// One message processed (or failed).
    fn message(&mut self, report: &MessageReport);
    /// A one-line problem that does not stop the run (a site or file failed).
    fn problem(&mut self, text: &str);
    /// What is happening, for `-v` (never a secret).
    fn info(&mut self, _text: &str) {}
    /// Progress within a site's mailbox: `done` of `total` messages.
    fn progress(&mut self, _site: &str, _done: u64, _total: u64) {}
}

/// The result of a whole `check`.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub summary: Summary,
    /// The worst outcome of any site or source.
    pub exit: Option<Exit>,
}

impl Report {
    fn fail(&mut self, exit: Exit) {
        self.exit = Some(self.exit.unwrap_or(Exit::Ok).worst(exit));
        self.summary.errors += 1;
    }
}

/// Runs `check`. Whole-run failures (lock held, database unusable, bad
/// options) are errors; a failing site or file is reported to `observer` and
/// only changes [`Report::exit`].
pub fn run(
    config: &Config,
    opts: &Options,
    observer: &mut dyn Observer,
) -> Result<Report, super::Error> {
    let mut report = Report::default();
    let sites: Vec<&Site> = if !opts.paths.is_empty() || opts.site.is_some() {
        vec![super::pick_site(config, opts.site.as_deref())?]
    } else {
        config.sites.iter().collect()
    };
    if opts.paths.is_empty() && !sites.iter().any(|s| s.mailbox.is_some()) {
        return Err(super::Error::Usage(
            "no PATH given and no site has a [site.mailbox]: name files, a Maildir or an mbox to check".into(),
        ));
    }
    // Open every local source before recording anything: a bad path fails
    // the run with nothing recorded.
    let mut sources = Vec::new();
    for p in &opts.paths {
        sources.push(Source::open(p)?);
    }
    let (_lock, mut store) = if opts.dry_run {
        (None, None)
    } else {
        // Taking the lock creates the database's directory when needed.
        let lock = RunLock::acquire(&opts.db, opts.wait)?;
        (Some(lock), Some(Store::open(&opts.db)?))
    };
    let mut run = Run {
        config,
        opts,
        store: store.as_mut(),
        observer,
        report: &mut report,
    };
    if sources.is_empty() {
        for site in sites {
            let Some(mb) = &site.mailbox else { continue };
            if let Err(e) = run.server(site, mb) {
                let exit = e.exit();
                run.observer.problem(&format!("site {}: {e}", site.name));
                run.report.fail(exit);
                if exit == Exit::IoErr {
                    break; // the database is unusable: no other site can be recorded
                }
            }
        }
    } else {
        let site = sites[0];
        for source in sources {
            run.local(site, source)?;
        }
    }
    Ok(report)
}

/// Errors that end one site's run.
#[derive(Debug, thiserror::Error)]
enum SiteError {
    #[error(transparent)]
    Mailbox(#[from] mailbox::Error),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

impl ExitCode for SiteError {
    fn exit(&self) -> Exit {
        match self {
            SiteError::Mailbox(e) => e.exit(),
            SiteError::Store(e) => e.exit(),
        }
    }
}

struct Run<'a> {
    config: &'a Config,
    opts: &'a Options,
    store: Option<&'a mut Store>,
    observer: &'a mut dyn Observer,
    report: &'a mut Report,
}

/// A message fetched and classified, waiting for its batch to commit.
struct Pending {
    uid: Option<String>,
    source_uid: Option<String>,
    fingerprint: Fingerprint,
    classification: Classification,
    server_ref: Option<MessageRef>,
}

impl Run<'_> {
    fn local(&mut self, site: &Site, source: Source) -> Result<(), super::Error> {
        let name = source.name().to_string();
        let mut uids: Vec<Option<String>> = Vec::new();
        let mut raws: Vec<Vec<u8>> = Vec::new();
        let mut bytes = 0u64;
        for msg in source {
            match msg {
                Ok(LocalMessage { uid, bytes: raw }) => {
                    bytes += raw.len() as u64;
                    uids.push(uid);
                    raws.push(raw);
                }
                Err(e) => {
                    self.observer.problem(&e.to_string());
                    self.report.fail(e.exit());
                    self.report.summary.messages += 1;
                    self.observer
                        .message(&error_report(&name, None, &e.to_string()));
                }
            }
            if raws.len() >= BATCH_MESSAGES || bytes >= BATCH_BYTES {
                let batch = pending(
                    site,
                    std::mem::take(&mut uids),
                    std::mem::take(&mut raws),
                    None,
                );
                self.commit(site, &name, batch, None)?;
                bytes = 0;
            }
        }
        let batch = pending(site, uids, raws, None);
        self.commit(site, &name, batch, None)?;
        Ok(())
    }

    fn server(&mut self, site: &Site, settings: &crate::config::Mailbox) -> Result<(), SiteError> {
        let mut mb = mailbox::open(settings)?;
        let name = format!("{}:{}", site.name, mb.describe());
        let refs = mb.list()?;
        let total = refs.len() as u64;
        self.observer.info(&format!(
            "site {}: {} lists {total} messages",
            site.name,
            mb.describe()
        ));
        let removable = |kind: Kind| {
            settings.after != After::Keep && (kind != Kind::NotBounce || site.delete_unrecognized)
        };
        let mut done = 0u64;
        let mut start = 0;
        while start < refs.len() {
            // A batch: bounded in count and bytes (at least one message).
            let mut end = start;
            let mut bytes = 0u64;
            while end < refs.len()
                && end - start < BATCH_MESSAGES
                && (end == start || bytes + refs[end].size <= BATCH_BYTES)
            {
                bytes += refs[end].size;
                end += 1;
            }
            let chunk = &refs[start..end];
            start = end;

            let mut to_fetch = Vec::new();
            let mut seen_remove = Vec::new();
            for r in chunk {
                let known = match self.store.as_deref() {
                    Some(store) => store.lookup_uid(&site.name, &r.uid)?,
                    None => None,
                };
                match known {
                    Some(kind) => {
                        self.report.summary.messages += 1;
                        self.report.summary.already_seen += 1;
                        if removable(kind) {
                            seen_remove.push(r.clone());
                        }
                        self.observer.message(&MessageReport {
                            kind_tag: "message",
                            source: name.clone(),
                            uid: Some(r.uid.clone()),
                            message_id: None,
                            kind: Some(kind),
                            recipients: Vec::new(),
                            action_taken: Action::AlreadySeen,
                            note: None,
                        });
                    }
                    None => to_fetch.push(r.clone()),
                }
            }
            let raws = if to_fetch.is_empty() {
                Vec::new()
            } else {
                mb.fetch(&to_fetch)?
            };
            let uids = to_fetch.iter().map(|r| Some(r.uid.clone())).collect();
            let batch = pending(site, uids, raws, Some(to_fetch));
            let removed = self.commit(site, &name, batch, Some(&removable))?;
            if let Some(store) = self.store.as_deref_mut() {
                let mut remove: Vec<MessageRef> = seen_remove;
                remove.extend(removed);
                if !remove.is_empty() {
                    store.sync()?; // the commit is on disk before anything is deleted
                    mb.remove(&remove)?;
                    self.report.summary.deleted += remove.len() as u64;
                }
            }
            done += chunk.len() as u64;
            self.observer.progress(&site.name, done, total);
        }
        mb.finish()?;
        self.observer
            .info(&format!("site {}: session closed", site.name));
        Ok(())
    }

    /// Commits one batch (unless dry run), reports each message, and returns
    /// the server messages that may now be removed.
    fn commit(
        &mut self,
        site: &Site,
        source: &str,
        batch: Vec<Pending>,
        removable: Option<&dyn Fn(Kind) -> bool>,
    ) -> Result<Vec<MessageRef>, crate::store::Error> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let outcomes = match self.store.as_deref_mut() {
            Some(store) => {
                let items: Vec<Item<'_>> = batch
                    .iter()
                    .map(|p| Item {
                        source_uid: p.source_uid.as_deref(),
                        fingerprint: p.fingerprint,
                        classification: &p.classification,
                    })
                    .collect();
                Some(store.record_batch(self.config, &site.name, &items, self.opts.now)?)
            }
            None => None,
        };
        let mut remove = Vec::new();
        for (i, p) in batch.into_iter().enumerate() {
            let kind = p.classification.kind;
            let outcome = outcomes.as_ref().map(|o| &o[i]);
            let removing =
                outcome.is_some() && p.server_ref.is_some() && removable.is_some_and(|f| f(kind));
            let action = match outcome {
                None => Action::DryRun,
                Some(o) if o.already_seen => Action::AlreadySeen,
                Some(_) if removing => match site.mailbox.as_ref().map(|m| &m.after) {
                    Some(After::Move(_)) => Action::Moved,
                    _ => Action::Deleted,
                },
                Some(_) => Action::Recorded,
            };
            match outcome {
                Some(o) if o.already_seen => {
                    self.report.summary.messages += 1;
                    self.report.summary.already_seen += 1;
                }
                Some(o) => {
                    self.report.summary.add_kind(kind);
                    self.report.summary.counted += u64::from(o.counted);
                    self.report.summary.newly_blocked += o.newly_blocked.len() as u64;
                }
                None => self.report.summary.add_kind(kind),
            }
            if removing {
                remove.extend(p.server_ref);
            }
            self.observer.message(&MessageReport {
                kind_tag: "message",
                source: source.to_string(),
                uid: p.uid,
                message_id: p.classification.message_id,
                kind: Some(kind),
                recipients: p.classification.recipients,
                action_taken: action,
                note: p.classification.explanation,
            });
        }
        Ok(remove)
    }
}

/// Fingerprints and classifies a batch, spread over the machine's cores
/// (the classifier is pure, so messages are independent), keeping order.
/// `refs` are the server messages the raw bytes came from, if any.
fn pending(
    site: &Site,
    uids: Vec<Option<String>>,
    raws: Vec<Vec<u8>>,
    refs: Option<Vec<MessageRef>>,
) -> Vec<Pending> {
    let opts = message::Options {
        verp: site.verp.clone(),
    };
    let one = |raw: &Vec<u8>| (Fingerprint::of(raw), message::classify(raw, &opts));
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let verdicts: Vec<(Fingerprint, Classification)> = if workers < 2 || raws.len() < 8 {
        raws.iter().map(one).collect()
    } else {
        let chunk = raws.len().div_ceil(workers);
        std::thread::scope(|scope| {
            let handles: Vec<_> = raws
                .chunks(chunk)
                .map(|part| scope.spawn(move || part.iter().map(one).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };
    drop(raws);
    let mut refs = refs.map(Vec::into_iter);
    uids.into_iter()
        .zip(verdicts)
        .map(|(uid, (fingerprint, classification))| {
            let server_ref = refs.as_mut().and_then(Iterator::next);
            Pending {
                source_uid: server_ref.as_ref().map(|r| r.uid.clone()),
                uid,
                fingerprint,
                classification,
                server_ref,
            }
        })
        .collect()
}

fn error_report(source: &str, uid: Option<String>, note: &str) -> MessageReport {
    MessageReport {
        kind_tag: "message",
        source: source.to_string(),
        uid,
        message_id: None,
        kind: None,
        recipients: Vec::new(),
        action_taken: Action::Error,
        note: Some(note.to_string()),
    }
}
