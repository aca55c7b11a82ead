//! The figures monitoring keeps per System, as the resource properties `vcds:NodeMetrics` and
//! `vcds:ClusterMetrics` show them.

/// One reporting node's figures (`vcds:NodeMetrics`); figures a gmond did not send are `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeMetrics {
    pub name: String,
    pub pnode: String,
    pub state: String,
    pub load_one: Option<f64>,
    pub cpu_user: Option<f64>,
    pub mem_used_kb: Option<f64>,
    pub mem_total_kb: Option<f64>,
    pub bytes_in: Option<f64>,
    pub bytes_out: Option<f64>,
    /// Why the node's data is stale, when it is.
    pub stale: Option<String>,
}

/// A System's figures as a whole (`vcds:ClusterMetrics`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterMetrics {
    pub nodes: usize,
    pub nodes_up: usize,
    pub nodes_stale: usize,
    pub load_one_avg: Option<f64>,
    pub load_one_max: Option<f64>,
    pub mem_used_kb: f64,
    pub mem_total_kb: f64,
}

impl ClusterMetrics {
    /// A cluster of `nodes` whose nodes have not reported (yet).
    pub fn unreported(nodes: usize) -> ClusterMetrics {
        ClusterMetrics {
            nodes,
            ..ClusterMetrics::default()
        }
    }
}

/// A System's monitoring resource properties, as of the last poll cycle.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SystemMetrics {
    /// One per reporting node, by name.
    pub nodes: Vec<NodeMetrics>,
    pub cluster: ClusterMetrics,
    /// (node, monitored state) pairs: what a change notification is about.
    pub(crate) states: Vec<(String, String)>,
}
