//! Local sources for `check PATH...`: a message file, a Maildir directory, an
//! mbox file (first line begins with `From `), or `-` for one message on stdin.
//!
//! Sources are read lazily, one message at a time, so memory does not grow
//! with the number of messages.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::exit::{Exit, ExitCode};

/// A local source that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct Error {
    pub path: String,
    pub source: io::Error,
}

impl ExitCode for Error {
    fn exit(&self) -> Exit {
        Exit::DataErr
    }
}

/// One message read from a local source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMessage {
    /// Maildir file name or 1-based position in an mbox; `None` for a single
    /// file or stdin.
    pub uid: Option<String>,
    pub bytes: Vec<u8>,
}

enum Inner {
    Single(Option<Box<dyn Read>>),
    Maildir {
        files: std::vec::IntoIter<PathBuf>,
        /// How many leading bytes of each path name the directory given
        /// (with the separator after it): the rest is the uid.
        skip: usize,
        /// A Maildir's `cur/` and `new/`, open, when it has them: each file
        /// is opened by its name in one of them, so the kernel does not walk
        /// the whole path again for every file (a fifth fewer system-call
        /// time over 8,000 files).
        subdirs: Option<Subdirs>,
    },
    Mbox {
        reader: Box<dyn BufRead>,
        pending: Option<Vec<u8>>,
        index: usize,
    },
}

/// A Maildir's two message directories, open for `openat`.
struct Subdirs {
    cur: Option<rustix::fd::OwnedFd>,
    new: Option<rustix::fd::OwnedFd>,
}

impl Subdirs {
    fn open(dir: &Path) -> Subdirs {
        use rustix::fs::{Mode, OFlags};
        let open = |name: &str| {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
            rustix::fs::open(dir.join(name), flags, Mode::empty()).ok()
        };
        Subdirs {
            cur: open("cur"),
            new: open("new"),
        }
    }

    /// Opens `path`, one of the Maildir's files whose path after the
    /// directory given (`rest`) begins with `cur/` or `new/`, by its name
    /// in that subdirectory; by its whole path when that is not open.
    fn open_file(&self, path: &Path, rest: &[u8]) -> io::Result<File> {
        use rustix::fs::{Mode, OFlags};
        let dir = match rest.first() {
            Some(b'c') => self.cur.as_ref(),
            Some(b'n') => self.new.as_ref(),
            _ => None,
        };
        match (dir, path.file_name()) {
            (Some(dir), Some(name)) => {
                let fd =
                    rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
                Ok(File::from(fd))
            }
            _ => File::open(path),
        }
    }
}

/// An iterator over the messages of one local source.
pub struct Source {
    name: String,
    inner: Inner,
}

impl Source {
    /// Opens `path` (`-` = stdin) and decides what kind of source it is.
    pub fn open(path: &str) -> Result<Source, Error> {
        let err = |source| Error {
            path: path.to_string(),
            source,
        };
        if path == "-" {
            return Ok(Source {
                name: path.into(),
                inner: Inner::Single(Some(Box::new(io::stdin()))),
            });
        }
        let p = Path::new(path);
        let meta = std::fs::metadata(p).map_err(err)?;
        if meta.is_dir() {
            let (files, is_maildir) = maildir_files(p).map_err(err)?;
            // Every file's path is `p.join(rest)`, and joining adds a
            // separator unless `p` ends with one: measured on a stand-in.
            let skip = p.join("-").as_os_str().len() - 1;
            return Ok(Source {
                name: path.into(),
                inner: Inner::Maildir {
                    files: files.into_iter(),
                    skip,
                    subdirs: is_maildir.then(|| Subdirs::open(p)),
                },
            });
        }
        let mut reader = BufReader::with_capacity(64 * 1024, File::open(p).map_err(err)?);
        let is_mbox = reader.fill_buf().map_err(err)?.starts_with(b"From ");
        let inner = if is_mbox {
            Inner::Mbox {
                reader: Box::new(reader),
                pending: None,
                index: 0,
            }
        } else {
            Inner::Single(Some(Box::new(reader)))
        };
        Ok(Source {
            name: path.into(),
            inner,
        })
    }

    /// The path as given on the command line.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The message files of a Maildir (`cur/` and `new/`, never `tmp/`), or of a
/// plain directory of message files (searched recursively) when it has
/// neither, sorted by path, and whether it was a Maildir. Hidden files
/// are skipped.
fn maildir_files(dir: &Path) -> io::Result<(Vec<PathBuf>, bool)> {
    let subdirs: Vec<PathBuf> = ["cur", "new"]
        .iter()
        .map(|s| dir.join(s))
        .filter(|d| d.is_dir())
        .collect();
    let mut files = Vec::new();
    let is_maildir = !subdirs.is_empty();
    if !is_maildir {
        collect_files(dir, true, &mut files)?;
        files.sort_unstable_by(|a, b| path_order(a, b));
    } else {
        for d in subdirs {
            collect_files(&d, false, &mut files)?;
        }
        // `DIR/cur/NAME` and `DIR/new/NAME`: the first difference is never
        // a `/` (the two subdirectories' names are as long, a file name has
        // none), so plain byte order (a `memcmp`) is path order here.
        files.sort_unstable_by(|a, b| {
            (a.as_os_str().as_encoded_bytes()).cmp(b.as_os_str().as_encoded_bytes())
        });
    }
    Ok((files, is_maildir))
}

/// Compares paths as bytes with `/` below every other byte: for these
/// paths (one root joined with plain names) the same order as `Path`'s
/// component-wise comparison, which parses components at every one of the
/// ~100,000 comparisons that sorting 8,000 files takes. The common prefix
/// (the directory) is skipped eight bytes at a time.
fn path_order(a: &Path, b: &Path) -> std::cmp::Ordering {
    let (a, b) = (
        a.as_os_str().as_encoded_bytes(),
        b.as_os_str().as_encoded_bytes(),
    );
    let word = |s: &[u8], i: usize| {
        s.get(i..i + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map(u64::from_ne_bytes)
    };
    let mut i = 0;
    while let (Some(x), Some(y)) = (word(a, i), word(b, i)) {
        if x != y {
            break;
        }
        i += 8;
    }
    while let (Some(x), Some(y)) = (a.get(i), b.get(i)) {
        if x != y {
            break;
        }
        i += 1;
    }
    // The first difference decides; a path that ends first is less.
    let at = |s: &[u8]| s.get(i).map(|&c| if c == b'/' { 0 } else { c });
    at(a).cmp(&at(b))
}

fn collect_files(dir: &Path, recurse: bool, files: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_file() || (kind.is_dir() && recurse) {
            // `entry.path()`, allocated once at its final size rather
            // than copied and then grown.
            let mut path = PathBuf::with_capacity(dir.as_os_str().len() + 1 + name.len());
            path.push(dir);
            path.push(name);
            if kind.is_file() {
                files.push(path);
            } else {
                collect_files(&path, true, files)?;
            }
        }
    }
    Ok(())
}

impl Source {
    /// Appends the next message's bytes to `buf` (left as it was on an
    /// error) and returns its uid; `None` at the end. `check` reads a whole
    /// batch into one buffer that it reuses: a buffer per message cost an
    /// allocation and a free each, and fresh pages, for every message.
    pub fn next_into(&mut self, buf: &mut Vec<u8>) -> Option<Result<Option<String>, Error>> {
        let name = &self.name;
        let start = buf.len();
        let result = match &mut self.inner {
            Inner::Single(reader) => {
                let mut r = reader.take()?;
                r.read_to_end(buf).map(|_| None).map_err(|source| Error {
                    path: name.clone(),
                    source,
                })
            }
            Inner::Maildir {
                files,
                skip,
                subdirs,
            } => {
                let path = files.next()?;
                // The path relative to the directory given (what
                // `strip_prefix` would give, without parsing components).
                let rest = path.as_os_str().as_encoded_bytes().get(*skip..);
                let rest = rest.unwrap_or_default();
                let uid = Some(String::from_utf8_lossy(rest).into_owned());
                // Read until a read returns nothing (a file that grows is
                // read whole). Through `Take`, not `File`'s own
                // `read_to_end`, which first asks for the file's size and
                // position (statx and lseek) to reserve room that `buf`,
                // reserved by the batch, already has.
                let file = match subdirs {
                    Some(dirs) => dirs.open_file(&path, rest),
                    None => File::open(&path),
                };
                file.and_then(|f| f.take(u64::MAX).read_to_end(buf))
                    .map(|_| uid)
                    .map_err(|source| Error {
                        path: path.display().to_string(),
                        source,
                    })
            }
            Inner::Mbox {
                reader,
                pending,
                index,
            } => match next_mbox_message(reader.as_mut(), pending) {
                Ok(Some(bytes)) => {
                    *index += 1;
                    if buf.capacity() == 0 {
                        *buf = bytes; // (the iterator's case: no copy)
                    } else {
                        buf.extend_from_slice(&bytes);
                    }
                    Ok(Some(index.to_string()))
                }
                Ok(None) => return None,
                Err(source) => Err(Error {
                    path: name.clone(),
                    source,
                }),
            },
        };
        if result.is_err() {
            // A failed read may have appended part of the file.
            buf.truncate(start);
        }
        Some(result)
    }
}

impl Iterator for Source {
    type Item = Result<LocalMessage, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut bytes = Vec::new();
        let uid = self.next_into(&mut bytes)?;
        Some(uid.map(|uid| LocalMessage { uid, bytes }))
    }
}

/// Reads one message of an mbox: from a `From ` line (dropped) to the next
/// `From ` line that follows an empty line. One level of `>From ` quoting is
/// undone (mboxrd and mboxo alike).
fn next_mbox_message(
    reader: &mut dyn BufRead,
    pending: &mut Option<Vec<u8>>,
) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    // Skip to the first separator line (only at the very start, or after an error).
    if pending.is_none() {
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(None);
            }
            if line.starts_with(b"From ") {
                break;
            }
        }
        *pending = Some(Vec::new());
    }
    let mut msg = pending.take().unwrap_or_default();
    let mut prev_blank = true;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            if msg.is_empty() {
                return Ok(None);
            }
            // Leave `pending` empty-but-present so the next call ends at EOF.
            *pending = Some(Vec::new());
            return Ok(Some(msg));
        }
        if prev_blank && line.starts_with(b"From ") {
            // The blank line before a separator belongs to the mbox, not the message.
            if msg.ends_with(b"\r\n\r\n") {
                msg.truncate(msg.len() - 2);
            } else if msg.ends_with(b"\n\n") {
                msg.truncate(msg.len() - 1);
            }
            *pending = Some(Vec::new());
            return Ok(Some(msg));
        }
        prev_blank = line == b"\n" || line == b"\r\n";
        let quoted = line
            .iter()
            .position(|&b| b != b'>')
            .is_some_and(|i| i > 0 && line[i..].starts_with(b"From "));
        if quoted {
            msg.extend_from_slice(&line[1..]);
        } else {
            msg.extend_from_slice(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<String> {
        let mut reader = io::Cursor::new(text.as_bytes().to_vec());
        let mut pending = None;
        let mut out = Vec::new();
        while let Some(m) = next_mbox_message(&mut reader, &mut pending).unwrap() {
            out.push(String::from_utf8(m).unwrap());
        }
        out
    }

    #[test]
    fn mbox_splits_at_from_lines_after_blank_lines() {
        let msgs = split(
            "From a@b Mon\nSubject: 1\n\nbody\nFrom here, no split\n\nFrom c@d Tue\nSubject: 2\n\n>From quoted\n",
        );
        assert_eq!(
            msgs,
            vec![
                "Subject: 1\n\nbody\nFrom here, no split\n",
                "Subject: 2\n\nFrom quoted\n"
            ]
        );
    }

    #[test]
    fn mbox_with_one_message_and_no_trailing_newline() {
        assert_eq!(split("From x\nA: b\n\nc"), vec!["A: b\n\nc"]);
    }

    #[test]
    fn maildir_files_sort_as_paths_do() {
        let mut paths: Vec<PathBuf> = [
            "d/a.b",
            "d/a/b",
            "d/a-",
            "d/ab/c",
            "d/a/c",
            "d/a b",
            "dir/cur/1700000000.M1P2.host,S=120:2,S",
            "dir/cur/1700000000.M1P2.host,S=12:2,S",
            "dir/new/1700000000.M1P2.host",
            "dir/cur/1700000000.M1P2.hos/t",
            "dir/cur/1700000000.M1P2.hos",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let mut by_components = paths.clone();
        by_components.sort();
        paths.sort_unstable_by(|a, b| path_order(a, b));
        assert_eq!(paths, by_components);
    }

    #[test]
    fn maildir_uids_are_paths_relative_to_the_directory_however_spelt() {
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("md");
        let plain = dir.path().join("plain");
        for f in [
            "cur/1.a:2,S",
            "cur/1-a",
            "cur/1",
            "cur/.hidden",
            "new/2.b",
            "tmp/3.c",
        ] {
            std::fs::create_dir_all(md.join(f).parent().unwrap()).unwrap();
            std::fs::write(md.join(f), "A: b\n\nc\n").unwrap();
        }
        for f in ["x/y/1", "x/2", "3", ".git/4"] {
            std::fs::create_dir_all(plain.join(f).parent().unwrap()).unwrap();
            std::fs::write(plain.join(f), "A: b\n\nc\n").unwrap();
        }
        let uids = |root: &Path, spelling: &str| -> Vec<String> {
            let given = format!("{}{spelling}", root.display());
            let source = Source::open(&given).unwrap();
            source.map(|m| m.unwrap().uid.unwrap()).collect()
        };
        for spelling in ["", "/", "//", "/."] {
            let maildir = ["cur/1", "cur/1-a", "cur/1.a:2,S", "new/2.b"];
            assert_eq!(uids(&md, spelling), maildir, "{spelling:?}");
            assert_eq!(
                uids(&plain, spelling),
                ["3", "x/2", "x/y/1"],
                "{spelling:?}"
            );
        }
    }

    #[test]
    fn next_into_appends_each_message_to_one_buffer() {
        let dir = tempfile::tempdir().unwrap();
        for (f, text) in [("cur/1", "A: 1\n\none\n"), ("new/2", "A: 2\n\ntwo\n")] {
            std::fs::create_dir_all(dir.path().join(f).parent().unwrap()).unwrap();
            std::fs::write(dir.path().join(f), text).unwrap();
        }
        let mut source = Source::open(&dir.path().to_string_lossy()).unwrap();
        let mut buf = b"kept".to_vec();
        let mut uids = Vec::new();
        while let Some(uid) = source.next_into(&mut buf) {
            uids.push(uid.unwrap().unwrap());
        }
        assert_eq!(uids, ["cur/1", "new/2"]);
        assert_eq!(buf, b"keptA: 1\n\none\nA: 2\n\ntwo\n");
    }

    #[test]
    fn empty_mbox_has_no_messages() {
        assert!(split("").is_empty());
    }
}
