"""Interoperability with an independent SOAP stack: a gSOAP C++ client generated from
wsdl/vcds.wsdl (wsdl2h + soapcpp2 -C, WS-Addressing via the wsaapi plugin, SOAP 1.1) calls Create,
LookupSystem, GetResourceProperty(api:ActiveSystems) and an unknown LookupSystem (fault) on the
Portal. Source: tools/gsoap_client.cpp; built once per WSDL version under /tmp (cached)."""
import hashlib
import os
import shutil
import subprocess

import pytest

import vcds_client as vc

ROOT = vc.ROOT
GSOAP = "/usr/share/gsoap"
PREFIXES = """
vcds    = "urn:vcds:2026"
api     = "http://www.gridforum.org/cddlm/deployapi/2005/02"
vcdsw   = "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl"
wsrp    = "http://docs.oasis-open.org/wsrf/rp-2"
wsrl    = "http://docs.oasis-open.org/wsrf/rl-2"
wsrf    = "http://docs.oasis-open.org/wsrf/r-2"
wsbf    = "http://docs.oasis-open.org/wsrf/bf-2"
wsnt    = "http://docs.oasis-open.org/wsn/b-2"
wstop   = "http://docs.oasis-open.org/wsn/t-1"
muws1   = "http://docs.oasis-open.org/wsdm/muws1-2.xsd"
"""


def _need():
    missing = [t for t in ("wsdl2h", "soapcpp2", "g++") if shutil.which(t) is None]
    if not os.path.isfile("/usr/include/stdsoap2.h"):
        missing.append("libgsoap-dev (stdsoap2.h)")
    return missing


@pytest.fixture(scope="session")
def gsoap_client():
    missing = _need()
    if missing:
        pytest.skip("gSOAP interop client not built, missing: %s (apt-get install -y gsoap libgsoap-dev g++)"
                    % ", ".join(missing))
    src = os.path.join(ROOT, "conformance", "tools", "gsoap_client.cpp")
    h = hashlib.sha256()
    for f in [os.path.join(ROOT, "wsdl", "vcds.wsdl"), src] + sorted(
            os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(ROOT, "schemas")) for f in fs):
        with open(f, "rb") as fh:
            h.update(fh.read())
    d = "/tmp/vcds-gsoap-client-%s" % h.hexdigest()[:16]
    exe = os.path.join(d, "vcds-gsoap-client")
    if os.path.exists(exe):
        return exe
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(GSOAP, "WS", "typemap.dat")) as f:
        tm = f.read()
    with open(os.path.join(d, "typemap.dat"), "w") as f:
        f.write(tm + PREFIXES)
    shutil.copy(src, os.path.join(d, "client.cpp"))
    shutil.copy(os.path.join(GSOAP, "plugin", "wsaapi.c"), os.path.join(d, "wsaapi.cpp"))
    shutil.copy(os.path.join(GSOAP, "plugin", "wsaapi.h"), d)
    for cmd in (["wsdl2h", "-t", "typemap.dat", "-o", "vcds.h", os.path.join(ROOT, "wsdl", "vcds.wsdl")],
                ["soapcpp2", "-C", "-L", "-x", "-I" + os.path.join(GSOAP, "import"), "vcds.h"],
                ["nice", "g++", "-O0", "-o", "vcds-gsoap-client.tmp", "-I.", "-I" + GSOAP, "client.cpp",
                 "soapC.cpp", "soapClient.cpp", "wsaapi.cpp", "-lgsoap++"]):
        r = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, "%s failed:\n%s\n%s" % (" ".join(cmd), r.stdout[-3000:], r.stderr[-3000:])
    os.rename(os.path.join(d, "vcds-gsoap-client.tmp"), exe)
    return exe


def test_gsoap_client_against_vcds(server, gsoap_client):
    r = subprocess.run([gsoap_client, server.url("Portal")], capture_output=True, text=True, timeout=120)
    out = dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)
    ctx = "\nstdout:\n%s\nstderr:\n%s" % (r.stdout, r.stderr)
    assert r.returncode == 0, "gSOAP client failed" + ctx
    assert out.get("create.ResourceId"), ctx
    assert out.get("create.Address") == server.url("System"), ctx
    assert out.get("lookup.Address") == server.url("System"), ctx
    assert out.get("getrp.elements") == "1", "GetResourceProperty(api:ActiveSystems) must return one element" + ctx
    assert out.get("fault.rc") == "12", "an unknown LookupSystem must be a SOAP fault (SOAP_FAULT=12)" + ctx
    assert out.get("fault.has_detail") == "1", ctx
