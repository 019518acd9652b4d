//! `check`: fetch, classify, record, then remove (SPEC section 5).
//!
//! The order is what makes the guarantees hold: messages are fetched and
//! classified in bounded batches and recorded (ledger, counters, events,
//! blocks) in a transaction that spans several batches, up to
//! [`store::TRANSACTION_MESSAGES`] messages or [`store::TRANSACTION_TIME`];
//! only after its commit (and an fsync) are its messages removed from the
//! server and reported. A message whose source identity or fingerprint is in
//! the ledger is skipped, so a run that died anywhere is completed by the
//! next. The batch bounds memory; the transaction is the unit of durability.
//!
//! Batches are pipelined so that both cores stay busy: while batch k is
//! classified on worker threads, this thread looks up batch k+1 in the
//! ledger (or reads the next messages of a file or mbox) and records batch
//! k-1 in the open transaction, committing it and removing what it
//! recorded when it is due; meanwhile the mailbox's own worker reads batch
//! k+1 from the server (`mailbox::ahead`). A remove still only ever follows
//! the commit of what it removes.
//!
//! A directory has no batches: one thread per core, this one among them,
//! reads each file just before classifying it (and on a dry run renders
//! its report there too, [`Observer::renderer`]), and this thread records
//! or shows the files' verdicts in order as they come
//! (`parallel::in_order`, which bounds how far ahead the others run).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::parallel::{in_order, in_parallel};
use crate::config::{After, Config, Site};
use crate::exit::{Exit, ExitCode};
use crate::mailbox::local::{Dir, Error as LocalError, FileRef, Source};
use crate::mailbox::{
    self, BATCH_BYTES, BATCH_MESSAGES, FIRST_BATCH_MESSAGES as FIRST_BATCH, Mailbox, MessageRef,
};
use crate::message::{self, Classification, Kind};
use crate::report::{Action, MessageReport, Summary};
use crate::store::{self, Fingerprint, Item, RunLock, Store};
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
    /// Messages per recording transaction at most
    /// ([`store::transaction_messages`]).
    pub per_transaction: usize,
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
    /// How this observer shows a message, if it can be done on the
    /// classifying threads. A dry run's report of a local message is final
    /// once the message is classified, so with a renderer each report is
    /// rendered there and the bytes come to [`Observer::rendered`], in
    /// order and a few messages at a time, instead of the report to
    /// [`Observer::message`]. (This thread then only reads files and
    /// writes; building, writing and freeing each report here made it the
    /// pipeline's slowest stage.)
    fn renderer(&self) -> Option<Render> {
        None
    }
    /// The rendered reports of one or more messages, in order.
    fn rendered(&mut self, _bytes: &[u8]) {}
}

/// Appends what an observer shows of one message to the buffer.
pub type Render = fn(&MessageReport, &mut Vec<u8>);

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
    // The classifier's automata are built while sources are opened and the
    // first messages read or fetched, instead of while every worker waits.
    std::thread::spawn(message::prepare);
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
    let mut run = Run::new(config, opts, store.as_mut(), observer, &mut report);
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
    /// What the open recording transaction holds, reported and removed
    /// only once it is committed.
    open: Open,
    /// When to commit: after this many messages or this long.
    unit: (usize, Duration),
}

/// The messages of the open recording transaction (several batches).
#[derive(Default)]
struct Open {
    /// Their reports, in order, waiting for the commit.
    unsent: Vec<Unsent>,
    /// Server messages to remove after the commit.
    remove: Vec<MessageRef>,
    /// When the first of them was recorded.
    since: Option<Instant>,
}

/// A message report waiting for its transaction's commit, and what it adds
/// to the summary then.
struct Unsent {
    report: MessageReport,
    tally: Tally,
}

enum Tally {
    /// In the ledger already (an earlier run or transaction, or a copy).
    Seen,
    /// Recorded now; removed from the server after the commit if `removing`.
    Recorded {
        kind: Kind,
        counted: u32,
        blocked: u64,
        removing: bool,
    },
}

/// A batch of server messages: looked up in the ledger, then fetched and
/// classified, waiting for its commit.
struct Planned {
    /// Reports of the messages already recorded, shown with the batch.
    seen: Vec<MessageReport>,
    /// Already recorded and to be removed per `after`.
    seen_remove: Vec<MessageRef>,
    /// Not recorded yet: to fetch.
    to_fetch: Vec<MessageRef>,
    /// The fetched messages, classified.
    batch: Vec<Pending>,
    /// Listed messages in the batch, for progress.
    listed: u64,
}

/// A batch of local messages, read one after another into one buffer.
#[derive(Default)]
struct LocalBatch {
    uids: Vec<Option<String>>,
    bytes: Vec<u8>,
    /// Where each message ends in `bytes` (it starts where the one before
    /// ends).
    ends: Vec<usize>,
}

/// Each message's bytes in a [`LocalBatch`]'s `bytes`, in order.
fn messages<'b>(bytes: &'b [u8], ends: &[usize]) -> Vec<&'b [u8]> {
    let mut start = 0;
    ends.iter()
        .map(|&end| {
            let m = &bytes[start..end];
            start = end;
            m
        })
        .collect()
}

/// A classified local batch, waiting to be recorded or shown.
enum Classified {
    /// Each message's verdict, or why its file could not be read.
    Verdicts(Vec<Result<Pending, LocalError>>),
    /// A dry run's, rendered by the observer's [`Render`].
    Rendered(Vec<Rendered>),
}

/// A message fetched and classified, waiting for its batch to commit.
struct Pending {
    uid: Option<String>,
    source_uid: Option<String>,
    fingerprint: Fingerprint,
    classification: Classification,
    server_ref: Option<MessageRef>,
}

impl<'a> Run<'a> {
    fn new(
        config: &'a Config,
        opts: &'a Options,
        store: Option<&'a mut Store>,
        observer: &'a mut dyn Observer,
        report: &'a mut Report,
    ) -> Run<'a> {
        Run {
            config,
            opts,
            store,
            observer,
            report,
            open: Open::default(),
            unit: (opts.per_transaction.max(1), store::TRANSACTION_TIME),
        }
    }

    fn local(&mut self, site: &Site, source: Source) -> Result<(), super::Error> {
        let name = source.name().to_string();
        match source.into_files() {
            Ok((dir, files)) => self.local_files(site, &name, &dir, &files),
            Err(source) => self.local_stream(site, &name, source),
        }
    }

    /// A directory's files, a batch at a time: each file is read by the
    /// worker that classifies it (so the cores share the kernel's work of
    /// opening and reading too, and nothing waits for a batch to be read)
    /// while this thread records or shows the batch before.
    fn local_files(
        &mut self,
        site: &Site,
        name: &str,
        dir: &Dir,
        files: &[FileRef],
    ) -> Result<(), super::Error> {
        // One pool of threads for the whole directory, this one among
        // them: each part is recorded (or shown) as soon as it and the
        // parts before it are done.
        match self.dry_renderer() {
            Some(render) => read_render(site, name, (dir, files), render, |part| {
                self.settle(site, name, Classified::Rendered(vec![part]))
            })?,
            None => {
                let recording = self.store.is_some();
                read_classify(site, (dir, files), recording, |part| {
                    self.settle(site, name, Classified::Verdicts(part))
                })?
            }
        }
        self.flush_local(site)?;
        Ok(())
    }

    /// A stream (a file, an mbox, stdin): read in order on this thread, a
    /// batch at a time, while the batch before is classified.
    fn local_stream(
        &mut self,
        site: &Site,
        name: &str,
        mut source: Source,
    ) -> Result<(), super::Error> {
        // A small first batch, and each batch at most twice the one before
        // up to the full size: the workers start after a few reads instead
        // of idling through a thousand. (Reading and recording a full batch
        // now takes this thread about as long as the two workers take to
        // classify it, so while batches grow the workers wait a few ms for
        // the larger read; growing by 1.5× instead measured no faster.)
        let mut limit = FIRST_BATCH;
        let mut next = self.read_batch(name, &mut source, limit, Vec::new());
        let render = self.dry_renderer();
        let recording = self.store.is_some();
        let mut waiting: Option<Classified> = None;
        // The buffer of the batch before last, for the next batch to read
        // into (two batches are held at a time: one classified, one read).
        let mut spare = Vec::new();
        while !next.uids.is_empty() {
            let LocalBatch { uids, bytes, ends } = std::mem::take(&mut next);
            let raws = messages(&bytes, &ends);
            // Record (or show) the previous batch and read the next while
            // this one is classified.
            let meanwhile = || {
                if let Some(done) = waiting.take() {
                    self.settle(site, name, done)?;
                }
                let buf = std::mem::take(&mut spare);
                limit = (2 * limit).min(BATCH_MESSAGES);
                next = self.read_batch(name, &mut source, limit, buf);
                Ok::<(), crate::store::Error>(())
            };
            let (done, committed) = match render {
                Some(render) => {
                    let (parts, committed) =
                        render_while(site, name, (&uids, &raws), render, meanwhile);
                    (Classified::Rendered(parts), committed)
                }
                None => {
                    let (verdicts, committed) = classify_while(site, &raws, recording, meanwhile);
                    let pending = assemble(uids, verdicts, None).into_iter().map(Ok);
                    (Classified::Verdicts(pending.collect()), committed)
                }
            };
            committed?;
            drop(raws);
            // Kept unless one huge message made it far larger than a batch.
            if bytes.capacity() <= 2 * BATCH_BYTES as usize {
                spare = bytes;
            }
            waiting = Some(done);
        }
        if let Some(done) = waiting {
            self.settle(site, name, done)?;
        }
        self.flush_local(site)?;
        Ok(())
    }

    /// The observer's renderer on a dry run: a dry run's reports can be
    /// rendered where they are classified (a recorded one's wait for the
    /// commit).
    fn dry_renderer(&self) -> Option<Render> {
        match self.store {
            None => self.observer.renderer(),
            Some(_) => None,
        }
    }

    /// Records a classified local batch in the open transaction (committing
    /// when due), or shows a rendered one.
    fn settle(
        &mut self,
        site: &Site,
        source: &str,
        done: Classified,
    ) -> Result<(), crate::store::Error> {
        match done {
            Classified::Verdicts(read) => {
                let mut batch = Vec::with_capacity(read.len());
                for r in read {
                    match r {
                        Ok(p) => batch.push(p),
                        Err(e) => self.unreadable(source, &e),
                    }
                }
                self.record_batch(site, source, batch, None)?;
                if self.due() {
                    self.flush_local(site)?;
                }
            }
            Classified::Rendered(parts) => {
                for part in parts {
                    // Up to each unreadable file's error, then the rest.
                    let mut from = 0;
                    for (outcome, end) in part.each {
                        match outcome {
                            Ok(kind) => self.report.summary.add_kind(kind),
                            Err(e) => {
                                self.observer.rendered(&part.bytes[from..end]);
                                from = end;
                                self.unreadable(source, &e);
                            }
                        }
                    }
                    self.observer.rendered(&part.bytes[from..]);
                }
            }
        }
        Ok(())
    }

    /// Reports a local message that could not be read.
    fn unreadable(&mut self, source: &str, e: &LocalError) {
        self.observer.problem(&e.to_string());
        self.report.fail(e.exit());
        self.report.summary.messages += 1;
        self.observer
            .message(&error_report(source, None, &e.to_string()));
    }

    /// Reads the next batch of a local source (empty at its end) into
    /// `buf` (emptied first); files that cannot be read are reported here.
    fn read_batch(
        &mut self,
        name: &str,
        source: &mut Source,
        limit: usize,
        mut buf: Vec<u8>,
    ) -> LocalBatch {
        buf.clear();
        // A batch's worth at once: grown a file at a time, the buffer
        // would be copied and its new pages faulted in at every doubling.
        // (Untouched pages of a small source's buffer cost nothing.)
        buf.reserve(BATCH_BYTES as usize);
        let mut batch = LocalBatch {
            uids: Vec::new(),
            bytes: buf,
            ends: Vec::new(),
        };
        while batch.uids.len() < limit && (batch.bytes.len() as u64) < BATCH_BYTES {
            match source.next_into(&mut batch.bytes) {
                None => break,
                Some(Ok(uid)) => {
                    batch.uids.push(uid);
                    batch.ends.push(batch.bytes.len());
                }
                Some(Err(e)) => self.unreadable(name, &e),
            }
        }
        batch
    }

    fn server(&mut self, site: &Site, settings: &crate::config::Mailbox) -> Result<(), SiteError> {
        let mb = mailbox::open(settings)?;
        self.session(site, settings, mb)
    }

    /// Processes a logged-in mailbox.
    fn session(
        &mut self,
        site: &Site,
        settings: &crate::config::Mailbox,
        mut mb: Box<dyn Mailbox>,
    ) -> Result<(), SiteError> {
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
        let chunks = batches(&refs);
        let mut progress = (0u64, total);
        let mut next = match chunks.first() {
            Some(c) => Some(self.look_up(site, &name, &refs[c.clone()], &removable)?),
            None => None,
        };
        let mut waiting: Option<Planned> = None;
        for i in 1..=chunks.len() {
            let Some(mut plan) = next.take() else { break };
            let to_fetch = std::mem::take(&mut plan.to_fetch);
            let raws = if to_fetch.is_empty() {
                Vec::new()
            } else {
                match mb.fetch(&to_fetch) {
                    Ok(raws) => raws,
                    Err(e) => {
                        // The session is broken: keep what was classified,
                        // remove nothing.
                        if let Some(prev) = waiting.take() {
                            self.record(site, &name, prev, None, &removable, &mut progress)?;
                        }
                        self.flush(site, None)?;
                        return Err(e.into());
                    }
                }
            };
            // While this batch is classified: look up the next one, then
            // record the previous one (committing and removing when due;
            // a remove waits for the mailbox's read-ahead of the next
            // batch, which can be asked for once the lookup is done).
            let recording = self.store.is_some();
            let (verdicts, meanwhile) = classify_while(site, &raws, recording, || {
                let planned = chunks
                    .get(i)
                    .map(|c| self.look_up(site, &name, &refs[c.clone()], &removable))
                    .transpose()?;
                if let Some(prev) = waiting.take() {
                    self.record(
                        site,
                        &name,
                        prev,
                        Some(mb.as_mut()),
                        &removable,
                        &mut progress,
                    )?;
                }
                Ok::<_, SiteError>(planned)
            });
            next = meanwhile?;
            drop(raws);
            let uids = to_fetch.iter().map(|r| Some(r.uid.clone())).collect();
            plan.batch = assemble(uids, verdicts, Some(to_fetch));
            waiting = Some(plan);
        }
        if let Some(prev) = waiting {
            self.record(
                site,
                &name,
                prev,
                Some(mb.as_mut()),
                &removable,
                &mut progress,
            )?;
        }
        self.flush(site, Some(mb.as_mut()))?;
        mb.finish()?;
        self.observer
            .info(&format!("site {}: session closed", site.name));
        Ok(())
    }

    /// Looks up a batch of listed messages in the ledger: the ones already
    /// recorded are reported with the batch, the others are to be fetched.
    fn look_up(
        &mut self,
        site: &Site,
        name: &str,
        chunk: &[MessageRef],
        removable: &dyn Fn(Kind) -> bool,
    ) -> Result<Planned, SiteError> {
        let mut plan = Planned {
            seen: Vec::new(),
            seen_remove: Vec::new(),
            to_fetch: Vec::new(),
            batch: Vec::new(),
            listed: chunk.len() as u64,
        };
        for r in chunk {
            let known = match self.store.as_deref() {
                Some(store) => store.lookup_uid(&site.name, &r.uid)?,
                None => None,
            };
            match known {
                Some(kind) => {
                    if removable(kind) {
                        plan.seen_remove.push(r.clone());
                    }
                    plan.seen.push(MessageReport {
                        kind_tag: "message",
                        source: name.to_string(),
                        uid: Some(r.uid.clone()),
                        message_id: None,
                        kind: Some(kind),
                        recipients: Vec::new(),
                        action_taken: Action::AlreadySeen,
                        note: None,
                    });
                }
                None => plan.to_fetch.push(r.clone()),
            }
        }
        Ok(plan)
    }

    /// Records a classified batch in the open transaction, and commits it
    /// (then removes from `mb`) once it is due; with no `mb` (the session
    /// failed), nothing is removed.
    fn record(
        &mut self,
        site: &Site,
        name: &str,
        plan: Planned,
        mut mb: Option<&mut dyn Mailbox>,
        removable: &dyn Fn(Kind) -> bool,
        (done, total): &mut (u64, u64),
    ) -> Result<(), SiteError> {
        self.open
            .unsent
            .extend(plan.seen.into_iter().map(|report| Unsent {
                report,
                tally: Tally::Seen,
            }));
        if mb.is_some() {
            // (Only ever non-empty when recording: the ledger said so.)
            self.open.remove.extend(plan.seen_remove);
        }
        self.record_batch(site, name, plan.batch, mb.is_some().then_some(removable))?;
        *done += plan.listed;
        self.observer.progress(&site.name, *done, *total);
        if self.due() {
            self.flush(site, mb.take())?;
        }
        Ok(())
    }

    /// The open transaction is full or old enough to commit.
    fn due(&self) -> bool {
        self.open.unsent.len() >= self.unit.0
            || self.open.since.is_some_and(|t| t.elapsed() >= self.unit.1)
    }

    /// Records one batch in the open transaction (reporting it at once on a
    /// dry run) and queues the server messages to remove after the commit.
    fn record_batch(
        &mut self,
        site: &Site,
        source: &str,
        batch: Vec<Pending>,
        removable: Option<&dyn Fn(Kind) -> bool>,
    ) -> Result<(), crate::store::Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let Some(store) = self.store.as_deref_mut() else {
            // One copy of the source's name, moved from each report (gone
            // once shown) to the next.
            let mut name = source.to_string();
            for p in batch {
                self.report.summary.add_kind(p.classification.kind);
                let report = message_report(name, p.uid, p.classification, Action::DryRun);
                self.observer.message(&report);
                name = report.source;
            }
            return Ok(());
        };
        let items: Vec<Item<'_>> = batch
            .iter()
            .map(|p| Item {
                source_uid: p.source_uid.as_deref(),
                fingerprint: p.fingerprint,
                classification: &p.classification,
            })
            .collect();
        let outcomes = match store.record(self.config, &site.name, &items, self.opts.now) {
            Ok(o) => o,
            Err(e) => {
                // Rolled back: nothing queued was recorded, so nothing may
                // be reported as recorded or removed.
                self.open = Open::default();
                return Err(e);
            }
        };
        drop(items);
        self.open.since.get_or_insert_with(Instant::now);
        for (p, o) in batch.into_iter().zip(outcomes) {
            let kind = p.classification.kind;
            // A copy of a recorded message goes the same way as the first.
            let removing = p.server_ref.is_some() && removable.is_some_and(|f| f(kind));
            if removing {
                self.open.remove.extend(p.server_ref.clone());
            }
            let tally = if o.already_seen {
                Tally::Seen
            } else {
                Tally::Recorded {
                    kind,
                    counted: o.counted,
                    blocked: o.newly_blocked.len() as u64,
                    removing,
                }
            };
            self.open.unsent.push(Unsent {
                // The action is settled by `emit`, after the commit.
                report: message_report(
                    source.to_string(),
                    p.uid,
                    p.classification,
                    Action::Recorded,
                ),
                tally,
            });
        }
        Ok(())
    }

    /// Commits the open transaction and takes what it holds. On failure
    /// it was rolled back: nothing to report or remove.
    fn commit_open(&mut self) -> Result<Open, crate::store::Error> {
        let open = std::mem::take(&mut self.open);
        if let Some(store) = self.store.as_deref_mut() {
            store.commit()?;
        }
        Ok(open)
    }

    /// Commits the open transaction and reports its messages (local
    /// sources: nothing to remove).
    fn flush_local(&mut self, site: &Site) -> Result<(), crate::store::Error> {
        let open = self.commit_open()?;
        self.emit(site, open.unsent, false);
        Ok(())
    }

    /// Commits the open transaction, makes it durable and removes its
    /// server messages (with `mb`), then reports its messages. A failed
    /// sync or removal is returned after the reports, which then say
    /// `recorded` for what was not removed.
    fn flush(&mut self, site: &Site, mb: Option<&mut dyn Mailbox>) -> Result<(), SiteError> {
        let open = self.commit_open()?;
        let mut result = Ok(());
        let mut removed = false;
        if let (Some(store), Some(mb), false) =
            (self.store.as_deref_mut(), mb, open.remove.is_empty())
        {
            // The commit is on disk before anything is deleted.
            result = store.sync().map_err(SiteError::from).and_then(|()| {
                mb.remove(&open.remove)?;
                Ok(())
            });
            removed = result.is_ok();
            if removed {
                self.report.summary.deleted += open.remove.len() as u64;
            }
        }
        self.emit(site, open.unsent, removed);
        result
    }

    /// Reports committed messages and adds them to the summary; `removed`:
    /// the ones marked for removal are gone from the server.
    fn emit(&mut self, site: &Site, unsent: Vec<Unsent>, removed: bool) {
        let gone = match site.mailbox.as_ref().map(|m| &m.after) {
            Some(After::Move(_)) => Action::Moved,
            _ => Action::Deleted,
        };
        for Unsent { mut report, tally } in unsent {
            let summary = &mut self.report.summary;
            report.action_taken = match tally {
                Tally::Seen => {
                    summary.messages += 1;
                    summary.already_seen += 1;
                    Action::AlreadySeen
                }
                Tally::Recorded {
                    kind,
                    counted,
                    blocked,
                    removing,
                } => {
                    summary.add_kind(kind);
                    summary.counted += u64::from(counted);
                    summary.newly_blocked += blocked;
                    if removing && removed {
                        gone
                    } else {
                        Action::Recorded
                    }
                }
            };
            self.observer.message(&report);
        }
    }
}

/// The report of a classified message.
fn message_report(
    source: String,
    uid: Option<String>,
    c: Classification,
    action: Action,
) -> MessageReport {
    MessageReport {
        kind_tag: "message",
        source,
        uid,
        message_id: c.message_id,
        kind: Some(c.kind),
        recipients: c.recipients,
        action_taken: action,
        note: c.explanation,
    }
}

/// Splits the listing into batches bounded in count and bytes (each at
/// least one message).
fn batches(refs: &[MessageRef]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < refs.len() {
        // A small first batch, as for local sources: the workers start on
        // it while the mailbox's worker fetches the next.
        let cap = if start == 0 {
            FIRST_BATCH
        } else {
            BATCH_MESSAGES
        };
        let mut end = start;
        let mut bytes = 0u64;
        while end < refs.len()
            && end - start < cap
            && (end == start || bytes + refs[end].size <= BATCH_BYTES)
        {
            bytes += refs[end].size;
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

/// Fingerprints (unless `fingerprint` is false: a dry run records nothing)
/// and classifies a batch on worker threads (the classifier is pure, so
/// messages are independent), keeping order, while `meanwhile` runs on
/// this thread.
fn classify_while<R: AsRef<[u8]> + Sync, T>(
    site: &Site,
    raws: &[R],
    fingerprint: bool,
    meanwhile: impl FnOnce() -> T,
) -> (Vec<(Fingerprint, Classification)>, T) {
    let opts = classifier_options(site);
    let (parts, during) = in_parallel(
        raws,
        |_, part| {
            part.iter()
                .map(|raw| verdict(raw.as_ref(), fingerprint, &opts))
                .collect::<Vec<_>>()
        },
        meanwhile,
    );
    (parts.into_iter().flatten().collect(), during)
}

/// What the classifier needs to know of a site.
fn classifier_options(site: &Site) -> message::Options {
    message::Options {
        verp: site.verp.clone(),
    }
}

/// A message's fingerprint (unless `fingerprint` is false) and verdict.
fn verdict(
    raw: &[u8],
    fingerprint: bool,
    opts: &message::Options,
) -> (Fingerprint, Classification) {
    let fp = if fingerprint {
        Fingerprint::of(raw)
    } else {
        Fingerprint([0; 32])
    };
    (fp, message::classify(raw, opts))
}

/// Some messages of a dry run, classified and rendered.
struct Rendered {
    /// What the observer shows of them.
    bytes: Vec<u8>,
    /// Each message in turn: its kind (for the summary), or why its file
    /// could not be read; and where its rendering ends in `bytes`.
    each: Vec<(Result<Kind, LocalError>, usize)>,
}

impl Rendered {
    fn with_capacity(messages: usize) -> Rendered {
        Rendered {
            // A JSON report is about 500 bytes.
            bytes: Vec::with_capacity(messages * 512),
            each: Vec::with_capacity(messages),
        }
    }
}

/// Classifies a dry run's messages one after another on a worker, and
/// renders each one's report there.
struct Renderer<'a> {
    render: Render,
    opts: &'a message::Options,
    /// One copy of the source's name, moved from each report to the next.
    name: String,
}

impl Renderer<'_> {
    /// Classifies `raw` and appends its rendered report to `out`.
    fn one(&mut self, raw: &[u8], uid: Option<String>, out: &mut Vec<u8>) -> Kind {
        let c = message::classify(raw, self.opts);
        let kind = c.kind;
        let name = std::mem::take(&mut self.name);
        let report = message_report(name, uid, c, Action::DryRun);
        (self.render)(&report, out);
        self.name = report.source;
        kind
    }
}

/// A dry run over a directory's files: each file is read, classified and
/// its report rendered by one of the threads ([`in_order`]), and `show`
/// is given the rendered parts in the order of the files.
fn read_render<E>(
    site: &Site,
    source: &str,
    (dir, files): (&Dir, &[FileRef]),
    render: Render,
    show: impl FnMut(Rendered) -> Result<(), E>,
) -> Result<(), E> {
    let opts = classifier_options(site);
    let worker = || {
        let renderer = Renderer {
            render,
            opts: &opts,
            name: source.to_string(),
        };
        (renderer, Vec::with_capacity(READ_BUFFER))
    };
    let part = |(renderer, buf): &mut (Renderer, Vec<u8>), _, files: &[FileRef]| {
        let mut out = Rendered::with_capacity(files.len());
        for &file in files {
            buf.clear();
            let outcome = dir
                .read_into(file, buf)
                .map(|uid| renderer.one(buf, Some(uid), &mut out.bytes));
            out.each.push((outcome, out.bytes.len()));
        }
        out
    };
    in_order(files, worker, part, show)
}

/// A recorded run (or an observer without a renderer) over a directory's
/// files: each file is read, fingerprinted when `fingerprint`, and
/// classified by one of the threads ([`in_order`]), and `record` is given
/// the verdicts in the order of the files.
fn read_classify<E>(
    site: &Site,
    (dir, files): (&Dir, &[FileRef]),
    fingerprint: bool,
    record: impl FnMut(Vec<Result<Pending, LocalError>>) -> Result<(), E>,
) -> Result<(), E> {
    let opts = classifier_options(site);
    let worker = || Vec::with_capacity(READ_BUFFER);
    let part = |buf: &mut Vec<u8>, _, files: &[FileRef]| {
        let mut read = Vec::with_capacity(files.len());
        for &file in files {
            buf.clear();
            read.push(dir.read_into(file, buf).map(|uid| {
                let (fingerprint, classification) = verdict(buf, fingerprint, &opts);
                Pending {
                    uid: Some(uid),
                    source_uid: None,
                    fingerprint,
                    classification,
                    server_ref: None,
                }
            }));
        }
        read
    };
    in_order(files, worker, part, record)
}

/// Room a worker's read buffer starts with: most bounces fit.
const READ_BUFFER: usize = 64 * 1024;

/// Classifies a dry run's local batch and renders each message's report
/// with `render` on worker threads (each report is built, rendered and
/// freed on the thread that classified it) while this thread runs
/// `meanwhile`.
fn render_while<T>(
    site: &Site,
    source: &str,
    batch: (&[Option<String>], &[&[u8]]),
    render: Render,
    meanwhile: impl FnOnce() -> T,
) -> (Vec<Rendered>, T) {
    let (uids, raws) = batch;
    let opts = classifier_options(site);
    let part = |start: usize, part: &[&[u8]]| {
        let mut out = Rendered::with_capacity(part.len());
        let mut renderer = Renderer {
            render,
            opts: &opts,
            name: source.to_string(),
        };
        for (raw, uid) in part.iter().zip(&uids[start..]) {
            let kind = renderer.one(raw, uid.clone(), &mut out.bytes);
            out.each.push((Ok(kind), out.bytes.len()));
        }
        out
    };
    in_parallel(raws, part, meanwhile)
}

/// Pairs each message's identity with its verdict. `refs` are the server
/// messages the raw bytes came from, if any.
fn assemble(
    uids: Vec<Option<String>>,
    verdicts: Vec<(Fingerprint, Classification)>,
    refs: Option<Vec<MessageRef>>,
) -> Vec<Pending> {
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::mailbox::Error as MailboxError;
    use crate::mailbox::ahead::ReadAhead;

    /// A mailbox that, at each `remove`, checks from a second database
    /// connection (which sees only committed data) that every message is
    /// already recorded. Fetching message `fail_at` fails.
    struct Witness {
        db: PathBuf,
        site: String,
        messages: u32,
        fail_at: Option<u32>,
        /// What happened, in order; "UNRECORDED n" is a broken guarantee.
        log: Arc<Mutex<Vec<String>>>,
    }

    impl Mailbox for Witness {
        fn describe(&self) -> String {
            "witness".into()
        }
        fn list(&mut self) -> Result<Vec<MessageRef>, MailboxError> {
            Ok((1..=self.messages)
                .map(|n| MessageRef {
                    uid: format!("pop3:u@h:{n}"),
                    size: 60,
                    handle: n,
                })
                .collect())
        }
        fn fetch(&mut self, refs: &[MessageRef]) -> Result<Vec<Vec<u8>>, MailboxError> {
            if refs.iter().any(|r| Some(r.handle) == self.fail_at) {
                return Err(MailboxError::Temporary {
                    server: "witness".into(),
                    reason: "connection dropped during RETR".into(),
                });
            }
            Ok(refs
                .iter()
                .map(|r| format!("Subject: n{0}\r\n\r\nhello {0}\r\n", r.handle).into_bytes())
                .collect())
        }
        fn remove(&mut self, refs: &[MessageRef]) -> Result<(), MailboxError> {
            let store = Store::open_existing(&self.db).unwrap().unwrap();
            let mut log = self.log.lock().unwrap();
            log.push(format!("remove {}", refs.len()));
            for r in refs {
                match store.lookup_uid(&self.site, &r.uid) {
                    Ok(Some(_)) => log.push(format!("removed {}", r.handle)),
                    _ => log.push(format!("UNRECORDED {}", r.handle)),
                }
            }
            Ok(())
        }
        fn finish(self: Box<Self>) -> Result<(), MailboxError> {
            self.log.lock().unwrap().push("finish".into());
            Ok(())
        }
    }

    struct Quiet;
    impl Observer for Quiet {
        fn message(&mut self, _: &MessageReport) {}
        fn problem(&mut self, _: &str) {}
    }

    fn config(dir: &Path) -> Config {
        let text = r#"
[[site]]
name = "w"
delete_unrecognized = true
[site.mailbox]
protocol = "pop3"
host = "127.0.0.1"
username = "u"
password_env = "BOUNCECTL_TEST_UNUSED"
after = "delete"
"#;
        Config::parse(&dir.join("config.toml"), text).unwrap()
    }

    /// Runs one session over a [`Witness`] behind the read-ahead worker, as
    /// `check` does, committing every `per_transaction` messages or
    /// `max_time`; returns the report, the log and the run's error.
    fn run_witness(
        messages: u32,
        fail_at: Option<u32>,
        (per_transaction, max_time): (usize, Duration),
    ) -> (Summary, Vec<String>, Option<Exit>) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("b.db");
        let config = config(dir.path());
        let site = &config.sites[0];
        let mut store = Store::open(&db).unwrap();
        let opts = Options {
            paths: Vec::new(),
            site: None,
            dry_run: false,
            db: db.clone(),
            wait: Duration::from_secs(1),
            now: 1_700_000_000,
            per_transaction,
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let witness = Witness {
            db: db.clone(),
            site: site.name.clone(),
            messages,
            fail_at,
            log: log.clone(),
        };
        let mut report = Report::default();
        let mut quiet = Quiet;
        let mut run = Run::new(&config, &opts, Some(&mut store), &mut quiet, &mut report);
        run.unit.1 = max_time;
        let settings = site.mailbox.as_ref().unwrap();
        let mb = Box::new(ReadAhead::new(Box::new(witness)));
        let exit = run.session(site, settings, mb).err().map(|e| e.exit());
        let log = log.lock().unwrap().clone();
        (report.summary, log, exit)
    }

    #[test]
    fn pipelined_batches_remove_only_what_is_already_committed() {
        // Batches of 64, 1000 and 943. Transactions of 1000 messages:
        // commits fall after batch 2 and at the end; of no time: after
        // every batch; by default: at the end. Each commit removes what it
        // committed.
        let n = 2 * BATCH_MESSAGES as u32 + 7;
        let long = store::TRANSACTION_TIME;
        let (f, b) = (FIRST_BATCH, BATCH_MESSAGES);
        let last = n as usize - f - b;
        for (unit, calls) in [
            ((b, long), vec![f + b, last]),
            (
                (store::TRANSACTION_MESSAGES, Duration::ZERO),
                vec![f, b, last],
            ),
            ((store::TRANSACTION_MESSAGES, long), vec![n as usize]),
        ] {
            let (summary, log, exit) = run_witness(n, None, unit);
            let removes: Vec<usize> = log
                .iter()
                .filter_map(|l| l.strip_prefix("remove ")?.parse().ok())
                .collect();
            assert_eq!(removes, calls, "{unit:?}");
            assert_eq!(exit, None);
            assert!(!log.iter().any(|l| l.starts_with("UNRECORDED")), "{log:?}");
            let removed = log.iter().filter(|l| l.starts_with("removed")).count();
            assert_eq!(removed, n as usize);
            assert_eq!(log.last().map(String::as_str), Some("finish"));
            assert_eq!((summary.messages, summary.deleted), (n as u64, n as u64));
        }
    }

    #[test]
    fn fetch_failure_keeps_the_classified_batch_and_removes_nothing_more() {
        // Batch 2 cannot be fetched: batch 1 is recorded but, the session
        // being broken, neither removed nor finished, whether it was due
        // for its own commit or not.
        let n = 2 * BATCH_MESSAGES as u32;
        for per_transaction in [FIRST_BATCH, store::TRANSACTION_MESSAGES] {
            let unit = (per_transaction, store::TRANSACTION_TIME);
            let (summary, log, exit) = run_witness(n, Some(FIRST_BATCH as u32 + 1), unit);
            assert_eq!(exit, Some(Exit::TempFail));
            assert!(log.is_empty(), "{log:?}");
            assert_eq!(summary.messages, FIRST_BATCH as u64);
            assert_eq!(summary.deleted, 0);
        }
    }

    /// Sees everything a run shows: reports, rendered bytes and problems.
    #[derive(Default)]
    struct Seen {
        render: Option<Render>,
        /// A line per report: `kind` or `error`.
        lines: Vec<String>,
        problems: Vec<String>,
    }

    impl Observer for Seen {
        fn message(&mut self, r: &MessageReport) {
            let what = r.kind.map_or("error", Kind::as_str);
            self.lines
                .push(format!("{what} {}", r.uid.as_deref().unwrap_or("-")));
        }
        fn problem(&mut self, text: &str) {
            self.problems.push(text.to_string());
        }
        fn renderer(&self) -> Option<Render> {
            self.render
        }
        fn rendered(&mut self, bytes: &[u8]) {
            let text = String::from_utf8(bytes.to_vec()).unwrap();
            self.lines.extend(text.lines().map(str::to_string));
        }
    }

    #[test]
    fn a_maildir_file_gone_before_it_is_read_is_one_error_in_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("md");
        std::fs::create_dir_all(md.join("cur")).unwrap();
        std::fs::create_dir_all(md.join("new")).unwrap();
        let names: Vec<String> = (0..40).map(|i| format!("cur/{i:02}:2,S")).collect();
        for (i, n) in names.iter().enumerate() {
            std::fs::write(md.join(n), format!("Subject: n{i}\n\nhello\n")).unwrap();
        }
        let config = config(dir.path());
        let site = &config.sites[0];
        let render: Render = |r, out| {
            let kind = r.kind.map_or("error", Kind::as_str);
            out.extend_from_slice(
                format!("{kind} {}\n", r.uid.as_deref().unwrap_or("-")).as_bytes(),
            );
        };
        for (dry_run, render) in [(true, Some(render)), (true, None), (false, None)] {
            let opts = Options {
                paths: Vec::new(),
                site: None,
                dry_run,
                db: dir.path().join(format!("b{}.db", render.is_some())),
                wait: Duration::from_secs(1),
                now: 1_700_000_000,
                per_transaction: 1000,
            };
            let mut store = (!dry_run).then(|| Store::open(&opts.db).unwrap());
            let source = Source::open(&md.to_string_lossy()).unwrap();
            // Listed, then gone: reading it fails.
            std::fs::rename(md.join(&names[17]), dir.path().join("away")).unwrap();
            let mut report = Report::default();
            let mut seen = Seen {
                render,
                ..Seen::default()
            };
            let mut run = Run::new(&config, &opts, store.as_mut(), &mut seen, &mut report);
            run.local(site, source).unwrap();
            std::fs::rename(dir.path().join("away"), md.join(&names[17])).unwrap();
            let what = format!("dry run {dry_run}, rendered {}", render.is_some());
            assert_eq!(seen.problems.len(), 1, "{what}: {:?}", seen.problems);
            assert!(
                seen.problems[0].contains("17:2,S"),
                "{what}: {:?}",
                seen.problems
            );
            assert_eq!(report.summary.messages, 40, "{what}");
            assert_eq!(report.summary.not_bounces, 39, "{what}");
            assert_eq!(report.summary.errors, 1, "{what}");
            assert_eq!(report.exit, Some(Exit::DataErr), "{what}");
            let mut expected: Vec<String> =
                names.iter().map(|n| format!("not_bounce {n}")).collect();
            expected.remove(17);
            // Shown where it was when rendered; before the part of the
            // directory that holds it on a dry run otherwise; before the
            // reports that wait for the commit when recording.
            let at = match (dry_run, render) {
                (true, Some(_)) => 17,
                (true, None) => 17 - 17 % super::super::parallel::STEP,
                (false, _) => 0,
            };
            expected.insert(at, "error -".into());
            assert_eq!(seen.lines, expected, "{what}");
        }
    }
}
