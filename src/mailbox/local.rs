//! Local sources for `check PATH...`: a message file, a Maildir directory, an
//! mbox file (first line begins with `From `), or `-` for one message on stdin.
//!
//! Sources are read lazily, one message at a time, so memory does not grow
//! with the number of messages.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};

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
        files: std::vec::IntoIter<FileRef>,
        dir: Dir,
    },
    Mbox {
        reader: Box<dyn BufRead>,
        pending: Option<Vec<u8>>,
        index: usize,
    },
}

/// A directory source's files, and how they are read: by any thread, in
/// any order (`check` reads a Maildir's files on the threads that
/// classify them).
pub struct Dir {
    /// The directory as given.
    root: PathBuf,
    /// Each file's path relative to `root` (`cur/NAME`, or `x/y/NAME` in a
    /// plain directory), one after another: one allocation for the list,
    /// not one per file. A [`FileRef`] says where.
    names: Vec<u8>,
    /// A Maildir's `cur/` and `new/`, open, when it has them: each file
    /// is opened by its name in one of them, so the kernel does not walk
    /// the whole path again for every file (a fifth fewer system-call
    /// time over 8,000 files).
    subdirs: Option<Subdirs>,
}

/// One file of a [`Dir`]: where its relative path is in the names.
#[derive(Debug, Clone, Copy)]
pub struct FileRef {
    start: u32,
    end: u32,
}

impl Dir {
    /// The path of `file` relative to the directory given (its uid).
    fn rest(&self, file: FileRef) -> &[u8] {
        &self.names[file.start as usize..file.end as usize]
    }

    /// Appends the bytes of `file` to `buf` (left as it was on an error)
    /// and returns its uid: its path relative to the directory given.
    pub fn read_into(&self, file: FileRef, buf: &mut Vec<u8>) -> Result<String, Error> {
        let rest = self.rest(file);
        // Read until a read returns nothing (a file that grows is read
        // whole). Through `Take`, not `File`'s own `read_to_end`, which
        // first asks for the file's size and position (statx and lseek)
        // to reserve room that `buf` usually has already.
        let opened = match &self.subdirs {
            Some(dirs) => dirs.open_file(rest),
            None => File::open(self.path(rest)),
        };
        let start = buf.len();
        match opened.and_then(|f| f.take(u64::MAX).read_to_end(buf)) {
            Ok(_) => Ok(String::from_utf8_lossy(rest).into_owned()),
            Err(source) => {
                // A failed read may have appended part of the file.
                buf.truncate(start);
                Err(Error {
                    path: self.path(rest).display().to_string(),
                    source,
                })
            }
        }
    }

    /// The whole path of a file whose path relative to the directory is
    /// `rest`.
    fn path(&self, rest: &[u8]) -> PathBuf {
        self.root.join(OsStr::from_bytes(rest))
    }

    /// Adds `rest` to the names; `None` past 4 GiB of names.
    fn push(&mut self, rest: &[&[u8]]) -> Option<FileRef> {
        let start = u32::try_from(self.names.len()).ok()?;
        for piece in rest {
            self.names.extend_from_slice(piece);
        }
        let end = u32::try_from(self.names.len()).ok()?;
        Some(FileRef { start, end })
    }
}

/// A Maildir's two message directories, open for `openat`.
struct Subdirs {
    cur: Option<OwnedFd>,
    new: Option<OwnedFd>,
}

impl Subdirs {
    /// `cur/` and `new/` of `dir`, open; `None` when it has neither (it is
    /// not a Maildir).
    fn open(dir: &Path) -> io::Result<Option<Subdirs>> {
        use rustix::fs::{Mode, OFlags};
        let open = |name: &str| {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
            match rustix::fs::open(dir.join(name), flags, Mode::empty()) {
                Ok(fd) => Ok(Some(fd)),
                Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => Ok(None),
                Err(e) => Err(io::Error::from(e)),
            }
        };
        let (cur, new) = (open("cur")?, open("new")?);
        Ok((cur.is_some() || new.is_some()).then_some(Subdirs { cur, new }))
    }

    /// Opens the file whose path relative to the Maildir is `rest`
    /// (`cur/NAME` or `new/NAME`) by its name in that subdirectory.
    fn open_file(&self, rest: &[u8]) -> io::Result<File> {
        use rustix::fs::{Mode, OFlags};
        let dir = match rest.get(..4) {
            Some(b"cur/") => self.cur.as_ref(),
            Some(b"new/") => self.new.as_ref(),
            _ => None,
        };
        let dir = dir.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let fd = rustix::fs::openat(
            dir,
            &rest[4..],
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(File::from(fd))
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
            let (dir, files) = directory_files(p).map_err(err)?;
            return Ok(Source {
                name: path.into(),
                inner: Inner::Maildir {
                    files: files.into_iter(),
                    dir,
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

    /// A directory source's files not read yet, in order, and how to read
    /// them; the source itself when it is a stream (a file, an mbox,
    /// stdin), which can only be read in order.
    pub fn into_files(self) -> Result<(Dir, Vec<FileRef>), Source> {
        match self.inner {
            Inner::Maildir { files, dir } => Ok((dir, files.collect())),
            inner => Err(Source {
                name: self.name,
                inner,
            }),
        }
    }
}

/// The message files of a directory, sorted by path: a Maildir's `cur/`
/// and `new/` (never `tmp/`), or, when it has neither, every file under it
/// (searched recursively). Hidden files are skipped, and so are entries
/// that are neither files nor (in a plain directory) directories, such as
/// symbolic links.
fn directory_files(root: &Path) -> io::Result<(Dir, Vec<FileRef>)> {
    let subdirs = Subdirs::open(root)?;
    let is_maildir = subdirs.is_some();
    let mut dir = Dir {
        root: root.to_path_buf(),
        names: Vec::new(),
        subdirs: None,
    };
    let mut files = Vec::new();
    match &subdirs {
        Some(Subdirs { cur, new }) => {
            for (fd, prefix) in [(cur, b"cur/"), (new, b"new/")] {
                if let Some(fd) = fd {
                    list_maildir_subdir(fd.as_fd(), prefix, &mut dir, &mut files)?;
                }
            }
        }
        None => collect_files(root, &[], &mut dir, &mut files)?,
    }
    dir.subdirs = subdirs;
    let bytes = |f: &FileRef| dir.rest(*f);
    if is_maildir {
        // `cur/NAME` and `new/NAME`: the first difference is never a `/`
        // (the two subdirectories' names are as long, a file name has
        // none), so plain byte order is path order here. Each path's
        // first 16 bytes, as a number, decide most comparisons (a name
        // holds no NUL, so a shorter path's zero padding sorts it first,
        // as byte order does); equal ones are compared whole.
        let key = |f: &FileRef| {
            let mut k = [0u8; 16];
            let b = bytes(f);
            let n = b.len().min(16);
            k[..n].copy_from_slice(&b[..n]);
            u128::from_be_bytes(k)
        };
        let mut keyed: Vec<(u128, FileRef)> = files.iter().map(|f| (key(f), *f)).collect();
        keyed.sort_unstable_by(|(ka, a), (kb, b)| ka.cmp(kb).then_with(|| bytes(a).cmp(bytes(b))));
        files = keyed.into_iter().map(|(_, f)| f).collect();
    } else {
        files.sort_unstable_by(|a, b| path_order(bytes(a), bytes(b)));
    }
    Ok((dir, files))
}

/// Adds the files of a Maildir's `cur/` or `new/` (open as `fd`) to
/// `files`, their names read straight from the kernel's directory entries
/// (no allocation per entry).
fn list_maildir_subdir(
    fd: BorrowedFd<'_>,
    prefix: &[u8],
    dir: &mut Dir,
    files: &mut Vec<FileRef>,
) -> io::Result<()> {
    use rustix::fs::{AtFlags, FileType, RawDir};
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut entries = RawDir::new(fd, buf.spare_capacity_mut());
    while let Some(entry) = entries.next() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name.starts_with(b".") {
            continue;
        }
        let kind = match entry.file_type() {
            // Some file systems do not say: then ask (not following a
            // link, as `std::fs::DirEntry::file_type` does not).
            FileType::Unknown => {
                let stat = rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW)?;
                FileType::from_raw_mode(stat.st_mode)
            }
            kind => kind,
        };
        if kind == FileType::RegularFile {
            files.push(dir.push(&[prefix, name]).ok_or_else(too_many)?);
        }
    }
    Ok(())
}

/// The error for a directory whose names exceed what a [`FileRef`] holds.
fn too_many() -> io::Error {
    io::Error::other("too many files")
}

/// Compares paths as bytes with `/` below every other byte: for these
/// paths (plain names joined by `/`) the same order as `Path`'s
/// component-wise comparison, which parses components at every one of the
/// ~100,000 comparisons that sorting 8,000 files takes.
fn path_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let i = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    // The first difference decides; a path that ends first is less.
    let at = |s: &[u8]| s.get(i).map(|&c| if c == b'/' { 0 } else { c });
    at(a).cmp(&at(b))
}

/// Adds the files under `root.join(rel)` of a plain directory, recursively.
fn collect_files(
    root: &Path,
    rel: &[u8],
    dir: &mut Dir,
    files: &mut Vec<FileRef>,
) -> io::Result<()> {
    for entry in std::fs::read_dir(root.join(OsStr::from_bytes(rel)))? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.as_bytes();
        if name.starts_with(b".") {
            continue;
        }
        let kind = entry.file_type()?;
        let sep: &[u8] = if rel.is_empty() { b"" } else { b"/" };
        if kind.is_file() {
            files.push(dir.push(&[rel, sep, name]).ok_or_else(too_many)?);
        } else if kind.is_dir() {
            let sub = [rel, sep, name].concat();
            collect_files(root, &sub, dir, files)?;
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
            Inner::Maildir { files, dir } => dir.read_into(files.next()?, buf).map(Some),
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
        paths.sort_unstable_by(|a, b| {
            path_order(
                a.as_os_str().as_encoded_bytes(),
                b.as_os_str().as_encoded_bytes(),
            )
        });
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
