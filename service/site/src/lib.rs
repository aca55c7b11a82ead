//! The local site: what a P-node agent needs to give each virtual cluster its own L2 network
//! and to run the cluster's virtual nodes as QEMU VMs.
//!
//! - [`net`]: per-cluster network driver (cluster bridge + VXLAN or 802.1Q uplink + taps), as
//!   pure plan functions turning desired and observed state into `ip`/`bridge` commands, plus
//!   an idempotent executor.
//! - [`netns`]: network namespaces standing in for P-nodes and their underlay, with a guard that
//!   removes everything it created.
//! - [`vm`]: QEMU command line (vCPUs and memory as booked, an optional disk: a qcow2 overlay
//!   on a base image of `vcds-image`), launch inside a P-node namespace, console markers and a
//!   QMP client for suspend/resume.
//! - [`gateway`]: the GW-node of a virtual cluster: a namespace `gw-<network id>` with a leg on
//!   the cluster bridge and one on the outside bridge, NAT and port forwards to the frontend
//!   (nftables), DHCP with the plan's fixed addresses and host names, TFTP/PXE and the kickstart
//!   URL (Debian's dnsmasq); pure planning plus an idempotent executor.
//! - [`agent`]: the P-node agent (`vcds agent`) serving idempotent network, GW-node and VM
//!   operations and an inventory of what really exists, and [`agent::AgentClient`] for the
//!   manager.
//! - [`gmond`]: the agent's gmond-compatible port: the P-node's /proc figures and its VMs'
//!   state and CPU in Ganglia's XML, for the manager's poller and stock gmetad.
//! - [`local`]: the local site: P-node namespaces with their agents, the underlay and the
//!   outside network, adopted across restarts; `bind_tcp_in` for the manager's install listener.
//! - [`rpc`]: the agent's authenticated request/response protocol and its transports;
//!   [`failure`]: why an agent could not do what it was asked, typed for the manager.
//!
//! The virtual nodes' boot image (Debian cloud kernel + busybox initramfs printing
//! `VCDS-NODE-UP <hostname>`) comes from `scripts/build-node-image.sh`, which also installs QEMU,
//! dnsmasq, nftables and the tools of the root tests in `tests/root_site.rs` (they print `SKIP:` without root, the
//! tools or the image; `VCDS_REQUIRE_ROOT_TESTS=1` makes that a failure).

pub mod agent;
mod error;
pub mod failure;
pub mod gateway;
pub mod gmond;
pub mod local;
pub mod net;
pub mod netns;
mod process;
pub mod rpc;
pub mod vm;

pub use error::Error;
