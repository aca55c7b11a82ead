//! The roll catalog as a Rocks frontend has it (kept in the store, parsed once, merged into one
//! cached [`RollSet`] per enabled set: the whole catalog, or the rolls a cluster enables), the
//! hosts that may install, their generated profiles, and the install progress they report.
//!
//! A node's kickstart never parses a roll: the host is found, then its cached profile is served
//! or generated from the parsed set. A cached profile is valid while both the host record and
//! the roll set it was made from are the current ones (compared by `Arc` identity), so any
//! change of either invalidates it without bookkeeping.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::scheduler::{Reported, SchedulerReport, SchedulerView};
use serde::{Deserialize, Serialize};
use vcds_placement::MacAddr;
use vcds_rolls::{
    site_defaults, AttributeLayers, Attributes, DebianPackages, Deferred, PackageMap, PackageMaps,
    Phase, Profile, Roll, RollError, RollSet, RollSource, Target,
};
use vcds_store::{HostRow, RollFileRow, RollRow, Store, StoreError};

/// Longest progress message kept.
pub const MAX_PROGRESS_MESSAGE: usize = 1024;
/// Progress reports buffered for slow listeners; one that falls further behind misses some
/// and re-reads the node table.
const PROGRESS_EVENTS: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum KickstartError {
    #[error(transparent)]
    Roll(#[from] RollError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored host {host:?} has unreadable attributes: {source}")]
    StoredAttributes {
        host: String,
        source: serde_json::Error,
    },
    #[error("cannot generate the kickstart of host {host}: {source}")]
    Generate { host: String, source: RollError },
    #[error("roll archive: {0}")]
    Archive(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Blocking(#[from] vcds_store::blocking::BlockingError),
}

/// A roll of the catalog, as listed to admins.
#[derive(Debug, Clone, Serialize)]
pub struct RollInfo {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub added_ms: i64,
    pub files: usize,
}

/// An appliance the enabled rolls define.
#[derive(Debug, Clone, Serialize)]
pub struct ApplianceInfo {
    pub name: String,
    pub membership: String,
    pub root: Option<String>,
    pub roll: String,
}

#[derive(Clone)]
struct CatalogRoll {
    info: RollInfo,
    roll: Arc<Roll>,
}

/// The parsed catalog; replaced whole on every change.
struct Catalog {
    rolls: BTreeMap<String, CatalogRoll>,
    /// Rolls enabled per cluster; a cluster not listed uses the whole catalog.
    enabled: BTreeMap<String, Vec<String>>,
    /// The whole catalog merged, oldest roll first (later ones win); `None` when empty.
    all: Option<Arc<RollSet>>,
    /// The merged set of each cluster that lists its rolls. Sets are merged here, on a catalog
    /// change, never on a node's request.
    clusters: HashMap<String, Arc<RollSet>>,
}

impl Catalog {
    /// The catalog with `roll` added or replacing its namesake. Every set it joins is merged
    /// here, so a roll that breaks one is refused before anything changes.
    fn with_roll(&self, roll: CatalogRoll) -> Result<Catalog, KickstartError> {
        let mut rolls = self.rolls.clone();
        rolls.insert(roll.info.name.clone(), roll);
        Catalog::build(rolls, self.enabled.clone())
    }

    /// The catalog without roll `name`, unless a cluster enables it or the rest do not merge.
    fn without_roll(&self, name: &str) -> Result<Catalog, KickstartError> {
        if let Some((cluster, _)) = self
            .enabled
            .iter()
            .find(|(_, rolls)| rolls.iter().any(|r| r == name))
        {
            return Err(KickstartError::Conflict(format!(
                "roll {name:?} is enabled for cluster {cluster}"
            )));
        }
        let mut rolls = self.rolls.clone();
        rolls.remove(name);
        Catalog::build(rolls, self.enabled.clone()).map_err(|e| {
            KickstartError::Conflict(format!(
                "removing roll {name:?} would break the others: {e}"
            ))
        })
    }

    /// The catalog with `rolls` enabled for `cluster` (none: the whole catalog).
    fn with_enabled(&self, cluster: &str, rolls: Vec<String>) -> Result<Catalog, KickstartError> {
        let mut enabled = self.enabled.clone();
        if rolls.is_empty() {
            enabled.remove(cluster);
        } else {
            enabled.insert(cluster.to_string(), rolls);
        }
        Catalog::build(self.rolls.clone(), enabled)
    }

    fn build(
        rolls: BTreeMap<String, CatalogRoll>,
        enabled: BTreeMap<String, Vec<String>>,
    ) -> Result<Catalog, KickstartError> {
        let mut ordered: Vec<&CatalogRoll> = rolls.values().collect();
        ordered
            .sort_by(|a, b| (a.info.added_ms, &a.info.name).cmp(&(b.info.added_ms, &b.info.name)));
        let merge = |members: &[&CatalogRoll]| -> Result<Option<Arc<RollSet>>, RollError> {
            if members.is_empty() {
                return Ok(None);
            }
            let set = RollSet::new(members.iter().map(|r| r.roll.clone()))?;
            Ok(Some(Arc::new(set)))
        };
        let all = merge(&ordered)?;
        // Clusters enabling the same rolls share one merged set.
        let mut merged: HashMap<Vec<&str>, Arc<RollSet>> = HashMap::new();
        let mut clusters = HashMap::new();
        for (cluster, names) in &enabled {
            if let Some(missing) = names.iter().find(|n| !rolls.contains_key(*n)) {
                return Err(KickstartError::NotFound(format!(
                    "cluster {cluster} enables roll {missing:?}, which is not in the catalog"
                )));
            }
            let members: Vec<&CatalogRoll> = ordered
                .iter()
                .filter(|r| names.contains(&r.info.name))
                .copied()
                .collect();
            let key: Vec<&str> = members.iter().map(|r| r.info.name.as_str()).collect();
            let set = match merged.get(&key) {
                Some(set) => set.clone(),
                None => {
                    let Some(set) = merge(&members)? else {
                        continue;
                    };
                    merged.insert(key, set.clone());
                    set
                }
            };
            clusters.insert(cluster.clone(), set);
        }
        Ok(Catalog {
            rolls,
            enabled,
            all,
            clusters,
        })
    }

    /// The rolls a host of `cluster` installs from.
    fn set_for(&self, cluster: &str) -> Option<Arc<RollSet>> {
        self.clusters.get(cluster).or(self.all.as_ref()).cloned()
    }
}

/// Install progress a node reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstallState {
    Started,
    Finished,
    Failed,
}

impl InstallState {
    pub fn as_str(self) -> &'static str {
        match self {
            InstallState::Started => "started",
            InstallState::Finished => "finished",
            InstallState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<InstallState> {
        match s {
            "started" => Some(InstallState::Started),
            "finished" => Some(InstallState::Finished),
            "failed" => Some(InstallState::Failed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Install {
    pub state: InstallState,
    pub at_ms: i64,
    pub message: Option<String>,
}

/// A host that may install: how it is recognised and what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    #[serde(default, with = "vcds_placement::mac_text::option")]
    pub mac: Option<MacAddr>,
    #[serde(default)]
    pub ip: Option<IpAddr>,
    /// The System resource (virtual cluster) the host belongs to.
    pub cluster: String,
    pub appliance: String,
    /// Host attributes: the highest-precedence layer.
    #[serde(default)]
    pub attributes: Attributes,
}

/// One row of a System resource's node table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRow {
    pub host: String,
    #[serde(with = "vcds_placement::mac_text::option")]
    pub mac: Option<MacAddr>,
    pub ip: Option<IpAddr>,
    pub appliance: String,
    pub install: Option<Install>,
    /// The node's SSH host public key, when the manager made it one.
    pub host_key: Option<String>,
}

/// The host attribute holding a node's SSH host public key (the private one, base64, is
/// [`HOST_KEY`]); both reach only the node, in its kickstart.
pub const HOST_KEY_PUB: &str = "vcds_host_key_pub";
pub const HOST_KEY: &str = "vcds_host_key_b64";
/// The cluster user's key pair's attributes (the private one base64), on every node.
pub const CLUSTER_KEY: &str = "vcds_cluster_key_b64";
pub const CLUSTER_KEY_PUB: &str = "vcds_cluster_key_pub";
/// The one address a host's install requests may come from (its cluster's GW-node, which NATs
/// them), when the site says: a kickstart holds the node's secrets, so nobody else may ask for
/// it, whatever MAC they state.
pub const INSTALLS_FROM: &str = "vcds_installs_from";

#[derive(Default)]
struct Hosts {
    by_name: HashMap<String, Arc<Host>>,
    by_mac: HashMap<MacAddr, String>,
    /// Virtual clusters may reuse addresses, so one address can name several hosts.
    by_ip: HashMap<IpAddr, Vec<String>>,
    created_ms: HashMap<String, i64>,
    install: HashMap<String, Install>,
}

impl Hosts {
    fn insert(&mut self, host: Arc<Host>, created_ms: i64) {
        self.remove(&host.name);
        if let Some(mac) = host.mac {
            self.by_mac.insert(mac, host.name.clone());
        }
        if let Some(ip) = host.ip {
            self.by_ip.entry(ip).or_default().push(host.name.clone());
        }
        self.created_ms.insert(host.name.clone(), created_ms);
        self.by_name.insert(host.name.clone(), host);
    }

    fn remove(&mut self, name: &str) {
        let Some(old) = self.by_name.remove(name) else {
            return;
        };
        if let Some(mac) = &old.mac {
            self.by_mac.remove(mac);
        }
        if let Some(ip) = old.ip {
            if let Some(names) = self.by_ip.get_mut(&ip) {
                names.retain(|n| n != name);
                if names.is_empty() {
                    self.by_ip.remove(&ip);
                }
            }
        }
    }
}

struct Cached {
    host: Arc<Host>,
    set: Arc<RollSet>,
    kickstart: Arc<str>,
}

/// Where nodes' packages come from, as the catalog resolves them: the provider's mappings of
/// Rocks names to Debian's (over the rolls' own), and the names the package sources hold.
#[derive(Debug, Clone, Default)]
pub struct PackageSource {
    /// By roll name, as `DIR/ROLL.packages` holds them.
    pub maps: BTreeMap<String, PackageMap>,
    /// The names apt's configured sources hold (`Package:` and `Provides:` of their lists);
    /// `None`: availability is not checked (a site that installs nothing).
    pub available: Option<Arc<std::collections::BTreeSet<String>>>,
}

/// Rolls, hosts and generated profiles; shared by every worker.
pub struct Kickstarts {
    store: Store,
    packages: PackageSource,
    /// Directories whose rolls admins may add by path.
    roll_roots: Vec<PathBuf>,
    /// Serializes writers, so the store and memory change in the same order.
    writer: tokio::sync::Mutex<()>,
    catalog: RwLock<Arc<Catalog>>,
    hosts: RwLock<Hosts>,
    profiles: RwLock<HashMap<String, Cached>>,
    /// Every stored progress report, for whoever waits for nodes to install.
    progress: tokio::sync::broadcast::Sender<Progress>,
    /// The names of the built-in rolls: this binary's, not an admin's to replace.
    builtin: std::collections::BTreeSet<String>,
    /// Each cluster's scheduler view as its frontend last reported it, and when.
    scheduler: RwLock<HashMap<String, Reported>>,
    /// Every change of a scheduler view.
    scheduler_changes: tokio::sync::broadcast::Sender<SchedulerReport>,
}

/// A node's progress report, once stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub host: String,
    /// The System the host belongs to.
    pub cluster: String,
    pub install: Install,
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The store rows of a parsed roll and its files.
fn roll_rows(roll: &Roll, source: &RollSource, arch: String) -> (RollRow, Vec<RollFileRow>) {
    let row = RollRow {
        name: roll.name().to_string(),
        version: roll.version().unwrap_or("0").to_string(),
        arch,
        added_ms: now_ms(),
    };
    let files = source
        .files
        .iter()
        .map(|(path, body)| RollFileRow {
            roll: row.name.clone(),
            path: path.clone(),
            body: body.clone(),
        })
        .collect();
    (row, files)
}

impl Kickstarts {
    /// Loads the catalog and the hosts from the store and parses the rolls; the `builtin`
    /// rolls are stored first where the catalog lacks them or holds another copy: built-in
    /// rolls are this binary's (an upgraded vcds brings its rolls' fixes to the next install).
    pub fn open(
        store: Store,
        roll_roots: Vec<PathBuf>,
        packages: PackageSource,
        builtin: &[RollSource],
    ) -> Result<Kickstarts, KickstartError> {
        let stored: BTreeMap<String, BTreeMap<String, String>> = store
            .load_rolls()?
            .into_iter()
            .map(|(r, files)| {
                (
                    r.name,
                    files.into_iter().map(|f| (f.path, f.body)).collect(),
                )
            })
            .collect();
        for source in builtin {
            let before = stored.get(&source.name);
            if before == Some(&source.files) {
                continue;
            }
            let roll = Roll::parse(source)?;
            let (row, files) = roll_rows(&roll, source, "x86_64".into());
            store.put_roll(&row, &files)?;
            if before.is_some() {
                tracing::info!(roll = %row.name, "built-in roll updated to this binary's copy");
            } else {
                tracing::info!(roll = %row.name, "built-in roll added to the catalog");
            }
        }
        let mut rolls = BTreeMap::new();
        for (row, files) in store.load_rolls()? {
            let source = RollSource {
                name: row.name.clone(),
                files: files.into_iter().map(|f| (f.path, f.body)).collect(),
            };
            let roll = CatalogRoll {
                info: RollInfo {
                    name: row.name,
                    version: row.version,
                    arch: row.arch,
                    added_ms: row.added_ms,
                    files: source.files.len(),
                },
                roll: Arc::new(Roll::parse(&source)?),
            };
            rolls.insert(roll.info.name.clone(), roll);
        }
        let mut enabled: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (cluster, roll) in store.load_cluster_rolls()? {
            enabled.entry(cluster).or_default().push(roll);
        }
        let catalog = Catalog::build(rolls, enabled)?;
        let mut hosts = Hosts::default();
        for row in store.load_hosts()? {
            let attributes = serde_json::from_str(&row.attributes).map_err(|source| {
                KickstartError::StoredAttributes {
                    host: row.name.clone(),
                    source,
                }
            })?;
            let host = Host {
                // Stored by this code, so always canonical; an unreadable one is left out.
                mac: row.mac.as_deref().and_then(|m| m.parse().ok()),
                ip: row.ip.as_deref().and_then(|ip| ip.parse().ok()),
                cluster: row.cluster,
                appliance: row.appliance,
                attributes,
                name: row.name,
            };
            if let (Some(state), Some(at_ms)) = (
                row.install_state.as_deref().and_then(InstallState::parse),
                row.install_ms,
            ) {
                let install = Install {
                    state,
                    at_ms,
                    message: row.install_message,
                };
                hosts.install.insert(host.name.clone(), install);
            }
            hosts.insert(Arc::new(host), row.created_ms);
        }
        Ok(Kickstarts {
            store,
            packages,
            roll_roots,
            writer: tokio::sync::Mutex::new(()),
            catalog: RwLock::new(Arc::new(catalog)),
            hosts: RwLock::new(hosts),
            profiles: RwLock::new(HashMap::new()),
            progress: tokio::sync::broadcast::channel(PROGRESS_EVENTS).0,
            builtin: builtin.iter().map(|b| b.name.clone()).collect(),
            scheduler: RwLock::new(HashMap::new()),
            scheduler_changes: tokio::sync::broadcast::channel(PROGRESS_EVENTS).0,
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, KickstartError> {
        let store = self.store.clone();
        Ok(vcds_store::blocking::run(move || f(store)).await??)
    }

    /// The catalog's rolls, by name.
    pub fn rolls(&self) -> Vec<RollInfo> {
        let catalog = read(&self.catalog).clone();
        catalog.rolls.values().map(|r| r.info.clone()).collect()
    }

    /// The appliances the enabled rolls define, by name.
    pub fn appliances(&self) -> Vec<ApplianceInfo> {
        let catalog = read(&self.catalog).clone();
        let Some(set) = &catalog.all else {
            return Vec::new();
        };
        set.appliances()
            .values()
            .map(|a| ApplianceInfo {
                name: a.name.clone(),
                membership: a.membership.clone(),
                root: a.root.clone(),
                roll: a.origin.roll.clone(),
            })
            .collect()
    }

    /// Parses the roll, checks it merges with the catalog, stores it, then enables it. A
    /// broken roll is refused whole with its roll, file and line; the catalog stays as it was.
    pub async fn add_roll(
        &self,
        source: RollSource,
        arch: String,
    ) -> Result<RollInfo, KickstartError> {
        let _w = self.writer.lock().await;
        let (roll, source) =
            vcds_store::blocking::run(move || Roll::parse(&source).map(|roll| (roll, source)))
                .await??;
        if self.builtin.contains(roll.name()) {
            return Err(KickstartError::Conflict(format!(
                "roll {} is built into this vcds and follows its binary; add yours under \
                 another name",
                roll.name()
            )));
        }
        let (row, files) = roll_rows(&roll, &source, arch);
        let info = RollInfo {
            name: row.name.clone(),
            version: row.version.clone(),
            arch: row.arch.clone(),
            added_ms: row.added_ms,
            files: files.len(),
        };
        let current = read(&self.catalog).clone();
        let next = current.with_roll(CatalogRoll {
            info: info.clone(),
            roll: Arc::new(roll),
        })?;
        self.blocking(move |s| s.put_roll(&row, &files)).await?;
        *write(&self.catalog) = Arc::new(next);
        tracing::info!(roll = %info.name, version = %info.version, "roll added");
        Ok(info)
    }

    /// Adds the roll in directory `path` (under a roll root) unless one of its name is in the
    /// catalog already (so a restart keeps what an admin changed). Whether it was added.
    pub async fn ensure_roll_dir(&self, path: &str) -> Result<bool, KickstartError> {
        let source = self.source_from_dir(path).await?;
        if self.rolls().iter().any(|r| r.name == source.name) {
            return Ok(false);
        }
        self.add_roll(source, "x86_64".to_string()).await?;
        Ok(true)
    }

    /// Removes a roll, unless the remaining rolls no longer merge (another roll's graph needs it).
    pub async fn remove_roll(&self, name: &str) -> Result<(), KickstartError> {
        let _w = self.writer.lock().await;
        let current = read(&self.catalog).clone();
        if !current.rolls.contains_key(name) {
            return Err(KickstartError::NotFound(format!("no roll named {name:?}")));
        }
        let next = current.without_roll(name)?;
        let owned = name.to_string();
        self.blocking(move |s| s.delete_roll(&owned)).await?;
        *write(&self.catalog) = Arc::new(next);
        tracing::info!(roll = %name, "roll removed");
        Ok(())
    }

    /// The rolls enabled per cluster (clusters not listed use the whole catalog).
    pub fn enabled(&self) -> BTreeMap<String, Vec<String>> {
        read(&self.catalog).enabled.clone()
    }

    /// Enables exactly `rolls` for the hosts of `cluster`; none: the whole catalog again.
    pub async fn enable_rolls(
        &self,
        cluster: &str,
        mut rolls: Vec<String>,
    ) -> Result<(), KickstartError> {
        rolls.sort();
        rolls.dedup();
        let _w = self.writer.lock().await;
        let next = read(&self.catalog)
            .clone()
            .with_enabled(cluster, rolls.clone())?;
        let owned = cluster.to_string();
        self.blocking(move |s| s.set_cluster_rolls(&owned, &rolls))
            .await?;
        *write(&self.catalog) = Arc::new(next);
        tracing::info!(%cluster, "rolls enabled");
        Ok(())
    }

    /// Registers a host, or replaces the registration of the host of that name. A MAC belongs
    /// to one host; an address to one host per virtual cluster.
    pub async fn register_host(&self, host: Host) -> Result<Arc<Host>, KickstartError> {
        valid_host_name(&host.name)?;
        if host.cluster.is_empty() || host.appliance.is_empty() {
            return Err(KickstartError::BadRequest(
                "a host needs a cluster and an appliance".to_string(),
            ));
        }
        let _w = self.writer.lock().await;
        let created_ms = {
            let hosts = read(&self.hosts);
            if let Some(other) = host.mac.as_ref().and_then(|m| hosts.by_mac.get(m)) {
                if *other != host.name {
                    return Err(KickstartError::Conflict(format!(
                        "MAC {} is registered for host {other}",
                        host.mac.map(|m| m.to_string()).unwrap_or_default()
                    )));
                }
            }
            let same_ip = host.ip.and_then(|ip| hosts.by_ip.get(&ip));
            if let Some(other) = same_ip.into_iter().flatten().find(|n| {
                **n != host.name
                    && hosts
                        .by_name
                        .get(*n)
                        .is_some_and(|h| h.cluster == host.cluster)
            }) {
                return Err(KickstartError::Conflict(format!(
                    "address {} is registered for host {other} of the same cluster",
                    host.ip.map(|ip| ip.to_string()).unwrap_or_default()
                )));
            }
            hosts
                .created_ms
                .get(&host.name)
                .copied()
                .unwrap_or_else(now_ms)
        };
        let install = read(&self.hosts).install.get(&host.name).cloned();
        let row = HostRow {
            name: host.name.clone(),
            mac: host.mac.map(|m| m.to_string()),
            ip: host.ip.map(|ip| ip.to_string()),
            cluster: host.cluster.clone(),
            appliance: host.appliance.clone(),
            attributes: serde_json::to_string(&host.attributes)
                .map_err(|e| KickstartError::BadRequest(e.to_string()))?,
            created_ms,
            install_state: install.as_ref().map(|i| i.state.as_str().to_string()),
            install_ms: install.as_ref().map(|i| i.at_ms),
            install_message: install.and_then(|i| i.message),
        };
        self.blocking(move |s| s.put_host(&row)).await?;
        let host = Arc::new(host);
        write(&self.hosts).insert(host.clone(), created_ms);
        Ok(host)
    }

    /// Removes a host's registration, its progress and its cached profile.
    pub async fn remove_host(&self, name: &str) -> Result<(), KickstartError> {
        let _w = self.writer.lock().await;
        let owned = name.to_string();
        if !self.blocking(move |s| s.delete_host(&owned)).await? {
            return Err(KickstartError::NotFound(format!("no host named {name:?}")));
        }
        {
            let mut hosts = write(&self.hosts);
            let cluster = hosts.by_name.get(name).map(|h| h.cluster.clone());
            hosts.remove(name);
            hosts.install.remove(name);
            hosts.created_ms.remove(name);
            if let Some(cluster) = cluster {
                if !hosts.by_name.values().any(|h| h.cluster == cluster) {
                    write(&self.scheduler).remove(&cluster);
                }
            }
        }
        write(&self.profiles).remove(name);
        Ok(())
    }

    /// The node table of a System resource: its hosts by name with their install progress.
    pub fn node_table(&self, system_id: &str) -> Vec<NodeRow> {
        let hosts = read(&self.hosts);
        let mut rows: Vec<NodeRow> = hosts
            .by_name
            .values()
            .filter(|h| h.cluster == system_id)
            .map(|h| NodeRow {
                host: h.name.clone(),
                mac: h.mac,
                ip: h.ip,
                appliance: h.appliance.clone(),
                install: hosts.install.get(&h.name).cloned(),
                host_key: h.attributes.get(HOST_KEY_PUB).cloned(),
            })
            .collect();
        rows.sort_by(|a, b| a.host.cmp(&b.host));
        rows
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<Arc<Host>> {
        read(&self.hosts).by_name.get(name).cloned()
    }

    /// The host registered with `mac`.
    pub fn host_by_mac(&self, mac: MacAddr) -> Result<Arc<Host>, KickstartError> {
        let hosts = read(&self.hosts);
        hosts
            .by_mac
            .get(&mac)
            .and_then(|name| hosts.by_name.get(name))
            .cloned()
            .ok_or_else(|| KickstartError::Forbidden(format!("unknown host: MAC {mac}")))
    }

    /// The one host registered with address `ip`; several clusters may reuse an address, and
    /// then the node must state its MAC.
    pub fn host_by_ip(&self, ip: IpAddr) -> Result<Arc<Host>, KickstartError> {
        let hosts = read(&self.hosts);
        match hosts.by_ip.get(&ip).map(Vec::as_slice) {
            Some([name]) => hosts
                .by_name
                .get(name)
                .cloned()
                .ok_or_else(|| KickstartError::Forbidden(format!("unknown host: address {ip}"))),
            Some(names) if names.len() > 1 => Err(KickstartError::Forbidden(format!(
                "address {ip} is registered for several hosts ({}); state the MAC",
                names.join(", ")
            ))),
            _ => Err(KickstartError::Forbidden(format!(
                "unknown host: address {ip}"
            ))),
        }
    }

    /// The host's kickstart: cached, or generated from the parsed roll set and cached.
    pub fn kickstart(&self, host: &Arc<Host>) -> Result<Arc<str>, KickstartError> {
        let Some(set) = read(&self.catalog).set_for(&host.cluster) else {
            return Err(RollError::NoRolls.into());
        };
        if let Some(cached) = read(&self.profiles).get(&host.name) {
            if Arc::ptr_eq(&cached.host, host) && Arc::ptr_eq(&cached.set, &set) {
                return Ok(cached.kickstart.clone());
            }
        }
        let kickstart = profile_of(&set, host)
            .map(|profile| {
                // Nodes install Debian: `%packages` in Debian's names.
                let packages =
                    profile.debian_packages(&PackageMaps::new(&set, &self.packages.maps));
                profile.debian_kickstart(&packages)
            })
            .map_err(|source| KickstartError::Generate {
                host: host.name.clone(),
                source,
            })?;
        let kickstart: Arc<str> = kickstart.into();
        write(&self.profiles).insert(
            host.name.clone(),
            Cached {
                host: host.clone(),
                set,
                kickstart: kickstart.clone(),
            },
        );
        Ok(kickstart)
    }

    /// The Debian packages each of `hosts` would install from the roll set named `rolls` (none:
    /// the whole catalog), by appliance, after checking that every appliance is defined and every
    /// package is held by the package sources: what Initialize asks before it reserves anything.
    pub fn check_install(
        &self,
        rolls: &[String],
        hosts: &[Host],
    ) -> Result<BTreeMap<String, DebianPackages>, KickstartError> {
        let catalog = read(&self.catalog).clone();
        let set = if rolls.is_empty() {
            catalog.all.clone().ok_or(RollError::NoRolls)?
        } else {
            if let Some(missing) = rolls.iter().find(|r| !catalog.rolls.contains_key(*r)) {
                return Err(KickstartError::NotFound(format!(
                    "roll {missing:?} is not in this site's catalog (it has: {})",
                    catalog.rolls.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            let members = catalog
                .rolls
                .values()
                .filter(|r| rolls.contains(&r.info.name))
                .map(|r| r.roll.clone());
            Arc::new(RollSet::new(members)?)
        };
        let maps = PackageMaps::new(&set, &self.packages.maps);
        let mut out = BTreeMap::new();
        for host in hosts {
            let packages = profile_of(&set, host)?.debian_packages(&maps);
            if let Some(available) = &self.packages.available {
                packages
                    .check(&|name| available.contains(name))
                    .map_err(RollError::from)?;
            }
            out.insert(host.appliance.clone(), packages);
        }
        Ok(out)
    }

    /// Install progress as nodes report it, from now on.
    pub fn progress_events(&self) -> tokio::sync::broadcast::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Stores a node's progress report, then announces it.
    pub async fn report(
        &self,
        host: &Host,
        state: InstallState,
        message: Option<String>,
    ) -> Result<(), KickstartError> {
        let _w = self.writer.lock().await;
        let install = Install {
            state,
            at_ms: now_ms(),
            message,
        };
        let (name, stored) = (host.name.clone(), install.clone());
        let known = self
            .blocking(move |s| {
                s.set_install_state(
                    &name,
                    stored.state.as_str(),
                    stored.at_ms,
                    stored.message.as_deref(),
                )
            })
            .await?;
        if !known {
            return Err(KickstartError::Forbidden(format!(
                "unknown host {}",
                host.name
            )));
        }
        write(&self.hosts)
            .install
            .insert(host.name.clone(), install.clone());
        // Nobody listening is fine: the node table holds the report.
        let _ = self.progress.send(Progress {
            host: host.name.clone(),
            cluster: host.cluster.clone(),
            install,
        });
        Ok(())
    }

    /// Stores the scheduler view `host` reports for its cluster, and announces it when it
    /// changed. Only the host its cluster's nodes know as the frontend
    /// (`Kickstart_PrivateHostname`, where slurmctld runs) reports, and only on its cluster's
    /// nodes.
    pub fn report_scheduler(&self, host: &Host, view: SchedulerView) -> Result<(), KickstartError> {
        let attribute = |key| host.attributes.get(key).map(String::as_str);
        if attribute("hostname").is_none()
            || attribute("hostname") != attribute("Kickstart_PrivateHostname")
        {
            return Err(KickstartError::Forbidden(format!(
                "{} is not its cluster's frontend: only the frontend reports the scheduler",
                host.name
            )));
        }
        {
            let hosts = read(&self.hosts);
            let known: std::collections::BTreeSet<&str> = hosts
                .by_name
                .values()
                .filter(|h| h.cluster == host.cluster)
                .filter_map(|h| h.attributes.get("hostname").map(String::as_str))
                .collect();
            if let Some(stranger) = view.nodes.keys().find(|n| !known.contains(n.as_str())) {
                return Err(KickstartError::BadRequest(format!(
                    "node {stranger} is not a node of {}'s cluster",
                    host.name
                )));
            }
        }
        let after = Reported {
            at_ms: now_ms(),
            view,
        };
        let before = write(&self.scheduler).insert(host.cluster.clone(), after.clone());
        if before.as_ref().map(|b| &b.view) != Some(&after.view) {
            // Nobody listening is fine: the view is kept.
            let _ = self.scheduler_changes.send(SchedulerReport {
                cluster: host.cluster.clone(),
                before,
                after,
            });
        }
        Ok(())
    }

    /// System `cluster`'s scheduler view as last reported.
    pub fn scheduler_view(&self, cluster: &str) -> Option<Reported> {
        read(&self.scheduler).get(cluster).cloned()
    }

    /// Changes of the clusters' scheduler views, from now on.
    pub fn scheduler_events(&self) -> tokio::sync::broadcast::Receiver<SchedulerReport> {
        self.scheduler_changes.subscribe()
    }

    /// Reads a roll directory under one of the configured roots (links resolved first, so
    /// none leads out of them).
    pub async fn source_from_dir(&self, path: &str) -> Result<RollSource, KickstartError> {
        let (path, roots) = (path.to_string(), self.roll_roots.clone());
        vcds_store::blocking::run(move || {
            let dir = std::fs::canonicalize(&path)
                .map_err(|e| KickstartError::BadRequest(format!("roll directory {path}: {e}")))?;
            let allowed = roots
                .iter()
                .filter_map(|root| std::fs::canonicalize(root).ok())
                .any(|root| dir.starts_with(root));
            if !allowed {
                return Err(KickstartError::Forbidden(format!(
                    "roll directory {path} is not under a configured roll root"
                )));
            }
            Ok(vcds_rolls::fs::load_source(&dir)?)
        })
        .await?
    }
}

/// A host's profile. Rocks sets `hostname`, `hostaddr` and `ksmac` from its cluster database;
/// here they come from the registration, and the host's own attributes still win.
fn profile_of(set: &RollSet, host: &Host) -> Result<Profile, RollError> {
    let defaults = Target::default();
    let target = Target {
        os: host.attributes.get("os").cloned().unwrap_or(defaults.os),
        release: set.release().unwrap_or(defaults.release),
        arch: host
            .attributes
            .get("arch")
            .cloned()
            .unwrap_or(defaults.arch),
        phase: Phase::Install,
    };
    let mut attrs = Attributes::new();
    attrs.insert("hostname".to_string(), host.name.clone());
    if let Some(ip) = host.ip {
        attrs.insert("hostaddr".to_string(), ip.to_string());
    }
    if let Some(mac) = host.mac {
        attrs.insert("ksmac".to_string(), mac.to_string());
    }
    attrs.extend(host.attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
    let layers = AttributeLayers {
        global: site_defaults(),
        host: attrs,
        ..Default::default()
    };
    set.profile(&host.appliance, &target, &layers, &Deferred)
}

fn valid_host_name(name: &str) -> Result<(), KickstartError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(KickstartError::BadRequest(format!(
            "host name {name:?}: letters, digits, '-', '.' and '_' only, at most 253"
        )))
    }
}
