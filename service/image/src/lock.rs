//! Exclusive advisory locks (flock(2)) on lock files, held while the guard lives: builders of
//! one image, fetches into one repository and eviction never overlap, across processes.

use std::fs::{File, OpenOptions};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::io_err;
use crate::Error;

#[derive(Debug)]
pub(crate) struct Lock {
    /// Unlocked when dropped.
    _held: Flock<File>,
}

fn open(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_err(format!("opening lock {}", path.display())))
}

fn locking_error(path: &Path, errno: Errno) -> Error {
    Error::Io {
        what: format!("locking {}", path.display()),
        source: errno.into(),
    }
}

/// Waits for the lock.
pub(crate) fn lock(path: &Path) -> Result<Lock, Error> {
    Flock::lock(open(path)?, FlockArg::LockExclusive)
        .map(|held| Lock { _held: held })
        .map_err(|(_, errno)| locking_error(path, errno))
}

/// The lock, or `None` when someone holds it.
pub(crate) fn try_lock(path: &Path) -> Result<Option<Lock>, Error> {
    match Flock::lock(open(path)?, FlockArg::LockExclusiveNonblock) {
        Ok(held) => Ok(Some(Lock { _held: held })),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(locking_error(path, errno)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_not_taken_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = lock(&path).unwrap();
        // flock locks belong to the open file: a second open in this process conflicts too.
        assert!(try_lock(&path).unwrap().is_none());
        drop(held);
        assert!(try_lock(&path).unwrap().is_some());
    }
}
