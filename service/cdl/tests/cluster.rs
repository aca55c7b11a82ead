//! The vcds cluster descriptor: the shipped examples resolve to the expected specs, and bad
//! descriptors fail naming the field and the reason.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use chrono::{DateTime, Utc};
use vcds_cdl::cluster::{
    cluster_spec_at, ClusterSpec, End, EndAction, Forward, IsoDuration, Isolation, Protocol,
    Scheduler, SpecError, Start, StorageKind, Subnet,
};
use vcds_cdl::{resolve, resolve_path, DocId, MemoryResolver, ResolvedDocument};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T18:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn example(name: &str) -> ResolvedDocument {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    // What vcds does not provision yet lives in examples/planned/.
    let path = [examples.join(name), examples.join("planned").join(name)]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no example {name}"));
    let text = std::fs::read_to_string(&path).unwrap();
    resolve(&text, &DocId::new(name), &MemoryResolver::new())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn spec_of(name: &str) -> ClusterSpec {
    cluster_spec_at(&example(name), now()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn small_cluster_is_the_defaults_plus_a_week() {
    let s = spec_of("small-cluster.cdl");
    assert_eq!(s.name, "small");
    assert_eq!(
        (
            s.frontend.appliance.as_str(),
            s.frontend.count,
            s.frontend.cpus,
            s.frontend.memory_mib
        ),
        ("frontend", 1, 2, 2048)
    );
    assert_eq!(
        (
            s.compute.appliance.as_str(),
            s.compute.count,
            s.compute.cpus,
            s.compute.memory_mib,
            s.compute.disk_gib
        ),
        ("compute", 2, 1, 1024, 20)
    );
    assert_eq!(
        (s.os.name.as_str(), s.os.version.as_str()),
        ("Rocks", "7.0")
    );
    assert_eq!(s.network.isolation, Isolation::Vxlan);
    assert_eq!(s.network.subnet, Subnet::PrefixLength(24));
    assert_eq!(s.reservation.start, Start::Now);
    assert_eq!(s.reservation.end, End::Duration("P7D".parse().unwrap()));
    let (from, to) = s.reservation.window(now()).unwrap();
    assert_eq!((to - from).num_days(), 7);
    assert_eq!(s.scheduler, Scheduler::None);
    assert_eq!(
        s.gateway.forwards,
        [Forward {
            protocol: Protocol::Tcp,
            port: 22,
            external: 2222
        }]
    );
    assert_eq!(s.lifetime.at_end, EndAction::Destroy);
    assert!(s.storage.is_none() && s.rolls.is_empty() && s.attributes.is_empty());
}

#[test]
fn sge_cluster_through_three_levels_of_extends() {
    let doc = example("sge-cluster.cdl");
    let sge = resolve_path(&doc, "/sge").unwrap();
    let lineage: Vec<&str> = sge.derived_from.iter().map(|q| q.local.as_str()).collect();
    assert_eq!(lineage, ["SgeCluster", "HpcCluster", "Cluster"]);
    let s = cluster_spec_at(&doc, now()).unwrap();
    assert_eq!(s.name, "sge32");
    assert_eq!(s.scheduler, Scheduler::Sge);
    assert_eq!(
        (
            s.compute.count,
            s.compute.cpus,
            s.compute.memory_mib,
            s.compute.disk_gib
        ),
        (32, 4, 8192, 100)
    );
    let rolls: Vec<&str> = s.rolls.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(rolls, ["base", "kernel", "os", "hpc", "sge"]);
    let attrs: Vec<(&str, &str)> = s
        .attributes
        .iter()
        .map(|a| (a.key.as_str(), a.value.as_str()))
        .collect();
    assert_eq!(
        attrs,
        [("Kickstart_Timezone", "UTC"), ("sge_slots_per_node", "4")]
    );
    assert_eq!(
        s.network.subnet,
        Subnet::Cidr {
            network: "10.40.0.0".parse().unwrap(),
            prefix: 26
        }
    );
    assert_eq!(s.reservation.end, End::Duration("P30D".parse().unwrap()));
    assert_eq!(s.lifetime.at_end, EndAction::Suspend);
    assert_eq!(s.lifetime.keep_for, "P7D".parse::<IsoDuration>().unwrap());
    assert_eq!(
        s.gateway.forwards[1],
        Forward {
            protocol: Protocol::Tcp,
            port: 443,
            external: 443
        }
    );
    assert_eq!(
        s.storage.map(|st| (st.size_gib, st.kind)),
        Some((500, StorageKind::Nfs))
    );
}

#[test]
fn slurm_cluster_booked_ahead() {
    let s = spec_of("slurm-scheduled.cdl");
    assert_eq!(s.scheduler, Scheduler::Slurm);
    assert_eq!(s.network.isolation, Isolation::Vlan);
    assert_eq!(s.frontend.memory_mib, 4096);
    assert_eq!((s.compute.count, s.compute.cpus), (8, 2));
    let (from, to) = s.reservation.window(now()).unwrap();
    assert_eq!(from.to_rfc3339(), "2027-01-01T08:00:00+00:00");
    assert_eq!((to - from).num_days(), 59);
    assert_eq!(s.storage.map(|st| st.kind), Some(StorageKind::Iscsi));
    // Slurm is provisioned; storage and SGE are read and checked but not built yet:
    // refused, the field named.
    let why = s.unprovisioned().unwrap();
    assert!(why.starts_with("vc:storage (200 GiB, iscsi): "), "{why}");
    let plain = ClusterSpec {
        storage: None,
        ..s.clone()
    };
    assert_eq!(plain.unprovisioned(), None);
    let sge = ClusterSpec {
        scheduler: Scheduler::Sge,
        ..plain
    };
    let why = sge.unprovisioned().unwrap();
    assert!(why.starts_with("vc:scheduler sge: "), "{why}");
}

#[test]
fn the_spec_round_trips_through_serde_and_renders_as_namespaced_xml() {
    let s = spec_of("sge-cluster.cdl");
    let json = serde_json::to_string(&s).unwrap();
    assert!(json.contains(r#""duration":"P30D""#), "{json}");
    let back: ClusterSpec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    let xml = s.to_xml();
    let parsed = vcds_xml::parse(&xml, &vcds_xml::Limits::default()).unwrap();
    let root = parsed.root_element();
    assert!(root.has_tag_name(("urn:vcds:2026:cdl", "cluster")));
    let count = root
        .descendants()
        .find(|n| n.has_tag_name(("urn:vcds:2026:cdl", "compute")))
        .and_then(|c| {
            c.children()
                .find(|n| n.has_tag_name(("urn:vcds:2026:cdl", "count")))
        })
        .and_then(|n| n.text());
    assert_eq!(count, Some("32"));

    // the resolved (not normalised) cluster element is available as XML too
    let doc = example("sge-cluster.cdl");
    let raw = doc.element_xml(resolve_path(&doc, "/sge").unwrap());
    let parsed = vcds_xml::parse(&raw, &vcds_xml::Limits::default()).unwrap();
    assert_eq!(parsed.root_element().tag_name().name(), "sge");
    assert!(raw.contains("<vc:scheduler>sge</vc:scheduler>"), "{raw}");
}

/// A descriptor extending vc:Cluster with `body` inside the cluster element.
fn spec(body: &str) -> Result<ClusterSpec, SpecError> {
    let text = format!(
        r#"<cdl:cdl xmlns:cdl="http://www.gridforum.org/namespaces/2005/02/cddlm/CDL-1.0" xmlns:vc="urn:vcds:2026:cdl">
        <cdl:import location="vcds:cluster"/>
        <cdl:system><c cdl:extends="vc:Cluster"><vc:name>c1</vc:name>{body}</c></cdl:system></cdl:cdl>"#
    );
    let doc = resolve(&text, &DocId::new("t.cdl"), &MemoryResolver::new())
        .unwrap_or_else(|e| panic!("{e}"));
    cluster_spec_at(&doc, now())
}

const WEEK: &str = "<vc:reservation><vc:duration>P7D</vc:duration></vc:reservation>";

fn fails(body: &str) -> SpecError {
    match spec(&format!("{WEEK}{body}")) {
        Ok(s) => panic!("expected an error, got {s:?}"),
        Err(e) => e,
    }
}

#[test]
fn node_counts_and_sizes_are_range_checked() {
    let e = fails("<vc:compute><vc:count>-3</vc:count></vc:compute>");
    assert_eq!(e.to_string(), "compute.count must be 0..=4096, got -3");
    let e = fails("<vc:compute><vc:count>4097</vc:count></vc:compute>");
    assert!(
        matches!(e, SpecError::OutOfRange { ref field, value: 4097, .. } if field == "compute.count"),
        "{e:?}"
    );
    let e = fails("<vc:frontend><vc:count>2</vc:count></vc:frontend>");
    assert!(
        matches!(e, SpecError::OutOfRange { ref field, .. } if field == "frontend.count"),
        "{e:?}"
    );
    let e = fails("<vc:compute><vc:memoryMiB>lots</vc:memoryMiB></vc:compute>");
    assert!(
        matches!(e, SpecError::Invalid { ref field, .. } if field == "compute.memoryMiB"),
        "{e:?}"
    );
    let e = fails("<vc:compute><vc:cpus>0</vc:cpus></vc:compute>");
    assert!(
        matches!(e, SpecError::OutOfRange { ref field, .. } if field == "compute.cpus"),
        "{e:?}"
    );
}

#[test]
fn reservations_are_checked() {
    let e = spec("").unwrap_err();
    assert!(
        matches!(e, SpecError::Missing { ref field } if field == "reservation.duration"),
        "{e:?}"
    );
    let e = spec("<vc:reservation><vc:start>2027-01-02T00:00:00Z</vc:start><vc:end>2027-01-01T00:00:00Z</vc:end></vc:reservation>").unwrap_err();
    assert!(matches!(e, SpecError::EndsBeforeStart { .. }), "{e:?}");
    assert!(e.to_string().starts_with("reservation ends ("), "{e}");
    let e = spec("<vc:reservation><vc:duration>P13M</vc:duration></vc:reservation>").unwrap_err();
    assert!(
        matches!(e, SpecError::Inconsistent { ref reason, .. } if reason.contains("one year")),
        "{e:?}"
    );
    let e = spec("<vc:reservation><vc:duration>PT30M</vc:duration></vc:reservation>").unwrap_err();
    assert!(
        matches!(e, SpecError::Inconsistent { ref reason, .. } if reason.contains("one hour")),
        "{e:?}"
    );
    let e =
        spec("<vc:reservation><vc:duration>30 days</vc:duration></vc:reservation>").unwrap_err();
    assert!(
        matches!(e, SpecError::Invalid { ref field, .. } if field == "reservation.duration"),
        "{e:?}"
    );
    let e = spec("<vc:reservation><vc:duration>P1D</vc:duration><vc:end>2027-01-01T00:00:00Z</vc:end></vc:reservation>").unwrap_err();
    assert!(
        matches!(e, SpecError::Inconsistent { ref reason, .. } if reason.contains("not both")),
        "{e:?}"
    );
    let e = spec("<vc:reservation><vc:start>2020-01-01T00:00:00Z</vc:start><vc:duration>P1D</vc:duration></vc:reservation>").unwrap_err();
    assert!(
        matches!(e, SpecError::Inconsistent { ref reason, .. } if reason.contains("past")),
        "{e:?}"
    );
    let e = spec("<vc:reservation><vc:start>tomorrow</vc:start><vc:duration>P1D</vc:duration></vc:reservation>").unwrap_err();
    assert!(
        matches!(e, SpecError::Invalid { ref field, .. } if field == "reservation.start"),
        "{e:?}"
    );
    assert!(spec("<vc:reservation><vc:duration>P1Y</vc:duration></vc:reservation>").is_ok());
}

#[test]
fn networks_are_checked() {
    let e = fails("<vc:network><vc:isolation>vpn</vc:isolation></vc:network>");
    assert_eq!(
        e.to_string(),
        r#"network.isolation must be one of vxlan, vlan, got "vpn""#
    );
    let e = fails("<vc:compute><vc:count>20</vc:count></vc:compute><vc:network><vc:subnet>28</vc:subnet></vc:network>");
    assert_eq!(
        e,
        SpecError::SubnetTooSmall {
            prefix: 28,
            hosts: 14,
            needed: 22
        }
    );
    let e = fails("<vc:network><vc:subnet>10.0.0.1/24</vc:subnet></vc:network>");
    assert!(
        matches!(e, SpecError::Invalid { ref expected, .. } if expected.contains("10.0.0.0/24")),
        "{e:?}"
    );
    let e = fails("<vc:network><vc:subnet>8.8.8.0/24</vc:subnet></vc:network>");
    assert!(
        matches!(e, SpecError::Invalid { ref expected, .. } if expected.contains("private")),
        "{e:?}"
    );
    let e = fails("<vc:network><vc:subnet>/31</vc:subnet></vc:network>");
    assert!(
        matches!(e, SpecError::OutOfRange { ref field, .. } if field == "network.subnet"),
        "{e:?}"
    );
    assert_eq!(
        spec(&format!(
            "{WEEK}<vc:network><vc:subnet>/25</vc:subnet></vc:network>"
        ))
        .unwrap()
        .network
        .subnet,
        Subnet::PrefixLength(25)
    );
}

#[test]
fn lists_names_and_keywords_are_checked() {
    let e = fails("<vc:scheduler>pbs</vc:scheduler>");
    assert!(
        matches!(e, SpecError::Invalid { ref field, .. } if field == "scheduler"),
        "{e:?}"
    );
    let e = fails(
        r#"<vc:gateway><vc:forward port="22"/><vc:forward port="2022" external="22"/></vc:gateway>"#,
    );
    assert!(
        matches!(e, SpecError::Inconsistent { ref field, .. } if field == "gateway.forward[2]"),
        "{e:?}"
    );
    let e = fails(r#"<vc:gateway><vc:forward port="70000"/></vc:gateway>"#);
    assert!(
        matches!(e, SpecError::OutOfRange { ref field, .. } if field == "gateway.forward[1]"),
        "{e:?}"
    );
    let e = fails(r#"<vc:rolls><vc:roll name="sge"/></vc:rolls>"#);
    assert!(
        matches!(e, SpecError::Missing { ref field } if field == "rolls.roll[1]@version"),
        "{e:?}"
    );
    let e = fails("<vc:storage><vc:sizeGiB>10</vc:sizeGiB><vc:kind>ceph</vc:kind></vc:storage>");
    assert!(
        matches!(e, SpecError::Invalid { ref field, .. } if field == "storage.kind"),
        "{e:?}"
    );
    let e = fails("<vc:storage><vc:kind>nfs</vc:kind></vc:storage>");
    assert!(
        matches!(e, SpecError::Missing { ref field } if field == "storage.sizeGiB"),
        "{e:?}"
    );
    let e = fails(r#"<x>sge</x><vc:scheduler cdl:ref="/x" cdl:lazy="true"/>"#);
    assert_eq!(
        e,
        SpecError::Lazy {
            field: "scheduler".into()
        }
    );
    let e = fails(
        r#"<vc:rolls><vc:roll name="sge" version="1"/><vc:roll name="sge" version="2"/></vc:rolls>"#,
    );
    assert!(
        matches!(e, SpecError::Inconsistent { ref field, .. } if field == "rolls.roll[2]"),
        "{e:?}"
    );
    let e = fails(
        r#"<vc:attributes><vc:attribute name="k">1</vc:attribute><vc:attribute name="k">2</vc:attribute></vc:attributes>"#,
    );
    assert!(
        matches!(e, SpecError::Inconsistent { ref field, .. } if field == "attributes.attribute[2]"),
        "{e:?}"
    );
    let e = fails("<vc:computes/>");
    assert!(
        matches!(e, SpecError::UnknownField { ref field } if field == "computes"),
        "{e:?}"
    );
    let e = fails("<vc:lifetime><vc:keepFor>P100D</vc:keepFor></vc:lifetime>");
    assert!(
        matches!(e, SpecError::Inconsistent { ref field, .. } if field == "lifetime.keepFor"),
        "{e:?}"
    );
    let e = spec(WEEK).map(|s| s.name);
    assert_eq!(e.as_deref(), Ok("c1"));
}

#[test]
fn the_cluster_name_must_be_a_dns_label_and_there_must_be_exactly_one_cluster() {
    let text = |system: &str| {
        format!(
            r#"<cdl:cdl xmlns:cdl="http://www.gridforum.org/namespaces/2005/02/cddlm/CDL-1.0" xmlns:vc="urn:vcds:2026:cdl">
            <cdl:import location="vcds:cluster"/><cdl:system>{system}</cdl:system></cdl:cdl>"#
        )
    };
    let run = |system: &str| {
        let doc = resolve(&text(system), &DocId::new("t.cdl"), &MemoryResolver::new()).unwrap();
        cluster_spec_at(&doc, now())
    };
    assert_eq!(run("<other/>"), Err(SpecError::NoCluster));
    let one = format!(r#"<a cdl:extends="vc:Cluster"><vc:name>a</vc:name>{WEEK}</a>"#);
    assert_eq!(
        run(&format!("{one}{one}")),
        Err(SpecError::SeveralClusters { count: 2 })
    );
    let bad = run(&format!(
        r#"<a cdl:extends="vc:Cluster"><vc:name>Bad_Name</vc:name>{WEEK}</a>"#
    ))
    .unwrap_err();
    assert!(
        matches!(bad, SpecError::Invalid { ref field, .. } if field == "name"),
        "{bad:?}"
    );
    let unnamed = run(&format!(r#"<a cdl:extends="vc:Cluster">{WEEK}</a>"#)).unwrap_err();
    assert_eq!(
        unnamed,
        SpecError::Missing {
            field: "name".into()
        }
    );
}
