//! Secure mode end to end: the real server with mutual TLS on 127.0.0.1, certificates and proxy
//! certificates from scripts/make-test-ca.sh, real openssl clients. Who gets in, as whom; what
//! each user sees and may touch (the authorization matrix); admins; the audit log. Certificates
//! refused at the handshake are cases of the hostile corpus (tests/hostile.rs).

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;
use common::ops::{self, Op};
use common::secure::{call_as, create_as, file, http_request, https, post_as, Secure, ALICE};
use common::*;

use std::net::SocketAddr;
use std::time::Duration;

use openssl::ssl::SslVersion;

/// Runs blocking client code off the test's runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    actix_rt::task::spawn_blocking(f).await.unwrap()
}

fn ping() -> Op {
    ops::system_ops("http://127.0.0.1:9/")
        .into_iter()
        .find(|o| o.name == "Ping")
        .unwrap()
}

/// The EPR ids in the Portal's api:ActiveSystems as `credential` sees it.
fn active_systems(addr: SocketAddr, credential: &str) -> Vec<String> {
    let op = Op {
        name: "GetResourceProperty",
        endpoint: "Portal",
        action: vcds_wsrf::actions::GET_RP.to_string(),
        body: format!("<rp:GetResourceProperty xmlns:rp=\"{RP}\" xmlns:api=\"{}\">api:ActiveSystems</rp:GetResourceProperty>", ops::API),
    };
    let reply = call_as(addr, credential, &op, None).ok();
    let doc = reply.doc();
    let mut ids: Vec<String> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "ResourceId")
        .filter_map(|n| n.text().map(str::to_string))
        .collect();
    ids.sort();
    ids
}

/// A fault's parts that must not tell a foreign resource from a missing one: HTTP status, fault
/// element, SOAP fault string and ErrorCode, with the resource id replaced.
fn fault_shape(reply: &Reply, id: &str) -> (u16, String, Option<String>, Option<String>) {
    (
        reply.status,
        reply.fault_detail(),
        reply.text_of("faultstring").map(|s| s.replace(id, "ID")),
        reply.text_of("ErrorCode"),
    )
}

#[actix_rt::test]
async fn certificates_and_proxies_map_to_their_end_entity() {
    let server = Secure::start(|_| {}).await;
    let addr = server.addr;
    let (system, results) = blocking(move || {
        let system = create_as(addr, "alice.pem");
        // Every proxy of alice's is alice: her System answers them.
        let results: Vec<(&str, u16, Option<String>)> = [
            "alice.pem",
            "alice-proxy.pem",
            "alice-proxy2.pem",
            "alice-pathlen0.pem",
            "alice-limited.pem",
            "admin.pem",
            "bob.pem",
        ]
        .into_iter()
        .map(|who| {
            let r = call_as(addr, who, &ping(), Some(&system));
            let fault = (r.status != 200).then(|| r.fault_detail());
            (who, r.status, fault)
        })
        .collect();
        (system, results)
    })
    .await;
    for (who, status, fault) in results {
        match who {
            "bob.pem" => assert_eq!(fault.as_deref(), Some("ResourceUnknownFault"), "{who}"),
            _ => assert_eq!(status, 200, "{who}: {fault:?}"),
        }
    }
    let records = server.audit_records();
    let create = records
        .iter()
        .find(|r| r["action"] == "Create")
        .expect("Create audited");
    assert_eq!(create["dn"], ALICE);
    assert_eq!(create["account"], "alice");
    assert_eq!(create["resource"], "portal");
    assert_eq!(create["created"], system.as_str());
    assert_eq!(create["result"], "ok");
    assert!(create["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    // Reads are not audited.
    assert!(records.iter().all(|r| r["action"] != "Ping"), "{records:?}");
    assert_eq!(
        server.state.manager.registry().get(&system).unwrap().owner,
        "alice",
        "the System belongs to the end-entity's account"
    );
    server.handle.stop(true).await;
}

#[actix_rt::test]
async fn unmapped_callers_get_access_denied_and_nothing_else() {
    let server = Secure::start(|_| {}).await;
    let addr = server.addr;
    let before = server.snapshot();
    let replies = blocking(move || {
        let create = envelope(S11, vcds_api::ops::CREATE, None, &ops::create_body());
        let create12 = envelope(S12, vcds_api::ops::CREATE, None, &ops::create_body());
        let soap11 = post_as(addr, "mallory.pem", "Portal", &create).unwrap();
        let soap12 = https(
            addr,
            Some("mallory.pem"),
            SslVersion::TLS1_3,
            &http_request(
                "POST",
                "/wsrf/services/System",
                &[("Content-Type", "application/soap+xml; charset=utf-8")],
                create12.as_bytes(),
            ),
        )
        .unwrap();
        let wsdl = https(
            addr,
            Some("mallory.pem"),
            SslVersion::TLS1_3,
            &http_request("GET", "/wsrf/services/Portal?wsdl", &[], b""),
        )
        .unwrap();
        let admin = https(
            addr,
            Some("mallory.pem"),
            SslVersion::TLS1_3,
            &http_request("GET", "/admin/rolls", &[], b""),
        )
        .unwrap();
        // Mallory's body is never read: even garbage gets the same answer.
        let garbage = post_as(addr, "mallory.pem", "Portal", "<<<not xml").unwrap();
        (soap11, soap12, wsdl, admin, garbage)
    })
    .await;
    let (soap11, soap12, wsdl, admin, garbage) = replies;
    assert_eq!(
        soap11.fault_detail(),
        "AccessDeniedFault",
        "{}",
        soap11.text
    );
    assert_eq!(
        soap11.text_of("faultstring").as_deref(),
        Some("access denied")
    );
    assert_eq!(
        soap11.text_of("ErrorCode").as_deref(),
        Some("access-denied")
    );
    assert_eq!(soap11.text_of("faultcode").as_deref(), Some("s:Client"));
    assert_eq!(soap12.status, 400, "{}", soap12.text);
    assert!(soap12.text.contains("AccessDeniedFault"), "{}", soap12.text);
    assert!(soap12.text.contains(S12), "{}", soap12.text);
    assert_eq!(
        garbage.text_of("ErrorCode").as_deref(),
        Some("access-denied")
    );
    for reply in [&wsdl, &admin] {
        assert_eq!(
            (reply.status, reply.text.as_str()),
            (403, "access denied\n")
        );
    }
    // Nothing about the service: no portal status, no resource, no version, no site.
    for reply in [&soap11, &soap12, &garbage] {
        for secret in [
            "vcds, the Virtual",
            "ActiveSystems",
            env!("CARGO_PKG_VERSION"),
        ] {
            assert!(!reply.text.contains(secret), "{secret}: {}", reply.text);
        }
    }
    assert_eq!(server.snapshot(), before, "nothing stored");
    let denials: Vec<_> = server
        .audit_records()
        .into_iter()
        .filter(|r| r["code"] == "AccessDenied")
        .collect();
    assert_eq!(denials.len(), 5, "{denials:?}");
    assert!(denials
        .iter()
        .all(|r| r["dn"] == "/C=US/O=Grid/OU=vcds-test/CN=Mallory" && r["account"].is_null()));
    server.handle.stop(true).await;
}

/// Users × every operation × the other user's resources: each answer is exactly the answer for
/// an id that does not exist, and nothing changes. Admins may do all of it.
#[actix_rt::test]
async fn authorization_matrix() {
    let server = Secure::start(|_| {}).await;
    let addr = server.addr;
    let (consumer, _notes) = consumer();
    let setup = {
        let consumer = consumer.clone();
        blocking(move || {
            let mut owned = Vec::new();
            for who in ["alice.pem", "bob.pem"] {
                let system = create_as(addr, who);
                // Initialized, so that every System operation has something to work on.
                let init = ops::system_ops(&consumer)
                    .into_iter()
                    .find(|o| o.name == "Initialize")
                    .unwrap();
                call_as(addr, who, &init, Some(&system)).ok();
                let subscribe = ops::system_ops(&consumer)
                    .into_iter()
                    .find(|o| o.name == "Subscribe")
                    .unwrap();
                let subscription = call_as(addr, who, &subscribe, Some(&system))
                    .ok()
                    .text_of("ResourceId")
                    .unwrap();
                owned.push((who, system, subscription));
            }
            owned
        })
        .await
    };
    let before = server.snapshot();
    let alice_id = setup[0].1.clone();
    let bob_id = setup[1].1.clone();
    assert_eq!(
        server
            .state
            .manager
            .registry()
            .get(&setup[0].2)
            .unwrap()
            .owner,
        "alice"
    );
    assert_eq!(
        server
            .state
            .manager
            .registry()
            .get(&setup[1].2)
            .unwrap()
            .owner,
        "bob"
    );

    let checked = {
        let consumer = consumer.clone();
        let setup = setup.clone();
        blocking(move || {
            let mut checked = 0;
            // Each user against the other's System and subscription, on every operation; the
            // same operation on a made-up id gives the reference answer.
            for (attacker, victim) in [(&setup[1], &setup[0]), (&setup[0], &setup[1])] {
                let who = attacker.0;
                let mut cases: Vec<(Op, String)> = Vec::new();
                for op in ops::system_ops(&consumer) {
                    cases.push((op, victim.1.clone()));
                }
                for op in ops::subscription_ops() {
                    cases.push((op, victim.2.clone()));
                }
                cases.push((ops::lookup_system(&victim.1), victim.1.clone()));
                for (op, id) in cases {
                    let resource = (op.endpoint != "Portal").then_some(id.as_str());
                    let foreign = call_as(addr, who, &op, resource);
                    let missing_id = "00000000-0000-4000-8000-000000000000";
                    let missing_op = if op.name == "LookupSystem" {
                        ops::lookup_system(missing_id)
                    } else {
                        op.clone()
                    };
                    let missing = call_as(
                        addr,
                        who,
                        &missing_op,
                        (op.endpoint != "Portal").then_some(missing_id),
                    );
                    assert_eq!(
                        foreign.fault_detail(),
                        "ResourceUnknownFault",
                        "{who} {} {}: {}",
                        op.endpoint,
                        op.name,
                        foreign.text
                    );
                    assert_eq!(
                        fault_shape(&foreign, &id),
                        fault_shape(&missing, missing_id),
                        "{who} {} {}",
                        op.endpoint,
                        op.name
                    );
                    assert!(!foreign.text.contains("alice") && !foreign.text.contains("bob"));
                    checked += 1;
                }
            }
            checked
        })
        .await
    };
    assert_eq!(checked, 2 * (16 + 7 + 1));
    assert_eq!(
        server.snapshot(),
        before,
        "a denied request changed something"
    );

    // Each sees only their own System; the admin sees both.
    let views = {
        blocking(move || {
            (
                active_systems(addr, "alice.pem"),
                active_systems(addr, "bob.pem"),
                active_systems(addr, "admin.pem"),
            )
        })
        .await
    };
    assert_eq!(views.0, vec![alice_id.clone()]);
    assert_eq!(views.1, vec![bob_id.clone()]);
    let mut both = vec![alice_id.clone(), bob_id.clone()];
    both.sort();
    assert_eq!(views.2, both);

    // Denied attempts at changes are in the audit log with the fault they got.
    let records = server.audit_records();
    let denied_destroy = records.iter().find(|r| {
        r["action"] == "Destroy" && r["account"] == "bob" && r["resource"] == alice_id.as_str()
    });
    assert_eq!(
        denied_destroy.map(|r| r["code"].clone()),
        Some(serde_json::json!("ResourceUnknownFault")),
        "{records:?}"
    );

    // The admin may act on alice's resources: each operation gets past authorization.
    let admin_results = {
        let consumer = consumer.clone();
        let (system, subscription) = (setup[0].1.clone(), setup[0].2.clone());
        blocking(move || {
            let mut results = Vec::new();
            for op in ops::subscription_ops()
                .into_iter()
                .filter(|o| o.name != "Unsubscribe" && o.name != "Destroy")
            {
                results.push((
                    op.name,
                    call_as(addr, "admin.pem", &op, Some(&subscription)),
                ));
            }
            results.push((
                "LookupSystem",
                call_as(addr, "admin.pem", &ops::lookup_system(&system), None),
            ));
            for op in ops::system_ops(&consumer) {
                results.push((op.name, call_as(addr, "admin.pem", &op, Some(&system))));
            }
            results
        })
        .await
    };
    for (name, reply) in &admin_results {
        let unknown = reply.status != 200 && reply.fault_detail() == "ResourceUnknownFault";
        assert!(!unknown, "admin {name}: {}", reply.text);
        // Lifecycle faults (Initialize twice, Suspend while not ready) are fine: they are past
        // authorization.
        if reply.status != 200 {
            assert_eq!(
                reply.fault_detail(),
                "LifecycleFault",
                "admin {name}: {}",
                reply.text
            );
        }
    }
    assert!(
        server.state.manager.registry().get(&alice_id).is_none(),
        "the admin destroyed it"
    );
    let admin_destroy = server
        .audit_records()
        .into_iter()
        .find(|r| r["action"] == "Destroy" && r["account"] == "vcdsadmin");
    assert_eq!(
        admin_destroy.map(|r| r["result"].clone()),
        Some(serde_json::json!("ok"))
    );
    server.handle.stop(true).await;
}

/// `api:ActiveSystems` notifications follow the subscriber's scope: a user hears of their own
/// Systems only, an admin of all.
#[actix_rt::test]
async fn active_systems_notifications_follow_the_subscriber() {
    let server = Secure::start(|_| {}).await;
    let addr = server.addr;
    let (alice_consumer, alice_notes) = consumer();
    let (admin_consumer, admin_notes) = consumer();
    let (bob_system, alice_system) = blocking(move || {
        let subscribe = |who: &str, consumer: &str| {
            let op = Op {
                name: "Subscribe",
                endpoint: "Portal",
                action: vcds_wsrf::actions::SUBSCRIBE.to_string(),
                body: ops::subscribe_body(consumer, Some("api:ActiveSystems")),
            };
            call_as(addr, who, &op, None).ok();
        };
        subscribe("alice.pem", &alice_consumer);
        subscribe("admin.pem", &admin_consumer);
        let bob_system = create_as(addr, "bob.pem");
        let alice_system = create_as(addr, "alice.pem");
        (bob_system, alice_system)
    })
    .await;
    let wait = Duration::from_secs(10);
    // Alice's first notification is about her own System: bob's creation did not reach her.
    let first = alice_notes.recv_timeout(wait).unwrap();
    assert!(first.contains(&alice_system), "{first}");
    assert!(!first.contains(&bob_system), "{first}");
    let admin_first = admin_notes.recv_timeout(wait).unwrap();
    assert!(admin_first.contains(&bob_system), "{admin_first}");
    let admin_second = admin_notes.recv_timeout(wait).unwrap();
    assert!(admin_second.contains(&alice_system) && admin_second.contains(&bob_system));
    assert!(alice_notes
        .recv_timeout(Duration::from_millis(500))
        .is_err());
    server.handle.stop(true).await;
}

#[actix_rt::test]
async fn admin_routes_need_the_admin_role() {
    let server = Secure::start(|_| {}).await;
    let addr = server.addr;
    let (alice, admin, admin_post) = blocking(move || {
        let get = http_request("GET", "/admin/rolls", &[], b"");
        let alice = https(addr, Some("alice.pem"), SslVersion::TLS1_3, &get).unwrap();
        let admin = https(addr, Some("admin.pem"), SslVersion::TLS1_3, &get).unwrap();
        let post = http_request(
            "POST",
            "/admin/hosts",
            &[("Content-Type", "application/json")],
            b"{\"not\": \"a host\"}",
        );
        let admin_post = https(addr, Some("admin.pem"), SslVersion::TLS1_3, &post).unwrap();
        (alice, admin, admin_post)
    })
    .await;
    assert_eq!(alice.status, 403, "{}", alice.text);
    assert_eq!(admin.status, 200, "{}", admin.text);
    assert!(admin.text.contains("\"rolls\""), "{}", admin.text);
    assert_eq!(admin_post.status, 400, "{}", admin_post.text);
    let records = server.audit_records();
    assert!(records.iter().any(|r| r["action"] == "GET /admin/rolls"
        && r["account"] == "alice"
        && r["code"] == "AccessDenied"));
    assert!(records.iter().any(|r| r["action"] == "POST /admin/hosts"
        && r["account"] == "vcdsadmin"
        && r["code"] == "HTTP 400"));
    // Reads by the admin are not audited.
    assert!(!records
        .iter()
        .any(|r| r["action"] == "GET /admin/rolls" && r["account"] == "vcdsadmin"));
    server.handle.stop(true).await;
}

/// Plain HTTP needs loopback, or an explicit flag.
#[actix_rt::test]
async fn plain_http_refuses_other_addresses_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let config = |listen: &str, insecure: bool| {
        let mut c = vcds_server::Config::new(
            listen,
            format!("sqlite://{}", dir.path().join("vcds.db").display()),
        );
        c.security.insecure_listen_any = insecure;
        c
    };
    match vcds_server::start(config("0.0.0.0:0", false)).await {
        Err(vcds_server::StartError::Security(e)) => {
            assert!(e.to_string().contains("--insecure-listen-any"), "{e}")
        }
        Err(e) => panic!("wrong refusal: {e}"),
        Ok(_) => panic!("plain HTTP on 0.0.0.0 was accepted"),
    }
    // Secure mode's files are checked at start, with the path in the message.
    let mut bad = config("127.0.0.1:0", false);
    bad.security.tls = Some(vcds_api::security::TlsFiles {
        cert: file("server.pem"),
        key: file("server.key"),
        trust_roots: file("trust"),
        grid_mapfile: dir.path().join("missing-grid-mapfile"),
        admins: None,
    });
    let e = vcds_server::start(bad)
        .await
        .err()
        .expect("a missing grid-mapfile");
    assert!(e.to_string().contains("missing-grid-mapfile"), "{e}");
}
