//! Ganglia monitoring for vcds: gmond's `GANGLIA_XML` read safely and written faithfully,
//! summaries and bounded history over it, and a poller that never waits on a bad host.
//!
//! Everything but [`poll`] is pure; the manager polls P-node and GW-node gmonds with
//! [`poll::poll_cycle`] and folds the reports into a [`summary::Monitor`]; an agent renders
//! [`export::agent_document`] with [`write::write_document`] on its gmond-compatible port.

pub mod export;
pub mod history;
pub mod model;
pub mod parse;
pub mod poll;
pub mod summary;
pub mod write;

pub use model::{Cluster, GangliaXml, Host, Metric, MetricType, Slope};
pub use parse::{parse_bytes, parse_str, ParseError, ParseLimits};
pub use poll::{poll_cycle, EndpointReport, PollConfig, PollError};
pub use write::write_document;
