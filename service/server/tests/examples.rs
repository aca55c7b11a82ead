//! The descriptors users start from: every one directly in `examples/` passes Initialize
//! (validate-only) on the default local site and on the simulated site; every one in
//! `examples/planned/` is refused with the fault `examples/planned/FAULTS` names.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use actix_web::web;
use common::ops::{API, CDL};
use common::*;
use vcds_server::{AppState, Config};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// The `.cdl` files of `dir`, by name.
fn descriptors(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            (path.extension()? == "cdl").then(|| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let text = std::fs::read_to_string(&path).unwrap();
                (name, text)
            })
        })
        .collect();
    out.sort();
    out
}

fn validate_only(cdl: &str) -> String {
    let body = cdl
        .strip_prefix("<?xml version=\"1.0\"?>")
        .unwrap_or(cdl)
        .trim_start();
    format!(
        "<api:initializeRequest xmlns:api=\"{API}\"><api:descriptor api:language=\"{CDL}\"><api:body>{body}</api:body></api:descriptor><api:options><api:option api:name=\"{}\"/></api:options></api:initializeRequest>",
        vcds_api::cddlm::VALIDATE_ONLY
    )
}

/// The two sites a user deploys on by default: this machine's P-nodes and the simulated ones.
fn sites(dir: &tempfile::TempDir) -> Vec<(&'static str, Config)> {
    let db = |n: &str| format!("sqlite://{}", dir.path().join(n).display());
    let local = Config::new("127.0.0.1:0", db("local.db"));
    let mut sim = Config::new("127.0.0.1:0", db("sim.db"));
    sim.pnodes = vcds_manager::pnodes::simulated_pnodes(100);
    vec![("local", local), ("sim", sim)]
}

#[actix_web::test]
async fn examples_deploy_and_planned_ones_are_refused_as_stated() {
    let dir = tempfile::tempdir().unwrap();
    let ready = descriptors(&examples());
    let planned = descriptors(&examples().join("planned"));
    assert!(!ready.is_empty() && !planned.is_empty());
    let faults = std::fs::read_to_string(examples().join("planned/FAULTS")).unwrap();
    let expected: Vec<Vec<&str>> = faults
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').collect())
        .collect();
    for (site, config) in sites(&dir) {
        let state = web::Data::new(AppState::open(&config).unwrap());
        let app = app!(state);
        for (name, text) in &ready {
            let id = create(&app).await;
            let r = call(
                &app,
                "System",
                vcds_api::cddlm::INITIALIZE,
                Some(&id),
                &validate_only(text),
            )
            .await;
            assert_eq!(r.status, 200, "{name} on the {site} site: {}", r.text);
        }
        for (name, text) in &planned {
            let [_, code, words] = expected
                .iter()
                .find(|e| e.first() == Some(&name.as_str()))
                .unwrap_or_else(|| panic!("examples/planned/FAULTS names no fault for {name}"))[..]
            else {
                panic!("a FAULTS line is: descriptor, code, words (tab-separated)");
            };
            let id = create(&app).await;
            let r = call(
                &app,
                "System",
                vcds_api::cddlm::INITIALIZE,
                Some(&id),
                &validate_only(text),
            )
            .await;
            assert_eq!(
                r.text_of("ErrorCode").as_deref(),
                Some(code),
                "{name} on the {site} site: {}",
                r.text
            );
            assert!(
                r.text.contains(words),
                "{name} on the {site} site: {}",
                r.text
            );
        }
    }
}
