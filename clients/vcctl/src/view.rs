//! What the commands show, read from a System's resource-property document.

use roxmltree::Node;
use serde::Serialize;
use vcds_protocol::ns::{API, CMP, MUWS1, VC, VCDS, WSRF_RL};

fn child<'a, 'i>(n: Node<'a, 'i>, ns: &str, local: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name((ns, local)))
}

/// The text of `n`'s child `(ns, local)`; None when it is missing or empty (e.g. nil).
fn text(n: Node<'_, '_>, ns: &str, local: &str) -> Option<String> {
    child(n, ns, local)
        .and_then(|c| c.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// Text of a child in the vcds namespace, `""` when missing (for fields always present).
fn vcds(n: Node<'_, '_>, local: &str) -> String {
    text(n, VCDS, local).unwrap_or_default()
}

/// Lifecycle state, phase and times of a System, its cluster and placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub resource_id: String,
    /// `instantiated`, `initialized`, `running`, `suspended`, `terminated`, `failed` (`?`
    /// when the document has none).
    pub state: String,
    pub phase: Option<String>,
    pub created: Option<String>,
    pub started: Option<String>,
    pub terminated: Option<String>,
    /// None: never.
    pub termination_time: Option<String>,
    pub cluster: Option<String>,
    pub reservation: Option<Reservation>,
    pub network: Option<Network>,
    /// The descriptor's login as the service read it (`vc:login` of `vcds:ClusterSpec`).
    pub login: Option<Login>,
    /// Where the user logs in (`vcds:Access`), while the site holds the cluster.
    pub access: Option<Access>,
    /// What the cluster's batch scheduler sees (`vcds:Scheduler`), once the frontend reported.
    pub scheduler: Option<Scheduler>,
    pub nodes: Vec<NodeRow>,
}

/// The batch scheduler's view: jobs, and each node's state in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scheduler {
    pub name: String,
    pub reported_at: String,
    pub running: String,
    pub pending: String,
    /// (node, state), as the scheduler names them.
    pub nodes: Vec<(String, String)>,
}

impl Scheduler {
    /// `slurm: 1 running, 0 pending; compute-0-0 allocated, … (reported T)`
    pub fn line(&self) -> String {
        let nodes: Vec<String> = self.nodes.iter().map(|(n, s)| format!("{n} {s}")).collect();
        format!(
            "{}: {} running, {} pending; {} (reported {})",
            self.name,
            self.running,
            self.pending,
            if nodes.is_empty() {
                "no nodes".to_string()
            } else {
                nodes.join(", ")
            },
            self.reported_at
        )
    }
}

/// Who logs in to the nodes, with which public keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Login {
    pub user: String,
    pub authorized_keys: Vec<AuthorizedKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthorizedKey {
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: Option<String>,
    /// The OpenSSH public key line.
    pub key: String,
}

/// The frontend's sshd, through the GW-node's port forward on the site's outside network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Access {
    pub user: String,
    pub host: String,
    pub port: u16,
    /// The plain ssh command line (`vcctl ssh` also checks the host key).
    pub ssh: String,
}

impl Access {
    fn new(user: String, host: String, port: u16) -> Access {
        let ssh = if port == 22 {
            format!("ssh {user}@{host}")
        } else {
            format!("ssh -p {port} {user}@{host}")
        };
        Access {
            user,
            host,
            port,
            ssh,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reservation {
    pub start: String,
    pub end: String,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Network {
    pub isolation: String,
    pub network_id: String,
    pub subnet: String,
    pub gateway: Gateway,
}

/// The cluster's GW-node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gateway {
    pub pnode: String,
    pub ip: String,
    pub mac: String,
}

/// One virtual node of the placement, with its install state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRow {
    pub name: String,
    pub appliance: String,
    pub pnode: String,
    pub ip: String,
    pub macs: Vec<String>,
    pub cpus: String,
    pub memory_mib: String,
    pub disk_gib: String,
    pub state: String,
    /// The node's SSH host public key (`TYPE BASE64 [COMMENT]`), once the site made it.
    pub host_key: Option<String>,
    /// What the node's VM got, when the site says (as booked unless it caps VMs).
    pub vm_cpus: Option<String>,
    pub vm_memory_mib: Option<String>,
}

impl NodeRow {
    /// Done installing: reported finished, or up with its ready cluster.
    pub fn installed(&self) -> bool {
        matches!(self.state.as_str(), "finished" | "up")
    }

    /// The VM's size (`CPUs/MiB`) when the site reported one that is not the booked size.
    pub fn vm_differs(&self) -> bool {
        let differs =
            |got: &Option<String>, booked: &str| got.as_deref().is_some_and(|g| g != booked);
        differs(&self.vm_cpus, &self.cpus) || differs(&self.vm_memory_mib, &self.memory_mib)
    }

    /// `CPUs/MiB` of the VM, `-` for what the site did not report.
    pub fn vm_size(&self) -> String {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
        format!(
            "{}/{}",
            or_dash(&self.vm_cpus),
            or_dash(&self.vm_memory_mib)
        )
    }

    /// Whether this is the cluster's frontend.
    pub fn is_frontend(&self) -> bool {
        self.appliance == "frontend"
    }
}

impl Status {
    /// Reads `doc`, the root of a System's resource-property document.
    pub fn read(doc: Node<'_, '_>) -> Status {
        let state = child(doc, VCDS, "SystemState")
            .and_then(|s| child(s, CMP, "State"))
            .and_then(|s| s.first_element_child())
            .map_or_else(
                || "?".to_string(),
                |e| e.tag_name().name().replace("State", "").to_lowercase(),
            );
        let cluster_spec = doc.descendants().find(|n| n.has_tag_name((VC, "cluster")));
        let cluster = cluster_spec.and_then(|c| text(c, VC, "name"));
        let login = cluster_spec
            .and_then(|c| child(c, VC, "login"))
            .map(|l| Login {
                user: text(l, VC, "user").unwrap_or_default(),
                authorized_keys: l
                    .children()
                    .filter(|k| k.has_tag_name((VC, "authorizedKey")))
                    .filter_map(|k| {
                        let key = k.text()?.trim().to_string();
                        Some(AuthorizedKey {
                            fingerprint: k.attribute("fingerprint").map(str::to_string),
                            key,
                        })
                    })
                    .collect(),
            });
        let access = child(doc, VCDS, "Access").and_then(|a| {
            let port = text(a, VCDS, "port")?.parse().ok()?;
            Some(Access::new(
                text(a, VCDS, "user")?,
                text(a, VCDS, "host")?,
                port,
            ))
        });
        let reservation = child(doc, VCDS, "Reservation").map(|r| Reservation {
            start: vcds(r, "start"),
            end: vcds(r, "end"),
            state: vcds(r, "state"),
        });
        let network = child(doc, VCDS, "Network").map(|n| {
            let gw = child(n, VCDS, "gateway");
            let gw_field = |local| gw.map(|g| vcds(g, local)).unwrap_or_default();
            Network {
                isolation: vcds(n, "isolation"),
                network_id: vcds(n, "networkId"),
                subnet: vcds(n, "subnet"),
                gateway: Gateway {
                    pnode: gw_field("pnode"),
                    ip: gw_field("ip"),
                    mac: gw_field("mac"),
                },
            }
        });
        let nodes = doc
            .descendants()
            .filter(|n| n.has_tag_name((VCDS, "Node")))
            .map(|n| NodeRow {
                name: vcds(n, "name"),
                appliance: vcds(n, "appliance"),
                pnode: vcds(n, "pnode"),
                ip: vcds(n, "ip"),
                macs: n
                    .children()
                    .filter(|c| c.has_tag_name((VCDS, "mac")))
                    .filter_map(|c| c.text())
                    .map(|t| t.trim().to_string())
                    .collect(),
                cpus: vcds(n, "cpus"),
                memory_mib: vcds(n, "memoryMiB"),
                disk_gib: vcds(n, "diskGiB"),
                state: vcds(n, "state"),
                host_key: text(n, VCDS, "hostKey"),
                vm_cpus: text(n, VCDS, "vmCpus"),
                vm_memory_mib: text(n, VCDS, "vmMemoryMiB"),
            })
            .collect();
        Status {
            resource_id: text(doc, MUWS1, "ResourceId").unwrap_or_default(),
            state,
            phase: text(doc, VCDS, "Phase"),
            created: text(doc, API, "CreatedTime"),
            started: text(doc, API, "StartedTime"),
            terminated: text(doc, API, "TerminatedTime"),
            termination_time: text(doc, WSRF_RL, "TerminationTime"),
            cluster,
            reservation,
            network,
            login,
            access,
            scheduler: child(doc, VCDS, "Scheduler").map(|s| Scheduler {
                name: vcds(s, "name"),
                reported_at: vcds(s, "reportedAt"),
                running: vcds(s, "running"),
                pending: vcds(s, "pending"),
                nodes: s
                    .children()
                    .filter(|n| n.has_tag_name((VCDS, "node")))
                    .map(|n| {
                        let name = n.attribute("name").unwrap_or_default().to_string();
                        (name, n.text().unwrap_or_default().trim().to_string())
                    })
                    .collect(),
            }),
            nodes,
        }
    }

    pub fn phase(&self) -> &str {
        self.phase.as_deref().unwrap_or("-")
    }

    /// The field lines of `vcctl status`, in order.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
        let mut fields = vec![
            ("ResourceId", self.resource_id.clone()),
            ("State", self.state.clone()),
            ("Phase", self.phase().to_string()),
            ("Created", or_dash(&self.created)),
            ("Started", or_dash(&self.started)),
            ("Terminated", or_dash(&self.terminated)),
            (
                "TerminationTime",
                self.termination_time
                    .clone()
                    .unwrap_or_else(|| "never".to_string()),
            ),
            ("Cluster", or_dash(&self.cluster)),
            (
                "Reservation",
                self.reservation.as_ref().map_or_else(
                    || "-".to_string(),
                    |r| format!("{} .. {} ({})", r.start, r.end, r.state),
                ),
            ),
            (
                "Network",
                self.network.as_ref().map_or_else(
                    || "-".to_string(),
                    |n| {
                        format!(
                            "{} {}, subnet {}, GW-node {} ({})",
                            n.isolation, n.network_id, n.subnet, n.gateway.pnode, n.gateway.ip
                        )
                    },
                ),
            ),
        ];
        if let Some(l) = &self.login {
            let keys = match l.authorized_keys.as_slice() {
                [] => "no authorized key".to_string(),
                keys => {
                    let prints: Vec<&str> = keys
                        .iter()
                        .map(|k| k.fingerprint.as_deref().unwrap_or("?"))
                        .collect();
                    let n = keys.len();
                    let s = if n == 1 { "" } else { "s" };
                    format!("{n} authorized key{s}: {}", prints.join(", "))
                }
            };
            fields.push(("User", format!("{} ({keys})", l.user)));
        }
        if let Some(a) = &self.access {
            fields.push(("Login", a.ssh.clone()));
        }
        if let Some(s) = &self.scheduler {
            fields.push(("Scheduler", s.line()));
        }
        fields
    }
}

/// Element children of a metrics element as (name, text), in document order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    fn of(n: Node<'_, '_>) -> Fields {
        Fields(
            n.children()
                .filter(Node::is_element)
                .map(|c| {
                    (
                        c.tag_name().name().to_string(),
                        c.text().unwrap_or("").to_string(),
                    )
                })
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A JSON object, in document order.
impl Serialize for Fields {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// The Ganglia figures of a System (`vcds:NodeMetrics`, `vcds:ClusterMetrics`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metrics {
    pub cluster: Fields,
    pub nodes: Vec<Fields>,
}

impl Metrics {
    pub fn read(doc: Node<'_, '_>) -> Metrics {
        Metrics {
            cluster: child(doc, VCDS, "ClusterMetrics")
                .map(Fields::of)
                .unwrap_or_default(),
            nodes: doc
                .descendants()
                .filter(|n| n.has_tag_name((VCDS, "NodeMetrics")))
                .map(Fields::of)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<v:SystemProperties xmlns:v="urn:vcds:2026"
        xmlns:muws1="http://docs.oasis-open.org/wsdm/muws1-2.xsd"
        xmlns:api="http://www.gridforum.org/cddlm/deployapi/2005/02"
        xmlns:cmp="http://www.gridforum.org/cddlm/components/2005/02"
        xmlns:rl="http://docs.oasis-open.org/wsrf/rl-2"
        xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
      <muws1:ResourceId>abc</muws1:ResourceId>
      <api:CreatedTime>2026-01-01T00:00:00.000Z</api:CreatedTime>
      <v:SystemState><cmp:State><v:SuspendedState/></cmp:State></v:SystemState>
      <v:Phase>suspended</v:Phase>
      <v:ClusterSpec><vc:cluster xmlns:vc="urn:vcds:2026:cdl"><vc:name>small</vc:name>
        <vc:login><vc:user>alice</vc:user><vc:authorizedKey fingerprint="SHA256:x">ssh-ed25519 AAAA a@b</vc:authorizedKey></vc:login></vc:cluster></v:ClusterSpec>
      <v:Nodes><v:Node><v:name>frontend</v:name><v:appliance>frontend</v:appliance><v:pnode>p1</v:pnode>
        <v:ip>10.1.0.254</v:ip><v:mac>02:00:00:00:00:01</v:mac><v:mac>02:00:00:00:00:02</v:mac>
        <v:cpus>2</v:cpus><v:memoryMiB>1024</v:memoryMiB><v:diskGiB>10</v:diskGiB><v:state>up</v:state>
        <v:hostKey>ssh-ed25519 AAAAC3 root@frontend</v:hostKey><v:vmCpus>2</v:vmCpus><v:vmMemoryMiB>512</v:vmMemoryMiB></v:Node></v:Nodes>
      <v:Reservation><v:start>S</v:start><v:end>E</v:end><v:state>active</v:state></v:Reservation>
      <v:Network><v:isolation>VXLAN</v:isolation><v:networkId>7</v:networkId><v:subnet>10.1.0.0/24</v:subnet>
        <v:gateway><v:pnode>p2</v:pnode><v:ip>198.19.0.7</v:ip><v:mac>m</v:mac></v:gateway></v:Network>
      <v:Access><v:user>alice</v:user><v:host>198.19.0.7</v:host><v:port>2222</v:port></v:Access>
      <v:NodeMetrics><v:Name>frontend</v:Name><v:LoadOne>0.5</v:LoadOne></v:NodeMetrics>
      <v:ClusterMetrics><v:Nodes>1</v:Nodes><v:NodesUp>1</v:NodesUp></v:ClusterMetrics>
      <rl:TerminationTime xsi:nil="true"/>
    </v:SystemProperties>"#;

    #[test]
    fn reads_a_system_document() {
        let doc = vcds_xml::parse(DOC, &vcds_xml::Limits::default()).unwrap();
        let s = Status::read(doc.root_element());
        assert_eq!(s.state, "suspended");
        assert_eq!(s.cluster.as_deref(), Some("small"));
        assert_eq!(s.termination_time, None);
        assert_eq!(s.nodes[0].macs.len(), 2);
        assert!(s.nodes[0].installed());
        let fields = s.fields();
        assert_eq!(fields[6], ("TerminationTime", "never".to_string()));
        assert_eq!(fields[8].1, "S .. E (active)");
        assert_eq!(
            fields[9].1,
            "VXLAN 7, subnet 10.1.0.0/24, GW-node p2 (198.19.0.7)"
        );
        assert_eq!(fields[10].1, "alice (1 authorized key: SHA256:x)");
        assert_eq!(
            fields[11],
            ("Login", "ssh -p 2222 alice@198.19.0.7".to_string())
        );
        let n = &s.nodes[0];
        assert_eq!(
            n.host_key.as_deref(),
            Some("ssh-ed25519 AAAAC3 root@frontend")
        );
        assert!(n.vm_differs() && n.is_frontend());
        assert_eq!(n.vm_size(), "2/512");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["access"]["port"], 2222);
        assert_eq!(
            json["login"]["authorized_keys"][0]["fingerprint"],
            "SHA256:x"
        );
        assert_eq!(json["nodes"][0]["vm_memory_mib"], "512");
        let m = Metrics::read(doc.root_element());
        assert_eq!(m.nodes[0].get("LoadOne"), "0.5");
        assert_eq!(
            serde_json::to_string(&m.cluster).unwrap(),
            r#"{"Nodes":"1","NodesUp":"1"}"#
        );
    }
}
