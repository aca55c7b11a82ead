//! Building one base image: the local repository fetches what the set needs, mmdebstrap
//! installs a root from it, [`tuning`] adapts the root, mke2fs makes it an ext4 filesystem
//! without mounting anything (`-d`), qemu-img makes that qcow2; the root's kernel and
//! initramfs are kept beside it.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::apt::AptIndex;
use crate::cache::{allocated_bytes, remove_build_dir, Manifest};
use crate::cmd::run;
use crate::error::io_err;
use crate::packages::{PackageSet, BUILDER_VERSION};
use crate::repo::LocalRepo;
use crate::tuning::{self, Step};
use crate::Error;

/// Where the disk carries the image's identity: the installer recognizes a base image's
/// filesystem by it.
pub const IMAGE_STAMP: &str = "/etc/vcds/image";

/// Room the root filesystem gets beyond what the root uses (before the node's overlay grows
/// it to its booked size): a quarter more and this much.
const SLACK_BYTES: u64 = 256 << 20;

/// Documentation, manual pages and translations are left out of images (copyright files
/// stay), as Debian's own minimal images do; a node installs them again when it wants.
const DPKG_EXCLUDES: [&str; 5] = [
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/info/*",
];

/// The suite (`VERSION_CODENAME`) and architecture of this machine, whose apt sources the
/// builder uses.
pub fn host_release() -> Result<(String, String), Error> {
    let os = fs::read_to_string("/etc/os-release").map_err(io_err("reading /etc/os-release"))?;
    let suite = os
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::Build("/etc/os-release names no VERSION_CODENAME".to_owned()))?;
    let arch = run(Command::new("dpkg").arg("--print-architecture"))?
        .trim()
        .to_owned();
    Ok((suite, arch))
}

/// Builds the image of `set` into the empty directory `dir` and describes it.
pub(crate) fn build(
    dir: &Path,
    set: &PackageSet,
    repo: &LocalRepo,
    index: &AptIndex,
) -> Result<Manifest, Error> {
    let started = Instant::now();
    let (suite, arch) = host_release()?;
    if (set.suite(), set.arch()) != (suite.as_str(), arch.as_str()) {
        return Err(Error::Build(format!(
            "this machine's apt sources are {suite}/{arch}, the package set is for {}/{}",
            set.suite(),
            set.arch()
        )));
    }
    let fetched = repo.fetch(index, set)?;
    let early = dir.join("early");
    let root = dir.join("root");
    apply(&early, &tuning::EARLY)?;
    mmdebstrap(set, repo, &early, &root)?;
    tracing::info!(
        "base image {}: root installed after {:.0} s",
        set.key(),
        started.elapsed().as_secs_f64()
    );
    apply(&root, &tuning::plan())?;
    stamp(&root, set)?;
    let installed = installed_packages(&root)?;
    let kernel_release = keep_kernel(&root, dir)?;
    write_static_nodes(&root, &kernel_release)?;
    let filesystem_bytes = make_disk(&root, dir)?;
    remove_build_dir(&root)?;
    remove_build_dir(&early)?;
    Ok(Manifest {
        key: set.key(),
        builder_version: BUILDER_VERSION,
        set: set.clone(),
        kernel_release,
        installed,
        filesystem_bytes,
        fetched,
        build_seconds: started.elapsed().as_secs_f64(),
    })
}

fn mmdebstrap(set: &PackageSet, repo: &LocalRepo, early: &Path, root: &Path) -> Result<(), Error> {
    let include: Vec<&str> = set.packages().collect();
    let mut cmd = Command::new("mmdebstrap");
    cmd.args([
        "--variant=apt",
        "--mode=root",
        "--format=directory",
        "--quiet",
    ])
    .arg(format!("--arch={}", set.arch()))
    // As the repository's fetch resolved it.
    .arg("--aptopt=APT::Install-Recommends \"false\"")
    .args(DPKG_EXCLUDES.map(|o| format!("--dpkgopt={o}")))
    .arg(format!("--essential-hook=sync-in {} /", early.display()))
    .arg(format!("--include={}", include.join(",")))
    .arg(set.suite())
    .arg(root)
    .arg(repo.source());
    run(&mut cmd).map(drop)
}

/// `path` (absolute, as in the root) under `root`, refusing a way out through a symlink in an
/// existing parent (a root's `/etc/x` may link anywhere on the builder's machine).
fn inside(root: &Path, path: &str) -> Result<PathBuf, Error> {
    let mut at = root.to_owned();
    let components: Vec<Component<'_>> = Path::new(path).components().collect();
    for (i, c) in components.iter().enumerate() {
        match c {
            Component::RootDir => continue,
            Component::Normal(name) => at.push(name),
            _ => return Err(Error::Build(format!("{path}: not a plain absolute path"))),
        }
        let last = i + 1 == components.len();
        if !last && fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::Build(format!(
                "{} is a symlink; not writing {path} through it",
                at.display()
            )));
        }
    }
    Ok(at)
}

/// Writes `contents` to `path` in `root` with `mode`, creating its parents and replacing
/// (never following) what is there.
fn write_inside(root: &Path, path: &str, contents: &str, mode: u32) -> Result<(), Error> {
    let file = inside(root, path)?;
    if let Some(parent) = file.parent() {
        fs::create_dir_all(parent).map_err(io_err(format!("creating {}", parent.display())))?;
    }
    if fs::symlink_metadata(&file).is_ok() {
        fs::remove_file(&file).map_err(io_err(format!("replacing {}", file.display())))?;
    }
    fs::write(&file, contents).map_err(io_err(format!("writing {}", file.display())))?;
    fs::set_permissions(&file, fs::Permissions::from_mode(mode))
        .map_err(io_err(format!("chmod {}", file.display())))
}

/// Carries out `steps` in `root`.
fn apply(root: &Path, steps: &[Step]) -> Result<(), Error> {
    for step in steps {
        match step {
            Step::Write {
                path,
                contents,
                mode,
            } => write_inside(root, path, contents, *mode)?,
            Step::Remove(path) => {
                let file = inside(root, path)?;
                match fs::remove_file(&file) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(io_err(format!("removing {}", file.display()))(e))
                    }
                    _ => {}
                }
            }
            Step::Systemctl(args) => {
                run(Command::new("chroot").arg(root).arg("systemctl").args(args))?;
            }
        }
    }
    Ok(())
}

/// The image's identity for the installer, and systemd's "already updated" stamps: without
/// them its first boot runs the units of `ConditionNeedsUpdate=` (sysusers and others).
fn stamp(root: &Path, set: &PackageSet) -> Result<(), Error> {
    let identity = format!("key {}\n{}", set.key(), set.canonical());
    write_inside(root, IMAGE_STAMP, &identity, 0o644)?;
    let usr = fs::metadata(root.join("usr")).map_err(io_err("reading the root's /usr"))?;
    let nsec = i128::from(usr.mtime()) * 1_000_000_000 + i128::from(usr.mtime_nsec());
    for updated in ["/etc/.updated", "/var/.updated"] {
        write_inside(root, updated, &format!("TIMESTAMP_NSEC={nsec}\n"), 0o644)?;
    }
    Ok(())
}

/// The static device nodes of the image's kernel, for systemd-tmpfiles (instead of
/// kmod-static-nodes at every boot).
fn write_static_nodes(root: &Path, release: &str) -> Result<(), Error> {
    let devname = root
        .join("lib/modules")
        .join(release)
        .join("modules.devname");
    let text =
        fs::read_to_string(&devname).map_err(io_err(format!("reading {}", devname.display())))?;
    write_inside(
        root,
        tuning::STATIC_NODES,
        &tuning::static_nodes(&text),
        0o644,
    )
}

/// Installed packages and their versions, from the root's dpkg database.
fn installed_packages(root: &Path) -> Result<BTreeMap<String, String>, Error> {
    let out = run(Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f", "${db:Status-Abbrev}\t${Package}\t${Version}\n"]))?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut fields = l.split('\t');
            let status = fields.next()?;
            let (package, version) = (fields.next()?, fields.next()?);
            status
                .starts_with("ii")
                .then(|| (package.to_owned(), version.to_owned()))
        })
        .collect())
}

/// Copies the root's (only) kernel and its initramfs to `dir`; returns its release.
fn keep_kernel(root: &Path, dir: &Path) -> Result<String, Error> {
    let boot = root.join("boot");
    let releases: Vec<String> = fs::read_dir(&boot)
        .map_err(io_err(format!("reading {}", boot.display())))?
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("vmlinuz-").map(str::to_owned)
        })
        .collect();
    let [release] = releases.as_slice() else {
        return Err(Error::Build(format!(
            "the root should hold one kernel, it holds {releases:?}"
        )));
    };
    if !root.join("lib/modules").join(release).is_dir() {
        return Err(Error::Build(format!(
            "the root has no modules of kernel {release}"
        )));
    }
    for (from, to) in [
        (format!("vmlinuz-{release}"), "vmlinuz"),
        (format!("initrd.img-{release}"), "initrd.img"),
    ] {
        fs::copy(boot.join(&from), dir.join(to)).map_err(io_err(format!("copying {from}")))?;
    }
    Ok(release.clone())
}

/// Makes `dir/disk.qcow2` from `root`; returns the filesystem's size.
fn make_disk(root: &Path, dir: &Path) -> Result<u64, Error> {
    let used = allocated_bytes(root);
    let mib = 1 << 20;
    let bytes = (used + used / 4 + SLACK_BYTES).div_ceil(mib) * mib;
    let raw = dir.join("disk.raw");
    fs::File::create(&raw)
        .and_then(|f| f.set_len(bytes))
        .map_err(io_err(format!("creating {}", raw.display())))?;
    // Inode tables and journal zeroed now, in the sparse raw file (no cost in the qcow2),
    // not by the kernel later in every node's overlay.
    run(Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-L", "vcds-root"])
        .args(["-E", "lazy_itable_init=0,lazy_journal_init=0"])
        .arg("-d")
        .arg(root)
        .arg(&raw))?;
    run(Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(dir.join("disk.qcow2")))?;
    fs::remove_file(&raw).map_err(io_err(format!("removing {}", raw.display())))?;
    Ok(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn steps_apply_inside_the_root_and_never_through_its_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        fs::create_dir_all(root.join("etc/ssh")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(root.join("etc/ssh/ssh_host_rsa_key"), "secret").unwrap();
        // The last component is replaced, not followed.
        std::os::unix::fs::symlink(outside.join("hostname"), root.join("etc/hostname")).unwrap();
        apply(
            &root,
            &[
                Step::Remove("/etc/ssh/ssh_host_rsa_key"),
                Step::Remove("/etc/ssh/absent"),
                Step::Write {
                    path: "/etc/hostname",
                    contents: "localhost\n",
                    mode: 0o644,
                },
                Step::Write {
                    path: "/etc/new/dir/file",
                    contents: "x",
                    mode: 0o600,
                },
            ],
        )
        .unwrap();
        assert!(!root.join("etc/ssh/ssh_host_rsa_key").exists());
        assert_eq!(
            fs::read_to_string(root.join("etc/hostname")).unwrap(),
            "localhost\n"
        );
        assert!(!outside.join("hostname").exists());
        let mode = fs::metadata(root.join("etc/new/dir/file"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A parent that is a symlink is refused.
        std::os::unix::fs::symlink(&outside, root.join("etc/escape")).unwrap();
        let err = apply(
            &root,
            &[Step::Write {
                path: "/etc/escape/x",
                contents: "x",
                mode: 0o644,
            }],
        )
        .unwrap_err();
        assert!(err.to_string().contains("is a symlink"), "{err}");
        assert!(inside(&root, "/etc/../x").is_err());
    }
}
