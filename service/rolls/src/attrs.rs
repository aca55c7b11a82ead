//! Host attributes: the layers Rocks resolves (global < OS < appliance < host), the values the
//! generator itself sets, and the local site's global defaults.

use std::collections::BTreeMap;

use crate::error::RollError;

/// Resolved attributes of one host, by name.
pub type Attributes = BTreeMap<String, String>;

/// Attributes as set at each level; a later level overrides an earlier one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributeLayers {
    pub global: Attributes,
    /// By OS name (`linux`, `sunos`).
    pub os: BTreeMap<String, Attributes>,
    /// By appliance name; applied over the appliance attributes the rolls set.
    pub appliance: BTreeMap<String, Attributes>,
    pub host: Attributes,
}

/// Kickstart generation phase: a node's first install, or `rocks run roll`-style reconfiguration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    #[default]
    Install,
    Reconfigure,
}

/// What the profile is generated for: OS, Rocks release (major version) and architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub os: String,
    pub release: u32,
    pub arch: String,
    pub phase: Phase,
}

impl Default for Target {
    /// The real rolls here are Rocks 7 (CentOS 7) for x86_64.
    fn default() -> Self {
        Target {
            os: "linux".to_string(),
            release: 7,
            arch: "x86_64".to_string(),
            phase: Phase::Install,
        }
    }
}

impl Target {
    /// The pykickstart syntax version (`ksvalidator -v`) of this target's installer: Rocks N
    /// installs CentOS N, whose anaconda reads RHEL N kickstarts.
    pub fn kickstart_version(&self) -> String {
        format!("RHEL{}", self.release)
    }
}

/// The local site's global attributes: the defaults Rocks' frontend install screens offer,
/// on the private network vcds gives a virtual cluster. Every attribute the stock core, base
/// and hpc rolls reference while generating an install profile has a value here.
pub fn site_defaults() -> Attributes {
    const DEFAULTS: &[(&str, &str)] = &[
        ("Info_CertificateCountry", "US"),
        ("Info_CertificateLocality", "San Diego"),
        ("Info_CertificateOrganization", "vcds"),
        ("Info_CertificateState", "California"),
        ("Info_ClusterContact", "admin@cluster.local"),
        ("Info_ClusterLatlong", "N32.87 W117.22"),
        ("Info_ClusterName", "vcds-cluster"),
        ("Info_ClusterURL", "http://cluster.local/"),
        ("Kickstart_DistroDir", "/export/rocks"),
        ("Kickstart_Keyboard", "us"),
        ("Kickstart_Lang", "en_US"),
        ("Kickstart_Langsupport", "en_US"),
        ("Kickstart_Multicast", "226.125.69.117"),
        ("Kickstart_PrivateAddress", "10.1.1.1"),
        ("Kickstart_PrivateBroadcast", "10.1.255.255"),
        ("Kickstart_PrivateDNSDomain", "local"),
        ("Kickstart_PrivateDNSServers", "10.1.1.1"),
        ("Kickstart_PrivateGateway", "10.1.1.1"),
        ("Kickstart_PrivateHostname", "frontend-0-0"),
        ("Kickstart_PrivateInterface", "eth0"),
        ("Kickstart_PrivateKickstartBasedir", "install"),
        ("Kickstart_PrivateKickstartCGI", "sbin/kickstart.cgi"),
        ("Kickstart_PrivateKickstartHost", "10.1.1.1"),
        ("Kickstart_PrivateNTPHost", "10.1.1.1"),
        ("Kickstart_PrivateNetmask", "255.255.0.0"),
        ("Kickstart_PrivateNetmaskCIDR", "16"),
        ("Kickstart_PrivateNetwork", "10.1.0.0"),
        // A crypted password no input matches: root stays locked until the site sets its own.
        ("Kickstart_PrivateRootPassword", "*"),
        ("Kickstart_PrivateSyslogHost", "10.1.1.1"),
        ("Kickstart_PublicAddress", "192.168.100.10"),
        ("Kickstart_PublicBroadcast", "192.168.100.255"),
        ("Kickstart_PublicDNSDomain", "cluster.local"),
        ("Kickstart_PublicDNSServers", "192.168.100.1"),
        ("Kickstart_PublicGateway", "192.168.100.1"),
        ("Kickstart_PublicHostname", "frontend.cluster.local"),
        ("Kickstart_PublicInterface", "eth1"),
        ("Kickstart_PublicKickstartHost", "central.rocksclusters.org"),
        ("Kickstart_PublicMTU", "1500"),
        // What the site decides per cluster (vcds-base's vcds-login and vcds-network): the
        // cluster's hosts, its user and keys; files as base64 (`_b64`), since a value is one
        // line. A host outside a cluster knows only the frontend ("10.1.1.1 frontend-0-0…").
        (
            "vcds_hosts_b64",
            "MTAuMS4xLjEJZnJvbnRlbmQtMC0wLmxvY2FsIGZyb250ZW5kLTAtMAo=",
        ),
        ("vcds_known_hosts_b64", ""),
        ("vcds_user", "vcds"),
        ("vcds_authorized_keys_b64", ""),
        ("vcds_cluster_key_b64", ""),
        ("vcds_cluster_key_pub", ""),
        ("vcds_host_key_b64", ""),
        ("vcds_host_key_pub", ""),
        // How the nodes are installed (`vc:installer`): vcds-base adds cloud-init for `image`.
        ("vcds_installer", "rocks"),
        // The batch scheduler (`vc:scheduler`): vcds-slurm's edges follow `slurm`.
        ("vcds_scheduler", "none"),
        // What the site makes for a Slurm cluster (vcds-slurm): its munge key, and a NodeName
        // line per execution host, as the VMs are sized.
        ("vcds_munge_key_b64", ""),
        ("vcds_slurm_nodes_b64", ""),
        ("Kickstart_PublicNTPHost", "pool.ntp.org"),
        ("Kickstart_PublicNetmask", "255.255.255.0"),
        ("Kickstart_PublicNetmaskCIDR", "24"),
        ("Kickstart_PublicNetwork", "192.168.100.0"),
        ("Kickstart_Timezone", "Etc/UTC"),
        ("HttpConf", "/etc/httpd/conf"),
        ("HttpConfigDirExt", "/etc/httpd/conf.d"),
        ("HttpRoot", "/var/www/html"),
        ("Server_Partitioning", "force-default"),
        ("disableServices", ""),
        ("ssh_use_dns", "true"),
    ];
    DEFAULTS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The values Rocks' `list host xml` / `list node xml` add for the host itself.
pub(crate) struct Identity<'a> {
    pub target: &'a Target,
    pub appliance: &'a str,
    pub membership: &'a str,
    pub root: &'a str,
    pub graph: &'a str,
}

/// Resolves the layers for one host: defaults < global < OS < appliance (rolls, then caller)
/// < host, then the identity values, which describe what is being generated and so win.
pub(crate) fn resolve(
    layers: &AttributeLayers,
    roll_appliance: &Attributes,
    id: &Identity<'_>,
) -> Result<Attributes, RollError> {
    let release = id.target.release.to_string();
    let version = format!("{release}.0");
    let mut attrs: Attributes = [
        ("hostname", format!("{}-0-0", id.appliance)),
        // Per-host values a cluster database would give; the first node address Rocks hands out.
        ("hostaddr", "10.1.255.254".to_string()),
        ("ksmac", "52:54:00:01:ff:fe".to_string()),
        ("distribution", "rocks-dist".to_string()),
        ("os_version_major", release.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let empty = Attributes::new();
    for layer in [
        &layers.global,
        layers.os.get(&id.target.os).unwrap_or(&empty),
        roll_appliance,
        layers.appliance.get(id.appliance).unwrap_or(&empty),
        &layers.host,
    ] {
        attrs.extend(layer.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    for (k, v) in [
        ("os", id.target.os.clone()),
        ("arch", id.target.arch.clone()),
        ("release", release.clone()),
        ("rocks_version_major", release),
        ("rocks_version", version.clone()),
        ("version", version),
        ("appliance", id.appliance.to_string()),
        ("membership", id.membership.to_string()),
        ("root", id.root.to_string()),
        ("graph", id.graph.to_string()),
    ] {
        attrs.insert(k.to_string(), v);
    }
    for (name, value) in &attrs {
        check(name, value)?;
    }
    Ok(attrs)
}

/// Attribute names become `&name;` references and values land inside kickstart lines, so a
/// name must be an XML name and a value one line (a newline could end a `%post` early).
fn check(name: &str, value: &str) -> Result<(), RollError> {
    let bad = |reason| {
        Err(RollError::BadAttribute {
            name: name.to_string(),
            reason,
        })
    };
    let mut chars = name.chars();
    let start_ok = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_');
    if !start_ok || !chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return bad("a name is a letter or '_' followed by letters, digits, '_', '-' or '.'");
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return bad("a value must be one line without control characters");
    }
    Ok(())
}

/// Parses a `KEY=VALUE` command-line attribute.
pub fn parse_attr(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn precedence_global_os_appliance_host() {
        let mut layers = AttributeLayers::default();
        layers.global.insert("x".into(), "global".into());
        layers.global.insert("y".into(), "global".into());
        layers.global.insert("os".into(), "spoofed".into());
        layers
            .os
            .entry("linux".into())
            .or_default()
            .insert("x".into(), "os".into());
        layers
            .appliance
            .entry("compute".into())
            .or_default()
            .insert("z".into(), "appliance".into());
        layers.host.insert("z".into(), "host".into());
        let rolls: Attributes = [("y".to_string(), "roll".to_string())]
            .into_iter()
            .collect();
        let target = Target::default();
        let id = Identity {
            target: &target,
            appliance: "compute",
            membership: "Compute",
            root: "compute",
            graph: "default",
        };
        let a = resolve(&layers, &rolls, &id).unwrap();
        assert_eq!(a["x"], "os");
        assert_eq!(a["y"], "roll");
        assert_eq!(a["z"], "host");
        assert_eq!(a["os"], "linux");
        assert_eq!(a["rocks_version_major"], "7");
        assert_eq!(a["hostname"], "compute-0-0");
        layers.host.insert("evil".into(), "x\n%end".into());
        assert!(matches!(
            resolve(&layers, &rolls, &id),
            Err(RollError::BadAttribute { .. })
        ));
    }

    #[test]
    fn command_line_attributes() {
        assert_eq!(parse_attr("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_attr("novalue").is_err());
        assert!(parse_attr("=x").is_err());
    }
}
