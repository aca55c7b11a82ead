//! Which packages the provider's configured apt sources hold: apt's own package lists
//! (`/var/lib/apt/lists/*_Packages`, whatever their compression), parsed for `Package:`,
//! `Provides:` and `Essential:`.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::run;
use crate::packages::PackageSet;
use crate::Error;

/// apt's helper that decompresses a list file of any compression apt knows.
const APT_HELPER: &str = "/usr/lib/apt/apt-helper";

/// Package names (real, and virtual ones some package provides) of the apt sources.
#[derive(Debug, Default, Clone)]
pub struct AptIndex {
    names: HashSet<String>,
    essential: BTreeSet<String>,
}

impl AptIndex {
    /// Reads apt's package lists for `arch`, running `apt-get update` first when there are
    /// none (a fresh machine).
    pub fn load(arch: &str) -> Result<AptIndex, Error> {
        let mut files = list_files(arch)?;
        if files.is_empty() {
            tracing::info!("apt has no package lists for {arch}: running apt-get update");
            run(Command::new("apt-get").args(["update", "-qq"]))?;
            files = list_files(arch)?;
        }
        if files.is_empty() {
            return Err(Error::Build(format!(
                "apt's configured sources give no package list for {arch}"
            )));
        }
        let mut index = AptIndex::default();
        for file in &files {
            index.add_packages_file(&run(Command::new(APT_HELPER).arg("cat-file").arg(file))?);
        }
        tracing::info!(
            "apt index: {} names from {} lists",
            index.names.len(),
            files.len()
        );
        Ok(index)
    }

    /// Adds the paragraphs of one `Packages` file.
    pub fn add_packages_file(&mut self, text: &str) {
        for paragraph in text.split("\n\n") {
            let mut package = None;
            let mut essential = false;
            for line in paragraph.lines() {
                let Some((field, value)) = line.split_once(':') else {
                    continue;
                };
                let value = value.trim();
                // Field names are case-insensitive (deb822); continuation lines start blank.
                match field.to_ascii_lowercase().as_str() {
                    "package" => package = Some(value.to_owned()),
                    "essential" => essential = value == "yes",
                    "provides" => self.names.extend(
                        value
                            .split(',')
                            .filter_map(|p| p.split_whitespace().next())
                            .map(|p| p.split(':').next().unwrap_or(p).to_owned()),
                    ),
                    _ => {}
                }
            }
            if let Some(package) = package {
                if essential {
                    self.essential.insert(package.clone());
                }
                self.names.insert(package);
            }
        }
    }

    /// Whether some source holds `name`, as a package or as a name a package provides.
    pub fn holds(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// The packages of `set` no source holds, sorted.
    pub fn missing(&self, set: &PackageSet) -> Vec<String> {
        set.packages()
            .filter(|p| !self.holds(p))
            .map(str::to_owned)
            .collect()
    }

    /// [`Error::Unavailable`] naming every package of `set` no source holds.
    pub fn check(&self, set: &PackageSet) -> Result<(), Error> {
        let missing = self.missing(set);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::Unavailable(missing))
        }
    }

    /// The `Essential: yes` packages: every Debian root has them (mmdebstrap's variants
    /// install them), so the local repository needs them whatever the set.
    pub fn essential(&self) -> impl Iterator<Item = &str> {
        self.essential.iter().map(String::as_str)
    }
}

/// The existing package list files of apt's configured sources for `arch`.
fn list_files(arch: &str) -> Result<Vec<PathBuf>, Error> {
    let out = run(Command::new("apt-get").args([
        "indextargets",
        "--format",
        "$(FILENAME)",
        "Created-By: Packages",
        &format!("Architecture: {arch}"),
    ]))?;
    Ok(out
        .lines()
        .map(PathBuf::from)
        .filter(|p| Path::new(p).is_file())
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    const LIST: &str = "\
Package: bash
Essential: yes
Priority: required
Version: 5.2.15-2+b7
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.
 Provides: not-a-field

Package: mawk
Provides: awk
Version: 1.3.4

Package: exim4-daemon-light
provides: mail-transport-agent, default-mta (= 4.96), exim4-localscanapi-6.0:any
Essential: no
";

    #[test]
    fn packages_and_provided_names_are_held() {
        let mut index = AptIndex::default();
        index.add_packages_file(LIST);
        for name in [
            "bash",
            "mawk",
            "awk",
            "exim4-daemon-light",
            "mail-transport-agent",
            "default-mta",
            "exim4-localscanapi-6.0",
        ] {
            assert!(index.holds(name), "{name}");
        }
        // A continuation line is description text, not a field.
        assert!(!index.holds("not-a-field"));
        assert_eq!(index.essential().collect::<Vec<_>>(), ["bash"]);
    }

    #[test]
    fn check_names_every_missing_package() {
        let mut index = AptIndex::default();
        index.add_packages_file(LIST);
        let set = PackageSet::new("bookworm", "amd64", ["mawk", "slurmd", "awk"]).unwrap();
        let err = index.check(&set).unwrap_err();
        // The mandatory packages are not in this little list either.
        assert_eq!(
            err.to_string(),
            "no apt source holds e2fsprogs, iproute2, linux-image-cloud-amd64, openssh-server, \
             slurmd, systemd-sysv, udev"
        );
        index.add_packages_file(
            "Package: e2fsprogs\n\nPackage: iproute2\n\nPackage: linux-image-cloud-amd64\n\n\
             Package: openssh-server\n\nPackage: slurmd\n\nPackage: systemd-sysv\n\nPackage: udev\n",
        );
        index.check(&set).unwrap();
    }
}
