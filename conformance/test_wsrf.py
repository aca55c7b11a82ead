"""WSRF conformance matrix C1-C16 (reference/wsrf.md §7.3), each in SOAP 1.1 and SOAP 1.2.
C10-C12 (lifetime) are in test_lifetime.py, C17 in test_notification.py, C18 in test_lifetime.py."""
import uuid

import pytest

import checks as ck
import vcds_client as vc
from conftest import create_system, rid_header, zeep_service

RP_DOC = "GetResourcePropertyDocument"


def get_doc(server, soap, endpoint, rid=None):
    r = server.call(soap, endpoint, vc.body_get_rp_doc(), op=RP_DOC, rid=rid)
    c = ck.assert_ok(r, soap, RP_DOC, "wsrf-rp:GetResourcePropertyDocumentResponse")
    kids = [k for k in c if isinstance(k.tag, str)]
    assert len(kids) == 1, "GetResourcePropertyDocumentResponse must have exactly one child%s" % ck._ctx(r)
    return kids[0], r


def get_prop(server, soap, endpoint, qname_text, rid=None, extra_ns=""):
    r = server.call(soap, endpoint, vc.body_get_rp(qname_text, extra_ns), op="GetResourceProperty", rid=rid)
    c = ck.assert_ok(r, soap, "GetResourceProperty", "wsrf-rp:GetResourcePropertyResponse")
    return [k for k in c if isinstance(k.tag, str)], r


# ---------------------------------------------------------------------------------------------- C1
def test_c01_create_returns_epr(server, soap):
    """C1: Create (WSA headers + MessageID) -> 200, createResponse with api:ResourceId and an EPR
    (System address + vcds:ResourceId reference parameter); RelatesTo, response action."""
    r = server.call(soap, "Portal", vc.body_create(), op="Create")
    c = ck.assert_ok(r, soap, "Create", "api:createResponse")
    api_id = c.findtext(vc.q("api:ResourceId"))
    assert api_id and api_id.strip(), "empty api:ResourceId" + ck._ctx(r)
    addr, params = vc.epr_of(c.find(vc.q("api:systemReference")))
    assert addr == server.url("System"), "systemReference address %r, expected %r%s" % (
        addr, server.url("System"), ck._ctx(r))
    assert list(params) == [vc.q("vcds:ResourceId")] and params[vc.q("vcds:ResourceId")], (
        "reference parameters %s, expected one vcds:ResourceId%s" % (params, ck._ctx(r)))
    # the new System answers on that EPR and is listed in the Portal's ActiveSystems
    doc, _ = get_doc(server, soap, "System", params[vc.q("vcds:ResourceId")])
    assert doc.tag == vc.q("vcds:SystemProperties")
    active, r2 = get_prop(server, soap, "Portal", "api:ActiveSystems")
    assert len(active) == 1, "ActiveSystems must be one element%s" % ck._ctx(r2)
    eprs = [vc.epr_of(e) for e in active[0].findall(vc.q("wsa:EndpointReference"))]
    assert (addr, params) in eprs, "new System %s not in ActiveSystems %s%s" % (params, eprs, ck._ctx(r2))


def test_c01_create_with_hostname(server, soap):
    r = server.call(soap, "Portal", vc.body_create("frontend-%s" % uuid.uuid4().hex[:6]), op="Create")
    ck.assert_ok(r, soap, "Create", "api:createResponse")


def test_c01_lookup_system(server, soap, system):
    """LookupSystem(api:ResourceId) -> lookupSystemResponse = the same EPR; unknown id ->
    wsrf-r:ResourceUnknownFault (the WSDL's fault for LookupSystem)."""
    r = server.call(soap, "Portal", vc.body_lookup(system["api_id"]), op="LookupSystem")
    c = ck.assert_ok(r, soap, "LookupSystem", "api:lookupSystemResponse")
    addr, params = vc.epr_of(c)
    assert addr == server.url("System") and params.get(vc.q("vcds:ResourceId")) == system["rid"], (
        "lookup gave %s %s, expected %s %s%s" % (addr, params, server.url("System"), system["rid"], ck._ctx(r)))
    r = server.call(soap, "Portal", vc.body_lookup("urn:uuid:%s" % uuid.uuid4()), op="LookupSystem")
    ck.assert_wsrf_fault(r, soap, "wsrf-r:ResourceUnknownFault", "Portal")


def test_c01_zeep_create_lookup_and_document(server, soap, zeep_client):
    """The same through zeep (WSDL from <Portal>?wsdl, WS-Addressing plugin, ref param via
    _soapheaders): Create, LookupSystem, GetResourcePropertyDocument on the System."""
    portal = zeep_service(zeep_client, "Portal", soap)
    res = portal.Create()
    api_id = res.ResourceId
    ref = res.systemReference
    address = getattr(ref.Address, "_value_1", ref.Address)
    assert address == server.url("System"), address
    # zeep turns the reference parameter into a vcds:ResourceId value object (it knows the element)
    rps = ref.ReferenceParameters._value_1 or []
    assert len(rps) == 1, ref
    rid = getattr(rps[0], "_value_1", None) or getattr(rps[0], "text", None)
    assert rid, ref
    sent = zeep_client.vcds_history.last_sent["envelope"]
    received = zeep_client.vcds_history.last_received["envelope"]
    mid = sent.find(".//" + vc.q("wsa:MessageID")).text
    assert received.find(".//" + vc.q("wsa:RelatesTo")).text.strip() == mid
    assert received.find(".//" + vc.q("wsa:Action")).text.strip() == vc.response_action(vc.ACTIONS["Create"])
    ck.assert_schema_valid(received)

    look = portal.LookupSystem(ResourceId=api_id)
    assert getattr(look.Address, "_value_1", look.Address) == server.url("System")

    system = zeep_service(zeep_client, "System", soap)
    doc = system.GetResourcePropertyDocument(_soapheaders=[rid_header(rid)])
    # zeep knows vcds:SystemProperties from schemas/vcds.xsd and returns it parsed
    assert getattr(doc, "ResourceId", None), doc
    assert getattr(doc, "CurrentTime", None) is not None, doc
    received = zeep_client.vcds_history.last_received["envelope"]
    assert received.find(".//" + vc.q("vcds:SystemProperties")) is not None
    ck.assert_schema_valid(received)


def test_c01_zeep_fault_is_parsed(server, soap, zeep_client):
    """zeep sees a ResourceUnknownFault for an unknown ResourceId as zeep.exceptions.Fault with the
    wsrf-r detail."""
    import zeep.exceptions
    system = zeep_service(zeep_client, "System", soap)
    with pytest.raises(zeep.exceptions.Fault) as ei:
        system.GetResourcePropertyDocument(_soapheaders=[rid_header("no-such-%s" % uuid.uuid4())])
    detail = ei.value.detail
    assert detail is not None
    assert detail.find(vc.q("wsrf-r:ResourceUnknownFault")) is not None, vc.etree.tostring(detail)


# ---------------------------------------------------------------------------------------------- C2
def test_c02_system_document(server, soap, system):
    """C2: GetResourcePropertyDocument -> exactly one child, vcds:SystemProperties, valid against
    schemas/vcds.xsd, with CurrentTime, TerminationTime, QueryExpressionDialect (XPath 1.0)."""
    doc, r = get_doc(server, soap, "System", system["rid"])
    assert doc.tag == vc.q("vcds:SystemProperties"), doc.tag
    ck.assert_schema_valid(doc, r)
    for name in ("muws1:ResourceId", "api:CreatedTime", "wsrf-rl:CurrentTime", "wsrf-rl:TerminationTime",
                 "wsrf-rp:QueryExpressionDialect"):
        assert doc.find(vc.q(name)) is not None, "%s missing%s" % (name, ck._ctx(r))
    dialects = [d.text.strip() for d in doc.findall(vc.q("wsrf-rp:QueryExpressionDialect"))]
    assert vc.XPATH_DIALECT in dialects, dialects
    ct = vc.parse_dt(doc.findtext(vc.q("wsrf-rl:CurrentTime")))
    assert ck.dt_close(ct, vc.utcnow(), 120), "CurrentTime %s is not now" % ct
    created = vc.parse_dt(doc.findtext(vc.q("api:CreatedTime")))
    assert created <= ct + ck._dt.timedelta(seconds=2), (created, ct)
    tt = doc.find(vc.q("wsrf-rl:TerminationTime"))
    assert tt.get(vc.q("xsi:nil")) in ("true", "1"), "a new System has no termination time (nil)" + ck._ctx(r)
    topics = doc.findall(vc.q("wsnt:TopicExpressionDialect"))
    assert {t.text.strip() for t in topics} >= {vc.SIMPLE_DIALECT, vc.CONCRETE_DIALECT}, (
        "docs/api.md: Simple and Concrete topic dialects" + ck._ctx(r))


def test_c02_portal_document(server, soap):
    doc, r = get_doc(server, soap, "Portal")
    assert doc.tag == vc.q("vcds:PortalProperties"), doc.tag
    ck.assert_schema_valid(doc, r)
    for name in ("muws1:ResourceId", "api:StaticPortalStatus", "api:ActiveSystems", "wsrf-rl:CurrentTime",
                 "wsrf-rp:QueryExpressionDialect"):
        assert doc.find(vc.q(name)) is not None, "%s missing%s" % (name, ck._ctx(r))


# ---------------------------------------------------------------------------------------------- C3
def test_c03_qname_prefix_independent(server, soap, system):
    """C3: GetResourceProperty with a different prefix (and with a default namespace) for the same
    namespace gives the same value as the document."""
    doc, _ = get_doc(server, soap, "System", system["rid"])
    expected = doc.findtext(vc.q("muws1:ResourceId")).strip()
    for text, ns in (("muws1:ResourceId", ""),
                     ("zz9:ResourceId", 'xmlns:zz9="%s"' % vc.NS["muws1"]),
                     ("ResourceId", 'xmlns="%s"' % vc.NS["muws1"])):
        vals, r = get_prop(server, soap, "System", text, system["rid"], ns)
        assert [(v.tag, (v.text or "").strip()) for v in vals] == [(vc.q("muws1:ResourceId"), expected)], (
            "GetResourceProperty(%s %s)%s" % (text, ns, ck._ctx(r)))


# ---------------------------------------------------------------------------------------------- C4
@pytest.mark.parametrize("qname,ns", [("vcds:NoSuchProperty", ""), ("undeclared:Description", ""),
                                      ("zz:Description", 'xmlns:zz="urn:vcds:not-this-one"')],
                         ids=["unknown-name", "undeclared-prefix", "wrong-namespace"])
def test_c04_unknown_qname(server, soap, system, qname, ns):
    """C4: unknown / unresolvable QName -> wsrf-rp:InvalidResourcePropertyQNameFault."""
    r = server.call(soap, "System", vc.body_get_rp(qname, ns), op="GetResourceProperty", rid=system["rid"])
    ck.assert_wsrf_fault(r, soap, "wsrf-rp:InvalidResourcePropertyQNameFault", "System")


# ---------------------------------------------------------------------------------------------- C5
def test_c05_get_multiple_in_request_order(server, soap, system):
    """C5: GetMultipleResourceProperties returns the values in request order (not document order)."""
    r = server.call(soap, "System", vc.body_get_multiple(["wsrf-rl:CurrentTime", "muws1:ResourceId",
                                                          "api:CreatedTime"]),
                    op="GetMultipleResourceProperties", rid=system["rid"])
    c = ck.assert_ok(r, soap, "GetMultipleResourceProperties", "wsrf-rp:GetMultipleResourcePropertiesResponse")
    tags = [k.tag for k in c if isinstance(k.tag, str)]
    assert tags == [vc.q("wsrf-rl:CurrentTime"), vc.q("muws1:ResourceId"), vc.q("api:CreatedTime")], (
        "order %s%s" % (tags, ck._ctx(r)))
    r = server.call(soap, "System", vc.body_get_multiple(["muws1:ResourceId", "vcds:Nope"]),
                    op="GetMultipleResourceProperties", rid=system["rid"])
    ck.assert_wsrf_fault(r, soap, "wsrf-rp:InvalidResourcePropertyQNameFault", "System")


# ---------------------------------------------------------------------------------------------- C6
def query(server, soap, rid, expr, endpoint="System", ns=""):
    r = server.call(soap, endpoint, vc.body_query(expr, extra_ns=ns), op="QueryResourceProperties", rid=rid)
    c = ck.assert_ok(r, soap, "QueryResourceProperties", "wsrf-rp:QueryResourcePropertiesResponse")
    return c, r


def test_c06_query_nodeset_boolean_number(server, soap, system):
    """C6: XPath 1.0 over the RP document (root = context): node-set, boolean, count()."""
    rid = system["rid"]
    r = server.call(soap, "System", vc.body_set_rp(vc.insert("<vcds:Tag>a</vcds:Tag>"),
                                                   vc.insert("<vcds:Tag>b</vcds:Tag>")),
                    op="SetResourceProperties", rid=rid)
    ck.assert_ok(r, soap, "SetResourceProperties", "wsrf-rp:SetResourcePropertiesResponse")
    c, r = query(server, soap, rid, "/*/vcds:Tag")
    assert [(k.tag, k.text) for k in c if isinstance(k.tag, str)] == [(vc.q("vcds:Tag"), "a"), (vc.q("vcds:Tag"), "b")], (
        "node-set" + ck._ctx(r))
    c, r = query(server, soap, rid, "boolean(/*/wsrf-rl:CurrentTime)")
    assert (c.text or "").strip() == "true" and len(c) == 0, "boolean" + ck._ctx(r)
    c, r = query(server, soap, rid, "boolean(/*/vcds:Description)")
    assert (c.text or "").strip() == "false", "boolean false" + ck._ctx(r)
    c, r = query(server, soap, rid, "count(/*/vcds:Tag)")
    assert (c.text or "").strip() == "2", "count()" + ck._ctx(r)
    # prefixes are those in scope on the QueryExpression, not fixed ones
    c, r = query(server, soap, rid, "/*/t:Tag[2]", ns='xmlns:t="urn:vcds:2026"')
    assert [k.text for k in c if isinstance(k.tag, str)] == ["b"], "own prefix" + ck._ctx(r)


def test_c06_query_portal(server, soap, system):
    c, r = query(server, soap, None, "count(/*/api:ActiveSystems/wsa:EndpointReference) >= 1", endpoint="Portal")
    assert (c.text or "").strip() == "true", ck._ctx(r)


# ---------------------------------------------------------------------------------------------- C7, C8
def test_c07_unknown_dialect(server, soap, system):
    r = server.call(soap, "System", vc.body_query("/*", dialect="urn:bogus"), op="QueryResourceProperties",
                    rid=system["rid"])
    ck.assert_wsrf_fault(r, soap, "wsrf-rp:UnknownQueryExpressionDialectFault", "System")


@pytest.mark.parametrize("expr", ["/*[", "///", "count(", "/*/undeclared:Tag"])
def test_c08_invalid_xpath(server, soap, system, expr):
    """C8: syntactically invalid XPath -> InvalidQueryExpressionFault (an undeclared prefix may
    also be reported as QueryEvaluationErrorFault)."""
    r = server.call(soap, "System", vc.body_query(expr), op="QueryResourceProperties", rid=system["rid"])
    ok = {"wsrf-rp:InvalidQueryExpressionFault"}
    if "undeclared" in expr:
        ok.add("wsrf-rp:QueryEvaluationErrorFault")
    ck.assert_wsrf_fault(r, soap, ok, "System")


# ---------------------------------------------------------------------------------------------- C9
def test_c09_update_insert_delete(server, soap, system):
    """C9: Update of vcds:Description, Insert/Delete of vcds:Tag, then Get shows the new values."""
    rid = system["rid"]
    text = "batch cluster %s" % uuid.uuid4().hex[:8]
    r = server.call(soap, "System", vc.body_set_rp(vc.update("<vcds:Description>%s</vcds:Description>" % text)),
                    op="SetResourceProperties", rid=rid)
    c = ck.assert_ok(r, soap, "SetResourceProperties", "wsrf-rp:SetResourcePropertiesResponse")
    assert len(c) == 0, "SetResourcePropertiesResponse is empty" + ck._ctx(r)
    vals, r = get_prop(server, soap, "System", "vcds:Description", rid)
    assert [(v.tag, v.text) for v in vals] == [(vc.q("vcds:Description"), text)], ck._ctx(r)
    # Update again replaces (0..1), Insert adds tags, Delete removes all of them
    r = server.call(soap, "System", vc.body_set_rp(vc.update("<vcds:Description>second</vcds:Description>"),
                                                   vc.insert("<vcds:Tag>x</vcds:Tag><vcds:Tag>y</vcds:Tag>")),
                    op="SetResourceProperties", rid=rid)
    ck.assert_ok(r, soap, "SetResourceProperties")
    vals, r = get_prop(server, soap, "System", "vcds:Description", rid)
    assert [v.text for v in vals] == ["second"], ck._ctx(r)
    vals, r = get_prop(server, soap, "System", "vcds:Tag", rid)
    assert [v.text for v in vals] == ["x", "y"], ck._ctx(r)
    r = server.call(soap, "System", vc.body_set_rp(vc.delete("vcds:Tag")), op="SetResourceProperties", rid=rid)
    ck.assert_ok(r, soap, "SetResourceProperties")
    vals, r = get_prop(server, soap, "System", "vcds:Tag", rid)
    assert vals == [], ck._ctx(r)
    doc, r = get_doc(server, soap, "System", rid)
    ck.assert_schema_valid(doc, r)


def test_c09_update_read_only(server, soap, system):
    """C9: Update of a read-only property (wsrf-rl:CurrentTime, muws1:ResourceId) ->
    UnableToModifyResourcePropertyFault or InvalidModificationFault; nothing changes."""
    rid = system["rid"]
    doc, _ = get_doc(server, soap, "System", rid)
    for el in ("<wsrf-rl:CurrentTime>2001-01-01T00:00:00Z</wsrf-rl:CurrentTime>",
               "<muws1:ResourceId>urn:hijacked</muws1:ResourceId>"):
        r = server.call(soap, "System", vc.body_set_rp(vc.update(el)), op="SetResourceProperties", rid=rid)
        ck.assert_wsrf_fault(r, soap, {"wsrf-rp:UnableToModifyResourcePropertyFault",
                                       "wsrf-rp:InvalidModificationFault"}, "System")
    doc2, _ = get_doc(server, soap, "System", rid)
    assert doc2.findtext(vc.q("muws1:ResourceId")) == doc.findtext(vc.q("muws1:ResourceId"))


def test_c09_unknown_property_and_atomicity(server, soap, system):
    """An Update of an undeclared property faults (InvalidResourcePropertyQName or
    InvalidModification), and the whole request is not applied (earlier components included)."""
    rid = system["rid"]
    r = server.call(soap, "System", vc.body_set_rp(vc.update("<vcds:Description>before</vcds:Description>")),
                    op="SetResourceProperties", rid=rid)
    ck.assert_ok(r, soap, "SetResourceProperties")
    r = server.call(soap, "System", vc.body_set_rp(vc.update("<vcds:Description>after</vcds:Description>"),
                                                   vc.update("<vcds:Bogus>1</vcds:Bogus>")),
                    op="SetResourceProperties", rid=rid)
    ck.assert_wsrf_fault(r, soap, {"wsrf-rp:InvalidResourcePropertyQNameFault", "wsrf-rp:InvalidModificationFault",
                                   "wsrf-rp:UnableToModifyResourcePropertyFault",
                                   "wsrf-rp:SetResourcePropertyRequestFailedFault"}, "System")
    vals, r = get_prop(server, soap, "System", "vcds:Description", rid)
    assert [v.text for v in vals] == ["before"], "failed SetResourceProperties was partly applied" + ck._ctx(r)


# ---------------------------------------------------------------------------------------------- C13
@pytest.mark.parametrize("endpoint", ["System", "Subscription"])
@pytest.mark.parametrize("how", ["wrong", "absent", "empty"])
def test_c13_wrong_or_absent_reference_parameter(server, soap, endpoint, how):
    rid = {"wrong": "no-such-%s" % uuid.uuid4(), "absent": None, "empty": ""}[how]
    r = server.call(soap, endpoint, vc.body_get_rp_doc(), op=RP_DOC, rid=rid)
    ck.assert_wsrf_fault(r, soap, "wsrf-r:ResourceUnknownFault", endpoint)


# ---------------------------------------------------------------------------------------------- C14
def test_c14_missing_action(server, soap):
    """C14: no wsa:Action (and no SOAPAction / action parameter) ->
    wsa:MessageAddressingHeaderRequired, ProblemHeaderQName wsa:Action."""
    r = server.call(soap, "Portal", vc.body_get_rp_doc(), action=None, http_action="" if soap == "1.1" else None)
    ck.assert_envelope(r, soap)
    ck.assert_fault_code(r, soap, "wsa:MessageAddressingHeaderRequired")
    ck.assert_addressing(r, vc.WSA_FAULT)
    phq = r.xml.find(".//" + vc.q("wsa:ProblemHeaderQName"))
    assert phq is not None and vc.resolve_qname(phq) == vc.q("wsa:Action"), (
        "wsa:ProblemHeaderQName wsa:Action expected" + ck._ctx(r))
    ck.assert_schema_valid(r.xml, r)


def test_c14_unknown_action(server, soap):
    bogus = "urn:vcds:conformance:NoSuchAction"
    r = server.call(soap, "Portal", vc.body_get_rp_doc(), action=bogus)
    ck.assert_envelope(r, soap)
    ck.assert_fault_code(r, soap, "wsa:ActionNotSupported")
    ck.assert_addressing(r, vc.WSA_FAULT)
    pa = r.xml.find(".//" + vc.q("wsa:ProblemAction"))
    assert pa is not None and (pa.findtext(vc.q("wsa:Action")) or "").strip() == bogus, (
        "wsa:ProblemAction/wsa:Action %s expected" % bogus + ck._ctx(r))
    ck.assert_schema_valid(r.xml, r)


@pytest.mark.parametrize("endpoint,op", [("System", "Create"), ("Portal", "Destroy"),
                                         ("Portal", "SetResourceProperties"), ("Subscription", "Subscribe")])
def test_c14_action_not_offered_by_endpoint(server, soap, system, endpoint, op):
    """An action of another endpoint (docs/api.md operation lists) -> wsa:ActionNotSupported
    (WS-Addressing processing comes before resource lookup)."""
    bodies = {"Create": vc.body_create(), "Destroy": vc.body_destroy(), "Subscribe": vc.body_subscribe(
        "http://127.0.0.1:9/c", "vcds:Description"),
        "SetResourceProperties": vc.body_set_rp(vc.update("<vcds:Description>x</vcds:Description>"))}
    r = server.call(soap, endpoint, bodies[op], op=op, rid=system["rid"])
    ck.assert_envelope(r, soap)
    ck.assert_fault_code(r, soap, "wsa:ActionNotSupported")
    ck.assert_addressing(r, vc.WSA_FAULT)


def test_c14_soapaction_mismatch(server, soap):
    """HTTP SOAPAction (1.1) / action parameter (1.2) differing from wsa:Action ->
    wsa:InvalidAddressingHeader / wsa:ActionMismatch."""
    r = server.call(soap, "Portal", vc.body_get_rp_doc(), op=RP_DOC,
                    http_action=vc.ACTIONS["GetResourceProperty"])
    ck.assert_envelope(r, soap)
    ck.assert_fault_code(r, soap, "wsa:ActionMismatch", subcodes=("wsa:InvalidAddressingHeader",))
    ck.assert_addressing(r, vc.WSA_FAULT)


def test_c14_duplicate_action_header(server, soap):
    """Two wsa:Action headers -> wsa:InvalidAddressingHeader (sub-subcode wsa:InvalidCardinality),
    WS-Addressing 1.0 SOAP binding §6.4.1."""
    a = vc.ACTIONS[RP_DOC]
    r = server.call(soap, "Portal", vc.body_get_rp_doc(), op=RP_DOC,
                    headers=["<wsa:Action>%s</wsa:Action>" % a])
    ck.assert_envelope(r, soap)
    ck.assert_fault_code(r, soap, "wsa:InvalidCardinality", subcodes=("wsa:InvalidAddressingHeader",))
    if soap == "1.2":
        _, subs = r.fault_code()
        assert subs[:1] == [vc.q("wsa:InvalidAddressingHeader")], "first Subcode %s%s" % (subs, ck._ctx(r))
    ck.assert_addressing(r, vc.WSA_FAULT)


# ---------------------------------------------------------------------------------------------- C15
def test_c15_sender_fault_status(server, soap):
    """C15: same semantics in both versions; SOAP 1.2 Sender faults are HTTP 400, SOAP 1.1 faults 500
    (checked by every fault assertion); here: version of the reply follows the request."""
    r = server.call(soap, "System", vc.body_get_rp_doc(), op=RP_DOC, rid="nope-%s" % uuid.uuid4())
    ck.assert_wsrf_fault(r, soap, "wsrf-r:ResourceUnknownFault", "System")
    assert r.status == (400 if soap == "1.2" else 500)


def test_c15_soap12_content_type_without_action_param(server):
    """SOAP 1.2 with the action only in wsa:Action (no action= parameter) works."""
    r = server.call("1.2", "Portal", vc.body_get_rp_doc(), op=RP_DOC, http_action=None)
    ck.assert_ok(r, "1.2", RP_DOC, "wsrf-rp:GetResourcePropertyDocumentResponse")


# ---------------------------------------------------------------------------------------------- C16
def test_c16_must_understand(server, soap):
    """C16: an unknown header with mustUnderstand (SOAP 1.1: "1"; SOAP 1.2: "1" and "true") ->
    MustUnderstand fault, HTTP 500; SOAP 1.2 adds env:NotUnderstood naming the header."""
    for mu in (["1"] if soap == "1.1" else ["1", "true"]):
        hdr = '<x:Unknown xmlns:x="urn:example:unknown" env:mustUnderstand="%s">v</x:Unknown>' % mu
        r = server.call(soap, "Portal", vc.body_get_rp_doc(), op=RP_DOC, headers=[hdr])
        ck.assert_envelope(r, soap)
        ck.assert_fault_code(r, soap, "MustUnderstand", status=500)
        if soap == "1.2":
            nu = r.header("{%s}NotUnderstood" % vc.NS["s12"])
            assert nu is not None, "SOAP 1.2 MustUnderstand fault needs an env:NotUnderstood header" + ck._ctx(r)
            assert vc.resolve_qname_attr(nu, "qname") == "{urn:example:unknown}Unknown", (
                "env:NotUnderstood/@qname %r" % nu.get("qname") + ck._ctx(r))
        ck.assert_schema_valid(r.xml, r)


def test_c16_understood_headers_with_must_understand(server, soap, system):
    """wsa:Action and vcds:ResourceId marked mustUnderstand are understood; an unknown header
    with mustUnderstand=0 (or targeted at another SOAP 1.2 role) is ignored."""
    one = "1" if soap == "1.1" else "true"
    hdrs = [vc.resource_id_header(system["rid"], must_understand=one),
            '<x:Other xmlns:x="urn:example:unknown" env:mustUnderstand="0">v</x:Other>']
    if soap == "1.2":
        hdrs.append('<x:Elsewhere xmlns:x="urn:example:unknown" env:mustUnderstand="true" '
                    'env:role="urn:example:some-other-role">v</x:Elsewhere>')
    data = vc.envelope(soap, vc.body_get_rp_doc(), action=None, to=server.url("System"),
                       message_id="urn:uuid:%s" % uuid.uuid4(),
                       headers=['<wsa:Action env:mustUnderstand="%s">%s</wsa:Action>' % (one, vc.ACTIONS[RP_DOC])]
                       + hdrs)
    http, url = server.post_raw("System", data, vc.http_headers(soap, vc.ACTIONS[RP_DOC]))
    r = vc.Resp(soap, http, vc.parse(data).find(".//" + vc.q("wsa:MessageID")).text, url, data)
    ck.assert_ok(r, soap, RP_DOC, "wsrf-rp:GetResourcePropertyDocumentResponse")
