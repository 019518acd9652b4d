//! Read-ahead for server mailboxes (POP3 and IMAP): the session runs on its
//! own thread, and as soon as a batch has been handed over, the next batch in
//! list order is fetched (read, decrypted, unstuffed) on that thread while
//! the caller classifies and records this one, on the other cores.
//!
//! The order of operations on the server is unchanged: the worker runs
//! commands strictly in the order they were asked for, and `ops::check`
//! asks for a `remove` only after the commit that allows it returned; only a
//! fetch is started early. At most one batch is read ahead, so memory stays
//! bounded (two batches: the one being recorded and the next). A failed
//! read-ahead ends the session: the next call reports it, and every later
//! one fails (a pipelined POP3 session that failed mid-window still has
//! replies on the wire that no later command must take for its own).

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use super::{Error, Mailbox, MessageRef};

/// Read-ahead bounds, the same as `ops::check`'s batches.
const AHEAD_MESSAGES: usize = crate::mailbox::BATCH_MESSAGES;
const AHEAD_BYTES: u64 = crate::mailbox::BATCH_BYTES;

enum Job {
    List,
    Fetch(Vec<MessageRef>),
    Remove(Vec<MessageRef>),
    Finish,
}

enum Reply {
    Listed(Vec<MessageRef>),
    Fetched(Vec<Vec<u8>>),
    Done,
}

/// A mailbox driven from a worker thread, with one batch of read-ahead.
pub struct ReadAhead {
    describe: String,
    jobs: Sender<Job>,
    replies: Receiver<Result<Reply, Error>>,
    worker: Option<JoinHandle<()>>,
    /// Every listed message, in list order.
    listed: Vec<MessageRef>,
    /// The read-ahead fetch in flight, if any.
    pending: Option<Vec<MessageRef>>,
    /// Messages read ahead and not yet asked for.
    ready: HashMap<u32, Vec<u8>>,
    /// The read-ahead failure, until a call reports it.
    failure: Option<Error>,
    /// A read-ahead failed: the session is unusable.
    broken: bool,
}

impl ReadAhead {
    /// Moves `inner` to a worker thread.
    pub fn new(inner: Box<dyn Mailbox + Send>) -> ReadAhead {
        let describe = inner.describe();
        let (jobs, job_rx) = channel::<Job>();
        let (reply_tx, replies) = channel();
        let worker = std::thread::spawn(move || serve(inner, job_rx, reply_tx));
        ReadAhead {
            describe,
            jobs,
            replies,
            worker: Some(worker),
            listed: Vec::new(),
            pending: None,
            ready: HashMap::new(),
            failure: None,
            broken: false,
        }
    }

    fn call(&mut self, job: Job) -> Result<Reply, Error> {
        self.settle()?;
        self.jobs.send(job).map_err(|_| self.gone())?;
        self.replies.recv().map_err(|_| self.gone())?
    }

    fn gone(&self) -> Error {
        Error::Temporary {
            server: self.describe.clone(),
            reason: "the mailbox session ended unexpectedly".into(),
        }
    }

    /// Collects the read-ahead fetch; its failure (or an earlier one) is
    /// this call's.
    fn settle(&mut self) -> Result<(), Error> {
        if let Some(refs) = self.pending.take() {
            match self.replies.recv() {
                Ok(Ok(Reply::Fetched(bodies))) => {
                    for (r, body) in refs.iter().zip(bodies) {
                        self.ready.insert(r.handle, body);
                    }
                }
                Ok(Err(e)) => self.failure = Some(e),
                Ok(Ok(_)) | Err(_) => self.failure = Some(self.gone()),
            }
        }
        if let Some(e) = self.failure.take() {
            self.broken = true;
            self.ready.clear();
            return Err(e);
        }
        if self.broken {
            return Err(Error::Temporary {
                server: self.describe.clone(),
                reason: "the session ended after an earlier failure".into(),
            });
        }
        Ok(())
    }

    /// Starts fetching the batch listed after `last`.
    fn read_ahead(&mut self, last: u32) {
        let start = self.listed.partition_point(|r| r.handle <= last);
        let mut bytes = 0;
        let next: Vec<MessageRef> = self.listed[start..]
            .iter()
            .enumerate()
            .take_while(|&(i, r)| {
                bytes += r.size;
                i == 0 || (i < AHEAD_MESSAGES && bytes <= AHEAD_BYTES)
            })
            .map(|(_, r)| r.clone())
            .collect();
        if !next.is_empty() && self.jobs.send(Job::Fetch(next.clone())).is_ok() {
            self.pending = Some(next);
        }
    }
}

/// The worker: runs jobs in order until `Finish` or until the caller is gone.
fn serve(
    mut inner: Box<dyn Mailbox + Send>,
    jobs: Receiver<Job>,
    replies: Sender<Result<Reply, Error>>,
) {
    while let Ok(job) = jobs.recv() {
        let reply = match job {
            Job::List => inner.list().map(Reply::Listed),
            Job::Fetch(refs) => inner.fetch(&refs).map(Reply::Fetched),
            Job::Remove(refs) => inner.remove(&refs).map(|()| Reply::Done),
            Job::Finish => {
                let _ = replies.send(inner.finish().map(|()| Reply::Done));
                return;
            }
        };
        if replies.send(reply).is_err() {
            return;
        }
    }
}

impl Mailbox for ReadAhead {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn list(&mut self) -> Result<Vec<MessageRef>, Error> {
        match self.call(Job::List)? {
            Reply::Listed(mut refs) => {
                refs.sort_by_key(|r| r.handle);
                self.listed = refs.clone();
                Ok(refs)
            }
            _ => Err(self.gone()),
        }
    }

    fn fetch(&mut self, refs: &[MessageRef]) -> Result<Vec<Vec<u8>>, Error> {
        self.settle()?;
        let missing: Vec<MessageRef> = refs
            .iter()
            .filter(|r| !self.ready.contains_key(&r.handle))
            .cloned()
            .collect();
        if !missing.is_empty() {
            match self.call(Job::Fetch(missing.clone()))? {
                Reply::Fetched(bodies) => {
                    for (r, body) in missing.iter().zip(bodies) {
                        self.ready.insert(r.handle, body);
                    }
                }
                _ => return Err(self.gone()),
            }
        }
        let out = refs
            .iter()
            .map(|r| self.ready.remove(&r.handle).unwrap_or_default())
            .collect();
        // Read ahead but not asked for: the caller skipped them.
        self.ready.clear();
        if let Some(last) = refs.iter().map(|r| r.handle).max() {
            self.read_ahead(last);
        }
        Ok(out)
    }

    fn remove(&mut self, refs: &[MessageRef]) -> Result<(), Error> {
        self.call(Job::Remove(refs.to_vec())).map(drop)
    }

    fn finish(mut self: Box<Self>) -> Result<(), Error> {
        let result = self.call(Job::Finish).map(drop);
        // After a failure the worker may never have got `Finish`: it ends
        // when `jobs` is dropped, with no QUIT or EXPUNGE.
        if let (Ok(()), Some(worker)) = (&result, self.worker.take()) {
            let _ = worker.join();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// An in-memory mailbox that logs the calls it gets; fetching message
    /// `fail_at` fails (as a dropped connection would).
    struct Fake {
        messages: u32,
        fail_at: Option<u32>,
        log: Arc<Mutex<Vec<String>>>,
    }

    impl Mailbox for Fake {
        fn describe(&self) -> String {
            "fake".into()
        }
        fn list(&mut self) -> Result<Vec<MessageRef>, Error> {
            Ok((1..=self.messages)
                .map(|n| MessageRef {
                    uid: n.to_string(),
                    size: 10,
                    handle: n,
                })
                .collect())
        }
        fn fetch(&mut self, refs: &[MessageRef]) -> Result<Vec<Vec<u8>>, Error> {
            let handles: Vec<String> = refs.iter().map(|r| r.handle.to_string()).collect();
            self.log
                .lock()
                .unwrap()
                .push(format!("fetch {}", handles.join(",")));
            if refs.iter().any(|r| Some(r.handle) == self.fail_at) {
                return Err(Error::Temporary {
                    server: "fake".into(),
                    reason: "connection dropped during RETR".into(),
                });
            }
            Ok(refs
                .iter()
                .map(|r| format!("m{}", r.handle).into_bytes())
                .collect())
        }
        fn remove(&mut self, refs: &[MessageRef]) -> Result<(), Error> {
            let handles: Vec<String> = refs.iter().map(|r| r.handle.to_string()).collect();
            self.log
                .lock()
                .unwrap()
                .push(format!("remove {}", handles.join(",")));
            Ok(())
        }
        fn finish(self: Box<Self>) -> Result<(), Error> {
            self.log.lock().unwrap().push("finish".into());
            Ok(())
        }
    }

    fn ahead(messages: u32) -> (Box<ReadAhead>, Arc<Mutex<Vec<String>>>) {
        failing(messages, None)
    }

    fn failing(messages: u32, fail_at: Option<u32>) -> (Box<ReadAhead>, Arc<Mutex<Vec<String>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let fake = Fake {
            messages,
            fail_at,
            log: log.clone(),
        };
        (Box::new(ReadAhead::new(Box::new(fake))), log)
    }

    #[test]
    fn next_batch_is_fetched_ahead_and_used() {
        let (mut m, log) = ahead(3);
        let refs = m.list().unwrap();
        assert_eq!(m.fetch(&refs[..1]).unwrap(), [b"m1".to_vec()]);
        m.remove(&refs[..1]).unwrap();
        assert_eq!(
            m.fetch(&refs[1..]).unwrap(),
            [b"m2".to_vec(), b"m3".to_vec()]
        );
        m.finish().unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            ["fetch 1", "fetch 2,3", "remove 1", "finish"]
        );
    }

    #[test]
    fn skipped_messages_read_ahead_are_not_returned() {
        let (mut m, log) = ahead(3);
        let refs = m.list().unwrap();
        m.fetch(&refs[..1]).unwrap();
        // 2 was skipped by the caller (already recorded).
        assert_eq!(m.fetch(&refs[2..]).unwrap(), [b"m3".to_vec()]);
        assert!(m.ready.is_empty());
        m.finish().unwrap();
        assert_eq!(log.lock().unwrap()[..2], ["fetch 1", "fetch 2,3"]);
    }

    #[test]
    fn read_ahead_is_bounded_like_a_batch() {
        let (mut m, _log) = ahead(3 * AHEAD_MESSAGES as u32);
        let refs = m.list().unwrap();
        m.fetch(&refs[..1]).unwrap();
        assert_eq!(m.pending.as_ref().map(Vec::len), Some(AHEAD_MESSAGES));
        m.finish().unwrap();
    }

    #[test]
    fn failed_read_ahead_is_reported_by_the_next_call_and_ends_the_session() {
        let (mut m, log) = failing(3, Some(2));
        let refs = m.list().unwrap();
        m.fetch(&refs[..1]).unwrap();
        // Message 1 is recorded; its removal meets the read-ahead failure
        // and is not sent: the session may be out of step with its replies.
        let e = m.remove(&refs[..1]).unwrap_err();
        assert!(e.to_string().contains("during RETR"), "{e}");
        assert!(m.fetch(&refs[1..]).is_err());
        assert!(m.remove(&refs[..1]).is_err());
        assert!(m.finish().is_err());
        assert_eq!(*log.lock().unwrap(), ["fetch 1", "fetch 2,3"]);
    }

    #[test]
    fn remove_is_run_only_when_asked_in_order_with_fetches() {
        let (mut m, log) = ahead(4);
        let refs = m.list().unwrap();
        m.fetch(&refs[..2]).unwrap();
        m.fetch(&refs[2..]).unwrap();
        m.remove(&refs[..2]).unwrap();
        m.finish().unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            ["fetch 1,2", "fetch 3,4", "remove 1,2", "finish"]
        );
    }
}
