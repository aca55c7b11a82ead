//! The local package repository, the way a Rocks frontend serves its distribution: the .debs
//! base images need, fetched once from apt's configured sources into `pool/`, indexed by
//! `apt-ftparchive` into a flat repository (`Packages` beside `pool/`) that images are built
//! from. A second package set fetches only the .debs the pool lacks.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::apt::AptIndex;
use crate::cmd::run;
use crate::error::io_err;
use crate::lock::lock;
use crate::packages::PackageSet;
use crate::Error;

/// What one [`LocalRepo::fetch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetched {
    /// .debs downloaded now.
    pub packages: usize,
    pub bytes: u64,
    /// .debs the pool holds afterwards.
    pub pool: usize,
}

#[derive(Debug, Clone)]
pub struct LocalRepo {
    dir: PathBuf,
}

impl LocalRepo {
    /// Opens (creating) the repository in `dir`, which must be absolute: it becomes a
    /// `copy://` source.
    pub fn open(dir: &Path) -> Result<LocalRepo, Error> {
        if !dir.is_absolute() {
            return Err(Error::Build(format!(
                "the repository directory {} must be absolute",
                dir.display()
            )));
        }
        let pool = dir.join("pool");
        fs::create_dir_all(pool.join("partial"))
            .map_err(io_err(format!("creating {}", pool.display())))?;
        Ok(LocalRepo {
            dir: dir.to_owned(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn pool(&self) -> PathBuf {
        self.dir.join("pool")
    }

    /// The .debs in the pool with their sizes.
    fn debs(&self) -> Result<BTreeMap<String, u64>, Error> {
        let pool = self.pool();
        let entries = fs::read_dir(&pool).map_err(io_err(format!("reading {}", pool.display())))?;
        let mut debs = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(io_err(format!("reading {}", pool.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".deb") {
                let len = entry
                    .metadata()
                    .map_err(io_err(format!("reading {name}")))?
                    .len();
                debs.insert(name, len);
            }
        }
        Ok(debs)
    }

    /// Downloads what a root of `set` needs (Debian's essential packages, apt, the set and
    /// their dependencies, no recommends: what mmdebstrap's `apt` variant installs) and the
    /// pool lacks, and indexes the pool again when anything came.
    pub fn fetch(&self, index: &AptIndex, set: &PackageSet) -> Result<Fetched, Error> {
        let _lock = lock(&self.dir.join("lock"))?;
        let before = self.debs()?;
        // An empty dpkg status: apt resolves the whole root, as if nothing were installed.
        let status = self.dir.join("empty-status");
        fs::write(&status, "").map_err(io_err(format!("writing {}", status.display())))?;
        let mut apt = Command::new("apt-get");
        apt.env("DEBIAN_FRONTEND", "noninteractive")
            .args(["-q", "-y", "--download-only", "--no-install-recommends"])
            .arg("-o")
            .arg(format!("Dir::State::status={}", status.display()))
            .arg("-o")
            .arg(format!("Dir::Cache::archives={}/", self.pool().display()))
            .arg("-o")
            .arg(format!("APT::Architecture={}", set.arch()))
            // Our own lock serializes fetches; the host's dpkg and apt locks are not ours.
            .args(["-o", "Debug::NoLocking=1"])
            // _apt cannot write into a root-owned cache.
            .args(["-o", "APT::Sandbox::User=root"])
            .arg("install")
            .args(index.essential())
            .arg("apt")
            .args(set.packages());
        run(&mut apt)?;
        let after = self.debs()?;
        let new: Vec<u64> = after
            .iter()
            .filter(|(name, _)| !before.contains_key(*name))
            .map(|(_, len)| *len)
            .collect();
        if !new.is_empty() || !self.dir.join("Packages").is_file() {
            self.index()?;
        }
        let fetched = Fetched {
            packages: new.len(),
            bytes: new.iter().sum(),
            pool: after.len(),
        };
        tracing::info!(
            "local repository {}: fetched {} packages ({} bytes), {} in the pool",
            self.dir.display(),
            fetched.packages,
            fetched.bytes,
            fetched.pool
        );
        Ok(fetched)
    }

    /// Writes `Packages` for the pool (write, then rename: builders may be reading it).
    fn index(&self) -> Result<(), Error> {
        let db = self.dir.join("ftparchive.db");
        let packages = run(Command::new("apt-ftparchive")
            .current_dir(&self.dir)
            .arg("--db")
            .arg(&db)
            .args(["packages", "pool"]))?;
        let tmp = self.dir.join("Packages.tmp");
        let path = self.dir.join("Packages");
        fs::write(&tmp, packages).map_err(io_err(format!("writing {}", tmp.display())))?;
        fs::rename(&tmp, &path).map_err(io_err(format!("writing {}", path.display())))
    }

    /// The apt source line images are built from. `copy://`: apt copies the .debs into the
    /// root being built, which cannot see the repository's directory.
    pub fn source(&self) -> String {
        format!("deb [trusted=yes] copy://{} ./", self.dir.display())
    }

    /// Removes every fetched package and the index.
    pub fn purge(&self) -> Result<(), Error> {
        let _lock = lock(&self.dir.join("lock"))?;
        for entry in ["pool", "Packages", "ftparchive.db", "empty-status"] {
            let path = self.dir.join(entry);
            let removed = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match removed {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_err(format!("removing {}", path.display()))(e))
                }
                _ => {}
            }
        }
        fs::create_dir_all(self.pool().join("partial"))
            .map_err(io_err(format!("creating {}", self.pool().display())))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn the_repository_is_an_absolute_copy_source() {
        assert!(LocalRepo::open(Path::new("relative/repo")).is_err());
        let dir = tempfile::tempdir().unwrap();
        let repo = LocalRepo::open(dir.path()).unwrap();
        assert_eq!(
            repo.source(),
            format!("deb [trusted=yes] copy://{} ./", dir.path().display())
        );
        fs::write(dir.path().join("pool/a_1_all.deb"), "x").unwrap();
        fs::write(dir.path().join("pool/notes.txt"), "x").unwrap();
        assert_eq!(
            repo.debs().unwrap().into_keys().collect::<Vec<_>>(),
            ["a_1_all.deb"]
        );
        repo.purge().unwrap();
        assert!(repo.debs().unwrap().is_empty());
    }
}
