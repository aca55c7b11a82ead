//! The roll catalog and hosts behave the same on both backends (PostgreSQL when it answers;
//! CI sets VCDS_REQUIRE_POSTGRES=1).

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use vcds_store::testing::PgDatabase;
use vcds_store::{HostRow, RollFileRow, RollRow, Store};

fn roll(name: &str, version: &str) -> RollRow {
    RollRow {
        name: name.to_string(),
        version: version.to_string(),
        arch: "x86_64".to_string(),
        added_ms: 1_700_000_000_000,
    }
}

fn file(roll: &str, path: &str, body: &str) -> RollFileRow {
    RollFileRow {
        roll: roll.to_string(),
        path: path.to_string(),
        body: body.to_string(),
    }
}

fn host(name: &str, mac: &str, ip: &str) -> HostRow {
    HostRow {
        name: name.to_string(),
        mac: Some(mac.to_string()),
        ip: Some(ip.to_string()),
        cluster: "sys-1".to_string(),
        appliance: "compute".to_string(),
        attributes: "{\"vcds_console\":\"serial\"}".to_string(),
        created_ms: 5,
        install_state: None,
        install_ms: None,
        install_message: None,
    }
}

fn exercise(store: &Store) {
    assert!(store.load_rolls().unwrap().is_empty());
    let base = [
        file("base", "version.mk", "ROLLNAME = base\n"),
        file("base", "nodes/a.xml", "<kickstart/>"),
    ];
    store.put_roll(&roll("base", "7.0"), &base).unwrap();
    // Many files: more rows than one INSERT carries.
    let many: Vec<_> = (0..1200)
        .map(|i| file("big", &format!("nodes/n{i:04}.xml"), "<kickstart/>"))
        .collect();
    store.put_roll(&roll("big", "1"), &many).unwrap();
    let loaded = store.load_rolls().unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(loaded[0].0, roll("base", "7.0"));
    assert_eq!(
        loaded[0]
            .1
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>(),
        ["nodes/a.xml", "version.mk"]
    );
    assert_eq!(loaded[1].1.len(), 1200);

    // Replacing a roll replaces all its files.
    store
        .put_roll(&roll("base", "7.1"), &[file("base", "nodes/b.xml", "<x/>")])
        .unwrap();
    let loaded = store.load_rolls().unwrap();
    assert_eq!(loaded[0].0.version, "7.1");
    assert_eq!(loaded[0].1, [file("base", "nodes/b.xml", "<x/>")]);

    // Rolls enabled per cluster; an unknown roll is refused (foreign key).
    store
        .set_cluster_rolls("sys-1", &["base".to_string(), "big".to_string()])
        .unwrap();
    store
        .set_cluster_rolls("sys-2", &["base".to_string()])
        .unwrap();
    store.set_cluster_rolls("sys-2", &[]).unwrap();
    assert!(store
        .set_cluster_rolls("sys-3", &["nope".to_string()])
        .is_err());
    assert_eq!(
        store.load_cluster_rolls().unwrap(),
        [
            ("sys-1".to_string(), "base".to_string()),
            ("sys-1".to_string(), "big".to_string())
        ]
    );
    store
        .set_cluster_rolls("sys-1", &["base".to_string()])
        .unwrap();
    assert!(store.delete_roll("big").unwrap());
    assert!(!store.delete_roll("big").unwrap());
    assert_eq!(store.load_rolls().unwrap().len(), 1);

    // Hosts: register, re-register (upsert), progress, delete.
    store
        .put_host(&host("c-1", "52:54:00:00:00:01", "10.1.0.11"))
        .unwrap();
    store
        .put_host(&host("c-0", "52:54:00:00:00:02", "10.1.0.10"))
        .unwrap();
    let mut moved = host("c-1", "52:54:00:00:00:01", "10.1.0.21");
    moved.mac = None;
    store.put_host(&moved).unwrap();
    assert!(store
        .set_install_state("c-1", "failed", 42, Some("no disk"))
        .unwrap());
    assert!(!store
        .set_install_state("nobody", "started", 1, None)
        .unwrap());
    let hosts = store.load_hosts().unwrap();
    assert_eq!(hosts.len(), 2);
    assert_eq!(hosts[0].name, "c-0");
    let c1 = &hosts[1];
    assert_eq!(
        (c1.mac.as_deref(), c1.ip.as_deref()),
        (None, Some("10.1.0.21"))
    );
    assert_eq!(
        (
            c1.install_state.as_deref(),
            c1.install_ms,
            c1.install_message.as_deref()
        ),
        (Some("failed"), Some(42), Some("no disk"))
    );
    // A MAC belongs to one host only.
    assert!(store
        .put_host(&host("c-9", "52:54:00:00:00:02", "10.1.0.99"))
        .is_err());
    assert!(store.delete_host("c-0").unwrap());
    assert!(!store.delete_host("c-0").unwrap());
    assert_eq!(store.load_hosts().unwrap().len(), 1);
}

#[test]
fn sqlite_catalog_and_hosts_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("vcds.db").display());
    exercise(&Store::open(&url).unwrap());
    let again = Store::open(&url).unwrap();
    assert_eq!(again.load_rolls().unwrap()[0].0.name, "base");
    assert_eq!(again.load_hosts().unwrap()[0].name, "c-1");
}

#[test]
fn postgres_catalog_and_hosts() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    let store = Store::open(&db.url()).unwrap();
    exercise(&store);
    drop(store);
}
