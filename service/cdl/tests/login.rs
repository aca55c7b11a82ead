//! The descriptor's login (`vc:login`: the user and their OpenSSH public keys) and installer
//! (`vc:installer`): defaults, what is accepted and normalized, every refusal naming its field,
//! serde (also of specs stored before these fields existed) and the `vc:cluster` XML against
//! schemas/vcds-cluster.xsd.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use vcds_cdl::cluster::ssh::{KeyError, KeyType, PublicKey};
use vcds_cdl::cluster::{
    cluster_spec_at, ClusterSpec, Installer, Login, SpecError, MAX_AUTHORIZED_KEYS,
};
use vcds_cdl::{resolve, DocId, MemoryResolver};

// Made with `ssh-keygen -t ed25519 -C alice@laptop`, `-t rsa -b 2048 -C alice@desktop`,
// `-t ecdsa -b 256|384|521`; the fingerprints are `ssh-keygen -lf`'s.
const ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEJ9zIHvxZ+n2juKrrBwRThLECh7tY5UYJan8bBQo3wr alice@laptop";
const ED25519_FP: &str = "SHA256:/BjqzeYfBuZ07Dl6STGbVqWo6pfxMP4w8mbmUmAJij4";
const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCrahPgkrlPAHCJHFV6MqlYTR6YXJuTPuHIt27Y74NgeQ2w+JJtPVfe7J/WPUAubLkHFaLli57FxkoPB1gZ12ZCIPFHKkMM/3atoDZo1kSgWXzf328GVUYdX5YDqFvadvi0M3HJBMqDzdALYJ2zhijIlBdl03VaJ6pZc4Fx+Lig4Jb5MNc+2bRHE5CTKSvZ0CaGhybzxlZW6vVZTH8fypKvU7V4b4Sc4E2hYdBmYLvapjqjaCCS8G3R7asiKodmbgz5snAkN52T6LWSmIAbIgIl5irbJl/IfwQRuRckM6RpjmH1OjuG31eEGL6+cINRuuQp6GMsW3j8xWbXv604vKnb alice@desktop";
const RSA_FP: &str = "SHA256:eIJ0aXCsaGE0ob1BCvSkmJRQMPwWQL0oLcs+pkvHehk";
const ECDSA256: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBNT6PaefWI26RGYJMbxkznhm3G11eyuDkBZRvHf5mu1ar5jgOQOU/JG7wHSlXa4kR8YHXUN9F94vW//xtR63GiE= ecdsa256";
const ECDSA384: &str = "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBPAYsw8gKFgjL662LK5aqHD2ku7zaZpJX3SEHbAVIjClfjHG2uYR/Ny0rVRSbRB1UUFokRYPsl19dZm/lWgMc2viX5297N3T+VTud98LQucjPetyPENObT5F+jdjIxoW+A== ecdsa384";
const ECDSA521: &str = "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAHSl8+H+WPPhYjS+kW3PZywl/K5msdfDRlWvdQR3cd8vVCA2a3E9+fiBEtXxEfRI4Yu+ESRH+nlPHeWa0runKd6YgDE7XAjihLv70hAa7Ay813ovDWSy3e4hG4tdHlXRwwPObaxDOdvVZUVcKnBXcfJ9LKGMTrS6pHRefnofWLQVayFwg== ecdsa521";
const ECDSA521_FP: &str = "SHA256:hvwKyS67O3LhjZTlogiYlFf0IPlwDs3ffOeoK7dDd2I";
/// `ssh-keygen -t rsa -b 1024`: the smallest RSA key sshd accepts.
const RSA1024: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCW8ZLUsg7UWiEaRto3n92jTT9p8QZ7Rb/HSBedop5S+tV3hILT/8Lc+JWX4oneP8eoiIjYqGM+c4w6fJzF4HF4m6NcaLB7njAx5WgnXb87XhMrRTzfuX4AE0h1NhmwH4uj5dZN+umER+SzB9Eh0j4dtHbu8Re3GZYVGwkw262Zbw== small";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T18:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A descriptor extending vc:Cluster, for a week, with `body` inside the cluster element.
fn spec(body: &str) -> Result<ClusterSpec, SpecError> {
    let text = format!(
        r#"<cdl:cdl xmlns:cdl="http://www.gridforum.org/namespaces/2005/02/cddlm/CDL-1.0" xmlns:vc="urn:vcds:2026:cdl">
        <cdl:import location="vcds:cluster"/>
        <cdl:system><c cdl:extends="vc:Cluster"><vc:name>c1</vc:name>
        <vc:reservation><vc:duration>P7D</vc:duration></vc:reservation>{body}</c></cdl:system></cdl:cdl>"#
    );
    let doc = resolve(&text, &DocId::new("t.cdl"), &MemoryResolver::new())
        .unwrap_or_else(|e| panic!("{e}"));
    cluster_spec_at(&doc, now())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A `vc:login` with this user and these key lines (escaped for XML).
fn login(user: &str, keys: &[&str]) -> String {
    let keys: String = keys
        .iter()
        .map(|k| format!("<vc:authorizedKey>{}</vc:authorizedKey>", xml_escape(k)))
        .collect();
    format!("<vc:login><vc:user>{user}</vc:user>{keys}</vc:login>")
}

fn keys_fail(keys: &[&str]) -> SpecError {
    match spec(&login("alice", keys)) {
        Ok(s) => panic!("expected an error, got {:?}", s.login),
        Err(e) => e,
    }
}

/// Asserts `keys` fail as Invalid at `login.authorizedKey[at]`, the message containing `says`.
fn invalid_key(keys: &[&str], at: usize, says: &str) {
    let e = keys_fail(keys);
    let field = format!("login.authorizedKey[{at}]");
    assert!(
        matches!(&e, SpecError::Invalid { field: f, .. } if *f == field),
        "{keys:?}: {e:?}"
    );
    assert!(e.to_string().contains(says), "{keys:?}: {e}");
    // a 16 KiB line is not repeated in the message
    assert!(e.to_string().len() < 700, "{e}");
}

/// An SSH wire blob of these length-prefixed strings.
fn blob(parts: &[&[u8]]) -> String {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&u32::try_from(p.len()).unwrap().to_be_bytes());
        out.extend_from_slice(p);
    }
    STANDARD.encode(out)
}

/// A well-formed (not a real point) Ed25519 key line, distinct per `n`.
fn synthetic_ed25519(n: u8) -> String {
    format!("ssh-ed25519 {} key{n}", blob(&[b"ssh-ed25519", &[n; 32]]))
}

#[test]
fn by_default_user_vcds_logs_in_with_no_keys_and_nodes_install_the_rocks_way() {
    let s = spec("").unwrap();
    assert_eq!(s.login, Login::default());
    assert_eq!(s.login.user, "vcds");
    assert!(s.login.authorized_keys.is_empty());
    assert_eq!(s.installer, Installer::Rocks);
    assert_eq!(Installer::default(), Installer::Rocks);
}

#[test]
fn a_login_with_two_keys_is_normalized_in_descriptor_order() {
    // spaces around and inside the line are not part of the key
    let body = format!(
        "<vc:login><vc:user>alice</vc:user>\
         <vc:authorizedKey>\n   {ED25519}  </vc:authorizedKey>\
         <vc:authorizedKey>{}</vc:authorizedKey></vc:login>",
        RSA.replacen(' ', "   ", 1)
    );
    let s = spec(&body).unwrap();
    assert_eq!(s.login.user, "alice");
    assert_eq!(s.login.authorized_keys, [ED25519, RSA]);
    let keys: Vec<(KeyType, String, String)> = s
        .login
        .keys()
        .map(|k| (k.kind(), k.comment().to_string(), k.fingerprint()))
        .collect();
    assert_eq!(
        keys,
        [
            (KeyType::Ed25519, "alice@laptop".into(), ED25519_FP.into()),
            (KeyType::Rsa, "alice@desktop".into(), RSA_FP.into())
        ]
    );
}

#[test]
fn every_accepted_key_type_and_a_key_without_comment() {
    let sk_ed = format!(
        "sk-ssh-ed25519@openssh.com {} yubikey",
        blob(&[b"sk-ssh-ed25519@openssh.com", &[9; 32], b"ssh:"])
    );
    let mut point = vec![4u8];
    point.extend([7u8; 64]);
    let sk_ecdsa = format!(
        "sk-ecdsa-sha2-nistp256@openssh.com {}",
        blob(&[
            b"sk-ecdsa-sha2-nistp256@openssh.com",
            b"nistp256",
            &point,
            b"ssh:"
        ])
    );
    let no_comment = ED25519.rsplit_once(' ').unwrap().0;
    let keys = [
        ECDSA256, ECDSA384, ECDSA521, RSA1024, &sk_ed, &sk_ecdsa, no_comment,
    ];
    let s = spec(&login("_build-2", &keys)).unwrap();
    assert_eq!(s.login.user, "_build-2");
    assert_eq!(s.login.authorized_keys, keys);
    let types: Vec<KeyType> = s.login.keys().map(|k| k.kind()).collect();
    assert_eq!(
        types,
        [
            KeyType::EcdsaP256,
            KeyType::EcdsaP384,
            KeyType::EcdsaP521,
            KeyType::Rsa,
            KeyType::SkEd25519,
            KeyType::SkEcdsaP256,
            KeyType::Ed25519
        ]
    );
    assert_eq!(
        PublicKey::parse(ECDSA521).unwrap().fingerprint(),
        ECDSA521_FP
    );
    assert_eq!(PublicKey::parse(no_comment).unwrap().comment(), "");
}

#[test]
fn the_user_is_a_portable_login_name_and_no_system_account() {
    for good in ["alice", "_x", "a-b_c9", &"a".repeat(32)] {
        assert_eq!(spec(&login(good, &[])).unwrap().login.user, good);
    }
    for bad in [
        "Alice",
        "1alice",
        "-alice",
        "al.ice",
        "al ice",
        "alice$",
        "élise",
        &"a".repeat(33),
    ] {
        let e = spec(&login(&xml_escape(bad), &[])).unwrap_err();
        assert!(
            matches!(&e, SpecError::Invalid { field, expected, .. }
                if field == "login.user" && expected.contains("login name")),
            "{bad}: {e:?}"
        );
    }
    for reserved in [
        "root",
        "daemon",
        "bin",
        "sys",
        "nobody",
        "www-data",
        "_apt",
        "sshd",
        "messagebus",
        "systemd-network",
        "systemd-timesync",
        "munge",
        "slurm",
        "sgeadmin",
    ] {
        let e = spec(&login(reserved, &[])).unwrap_err();
        assert!(
            matches!(&e, SpecError::Invalid { field, expected, .. }
                if field == "login.user" && expected.contains("system account")),
            "{reserved}: {e:?}"
        );
    }
    let e = spec("<vc:login><vc:user/></vc:login>").unwrap();
    assert_eq!(e.login.user, "vcds", "an empty user keeps the prototype's");
    let e = spec(r#"<u>alice</u><vc:login><vc:user cdl:ref="/u" cdl:lazy="true"/></vc:login>"#)
        .unwrap_err();
    assert_eq!(
        e,
        SpecError::Lazy {
            field: "login.user".into()
        }
    );
    let e = spec("<vc:login><vc:password>x</vc:password></vc:login>").unwrap_err();
    assert_eq!(
        e,
        SpecError::UnknownField {
            field: "login.password".into()
        }
    );
}

#[test]
fn key_lines_that_are_not_a_plain_accepted_public_key_are_refused() {
    let ed_data = ED25519.split(' ').nth(1).unwrap();
    invalid_key(
        &[ED25519, "ssh-dss AAAAB3NzaC1kc3MAAACBAP9 old@box"],
        2,
        r#"not "ssh-dss""#,
    );
    invalid_key(&["ssh-ed25519 AAAA!!!! x"], 1, "base64");
    invalid_key(
        &["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEJ9zIH"],
        1,
        "base64",
    );
    invalid_key(&["ssh-ed25519"], 1, "key data is missing");
    // the data of an Ed25519 key under another type
    invalid_key(
        &[&format!("ssh-rsa {ed_data} alice@laptop")],
        1,
        r#"a public key of the type it names, ssh-rsa (its data is of type "ssh-ed25519")"#,
    );
    invalid_key(
        &[&format!("ecdsa-sha2-nistp256 {ed_data}")],
        1,
        "type it names, ecdsa-sha2-nistp256",
    );
    // authorized_keys options
    for options in [
        format!(r#"command="/bin/ls" {ED25519}"#),
        format!(r#"from="10.0.0.0/8",no-pty {ED25519}"#),
        format!("restrict {ED25519}"),
        format!("no-pty {ED25519}"),
        format!("environment=\"A=b\" {ED25519}"),
    ] {
        invalid_key(&[&options], 1, "options such as command=");
    }
    // one line only, printable
    invalid_key(&[&format!("{ED25519}\n{RSA}")], 1, "control characters");
    invalid_key(&[&ED25519.replacen(' ', "\t", 1)], 1, "control characters");
    invalid_key(&[&format!("{ED25519}\u{202E}pot\u{202C}")], 1, "printable");
    invalid_key(
        &[&format!("{ED25519} {}", "x".repeat(16 * 1024))],
        1,
        "at most 16384 bytes",
    );
    // a structurally broken or weak key of an accepted type
    invalid_key(
        &[&format!(
            "ssh-ed25519 {}",
            blob(&[b"ssh-ed25519", &[1; 31]])
        )],
        1,
        "32 bytes",
    );
    let mut small = vec![0u8];
    small.extend([0xffu8; 96]); // 768 bits
    invalid_key(
        &[&format!(
            "ssh-rsa {}",
            blob(&[b"ssh-rsa", &[1, 0, 1], &small])
        )],
        1,
        "1024 to 16384 bits (this one has 768)",
    );
    invalid_key(
        &[&format!(
            "ecdsa-sha2-nistp384 {}",
            blob(&[b"ecdsa-sha2-nistp384", b"nistp256", &[4; 97]])
        )],
        1,
        "curve name",
    );
    let e = keys_fail(&[ED25519, ""]);
    assert_eq!(
        e,
        SpecError::Missing {
            field: "login.authorizedKey[2]".into()
        }
    );
}

#[test]
fn a_key_listed_twice_and_more_than_32_keys_are_refused() {
    // the same key with another comment is still the same key
    let again = ED25519.replace("alice@laptop", "alice@other");
    let e = keys_fail(&[ED25519, RSA, &again]);
    assert_eq!(
        e,
        SpecError::Inconsistent {
            field: "login.authorizedKey[3]".into(),
            reason: "the same key as login.authorizedKey[1]".into()
        }
    );
    let many: Vec<String> = (0..=32).map(synthetic_ed25519).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    assert!(spec(&login("alice", &refs[..MAX_AUTHORIZED_KEYS])).is_ok());
    let e = keys_fail(&refs);
    assert!(
        matches!(&e, SpecError::Inconsistent { field, reason }
            if field == "login.authorizedKey[33]" && reason.contains("at most 32")),
        "{e:?}"
    );
}

#[test]
fn keys_added_at_deploy_time_pass_the_same_checks() {
    let mut l = spec(&login("alice", &[ED25519])).unwrap().login;
    l.add_key(&format!("  {RSA}  ")).unwrap();
    assert_eq!(l.authorized_keys, [ED25519, RSA]);
    assert_eq!(l.add_key(RSA), Err(KeyError::Duplicate { of: 1 }));
    assert_eq!(
        l.add_key(&format!("no-pty {ECDSA256}")),
        Err(KeyError::Options)
    );
    for n in 0..30 {
        l.add_key(&synthetic_ed25519(n)).unwrap();
    }
    assert_eq!(
        l.add_key(ECDSA256),
        Err(KeyError::TooMany {
            max: MAX_AUTHORIZED_KEYS
        })
    );
}

#[test]
fn the_installer_is_rocks_or_image() {
    let s = spec("<vc:installer>image</vc:installer>").unwrap();
    assert_eq!(s.installer, Installer::Image);
    assert_eq!(s.installer.as_str(), "image");
    let e = spec("<vc:installer>kickstart</vc:installer>").unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"installer must be one of rocks, image, got "kickstart""#
    );
    assert!(
        matches!(&e, SpecError::Invalid { field, .. } if field == "installer"),
        "{e:?}"
    );
}

#[test]
fn login_and_installer_round_trip_through_serde() {
    let s = spec(&format!(
        "<vc:installer>image</vc:installer>{}",
        login("alice", &[ED25519, RSA])
    ))
    .unwrap();
    let json = serde_json::to_string(&s).unwrap();
    assert!(json.contains(r#""installer":"image""#), "{json}");
    assert!(json.contains(r#""login":{"user":"alice","authorized_keys":["ssh-ed25519 "#));
    let back: ClusterSpec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
}

#[test]
fn a_spec_stored_before_login_and_installer_existed_still_reads() {
    // examples/small-cluster.cdl as vcds stored it before vc:login and vc:installer
    let old = r#"{"name":"small","os":{"name":"Rocks","version":"7.0"},"rolls":[],"attributes":[],
        "frontend":{"appliance":"frontend","count":1,"cpus":2,"memory_mib":2048,"disk_gib":40},
        "compute":{"appliance":"compute","count":2,"cpus":1,"memory_mib":1024,"disk_gib":20},
        "network":{"isolation":"vxlan","subnet":{"prefix_length":24}},
        "reservation":{"start":"now","end":{"duration":"P7D"}},
        "lifetime":{"at_end":"destroy","keep_for":"PT0S"},"scheduler":"none",
        "gateway":{"forwards":[{"protocol":"tcp","port":22,"external":2222}]},"storage":null}"#;
    let s: ClusterSpec = serde_json::from_str(old).unwrap();
    assert_eq!(s.installer, Installer::Rocks);
    assert_eq!(s.login, Login::default());
    // and it is what the descriptor reads as today
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/small-cluster.cdl"),
    )
    .unwrap();
    let doc = resolve(
        &text,
        &DocId::new("small-cluster.cdl"),
        &MemoryResolver::new(),
    )
    .unwrap();
    assert_eq!(cluster_spec_at(&doc, now()).unwrap(), s);
    // a login stored without keys reads too
    let partial: Login = serde_json::from_str(r#"{"user":"alice"}"#).unwrap();
    assert!(partial.authorized_keys.is_empty());
}

#[test]
fn the_cluster_xml_shows_the_installer_and_the_login_with_fingerprints() {
    let s = spec(&format!(
        "<vc:installer>image</vc:installer>{}",
        login("alice", &[ED25519, RSA])
    ))
    .unwrap();
    let xml = s.to_xml();
    let parsed = vcds_xml::parse(&xml, &vcds_xml::Limits::default()).unwrap();
    let vc =
        |n: &roxmltree::Node<'_, '_>, local: &str| n.has_tag_name(("urn:vcds:2026:cdl", local));
    let root = parsed.root_element();
    let installer = root.children().find(|n| vc(n, "installer")).unwrap();
    assert_eq!(installer.text(), Some("image"));
    let login = root.children().find(|n| vc(n, "login")).unwrap();
    let user = login.children().find(|n| vc(n, "user")).unwrap();
    assert_eq!(user.text(), Some("alice"));
    let keys: Vec<(Option<&str>, Option<&str>)> = login
        .children()
        .filter(|n| vc(n, "authorizedKey"))
        .map(|k| (k.attribute("fingerprint"), k.text()))
        .collect();
    assert_eq!(
        keys,
        [(Some(ED25519_FP), Some(ED25519)), (Some(RSA_FP), Some(RSA))]
    );
}

/// The `vc:cluster` of each example and of a full login validates against the schema (with
/// xmllint; skipped, visibly, without it).
#[test]
fn the_cluster_xml_validates_against_the_schema() {
    let Some(xmllint) = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("xmllint"))
            .find(|p| p.is_file())
    }) else {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "SKIP: xmllint not installed");
        return;
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let schema = root.join("schemas/vcds-cluster.xsd");
    let mut specs = vec![
        spec("").unwrap(),
        spec(&format!(
            "<vc:installer>image</vc:installer>{}",
            login("alice", &[ED25519, RSA, ECDSA521, RSA1024])
        ))
        .unwrap(),
    ];
    for name in [
        "small-cluster.cdl",
        "planned/sge-cluster.cdl",
        "planned/slurm-scheduled.cdl",
    ] {
        let text = std::fs::read_to_string(root.join("examples").join(name)).unwrap();
        let doc = resolve(&text, &DocId::new(name), &MemoryResolver::new()).unwrap();
        specs.push(cluster_spec_at(&doc, now()).unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    for (i, s) in specs.iter().enumerate() {
        let file = dir.path().join(format!("cluster-{i}.xml"));
        std::fs::write(&file, s.to_xml()).unwrap();
        let out = std::process::Command::new(&xmllint)
            .args(["--noout", "--nonet", "--schema"])
            .arg(&schema)
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}\n{}",
            s.name,
            String::from_utf8_lossy(&out.stderr),
            s.to_xml()
        );
    }
    // and the schema refuses what cluster_spec refuses
    let bad = specs[1]
        .to_xml()
        .replace("<vc:user>alice</vc:user>", "<vc:user>Alice</vc:user>");
    let file = dir.path().join("bad.xml");
    std::fs::write(&file, bad).unwrap();
    let out = std::process::Command::new(&xmllint)
        .args(["--noout", "--nonet", "--schema"])
        .arg(&schema)
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
}
