//! Network namespaces that stand in for P-nodes on one machine: an underlay namespace holding
//! an underlay bridge, one namespace per P-node with a veth leg on it, and extra legs (probes)
//! into cluster bridges.
//!
//! Underlay addresses come from 198.18.0.0/24 (RFC 2544's benchmarking range: never routed, so
//! it cannot clash with a real network on the host); they exist only inside these namespaces.

use std::net::Ipv4Addr;
use std::path::Path;

use crate::net::Cmd;
use crate::Error;

/// Underlay bridge inside the underlay namespace.
pub const UNDERLAY_BRIDGE: &str = "ulbr";
/// Name of every P-node's underlay interface inside its namespace.
pub const UNDERLAY_DEV: &str = "ul0";
/// Underlay MTU: room for VXLAN's 50 bytes of encapsulation so cluster networks keep 1500.
pub const UNDERLAY_MTU: u32 = 1550;

/// P-nodes that fit the underlay's /24 (.1 to .254).
pub const MAX_PNODES: u8 = 254;

/// Address of the `index`-th P-node (0-based) on the underlay.
pub fn underlay_ip(index: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, index.saturating_add(1))
}

/// A P-node namespace and its underlay leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PnodeNs {
    pub netns: String,
    pub underlay_dev: String,
    pub underlay_ip: Ipv4Addr,
}

/// The underlay namespace and the P-nodes joined to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Underlay {
    pub netns: String,
    pub pnodes: Vec<PnodeNs>,
}

/// Guard over the namespaces this process created. Dropping it (also while unwinding from a
/// panic) kills any process still inside them and deletes them, which removes every link,
/// bridge, tap and VXLAN device they contain.
#[derive(Debug, Default)]
pub struct Namespaces {
    created: Vec<String>,
}

impl Namespaces {
    pub fn new() -> Self {
        Self::default()
    }

    /// Names of the namespaces created so far, oldest first.
    pub fn names(&self) -> &[String] {
        &self.created
    }

    /// Creates a namespace with loopback up; it is deleted with the guard.
    pub fn create(&mut self, name: &str) -> Result<(), Error> {
        Cmd::ip(None, &["netns", "add", name]).run()?;
        self.created.push(name.to_owned());
        Cmd::ip(Some(name), &["link", "set", "lo", "up"]).run()?;
        Ok(())
    }

    /// Takes a namespace created by someone else (e.g. a GW-node's `gw-<id>`) into the guard:
    /// it is deleted with the others, processes included, unless it is already gone.
    pub fn adopt(&mut self, name: &str) {
        self.created.push(name.to_owned());
    }

    /// Creates `{prefix}-ul` with the underlay bridge and `{prefix}-p1`… with one underlay leg
    /// each, addressed by [`underlay_ip`].
    pub fn build_underlay(&mut self, prefix: &str, pnodes: u8) -> Result<Underlay, Error> {
        if pnodes > MAX_PNODES {
            return Err(Error::InvalidSpec(format!(
                "{pnodes} P-nodes do not fit the underlay's /24 (at most {MAX_PNODES})"
            )));
        }
        let ul = format!("{prefix}-ul");
        self.create(&ul)?;
        let mtu = UNDERLAY_MTU.to_string();
        Cmd::ip(
            Some(&ul),
            &[
                "link",
                "add",
                UNDERLAY_BRIDGE,
                "mtu",
                &mtu,
                "type",
                "bridge",
            ],
        )
        .run()?;
        Cmd::ip(Some(&ul), &["link", "set", UNDERLAY_BRIDGE, "up"]).run()?;
        let mut joined = Vec::new();
        for index in 0..pnodes {
            let netns = format!("{prefix}-p{}", u16::from(index) + 1);
            self.create(&netns)?;
            let ip = underlay_ip(index);
            add_leg(
                &Leg {
                    bridge_netns: &ul,
                    bridge: UNDERLAY_BRIDGE,
                    port: &format!("ulp{index}"),
                    netns: &netns,
                    dev: UNDERLAY_DEV,
                    cidr: &format!("{ip}/24"),
                },
                UNDERLAY_MTU,
            )?;
            joined.push(PnodeNs {
                netns,
                underlay_dev: UNDERLAY_DEV.to_owned(),
                underlay_ip: ip,
            });
        }
        Ok(Underlay {
            netns: ul,
            pnodes: joined,
        })
    }

    /// Lets the namespaces outlive the guard (a site that persists across restarts).
    pub fn keep(mut self) {
        self.created.clear();
    }

    /// Kills what runs in the namespaces and deletes them, newest first. Tries them all and
    /// returns the first error.
    pub fn delete_all(&mut self) -> Result<(), Error> {
        let mut first_error = None;
        while let Some(name) = self.created.pop() {
            if !Path::new("/run/netns").join(&name).exists() {
                continue; // removed by its owner (an adopted GW namespace)
            }
            if let Err(e) = kill_processes(&name)
                .and_then(|()| Cmd::ip(None, &["netns", "del", &name]).run().map(drop))
            {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        if let Err(e) = self.delete_all() {
            eprintln!("vcds-site: namespace cleanup: {e}");
        }
    }
}

/// SIGKILLs the processes inside a namespace: a leftover QEMU would otherwise keep the
/// namespace (and its taps) alive after `ip netns del`.
fn kill_processes(netns: &str) -> Result<(), Error> {
    let pids = Cmd::ip(None, &["netns", "pids", netns]).run()?;
    for pid in pids.split_whitespace() {
        // The process may exit on its own meanwhile; that is fine.
        let _ = Cmd(vec!["kill".into(), "-KILL".into(), pid.into()]).run();
    }
    Ok(())
}

/// A veth pair from a bridge in one namespace to an addressed interface in another.
#[derive(Debug, Clone, Copy)]
pub struct Leg<'a> {
    pub bridge_netns: &'a str,
    pub bridge: &'a str,
    /// The veth end that becomes a bridge port.
    pub port: &'a str,
    pub netns: &'a str,
    pub dev: &'a str,
    /// Address of `dev`, e.g. `10.1.0.250/24`.
    pub cidr: &'a str,
}

/// Creates the leg and brings both ends up.
pub fn add_leg(leg: &Leg<'_>, mtu: u32) -> Result<(), Error> {
    let mtu = mtu.to_string();
    let bns = Some(leg.bridge_netns);
    Cmd::ip(
        bns,
        &[
            "link", "add", leg.port, "mtu", &mtu, "type", "veth", "peer", "name", leg.dev, "netns",
            leg.netns, "mtu", &mtu,
        ],
    )
    .run()?;
    Cmd::ip(bns, &["link", "set", leg.port, "master", leg.bridge, "up"]).run()?;
    Cmd::ip(Some(leg.netns), &["addr", "add", leg.cidr, "dev", leg.dev]).run()?;
    Cmd::ip(Some(leg.netns), &["link", "set", leg.dev, "up"]).run()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn underlay_addresses() {
        assert_eq!(underlay_ip(0), Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(underlay_ip(MAX_PNODES - 1), Ipv4Addr::new(198, 18, 0, 254));
        let mut none = Namespaces::new();
        assert!(matches!(
            none.build_underlay("x", MAX_PNODES + 1),
            Err(Error::InvalidSpec(_))
        ));
    }
}
