//! The CDL processor on arbitrary text: a descriptor and, after a NUL byte, a second document
//! it may import as "extra.cdl" (as AddFile provides). Parse, resolve imports, extends and
//! references, build the cluster spec and render it: never a panic, a hang or a blow-up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vcds_cdl::{cluster, DocId, MemoryResolver};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (descriptor, extra) = text.split_once('\0').unwrap_or((text, ""));
    let mut resolver = MemoryResolver::new();
    resolver.add("extra.cdl", extra);
    let Ok(doc) = vcds_cdl::resolve(descriptor, &DocId::new("descriptor"), &resolver) else {
        return;
    };
    for path in ["/", "/small", "/small/vc:name", "x/../y"] {
        if let Ok(element) = vcds_cdl::resolve_path(&doc, path) {
            let _ = doc.element_xml(element);
        }
    }
    if let Ok(spec) = cluster::cluster_spec(&doc) {
        let _ = spec.to_xml();
    }
});
