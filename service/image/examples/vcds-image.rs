//! Base images by hand (root): `cargo run -p vcds-image --example vcds-image -- --help`.
//!
//!     vcds-image build munge slurmd        # build (or take from the cache) and report
//!     vcds-image check munge no-such-pkg   # which names no apt source holds
//!     vcds-image list                      # the cache, least recently used first
//!     vcds-image overlay KEY 40G /srv/n0.qcow2
//!     vcds-image purge [--repo]            # unused images (and the local repository)

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vcds_image::build::host_release;
use vcds_image::{
    cache_root, create_overlay, AptIndex, ContentKey, Error, ImageCache, LocalRepo, PackageSet,
};

#[derive(Parser)]
#[command(about = "Base images of vcds nodes: build, check, list, overlay, purge")]
struct Cli {
    /// Cache directory (base images in images/, the local repository in repo/).
    #[arg(long, default_value_os_t = cache_root())]
    cache: PathBuf,
    /// Bound of the image cache (K, M, G suffixes).
    #[arg(long, default_value = "20G", value_parser = parse_size)]
    max_bytes: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the image of these packages (plus the mandatory ones), or take it from the cache.
    Build { packages: Vec<String> },
    /// Name the packages no apt source holds.
    Check { packages: Vec<String> },
    /// The cached images.
    List,
    /// A node disk of SIZE on the image KEY.
    Overlay {
        key: String,
        #[arg(value_parser = parse_size)]
        size: u64,
        path: PathBuf,
    },
    /// Remove every image no overlay uses; with --repo also the local repository.
    Purge {
        #[arg(long)]
        repo: bool,
    },
}

fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, unit) = [("K", 1u64 << 10), ("M", 1 << 20), ("G", 1 << 30)]
        .into_iter()
        .find_map(|(suffix, unit)| text.strip_suffix(suffix).map(|d| (d, unit)))
        .unwrap_or((text, 1));
    digits
        .parse::<u64>()
        .map_err(|e| format!("{text}: {e}"))?
        .checked_mul(unit)
        .ok_or_else(|| format!("{text} is too large"))
}

fn package_set(packages: &[String]) -> Result<PackageSet, Error> {
    let (suite, arch) = host_release()?;
    PackageSet::new(&suite, &arch, packages)
}

fn run(cli: Cli) -> Result<(), Error> {
    let cache = ImageCache::open(&cli.cache.join("images"), cli.max_bytes)?;
    let repo = LocalRepo::open(&cli.cache.join("repo"))?;
    match cli.command {
        Command::Build { packages } => {
            let set = package_set(&packages)?;
            let index = AptIndex::load(set.arch())?;
            let report = cache.build(&set, &repo, &index)?;
            let m = report.image.manifest();
            println!(
                "{} {} in {:.1} s: {} packages fetched ({} bytes), {} installed, kernel {}, \
                 filesystem {} bytes, image {}",
                if report.built { "built" } else { "cached" },
                report.image.key(),
                report.seconds,
                report.fetched.packages,
                report.fetched.bytes,
                m.installed.len(),
                m.kernel_release,
                m.filesystem_bytes,
                report.image.dir().display()
            );
        }
        Command::Check { packages } => {
            let set = package_set(&packages)?;
            AptIndex::load(set.arch())?.check(&set)?;
            println!("every package is held by an apt source");
        }
        Command::List => {
            for image in cache.list()? {
                println!(
                    "{} {} bytes, last used {:?}, {} overlays",
                    image.key,
                    image.bytes,
                    image.last_used,
                    image.users.len()
                );
            }
        }
        Command::Overlay { key, size, path } => {
            let key = ContentKey::try_from(key)?;
            let image = cache
                .get(&key)?
                .ok_or_else(|| Error::Build(format!("no image {key} in the cache")))?;
            create_overlay(&image.disk(), &path, size)?;
            println!(
                "{}: {size} bytes on {}",
                path.display(),
                image.disk().display()
            );
        }
        Command::Purge { repo: with_repo } => {
            for key in cache.purge()? {
                println!("removed {key}");
            }
            if with_repo {
                repo.purge()?;
                println!("emptied {}", repo.dir().display());
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vcds-image: {e}");
            ExitCode::FAILURE
        }
    }
}
