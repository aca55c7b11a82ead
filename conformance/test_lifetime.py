"""WS-ResourceLifetime: C10 (SetTerminationTime), C11 (past / far future), C12 (Destroy),
C18 (scheduled termination) and persistence across restarts, in SOAP 1.1 and 1.2."""
import datetime as dt
import time
import uuid

import pytest

import checks as ck
import vcds_client as vc
from conftest import create_system, rid_header, zeep_service
from test_wsrf import get_doc, get_prop

STT = "SetTerminationTime"


def set_tt(server, soap, rid, **kw):
    return server.call(soap, "System", vc.body_set_tt(**kw), op=STT, rid=rid)


def tt_response(r, soap):
    c = ck.assert_ok(r, soap, STT, "wsrf-rl:SetTerminationTimeResponse")
    ntt = c.find(vc.q("wsrf-rl:NewTerminationTime"))
    cur = c.find(vc.q("wsrf-rl:CurrentTime"))
    assert ntt is not None and cur is not None, ck._ctx(r)
    now = vc.parse_dt(cur.text)
    assert ck.dt_close(now, vc.utcnow(), 120), "CurrentTime %s is not now" % cur.text
    if ntt.get(vc.q("xsi:nil")) in ("true", "1"):
        return None, now
    return vc.parse_dt(ntt.text), now


def rp_termination_time(server, soap, rid):
    vals, r = get_prop(server, soap, "System", "wsrf-rl:TerminationTime", rid)
    assert len(vals) == 1, "TerminationTime RP must be present exactly once" + ck._ctx(r)
    if vals[0].get(vc.q("xsi:nil")) in ("true", "1"):
        return None
    return vc.parse_dt(vals[0].text)


def assert_gone(server, soap, rid, api_id=None):
    r = server.call(soap, "System", vc.body_get_rp_doc(), op="GetResourcePropertyDocument", rid=rid)
    ck.assert_wsrf_fault(r, soap, "wsrf-r:ResourceUnknownFault", "System")
    active, r = get_prop(server, soap, "Portal", "api:ActiveSystems")
    ids = [vc.epr_of(e)[1].get(vc.q("vcds:ResourceId")) for e in active[0].findall(vc.q("wsa:EndpointReference"))]
    assert rid not in ids, "terminated System %s still in ActiveSystems%s" % (rid, ck._ctx(r))
    if api_id:
        r = server.call(soap, "Portal", vc.body_lookup(api_id), op="LookupSystem")
        ck.assert_wsrf_fault(r, soap, "wsrf-r:ResourceUnknownFault", "Portal")


# ---------------------------------------------------------------------------------------------- C10
def test_c10_lifetime_duration(server, soap, system):
    """C10: RequestedLifetimeDuration PT1H -> NewTerminationTime = CurrentTime + 1h, RP updated;
    absolute time; nil = no termination."""
    rid = system["rid"]
    ntt, now = tt_response(set_tt(server, soap, rid, duration="PT1H"), soap)
    assert ntt is not None and ck.dt_close(ntt, now + dt.timedelta(hours=1), 5), (ntt, now)
    rp = rp_termination_time(server, soap, rid)
    assert rp is not None and ck.dt_close(rp, ntt, 1), (rp, ntt)

    target = vc.utcnow().replace(microsecond=0) + dt.timedelta(hours=2)
    ntt, _ = tt_response(set_tt(server, soap, rid, time=vc.xsd_dt(target)), soap)
    assert ntt is not None and ck.dt_close(ntt, target, 1), (ntt, target)
    assert ck.dt_close(rp_termination_time(server, soap, rid), target, 1)

    ntt, _ = tt_response(set_tt(server, soap, rid, nil=True), soap)
    assert ntt is None, "nil RequestedTerminationTime -> nil NewTerminationTime"
    assert rp_termination_time(server, soap, rid) is None


def test_c10_zeep_set_termination_time(server, soap, zeep_client, system):
    svc = zeep_service(zeep_client, "System", soap)
    res = svc.SetTerminationTime(RequestedLifetimeDuration=dt.timedelta(minutes=30),
                                 _soapheaders=[rid_header(system["rid"])])
    ntt, cur = res.NewTerminationTime, res.CurrentTime
    assert ck.dt_close(ntt, cur + dt.timedelta(minutes=30), 5), (ntt, cur)
    ck.assert_schema_valid(zeep_client.vcds_history.last_received["envelope"])


# ---------------------------------------------------------------------------------------------- C11
def test_c11_past_time(server, soap):
    """C11: a termination time in the past either destroys the System at once (then it is unknown)
    or is rejected with TerminationTimeChangeRejectedFault / UnableToSetTerminationTimeFault."""
    s = create_system(server, soap)
    r = set_tt(server, soap, s["rid"], time="2001-01-01T00:00:00Z")
    if r.is_fault:
        ck.assert_wsrf_fault(r, soap, {"wsrf-rl:TerminationTimeChangeRejectedFault",
                                       "wsrf-rl:UnableToSetTerminationTimeFault"}, "System", sender=None)
        doc, _ = get_doc(server, soap, "System", s["rid"])  # still there
        server.call(soap, "System", vc.body_destroy(), op="Destroy", rid=s["rid"])
    else:
        tt_response(r, soap)
        deadline = time.time() + 5
        while time.time() < deadline:
            r = server.call(soap, "System", vc.body_get_rp_doc(), op="GetResourcePropertyDocument", rid=s["rid"])
            if r.is_fault:
                break
            time.sleep(0.25)
        assert_gone(server, soap, s["rid"], s["api_id"])


def test_c11_far_future(server, soap, system):
    """A far-future time is either accepted exactly or rejected with a WS-RL fault (not a crash)."""
    r = set_tt(server, soap, system["rid"], time="9999-12-31T23:59:59Z")
    if r.is_fault:
        ck.assert_wsrf_fault(r, soap, {"wsrf-rl:TerminationTimeChangeRejectedFault",
                                       "wsrf-rl:UnableToSetTerminationTimeFault"}, "System", sender=None)
    else:
        ntt, _ = tt_response(r, soap)
        assert ntt == vc.parse_dt("9999-12-31T23:59:59Z"), ntt


@pytest.mark.parametrize("body", ["<wsrf-rl:SetTerminationTime><wsrf-rl:RequestedLifetimeDuration>P1X"
                                  "</wsrf-rl:RequestedLifetimeDuration></wsrf-rl:SetTerminationTime>",
                                  "<wsrf-rl:SetTerminationTime><wsrf-rl:RequestedTerminationTime>tomorrow"
                                  "</wsrf-rl:RequestedTerminationTime></wsrf-rl:SetTerminationTime>"],
                         ids=["bad-duration", "bad-datetime"])
def test_c11_malformed_time(server, soap, system, body):
    """Malformed duration/dateTime -> a Sender fault with a BaseFault detail
    (UnableToSetTerminationTimeFault is the WSDL's fault for it)."""
    r = server.call(soap, "System", body, op=STT, rid=system["rid"])
    ck.assert_wsrf_fault(r, soap, {"wsrf-rl:UnableToSetTerminationTimeFault",
                                   "wsrf-rl:TerminationTimeChangeRejectedFault"}, "System")


# ---------------------------------------------------------------------------------------------- C12
def test_c12_destroy(server, soap):
    """C12: Destroy -> empty DestroyResponse; afterwards every operation on that EPR gives
    ResourceUnknownFault, LookupSystem too, and ActiveSystems no longer lists it."""
    s = create_system(server, soap)
    r = server.call(soap, "System", vc.body_destroy(), op="Destroy", rid=s["rid"])
    c = ck.assert_ok(r, soap, "Destroy", "wsrf-rl:DestroyResponse")
    assert len(c) == 0, ck._ctx(r)
    assert_gone(server, soap, s["rid"], s["api_id"])
    for op, body in (("Destroy", vc.body_destroy()), ("GetResourceProperty", vc.body_get_rp("vcds:Tag")),
                     ("SetTerminationTime", vc.body_set_tt(duration="PT1H")),
                     ("SetResourceProperties", vc.body_set_rp(vc.update("<vcds:Description>x</vcds:Description>")))):
        r = server.call(soap, "System", body, op=op, rid=s["rid"])
        ck.assert_wsrf_fault(r, soap, "wsrf-r:ResourceUnknownFault", "System")


def test_c12_zeep_destroy(server, soap, zeep_client):
    import zeep.exceptions
    s = create_system(server, soap)
    svc = zeep_service(zeep_client, "System", soap)
    svc.Destroy(_soapheaders=[rid_header(s["rid"])])
    received = zeep_client.vcds_history.last_received["envelope"]
    assert received.find(".//" + vc.q("wsrf-rl:DestroyResponse")) is not None
    with pytest.raises(zeep.exceptions.Fault):
        svc.Destroy(_soapheaders=[rid_header(s["rid"])])


# ---------------------------------------------------------------------------------------------- C18
@pytest.mark.slow
def test_c18_scheduled_termination(server, soap):
    """C18: SetTerminationTime PT2S; after ~3 s the System is unknown and gone from ActiveSystems."""
    s = create_system(server, soap)
    ntt, now = tt_response(set_tt(server, soap, s["rid"], duration="PT2S"), soap)
    assert ck.dt_close(ntt, now + dt.timedelta(seconds=2), 2)
    get_doc(server, soap, "System", s["rid"])  # still alive right now
    time.sleep(3.5)
    assert_gone(server, soap, s["rid"], s["api_id"])


# ---------------------------------------------------------------------------------------------- persistence
@pytest.mark.slow
def test_persistence_across_restart(server_factory, soap):
    """Stop the server, let a scheduled termination time pass while it is down, restart on the same
    data dir: the expired System is gone, the others are still there with their properties."""
    sp = server_factory()
    srv = sp.client
    keep = create_system(srv, soap)
    keep_tt = create_system(srv, soap)
    expire = create_system(srv, soap)
    text = "persist-%s" % uuid.uuid4().hex[:8]
    r = srv.call(soap, "System", vc.body_set_rp(vc.update("<vcds:Description>%s</vcds:Description>" % text),
                                                vc.insert("<vcds:Tag>t1</vcds:Tag>")),
                 op="SetResourceProperties", rid=keep["rid"])
    ck.assert_ok(r, soap, "SetResourceProperties")
    far, _ = tt_response(set_tt(srv, soap, keep_tt["rid"], duration="PT1H"), soap)
    tt_response(set_tt(srv, soap, expire["rid"], duration="PT3S"), soap)
    sp.stop()
    time.sleep(4.5)
    sp.start()
    doc, r = get_doc(srv, soap, "System", keep["rid"])
    assert doc.findtext(vc.q("vcds:Description")) == text, "Description lost across restart" + ck._ctx(r)
    assert [t.text for t in doc.findall(vc.q("vcds:Tag"))] == ["t1"], ck._ctx(r)
    assert doc.find(vc.q("wsrf-rl:TerminationTime")).get(vc.q("xsi:nil")) in ("true", "1"), ck._ctx(r)
    got = rp_termination_time(srv, soap, keep_tt["rid"])
    assert got is not None and ck.dt_close(got, far, 1), (got, far)
    assert_gone(srv, soap, expire["rid"], expire["api_id"])
    active, r = get_prop(srv, soap, "Portal", "api:ActiveSystems")
    ids = {vc.epr_of(e)[1].get(vc.q("vcds:ResourceId")) for e in active[0].findall(vc.q("wsa:EndpointReference"))}
    assert {keep["rid"], keep_tt["rid"]} <= ids, "surviving Systems missing from ActiveSystems" + ck._ctx(r)
    r = srv.call(soap, "Portal", vc.body_lookup(keep["api_id"]), op="LookupSystem")
    ck.assert_ok(r, soap, "LookupSystem", "api:lookupSystemResponse")
