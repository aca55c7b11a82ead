//! Resolution semantics on small inline documents: extends, references, lazy references,
//! imports, cycles and document-level validation.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use vcds_cdl::{
    resolve, resolve_path, CdlError, DocId, MemoryResolver, PathError, ResolvedDocument,
};

const HEAD: &str = r#"<cdl:cdl xmlns:cdl="http://www.gridforum.org/namespaces/2005/02/cddlm/CDL-1.0" xmlns:p="urn:p">"#;

fn doc(body: &str) -> String {
    format!("{HEAD}{body}</cdl:cdl>")
}

fn ok_with(body: &str, files: &MemoryResolver) -> ResolvedDocument {
    match resolve(&doc(body), &DocId::new("main.cdl"), files) {
        Ok(d) => d,
        Err(e) => panic!("expected success, got {e}"),
    }
}

fn ok(body: &str) -> ResolvedDocument {
    ok_with(body, &MemoryResolver::new())
}

fn err_with(body: &str, files: &MemoryResolver) -> CdlError {
    match resolve(&doc(body), &DocId::new("main.cdl"), files) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn err(body: &str) -> CdlError {
    err_with(body, &MemoryResolver::new())
}

fn value<'d>(d: &'d ResolvedDocument, path: &str) -> &'d str {
    match resolve_path(d, path) {
        Ok(e) => e.value(),
        Err(e) => panic!("{path}: {e}"),
    }
}

#[test]
fn multi_level_extends_merges_and_overrides() {
    let d = ok(r#"<cdl:configuration>
        <p:Base><port>80</port><host>localhost</host><opts><a>1</a></opts></p:Base>
        <p:Mid cdl:extends="p:Base"><port>8080</port><opts><b>2</b></opts></p:Mid>
        <p:Top cdl:extends="p:Mid" kind="top"><host>example</host></p:Top>
      </cdl:configuration>
      <cdl:system><web cdl:extends="p:Top"><opts><a>9</a></opts></web></cdl:system>"#);
    assert_eq!(value(&d, "/web/port"), "8080");
    assert_eq!(value(&d, "/web/host"), "example");
    assert_eq!(value(&d, "web/opts/a"), "9");
    assert_eq!(value(&d, "/web/opts/b"), "2");
    let web = resolve_path(&d, "/web").unwrap();
    assert_eq!(
        web.attribute(&vcds_xml::QName::new("", "kind")),
        Some("top")
    );
    let lineage: Vec<String> = web.derived_from.iter().map(|q| q.local.clone()).collect();
    assert_eq!(lineage, ["Top", "Mid", "Base"]);
}

#[test]
fn repeated_children_merge_by_occurrence_and_extra_ones_are_appended() {
    let d = ok(
        r#"<cdl:configuration><p:L><app>a</app><app>b</app></p:L></cdl:configuration>
      <cdl:system><x cdl:extends="p:L"><app>A</app><app>B</app><app>C</app></x></cdl:system>"#,
    );
    let x = resolve_path(&d, "/x").unwrap();
    let apps: Vec<&str> = x.children.iter().map(|c| c.value()).collect();
    assert_eq!(apps, ["A", "B", "C"]);
}

#[test]
fn unknown_prototype_is_reported_with_location() {
    let e = err(r#"<cdl:system>
  <web cdl:extends="p:Nope"/></cdl:system>"#);
    match &e {
        CdlError::UnknownPrototype { at, name } => {
            assert_eq!(name, "p:Nope");
            assert_eq!(at.path, "/cdl:cdl/cdl:system/web");
            assert_eq!(at.line, 2);
            assert_eq!(at.column, 3);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        e.to_string()
            .contains("main.cdl:2:3 at /cdl:cdl/cdl:system/web"),
        "{e}"
    );
}

#[test]
fn cyclic_extends_reports_the_chain() {
    let e = err(
        r#"<cdl:configuration><p:A cdl:extends="p:B"/><p:B cdl:extends="p:A"/></cdl:configuration>"#,
    );
    match e {
        CdlError::CyclicExtends { chain, .. } => assert_eq!(chain, ["p:A", "p:B", "p:A"]),
        other => panic!("{other:?}"),
    }
    let e = err(r#"<cdl:configuration><p:A><inner cdl:extends="p:A"/></p:A></cdl:configuration>"#);
    assert!(
        matches!(e, CdlError::CyclicExtends { ref chain, .. } if chain == &["p:A", "p:A"]),
        "{e:?}"
    );
}

#[test]
fn references_relative_parent_absolute_and_prefixed() {
    let d = ok(
        r#"<cdl:configuration><p:Srv><p:port>80</p:port><url cdl:ref="p:port"/></p:Srv></cdl:configuration>
      <cdl:system>
        <host>h1</host>
        <web cdl:extends="p:Srv"><p:port>81</p:port><where cdl:ref="../host"/><abs cdl:ref="/host"/><self cdl:ref="./p:port"/></web>
      </cdl:system>"#,
    );
    // the inherited reference is evaluated where the copy landed, after the override
    assert_eq!(value(&d, "/web/url"), "81");
    assert_eq!(value(&d, "/web/where"), "h1");
    assert_eq!(value(&d, "/web/abs"), "h1");
    assert_eq!(value(&d, "/web/self"), "81");
    assert!(d.lazy.is_empty());
}

#[test]
fn references_copy_subtrees_and_chain_through_references() {
    let d =
        ok(r#"<cdl:system><a><x>1</x><y>2</y></a><b cdl:ref="/c"/><c cdl:ref="/a"/></cdl:system>"#);
    assert_eq!(value(&d, "/b/x"), "1");
    assert_eq!(value(&d, "/c/y"), "2");
}

#[test]
fn refroot_reaches_configuration() {
    let d = ok(
        r#"<cdl:configuration><toplevel><value>v</value></toplevel><message>hi</message></cdl:configuration>
      <cdl:system><app><user cdl:ref="value" cdl:refroot="toplevel"/><m cdl:ref="/" cdl:refroot="message"/></app></cdl:system>"#,
    );
    assert_eq!(value(&d, "/app/user"), "v");
    assert_eq!(value(&d, "/app/m"), "hi");
}

#[test]
fn dangling_and_cyclic_references_fail_precisely() {
    let e = err(r#"<cdl:system><web><port cdl:ref="/nothing/here"/></web></cdl:system>"#);
    match e {
        CdlError::DanglingReference { at, path, reason } => {
            assert_eq!(path, "/nothing/here");
            assert_eq!(at.path, "/cdl:cdl/cdl:system/web/port");
            assert!(reason.contains("nothing"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let e = err(r#"<cdl:system><a cdl:ref="/b"/><b cdl:ref="/a"/></cdl:system>"#);
    match e {
        CdlError::CyclicReference { chain, .. } => assert_eq!(
            chain,
            [
                "/cdl:cdl/cdl:system/a",
                "/cdl:cdl/cdl:system/b",
                "/cdl:cdl/cdl:system/a"
            ]
        ),
        other => panic!("{other:?}"),
    }
    let e = err(r#"<cdl:system><a><b cdl:ref=".."/></a></cdl:system>"#);
    assert!(matches!(e, CdlError::CyclicReference { .. }), "{e:?}");
    let e = err(r#"<cdl:system><a cdl:ref="../../x"/></cdl:system>"#);
    assert!(
        matches!(e, CdlError::DanglingReference { ref reason, .. } if reason.contains("above the root")),
        "{e:?}"
    );
    let e = err(r#"<cdl:system><a cdl:ref="x" cdl:refroot="p:Missing"/></cdl:system>"#);
    assert!(
        matches!(e, CdlError::UnknownPrototype { ref name, .. } if name == "p:Missing"),
        "{e:?}"
    );
}

#[test]
fn invalid_paths_and_reference_content_are_refused() {
    let e = err(r#"<cdl:system><a cdl:ref="/webapps[@cdl:name='x']/app"/></cdl:system>"#);
    assert!(
        matches!(e, CdlError::InvalidPath { ref reason, .. } if reason.contains("XPath")),
        "{e:?}"
    );
    let e = err(r#"<cdl:system><a cdl:ref="q:x"/></cdl:system>"#);
    assert!(
        matches!(e, CdlError::InvalidPath { ref reason, .. } if reason.contains("undeclared prefix")),
        "{e:?}"
    );
    let long = vec!["a"; 65].join("/");
    let e = err(&format!(
        r#"<cdl:system><a cdl:ref="{long}"/></cdl:system>"#
    ));
    assert!(
        matches!(e, CdlError::InvalidPath { ref reason, .. } if reason.contains("64 steps")),
        "{e:?}"
    );
    let e = err(r#"<cdl:system><a cdl:ref="b//c"/></cdl:system>"#);
    assert!(matches!(e, CdlError::InvalidPath { .. }), "{e:?}");
    let e = err(r#"<cdl:system><b/><a cdl:ref="/b">text</a></cdl:system>"#);
    assert!(matches!(e, CdlError::ReferenceWithContent { .. }), "{e:?}");
    let e = err(r#"<cdl:system><b/><a cdl:ref="/b" cdl:lazy="maybe"/></cdl:system>"#);
    assert!(matches!(e, CdlError::InvalidLazy { .. }), "{e:?}");
    let e = err(r#"<cdl:system><a cdl:extends="zz:X"/></cdl:system>"#);
    assert!(matches!(e, CdlError::UndeclaredPrefix { .. }), "{e:?}");
}

#[test]
fn lazy_references_are_kept_and_resolve_on_demand() {
    let d = ok(
        r#"<cdl:configuration><toplevel><value>lazy-value</value></toplevel></cdl:configuration>
      <cdl:system><app><user cdl:ref="value" cdl:lazy="true" cdl:refroot="toplevel"/><later cdl:ref="/nowhere" cdl:lazy="true"/></app></cdl:system>"#,
    );
    assert_eq!(d.lazy.len(), 2);
    assert_eq!(d.lazy[0].at, "/app/user");
    assert_eq!(d.lazy[0].reference.path.text, "value");
    assert!(d.lazy[0].reference.lazy);
    let user = resolve_path(&d, "/app/user").unwrap();
    assert!(
        user.reference.is_none(),
        "following the lazy ref lands on the target"
    );
    assert_eq!(d.resolve_lazy(&d.lazy[0]).unwrap().value(), "lazy-value");
    // a lazy reference that points nowhere fails only when it is resolved
    assert!(matches!(
        d.resolve_lazy(&d.lazy[1]),
        Err(PathError::Dangling { .. })
    ));
    let xml = d.to_xml();
    assert!(
        xml.contains(r#"cdl:ref="value""#) && xml.contains(r#"cdl:lazy="true""#),
        "{xml}"
    );
}

#[test]
fn an_eager_reference_to_a_lazy_one_is_refused() {
    let e = err(
        r#"<cdl:system><x>1</x><l cdl:ref="/x" cdl:lazy="true"/><e cdl:ref="/l"/></cdl:system>"#,
    );
    assert!(matches!(e, CdlError::LazyTarget { .. }), "{e:?}");
}

#[test]
fn resolve_path_errors() {
    let d = ok(r#"<cdl:system><a><b>1</b></a></cdl:system>"#);
    assert_eq!(value(&d, "a/b"), "1");
    assert_eq!(value(&d, "/a/b/../b"), "1");
    assert!(matches!(
        resolve_path(&d, "/a/c"),
        Err(PathError::Dangling { .. })
    ));
    assert!(matches!(
        resolve_path(&d, "/.."),
        Err(PathError::Dangling { .. })
    ));
    assert!(matches!(
        resolve_path(&d, "/a[1]"),
        Err(PathError::Invalid { .. })
    ));
    assert!(matches!(
        resolve_path(&d, "zz:a"),
        Err(PathError::Invalid { .. })
    ));
}

#[test]
fn imports_are_relative_to_the_importer_and_cycles_are_caught() {
    let mut files = MemoryResolver::new();
    files.add("lib/base.cdl", doc(r#"<cdl:import location="more.cdl"/><cdl:configuration><p:Base><v>1</v></p:Base></cdl:configuration>"#));
    files.add("lib/more.cdl", doc(r#"<cdl:configuration><p:More cdl:extends="p:Base"><w>2</w></p:More></cdl:configuration>"#));
    let d = ok_with(
        r#"<cdl:import location="lib/base.cdl"/><cdl:system><m cdl:extends="p:More"/></cdl:system>"#,
        &files,
    );
    assert_eq!(value(&d, "/m/v"), "1");
    assert_eq!(value(&d, "/m/w"), "2");

    files.add("lib/loop.cdl", doc(r#"<cdl:import location="loop2.cdl"/>"#));
    files.add("lib/loop2.cdl", doc(r#"<cdl:import location="loop.cdl"/>"#));
    let e = err_with(r#"<cdl:import location="lib/loop.cdl"/>"#, &files);
    match e {
        CdlError::CyclicImport { chain, at } => {
            assert_eq!(chain, ["lib/loop.cdl", "lib/loop2.cdl", "lib/loop.cdl"]);
            assert_eq!(at.doc, DocId::new("lib/loop2.cdl"));
        }
        other => panic!("{other:?}"),
    }
    files.add("self.cdl", doc(r#"<cdl:import location="self.cdl"/>"#));
    let e = err_with(r#"<cdl:import location="self.cdl"/>"#, &files);
    assert!(
        matches!(e, CdlError::CyclicImport { ref chain, .. } if chain == &["self.cdl", "self.cdl"]),
        "{e:?}"
    );
    let e = err_with(r#"<cdl:import location="missing.cdl"/>"#, &files);
    assert!(
        matches!(e, CdlError::ImportNotFound { ref location, .. } if location == "missing.cdl"),
        "{e:?}"
    );
    let e = err_with(r#"<cdl:import location="../../escape.cdl"/>"#, &files);
    assert!(matches!(e, CdlError::ImportNotAllowed { .. }), "{e:?}");
    let e = err_with(r#"<cdl:import/>"#, &files);
    assert!(
        matches!(
            e,
            CdlError::MissingAttribute {
                attribute: "location",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn a_diamond_import_is_loaded_once_and_duplicates_across_documents_are_refused() {
    let mut files = MemoryResolver::new();
    files.add(
        "base.cdl",
        doc(r#"<cdl:configuration><p:Base/></cdl:configuration>"#),
    );
    files.add("l.cdl", doc(r#"<cdl:import location="base.cdl"/><cdl:configuration><p:L cdl:extends="p:Base"/></cdl:configuration>"#));
    files.add("r.cdl", doc(r#"<cdl:import location="base.cdl"/><cdl:configuration><p:R cdl:extends="p:Base"/></cdl:configuration>"#));
    ok_with(
        r#"<cdl:import location="l.cdl"/><cdl:import location="r.cdl"/>"#,
        &files,
    );
    let e = err_with(
        r#"<cdl:import location="base.cdl"/><cdl:configuration><p:Base/></cdl:configuration>"#,
        &files,
    );
    match e {
        CdlError::DuplicateName { name, first, .. } => {
            assert_eq!(name, "p:Base");
            assert_eq!(first.doc, DocId::new("base.cdl"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn document_structure_is_validated() {
    let e = err(r#"<cdl:system/><cdl:configuration/>"#);
    assert!(
        matches!(e, CdlError::WrongElementOrder { ref element, ref after, .. } if element == "cdl:configuration" && after == "cdl:system"),
        "{e:?}"
    );
    let e = err(r#"<cdl:system/><cdl:system/>"#);
    assert!(matches!(e, CdlError::UnexpectedElement { .. }), "{e:?}");
    let e = err(r#"<p:other/>"#);
    assert!(matches!(e, CdlError::UnexpectedElement { .. }), "{e:?}");
    let e = err(r#"<cdl:system><cdl:expression/></cdl:system>"#);
    assert!(matches!(e, CdlError::Unsupported { .. }), "{e:?}");
    let r = resolve(
        r#"<cdl:cdl xmlns:cdl="urn:not-cdl"/>"#,
        &DocId::new("x"),
        &MemoryResolver::new(),
    );
    assert!(matches!(r, Err(CdlError::WrongNamespace { .. })), "{r:?}");
    let r = resolve(
        r#"<cdl:system xmlns:cdl="http://www.gridforum.org/namespaces/2005/02/cddlm/CDL-1.0"/>"#,
        &DocId::new("x"),
        &MemoryResolver::new(),
    );
    assert!(matches!(r, Err(CdlError::WrongRootElement { .. })), "{r:?}");
    let r = resolve("<a><b></a>", &DocId::new("x"), &MemoryResolver::new());
    assert!(matches!(r, Err(CdlError::Xml { .. })), "{r:?}");
}

#[test]
fn documentation_is_ignored_and_the_resolved_system_round_trips_as_xml() {
    let d = ok(
        r#"<cdl:documentation>doc</cdl:documentation><cdl:configuration><cdl:documentation>x</cdl:documentation><p:A a="1&amp;2"><v>&lt;x&gt;</v></p:A></cdl:configuration>
      <cdl:system><cdl:documentation>y</cdl:documentation><s cdl:extends="p:A"/></cdl:system>"#,
    );
    let xml = d.to_xml();
    let again = vcds_xml::parse(&xml, &vcds_xml::Limits::default()).unwrap();
    let s = again.root_element().first_element_child().unwrap();
    assert_eq!(s.tag_name().name(), "s");
    assert_eq!(s.attribute("a"), Some("1&2"));
    assert_eq!(s.first_element_child().unwrap().text(), Some("<x>"));
}

#[test]
fn exponential_expansion_is_bounded() {
    // each level doubles: 2^40 elements if unbounded
    let mut protos = String::from("<p:L0><x/></p:L0>");
    for i in 1..=40 {
        protos.push_str(&format!(
            r#"<p:L{i}><a cdl:extends="p:L{}"/><b cdl:extends="p:L{}"/></p:L{i}>"#,
            i - 1,
            i - 1
        ));
    }
    let e = err(&format!("<cdl:configuration>{protos}</cdl:configuration>"));
    assert!(matches!(e, CdlError::LimitExceeded { .. }), "{e:?}");
}

#[test]
fn deep_extends_chains_are_bounded() {
    let mut protos = String::from("<p:C0/>");
    for i in 1..=100 {
        protos.push_str(&format!(r#"<p:C{i} cdl:extends="p:C{}"/>"#, i - 1));
    }
    let e = err(&format!("<cdl:configuration>{protos}</cdl:configuration>"));
    assert!(
        matches!(
            e,
            CdlError::LimitExceeded {
                what: "depth of nested extends",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn draft_2004_prototypes_are_named_by_attribute_and_extended_by_plain_name() {
    let text = r#"<cdl:cdl xmlns:cdl="http://gridforge.org/cddlm/xml/2004/07/30/">
      <cdl:configuration xmlns="urn:other">
        <server name="server"><port>8080</port><security>true</security></server>
        <server name="tomcat" extends="server"><basedir>/opt</basedir></server>
      </cdl:configuration>
      <cdl:system xmlns="urn:other"><web extends="tomcat"><port>9090</port></web></cdl:system>
    </cdl:cdl>"#;
    let d = resolve(text, &DocId::new("draft.cdl"), &MemoryResolver::new()).unwrap();
    assert_eq!(value(&d, "/web/port"), "9090");
    assert_eq!(value(&d, "/web/security"), "true");
    assert_eq!(value(&d, "/web/basedir"), "/opt");
}

#[test]
fn children_with_a_name_attribute_merge_by_that_name() {
    let d = ok(
        r#"<cdl:configuration><p:L><item name="a">1</item><item name="b">2</item></p:L></cdl:configuration>
      <cdl:system><x cdl:extends="p:L"><item name="c">3</item><item name="a">9</item></x></cdl:system>"#,
    );
    let x = resolve_path(&d, "/x").unwrap();
    let items: Vec<(&str, &str)> = x
        .children
        .iter()
        .map(|c| {
            (
                c.attribute(&vcds_xml::QName::new("", "name")).unwrap(),
                c.value(),
            )
        })
        .collect();
    assert_eq!(items, [("a", "9"), ("b", "2"), ("c", "3")]);
}

#[test]
fn filesystem_imports_stay_inside_their_roots() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("descriptors");
    std::fs::create_dir_all(root.join("lib")).unwrap();
    std::fs::write(
        root.join("lib/base.cdl"),
        doc(r#"<cdl:configuration><p:Base><v>1</v></p:Base></cdl:configuration>"#),
    )
    .unwrap();
    std::fs::write(dir.path().join("outside.cdl"), doc("")).unwrap();
    let files = vcds_cdl::fs::FsResolver::new([root.clone()], 1 << 20).unwrap();
    let main = DocId::new(
        root.canonicalize()
            .unwrap()
            .join("main.cdl")
            .to_string_lossy(),
    );
    let run = |body: &str| resolve(&doc(body), &main, &files);

    let d = run(r#"<cdl:import location="lib/base.cdl"/><cdl:system><x cdl:extends="p:Base"/></cdl:system>"#).unwrap();
    assert_eq!(value(&d, "/x/v"), "1");
    for location in [
        "../outside.cdl",
        "http://127.0.0.1/x.cdl",
        "/etc/passwd",
        "file:///etc/passwd",
    ] {
        let e = run(&format!(r#"<cdl:import location="{location}"/>"#)).unwrap_err();
        match e {
            CdlError::ImportNotAllowed {
                at, location: l, ..
            } => {
                assert_eq!(l, location);
                assert_eq!(at.path, "/cdl:cdl/cdl:import");
            }
            other => panic!("{location}: {other:?}"),
        }
    }
}

#[test]
fn every_located_error_reports_its_location() {
    let e = err(r#"<cdl:system><a cdl:ref="/missing"/></cdl:system>"#);
    let at = e.location().unwrap();
    assert_eq!(
        (at.doc.as_str(), at.line, at.path.as_str()),
        ("main.cdl", 1, "/cdl:cdl/cdl:system/a")
    );
    let xml = resolve("<a>", &DocId::new("x"), &MemoryResolver::new()).unwrap_err();
    assert!(xml.location().is_none());
}

#[test]
fn resolved_documents_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync + 'static>(_: &T) -> bool {
        true
    }
    let d = ok(r#"<cdl:system><a>1</a></cdl:system>"#);
    assert!(shareable(&d));
    let handle = std::thread::spawn(move || value(&d, "/a").to_string());
    assert_eq!(handle.join().unwrap(), "1");
}

#[test]
fn nested_prototypes_cannot_nest_past_the_depth_limit() {
    // 32 prototypes, each wrapping the next 60 elements deep: 1,920 levels if expanded.
    let mut protos = String::from("<p:D0/>");
    for i in 1..32 {
        let open = "<w>".repeat(60);
        let close = "</w>".repeat(60);
        protos.push_str(&format!(
            r#"<p:D{i}>{open}<x cdl:extends="p:D{}"/>{close}</p:D{i}>"#,
            i - 1
        ));
    }
    let e = err(&format!("<cdl:configuration>{protos}</cdl:configuration>"));
    assert!(
        matches!(
            e,
            CdlError::LimitExceeded {
                what: "resolved nesting depth",
                ..
            }
        ),
        "{e:?}"
    );
}
