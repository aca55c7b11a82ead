//! The same behaviour on both backends: SQLite always, PostgreSQL when it answers on
//! 127.0.0.1:5432 (CI sets VCDS_REQUIRE_POSTGRES=1 so a missing server fails instead of skipping).

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use vcds_store::testing::PgDatabase;
use vcds_store::{ResourceRow, Store};

fn row(id: &str, created: i64, termination: Option<i64>) -> ResourceRow {
    ResourceRow {
        id: id.to_string(),
        kind: "system".to_string(),
        owner: "alice".to_string(),
        created_ms: created,
        termination_ms: termination,
        state: format!("{{\"n\":\"{id}\"}}"),
    }
}

fn exercise(store: &Store) {
    assert!(store.load_all().unwrap().is_empty());
    store.put(&row("b", 2, None)).unwrap();
    store.put(&row("a", 1, Some(99))).unwrap();
    let all = store.load_all().unwrap();
    assert_eq!(
        all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["a", "b"],
        "creation order"
    );
    // Upsert replaces, including a termination time going back to none.
    let mut a = row("a", 1, None);
    a.state = "{}".to_string();
    store.put(&a).unwrap();
    assert_eq!(store.get("a").unwrap(), Some(a));
    assert_eq!(
        store.delete(&["a".to_string(), "zz".to_string()]).unwrap(),
        1
    );
    assert_eq!(store.get("a").unwrap(), None);
    assert_eq!(store.load_all().unwrap().len(), 1);
}

#[test]
fn sqlite_round_trip_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("vcds.db").display());
    exercise(&Store::open(&url).unwrap());
    // Reopening applies no migration twice and sees the data.
    let again = Store::open(&url).unwrap();
    assert_eq!(again.load_all().unwrap()[0].id, "b");
}

#[test]
fn sqlite_concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("c.db").display().to_string()).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let s = store.clone();
            std::thread::spawn(move || {
                (0..50).for_each(|i| s.put(&row(&format!("{t}-{i}"), i, None)).unwrap())
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(store.load_all().unwrap().len(), 400);
}

#[test]
fn bad_urls_are_refused() {
    assert!(matches!(
        Store::open("mysql://x"),
        Err(vcds_store::StoreError::BadUrl(_))
    ));
    assert!(matches!(
        Store::open(""),
        Err(vcds_store::StoreError::BadUrl(_))
    ));
}

#[test]
fn postgres_round_trip_and_concurrency() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    let store = Store::open(&db.url()).unwrap();
    assert_eq!(store.backend(), "postgres");
    exercise(&store);
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let s = store.clone();
            std::thread::spawn(move || {
                (0..25).for_each(|i| s.put(&row(&format!("{t}-{i}"), i, None)).unwrap())
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(store.load_all().unwrap().len(), 201);
    drop(store);
}
