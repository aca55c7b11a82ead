//! Parsing gmond XML (the shared fixture and hostile inputs), writing it, and the round trip.

mod common;

use vcds_monitor::export::agent_document;
use vcds_monitor::write::GMOND_DTD;
use vcds_monitor::{
    parse_bytes, parse_str, write_document, MetricType, ParseError, ParseLimits, Slope,
};

fn limits() -> ParseLimits {
    ParseLimits::default()
}

#[test]
fn parses_the_rocks_fixture() {
    let Some(bytes) = common::fixture() else {
        return;
    };
    let doc = parse_bytes(&bytes, &limits()).expect("fixture parses");
    assert_eq!(doc.version, "2.5.0");
    assert_eq!(doc.source, "gmond");
    assert_eq!(doc.clusters.len(), 1);
    let c = &doc.clusters[0];
    assert_eq!(c.name, "Rocks Fossil Design");
    assert_eq!(c.owner.as_deref(), Some("SDSC"));
    assert_eq!(c.localtime, 1_032_378_019);
    let h = &c.hosts[0];
    assert_eq!((h.name.as_str(), h.ip.as_str()), ("frontend", "10.1.1.1"));
    assert_eq!(
        (h.reported, h.tn, h.tmax, h.dmax),
        (1_032_378_018, 1, 20, 0)
    );
    assert_eq!(h.gmond_started, Some(1_032_377_289));
    assert_eq!(h.location.as_deref(), Some("0,0,0"));
    let load = h.metric("load_one").expect("load_one");
    assert_eq!(
        (load.val.as_str(), load.ty, load.tn, load.tmax),
        ("0.06", MetricType::Float, 21, 70)
    );
    assert_eq!(load.slope, Some(Slope::Both));
    assert_eq!(h.value("mem_free"), Some(31928.0));
    assert_eq!(
        h.metric("gexec").map(|m| (m.ty, m.as_f64())),
        Some((MetricType::String, None))
    );
    let count = String::from_utf8_lossy(&bytes).matches("<METRIC ").count();
    assert_eq!(h.metrics.len(), count);
}

#[test]
fn our_header_is_gmonds() {
    let Some(dtd_h) = common::fixture_dtd() else {
        {
            // Past the test harness's capture, so a skip is seen.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "SKIP: ../shared/fixtures not present");
        }
        return;
    };
    // dtd.h holds the header as a C string: one `...\n\` line per XML line.
    let from_c: String = dtd_h
        .lines()
        .skip_while(|l| !l.starts_with("#define DTD"))
        .skip(1)
        .take_while(|l| !l.starts_with("#endif"))
        .filter_map(|l| l.strip_suffix("\\n\\").or_else(|| l.strip_suffix("\\n\"")))
        .map(|l| format!("{}\n", l.replace("\\\"", "\"")))
        .collect();
    assert_eq!(from_c, GMOND_DTD);
}

#[test]
fn agent_document_round_trips() {
    let doc = agent_document("vc-7", "provider", 1_760_000_000, &common::sample_pnode());
    let text = write_document(&doc);
    assert!(
        text.is_ascii(),
        "written XML is ASCII under any declared encoding"
    );
    assert!(text.starts_with(GMOND_DTD));
    let back = parse_str(&text, &limits()).expect("our output parses");
    assert_eq!(back, doc);
    // The same bytes as gmond's declared ISO-8859-1 decode identically.
    assert_eq!(parse_bytes(text.as_bytes(), &limits()).expect("bytes"), doc);
    assert_eq!(
        back.clusters.len(),
        2,
        "the P-node's cluster, then the VMs' cluster"
    );
    assert_eq!(back.clusters[1].name, "vc-7 \"alpha\" <Müller>");
    let vm = &back.clusters[1].hosts[1];
    assert_eq!(
        vm.metric("vm_state").map(|m| m.val.as_str()),
        Some("suspended")
    );
    assert_eq!(
        vm.metric("vm_state").and_then(|m| m.extra("SPOOF_HOST")),
        Some("10.7.0.11:vc7-compute-0-1")
    );
    assert_eq!(back.clusters[0].hosts[0].value("vm_running"), Some(1.0));
}

#[test]
fn awkward_values_round_trip() {
    let mut doc = agent_document("c", "o", 1, &common::sample_pnode());
    let weird = "tab\there\nnew line\r & <tag> \"q\" 'a' é € 😀";
    doc.clusters[0].hosts[0].metrics[0].val = weird.to_string();
    doc.clusters[0].hosts[0].tags = Some(String::new());
    let back = parse_str(&write_document(&doc), &limits()).expect("parses");
    assert_eq!(back.clusters[0].hosts[0].metrics[0].val, weird);
    assert_eq!(back, doc);
}

#[test]
fn latin1_bytes_decode_as_declared() {
    let text = write_document(&agent_document("c", "o", 1, &common::sample_pnode()));
    let raw = text.replacen("NAME=\"c\"", "NAME=\"caf\u{e9}\"", 1);
    // Raw Latin-1 byte 0xE9, as gmond would send it.
    let bytes: Vec<u8> = raw.chars().map(|c| c as u8).collect();
    let doc = parse_bytes(&bytes, &limits()).expect("latin-1 parses");
    assert_eq!(doc.clusters[0].name, "café");
}

fn gmond_like(doctype: &str, body: &str) -> String {
    format!("<?xml version=\"1.0\" encoding=\"ISO-8859-1\" standalone=\"yes\"?>\n{doctype}\n<GANGLIA_XML VERSION=\"3.7.2\" SOURCE=\"gmond\">\n{body}</GANGLIA_XML>\n")
}

fn refused(text: &str) -> ParseError {
    parse_str(text, &limits()).expect_err("must be refused")
}

#[test]
fn billion_laughs_in_the_doctype_is_refused_unexpanded() {
    let mut dtd = String::from("<!DOCTYPE GANGLIA_XML [\n <!ENTITY lol \"lol\">\n");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", i - 1)
        };
        dtd.push_str(&format!(
            " <!ENTITY lol{i} \"{}\">\n",
            format!("&{prev};").repeat(10)
        ));
    }
    dtd.push(']');
    dtd.push('>');
    let text = gmond_like(&dtd, "<CLUSTER NAME=\"&lol9;\" LOCALTIME=\"1\"/>\n");
    let started = std::time::Instant::now();
    let err = refused(&text);
    assert!(started.elapsed().as_millis() < 100);
    assert_eq!(
        err,
        ParseError::Doctype {
            line: 3,
            reason: "entity declarations are not accepted"
        }
    );
    assert!(
        err.to_string().starts_with("line 3: DOCTYPE refused"),
        "{err}"
    );
}

#[test]
fn xxe_is_refused() {
    let external = gmond_like("<!DOCTYPE GANGLIA_XML SYSTEM \"file:///etc/passwd\">", "");
    assert!(
        matches!(refused(&external), ParseError::Doctype { line: 2, reason } if reason.contains("SYSTEM"))
    );
    let public = gmond_like(
        "<!DOCTYPE GANGLIA_XML PUBLIC \"-//x//\" \"http://evil/x.dtd\">",
        "",
    );
    assert!(matches!(refused(&public), ParseError::Doctype { .. }));
    let param = gmond_like(
        "<!DOCTYPE GANGLIA_XML [\n<!ENTITY % x SYSTEM \"http://evil/\">\n%x;\n]>",
        "",
    );
    assert!(matches!(
        refused(&param),
        ParseError::Doctype { line: 3, .. }
    ));
    // Without a DOCTYPE an undeclared entity reference is malformed, never resolved.
    let bare = "<GANGLIA_XML VERSION=\"1\" SOURCE=\"gmond\"><CLUSTER NAME=\"&xxe;\" LOCALTIME=\"1\"/></GANGLIA_XML>";
    assert!(matches!(refused(bare), ParseError::Xml(_)));
}

#[test]
fn doctype_tricks_are_bounded() {
    let huge = format!(
        "<!DOCTYPE GANGLIA_XML [\n<!-- {} -->\n]>",
        "x".repeat(100_000)
    );
    assert_eq!(
        refused(&gmond_like(&huge, "")),
        ParseError::DoctypeTooLarge {
            line: 2,
            limit: 16 * 1024
        }
    );
    // A `]>` inside a quoted literal or comment does not end the subset early.
    let quoted = "<!DOCTYPE GANGLIA_XML [\n<!ATTLIST X Y CDATA \"]>\">\n<!-- ]> -->\n]>";
    let doc = parse_str(&gmond_like(quoted, ""), &limits()).expect("parses");
    assert!(doc.clusters.is_empty());
    for cut in [
        "<!DOCTYPE GANGLIA_XML [\n<!ATTLIST X Y CDATA \"",
        "<!DOCTYPE GANGLIA_XML [ <!-- ",
        "<!DOCTYPE GANGLIA_XML [",
    ] {
        let text = format!("<?xml version=\"1.0\"?>\n{cut}");
        assert!(
            matches!(refused(&text), ParseError::Doctype { .. }),
            "{cut}"
        );
    }
}

#[test]
fn errors_carry_line_numbers_past_the_doctype() {
    let body = "<CLUSTER NAME=\"c\" LOCALTIME=\"1\">\n<HOST NAME=\"h\" IP=\"1.2.3.4\" REPORTED=\"soon\"/>\n</CLUSTER>\n";
    let text =
        format!("{GMOND_DTD}<GANGLIA_XML VERSION=\"3\" SOURCE=\"gmond\">\n{body}</GANGLIA_XML>");
    let line = u32::try_from(GMOND_DTD.lines().count()).expect("small") + 3;
    match refused(&text) {
        ParseError::BadAttribute {
            line: l,
            element: "HOST",
            attribute: "REPORTED",
            ..
        } => assert_eq!(l, line),
        other => panic!("unexpected {other:?}"),
    }
    let missing = text.replace(" IP=\"1.2.3.4\"", "");
    assert!(matches!(
        refused(&missing),
        ParseError::MissingAttribute {
            attribute: "IP",
            ..
        }
    ));
    let bad_type = format!("{GMOND_DTD}<GANGLIA_XML VERSION=\"3\" SOURCE=\"gmond\"><CLUSTER NAME=\"c\" LOCALTIME=\"1\"><HOST NAME=\"h\" IP=\"i\" REPORTED=\"1\"><METRIC NAME=\"m\" VAL=\"1\" TYPE=\"int128\"/></HOST></CLUSTER></GANGLIA_XML>");
    assert!(refused(&bad_type)
        .to_string()
        .contains("TYPE=\"int128\" is not a gmond metric type"));
}

#[test]
fn hostile_shapes_are_refused() {
    let deep = gmond_like(
        "",
        &format!("{}{}", "<GRID>".repeat(10_000), "</GRID>".repeat(10_000)),
    );
    assert!(matches!(
        refused(&deep),
        ParseError::Xml(vcds_xml::XmlError::TooDeep { .. })
    ));
    let huge_attr = gmond_like(
        "",
        &format!(
            "<CLUSTER NAME=\"{}\" LOCALTIME=\"1\"/>",
            "A".repeat(1 << 20)
        ),
    );
    assert!(matches!(
        refused(&huge_attr),
        ParseError::Xml(vcds_xml::XmlError::AttributeTooLong { .. })
    ));
    let small = ParseLimits {
        max_hosts: 3,
        max_metrics_per_host: 2,
        max_bytes: 4096,
        ..limits()
    };
    let hosts = gmond_like(
        "",
        &format!(
            "<CLUSTER NAME=\"c\" LOCALTIME=\"1\">{}</CLUSTER>",
            "<HOST NAME=\"h\" IP=\"i\" REPORTED=\"1\"/>".repeat(4)
        ),
    );
    assert!(matches!(
        parse_str(&hosts, &small),
        Err(ParseError::TooMany {
            what: "hosts",
            limit: 3,
            ..
        })
    ));
    let metrics = gmond_like("", &format!("<CLUSTER NAME=\"c\" LOCALTIME=\"1\"><HOST NAME=\"h\" IP=\"i\" REPORTED=\"1\">{}</HOST></CLUSTER>", "<METRIC NAME=\"m\" VAL=\"1\" TYPE=\"float\"/>".repeat(3)));
    assert!(matches!(
        parse_str(&metrics, &small),
        Err(ParseError::TooMany {
            what: "metrics in one host",
            ..
        })
    ));
    let big = "x".repeat(5000);
    assert!(matches!(
        parse_str(&big, &small),
        Err(ParseError::TooLarge {
            size: 5000,
            limit: 4096
        })
    ));
}

#[test]
fn truncated_and_garbage_inputs_are_refused() {
    let full = write_document(&agent_document("c", "o", 1, &common::sample_pnode()));
    for cut in [
        10,
        GMOND_DTD.len() / 2,
        GMOND_DTD.len() + 5,
        full.len() / 2,
        full.len() - 3,
    ] {
        assert!(parse_str(&full[..cut], &limits()).is_err(), "cut at {cut}");
    }
    assert_eq!(refused(""), ParseError::Empty);
    assert!(matches!(
        parse_bytes(b"\xff\xfe\x00garbage", &limits()),
        Err(ParseError::NotUtf8 { .. })
    ));
    assert!(matches!(
        refused("HTTP/1.1 400 Bad Request\r\n\r\n"),
        ParseError::Xml(_)
    ));
    assert!(
        matches!(refused("<html><body>hi</body></html>"), ParseError::WrongRoot { found, .. } if found == "html")
    );
}
