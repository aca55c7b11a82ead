"""The contract as served: <endpoint>?wsdl (addresses and schema locations made absolute for the
host the client used), /wsdl/vcds.wsdl and /schemas/... as they are in the repository."""
import os
import subprocess
import sys

import pytest
import requests
from lxml import etree

import vcds_client as vc

ROOT = vc.ROOT
W = "http://schemas.xmlsoap.org/wsdl/"
XSD = "http://www.w3.org/2001/XMLSchema"


@pytest.mark.parametrize("endpoint", ["Portal", "System", "Subscription"])
def test_wsdl_query(server, endpoint):
    r = requests.get(server.url(endpoint) + "?wsdl", timeout=30)
    assert r.status_code == 200, (r.status_code, r.text[:500])
    assert "xml" in r.headers.get("Content-Type", ""), r.headers.get("Content-Type")
    doc = vc.parse(r.content)
    assert doc.tag == "{%s}definitions" % W
    for addr in doc.iter("{http://schemas.xmlsoap.org/wsdl/soap/}address",
                         "{http://schemas.xmlsoap.org/wsdl/soap12/}address"):
        loc = addr.get("location")
        assert loc.startswith(server.base + "/wsrf/services/"), "port address %s not rewritten" % loc
    for imp in doc.iter("{%s}import" % XSD):
        loc = imp.get("schemaLocation")
        assert loc.startswith(server.base + "/schemas/"), "schemaLocation %s not absolute" % loc
        s = requests.get(loc, timeout=30)
        assert s.status_code == 200, "GET %s -> %s" % (loc, s.status_code)
    # otherwise the same document as the repository file
    with open(os.path.join(ROOT, "wsdl", "vcds.wsdl"), "rb") as f:
        repo = vc.parse(f.read())
    assert [e.tag for e in doc.iter() if isinstance(e.tag, str)] == [e.tag for e in repo.iter() if isinstance(e.tag, str)], "?wsdl differs structurally from wsdl/vcds.wsdl"


def test_static_files_served_as_they_are(server):
    files = ["wsdl/vcds.wsdl", "schemas/vcds.xsd", "schemas/deployapi.xsd", "schemas/muws1-2.xsd"] + [
        "schemas/oasis/" + f for f in sorted(os.listdir(os.path.join(ROOT, "schemas", "oasis")))
        if f.endswith((".xsd", ".wsdl"))]
    for rel in files:
        r = requests.get("%s/%s" % (server.base, rel), timeout=30)
        assert r.status_code == 200, "GET /%s -> %s" % (rel, r.status_code)
        with open(os.path.join(ROOT, rel), "rb") as f:
            assert r.content == f.read(), "/%s differs from the repository file" % rel


def test_schema_path_traversal_refused(server):
    for path in ("/schemas/../Cargo.toml", "/schemas/%2e%2e/Cargo.toml", "/wsdl/..%2fCargo.toml",
                 "/schemas/oasis/../../Cargo.toml"):
        r = requests.get(server.base + path, timeout=30)
        assert r.status_code in (400, 403, 404), "GET %s -> %s" % (path, r.status_code)
        assert b"[workspace]" not in r.content, "GET %s leaked Cargo.toml" % path


def test_zeep_loads_served_wsdl(server):
    """zeep builds a client from the served ?wsdl (fetching every schema over HTTP) and finds the
    ports, operations and actions of docs/api.md."""
    r = subprocess.run([sys.executable, os.path.join(ROOT, "conformance", "tools", "zeep_load.py"),
                        server.url("Portal") + "?wsdl"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
