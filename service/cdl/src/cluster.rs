//! The virtual-cluster descriptor: vcds's own CDL prototypes (`components/vcds-cluster.cdl`,
//! namespace [`NS`], importable as [`COMPONENTS_LOCATION`]) and [`cluster_spec`], which reads a
//! resolved descriptor into a typed, validated [`ClusterSpec`].

use std::collections::HashSet;
use std::fmt::{self, Write as _};
use std::net::Ipv4Addr;

use chrono::{DateTime, Months, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use vcds_xml::{escape, QName};

use crate::{Element, ResolvedDocument};

pub mod ssh;

use ssh::{KeyError, PublicKey};

/// The vcds CDL namespace.
pub const NS: &str = "urn:vcds:2026:cdl";
/// Where descriptors import the built-in vcds cluster prototypes from.
pub const COMPONENTS_LOCATION: &str = "vcds:cluster";

/// The built-in documents, by import location.
pub(crate) fn builtin(location: &str) -> Option<&'static str> {
    (location == COMPONENTS_LOCATION).then_some(include_str!("../components/vcds-cluster.cdl"))
}

/// Limits a descriptor is held to.
const MAX_COMPUTE: i64 = 4096;
const MAX_CPUS: i64 = 128;
const MEMORY_MIB: (i64, i64) = (256, 1024 * 1024);
const DISK_GIB: (i64, i64) = (1, 16 * 1024);
const STORAGE_GIB: (i64, i64) = (1, 64 * 1024);
const SUBNET_PREFIX: (i64, i64) = (8, 30);
/// A start this far in the past still counts as "now" (clock skew, slow submission).
const START_SLACK_MINUTES: i64 = 5;
const MAX_KEEP_DAYS: i64 = 90;
/// Longest login name (`useradd`'s limit).
const MAX_USER: usize = 32;
/// Most public keys one login may have.
pub const MAX_AUTHORIZED_KEYS: usize = 32;
/// The login user when a descriptor names none.
pub const DEFAULT_USER: &str = "vcds";
/// Login names a node's system already uses (Debian's base accounts, the daemons the rolls
/// install, Red Hat's base accounts for Rocks), and prefixes of such names.
const SYSTEM_USERS: &[&str] = &[
    "_apt",
    "_chrony",
    "_rpc",
    "adm",
    "apache",
    "avahi",
    "backup",
    "bin",
    "chrony",
    "daemon",
    "dbus",
    "dnsmasq",
    "ftp",
    "games",
    "ganglia",
    "gnats",
    "halt",
    "irc",
    "list",
    "lp",
    "mail",
    "man",
    "messagebus",
    "munge",
    "mysql",
    "news",
    "nfsnobody",
    "nobody",
    "nogroup",
    "ntp",
    "operator",
    "polkitd",
    "postfix",
    "postgres",
    "proxy",
    "root",
    "rpc",
    "rpcuser",
    "sge",
    "sgeadmin",
    "shutdown",
    "slurm",
    "sshd",
    "statd",
    "sync",
    "sys",
    "tcpdump",
    "tss",
    "uucp",
    "uuidd",
    "www-data",
];
const SYSTEM_USER_PREFIXES: &[&str] = &["systemd-"];

/// Why a resolved descriptor is not a usable cluster request. `field` is the dotted path of
/// the offending element inside the cluster, e.g. `compute.count` or `gateway.forward[2].port`.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SpecError {
    #[error("no component of the system extends vc:Cluster")]
    NoCluster,
    #[error(
        "{count} components of the system extend vc:Cluster; a descriptor describes one cluster"
    )]
    SeveralClusters { count: usize },
    #[error("{field} is missing")]
    Missing { field: String },
    #[error("{field} is not a known field of a vcds cluster")]
    UnknownField { field: String },
    #[error("{field} is a lazy reference; a cluster request needs its value now")]
    Lazy { field: String },
    #[error("{field} must be {expected}, got {value:?}")]
    Invalid {
        field: String,
        expected: String,
        value: String,
    },
    #[error("{field} must be {min}..={max}, got {value}")]
    OutOfRange {
        field: String,
        min: i64,
        max: i64,
        value: i64,
    },
    #[error("{field}: {reason}")]
    Inconsistent { field: String, reason: String },
    #[error("reservation ends ({end}) before it starts ({start})")]
    EndsBeforeStart {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    #[error("network.subnet /{prefix} has {hosts} host addresses, the cluster needs {needed}")]
    SubnetTooSmall { prefix: u8, hosts: u64, needed: u64 },
}

/// Fixed sets of keywords, with their spelling in descriptors (and in serde).
macro_rules! keywords {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),+ }

        impl $name {
            const WORDS: &'static [(&'static str, $name)] = &[$(($word, $name::$variant)),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
        }
    };
}

keywords!(
    /// How the cluster's private L2 network is isolated.
    Isolation { Vxlan = "vxlan", Vlan = "vlan" }
);
keywords!(
    /// The batch scheduler configured across the cluster.
    Scheduler { None = "none", Sge = "sge", Slurm = "slurm" }
);
keywords!(
    /// How the cluster's nodes are installed.
    Installer {
        // PXE or direct boot, kickstart from the manager, %pre, packages, %post: the Rocks way.
        Rocks = "rocks",
        // A cloud image (a Debian root with cloud-init) seeded by the manager (NoCloud).
        Image = "image",
    }
);

impl Default for Installer {
    /// Specs stored before the field existed were installed the Rocks way.
    fn default() -> Self {
        Installer::Rocks
    }
}

keywords!(Protocol { Tcp = "tcp", Udp = "udp" });
keywords!(StorageKind { Iscsi = "iscsi", Nfs = "nfs" });
keywords!(
    /// What happens to the cluster when its reservation ends.
    EndAction { Destroy = "destroy", Suspend = "suspend" }
);

/// A validated virtual-cluster request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSpec {
    pub name: String,
    pub os: Os,
    /// How the nodes are installed (absent in specs stored before it existed: Rocks).
    #[serde(default)]
    pub installer: Installer,
    pub rolls: Vec<Roll>,
    /// Rocks attributes, in descriptor order.
    pub attributes: Vec<RocksAttribute>,
    pub frontend: NodeGroup,
    pub compute: NodeGroup,
    pub network: Network,
    pub reservation: Reservation,
    pub lifetime: Lifetime,
    pub scheduler: Scheduler,
    pub gateway: Gateway,
    /// Who logs in (absent in specs stored before it existed: the default user, no keys).
    #[serde(default)]
    pub login: Login,
    pub storage: Option<Storage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Os {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roll {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RocksAttribute {
    pub key: String,
    pub value: String,
}

/// Nodes of one appliance, all alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeGroup {
    pub appliance: String,
    pub count: u32,
    pub cpus: u32,
    pub memory_mib: u32,
    pub disk_gib: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subnet {
    /// Any free private range of this size, chosen by the site.
    PrefixLength(u8),
    /// Exactly this private range.
    Cidr { network: Ipv4Addr, prefix: u8 },
}

impl Subnet {
    pub fn prefix(self) -> u8 {
        match self {
            Subnet::PrefixLength(p) | Subnet::Cidr { prefix: p, .. } => p,
        }
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subnet::PrefixLength(p) => write!(f, "{p}"),
            Subnet::Cidr { network, prefix } => write!(f, "{network}/{prefix}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub isolation: Isolation,
    pub subnet: Subnet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    Now,
    At(DateTime<Utc>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    Duration(IsoDuration),
    At(DateTime<Utc>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub start: Start,
    pub end: End,
}

impl Reservation {
    /// The reserved interval, with "now" taken as `now`. `None` only if the end overflows.
    pub fn window(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let start = match self.start {
            Start::Now => now,
            Start::At(t) => t,
        };
        let end = match self.end {
            End::Duration(d) => d.after(start)?,
            End::At(t) => t,
        };
        Some((start, end))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifetime {
    pub at_end: EndAction,
    /// How long a suspended cluster's disks are kept before it is destroyed.
    pub keep_for: IsoDuration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gateway {
    pub forwards: Vec<Forward>,
}

/// A port on the gateway's outside address forwarded to the frontend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forward {
    pub protocol: Protocol,
    /// The frontend's port.
    pub port: u16,
    /// The gateway's port (defaults to `port`).
    pub external: u16,
}

/// The user who logs in to the cluster's nodes, with the public keys that may log in as them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Login {
    /// A portable login name that is no system account.
    pub user: String,
    /// Normalized OpenSSH public key lines (`TYPE BASE64 COMMENT`), no two the same key.
    pub authorized_keys: Vec<String>,
}

impl Default for Login {
    fn default() -> Self {
        Login {
            user: DEFAULT_USER.to_string(),
            authorized_keys: Vec::new(),
        }
    }
}

impl Login {
    /// Adds a key line after the same checks the descriptor's keys pass (for keys a client adds
    /// at deploy time); the stored line is normalized.
    pub fn add_key(&mut self, line: &str) -> Result<(), KeyError> {
        let key = PublicKey::parse(line)?;
        if let Some(of) = self
            .authorized_keys
            .iter()
            .position(|k| PublicKey::parse(k).is_ok_and(|known| known.same_key(&key)))
        {
            return Err(KeyError::Duplicate { of });
        }
        if self.authorized_keys.len() >= MAX_AUTHORIZED_KEYS {
            return Err(KeyError::TooMany {
                max: MAX_AUTHORIZED_KEYS,
            });
        }
        self.authorized_keys.push(key.to_string());
        Ok(())
    }

    /// The keys, parsed (stored lines were checked when they were added).
    pub fn keys(&self) -> impl Iterator<Item = PublicKey> + '_ {
        self.authorized_keys
            .iter()
            .filter_map(|k| PublicKey::parse(k).ok())
    }
}

/// Whether `user` is a POSIX portable login name vcds may create: a lower-case letter or `_`,
/// then lower-case letters, digits, `_` and `-`, at most 32.
pub fn is_login_name(user: &str) -> bool {
    user.len() <= MAX_USER
        && user.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && user
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
}

/// Whether `user` is (or is shaped like) an account the node's own system uses.
pub fn is_system_user(user: &str) -> bool {
    SYSTEM_USERS.contains(&user) || SYSTEM_USER_PREFIXES.iter().any(|p| user.starts_with(p))
}

/// A shared-storage request; validated here, not yet provisioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Storage {
    pub size_gib: u32,
    pub kind: StorageKind,
}

/// An ISO 8601 duration (`P30D`, `PT6H`, `P1Y2M`…), integers only. Years and months are
/// calendar units, applied with [`IsoDuration::after`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IsoDuration {
    pub years: u32,
    pub months: u32,
    pub weeks: u32,
    pub days: u32,
    pub hours: u32,
    pub minutes: u32,
    pub seconds: u32,
}

impl IsoDuration {
    /// `start` plus this duration; `None` on overflow.
    pub fn after(&self, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let months = self.years.checked_mul(12)?.checked_add(self.months)?;
        let days = i64::from(self.weeks) * 7 + i64::from(self.days);
        let clock =
            i64::from(self.hours) * 3600 + i64::from(self.minutes) * 60 + i64::from(self.seconds);
        start
            .checked_add_months(Months::new(months))?
            .checked_add_signed(TimeDelta::try_days(days)?)?
            .checked_add_signed(TimeDelta::try_seconds(clock)?)
    }
}

impl std::str::FromStr for IsoDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let body = text
            .strip_prefix('P')
            .ok_or("an ISO 8601 duration starts with P")?;
        let (date, time) = match body.split_once('T') {
            Some((_, "")) => return Err("nothing after T".into()),
            Some((d, t)) => (d, Some(t)),
            None => (body, None),
        };
        let mut d = IsoDuration::default();
        let date_units: [(char, &mut u32); 4] = [
            ('Y', &mut d.years),
            ('M', &mut d.months),
            ('W', &mut d.weeks),
            ('D', &mut d.days),
        ];
        let mut any = take_units(date, date_units)?;
        if let Some(time) = time {
            let time_units: [(char, &mut u32); 3] = [
                ('H', &mut d.hours),
                ('M', &mut d.minutes),
                ('S', &mut d.seconds),
            ];
            any |= take_units(time, time_units)?;
        }
        if !any {
            return Err("a duration needs at least one number and unit".into());
        }
        Ok(d)
    }
}

/// Reads `12D3…` style number+unit pairs, units in the given order, each at most once.
fn take_units<const N: usize>(
    mut text: &str,
    units: [(char, &mut u32); N],
) -> Result<bool, String> {
    let mut any = false;
    for (unit, slot) in units {
        let digits = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        if digits == 0 || !text[digits..].starts_with(unit) {
            continue;
        }
        *slot = text[..digits]
            .parse()
            .map_err(|_| format!("{} is too large", &text[..digits]))?;
        text = &text[digits + unit.len_utf8()..];
        any = true;
    }
    if text.is_empty() {
        Ok(any)
    } else {
        Err(format!("unexpected {text:?}"))
    }
}

impl fmt::Display for IsoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("P")?;
        for (n, unit) in [
            (self.years, 'Y'),
            (self.months, 'M'),
            (self.weeks, 'W'),
            (self.days, 'D'),
        ] {
            if n > 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        let time = [(self.hours, 'H'), (self.minutes, 'M'), (self.seconds, 'S')];
        if time.iter().any(|(n, _)| *n > 0) {
            f.write_str("T")?;
            for (n, unit) in time.into_iter().filter(|(n, _)| *n > 0) {
                write!(f, "{n}{unit}")?;
            }
        } else if *self == IsoDuration::default() {
            f.write_str("T0S")?;
        }
        Ok(())
    }
}

impl TryFrom<String> for IsoDuration {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<IsoDuration> for String {
    fn from(d: IsoDuration) -> String {
        d.to_string()
    }
}

/// Reads the one system component that extends `vc:Cluster`, validating it against the
/// current time (for "now" and times in the past).
pub fn cluster_spec(doc: &ResolvedDocument) -> Result<ClusterSpec, SpecError> {
    cluster_spec_at(doc, Utc::now())
}

/// [`cluster_spec`] with an explicit "now".
pub fn cluster_spec_at(
    doc: &ResolvedDocument,
    now: DateTime<Utc>,
) -> Result<ClusterSpec, SpecError> {
    let kind = QName::new(NS, "Cluster");
    let mut clusters = doc.system().children.iter().filter(|c| c.is_a(&kind));
    let cluster = clusters.next().ok_or(SpecError::NoCluster)?;
    let others = clusters.count();
    if others > 0 {
        return Err(SpecError::SeveralClusters { count: others + 1 });
    }
    read_cluster(
        &Field {
            element: cluster,
            path: String::new(),
        },
        now,
    )
}

/// An element of the cluster with its dotted field path, for messages.
struct Field<'e> {
    element: &'e Element,
    path: String,
}

impl<'e> Field<'e> {
    fn sub_path(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    fn child(&self, local: &str) -> Option<Field<'e>> {
        let element = self.element.child(&QName::new(NS, local))?;
        Some(Field {
            element,
            path: self.sub_path(local),
        })
    }

    fn required(&self, local: &str) -> Result<Field<'e>, SpecError> {
        self.child(local).ok_or_else(|| SpecError::Missing {
            field: self.sub_path(local),
        })
    }

    /// Every `local` child, with an indexed path (`forward[1]`, 1-based like XPath).
    fn list(&self, local: &'e str) -> impl Iterator<Item = Field<'e>> + '_ {
        let name = QName::new(NS, local);
        self.element
            .children
            .iter()
            .filter(move |c| *c.name == name)
            .enumerate()
            .map(move |(i, element)| Field {
                element,
                path: self.sub_path(&format!("{local}[{}]", i + 1)),
            })
    }

    /// Refuses children in the vcds namespace that this field does not define (typos).
    fn only(&self, known: &[&str]) -> Result<(), SpecError> {
        match self
            .element
            .children
            .iter()
            .find(|c| c.name.ns == NS && !known.contains(&c.name.local.as_str()))
        {
            Some(c) => Err(SpecError::UnknownField {
                field: self.sub_path(&c.name.local),
            }),
            None => Ok(()),
        }
    }

    /// The value, which may be empty.
    fn text(&self) -> Result<&'e str, SpecError> {
        match &self.element.reference {
            Some(_) => Err(SpecError::Lazy {
                field: self.path.clone(),
            }),
            None => Ok(self.element.value()),
        }
    }

    fn nonempty(&self) -> Result<&'e str, SpecError> {
        match self.text()? {
            "" => Err(SpecError::Missing {
                field: self.path.clone(),
            }),
            t => Ok(t),
        }
    }

    fn invalid(&self, expected: impl Into<String>, value: &str) -> SpecError {
        SpecError::Invalid {
            field: self.path.clone(),
            expected: expected.into(),
            value: value.to_string(),
        }
    }

    fn number<T: TryFrom<i64>>(&self, text: &str, (min, max): (i64, i64)) -> Result<T, SpecError> {
        let value: i64 = text.parse().map_err(|_| self.invalid("an integer", text))?;
        if !(min..=max).contains(&value) {
            return Err(SpecError::OutOfRange {
                field: self.path.clone(),
                min,
                max,
                value,
            });
        }
        T::try_from(value).map_err(|_| SpecError::OutOfRange {
            field: self.path.clone(),
            min,
            max,
            value,
        })
    }

    fn int<T: TryFrom<i64>>(&self, range: (i64, i64)) -> Result<T, SpecError> {
        self.number(self.nonempty()?, range)
    }

    fn keyword<T: Copy>(&self, words: &[(&str, T)]) -> Result<T, SpecError> {
        let text = self.nonempty()?;
        words
            .iter()
            .find(|(w, _)| *w == text)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let all: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
                self.invalid(format!("one of {}", all.join(", ")), text)
            })
    }

    fn duration(&self) -> Result<IsoDuration, SpecError> {
        let text = self.nonempty()?;
        text.parse().map_err(|why| {
            self.invalid(
                format!("an ISO 8601 duration such as P30D or PT6H ({why})"),
                text,
            )
        })
    }

    fn time(&self, text: &str) -> Result<DateTime<Utc>, SpecError> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|why| self.invalid(format!("an RFC 3339 time ({why})"), text))
    }

    /// An unqualified attribute of a list entry, as a sub-field.
    fn attr(&self, name: &str) -> Option<&'e str> {
        self.element.attribute(&QName::new("", name)).map(str::trim)
    }

    fn required_attr(&self, name: &str) -> Result<&'e str, SpecError> {
        self.attr(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| SpecError::Missing {
                field: format!("{}@{name}", self.path),
            })
    }
}

fn read_cluster(c: &Field<'_>, now: DateTime<Utc>) -> Result<ClusterSpec, SpecError> {
    c.only(&[
        "name",
        "os",
        "installer",
        "rolls",
        "attributes",
        "frontend",
        "compute",
        "network",
        "reservation",
        "lifetime",
        "scheduler",
        "gateway",
        "login",
        "storage",
    ])?;
    let name_field = c.required("name")?;
    let name = name_field.nonempty()?;
    if !is_dns_label(name) {
        return Err(name_field.invalid(
            "a DNS label (a-z, 0-9, '-', starting with a letter, at most 63)",
            name,
        ));
    }
    let frontend = read_nodes(&c.required("frontend")?, (1, 1))?;
    let compute = read_nodes(&c.required("compute")?, (0, MAX_COMPUTE))?;
    let network = read_network(
        &c.required("network")?,
        u64::from(frontend.count) + u64::from(compute.count),
    )?;
    Ok(ClusterSpec {
        name: name.to_string(),
        os: read_os(&c.required("os")?)?,
        installer: c.required("installer")?.keyword(Installer::WORDS)?,
        rolls: read_rolls(&c.required("rolls")?)?,
        attributes: read_attributes(&c.required("attributes")?)?,
        frontend,
        compute,
        network,
        reservation: read_reservation(&c.required("reservation")?, now)?,
        lifetime: read_lifetime(&c.required("lifetime")?)?,
        scheduler: c.required("scheduler")?.keyword(Scheduler::WORDS)?,
        gateway: read_gateway(&c.required("gateway")?)?,
        login: read_login(&c.required("login")?)?,
        storage: c.child("storage").map(|s| read_storage(&s)).transpose()?,
    })
}

fn is_dns_label(s: &str) -> bool {
    s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Roll names, versions and attribute keys: what Rocks accepts in its database.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

fn token<'e>(f: &Field<'e>, text: &'e str) -> Result<&'e str, SpecError> {
    if is_token(text) {
        Ok(text)
    } else {
        Err(f.invalid("letters, digits, '_', '-', '.', ':' (at most 64)", text))
    }
}

fn read_nodes(f: &Field<'_>, count: (i64, i64)) -> Result<NodeGroup, SpecError> {
    f.only(&["appliance", "count", "cpus", "memoryMiB", "diskGiB"])?;
    let appliance = f.required("appliance")?;
    Ok(NodeGroup {
        appliance: token(&appliance, appliance.nonempty()?)?.to_string(),
        count: f.required("count")?.int(count)?,
        cpus: f.required("cpus")?.int((1, MAX_CPUS))?,
        memory_mib: f.required("memoryMiB")?.int(MEMORY_MIB)?,
        disk_gib: f.required("diskGiB")?.int(DISK_GIB)?,
    })
}

fn read_os(f: &Field<'_>) -> Result<Os, SpecError> {
    f.only(&["name", "version"])?;
    Ok(Os {
        name: f.required("name")?.nonempty()?.to_string(),
        version: f.required("version")?.nonempty()?.to_string(),
    })
}

fn read_rolls(f: &Field<'_>) -> Result<Vec<Roll>, SpecError> {
    f.only(&["roll"])?;
    let mut rolls: Vec<Roll> = Vec::new();
    let mut seen = HashSet::new();
    for r in f.list("roll") {
        let name = token(&r, r.required_attr("name")?)?;
        let version = token(&r, r.required_attr("version")?)?;
        if !seen.insert(name) {
            return Err(SpecError::Inconsistent {
                field: r.path.clone(),
                reason: format!("roll {name} is listed twice"),
            });
        }
        rolls.push(Roll {
            name: name.to_string(),
            version: version.to_string(),
        });
    }
    Ok(rolls)
}

fn read_attributes(f: &Field<'_>) -> Result<Vec<RocksAttribute>, SpecError> {
    f.only(&["attribute"])?;
    let mut attributes: Vec<RocksAttribute> = Vec::new();
    let mut seen = HashSet::new();
    for a in f.list("attribute") {
        let key = token(&a, a.required_attr("name")?)?;
        if !seen.insert(key) {
            return Err(SpecError::Inconsistent {
                field: a.path.clone(),
                reason: format!("attribute {key} is set twice"),
            });
        }
        attributes.push(RocksAttribute {
            key: key.to_string(),
            value: a.text()?.to_string(),
        });
    }
    Ok(attributes)
}

fn read_network(f: &Field<'_>, nodes: u64) -> Result<Network, SpecError> {
    f.only(&["isolation", "subnet"])?;
    let isolation = f.required("isolation")?.keyword(Isolation::WORDS)?;
    let field = f.required("subnet")?;
    let text = field.nonempty()?;
    let subnet = match text.split_once('/') {
        Some((addr, prefix)) if !addr.is_empty() => {
            let network: Ipv4Addr = addr
                .parse()
                .map_err(|_| field.invalid("a prefix length or an IPv4 CIDR", text))?;
            let prefix: u8 = field.number(prefix, SUBNET_PREFIX)?;
            let mask = u32::MAX << (32 - u32::from(prefix));
            if u32::from(network) & !mask != 0 {
                let base = Ipv4Addr::from(u32::from(network) & mask);
                return Err(field.invalid(
                    format!("a network address (host bits clear: {base}/{prefix})"),
                    text,
                ));
            }
            if !network.is_private() {
                return Err(field.invalid("a private (RFC 1918) range", text));
            }
            Subnet::Cidr { network, prefix }
        }
        Some((_, prefix)) => Subnet::PrefixLength(field.number(prefix, SUBNET_PREFIX)?),
        None => Subnet::PrefixLength(field.number(text, SUBNET_PREFIX)?),
    };
    let prefix = subnet.prefix();
    // network and broadcast addresses are not usable; the gateway needs one.
    let hosts = (1u64 << (32 - u32::from(prefix))) - 2;
    let needed = nodes + 1;
    if hosts < needed {
        return Err(SpecError::SubnetTooSmall {
            prefix,
            hosts,
            needed,
        });
    }
    Ok(Network { isolation, subnet })
}

fn read_reservation(f: &Field<'_>, now: DateTime<Utc>) -> Result<Reservation, SpecError> {
    f.only(&["start", "duration", "end"])?;
    let start_field = f.required("start")?;
    let start = match start_field.nonempty()? {
        "now" => Start::Now,
        text => {
            let t = start_field.time(text)?;
            if t + TimeDelta::minutes(START_SLACK_MINUTES) < now {
                return Err(SpecError::Inconsistent {
                    field: start_field.path,
                    reason: format!("{t} is in the past"),
                });
            }
            Start::At(t)
        }
    };
    let duration = f
        .child("duration")
        .filter(|d| !d.element.value().is_empty() || d.element.reference.is_some());
    let end_at = f
        .child("end")
        .filter(|e| !e.element.value().is_empty() || e.element.reference.is_some());
    let end = match (duration, end_at) {
        (Some(d), None) => End::Duration(d.duration()?),
        (None, Some(e)) => End::At(e.time(e.nonempty()?)?),
        (Some(_), Some(_)) => {
            return Err(SpecError::Inconsistent {
                field: f.path.clone(),
                reason: "give either duration or end, not both".into(),
            })
        }
        (None, None) => {
            return Err(SpecError::Missing {
                field: f.sub_path("duration"),
            })
        }
    };
    let reservation = Reservation { start, end };
    let overflow = || SpecError::Inconsistent {
        field: f.path.clone(),
        reason: "the end is out of range".into(),
    };
    let (from, to) = reservation.window(now).ok_or_else(overflow)?;
    if to <= from {
        return Err(SpecError::EndsBeforeStart {
            start: from,
            end: to,
        });
    }
    if to < from + TimeDelta::hours(1) {
        return Err(SpecError::Inconsistent {
            field: f.path.clone(),
            reason: "a reservation lasts at least one hour (PT1H)".into(),
        });
    }
    if to
        > from
            .checked_add_months(Months::new(12))
            .ok_or_else(overflow)?
    {
        return Err(SpecError::Inconsistent {
            field: f.path.clone(),
            reason: "a reservation lasts at most one year (P1Y)".into(),
        });
    }
    Ok(reservation)
}

fn read_lifetime(f: &Field<'_>) -> Result<Lifetime, SpecError> {
    f.only(&["atEnd", "keepFor"])?;
    let at_end = f.required("atEnd")?.keyword(EndAction::WORDS)?;
    let keep = f.required("keepFor")?;
    let keep_for = keep.duration()?;
    let epoch = DateTime::<Utc>::UNIX_EPOCH;
    let too_long = keep_for
        .after(epoch)
        .is_none_or(|t| t - epoch > TimeDelta::days(MAX_KEEP_DAYS));
    if too_long {
        return Err(SpecError::Inconsistent {
            field: keep.path,
            reason: format!("disks are kept at most P{MAX_KEEP_DAYS}D"),
        });
    }
    Ok(Lifetime { at_end, keep_for })
}

fn read_gateway(f: &Field<'_>) -> Result<Gateway, SpecError> {
    f.only(&["forward"])?;
    let mut forwards: Vec<Forward> = Vec::new();
    let mut seen = HashSet::new();
    for fw in f.list("forward") {
        let port_text = fw.required_attr("port")?;
        let port: u16 = fw.number(port_text, (1, 65535))?;
        let external: u16 = fw
            .attr("external")
            .filter(|e| !e.is_empty())
            .map_or(Ok(port), |e| fw.number(e, (1, 65535)))?;
        let protocol = match fw.attr("protocol").filter(|p| !p.is_empty()) {
            None => Protocol::Tcp,
            Some(p) => Protocol::WORDS
                .iter()
                .find(|(w, _)| *w == p)
                .map(|(_, v)| *v)
                .ok_or_else(|| fw.invalid("protocol tcp or udp", p))?,
        };
        if !seen.insert((protocol, external)) {
            return Err(SpecError::Inconsistent {
                field: fw.path.clone(),
                reason: format!(
                    "external {} port {external} is already forwarded",
                    protocol.as_str()
                ),
            });
        }
        forwards.push(Forward {
            protocol,
            port,
            external,
        });
    }
    Ok(Gateway { forwards })
}

fn read_login(f: &Field<'_>) -> Result<Login, SpecError> {
    f.only(&["user", "authorizedKey"])?;
    let user_field = f.required("user")?;
    let user = user_field.nonempty()?;
    if !is_login_name(user) {
        return Err(user_field.invalid(
            format!("a login name (a-z or '_' first, then a-z, 0-9, '_', '-'; at most {MAX_USER})"),
            user,
        ));
    }
    if is_system_user(user) {
        return Err(user_field.invalid(
            "a user name that is not one of the nodes' system accounts (root, nobody, sshd, \
             systemd-*, slurm…)",
            user,
        ));
    }
    let mut login = Login {
        user: user.to_string(),
        authorized_keys: Vec::new(),
    };
    for k in f.list("authorizedKey") {
        let line = k.nonempty()?;
        login.add_key(line).map_err(|e| match e {
            KeyError::Duplicate { of } => SpecError::Inconsistent {
                field: k.path.clone(),
                reason: format!(
                    "the same key as {}",
                    f.sub_path(&format!("authorizedKey[{}]", of + 1))
                ),
            },
            KeyError::TooMany { max } => SpecError::Inconsistent {
                field: k.path.clone(),
                reason: format!("a login has at most {max} authorized keys"),
            },
            other => k.invalid(other.to_string(), &abbreviated(line)),
        })?;
    }
    Ok(login)
}

/// A long value shortened for a message (a key line can be 16 KiB).
fn abbreviated(text: &str) -> String {
    const SHOWN: usize = 60;
    match text.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

fn read_storage(f: &Field<'_>) -> Result<Storage, SpecError> {
    f.only(&["sizeGiB", "kind"])?;
    Ok(Storage {
        size_gib: f.required("sizeGiB")?.int(STORAGE_GIB)?,
        kind: f.required("kind")?.keyword(StorageKind::WORDS)?,
    })
}

impl ClusterSpec {
    /// What this spec asks for that vcds does not provision on any site yet, named by its
    /// field: Initialize refuses it rather than build a cluster without it.
    pub fn unprovisioned(&self) -> Option<String> {
        if self.scheduler == Scheduler::Sge {
            return Some(format!(
                "vc:scheduler {}: SGE is not provisioned yet; ask for vc:scheduler slurm \
                 (Slurm, configless, across the cluster) or none",
                self.scheduler.as_str()
            ));
        }
        self.storage.map(|storage| {
            format!(
                "vc:storage ({} GiB, {}): shared storage is not provisioned yet; leave \
                 vc:storage out",
                storage.size_gib,
                storage.kind.as_str()
            )
        })
    }

    /// The cluster as a `vc:cluster` element (schemas/vcds-cluster.xsd), for a resource property.
    pub fn to_xml(&self) -> String {
        let mut x = String::new();
        let _ = write!(x, "<vc:cluster xmlns:vc=\"{NS}\">");
        leaf(&mut x, "name", &self.name);
        x.push_str("<vc:os>");
        leaf(&mut x, "name", &self.os.name);
        leaf(&mut x, "version", &self.os.version);
        x.push_str("</vc:os>");
        leaf(&mut x, "installer", self.installer.as_str());
        x.push_str("<vc:rolls>");
        for r in &self.rolls {
            let _ = write!(
                x,
                "<vc:roll name=\"{}\" version=\"{}\"/>",
                escape(&r.name),
                escape(&r.version)
            );
        }
        x.push_str("</vc:rolls><vc:attributes>");
        for a in &self.attributes {
            let _ = write!(
                x,
                "<vc:attribute name=\"{}\">{}</vc:attribute>",
                escape(&a.key),
                escape(&a.value)
            );
        }
        x.push_str("</vc:attributes>");
        for (tag, n) in [("frontend", &self.frontend), ("compute", &self.compute)] {
            let _ = write!(x, "<vc:{tag}>");
            leaf(&mut x, "appliance", &n.appliance);
            leaf(&mut x, "count", &n.count.to_string());
            leaf(&mut x, "cpus", &n.cpus.to_string());
            leaf(&mut x, "memoryMiB", &n.memory_mib.to_string());
            leaf(&mut x, "diskGiB", &n.disk_gib.to_string());
            let _ = write!(x, "</vc:{tag}>");
        }
        x.push_str("<vc:network>");
        leaf(&mut x, "isolation", self.network.isolation.as_str());
        leaf(&mut x, "subnet", &self.network.subnet.to_string());
        x.push_str("</vc:network><vc:reservation>");
        match self.reservation.start {
            Start::Now => leaf(&mut x, "start", "now"),
            Start::At(t) => leaf(&mut x, "start", &t.to_rfc3339()),
        }
        match self.reservation.end {
            End::Duration(d) => leaf(&mut x, "duration", &d.to_string()),
            End::At(t) => leaf(&mut x, "end", &t.to_rfc3339()),
        }
        x.push_str("</vc:reservation><vc:lifetime>");
        leaf(&mut x, "atEnd", self.lifetime.at_end.as_str());
        leaf(&mut x, "keepFor", &self.lifetime.keep_for.to_string());
        x.push_str("</vc:lifetime>");
        leaf(&mut x, "scheduler", self.scheduler.as_str());
        x.push_str("<vc:gateway>");
        for f in &self.gateway.forwards {
            let _ = write!(
                x,
                "<vc:forward protocol=\"{}\" port=\"{}\" external=\"{}\"/>",
                f.protocol.as_str(),
                f.port,
                f.external
            );
        }
        x.push_str("</vc:gateway><vc:login>");
        leaf(&mut x, "user", &self.login.user);
        for line in &self.login.authorized_keys {
            match PublicKey::parse(line) {
                Ok(key) => {
                    let _ = write!(
                        x,
                        "<vc:authorizedKey fingerprint=\"{}\">{}</vc:authorizedKey>",
                        key.fingerprint(),
                        escape(line)
                    );
                }
                Err(_) => leaf(&mut x, "authorizedKey", line),
            }
        }
        x.push_str("</vc:login>");
        if let Some(s) = &self.storage {
            x.push_str("<vc:storage>");
            leaf(&mut x, "sizeGiB", &s.size_gib.to_string());
            leaf(&mut x, "kind", s.kind.as_str());
            x.push_str("</vc:storage>");
        }
        x.push_str("</vc:cluster>");
        x
    }
}

fn leaf(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, "<vc:{name}>{}</vc:{name}>", escape(value));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn iso_durations_parse_and_print() {
        for (text, canonical) in [
            ("P30D", "P30D"),
            ("PT6H", "PT6H"),
            ("P1Y2M3W4DT5H6M7S", "P1Y2M3W4DT5H6M7S"),
            ("PT0S", "PT0S"),
        ] {
            let d: IsoDuration = text.parse().unwrap();
            assert_eq!(d.to_string(), canonical);
        }
        for bad in [
            "30D",
            "P",
            "PT",
            "P1H",
            "PT1D",
            "P1D2Y",
            "P-1D",
            "P1.5D",
            "P99999999999D",
        ] {
            assert!(bad.parse::<IsoDuration>().is_err(), "{bad}");
        }
    }

    #[test]
    fn months_are_calendar_months() {
        let start = DateTime::parse_from_rfc3339("2026-01-31T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let d: IsoDuration = "P1M".parse().unwrap();
        assert_eq!(
            d.after(start).unwrap().to_rfc3339(),
            "2026-02-28T00:00:00+00:00"
        );
    }
}
