//! The hostile-input corpus: well over 200 malicious or broken requests against the real server
//! on 127.0.0.1 (plain HTTP, and mutual TLS for the certificate cases). Each case must get its
//! precise fault (element, ErrorCode, reason) or HTTP status, or be refused at the TLS
//! handshake; after each one the service must still answer; at the end nothing may have been
//! stored and the process's memory must have stayed bounded.
//!
//! Cases come from files under `tests/hostile/` (see its MANIFEST) and from generators below:
//! XXE and other DTDs, billion laughs, 100,000-deep nesting, huge and slow bodies, invalid UTF-8,
//! wrong namespaces, forged and missing reference parameters, injection-looking names, path
//! traversal in AddFile names, descriptor references, CDL imports, consumer URIs and GET paths,
//! and broken, expired, revoked and untrusted certificates.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;
use common::ops::{self, Op, API, CDL, VCDS};
use common::secure::{self, http_request, parse_http, Secure};
use common::*;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use openssl::ssl::SslVersion;
use vcds_wsrf::actions;

const GRP: &str = actions::GET_RP;
/// Text that must never come back: the first line of /etc/passwd.
const PASSWD: &str = "root:x:0:0";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum V {
    S11,
    S12,
}

impl V {
    fn ns(self) -> &'static str {
        match self {
            V::S11 => S11,
            V::S12 => S12,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            V::S11 => "text/xml; charset=utf-8",
            V::S12 => "application/soap+xml; charset=utf-8",
        }
    }

    /// HTTP status of a Sender fault: SOAP 1.1 always 500 (WS-I), SOAP 1.2 400.
    fn sender(self) -> u16 {
        match self {
            V::S11 => 500,
            V::S12 => 400,
        }
    }
}

const BOTH: [V; 2] = [V::S11, V::S12];

/// How a case reaches the server.
enum Wire {
    /// An HTTP request, sent whole (the answer is read while sending, as a server may answer
    /// before it has read everything).
    Bytes(Vec<u8>),
    /// A request head, then body pieces with pauses between them.
    Slow {
        head: Vec<u8>,
        pieces: Vec<Vec<u8>>,
        pause: Duration,
    },
    /// Connect and say nothing (to the TLS port: not even a handshake).
    Silent { tls: bool },
    /// A GET over mutual TLS with a credential of the test PKI (`None`: no certificate).
    Tls {
        credential: Option<&'static str>,
        version: SslVersion,
    },
    /// Plain HTTP spoken to the TLS port.
    PlainToTls,
}

/// What must come back.
enum Expect {
    Fault {
        status: u16,
        element: &'static str,
        code: Option<&'static str>,
        reason: String,
    },
    Http {
        status: u16,
        contains: &'static str,
    },
    /// No HTTP answer: the connection is refused or closed, with an error that says `alert`
    /// (a TLS alert; "" where the refusal cannot be told apart, as in TLS 1.3).
    Closed {
        alert: &'static str,
    },
}

struct Case {
    name: String,
    wire: Wire,
    expect: Expect,
}

/// An HTTP answer with this status, whatever its body.
fn status(status: u16) -> Expect {
    Expect::Http {
        status,
        contains: "",
    }
}

fn fault(status: u16, element: &'static str, code: Option<&'static str>, reason: &str) -> Expect {
    Expect::Fault {
        status,
        element,
        code,
        reason: reason.to_string(),
    }
}

/// A Sender fault with a vcds ErrorCode on a generic wsrf-bf:BaseFault.
fn base(v: V, code: &'static str, reason: &str) -> Expect {
    fault(v.sender(), "BaseFault", Some(code), reason)
}

fn post_wire(path: &str, content_type: &str, body: &[u8]) -> Wire {
    Wire::Bytes(http_request(
        "POST",
        path,
        &[("Content-Type", content_type)],
        body,
    ))
}

fn soap_wire(v: V, endpoint: &str, envelope: &[u8]) -> Wire {
    post_wire(
        &format!("/wsrf/services/{endpoint}"),
        v.content_type(),
        envelope,
    )
}

fn case(name: impl Into<String>, wire: Wire, expect: Expect) -> Case {
    Case {
        name: name.into(),
        wire,
        expect,
    }
}

/// An operation's request in SOAP version `v` as `resource`.
fn op_wire(v: V, op: &Op, resource: Option<&str>) -> Wire {
    soap_wire(
        v,
        op.endpoint,
        envelope(v.ns(), &op.action, resource, &op.body).as_bytes(),
    )
}

fn grp_body(inner: &str) -> String {
    format!("<rp:GetResourceProperty xmlns:rp=\"{RP}\" xmlns:api=\"{API}\">{inner}</rp:GetResourceProperty>")
}

/// `text` with its first `marker` replaced by raw (possibly invalid) bytes.
fn with_bytes(text: &str, marker: &str, bytes: &[u8]) -> Vec<u8> {
    let (before, after) = text.split_once(marker).unwrap();
    [before.as_bytes(), bytes, after.as_bytes()].concat()
}

/// A GetResourceProperty envelope to the Portal with raw bytes as the property name.
fn grp_bytes(v: V, inner: &[u8]) -> Vec<u8> {
    with_bytes(
        &envelope(v.ns(), GRP, None, &grp_body("@@INNER@@")),
        "@@INNER@@",
        inner,
    )
}

/// What the corpus works on: made before it runs.
struct Ids {
    /// An instantiated System (AddFile, Initialize).
    system: String,
    /// A subscription on it.
    subscription: String,
    /// The one directory AddFile may fetch `api:uri`s from (`file:///…/files/`), holding
    /// `ok.cdl` and `passwd`, a symbolic link to /etc/passwd.
    source: String,
}

fn manifest_cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST")).unwrap();
    let mut cases = Vec::new();
    for line in manifest
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        let [file, element, code, reason] = cols[..] else {
            panic!("MANIFEST line {line:?} needs 4 columns");
        };
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        // Leak the little strings the manifest names: Expect holds &'static str.
        let element: &'static str = Box::leak(element.to_string().into_boxed_str());
        let code: Option<&'static str> =
            (code != "-").then(|| &*Box::leak(code.to_string().into_boxed_str()));
        for v in BOTH {
            let body = text.replace(S11, v.ns());
            cases.push(case(
                format!("file {file} {v:?}"),
                soap_wire(v, "Portal", body.as_bytes()),
                fault(v.sender(), element, code, reason),
            ));
        }
    }
    cases
}

fn nesting_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let nested = |n: usize| "<a>".repeat(n) + &"</a>".repeat(n);
    for v in BOTH {
        for n in [129, 1_000, 100_000] {
            cases.push(case(
                format!("{n} deep in the body {v:?}"),
                soap_wire(
                    v,
                    "Portal",
                    envelope(v.ns(), GRP, None, &nested(n)).as_bytes(),
                ),
                base(v, "xml-too-deep", "nesting deeper than 128"),
            ));
        }
        let header = format!(
            "<s:Envelope xmlns:s=\"{}\" xmlns:wsa=\"{WSA}\"><s:Header>{}<wsa:Action>{GRP}</wsa:Action></s:Header><s:Body/></s:Envelope>",
            v.ns(),
            nested(100_000)
        );
        cases.push(case(
            format!("100000 deep in a header {v:?}"),
            soap_wire(v, "Portal", header.as_bytes()),
            base(v, "xml-too-deep", "nesting deeper than 128"),
        ));
        let open_only = envelope(v.ns(), GRP, None, &"<a>".repeat(100_000));
        cases.push(case(
            format!("100000 unclosed elements {v:?}"),
            soap_wire(v, "Portal", open_only.as_bytes()),
            base(v, "xml-too-deep", "nesting deeper than 128"),
        ));
        // Each level declares a namespace: a parser that copies in-scope namespaces per element
        // would need 100,000² of them.
        let ns_levels: String = (0..100_000)
            .map(|i| format!("<a xmlns:p{i}=\"urn:{i}\">"))
            .collect::<String>()
            + &"</a>".repeat(100_000);
        cases.push(case(
            format!("100000 deep with a namespace per level {v:?}"),
            soap_wire(
                v,
                "Portal",
                envelope(v.ns(), GRP, None, &ns_levels).as_bytes(),
            ),
            base(v, "xml-too-many-namespaces", "more than 64 namespaces"),
        ));
    }
    cases
}

fn shape_and_size_cases() -> Vec<Case> {
    let v = V::S11;
    let on_body = |attrs: &str, inner: &str| {
        envelope(
            v.ns(),
            GRP,
            None,
            &format!("<rp:GetResourceProperty xmlns:rp=\"{RP}\" {attrs}>{inner}</rp:GetResourceProperty>"),
        )
    };
    let many_attrs: String = (0..65).map(|i| format!("a{i}=\"x\" ")).collect();
    let many_ns: String = (0..70)
        .map(|i| format!("xmlns:n{i}=\"urn:{i}\" "))
        .collect();
    let limit = 4 * 1024 * 1024;
    let over = "x".repeat(limit + 1);
    let mut cases = vec![
        case(
            "200001 nodes",
            soap_wire(v, "Portal", on_body("", &"<x/>".repeat(200_001)).as_bytes()),
            base(v, "xml-too-many-nodes", "more than 200000 XML nodes"),
        ),
        case(
            "65 attributes",
            soap_wire(v, "Portal", on_body(&many_attrs, "").as_bytes()),
            base(v, "xml-too-many-attributes", "more than 64 attributes"),
        ),
        case(
            "70 namespaces on one element",
            soap_wire(v, "Portal", on_body(&many_ns, "").as_bytes()),
            base(v, "xml-too-many-namespaces", "more than 64 namespaces"),
        ),
        case(
            "300-character element name",
            soap_wire(
                v,
                "Portal",
                on_body("", &format!("<{0}/>", "n".repeat(300))).as_bytes(),
            ),
            base(v, "xml-name-too-long", "longer than 256 characters"),
        ),
        case(
            "300-character attribute name",
            soap_wire(
                v,
                "Portal",
                on_body(&format!("{}=\"x\"", "n".repeat(300)), "").as_bytes(),
            ),
            base(v, "xml-name-too-long", "longer than 256 characters"),
        ),
        case(
            "attribute value over 64 KiB",
            soap_wire(
                v,
                "Portal",
                on_body(&format!("big=\"{}\"", "v".repeat(64 * 1024 + 1)), "").as_bytes(),
            ),
            base(v, "xml-attribute-too-long", "longer than 65536 bytes"),
        ),
        case(
            "declared 5 MiB, nothing sent",
            Wire::Bytes(
                format!("POST /wsrf/services/Portal HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", 5 * 1024 * 1024)
                    .into_bytes(),
            ),
            base(v, "body-too-large", "over the limit of 4194304"),
        ),
        case(
            "5 MiB body",
            soap_wire(v, "Portal", envelope(v.ns(), GRP, None, &"x".repeat(5 * 1024 * 1024)).as_bytes()),
            base(v, "body-too-large", "over the limit of 4194304"),
        ),
        case(
            "limit + 1 bytes",
            soap_wire(v, "Portal", over.as_bytes()),
            base(v, "body-too-large", "over the limit of 4194304"),
        ),
    ];
    // Chunked, so the size is known only while reading.
    let mut chunked = b"POST /wsrf/services/Portal HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..(5 * 16) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    cases.push(case(
        "5 MiB chunked",
        Wire::Bytes(chunked),
        base(v, "body-too-large", "over the limit of 4194304"),
    ));
    // Malformed HTTP framing is refused by the HTTP layer before any handler.
    let raw = |name: &str, head: &str, code: u16| {
        case(
            name,
            Wire::Bytes(format!("{head}\r\n\r\n").into_bytes()),
            status(code),
        )
    };
    cases.extend([
        raw(
            "Content-Length overflowing 64 bits",
            "POST /wsrf/services/Portal HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 99999999999999999999999",
            400,
        ),
        raw(
            "negative Content-Length",
            "POST /wsrf/services/Portal HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: -1",
            400,
        ),
        raw(
            "two different Content-Lengths",
            "POST /wsrf/services/Portal HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 5\r\nContent-Length: 7",
            400,
        ),
        raw(
            "Content-Length and chunked together (request smuggling)",
            "POST /wsrf/services/Portal HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 5\r\nTransfer-Encoding: chunked",
            400,
        ),
        raw(
            "200 KB header",
            &format!("GET /wsrf/services/Portal?wsdl HTTP/1.1\r\nHost: x\r\nX-Big: {}", "b".repeat(200_000)),
            431,
        ),
        raw(
            "200 headers",
            &format!(
                "GET /wsrf/services/Portal?wsdl HTTP/1.1\r\nHost: x{}",
                (0..200).map(|i| format!("\r\nX-H{i}: v")).collect::<String>()
            ),
            431,
        ),
        raw("not HTTP at all", "\u{16}\u{3}\u{1}hello", 400),
    ]);
    cases
}

fn slow_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for v in BOTH {
        let head = |length: usize| {
            format!("POST /wsrf/services/Portal HTTP/1.1\r\nHost: localhost\r\nContent-Type: {}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n", v.content_type())
                .into_bytes()
        };
        let body = envelope(v.ns(), GRP, None, &grp_body("api:ActiveSystems"));
        // A byte at a time, 200 ms apart: the whole body would take minutes.
        cases.push(case(
            format!("body trickling in {v:?}"),
            Wire::Slow {
                head: head(body.len()),
                pieces: body
                    .as_bytes()
                    .chunks(1)
                    .take(15)
                    .map(<[u8]>::to_vec)
                    .collect(),
                pause: Duration::from_millis(200),
            },
            base(v, "body-timeout", "did not arrive in time"),
        ));
        cases.push(case(
            format!("half a body, then silence {v:?}"),
            Wire::Slow {
                head: head(body.len()),
                pieces: vec![body.as_bytes()[..body.len() / 2].to_vec()],
                pause: Duration::from_millis(2_500),
            },
            base(v, "body-timeout", "did not arrive in time"),
        ));
    }
    cases.push(case(
        "head trickling in",
        Wire::Slow {
            head: b"POST /wsrf/services/Portal HTTP/1.1\r\nHost: localhost\r\n".to_vec(),
            pieces: (0..15)
                .map(|i| format!("X-{i}: y\r\n").into_bytes())
                .collect(),
            pause: Duration::from_millis(200),
        },
        status(408),
    ));
    cases.push(case(
        "connect, send nothing",
        Wire::Silent { tls: false },
        status(408),
    ));
    cases
}

fn encoding_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for v in BOTH {
        let not_utf8 = || base(v, "xml-malformed", "not UTF-8");
        let malformed = || base(v, "xml-malformed", "not well-formed");
        let in_name = |bytes: &[u8]| grp_bytes(v, &[b"api:Active", bytes, b"Systems"].concat());
        let mut truncated =
            envelope(v.ns(), GRP, None, &grp_body("api:ActiveSystems")).into_bytes();
        truncated.extend_from_slice(&[0xE2, 0x82]);
        let header_bytes = with_bytes(
            &envelope(v.ns(), GRP, Some("@@ID@@"), &grp_body("api:ActiveSystems")),
            "@@ID@@",
            "\u{FFFF}".as_bytes(),
        );
        let latin1 = [
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>".as_slice(),
            &grp_bytes(v, &[b"caf", [0xE9].as_slice()].concat()),
        ]
        .concat();
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(
                envelope(v.ns(), GRP, None, &grp_body("api:ActiveSystems"))
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes),
            )
            .collect();
        let declared_utf16 = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-16\"?>{}",
            envelope(v.ns(), GRP, None, &grp_body("api:ActiveSystems"))
        );
        let byte_cases: Vec<(&str, Vec<u8>, Expect)> = vec![
            ("0xFF byte", in_name(&[0xFF]), not_utf8()),
            ("overlong '/' (C0 AF)", in_name(&[0xC0, 0xAF]), not_utf8()),
            (
                "UTF-16 surrogate half (ED A0 80)",
                in_name(&[0xED, 0xA0, 0x80]),
                not_utf8(),
            ),
            (
                "code point above U+10FFFF",
                in_name(&[0xF5, 0x80, 0x80, 0x80]),
                not_utf8(),
            ),
            ("multi-byte sequence cut at the end", truncated, not_utf8()),
            (
                "invalid byte in an element name",
                with_bytes(
                    &envelope(v.ns(), GRP, None, &grp_body("api:ActiveSystems")),
                    "<rp:GetResourceProperty",
                    b"<rp:Get\xFFResourceProperty",
                ),
                not_utf8(),
            ),
            ("Latin-1 declared and used", latin1, not_utf8()),
            ("UTF-16 with a byte-order mark", utf16, not_utf8()),
            ("raw NUL", in_name(&[0]), malformed()),
            ("raw control character 0x01", in_name(&[1]), malformed()),
            ("character reference &#0;", in_name(b"&#0;"), malformed()),
            // roxmltree reads an out-of-range character reference as U+FFFD: harmless, the
            // name is then simply unknown.
            (
                "character reference to a surrogate",
                in_name(b"&#xD800;"),
                fault(
                    v.sender(),
                    "InvalidResourcePropertyQNameFault",
                    None,
                    "Active\u{FFFD}Systems is not a resource property",
                ),
            ),
            ("noncharacter U+FFFF in a header", header_bytes, malformed()),
            (
                "UTF-16 declared, UTF-8 sent",
                declared_utf16.into_bytes(),
                base(
                    v,
                    "xml-malformed",
                    "declared encoding \"UTF-16\" is not supported",
                ),
            ),
        ];
        for (name, bytes, expect) in byte_cases {
            cases.push(case(
                format!("{name} {v:?}"),
                soap_wire(v, "Portal", &bytes),
                expect,
            ));
        }
    }
    cases
}

fn envelope_cases(ids: &Ids) -> Vec<Case> {
    let v = V::S11;
    let body_grp = grp_body("api:ActiveSystems");
    let raw_env = |ns: &str, header: &str, body: &str| {
        format!("<s:Envelope xmlns:s=\"{ns}\" xmlns:wsa=\"{WSA}\"><s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>")
    };
    let action = format!("<wsa:Action>{GRP}</wsa:Action>");
    let create_action = format!("<wsa:Action>{}</wsa:Action>", vcds_api::ops::CREATE);
    let soap = |name: &str, endpoint: &str, text: String, expect: Expect| {
        case(name, soap_wire(v, endpoint, text.as_bytes()), expect)
    };
    let wsa_fault = |reason: &str| fault(500, "BaseFault", None, reason);
    let mut cases = vec![
        soap(
            "unknown envelope namespace",
            "Portal",
            raw_env("urn:evil:envelope", &action, &body_grp),
            fault(500, "BaseFault", None, "unsupported SOAP envelope namespace"),
        ),
        soap(
            "root is not an Envelope",
            "Portal",
            format!("<s:Body xmlns:s=\"{S11}\">{body_grp}</s:Body>"),
            fault(500, "BaseFault", None, "not a SOAP Envelope"),
        ),
        soap(
            "WS-Addressing 2004/08 namespace",
            "Portal",
            raw_env(
                S11,
                &format!("<w:Action xmlns:w=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\">{GRP}</w:Action>"),
                &body_grp,
            ),
            wsa_fault("wsa:Action header is required"),
        ),
        soap(
            "no Header",
            "Portal",
            format!("<s:Envelope xmlns:s=\"{S11}\"><s:Body>{body_grp}</s:Body></s:Envelope>"),
            wsa_fault("wsa:Action header is required"),
        ),
        soap(
            "empty wsa:Action",
            "Portal",
            raw_env(S11, "<wsa:Action>  </wsa:Action>", &body_grp),
            wsa_fault("wsa:Action header is required"),
        ),
        soap(
            "two wsa:Action headers",
            "Portal",
            raw_env(S11, &format!("{action}{action}"), &body_grp),
            wsa_fault("more than one wsa:Action"),
        ),
        soap(
            "ReplyTo another host",
            "Portal",
            raw_env(
                S11,
                &format!("{action}<wsa:ReplyTo><wsa:Address>http://127.0.0.1:9/steal</wsa:Address></wsa:ReplyTo>"),
                &body_grp,
            ),
            wsa_fault("replies go back on the HTTP response only"),
        ),
        soap(
            "FaultTo a file",
            "Portal",
            raw_env(
                S11,
                &format!("{action}<wsa:FaultTo><wsa:Address>file:///etc/passwd</wsa:Address></wsa:FaultTo>"),
                &body_grp,
            ),
            wsa_fault("replies go back on the HTTP response only"),
        ),
        soap(
            "ReplyTo without an Address",
            "Portal",
            raw_env(S11, &format!("{action}<wsa:ReplyTo/>"), &body_grp),
            wsa_fault("has no wsa:Address"),
        ),
        soap(
            "two Bodies",
            "Portal",
            format!("<s:Envelope xmlns:s=\"{S11}\" xmlns:wsa=\"{WSA}\"><s:Header>{action}</s:Header><s:Body>{body_grp}</s:Body><s:Body/></s:Envelope>"),
            fault(500, "BaseFault", None, "unexpected element"),
        ),
        soap(
            "Header after Body",
            "Portal",
            format!("<s:Envelope xmlns:s=\"{S11}\" xmlns:wsa=\"{WSA}\"><s:Body>{body_grp}</s:Body><s:Header>{action}</s:Header></s:Envelope>"),
            fault(500, "BaseFault", None, "unexpected element"),
        ),
        soap(
            "no Body",
            "Portal",
            format!("<s:Envelope xmlns:s=\"{S11}\" xmlns:wsa=\"{WSA}\"><s:Header>{action}</s:Header></s:Envelope>"),
            fault(500, "BaseFault", None, "has no Body"),
        ),
        soap(
            "mustUnderstand header nobody understands",
            "Portal",
            raw_env(
                S11,
                &format!("{action}<x:Evil xmlns:x=\"urn:evil\" s:mustUnderstand=\"1\">obey</x:Evil>"),
                &body_grp,
            ),
            fault(500, "BaseFault", None, "not understood: {urn:evil}Evil"),
        ),
        soap(
            "Create in the 2004 CDDLM namespace",
            "Portal",
            raw_env(
                S11,
                &create_action,
                "<api:createRequest xmlns:api=\"http://www.gridforum.org/cddlm/deployapi/2004/10\"/>",
            ),
            base(v, "body-mismatch", "does not match the action"),
        ),
        soap(
            "unqualified body element",
            "Portal",
            raw_env(S11, &create_action, "<createRequest/>"),
            base(v, "body-mismatch", "does not match the action"),
        ),
        soap(
            "empty Body",
            "Portal",
            raw_env(S11, &create_action, ""),
            base(v, "body-mismatch", "nothing"),
        ),
        soap(
            "unknown action",
            "Portal",
            raw_env(S11, "<wsa:Action>urn:evil:Action</wsa:Action>", &body_grp),
            fault(500, "BaseFault", None, "does not support action urn:evil:Action"),
        ),
        soap(
            "Create at the System endpoint",
            "System",
            envelope(S11, vcds_api::ops::CREATE, Some(&ids.system), &ops::create_body()),
            fault(500, "BaseFault", None, "does not support action"),
        ),
        soap(
            "ResourceId in a foreign namespace",
            "System",
            raw_env(
                S11,
                &format!("{action}<v:ResourceId xmlns:v=\"urn:evil\">{}</v:ResourceId>", ids.system),
                &grp_body("api:CreatedTime"),
            ),
            fault(500, "ResourceUnknownFault", None, "no vcds:ResourceId"),
        ),
        soap(
            "property QName with an undeclared prefix",
            "Portal",
            envelope(S11, GRP, None, &grp_body("zz:ActiveSystems")),
            fault(500, "InvalidResourcePropertyQNameFault", None, "zz:ActiveSystems"),
        ),
        soap(
            "property in the wrong namespace",
            "Portal",
            envelope(
                S11,
                GRP,
                None,
                &format!("<rp:GetResourceProperty xmlns:rp=\"{RP}\" xmlns:x=\"urn:evil\">x:ActiveSystems</rp:GetResourceProperty>"),
            ),
            fault(500, "InvalidResourcePropertyQNameFault", None, "ActiveSystems"),
        ),
        soap(
            "Query in an unknown dialect",
            "Portal",
            envelope(
                S11,
                actions::QUERY_RP,
                None,
                &format!("<rp:QueryResourceProperties xmlns:rp=\"{RP}\"><rp:QueryExpression Dialect=\"urn:evil:sql\">SELECT * FROM resources</rp:QueryExpression></rp:QueryResourceProperties>"),
            ),
            fault(500, "UnknownQueryExpressionDialectFault", None, "urn:evil:sql"),
        ),
        soap(
            "Subscribe to a topic in a foreign namespace",
            "Portal",
            envelope(
                S11,
                actions::SUBSCRIBE,
                None,
                &ops::subscribe_body("http://127.0.0.1:9/c", Some("v:ActiveSystems")),
            ),
            fault(500, "TopicNotSupportedFault", None, "ActiveSystems"),
        ),
        case(
            "HTTP action differs from wsa:Action",
            Wire::Bytes(http_request(
                "POST",
                "/wsrf/services/Portal",
                &[
                    ("Content-Type", "text/xml"),
                    ("SOAPAction", "\"urn:evil:Other\""),
                ],
                envelope(S11, GRP, None, &body_grp).as_bytes(),
            )),
            wsa_fault("differs from wsa:Action"),
        ),
    ];
    for content_type in [
        "application/json",
        "text/html",
        "multipart/related; type=\"text/xml\"",
    ] {
        cases.push(case(
            format!("content type {content_type}"),
            post_wire(
                "/wsrf/services/Portal",
                content_type,
                envelope(S11, GRP, None, &body_grp).as_bytes(),
            ),
            base(v, "content-type", "is not SOAP"),
        ));
    }
    cases.push(case(
        "no content type",
        Wire::Bytes(http_request(
            "POST",
            "/wsrf/services/Portal",
            &[],
            envelope(S11, GRP, None, &body_grp).as_bytes(),
        )),
        base(v, "content-type", "is not SOAP"),
    ));
    cases
}

fn reference_parameter_cases(ids: &Ids) -> Vec<Case> {
    let v = V::S11;
    let unknown = |reason: &str| fault(500, "ResourceUnknownFault", None, reason);
    let mut cases = Vec::new();
    // Missing, on every operation that needs one.
    let consumer = "http://127.0.0.1:9/c";
    for op in ops::system_ops(consumer)
        .into_iter()
        .chain(ops::subscription_ops())
    {
        cases.push(case(
            format!("no reference parameter: {} {}", op.endpoint, op.name),
            op_wire(v, &op, None),
            unknown("no vcds:ResourceId reference parameter"),
        ));
    }
    // Forged.
    let long = "a".repeat(10_000);
    let forged: Vec<(&str, String, String)> = vec![
        (
            "made-up id",
            "00000000-0000-4000-8000-000000000000".into(),
            "00000000-0000-4000-8000-000000000000".into(),
        ),
        ("empty id", String::new(), "\"\"".into()),
        ("blank id", "   ".into(), "\"\"".into()),
        ("10,000-character id", long.clone(), long[..100].to_string()),
        ("SQL in the id", "' OR '1'='1' --".into(), "OR".into()),
        (
            "SQL statement in the id",
            "1; DROP TABLE resources".into(),
            "DROP TABLE".into(),
        ),
        (
            "path in the id",
            "../../etc/passwd".into(),
            "../../etc/passwd".into(),
        ),
        ("the Portal's id", "portal".into(), "\"portal\"".into()),
        (
            "a subscription's id",
            ids.subscription.clone(),
            ids.subscription.clone(),
        ),
        ("wildcard id", "*".into(), "\"*\"".into()),
        ("LIKE wildcard id", "%".into(), "\"%\"".into()),
        ("element inside the id", "<b>x</b>".into(), "\"\"".into()),
    ];
    for (what, id, reason) in &forged {
        for name in ["Ping", "SetResourceProperties", "Destroy"] {
            let op = ops::system_ops(consumer)
                .into_iter()
                .find(|o| o.name == name)
                .unwrap();
            cases.push(case(
                format!("{what}: System {name}"),
                op_wire(v, &op, Some(id)),
                unknown(reason),
            ));
        }
    }
    let renew = ops::subscription_ops()
        .into_iter()
        .find(|o| o.name == "Renew")
        .unwrap();
    for (what, id) in [
        ("a System's id", ids.system.as_str()),
        ("the Portal's id", "portal"),
        ("made-up id", "11111111-1111-4111-8111-111111111111"),
    ] {
        cases.push(case(
            format!("{what}: Subscription Renew"),
            op_wire(v, &renew, Some(id)),
            unknown(id),
        ));
    }
    // Two reference parameters: which one was meant is not guessed.
    let ping = ops::system_ops(consumer)
        .into_iter()
        .find(|o| o.name == "Ping")
        .unwrap();
    for (first, second) in [
        (ids.system.as_str(), "00000000-0000-4000-8000-000000000000"),
        ("00000000-0000-4000-8000-000000000000", ids.system.as_str()),
    ] {
        let text = envelope(S11, &ping.action, Some(first), &ping.body).replace(
            "</s:Header>",
            &format!("<v:ResourceId xmlns:v=\"{VCDS}\" wsa:IsReferenceParameter=\"true\">{second}</v:ResourceId></s:Header>"),
        );
        cases.push(case(
            format!("two ResourceIds, {first} first"),
            soap_wire(v, "System", text.as_bytes()),
            unknown("more than one vcds:ResourceId"),
        ));
    }
    for (what, id) in [
        ("empty", ""),
        ("a subscription's id", ids.subscription.as_str()),
        ("the Portal's id", "portal"),
        ("SQL", "' OR 1=1 --"),
        ("10,000 characters", long.as_str()),
    ] {
        cases.push(case(
            format!("LookupSystem of {what}"),
            op_wire(v, &ops::lookup_system(id), None),
            unknown(&id[..id.len().min(100)]),
        ));
    }
    cases
}

fn injection_cases() -> Vec<Case> {
    let v = V::S11;
    let mut cases = Vec::new();
    let unknown = "is not a resource property of this resource";
    let invalid = "is not a valid QName";
    for (qname, reason) in [
        ("x'; DROP TABLE resources;--", unknown),
        ("api:ActiveSystems' or '1'='1", unknown),
        ("${jndi:ldap://127.0.0.1:9/a}", invalid),
        ("%s%s%s%n", unknown),
        ("&lt;script&gt;alert(1)&lt;/script&gt;", unknown),
        ("$(reboot)", unknown),
        ("`id`", unknown),
        ("../../etc/passwd", unknown),
        ("api:", invalid),
        (":ActiveSystems", invalid),
        ("api:Active Systems", unknown),
    ] {
        cases.push(case(
            format!("injection in a property QName: {qname}"),
            soap_wire(
                v,
                "Portal",
                envelope(S11, GRP, None, &grp_body(qname)).as_bytes(),
            ),
            fault(500, "InvalidResourcePropertyQNameFault", None, reason),
        ));
    }
    let query = |expr: &str| {
        format!("<rp:QueryResourceProperties xmlns:rp=\"{RP}\"><rp:QueryExpression Dialect=\"{}\">{expr}</rp:QueryExpression></rp:QueryResourceProperties>", ops::XPATH)
    };
    for (expr, element) in [
        (
            "document('file:///etc/passwd')",
            "QueryEvaluationErrorFault",
        ),
        ("/*] | //*[", "InvalidQueryExpressionFault"),
        ("//*[", "InvalidQueryExpressionFault"),
        ("concat(", "InvalidQueryExpressionFault"),
        ("$secret", "QueryEvaluationErrorFault"),
        ("'; DROP TABLE resources; --", "InvalidQueryExpressionFault"),
    ] {
        let status = if element == "QueryEvaluationErrorFault" {
            500
        } else {
            v.sender()
        };
        cases.push(case(
            format!("XPath {expr}"),
            soap_wire(
                v,
                "Portal",
                envelope(S11, actions::QUERY_RP, None, &query(expr)).as_bytes(),
            ),
            fault(status, element, None, ""),
        ));
    }
    for (topic, element) in [
        ("api:ActiveSystems' or '1'='1", "TopicNotSupportedFault"),
        ("api:ActiveSystems/../../etc", "InvalidTopicExpressionFault"),
        (
            "${jndi:ldap://127.0.0.1:9/a}",
            "InvalidTopicExpressionFault",
        ),
        ("api:NoSuchTopic", "TopicNotSupportedFault"),
    ] {
        cases.push(case(
            format!("topic {topic}"),
            soap_wire(
                v,
                "Portal",
                envelope(
                    S11,
                    actions::SUBSCRIBE,
                    None,
                    &ops::subscribe_body("http://127.0.0.1:9/c", Some(topic)),
                )
                .as_bytes(),
            ),
            fault(500, element, None, ""),
        ));
    }
    cases
}

fn traversal_cases(ids: &Ids) -> Vec<Case> {
    let v = V::S11;
    let system_action = |name: &str| {
        format!("http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/SystemEPR/{name}Request")
    };
    let add_file = |name: &str, data: &str| {
        soap_wire(
            v,
            "System",
            envelope(
                S11,
                &system_action("AddFile"),
                Some(&ids.system),
                &ops::add_file_b64(name, data),
            )
            .as_bytes(),
        )
    };
    let bad_argument = |reason: &str| fault(500, "BadArgumentFault", Some("bad-argument"), reason);
    let data = base64::engine::general_purpose::STANDARD.encode("<x/>");
    let mut cases = Vec::new();
    let long_name = "n".repeat(129);
    for name in [
        "../x",
        "..",
        "/etc/passwd",
        "a/../../b",
        "..\\x",
        "C:\\x",
        "C:x",
        "file:///etc/passwd",
        "./x",
        "x/",
        "\\\\server\\share",
        "....",
        "a&#9;b",
        "a&#x7f;b",
        "a&#x85;b",
        "'; cat /etc/passwd #",
        "$(rm -rf /)",
        long_name.as_str(),
        "",
    ] {
        cases.push(case(
            format!("AddFile name {name:?}"),
            add_file(name, &data),
            bad_argument("file name"),
        ));
    }
    let too_big = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; 1024 * 1024 + 1]);
    for (what, data) in [
        ("data not base64", "!!not base64!!"),
        ("no data", ""),
        ("data over 1 MiB", too_big.as_str()),
    ] {
        cases.push(case(
            format!("AddFile {what}"),
            add_file("ok.cdl", data),
            bad_argument(""),
        ));
    }
    let by_uri = |uri: &str| {
        let body = format!("<api:addFileRequest xmlns:api=\"{API}\"><api:name>fetched.cdl</api:name><api:mimetype>application/xml</api:mimetype><api:uri>{uri}</api:uri></api:addFileRequest>");
        soap_wire(
            v,
            "System",
            envelope(S11, &system_action("AddFile"), Some(&ids.system), &body).as_bytes(),
        )
    };
    let src = ids.source.as_str();
    let outside = "is not under a source";
    for (uri, reason) in [
        ("file:///etc/passwd".to_string(), outside),
        (format!("{src}../secret"), outside),
        (format!("{src}%2e%2e/secret"), outside),
        (format!("{src}%2E%2E/%2E%2E/etc/passwd"), outside),
        (format!("{}-evil/x.cdl", src.trim_end_matches('/')), outside),
        (format!("{src}passwd"), "is not a file under"),
        (format!("{src}missing.cdl"), "cannot be read"),
        (src.to_string(), "is not a file under"),
        ("http://127.0.0.1:9/evil.cdl".to_string(), outside),
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            outside,
        ),
        (
            "ftp://127.0.0.1/x.cdl".to_string(),
            "scheme \"ftp\" is not supported",
        ),
        ("gopher://127.0.0.1:70/x".to_string(), "is not supported"),
        ("jar:file:///x.jar!/y".to_string(), "is not supported"),
        ("../../etc/passwd".to_string(), "is not a URI"),
        ("".to_string(), "is not a URI"),
    ] {
        cases.push(case(
            format!("AddFile api:uri {uri:?}"),
            by_uri(&uri),
            bad_argument(reason),
        ));
    }
    for reference in [
        "../../etc/passwd",
        "/etc/passwd",
        "file:///etc/passwd",
        "http://127.0.0.1:9/evil.cdl",
        "descriptor",
        "..",
        "~/.ssh/id_rsa",
    ] {
        let body = format!("<api:initializeRequest xmlns:api=\"{API}\"><api:descriptor api:language=\"{CDL}\"><api:reference>{reference}</api:reference></api:descriptor></api:initializeRequest>");
        cases.push(case(
            format!("Initialize by reference {reference:?}"),
            soap_wire(
                v,
                "System",
                envelope(S11, &system_action("Initialize"), Some(&ids.system), &body).as_bytes(),
            ),
            bad_argument("names no text file"),
        ));
    }
    for (location, reason) in [
        ("../../etc/passwd", "climbs above its base"),
        ("a/../../x.cdl", "climbs above its base"),
        ("/etc/passwd", "no document named"),
        ("file:///etc/passwd", "no document named"),
        ("http://127.0.0.1:9/evil.cdl", "no document named"),
        ("https://127.0.0.1:9/evil.cdl", "no document named"),
        ("ftp://127.0.0.1/x.cdl", "no document named"),
        ("\\\\host\\share\\x.cdl", "no document named"),
        ("..\\..\\x.cdl", "no document named"),
        ("%2e%2e/%2e%2e/etc/passwd", "no document named"),
    ] {
        let cdl = ops::small_cluster().replace(
            "<cdl:import location=\"vcds:cluster\"/>",
            &format!(
                "<cdl:import location=\"vcds:cluster\"/><cdl:import location=\"{location}\"/>"
            ),
        );
        cases.push(case(
            format!("CDL import {location:?}"),
            soap_wire(
                v,
                "System",
                envelope(
                    S11,
                    &system_action("Initialize"),
                    Some(&ids.system),
                    &ops::initialize_inline(&cdl),
                )
                .as_bytes(),
            ),
            fault(500, "ResolutionFault", Some("cdl-resolution"), reason),
        ));
    }
    for consumer in [
        "file:///etc/passwd",
        "ftp://127.0.0.1/x",
        "javascript:alert(1)",
        "gopher://127.0.0.1:70/x",
        "http://",
        "http:///etc/passwd",
        "//127.0.0.1/x",
        "/etc/passwd",
        "127.0.0.1:9",
        "http://a b/",
    ] {
        cases.push(case(
            format!("consumer address {consumer:?}"),
            soap_wire(
                v,
                "System",
                envelope(
                    S11,
                    actions::SUBSCRIBE,
                    Some(&ids.system),
                    &ops::subscribe_body(consumer, None),
                )
                .as_bytes(),
            ),
            fault(
                500,
                "SubscribeCreationFailedFault",
                None,
                "not an absolute http(s) URI",
            ),
        ));
    }
    for path in [
        "/schemas/../Cargo.toml",
        "/schemas/%2e%2e/Cargo.toml",
        "/wsdl/../../../../etc/passwd",
        "/wsdl/..%2f..%2f..%2fetc%2fpasswd",
        "/schemas/oasis/../../../../../../etc/passwd",
        "/schemas//etc/passwd",
    ] {
        cases.push(case(
            format!("GET {path}"),
            Wire::Bytes(http_request("GET", path, &[], b"")),
            status(404),
        ));
    }
    cases
}

fn tls_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    // The PKI lists what must be refused and how. TLS 1.2 reports the refusal as an alert in
    // the handshake; TLS 1.3 after the client's handshake, as an alert or a reset.
    for (credential, alert) in secure::refused() {
        let alert: &'static str = Box::leak(alert.into_boxed_str());
        for (version, alert) in [(SslVersion::TLS1_2, alert), (SslVersion::TLS1_3, "")] {
            cases.push(case(
                format!("TLS {version:?} with {credential:?}"),
                Wire::Tls {
                    credential,
                    version,
                },
                Expect::Closed { alert },
            ));
        }
    }
    cases.push(case(
        "TLS as mallory (not in the grid-mapfile)",
        Wire::Tls {
            credential: Some("mallory.pem"),
            version: SslVersion::TLS1_3,
        },
        Expect::Http {
            status: 403,
            contains: "access denied",
        },
    ));
    cases.push(case(
        "plain HTTP to the TLS port",
        Wire::PlainToTls,
        Expect::Closed { alert: "" },
    ));
    cases.push(case(
        "TCP connect to the TLS port, no handshake",
        Wire::Silent { tls: true },
        Expect::Closed { alert: "" },
    ));
    cases
}

/// Sends `bytes` and reads the answer at the same time, so a server that answers before reading
/// everything (as it should for an oversized body) is heard.
fn exchange(stream: TcpStream, bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let sender = std::thread::spawn(move || {
        // The server may close early; the answer is what counts.
        let _ = writer.write_all(&bytes);
    });
    let mut answer = Vec::new();
    let mut reader = stream;
    let read = reader.read_to_end(&mut answer);
    let _ = sender.join();
    match read {
        Ok(_) => Ok(answer),
        Err(_) if !answer.is_empty() => Ok(answer),
        Err(e) => Err(e.to_string()),
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// Runs one case against the plain server (`plain`) or the TLS one (`tls`).
fn send(wire: &Wire, plain: SocketAddr, tls: SocketAddr) -> Result<Reply, String> {
    match wire {
        Wire::Bytes(bytes) => parse_http(&exchange(connect(plain), bytes.clone())?),
        Wire::Slow {
            head,
            pieces,
            pause,
        } => {
            let mut stream = connect(plain);
            let _ = stream.write_all(head);
            for piece in pieces {
                std::thread::sleep(*pause);
                if stream.write_all(piece).is_err() {
                    break;
                }
            }
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            parse_http(&answer)
        }
        Wire::Silent { tls: to_tls } => {
            let mut stream = connect(if *to_tls { tls } else { plain });
            let mut answer = Vec::new();
            match stream.read_to_end(&mut answer) {
                Ok(_) if answer.is_empty() => Err("closed".into()),
                Ok(_) => parse_http(&answer),
                Err(e) => Err(e.to_string()),
            }
        }
        Wire::Tls {
            credential,
            version,
        } => secure::https(
            tls,
            *credential,
            *version,
            &http_request("GET", "/wsrf/services/Portal?wsdl", &[], b""),
        ),
        Wire::PlainToTls => parse_http(&exchange(
            connect(tls),
            http_request("GET", "/wsrf/services/Portal?wsdl", &[], b""),
        )?),
    }
}

/// (fault element, ErrorCode, reason) of a SOAP 1.1 or 1.2 fault.
fn fault_parts(text: &str) -> Result<(String, Option<String>, String), String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("{e}: {text}"))?;
    let find = |local: &str| doc.descendants().find(|n| n.tag_name().name() == local);
    let detail = find("detail")
        .or_else(|| find("Detail"))
        .ok_or_else(|| format!("not a fault: {text}"))?;
    let element = detail
        .first_element_child()
        .map(|e| e.tag_name().name().to_string())
        .unwrap_or_default();
    let code = find("ErrorCode").and_then(|n| n.text().map(str::to_string));
    let reason = find("faultstring")
        .or_else(|| find("Reason").and_then(|r| r.first_element_child()))
        .and_then(|n| n.text().map(str::to_string))
        .unwrap_or_default();
    Ok((element, code, reason))
}

fn check(case: &Case, result: Result<Reply, String>) -> Result<(), String> {
    if let Ok(reply) = &result {
        for secret in [PASSWD, "BEGIN EC PRIVATE KEY", "BEGIN PRIVATE KEY"] {
            if reply.text.contains(secret) {
                return Err(format!("leaked {secret:?}"));
            }
        }
    }
    match (&case.expect, result) {
        (Expect::Closed { alert }, Err(e)) if e.contains(alert) => Ok(()),
        (Expect::Closed { alert }, Err(e)) => Err(format!("expected {alert:?}, got {e}")),
        (Expect::Closed { .. }, Ok(reply)) => Err(format!(
            "expected no HTTP answer, got {}: {}",
            reply.status, reply.text
        )),
        (_, Err(e)) => Err(format!("no answer: {e}")),
        (Expect::Http { status, contains }, Ok(reply)) => {
            if reply.status == *status && reply.text.contains(contains) {
                Ok(())
            } else {
                Err(format!(
                    "expected HTTP {status} with {contains:?}, got {}: {}",
                    reply.status,
                    &reply.text[..reply.text.len().min(300)]
                ))
            }
        }
        (
            Expect::Fault {
                status,
                element,
                code,
                reason,
            },
            Ok(reply),
        ) => {
            let (got_element, got_code, got_reason) = fault_parts(&reply.text)?;
            let ok = reply.status == *status
                && got_element == *element
                && got_code.as_deref() == *code
                && got_reason.contains(reason.as_str());
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "expected {status} {element} {code:?} {reason:?}, got {} {got_element} {got_code:?} {got_reason:?}",
                    reply.status
                ))
            }
        }
    }
}

/// Resident and peak memory of this process (the server runs in it), in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    actix_rt::task::spawn_blocking(f).await.unwrap()
}

#[actix_rt::test]
async fn hostile_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("vcds.db").display());
    let mut config = vcds_server::Config::new("127.0.0.1:0", db.clone());
    config.site = vcds_server::Site::Simulated(vcds_manager::sim::Simulated {
        step: Duration::from_secs(3600),
        ..Default::default()
    });
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    std::fs::write(files.join("ok.cdl"), "<x/>").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", files.join("passwd")).unwrap();
    let source = format!("file://{}/", files.display());
    config.addfile_sources = vec![vcds_api::fetch::parse_source(&source).unwrap()];
    config.body_deadline = Duration::from_secs(1);
    config.head_deadline = Duration::from_secs(1);
    config.workers = 2;
    let started = vcds_server::start(config).await.unwrap();
    let plain = started.addrs[0];
    let state = started.state.clone();
    let plain_handle = started.server.handle();
    actix_rt::spawn(started.server);
    let secure = Secure::start(|_| {}).await;
    let tls = secure.addr;

    let ids = blocking(move || {
        let create = op_wire(
            V::S11,
            &Op {
                name: "Create",
                endpoint: "Portal",
                action: vcds_api::ops::CREATE.to_string(),
                body: ops::create_body(),
            },
            None,
        );
        let system = send(&create, plain, tls)
            .unwrap()
            .ok()
            .text_of("ResourceId")
            .unwrap();
        let subscribe = soap_wire(
            V::S11,
            "System",
            envelope(
                S11,
                actions::SUBSCRIBE,
                Some(&system),
                &ops::subscribe_body("http://127.0.0.1:9/c", None),
            )
            .as_bytes(),
        );
        let subscription = send(&subscribe, plain, tls)
            .unwrap()
            .ok()
            .text_of("ResourceId")
            .unwrap();
        Ids {
            source: source.clone(),
            system,
            subscription,
        }
    })
    .await;

    let mut cases = manifest_cases();
    cases.extend(nesting_cases());
    cases.extend(shape_and_size_cases());
    cases.extend(slow_cases());
    cases.extend(encoding_cases());
    cases.extend(envelope_cases(&ids));
    cases.extend(reference_parameter_cases(&ids));
    cases.extend(injection_cases());
    cases.extend(traversal_cases(&ids));
    cases.extend(tls_cases());
    let total = cases.len();
    assert!(total >= 200, "only {total} hostile cases");

    let snapshot = |state: &vcds_server::AppState| state.manager.registry().select(|_| true);
    let before = snapshot(&state);
    let rows_before = vcds_store::Store::open(&db)
        .unwrap()
        .load_all()
        .unwrap()
        .len();
    let tls_before = secure.snapshot();
    let memory_before = memory_kib();

    let (failures, slowest) = blocking(move || {
        let alive = envelope(
            S11,
            actions::GET_RP_DOCUMENT,
            None,
            &format!("<rp:GetResourcePropertyDocument xmlns:rp=\"{RP}\"/>"),
        );
        let mut failures = Vec::new();
        let mut slowest = (Duration::ZERO, String::new());
        for case in &cases {
            let t0 = Instant::now();
            if let Err(e) = check(case, send(&case.wire, plain, tls)) {
                failures.push(format!("{}: {e}", case.name));
            }
            let took = t0.elapsed();
            // Slow bodies take about the 1 s deadline, a silent TLS client the 3 s handshake
            // timeout; anything much slower is the server struggling.
            if took > Duration::from_secs(8) {
                failures.push(format!("{}: took {took:?}", case.name));
            }
            if took > slowest.0 {
                slowest = (took, case.name.clone());
            }
            // The service still answers, on both ports.
            let live = send(&soap_wire(V::S11, "Portal", alive.as_bytes()), plain, tls);
            assert!(
                live.as_ref().is_ok_and(|r| r.status == 200),
                "after {:?} the service no longer answers: {live:?}",
                case.name
            );
            let live = secure::https(
                tls,
                Some("alice.pem"),
                SslVersion::TLS1_3,
                &http_request("GET", "/wsrf/services/Portal?wsdl", &[], b""),
            );
            assert!(
                live.as_ref().is_ok_and(|r| r.status == 200),
                "after {:?} the TLS service no longer answers: {live:?}",
                case.name
            );
        }
        (failures, slowest)
    })
    .await;
    assert!(
        failures.is_empty(),
        "{} of {total} hostile cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Nothing stored: the same resources in memory and in the database.
    let after = snapshot(&state);
    assert_eq!(before.len(), after.len(), "resources came or went");
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(**b, **a, "a resource changed");
    }
    let rows_after = vcds_store::Store::open(&db)
        .unwrap()
        .load_all()
        .unwrap()
        .len();
    assert_eq!(rows_before, rows_after, "rows came or went");
    assert_eq!(
        secure.snapshot(),
        tls_before,
        "the TLS server stored something"
    );

    // Memory stayed bounded: the corpus sends 5 MiB bodies and 100,000-deep documents, none
    // of which may be kept or blown up.
    let memory_after = memory_kib();
    let grown = memory_after.0.saturating_sub(memory_before.0);
    eprintln!(
        "{total} hostile cases; RSS {} → {} KiB, peak {} KiB; slowest {:?} ({})",
        memory_before.0, memory_after.0, memory_after.1, slowest.0, slowest.1
    );
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
    assert!(
        memory_after.1 < 256 * 1024,
        "peak RSS {} KiB",
        memory_after.1
    );
    plain_handle.stop(true).await;
    secure.handle.stop(true).await;
}

/// Injection-looking text where text is allowed is data: stored and returned verbatim, never
/// interpreted, and the store keeps working.
#[actix_rt::test]
async fn injection_looking_values_are_plain_data() {
    use actix_web::{test, web, App};
    let dir = tempfile::tempdir().unwrap();
    let config = vcds_server::Config::new(
        "127.0.0.1:0",
        format!("sqlite://{}", dir.path().join("vcds.db").display()),
    );
    let state = web::Data::new(vcds_server::AppState::open(&config).unwrap());
    let app = test::init_service(App::new().configure(|c| state.configure(c))).await;
    let call = |resource: Option<String>, action: &str, body: String| {
        let endpoint = if resource.is_some() {
            "System"
        } else {
            "Portal"
        };
        (endpoint, envelope(S11, action, resource.as_deref(), &body))
    };
    let (endpoint, text) = call(None, vcds_api::ops::CREATE, ops::create_body());
    let id = post(&app, endpoint, "text/xml", text)
        .await
        .ok()
        .text_of("ResourceId")
        .unwrap();
    for value in [
        "'); DROP TABLE resources; --",
        "\" OR \"\"=\"",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "${jndi:ldap://127.0.0.1:9/a}",
        "%s%s%s%n",
        "../../etc/passwd",
        "\u{202e}txt.exe",
    ] {
        let (endpoint, text) = call(
            Some(id.clone()),
            actions::SET_RP,
            format!("<rp:SetResourceProperties xmlns:rp=\"{RP}\"><rp:Update><v:Description xmlns:v=\"{VCDS}\">{value}</v:Description></rp:Update></rp:SetResourceProperties>"),
        );
        post(&app, endpoint, "text/xml", text).await.ok();
        let (endpoint, text) = call(
            Some(id.clone()),
            GRP,
            format!("<rp:GetResourceProperty xmlns:rp=\"{RP}\" xmlns:v=\"{VCDS}\">v:Description</rp:GetResourceProperty>"),
        );
        let reply = post(&app, endpoint, "text/xml", text).await.ok();
        let expected = value.replace("&lt;", "<").replace("&gt;", ">");
        assert_eq!(
            reply.text_of("Description").as_deref(),
            Some(expected.as_str())
        );
    }
    // The table the SQL named is still there: a restart loads the System back.
    drop(app);
    let reopened = vcds_server::AppState::open(&config).unwrap();
    assert!(reopened.manager.registry().get(&id).is_some());
}
