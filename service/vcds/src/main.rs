//! `vcds`: the Virtual Cluster Deployment Service. A thin shell over the library crates.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "vcds",
    version,
    about = "The Virtual Cluster Deployment Service: virtual clusters as WS-Resources over SOAP/WSRF (GGF CDDLM)",
    long_about = "vcds builds virtual clusters (a frontend plus compute nodes on a private network) on a \
                  shared physical cluster and exposes each as a WS-Resource. Grid clients speak SOAP 1.1/1.2 \
                  with WS-Addressing and WSRF to its Portal and System endpoints; the WSDL is served at \
                  /wsrf/services/Portal?wsdl.\n\nStart it with `vcds serve`; logs go to stderr (RUST_LOG=debug for more)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: SOAP endpoints under /wsrf/services/, WSDL and schemas for toolkits.
    Serve(Box<ServeArgs>),
    /// Print the kickstart file (or the expanded XML profile, or the node's Debian packages)
    /// that the given rolls generate for an appliance, offline, like Rocks' `rocks list host
    /// profile`.
    ///
    /// Example: vcds kickstart --roll rolls/vcds-base --roll rolls/vcds-compute --appliance compute --attr hostname=compute-0-0
    ///
    /// The Debian packages of the stock Rocks rolls' compute node, each checked against apt:
    /// vcds kickstart --roll core --roll base --roll hpc --appliance compute --package-maps rolls/debian --apt-lists /var/lib/apt/lists --debian-packages
    Kickstart(KickstartArgs),
    /// Run the P-node agent: one per P-node, carrying out the manager's network and VM
    /// operations (cluster bridges, VXLAN/802.1Q uplinks, taps, QEMU VMs) and reporting what
    /// really exists.
    ///
    /// Every message must carry an HMAC-SHA256 tag made with the P-node's key, and a session
    /// nonce and sequence number so it cannot be replayed. Make a key with
    /// `head -c 32 /dev/urandom | base64 > pnode1.key && chmod 600 pnode1.key` and give the
    /// manager the same file. VMs keep running when the agent stops; a restarted agent
    /// re-adopts them from the state directory.
    ///
    /// Local site example (the P-node is namespace pnode1; the agent runs in the host's mount
    /// namespace and enters pnode1 itself, so the GW-node namespaces it creates are visible to
    /// the host — under `ip netns exec` they would not be):
    /// vcds agent --netns pnode1 --socket /run/vcds/pnode1.sock --key-file pnode1.key --state-dir /var/lib/vcds/pnode1
    Agent(AgentArgs),
    /// Remove the local site: every VM and GW-node, the P-node agents, the namespaces (with
    /// their bridges, VXLAN links and taps) and the site's state directory. Clusters the
    /// service still lists lose their nodes; stop `vcds serve` first.
    SiteDown(SiteDownArgs),
}

#[derive(Args)]
struct AgentArgs {
    /// Where to listen: a Unix socket path (or unix:PATH) on the local site, or tcp:HOST:PORT
    /// on a real P-node (the messages are authenticated, not encrypted: keep TCP on the
    /// management network).
    #[arg(long, value_name = "PATH|tcp:HOST:PORT")]
    socket: vcds_site::rpc::Endpoint,
    /// The P-node's secret shared with the manager: at least 32 bytes, mode 600.
    #[arg(long, value_name = "FILE")]
    key_file: PathBuf,
    /// Directory for the agent's state file and each VM's QMP socket and console log
    /// (created owner-only).
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
    /// Network namespace of the P-node when the agent runs outside it (default: the agent's
    /// own namespace).
    #[arg(long, value_name = "NAME")]
    netns: Option<String>,
    /// Serve the P-node's and its VMs' metrics in gmond's XML on this TCP address (e.g.
    /// 0.0.0.0:8649), for the manager's --gmond and stock gmetad; off when absent.
    #[arg(long, value_name = "HOST:PORT")]
    gmond_listen: Option<std::net::SocketAddr>,
    /// The P-node's host name in those metrics (default: --netns, else the host name).
    #[arg(long, value_name = "NAME", requires = "gmond_listen")]
    gmond_host: Option<String>,
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("debian_output").args(["debian", "debian_packages"]))]
struct KickstartArgs {
    /// A roll directory (with version.mk, nodes/, graphs/default/); repeat for each enabled roll.
    #[arg(long = "roll", value_name = "DIR", required = true)]
    rolls: Vec<PathBuf>,
    /// The appliance whose graph is walked (e.g. compute, frontend).
    #[arg(long)]
    appliance: String,
    /// Operating system the graph's os= edges are filtered by.
    #[arg(long)]
    os: Option<String>,
    /// OS release for release= edges (default: the rolls' version, else 7).
    #[arg(long)]
    release: Option<u32>,
    /// Architecture for arch= edges (default x86_64).
    #[arg(long)]
    arch: Option<String>,
    /// A host attribute KEY=VALUE (highest precedence); repeatable.
    #[arg(long = "attr", value_name = "KEY=VALUE", value_parser = vcds_rolls::parse_attr)]
    attrs: Vec<(String, String)>,
    /// Print the expanded XML profile instead of the kickstart.
    #[arg(long, conflicts_with_all = ["debian", "debian_packages"])]
    xml: bool,
    /// Write %packages in Debian's names: resolved through the rolls' debian-packages and
    /// --package-maps (rolls/README.md); kept-out packages as -name.
    #[arg(long, conflicts_with = "debian_packages")]
    debian: bool,
    /// Print only the Debian packages the node installs, one a line.
    #[arg(long)]
    debian_packages: bool,
    /// Debian mappings for rolls by name, DIR/ROLL.packages, over the rolls' own (e.g.
    /// rolls/debian for the stock Rocks rolls).
    #[arg(long, value_name = "DIR", requires = "debian_output")]
    package_maps: Option<PathBuf>,
    /// Refuse Debian packages that none of apt's lists in DIR holds (e.g. /var/lib/apt/lists),
    /// naming each and the roll that asks for it.
    #[arg(long, value_name = "DIR", requires = "debian_output")]
    apt_lists: Option<PathBuf>,
}

#[derive(Args)]
#[command(
    after_long_help = "Secure mode (mutual TLS): give --tls-cert, --tls-key, --trust-roots and \
--grid-mapfile together. Every client must present a certificate (RFC 3820 proxy certificates are \
accepted and stand for their end-entity DN, as in Globus) issued by a CA of the trust-roots \
directory, not revoked by its CRLs, and mapped to a local account by the grid-mapfile; others are \
refused at the handshake or get a vcds:AccessDeniedFault. Each caller sees and acts on only the \
Systems and subscriptions it created; those listed in --admins act on all and use /admin/*.\n\n\
Without TLS the service speaks plain HTTP, authenticates nobody and treats every caller as the \
local administrator, so it listens on loopback only unless --insecure-listen-any is given."
)]
struct ServeArgs {
    /// Address and port to listen on. Plain HTTP is refused beyond loopback unless
    /// --insecure-listen-any is given.
    #[arg(long, default_value = "127.0.0.1:8080", env = "VCDS_LISTEN")]
    listen: String,
    /// Server certificate (PEM, may hold the chain): turns on secure mode (HTTPS with client
    /// certificates required).
    #[arg(long, value_name = "FILE", env = "VCDS_TLS_CERT", requires_all = ["tls_key", "trust_roots", "grid_mapfile"])]
    tls_cert: Option<PathBuf>,
    /// The server certificate's private key (PEM, unencrypted).
    #[arg(long, value_name = "FILE", env = "VCDS_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Directory of trusted CA certificates (HASH.0 or *.pem) and their CRLs (HASH.r0 or
    /// *.crl.pem), like /etc/grid-security/certificates.
    #[arg(
        long,
        value_name = "DIR",
        env = "VCDS_TRUST_ROOTS",
        requires = "tls_cert"
    )]
    trust_roots: Option<PathBuf>,
    /// grid-mapfile: lines of `"DN" account[,account…]`; the first account owns what the DN creates.
    #[arg(
        long,
        value_name = "FILE",
        env = "VCDS_GRID_MAPFILE",
        requires = "tls_cert"
    )]
    grid_mapfile: Option<PathBuf>,
    /// Administrators: one quoted DN or local account per line. They see and act on every
    /// resource and may use /admin/*.
    #[arg(long, value_name = "FILE", env = "VCDS_ADMINS", requires = "tls_cert")]
    admins: Option<PathBuf>,
    /// Allow plain HTTP (no authentication, every caller the local administrator) on an address
    /// other than loopback. Only for closed test networks.
    #[arg(long)]
    insecure_listen_any: bool,
    /// Audit log of every state-changing request (JSON lines: who, what, which resource, when,
    /// result). Default: audit.log in the data directory.
    #[arg(long, value_name = "FILE", env = "VCDS_AUDIT_LOG")]
    audit_log: Option<PathBuf>,
    /// Database URL: sqlite://PATH, or postgres://USER@HOST:PORT/DB. Default: SQLite file
    /// vcds.db in the data directory. Migrations are applied at start.
    #[arg(long, env = "VCDS_DB")]
    db: Option<String>,
    /// Directory for the SQLite database and other state; created if missing.
    #[arg(long, default_value = "./data", env = "VCDS_DATA_DIR")]
    data_dir: PathBuf,
    /// The site clusters are placed on: `local` (this machine as two P-nodes) or `sim` (a
    /// simulated site of --sim-pnodes P-nodes, for scale tests and benchmarks, never what the
    /// real site is verified on). Shown in the Portal's StaticPortalStatus.
    #[arg(long, value_enum, default_value_t = SiteKind::Local, env = "VCDS_SITE")]
    site: SiteKind,
    /// JSON file describing the site: `{"config": {...}, "pnodes": [...]}`. `config` sets the
    /// pools and policy (network_pool, supernet, default_prefix_len, mac_prefix, policy,
    /// naming, search_horizon_secs; see examples/site.json), `pnodes` replaces the site's
    /// P-nodes (name, capacity {cpu, memory_mib, disk_gib}, labels, gw_capable).
    #[arg(long, value_name = "FILE")]
    site_config: Option<PathBuf>,
    /// P-nodes of the simulated site (--site sim).
    #[arg(long, default_value_t = 100, value_name = "N")]
    sim_pnodes: usize,
    /// Time the simulated site (--site sim) spends in each transient phase (provisioning,
    /// installing, tearing-down).
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    sim_step_ms: u64,
    /// Inject failures: PHASE:RATE fails that share of deployments at provisioning or
    /// installing (e.g. --sim-failure installing:0.1); repeatable.
    #[arg(long = "sim-failure", value_name = "PHASE:RATE")]
    sim_failures: Vec<vcds_manager::sim::InjectedFailure>,
    /// A directory whose roll directories admins may add by path, from the service's host:
    /// `curl -X POST 'http://127.0.0.1:8080/admin/rolls?path=DIR/vcds-base'` (a roll archive
    /// is added by uploading it as the request body instead); repeatable.
    #[arg(long = "roll-root", value_name = "DIR")]
    roll_roots: Vec<PathBuf>,
    /// A roll directory (under a --roll-root) to add at start unless the catalog has a roll of
    /// that name already; repeatable. The project's own rolls (vcds-base: the frontend,
    /// vcds-compute: compute nodes) are built in and added when the catalog lacks them.
    #[arg(long = "roll", value_name = "DIR")]
    rolls: Vec<String>,
    /// Mappings of Rocks package names to Debian's for rolls that ship none: DIR/ROLL.packages
    /// (see rolls/README.md); over the built-in ones for the stock Rocks rolls (rolls/debian/).
    #[arg(long, value_name = "DIR")]
    package_maps: Option<PathBuf>,
    /// apt's lists: the package names nodes may install are those of apt's configured sources;
    /// Initialize refuses a descriptor whose nodes would need another (naming it and its roll).
    /// The simulated site goes without them when they are absent.
    #[arg(long, value_name = "DIR", default_value = vcds_server::APT_LISTS)]
    apt_lists: PathBuf,
    /// A source AddFile may fetch `api:uri` files from: a `file:///DIR/` or `http://HOST/PATH/`
    /// URL ending in '/'; repeatable. Without one, AddFile takes only inline data.
    #[arg(long = "addfile-from", value_name = "URL", value_parser = vcds_api::fetch::parse_source)]
    addfile_sources: Vec<url::Url>,
    /// The service's address as clients reach it (e.g. https://vcds.example.org:8443), used in
    /// the EPRs of notifications no request causes (termination at its time, the reservation
    /// clock). Default: the listen address, which is wrong behind NAT or for 0.0.0.0.
    #[arg(long, value_name = "URL")]
    public_url: Option<url::Url>,
    #[command(flatten)]
    local: LocalArgs,
    /// Seed of the failure injection: the same seed fails the same clusters.
    #[arg(long, default_value_t = 0)]
    sim_seed: u64,
    /// Largest SOAP request body accepted, in bytes; larger ones get a Sender fault.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    max_body: usize,
    /// Longest lifetime (days) a resource or subscription may be given with SetTerminationTime or Renew.
    #[arg(long, default_value_t = 366)]
    max_lifetime_days: i64,
    /// HTTP worker threads; 0 means one per CPU core.
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// A gmond to poll for Ganglia metrics (a P-node agent's --gmond-listen port, a GW-node's or
    /// a Rocks frontend's gmond, TCP 8649); repeatable. With --site sim the simulated site's
    /// own gmond ports are polled as well.
    #[arg(long = "gmond", value_name = "HOST:PORT")]
    gmond: Vec<String>,
    /// Time between the starts of two Ganglia poll cycles.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    monitor_interval_ms: u64,
}

/// The local site: this machine as two P-nodes (network namespaces, each with its agent).
#[derive(Args)]
struct LocalArgs {
    /// Prefix of the local site's namespaces: PREFIX-p1 and PREFIX-p2 (the P-nodes), PREFIX-ul
    /// (their underlay) and PREFIX-out (the outside network, 198.19.0.0/16).
    #[arg(long, default_value = "vcds", value_name = "PREFIX")]
    local_prefix: String,
    /// The agents' sockets, key, state and logs, and the TFTP root. Default: site/ in the data
    /// directory.
    #[arg(long, value_name = "DIR")]
    local_state: Option<PathBuf>,
    /// How virtual nodes boot the installer: `direct` (QEMU -kernel/-initrd) or `pxe` (iPXE,
    /// DHCP and TFTP from the cluster's GW-node).
    #[arg(long, value_enum, default_value_t = BootArg::Direct)]
    boot: BootArg,
    /// Directory of the installer image (vmlinuz, initrd.img) built by
    /// scripts/build-node-image.sh. Default: $VCDS_CACHE_DIR/node or /var/cache/vcds/node.
    #[arg(long, value_name = "DIR")]
    node_image: Option<PathBuf>,
    /// Run VMs under KVM instead of TCG (software emulation).
    #[arg(long)]
    kvm: bool,
    /// What a virtual node is: `installed`, a Debian system installed from its appliance's
    /// packages onto a disk of its booked size (an overlay of the appliance's base image, built
    /// once per package set and cached), reachable by SSH; or `diskless`, the installer's image
    /// in memory only, for tests of the site's networks (nothing to log in to).
    #[arg(long, value_enum, default_value_t = NodesArg::Installed)]
    nodes: NodesArg,
    /// Give a VM at most this many vCPUs, whatever its node booked (placement still books the
    /// descriptor's size: this overcommits a small machine). Default: as booked.
    #[arg(long, value_name = "N")]
    vm_max_cpus: Option<u32>,
    /// Give a VM at most this much memory, whatever its node booked. Default: as booked.
    #[arg(long, value_name = "MIB")]
    vm_max_memory_mib: Option<u32>,
    /// Memory of each diskless VM (--nodes diskless).
    #[arg(long, default_value_t = 192, value_name = "MIB")]
    diskless_memory_mib: u32,
    /// The most the cached base images may take; least recently used ones go first (never one
    /// a node's disk is made from). `vcds site-down --purge-images` empties the cache.
    #[arg(long, default_value_t = 20, value_name = "GIB")]
    image_cache_gib: u64,
    /// A node that has not reported its install finished this long after its VM started is
    /// failed.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    install_timeout_secs: u64,
    /// Port of the install listener (kickstart CGI and progress) on 198.19.0.1, inside the
    /// outside namespace.
    #[arg(long, default_value_t = 80)]
    install_port: u16,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum NodesArg {
    Installed,
    Diskless,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BootArg {
    Direct,
    Pxe,
}

impl LocalArgs {
    fn site_config(
        &self,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<vcds_site::local::LocalSiteConfig> {
        Ok(vcds_site::local::LocalSiteConfig {
            prefix: self.local_prefix.clone(),
            pnodes: 2,
            // Absolute: agents get their socket path on the command line.
            state_root: std::path::absolute(
                self.local_state
                    .clone()
                    .unwrap_or_else(|| data_dir.join("site")),
            )
            .context("cannot resolve the local site's state directory")?,
            vcds_exe: std::env::current_exe().context("cannot find the vcds executable")?,
        })
    }

    /// Bootstraps the site (namespaces, agents) and configures the executor.
    fn site(&self, data_dir: &std::path::Path) -> anyhow::Result<vcds_server::Site> {
        use vcds_local::{BootMode, LocalConfig, NodeImage};
        if !nix::unistd::geteuid().is_root() {
            anyhow::bail!(
                "the local site builds P-node namespaces, bridges, VXLAN links, GW-nodes and QEMU \
                 VMs on this machine, which needs root: run `vcds serve` as root, or use \
                 `vcds serve --site sim` for a simulated site that needs nothing"
            );
        }
        let image_dir = self.node_image.clone().unwrap_or_else(|| {
            std::env::var_os("VCDS_CACHE_DIR")
                .map_or_else(|| PathBuf::from("/var/cache/vcds"), PathBuf::from)
                .join("node")
        });
        let image = NodeImage {
            kernel: image_dir.join("vmlinuz"),
            initrd: image_dir.join("initrd.img"),
        };
        for file in [&image.kernel, &image.initrd] {
            if !file.is_file() {
                anyhow::bail!(
                    "no installer image at {}: build it with `bash scripts/build-node-image.sh` \
                     (or give --node-image DIR)",
                    file.display()
                );
            }
        }
        let site = vcds_site::local::LocalSite::bootstrap(&self.site_config(data_dir)?)
            .context("cannot set up the local site")?;
        Ok(vcds_server::Site::Local(Box::new(LocalConfig {
            site,
            boot: match self.boot {
                BootArg::Direct => BootMode::Direct,
                BootArg::Pxe => BootMode::Pxe,
            },
            image,
            accel: if self.kvm {
                vcds_site::vm::Accel::Kvm
            } else {
                vcds_site::vm::Accel::Tcg
            },
            nodes: match self.nodes {
                NodesArg::Installed => vcds_local::NodeKind::Installed(
                    vcds_local::images::ImageConfig::default_with(self.image_cache_gib << 30),
                ),
                NodesArg::Diskless => vcds_local::NodeKind::Diskless {
                    memory_mib: self.diskless_memory_mib,
                },
            },
            vm_max_cpus: self.vm_max_cpus,
            vm_max_memory_mib: self.vm_max_memory_mib,
            install_timeout: std::time::Duration::from_secs(self.install_timeout_secs),
            install_port: self.install_port,
        })))
    }
}

#[derive(Args)]
struct SiteDownArgs {
    #[command(flatten)]
    local: LocalArgs,
    /// The data directory `vcds serve` used.
    #[arg(long, default_value = "./data", env = "VCDS_DATA_DIR")]
    data_dir: PathBuf,
    /// Also empty the cache of base images (under $VCDS_CACHE_DIR/images, default
    /// /var/cache/vcds/images), keeping any a node's disk still uses; the next cluster of
    /// each package set builds its image again.
    #[arg(long)]
    purge_images: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SiteKind {
    Local,
    Sim,
}

impl SiteKind {
    fn name(self) -> &'static str {
        match self {
            SiteKind::Local => "local",
            SiteKind::Sim => "sim",
        }
    }
}

/// The `--site-config` file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteFile {
    #[serde(default)]
    config: vcds_placement::SiteConfig,
    pnodes: Option<Vec<vcds_placement::PNode>>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,actix_server=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(*args),
        Command::Agent(a) => Ok(vcds_site::agent::run(&vcds_site::agent::AgentConfig {
            endpoint: a.socket,
            key_file: a.key_file,
            state_dir: a.state_dir,
            gmond: a.gmond_listen.map(|listen| vcds_site::gmond::GmondConfig {
                listen,
                pnode: (a.gmond_host.clone().or_else(|| a.netns.clone()))
                    .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
                    .map_or_else(|| "pnode".to_string(), |h| h.trim().to_string()),
                interval: std::time::Duration::from_secs(5),
            }),
            netns: a.netns,
        })?),
        Command::SiteDown(a) => {
            let config = a.local.site_config(&a.data_dir)?;
            vcds_site::local::LocalSite::layout(&config)
                .teardown()
                .context("cannot remove the local site")?;
            eprintln!("removed the local site {}", config.prefix);
            if a.purge_images {
                let images = vcds_local::images::ImageConfig::default_with(0);
                let removed = vcds_local::images::Images::purge(&images)
                    .context("cannot purge the base images")?;
                eprintln!(
                    "removed {removed} base image(s) from {}",
                    images.dir.display()
                );
            }
            Ok(())
        }
        Command::Kickstart(a) => {
            let output = if a.xml {
                vcds_rolls::Output::Xml
            } else if a.debian || a.debian_packages {
                vcds_rolls::Output::Debian(vcds_rolls::DebianOutput {
                    package_maps: a.package_maps.as_deref(),
                    apt_lists: a.apt_lists.as_deref(),
                    names_only: a.debian_packages,
                })
            } else {
                vcds_rolls::Output::Kickstart
            };
            let text = vcds_rolls::kickstart(
                &a.rolls,
                &a.appliance,
                a.os.as_deref(),
                a.release,
                a.arch.as_deref(),
                &a.attrs,
                output,
            )?;
            print!("{text}");
            Ok(())
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            args.data_dir.display()
        )
    })?;
    let db = args
        .db
        .unwrap_or_else(|| format!("sqlite://{}", args.data_dir.join("vcds.db").display()));
    let mut config = vcds_server::Config::new(args.listen, db);
    config.site_name = args.site.name().to_string();
    if args.site == SiteKind::Sim {
        config.pnodes = vcds_manager::pnodes::simulated_pnodes(args.sim_pnodes);
    }
    if let Some(path) = &args.site_config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the site configuration {}", path.display()))?;
        let file: SiteFile = serde_json::from_str(&text)
            .with_context(|| format!("site configuration {}", path.display()))?;
        config.site_config = file.config;
        if let Some(pnodes) = file.pnodes {
            config.pnodes = pnodes;
        }
    }
    config.addfile_sources = args.addfile_sources;
    config.public_url = args.public_url;
    config.roll_roots = args.roll_roots;
    config.rolls = args.rolls;
    config.package_maps = args.package_maps;
    config.apt_lists = if args.site == SiteKind::Sim && !args.apt_lists.is_dir() {
        tracing::warn!(dir = %args.apt_lists.display(), "no apt lists: the simulated site does not check package availability");
        None
    } else {
        Some(args.apt_lists)
    };
    config.site = match args.site {
        SiteKind::Sim => vcds_server::Site::Simulated(vcds_manager::sim::Simulated {
            step: std::time::Duration::from_millis(args.sim_step_ms),
            failures: args.sim_failures,
            seed: args.sim_seed,
        }),
        SiteKind::Local => args.local.site(&args.data_dir)?,
    };
    config.max_body = args.max_body;
    config.max_lifetime = chrono::Duration::days(args.max_lifetime_days);
    config.workers = args.workers;
    config.monitor = vcds_manager::MonitorConfig {
        gmond: args.gmond,
        interval: std::time::Duration::from_millis(args.monitor_interval_ms.max(100)),
        simulate: args.site == SiteKind::Sim,
        ..Default::default()
    };
    config.security = vcds_api::security::SecurityConfig {
        tls: match (
            args.tls_cert,
            args.tls_key,
            args.trust_roots,
            args.grid_mapfile,
        ) {
            (Some(cert), Some(key), Some(trust_roots), Some(grid_mapfile)) => {
                Some(vcds_api::security::TlsFiles {
                    cert,
                    key,
                    trust_roots,
                    grid_mapfile,
                    admins: args.admins,
                })
            }
            _ => None,
        },
        audit_log: Some(
            args.audit_log
                .unwrap_or_else(|| args.data_dir.join("audit.log")),
        ),
        insecure_listen_any: args.insecure_listen_any,
    };
    actix_rt::System::new().block_on(vcds_server::serve(config))?;
    Ok(())
}
