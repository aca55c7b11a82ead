//! Installing nodes the Rocks way, as a Rocks frontend serves them: the roll catalog, the hosts
//! that may install and their kickstart profiles ([`Kickstarts`]), the progress they report
//! (stored, and announced to [`Kickstarts::progress_events`] listeners), the installer's boot
//! files ([`BootFiles`]), what the clusters' schedulers see ([`SchedulerView`]), and the HTTP
//! routes of all of it ([`http`]).

mod archive;
mod boot;
mod catalog;
pub mod http;
mod scheduler;

pub use boot::{BootFiles, IPXE_SCRIPT};
pub use catalog::{
    ApplianceInfo, Host, Install, InstallState, KickstartError, Kickstarts, NodeRow, Progress,
    RollInfo, CLUSTER_KEY, CLUSTER_KEY_PUB, HOST_KEY, HOST_KEY_PUB, INSTALLS_FROM,
};
mod builtin;

pub use builtin::{builtin_package_maps, builtin_rolls};
pub use catalog::PackageSource;
pub use scheduler::{Reported, SchedulerReport, SchedulerView};
