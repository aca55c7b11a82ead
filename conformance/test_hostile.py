"""Hostile and malformed input: each request gets a precise SOAP Client/Sender fault (VersionMismatch
for a foreign envelope namespace), nothing is expanded or fetched, and the server still answers
afterwards. SOAP 1.1 and 1.2."""
import os
import time
import uuid

import pytest

import checks as ck
import vcds_client as vc

GRP = vc.ACTIONS["GetResourceProperty"]


def with_doctype(data, doctype):
    decl, rest = data.split(b"\n", 1)
    return decl + b"\n" + doctype.encode() + b"\n" + rest


def post(server, soap, data, action=GRP, timeout=60):
    t0 = time.time()
    http, url = server.post_raw("Portal", data, vc.http_headers(soap, action), timeout=timeout)
    r = vc.Resp(soap, http, None, url, data)
    r.elapsed = time.time() - t0
    return r


def envelope(soap, body, headers=()):
    return vc.envelope(soap, body, action=GRP, to="http://127.0.0.1/wsrf/services/Portal",
                       message_id="urn:uuid:%s" % uuid.uuid4(), headers=list(headers))


@pytest.fixture
def still_alive(server):
    yield
    assert server.alive(timeout=30), "the server no longer answers a plain GetResourcePropertyDocument"


def test_xxe_external_entity(server, soap, still_alive, tmp_path):
    secret = "vcds-secret-%s" % uuid.uuid4().hex
    f = tmp_path / "secret.txt"
    f.write_text(secret)
    data = with_doctype(envelope(soap, vc.body_get_rp("&xxe;")),
                        '<!DOCTYPE env:Envelope [<!ENTITY xxe SYSTEM "file://%s">]>' % f)
    r = post(server, soap, data)
    assert secret.encode() not in r.raw, "external entity was expanded into the response!"
    ck.assert_sender_fault(r, soap)


def test_doctype_internal_subset(server, soap, still_alive):
    """SOAP forbids any DTD (SOAP 1.1 §3, SOAP 1.2 part 1 §5): even a harmless internal entity."""
    data = with_doctype(envelope(soap, vc.body_get_rp("&p;")),
                        '<!DOCTYPE env:Envelope [<!ENTITY p "api:ActiveSystems">]>')
    r = post(server, soap, data)
    ck.assert_sender_fault(r, soap)


def test_billion_laughs(server, soap, still_alive):
    ents = ['<!ENTITY lol "lol">']
    for i in range(1, 10):
        prev = "lol" if i == 1 else "lol%d" % (i - 1)
        ents.append('<!ENTITY lol%d "%s">' % (i, ("&%s;" % prev) * 10))
    data = with_doctype(envelope(soap, vc.body_get_rp("&lol9;")),
                        "<!DOCTYPE env:Envelope [%s]>" % "".join(ents))
    r = post(server, soap, data, timeout=30)
    assert r.elapsed < 10, "billion laughs took %.1f s" % r.elapsed
    ck.assert_sender_fault(r, soap)


def test_deep_nesting(server, soap, still_alive):
    depth = 10000
    body = "<wsrf-rp:GetResourcePropertyDocument>%s%s</wsrf-rp:GetResourcePropertyDocument>" % (
        "<a>" * depth, "</a>" * depth)
    r = post(server, soap, envelope(soap, body), action=vc.ACTIONS["GetResourcePropertyDocument"])
    ck.assert_sender_fault(r, soap)


def test_deep_nesting_in_header(server, soap, still_alive):
    depth = 10000
    hdr = '<x:Deep xmlns:x="urn:example:deep">%s%s</x:Deep>' % ("<x:d>" * depth, "</x:d>" * depth)
    r = post(server, soap, envelope(soap, vc.body_get_rp_doc(), headers=[hdr]),
             action=vc.ACTIONS["GetResourcePropertyDocument"])
    ck.assert_sender_fault(r, soap)


def test_ten_mib_body(server, soap, still_alive):
    pad = '<x:Pad xmlns:x="urn:example:pad">%s</x:Pad>' % ("A" * (10 * 1024 * 1024))
    data = envelope(soap, vc.body_get_rp_doc(), headers=[pad])
    assert len(data) > 10 * 1024 * 1024
    # raw socket: the server may answer before reading the whole body and close the connection
    http = vc.raw_post(server.base, "/wsrf/services/Portal", data,
                       vc.http_headers(soap, vc.ACTIONS["GetResourcePropertyDocument"]))
    r = vc.Resp(soap, http, None, server.url("Portal"), data[:2000])
    ck.assert_sender_fault(r, soap)


def test_invalid_utf8(server, soap, still_alive):
    data = envelope(soap, vc.body_get_rp("vcds:Descr\x00PLACE"))
    data = data.replace(b"\x00PLACE", b"\xff\xfe\xc3(")
    r = post(server, soap, data)
    ck.assert_sender_fault(r, soap)


@pytest.mark.parametrize("data", [b"this is not XML", b"", b"<env:Envelope xmlns:env='",
                                  b"<?xml version='1.0'?><root/>"],
                         ids=["not-xml", "empty", "truncated", "not-an-envelope"])
def test_garbage(server, soap, still_alive, data):
    r = post(server, soap, data)
    ck.assert_sender_fault(r, soap)


def test_envelope_without_body(server, soap, still_alive):
    data = ('<env:Envelope xmlns:env="%s" xmlns:wsa="%s"><env:Header><wsa:Action>%s</wsa:Action>'
            '</env:Header></env:Envelope>' % (vc.ENV_NS[soap], vc.NS["wsa"],
                                              vc.ACTIONS["GetResourcePropertyDocument"])).encode()
    r = post(server, soap, data, action=vc.ACTIONS["GetResourcePropertyDocument"])
    ck.assert_sender_fault(r, soap)


def test_version_mismatch(server, soap, still_alive):
    """A foreign envelope namespace -> VersionMismatch fault (SOAP 1.1 or 1.2 envelope), HTTP 500."""
    data = envelope(soap, vc.body_get_rp_doc()).replace(vc.ENV_NS[soap].encode(),
                                                       b"http://example.org/not-a-soap-envelope")
    r = post(server, soap, data, action=vc.ACTIONS["GetResourcePropertyDocument"])
    assert r.xml is not None, r.describe()
    got = r.soap_of_response
    assert got in ("1.1", "1.2"), "reply is not a SOAP envelope" + ck._ctx(r)
    ck.assert_fault_code(r, got, "VersionMismatch", status=500)
    bfs = ck.base_fault_elements(r)
    assert bfs, "fault has no WS-BaseFaults detail (docs/api.md: every fault carries one)" + ck._ctx(r)
    ck.assert_schema_valid(r.xml, r)


def test_version_mismatch_upgrade_header(server, still_alive):
    """SOAP 1.2 part 1 §5.4.7: a VersionMismatch fault in SOAP 1.2 SHOULD carry an env:Upgrade
    header listing the supported envelopes (a SHOULD, kept as its own case)."""
    data = envelope("1.2", vc.body_get_rp_doc()).replace(vc.ENV_NS["1.2"].encode(),
                                                        b"http://example.org/not-a-soap-envelope")
    r = post(server, "1.2", data, action=vc.ACTIONS["GetResourcePropertyDocument"])
    assert r.xml is not None and r.soap_of_response == "1.2", ck._ctx(r)
    up = r.header("{%s}Upgrade" % vc.NS["s12"])
    assert up is not None, "no env:Upgrade header in the SOAP 1.2 VersionMismatch fault" + ck._ctx(r)
    qnames = {vc.resolve_qname_attr(se, "qname") for se in up.findall("{%s}SupportedEnvelope" % vc.NS["s12"])}
    assert "{%s}Envelope" % vc.NS["s12"] in qnames, qnames


def test_soap11_envelope_as_soap12_content_type(server, still_alive):
    """A SOAP 1.1 envelope posted as application/soap+xml (or the reverse) is a version mismatch or
    a Sender fault, never a success."""
    data = envelope("1.1", vc.body_get_rp_doc())
    http, url = server.post_raw("Portal", data, vc.http_headers("1.2", vc.ACTIONS["GetResourcePropertyDocument"]))
    r = vc.Resp("1.2", http, None, url, data)
    assert r.xml is not None and r.is_fault, "mismatched Content-Type accepted" + ck._ctx(r)
