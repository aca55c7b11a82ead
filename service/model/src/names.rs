//! Names of a cluster's nodes outside the cluster.

/// The name node `node` of System `system_id` is known by to the kickstart CGI and the P-node
/// agents (its VM): unique across clusters, which all have a `frontend` and a `compute-0-0`,
/// so a host or VM always says whose it is.
pub fn host_name(node: &str, system_id: &str) -> String {
    format!("{node}.{system_id}")
}

/// The System a host or VM named by [`host_name`] belongs to.
pub fn system_of_host(name: &str) -> Option<&str> {
    name.split_once('.').map(|(_, system)| system)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_say_whose_they_are() {
        let name = host_name("compute-0-1", "3f6c2a9e-1b7d-4c55-9d1e-0a2b3c4d5e6f");
        assert_eq!(name, "compute-0-1.3f6c2a9e-1b7d-4c55-9d1e-0a2b3c4d5e6f");
        assert_eq!(
            system_of_host(&name),
            Some("3f6c2a9e-1b7d-4c55-9d1e-0a2b3c4d5e6f")
        );
        assert_eq!(system_of_host("stray"), None);
    }
}
