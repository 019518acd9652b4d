//! One IMAP connection shared by the `imap` crate and our own `UID FETCH`.
//!
//! The crate reads only with `read_until(b'\n')` through its own buffer, so
//! [`Shared`] hands it at most one line per `read`: whenever the crate has
//! finished a command its buffer is empty, and the next bytes on the wire
//! are still here for whoever sends the next command. Writes go straight
//! through (the crate flushes after every command).

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::reply::{self, Parse, Response};
use crate::mailbox::connect::Stream;

/// The read buffer's usual size.
const READ_CHUNK: usize = 64 * 1024;
/// Room kept free for one read: a TLS record.
const MIN_ROOM: usize = 16 * 1024;
/// After a large message the buffer is given back down to this.
const KEEP: usize = 1 << 20;

/// A stream with a read buffer.
#[derive(Debug)]
pub struct Wire<S = Stream> {
    stream: S,
    /// `buf[pos..end]` is read and not yet consumed; `buf[end..]` is room.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
}

/// What went wrong reading a response.
#[derive(Debug)]
pub enum Failure {
    Io(io::Error),
    Protocol(String),
}

impl<S: Read + Write> Wire<S> {
    /// Sends a whole command.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Reads once, with room for at least `want` unconsumed bytes in all.
    /// Returns 0 at end of stream.
    fn fill(&mut self, want: usize) -> io::Result<usize> {
        // What is consumed goes first: at most one partial response moves.
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            (self.pos, self.end) = (0, self.end - self.pos);
        }
        let target = want.max(self.end + MIN_ROOM);
        if target > self.buf.len() {
            self.buf.resize(target.max(READ_CHUNK), 0);
        }
        loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads one whole response and passes it to `then`.
    pub fn response<T>(&mut self, then: impl FnOnce(Response<'_>) -> T) -> Result<T, Failure> {
        loop {
            match reply::response(&self.buf[self.pos..self.end]).map_err(Failure::Protocol)? {
                Parse::Done(r, used) => {
                    let out = then(r);
                    self.pos += used;
                    return Ok(out);
                }
                Parse::Incomplete(want) => {
                    if self.fill(want).map_err(Failure::Io)? == 0 {
                        return Err(Failure::Io(io::ErrorKind::UnexpectedEof.into()));
                    }
                }
            }
        }
    }

    /// Gives back the memory a large message took, once it is consumed.
    pub fn shrink(&mut self) {
        if self.buf.len() > KEEP && self.end - self.pos <= KEEP / 2 {
            self.buf.copy_within(self.pos..self.end, 0);
            (self.pos, self.end) = (0, self.end - self.pos);
            self.buf.truncate(KEEP);
            self.buf.shrink_to_fit();
        }
    }
}

/// A [`Wire`] for the crate and for us.
#[derive(Debug)]
pub struct Shared<S = Stream>(Arc<Mutex<Wire<S>>>);

impl<S: Read + Write> Shared<S> {
    /// Wraps a connected stream.
    pub fn new(stream: S) -> Shared<S> {
        Shared(Arc::new(Mutex::new(Wire {
            stream,
            buf: Vec::new(),
            pos: 0,
            end: 0,
        })))
    }

    /// The wire, for a command of our own. (Nothing panics while holding
    /// it, but a poisoned lock is as good as any.)
    pub fn lock(&self) -> MutexGuard<'_, Wire<S>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S: Read + Write> Read for Shared<S> {
    /// At most one line (see the module comment).
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut w = self.lock();
        if w.pos == w.end && w.fill(1)? == 0 {
            return Ok(0);
        }
        let avail = &w.buf[w.pos..w.end];
        let line = avail
            .iter()
            .position(|&b| b == b'\n')
            .map_or(avail.len(), |i| i + 1);
        let n = line.min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        w.pos += n;
        Ok(n)
    }
}

impl<S: Read + Write> Write for Shared<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lock().stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.lock().stream.flush()
    }
}

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Cursor};

    use super::*;

    /// Hands out its script in reads of at most `step` bytes.
    struct Script {
        input: Cursor<Vec<u8>>,
        step: usize,
        sent: Vec<u8>,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.step);
            self.input.read(&mut buf[..n])
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.sent.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn shared(script: &[u8], step: usize) -> Shared<Script> {
        Shared::new(Script {
            input: Cursor::new(script.to_vec()),
            step,
            sent: Vec::new(),
        })
    }

    #[test]
    fn crate_side_reads_stop_at_each_line_end() {
        let wire = shared(
            b"* OK hi\r\na1 OK done\r\n* 1 FETCH (UID 9 BODY[] {2}\r\nok)\r\nb1 OK\r\n",
            1000,
        );
        // What the crate does: a BufReader over the stream, read_until LF.
        let mut crate_side = BufReader::new(wire.clone());
        let mut line = Vec::new();
        crate_side.read_until(b'\n', &mut line).unwrap();
        crate_side.read_until(b'\n', &mut line).unwrap();
        assert_eq!(line, b"* OK hi\r\na1 OK done\r\n");
        assert!(crate_side.buffer().is_empty());
        // The rest is still on the wire for our own reader.
        let mut w = wire.lock();
        let uid = w
            .response(|r| match r {
                Response::Fetch { uid, body, .. } => {
                    assert_eq!(body.as_deref(), Some(b"ok".as_slice()));
                    uid
                }
                r => panic!("{r:?}"),
            })
            .unwrap();
        assert_eq!(uid, Some(9));
        assert!(matches!(
            w.response(|r| matches!(r, Response::Tagged { .. })),
            Ok(true)
        ));
    }

    #[test]
    fn large_literal_in_small_reads_is_whole_and_memory_given_back() {
        let body: Vec<u8> = (0..3_000_000u32)
            .map(|i| b"ab\r\n."[i as usize % 5])
            .collect();
        let script = [
            format!("* 1 FETCH (UID 1 BODY[] {{{}}}\r\n", body.len()).as_bytes(),
            &body,
            b")\r\nb1 OK done\r\n",
        ]
        .concat();
        let wire = shared(&script, 16 * 1024);
        let mut w = wire.lock();
        let got = w
            .response(|r| match r {
                Response::Fetch { body, .. } => body.map(|b| b.into_owned()),
                _ => None,
            })
            .unwrap();
        assert!(got.as_deref() == Some(body.as_slice()));
        w.shrink();
        assert!(w.buf.len() <= KEEP);
        assert!(matches!(
            w.response(|r| matches!(r, Response::Tagged { .. })),
            Ok(true)
        ));
    }

    #[test]
    fn connection_dropped_mid_literal_is_an_unexpected_eof() {
        let wire = shared(b"* 1 FETCH (UID 4 BODY[] {900}\r\nFrom: a\r\n", 7);
        match wire.lock().response(|_| ()) {
            Err(Failure::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn many_responses_keep_the_buffer_small() {
        let mut script = Vec::new();
        for i in 0..2000 {
            script.extend_from_slice(format!("* {i} FETCH (UID {i} BODY[] {{100}}\r\n").as_bytes());
            script.extend_from_slice(&[b'x'; 100]);
            script.extend_from_slice(b")\r\n");
        }
        let wire = shared(&script, 5000);
        let mut w = wire.lock();
        for i in 0..2000 {
            let uid = w
                .response(|r| match r {
                    Response::Fetch { uid, .. } => uid,
                    _ => None,
                })
                .unwrap();
            assert_eq!(uid, Some(i));
        }
        assert!(w.buf.len() <= READ_CHUNK + MIN_ROOM, "{}", w.buf.len());
    }
}
