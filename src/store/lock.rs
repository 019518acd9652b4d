//! One run at a time per database (SPEC section 5.4).
//!
//! The lock is an OS lock (`flock`-style, via `File::try_lock`) on a
//! `<db>.lock` file beside the database, not the database itself: SQLite's
//! own locks are held only during a transaction, while a `check` must keep
//! other runs out between its batches too. The OS drops the lock when the
//! process dies, so a killed run never leaves a stale lock behind; the file
//! itself stays and is harmless.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::Error;

/// How often a waiting run retries the lock.
const POLL: Duration = Duration::from_millis(100);

/// Holds the one-run-at-a-time lock of a database (a `<db>.lock` file with an
/// OS lock) until dropped.
#[derive(Debug)]
pub struct RunLock {
    // Dropping the file closes it, which releases the lock.
    _file: File,
}

impl RunLock {
    /// Takes the lock, waiting up to `wait`; `Error::Locked` after that.
    pub fn acquire(db: &Path, wait: Duration) -> Result<RunLock, Error> {
        super::ensure_parent(db)?;
        let path = lock_path(db);
        let lock_err = |source| Error::LockFile {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(lock_err)?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(RunLock { _file: file }),
                Err(TryLockError::WouldBlock) => {
                    let waited = start.elapsed();
                    if waited >= wait {
                        return Err(Error::Locked {
                            path: db.to_path_buf(),
                            waited: round(waited),
                        });
                    }
                    std::thread::sleep(POLL.min(wait - waited));
                }
                Err(TryLockError::Error(e)) => return Err(lock_err(e)),
            }
        }
    }
}

/// `<db>.lock`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Whole seconds read better in "waited 10s" than "waited 10.000213s".
fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs_f64().round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_waits_then_fails_as_locked() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("b.db");
        let _held = RunLock::acquire(&db, Duration::ZERO).unwrap();
        let start = Instant::now();
        let err = RunLock::acquire(&db, Duration::from_millis(300)).unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert!(matches!(err, Error::Locked { .. }), "{err}");
        assert_eq!(crate::exit::ExitCode::exit(&err).code(), 75);
        assert!(
            err.to_string()
                .contains("is in use by another bouncectl run"),
            "{err}"
        );
    }

    #[test]
    fn dropped_lock_can_be_taken_again() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sub/b.db");
        drop(RunLock::acquire(&db, Duration::ZERO).unwrap());
        RunLock::acquire(&db, Duration::ZERO).unwrap();
        assert!(lock_path(&db).exists());
    }

    #[test]
    fn lock_under_a_regular_file_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, "x").unwrap();
        let err = RunLock::acquire(&file.join("b.db"), Duration::ZERO).unwrap_err();
        assert_eq!(crate::exit::ExitCode::exit(&err).code(), 74, "{err}");
    }
}
