//! Initialize refuses what the site cannot install, before anything is reserved: an appliance no
//! enabled roll defines, a roll the catalog lacks, a package no package source holds (named with
//! the roll that asked for it).

#![allow(clippy::unwrap_used)]

mod common;

use actix_web::web;
use common::ops::{initialize_inline, small_cluster};
use common::*;
use vcds_server::{AppState, Config};

fn config(dir: &tempfile::TempDir) -> Config {
    Config::new(
        "127.0.0.1:0",
        format!("sqlite://{}", dir.path().join("vcds.db").display()),
    )
}

/// The small cluster with `extra` CDL inside its system component.
fn small_with(extra: &str) -> String {
    small_cluster().replace(
        "<vc:name>small</vc:name>",
        &format!("<vc:name>small</vc:name>{extra}"),
    )
}

async fn reservations(app: &impl Svc) -> String {
    let req = actix_web::test::TestRequest::get().uri("/admin/reservations");
    admin(app, req).await.text
}

#[actix_web::test]
async fn what_the_site_cannot_install_is_refused_and_nothing_is_reserved() {
    let dir = tempfile::tempdir().unwrap();
    if std::fs::read_dir(vcds_server::APT_LISTS).is_err() {
        skip("no apt lists: package availability is not known");
        return;
    }
    // The provider maps the compute roll's MPI to a package Debian does not have.
    let maps = dir.path().join("maps");
    std::fs::create_dir(&maps).unwrap();
    std::fs::write(
        maps.join("vcds-compute.packages"),
        "openmpi no-such-mpi-vcds\n",
    )
    .unwrap();
    let mut cfg = config(&dir);
    cfg.package_maps = Some(maps);
    let state = web::Data::new(AppState::open(&cfg).unwrap());
    let app = app!(state);
    let empty = reservations(&app).await;

    let id = create(&app).await;
    let r = call(
        &app,
        "System",
        vcds_api::cddlm::INITIALIZE,
        Some(&id),
        &initialize_inline(&small_cluster()),
    )
    .await;
    assert_eq!(
        r.text_of("ErrorCode").as_deref(),
        Some("unavailable-package"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("no-such-mpi-vcds") && r.text.contains("vcds-compute"),
        "{}",
        r.text
    );

    let appliance = small_with("<vc:compute><vc:appliance>nas</vc:appliance></vc:compute>");
    let r = call(
        &app,
        "System",
        vcds_api::cddlm::INITIALIZE,
        Some(&id),
        &initialize_inline(&appliance),
    )
    .await;
    assert_eq!(
        r.text_of("ErrorCode").as_deref(),
        Some("bad-argument"),
        "{}",
        r.text
    );
    assert!(r.text.contains("appliance &quot;nas&quot;"), "{}", r.text);

    let roll = small_with("<vc:rolls><vc:roll name=\"sge\" version=\"7.0\"/></vc:rolls>");
    let r = call(
        &app,
        "System",
        vcds_api::cddlm::INITIALIZE,
        Some(&id),
        &initialize_inline(&roll),
    )
    .await;
    assert_eq!(
        r.text_of("ErrorCode").as_deref(),
        Some("bad-argument"),
        "{}",
        r.text
    );
    assert!(r.text.contains("roll &quot;sge&quot;"), "{}", r.text);

    assert_eq!(
        reservations(&app).await,
        empty,
        "a refused Initialize reserved something"
    );

    // Without the provider's bad mapping the same cluster is installable, from the built-in
    // rolls alone, and the rolls it names are enabled for it.
    let dir2 = tempfile::tempdir().unwrap();
    let state = web::Data::new(AppState::open(&config(&dir2)).unwrap());
    let app = app!(state);
    let id = create(&app).await;
    let named = small_with(
        "<vc:rolls><vc:roll name=\"vcds-base\" version=\"1\"/><vc:roll name=\"vcds-compute\" version=\"1\"/></vc:rolls>",
    );
    let r = call(
        &app,
        "System",
        vcds_api::cddlm::INITIALIZE,
        Some(&id),
        &initialize_inline(&named),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}
