//! The other installer (`vc:installer image`): instead of the Rocks path, a node boots a cloud
//! image (its appliance's base image, whose package set the rolls give cloud-init for it) and
//! cloud-init configures it at its first boot from a NoCloud seed made of the manager's data:
//! the node's name and address, the user and keys, its host key. Then the seed's runcmd
//! ([`INSTALL_SCRIPT`]) runs the node's kickstart's %pre and %post on the running system and
//! reports finished once sshd answers, so both installers end in the same node.
//!
//! The seed's documents are data (JSON is YAML, which cloud-init reads); only [`write`]
//! touches the file system (genisoimage makes the `cidata` ISO image).

use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::{json, Value};
use vcds_install::{Host, HOST_KEY, HOST_KEY_PUB};

/// What a node's seed says, from its host registration.
#[derive(Debug, Clone, PartialEq)]
pub struct Seed {
    pub meta_data: Value,
    pub user_data: Value,
    pub network_config: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("host {host} lacks attribute {attribute}")]
    Missing {
        host: String,
        attribute: &'static str,
    },
    #[error("writing the seed {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("genisoimage: {0}")]
    Iso(String),
}

/// What the seed's runcmd runs: the kickstart's scripts on the node, then the report.
pub const INSTALL_SCRIPT: &str = include_str!("vcds-image-install.py");
const INSTALL_SCRIPT_PATH: &str = "/usr/local/sbin/vcds-image-install";

fn attribute<'a>(host: &'a Host, name: &'static str) -> Result<&'a str, SeedError> {
    host.attributes
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| SeedError::Missing {
            host: host.name.clone(),
            attribute: name,
        })
}

fn decoded(host: &Host, name: &'static str) -> Result<String, SeedError> {
    let text = attribute(host, name)?;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| SeedError::Missing {
            host: host.name.clone(),
            attribute: name,
        })
}

/// The seed of node `node` (its host registration `host`): `kickstart_url` is where it fetches
/// its kickstart, `progress_url` the install endpoints' `/install/progress`.
pub fn seed_of(
    node: &str,
    host: &Host,
    kickstart_url: &str,
    progress_url: &str,
) -> Result<Seed, SeedError> {
    let user = attribute(host, "vcds_user")?;
    let keys: Vec<String> = decoded(host, "vcds_authorized_keys_b64")?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    let mac = host.mac.map(|m| m.to_string()).unwrap_or_default();
    let ip = host.ip.map(|ip| ip.to_string()).unwrap_or_default();
    let prefix = attribute(host, "Kickstart_PrivateNetmaskCIDR")?;
    let gateway = attribute(host, "Kickstart_PrivateGateway")?;
    let domain = attribute(host, "Kickstart_PrivateDNSDomain")?;
    let user_data = json!({
        "hostname": node,
        "fqdn": format!("{node}.{domain}"),
        // The rolls' %post writes /etc/hosts (every node of the cluster).
        "manage_etc_hosts": false,
        "users": [{
            "name": user,
            "shell": "/bin/bash",
            "lock_passwd": true,
            "ssh_authorized_keys": keys,
        }],
        // No `locales` package (update-locale) in the image: the node keeps the C locale, as
        // one the Rocks way does.
        "locale": "false",
        "disable_root": true,
        "ssh_pwauth": false,
        // The site's host key, which every node of the cluster knows (none is generated: the
        // ed25519 one exists); no key of the image's.
        "ssh_deletekeys": true,
        "ssh_genkeytypes": ["ed25519"],
        "ssh_keys": {
            "ed25519_private": decoded(host, HOST_KEY)?,
            "ed25519_public": attribute(host, HOST_KEY_PUB)?,
        },
        "write_files": [{
            "path": INSTALL_SCRIPT_PATH,
            "content": INSTALL_SCRIPT,
            "permissions": "0755",
        }],
        // Once per instance, after the modules above: the kickstart's scripts, then the report.
        "runcmd": [["/usr/bin/python3", INSTALL_SCRIPT_PATH, kickstart_url, progress_url, mac]],
    });
    let network_config = json!({
        "version": 2,
        "ethernets": {
            "eth0": {
                "match": {"macaddress": mac},
                "set-name": "eth0",
                "addresses": [format!("{ip}/{prefix}")],
                "routes": [{"to": "0.0.0.0/0", "via": gateway}],
                "nameservers": {"addresses": [gateway]},
            }
        }
    });
    Ok(Seed {
        meta_data: json!({"instance-id": host.name, "local-hostname": node}),
        user_data,
        network_config,
    })
}

/// Writes `seed` as a NoCloud ISO image at `iso` (volume `cidata`), replacing an older one.
pub fn write(seed: &Seed, iso: &Path) -> Result<(), SeedError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SeedError::Io { path, source }
    };
    // The documents hold the node's private host key: only root reads them, and the image.
    let dir = iso.with_extension("d");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io(&dir))?;
    let files = [
        ("meta-data", seed.meta_data.to_string()),
        ("user-data", format!("#cloud-config\n{}\n", seed.user_data)),
        ("network-config", seed.network_config.to_string()),
    ];
    for (name, text) in &files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    let out = Command::new("genisoimage")
        .arg("-output")
        .arg(iso)
        .args(["-volid", "cidata", "-joliet", "-rock", "-quiet"])
        .args(files.iter().map(|(name, _)| dir.join(name)))
        .output()
        .map_err(io(iso))?;
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        return Err(SeedError::Iso(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    std::fs::set_permissions(iso, std::fs::Permissions::from_mode(0o600)).map_err(io(iso))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn a_seed_names_the_node_its_user_keys_and_address() {
        let attrs = [
            ("vcds_user", "alice".to_owned()),
            (
                "vcds_authorized_keys_b64",
                b64("ssh-ed25519 AAAA alice\nssh-ed25519 BBBB cluster\n"),
            ),
            ("Kickstart_PrivateNetmaskCIDR", "24".into()),
            ("Kickstart_PrivateGateway", "10.1.0.1".into()),
            ("Kickstart_PrivateDNSDomain", "local".into()),
            (HOST_KEY, b64("-----BEGIN OPENSSH PRIVATE KEY-----\n")),
            (HOST_KEY_PUB, "ssh-ed25519 CCCC frontend.s1".into()),
        ];
        let host = Host {
            name: "frontend.s1".into(),
            mac: Some("52:54:00:00:00:01".parse().unwrap()),
            ip: Some([10, 1, 0, 254].into()),
            cluster: "s1".into(),
            appliance: "frontend".into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        };
        let ks = "http://198.19.0.1:80/install/sbin/kickstart.cgi";
        let progress = "http://198.19.0.1:80/install/progress";
        let seed = seed_of("frontend", &host, ks, progress).unwrap();
        assert_eq!(seed.user_data["hostname"], "frontend");
        assert_eq!(seed.user_data["users"][0]["name"], "alice");
        assert_eq!(
            seed.user_data["users"][0]["ssh_authorized_keys"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            seed.user_data["runcmd"][0],
            json!([
                "/usr/bin/python3",
                INSTALL_SCRIPT_PATH,
                ks,
                progress,
                "52:54:00:00:00:01"
            ])
        );
        assert_eq!(seed.user_data["write_files"][0]["content"], INSTALL_SCRIPT);
        let eth0 = &seed.network_config["ethernets"]["eth0"];
        assert_eq!(eth0["addresses"][0], "10.1.0.254/24");
        assert_eq!(eth0["match"]["macaddress"], "52:54:00:00:00:01");
        assert_eq!(seed.meta_data["instance-id"], "frontend.s1");
        let mut incomplete = host.clone();
        incomplete.attributes.remove(HOST_KEY);
        assert!(matches!(
            seed_of("frontend", &incomplete, ks, progress),
            Err(SeedError::Missing {
                attribute: HOST_KEY,
                ..
            })
        ));
    }
}
