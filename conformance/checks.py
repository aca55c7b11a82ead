"""Assertions on vcds responses, shared by the conformance tests (see README.md for the rules)."""
import datetime as _dt

import vcds_client as vc

CT = {"1.1": "text/xml", "1.2": "application/soap+xml"}


def _ctx(r):
    return "\n" + r.describe()


def assert_envelope(r, soap):
    assert r.xml is not None, "response is not XML (%s)%s" % (r.parse_error, _ctx(r))
    assert r.env_ns == vc.ENV_NS[soap], "response envelope %s, request was SOAP %s%s" % (
        r.env_ns, soap, _ctx(r))
    assert r.content_type.split(";")[0].strip().lower() == CT[soap], (
        "Content-Type %r for SOAP %s%s" % (r.content_type, soap, _ctx(r)))


# rp-2.xsd declares QueryResourcePropertiesResponse as mixed with <xsd:any minOccurs="1">, so a
# boolean/number/string XPath result (text only) or an empty node-set can never be schema-valid,
# although WS-RP 1.2 requires exactly those answers. Only that one error is tolerated, and only
# when the element really has no element children.
_QRP_QUIRK = "QueryResourcePropertiesResponse': Missing child element(s)"


# The SOAP 1.1 envelope schema types faultstring as plain xs:string, so xml:lang on it is a schema
# error, while WS-I Basic Profile 1.1 (SOAP fault language, R1016) has receivers accept xml:lang
# there. Tolerated.
_FAULTSTRING_LANG = "Element 'faultstring', attribute '{http://www.w3.org/XML/1998/namespace}lang'"


def assert_schema_valid(el, r=None):
    errs = [e for e in vc.schema_errors(el) if _FAULTSTRING_LANG not in e]
    qrp = el.find(".//" + vc.q("wsrf-rp:QueryResourcePropertiesResponse"))
    if qrp is None and el.tag == vc.q("wsrf-rp:QueryResourcePropertiesResponse"):
        qrp = el
    if qrp is not None and not any(isinstance(c.tag, str) for c in qrp):
        errs = [e for e in errs if _QRP_QUIRK not in e]
    assert not errs, "response does not validate against the schemas:\n  %s%s" % (
        "\n  ".join(errs[:12]), _ctx(r) if r is not None else "")


def assert_addressing(r, action):
    got = r.header_text("wsa:Action")
    assert got == action, "wsa:Action %r, expected %r%s" % (got, action, _ctx(r))
    if r.request_message_id:
        rel = r.header("wsa:RelatesTo")
        assert rel is not None and (rel.text or "").strip() == r.request_message_id, (
            "wsa:RelatesTo %r, expected the request's wsa:MessageID %r%s"
            % (None if rel is None else rel.text, r.request_message_id, _ctx(r)))
        rt = rel.get("RelationshipType")
        assert rt in (None, "http://www.w3.org/2005/08/addressing/reply"), (
            "wsa:RelatesTo/@RelationshipType %r%s" % (rt, _ctx(r)))


def assert_ok(r, soap, op, child=None):
    """200, same SOAP version, response action, RelatesTo, schema-valid; returns the body child."""
    assert_envelope(r, soap)
    assert not r.is_fault, "unexpected fault%s" % _ctx(r)
    assert r.status == 200, "HTTP %s for a non-fault response%s" % (r.status, _ctx(r))
    assert_addressing(r, vc.response_action(vc.ACTIONS[op]))
    assert_schema_valid(r.xml, r)
    c = r.body_child
    if child is not None:
        assert c is not None and c.tag == vc.q(child), "body child %s, expected %s%s" % (
            None if c is None else c.tag, child, _ctx(r))
    return c


def fault_status(soap, sender):
    if soap == "1.1":
        return 500
    return 400 if sender else 500


def assert_fault_code(r, soap, code, subcodes=(), status=None):
    """code: 'Sender'/'Receiver'/'MustUnderstand'/'VersionMismatch' (SOAP 1.1: Client/Server/...),
    or a WS-Addressing fault subcode such as 'wsa:ActionNotSupported' (SOAP 1.1: the faultcode;
    SOAP 1.2: Sender + Subcode). subcodes: additional acceptable SOAP 1.1 faultcodes."""
    assert r.is_fault, "expected a SOAP fault%s" % _ctx(r)
    got, subs = r.fault_code()
    env = vc.ENV_NS[soap]
    s11 = {"Sender": "Client", "Receiver": "Server"}
    if code.startswith("wsa:"):
        if soap == "1.1":
            ok = {vc.q(code)} | {vc.q(s) for s in subcodes}
            assert got in ok, "faultcode %s, expected %s%s" % (got, " or ".join(sorted(ok)), _ctx(r))
        else:
            assert got == "{%s}Sender" % env, "Code %s, expected env:Sender%s" % (got, _ctx(r))
            want = {vc.q(code)} | {vc.q(s) for s in subcodes}
            assert want & set(subs), "Subcodes %s, expected one of %s%s" % (subs, sorted(want), _ctx(r))
        sender = True
    else:
        local = s11.get(code, code) if soap == "1.1" else code
        assert got == "{%s}%s" % (env, local), "fault code %s, expected {%s}%s%s" % (
            got, env, local, _ctx(r))
        sender = code == "Sender"
    want_status = status if status is not None else fault_status(soap, sender)
    assert r.status == want_status, "HTTP %s for this fault, expected %s%s" % (r.status, want_status, _ctx(r))
    reason = r.fault_reason()
    assert reason and reason.strip(), "empty faultstring/Reason%s" % _ctx(r)


def base_fault_elements(r):
    """Elements in Detail (or, SOAP 1.1 header faults, in a header) that carry wsrf-bf:Timestamp."""
    out = [c for c in r.fault_detail_children() if c.find(vc.q("wsrf-bf:Timestamp")) is not None]
    return out


def assert_base_fault(el, r, endpoint=None):
    ts = el.find(vc.q("wsrf-bf:Timestamp"))
    assert ts is not None, "no wsrf-bf:Timestamp in %s%s" % (el.tag, _ctx(r))
    t = vc.parse_dt(ts.text)
    assert abs((vc.utcnow() - t).total_seconds()) < 300, "wsrf-bf:Timestamp %s is not now%s" % (ts.text, _ctx(r))
    orig = el.find(vc.q("wsrf-bf:Originator"))
    assert orig is not None, "no wsrf-bf:Originator (docs/api.md: every fault has it)%s" % _ctx(r)
    addr, _ = vc.epr_of(orig)
    if endpoint:
        assert addr and addr.endswith("/wsrf/services/" + endpoint), (
            "wsrf-bf:Originator address %r is not the %s endpoint%s" % (addr, endpoint, _ctx(r)))
    desc = el.findall(vc.q("wsrf-bf:Description"))
    assert desc and any((d.text or "").strip() for d in desc), "no wsrf-bf:Description%s" % _ctx(r)


def assert_wsrf_fault(r, soap, detail, endpoint, sender=True, action=vc.WSRF_FAULT):
    """A WSRF (or WS-N) fault: code, HTTP status, wsa:Action, RelatesTo, exactly one Detail child
    of type `detail` (a prefixed name or a set of them) with the BaseFault content, schema-valid."""
    assert_envelope(r, soap)
    if sender is None:  # either is acceptable
        got, _ = r.fault_code() if r.is_fault else (None, [])
        sender = got in ("{%s}Client" % vc.NS["s11"], "{%s}Sender" % vc.NS["s12"])
    assert_fault_code(r, soap, "Sender" if sender else "Receiver")
    assert_addressing(r, action)
    kids = r.fault_detail_children()
    wanted = {detail} if isinstance(detail, str) else set(detail)
    assert len(kids) == 1 and kids[0].tag in {vc.q(d) for d in wanted}, (
        "Detail children %s, expected exactly one of %s%s" % ([k.tag for k in kids], sorted(wanted), _ctx(r)))
    assert_base_fault(kids[0], r, endpoint)
    assert_schema_valid(r.xml, r)
    return kids[0]


def assert_sender_fault(r, soap, endpoint="Portal", base_fault=True):
    """A plain SOAP Client/Sender fault (hostile or malformed input), BaseFault detail per api.md."""
    assert_envelope(r, soap)
    assert_fault_code(r, soap, "Sender")
    if base_fault:
        bfs = base_fault_elements(r)
        assert bfs, "fault has no WS-BaseFaults detail (docs/api.md: every fault carries one)%s" % _ctx(r)
        assert_base_fault(bfs[0], r, endpoint)
    assert_schema_valid(r.xml, r)


def dt_close(a, b, seconds):
    return abs((a - b).total_seconds()) <= seconds


def hours(n):
    return _dt.timedelta(hours=n)
