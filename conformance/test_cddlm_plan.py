"""The portal, creation, informative, notification and xml groups of the CDDLM reference test plan
("Testing the Deployment API", SmartFrog's Api_NN JUnit tests; reference/cddlm.md section 5.3)
against vcds, in SOAP 1.1 and 1.2, every response judged as in README.md. The initialization,
deploy_invalid and lifecycle groups are in test_cddlm.py; README.md maps every Api_NN case.

vcds equivalents of the reference's names: the Portal's "SystemCreatedEvent" topic is the
resource-property topic api:ActiveSystems (docs/api.md), the System's state property is
vcds:SystemState, and WS-Notification is the OASIS 1.3 standard (wsnt = b-2) rather than the
2004 drafts."""
import time
import uuid

import pytest

import checks as ck
import vcds_client as vc
from conftest import create_system, free_port
from test_cddlm import FileServer, body_initialize, etree_local, ok, small_cluster, state_and_phase
from test_notification import Consumer, check_notify, consumer, subscribe, subscription_epr  # noqa: F401
from test_wsrf import get_doc, get_prop

CDL = "http://www.gridforum.org/namespaces/2005/02/cddlm/CDL-1.0"
RVCN = "wsrf-rp:ResourcePropertyValueChangeNotification"
# MUWS capability URIs the reference's Api_01/Api_06 require in muws1:ManageabilityCapability
# (WSDM MUWS 1.1 part 1 section 4.2 and part 2 section 4.2). The CDDLM portal/system capability
# URIs of the same tests are in the unpublished org.ggf:cddlm jar and cannot be checked.
MUWS_CAPABILITIES = ["http://docs.oasis-open.org/wsdm/muws/capabilities/ManageabilityCharacteristics",
                     "http://docs.oasis-open.org/wsdm/muws/capabilities/ManageabilityReferences"]


def destroy(server, soap, rid):
    r = server.call(soap, "System", vc.body_destroy(), op="Destroy", rid=rid)
    return ck.assert_ok(r, soap, "Destroy", "wsrf-rl:DestroyResponse")


def active_ids(server, soap):
    """The vcds:ResourceId of every EPR in the Portal's api:ActiveSystems, in order."""
    vals, r = get_prop(server, soap, "Portal", "api:ActiveSystems")
    assert len(vals) == 1 and vals[0].tag == vc.q("api:ActiveSystems"), "one api:ActiveSystems" + ck._ctx(r)
    return [vc.epr_of(e)[1].get(vc.q("vcds:ResourceId")) for e in vals[0].findall(vc.q("wsa:EndpointReference"))]


def texts(vals):
    return [(v.text or "").strip() for v in vals]


def topic_qnames(vals):
    return {vc.resolve_qname(v) for v in vals}


# ---------------------------------------------------------------------------------------------- portal
def test_api_01_portal_wsdm_properties(server, soap):
    """Api_01 portal_wsdm_properties (without ManageabilityCapability, see the next test): the
    Portal's muws1:ResourceId, wsnt:FixedTopicSet, topic expression dialects and topics, each by
    GetResourceProperty."""
    doc, _ = get_doc(server, soap, "Portal")
    vals, r = get_prop(server, soap, "Portal", "muws1:ResourceId")
    assert [v.tag for v in vals] == [vc.q("muws1:ResourceId")] and texts(vals)[0], ck._ctx(r)
    assert texts(vals) == [doc.findtext(vc.q("muws1:ResourceId")).strip()], ck._ctx(r)
    vals, r = get_prop(server, soap, "Portal", "wsnt:FixedTopicSet")
    assert texts(vals) in (["true"], ["1"]), "FixedTopicSet true (the topics are the RP QNames)" + ck._ctx(r)
    vals, r = get_prop(server, soap, "Portal", "wsnt:TopicExpressionDialect")
    assert vc.SIMPLE_DIALECT in texts(vals), "Simple dialect (the reference's only one)" + ck._ctx(r)
    vals, r = get_prop(server, soap, "Portal", "wsnt:TopicExpression")
    assert vc.q("api:ActiveSystems") in topic_qnames(vals), "the Portal topic api:ActiveSystems" + ck._ctx(r)


@pytest.mark.parametrize("endpoint", ["Portal", "System"])
def test_api_01_06_manageability_capability(server, soap, endpoint):
    """Api_01 (Portal) and Api_06 (System): muws1:ManageabilityCapability lists the MUWS
    ManageabilityCharacteristics and ManageabilityReferences capabilities, by GetResourceProperty
    and by GetMultipleResourceProperties (Api_35 testGetMuwsProperties)."""
    rid = None
    if endpoint == "System":
        rid = create_system(server, soap)["rid"]
    try:
        r = server.call(soap, endpoint, vc.body_get_rp("muws1:ManageabilityCapability"), op="GetResourceProperty",
                        rid=rid)
        assert not r.is_fault, ("the reference plan (Api_01/Api_06/Api_35) reads muws1:ManageabilityCapability "
                                "on the %s; vcds does not have it%s" % (endpoint, ck._ctx(r)))
        vals, r = get_prop(server, soap, endpoint, "muws1:ManageabilityCapability", rid=rid)
        assert vals and {v.tag for v in vals} == {vc.q("muws1:ManageabilityCapability")}, ck._ctx(r)
        missing = [u for u in MUWS_CAPABILITIES if u not in texts(vals)]
        assert not missing, "capabilities %s not listed%s" % (missing, ck._ctx(r))
        r = server.call(soap, endpoint, vc.body_get_multiple(["muws1:ResourceId", "muws1:ManageabilityCapability"]),
                        op="GetMultipleResourceProperties", rid=rid)
        c = ck.assert_ok(r, soap, "GetMultipleResourceProperties", "wsrf-rp:GetMultipleResourcePropertiesResponse")
        tags = [k.tag for k in c if isinstance(k.tag, str)]
        assert tags[:1] == [vc.q("muws1:ResourceId")] and set(tags[1:]) == {vc.q("muws1:ManageabilityCapability")}, (
            tags, ck._ctx(r))
    finally:
        if rid:
            destroy(server, soap, rid)


@pytest.mark.parametrize("qname", ["api:NoSuchProperty", "muws1:NoSuchProperty", "vcds:Description"],
                         ids=["api", "muws1", "system-only-property"])
def test_api_02_portal_getproperty_unknown(server, soap, qname):
    """Api_02: GetResourceProperty of a property the Portal does not have (vcds:Description is a
    System property) -> wsrf-rp:InvalidResourcePropertyQNameFault."""
    r = server.call(soap, "Portal", vc.body_get_rp(qname), op="GetResourceProperty")
    ck.assert_wsrf_fault(r, soap, "wsrf-rp:InvalidResourcePropertyQNameFault", "Portal")


def test_api_03_portal_getproperty_unknown_prefix(server, soap):
    """Api_03: 'api2:StaticPortalStatus' with api2 declared nowhere -> InvalidResourcePropertyQNameFault;
    the same name with api2 bound to the api namespace works."""
    r = server.call(soap, "Portal", vc.body_get_rp("api2:StaticPortalStatus"), op="GetResourceProperty")
    ck.assert_wsrf_fault(r, soap, "wsrf-rp:InvalidResourcePropertyQNameFault", "Portal")
    vals, r = get_prop(server, soap, "Portal", "api2:StaticPortalStatus", extra_ns='xmlns:api2="%s"' % vc.NS["api"])
    assert [v.tag for v in vals] == [vc.q("api:StaticPortalStatus")], ck._ctx(r)


def test_api_04_get_portal_state(server, soap):
    """Api_04 getPortalState: api:StaticPortalStatus names the portal, offers CDL-1.0 (the language
    Initialize accepts) and WS-BaseNotification."""
    vals, r = get_prop(server, soap, "Portal", "api:StaticPortalStatus")
    assert [v.tag for v in vals] == [vc.q("api:StaticPortalStatus")], ck._ctx(r)
    status = vals[0]
    ck.assert_schema_valid(status, r)
    assert (status.findtext("%s/%s" % (vc.q("api:portal"), vc.q("api:name"))) or "").strip(), (
        "api:portal/api:name is empty" + ck._ctx(r))
    languages = [(i.findtext(vc.q("api:name")), i.findtext(vc.q("api:uri")))
                 for i in status.findall("%s/%s" % (vc.q("api:languages"), vc.q("api:item")))]
    assert ("CDL-1.0", CDL) in languages, "languages %s%s" % (languages, ck._ctx(r))
    notifications = texts(status.findall("%s/%s" % (vc.q("api:notifications"), vc.q("api:item"))))
    assert vc.NS["wsnt"] in notifications, "notifications %s%s" % (notifications, ck._ctx(r))


# ---------------------------------------------------------------------------------------------- creation
def test_api_05_system_create_destroy(server, soap):
    """Api_05: Create, read muws1:ResourceId (= the createResponse's api:ResourceId) and
    api:CreatedTime (now) of the new System, Destroy it."""
    s = create_system(server, soap)
    vals, r = get_prop(server, soap, "System", "muws1:ResourceId", rid=s["rid"])
    assert texts(vals) == [s["api_id"]], "muws1:ResourceId vs createResponse api:ResourceId %s%s" % (
        s["api_id"], ck._ctx(r))
    vals, r = get_prop(server, soap, "System", "api:CreatedTime", rid=s["rid"])
    assert len(vals) == 1 and ck.dt_close(vc.parse_dt(vals[0].text), vc.utcnow(), 60), ck._ctx(r)
    c = destroy(server, soap, s["rid"])
    assert len(c) == 0, "DestroyResponse is empty"


def test_api_06_system_properties(server, soap):
    """Api_06 (without ManageabilityCapability, see above): each System property by
    GetResourceProperty; api:StartedTime and api:TerminatedTime are absent until running /
    terminated (an empty response, not a fault) and set then."""
    s = create_system(server, soap)
    rid = s["rid"]
    try:
        vals, r = get_prop(server, soap, "System", "api:CreatedTime", rid=rid)
        assert len(vals) == 1, ck._ctx(r)
        created = vc.parse_dt(vals[0].text)
        vals, r = get_prop(server, soap, "System", "vcds:SystemState", rid=rid)
        assert len(vals) == 1, ck._ctx(r)
        state = vals[0].find(vc.q("cmp:State"))
        assert state is not None and [c.tag for c in state] == [vc.q("cmp:InstantiatedState")], ck._ctx(r)
        for prop in ("api:StartedTime", "api:TerminatedTime"):
            vals, r = get_prop(server, soap, "System", prop, rid=rid)
            assert vals == [], "%s of an instantiated System%s" % (prop, ck._ctx(r))
        vals, r = get_prop(server, soap, "System", "wsnt:FixedTopicSet", rid=rid)
        assert texts(vals) in (["true"], ["1"]), ck._ctx(r)
        vals, r = get_prop(server, soap, "System", "wsnt:TopicExpressionDialect", rid=rid)
        assert vc.SIMPLE_DIALECT in texts(vals), ck._ctx(r)
        vals, r = get_prop(server, soap, "System", "wsnt:TopicExpression", rid=rid)
        assert vc.q("cmp:LifecycleTransition") in topic_qnames(vals), "the lifecycle topic" + ck._ctx(r)

        ok(server, soap, rid, "Initialize", body_initialize(inline=small_cluster()), "api:initializeResponse")
        ok(server, soap, rid, "Run", "<api:runRequest/>", "api:runResponse")
        vals, r = get_prop(server, soap, "System", "api:StartedTime", rid=rid)
        assert len(vals) == 1, "api:StartedTime once running" + ck._ctx(r)
        started = vc.parse_dt(vals[0].text)
        assert created <= started and ck.dt_close(started, vc.utcnow(), 60), (created, started)
        ok(server, soap, rid, "Terminate", "<api:terminateRequest/>", "api:terminateResponse")
        vals, r = get_prop(server, soap, "System", "api:TerminatedTime", rid=rid)
        assert len(vals) == 1, "api:TerminatedTime once terminated" + ck._ctx(r)
        assert started <= vc.parse_dt(vals[0].text), ck._ctx(r)
    finally:
        destroy(server, soap, rid)


def test_api_07_08_destroyed_system_properties_and_operations(server, soap):
    """Api_08 first case: Ping a live System. Then Destroy it: Api_07, every property read, and
    Api_08, every System operation on its EPR -> wsrf-r:ResourceUnknownFault."""
    s = create_system(server, soap)
    rid = s["rid"]
    ping = ok(server, soap, rid, "Ping", "<api:pingRequest/>", "api:pingResponse")
    assert etree_local(ping.find(vc.q("cmp:State"))[0]) == "InstantiatedState"
    doc, _ = get_doc(server, soap, "System", rid)
    destroy(server, soap, rid)
    reads = [("GetResourcePropertyDocument", vc.body_get_rp_doc()),
             ("GetMultipleResourceProperties", vc.body_get_multiple(["muws1:ResourceId", "api:CreatedTime"])),
             ("QueryResourceProperties", vc.body_query("/*"))]
    for el in doc:
        if isinstance(el.tag, str):
            reads.append(("GetResourceProperty", vc.body_get_rp(
                "p:%s" % etree_local(el), 'xmlns:p="%s"' % vc.etree.QName(el).namespace)))
    operations = [("Ping", "<api:pingRequest/>"), ("Run", "<api:runRequest/>"),
                  ("Terminate", "<api:terminateRequest/>"),
                  ("Initialize", body_initialize(inline=small_cluster())),
                  ("AddFile", "<api:addFileRequest><api:name>a.cdl</api:name><api:data>eA==</api:data></api:addFileRequest>"),
                  ("Resolve", "<api:resolveRequest><api:path>/small</api:path></api:resolveRequest>"),
                  ("Suspend", "<vcds:suspendRequest/>"), ("Resume", "<vcds:resumeRequest/>"),
                  ("Destroy", vc.body_destroy()), ("SetTerminationTime", vc.body_set_tt(duration="PT1H")),
                  ("SetResourceProperties", vc.body_set_rp(vc.update("<vcds:Description>x</vcds:Description>"))),
                  ("Subscribe", vc.body_subscribe("http://127.0.0.1:9/x", "cmp:LifecycleTransition"))]
    for op, body in reads + operations:
        r = server.call(soap, "System", body, op=op, rid=rid)
        ck.assert_wsrf_fault(r, soap, "wsrf-r:ResourceUnknownFault", "System")


def test_api_09_system_active_systems(server, soap):
    """Api_09: api:ActiveSystems lists each new System once (as the EPR Create returned) and drops
    a destroyed one while keeping the others."""
    a, b = create_system(server, soap), create_system(server, soap)
    vals, r = get_prop(server, soap, "Portal", "api:ActiveSystems")
    eprs = [vc.epr_of(e) for e in vals[0].findall(vc.q("wsa:EndpointReference"))]
    for s in (a, b):
        assert eprs.count((s["address"], {vc.q("vcds:ResourceId"): s["rid"]})) == 1, (
            "System %s not listed exactly once with its EPR%s" % (s["rid"], ck._ctx(r)))
    destroy(server, soap, a["rid"])
    ids = active_ids(server, soap)
    assert a["rid"] not in ids and ids.count(b["rid"]) == 1, ids
    destroy(server, soap, b["rid"])
    assert b["rid"] not in active_ids(server, soap)


@pytest.mark.parametrize("hostname", ["no-name.example.org", "not a host name!", "", "localhost", "127.0.0.1"],
                         ids=["api10-unresolvable", "api10-not-a-name", "api10-empty", "api11-localhost",
                              "api11-loopback-ip"])
def test_api_10_11_system_on_hostname(server, soap, hostname):
    """Api_10 (invalid hostname) and Api_11 (valid hostname): the reference creates the System
    in both cases. vcds has one site per Portal and places nodes through its reservation book, so
    api:hostname is accepted and ignored: the System is created, instantiated, listed, found by
    LookupSystem, and its properties do not mention the hostname."""
    s = create_system(server, soap, hostname=hostname)
    try:
        ck.assert_ok(s["resp"], soap, "Create", "api:createResponse")
        assert state_and_phase(server, soap, s["rid"]) == ("InstantiatedState", None)
        assert s["rid"] in active_ids(server, soap)
        r = server.call(soap, "Portal", vc.body_lookup(s["api_id"]), op="LookupSystem")
        addr, params = vc.epr_of(ck.assert_ok(r, soap, "LookupSystem", "api:lookupSystemResponse"))
        assert (addr, params.get(vc.q("vcds:ResourceId"))) == (s["address"], s["rid"]), ck._ctx(r)
        if hostname:
            doc, rd = get_doc(server, soap, "System", s["rid"])
            assert hostname.encode() not in vc.etree.tostring(doc), "hostname stored somewhere" + ck._ctx(rd)
    finally:
        destroy(server, soap, s["rid"])


def test_api_12_resource_id_unique(server, soap):
    """Api_12 (informative): 40 Creates give 40 different api:ResourceId values and reference
    parameters, each the System's muws1:ResourceId, all listed in ActiveSystems."""
    made = []
    try:
        for _ in range(40):
            made.append(create_system(server, soap))
        api_ids = [s["api_id"] for s in made]
        rids = [s["rid"] for s in made]
        assert len(set(api_ids)) == len(api_ids) and all(api_ids), api_ids
        assert len(set(rids)) == len(rids), rids
        listed = active_ids(server, soap)
        assert set(rids) <= set(listed), "Systems missing from ActiveSystems: %s" % (set(rids) - set(listed))
        for s in made[::10]:
            vals, r = get_prop(server, soap, "System", "muws1:ResourceId", rid=s["rid"])
            assert texts(vals) == [s["api_id"]], ck._ctx(r)
    finally:
        for s in made:
            destroy(server, soap, s["rid"])


def test_api_13_multiple_systems(server, soap):
    """Api_13: three Systems at once are independent: Initialize of one, a property update of
    another and Destroy of the third leave the others as they were; LookupSystem finds each."""
    a, b, c = (create_system(server, soap) for _ in range(3))
    try:
        ok(server, soap, a["rid"], "Initialize", body_initialize(inline=small_cluster()), "api:initializeResponse")
        r = server.call(soap, "System", vc.body_set_rp(vc.update("<vcds:Description>only b</vcds:Description>")),
                        op="SetResourceProperties", rid=b["rid"])
        ck.assert_ok(r, soap, "SetResourceProperties")
        destroy(server, soap, c["rid"])
        assert state_and_phase(server, soap, a["rid"]) == ("InitializedState", "reserved")
        assert state_and_phase(server, soap, b["rid"]) == ("InstantiatedState", None)
        for s, description in ((a, []), (b, ["only b"])):
            vals, r = get_prop(server, soap, "System", "vcds:Description", rid=s["rid"])
            assert texts(vals) == description, ck._ctx(r)
            r = server.call(soap, "Portal", vc.body_lookup(s["api_id"]), op="LookupSystem")
            _, params = vc.epr_of(ck.assert_ok(r, soap, "LookupSystem", "api:lookupSystemResponse"))
            assert params.get(vc.q("vcds:ResourceId")) == s["rid"], ck._ctx(r)
        ids = active_ids(server, soap)
        assert a["rid"] in ids and b["rid"] in ids and c["rid"] not in ids, ids
    finally:
        for s in (a, b):
            destroy(server, soap, s["rid"])


# ---------------------------------------------------------------------------------------------- notification
def portal_subscription(server, soap, consumer, tag):
    """Subscribes `consumer` to the Portal's api:ActiveSystems topic; (path, token, subscription id)."""
    token = uuid.uuid4().hex
    path = "/%s/%s" % (tag, token)
    r = subscribe(server, soap, "Portal", None, consumer.address(path), token, "api:ActiveSystems")
    sid, _ = subscription_epr(r, soap, server)
    return path, token, sid


def wait_creation_event(server, consumer, path, token, rid, timeout=10):
    """The Notify at `path` announcing System `rid`: a ResourcePropertyValueChangeNotification of
    api:ActiveSystems whose NewValues lists the System and OldValues does not. Notifications of
    other changes (other tests' Systems expiring) are skipped."""
    deadline = time.time() + timeout
    seen = []
    while True:
        msg = consumer.wait(deadline - time.time(), path)
        assert msg is not None, "no Notify announcing System %s within %s s; other Notify: %s" % (
            rid, timeout, [m["body"][:1500] for m in seen])
        msgs, ctx = check_notify(msg, path, token, vc.q("api:ActiveSystems"), server)
        change = msgs[0].find("%s/%s" % (vc.q("wsnt:Message"), vc.q(RVCN)))
        assert change is not None, "the message is a %s%s" % (RVCN, ctx)
        lists = {}
        for part in ("NewValues", "OldValues"):
            el = change.find(vc.q("wsrf-rp:" + part))
            active = None if el is None else el.find(vc.q("api:ActiveSystems"))
            lists[part] = [] if active is None else [
                vc.epr_of(e)[1].get(vc.q("vcds:ResourceId")) for e in active.findall(vc.q("wsa:EndpointReference"))]
        if rid in lists["NewValues"]:
            assert rid not in lists["OldValues"], "OldValues already lists the new System" + ctx
            return msg
        seen.append(msg)


@pytest.mark.slow
def test_api_15_17_subscribe_system_creation_and_create_while_subscribed(server, soap, consumer):
    """Api_15: subscribe at the Portal to System creation (topic api:ActiveSystems); the
    Subscription's properties show the consumer and the filter. Api_17: a Create while subscribed
    is announced, naming the new System."""
    path, token, sid = portal_subscription(server, soap, consumer, "api15")
    doc, r = get_doc(server, soap, "Subscription", sid)
    addr, _ = vc.epr_of(doc.find(vc.q("wsnt:ConsumerReference")))
    assert addr == consumer.address(path), ck._ctx(r)
    topic = doc.find("%s/%s" % (vc.q("wsnt:Filter"), vc.q("wsnt:TopicExpression")))
    assert topic is not None and vc.resolve_qname(topic) == vc.q("api:ActiveSystems"), ck._ctx(r)
    s = create_system(server, soap)
    try:
        wait_creation_event(server, consumer, path, token, s["rid"])
    finally:
        server.call(soap, "Subscription", vc.body_unsubscribe(), op="Unsubscribe", rid=sid)
        destroy(server, soap, s["rid"])


@pytest.mark.slow
def test_api_16_unsubscribe(server, soap, consumer):
    """Api_16: after Unsubscribe (and, as the plan's text says, after a WS-RL Destroy of the
    subscription) a Create sends nothing to the consumer; the subscriptions are unknown."""
    path1, _, sid1 = portal_subscription(server, soap, consumer, "api16u")
    path2, _, sid2 = portal_subscription(server, soap, consumer, "api16d")
    r = server.call(soap, "Subscription", vc.body_unsubscribe(), op="Unsubscribe", rid=sid1)
    ck.assert_ok(r, soap, "Unsubscribe", "wsnt:UnsubscribeResponse")
    r = server.call(soap, "Subscription", vc.body_destroy(), op="Destroy", rid=sid2)
    ck.assert_ok(r, soap, "Destroy", "wsrf-rl:DestroyResponse")
    consumer.drain()
    s = create_system(server, soap)
    try:
        late = consumer.wait(3)
        assert late is None, "Notify to %s after the subscription ended:\n%s" % (late["path"], late["body"][:2000])
        for sid in (sid1, sid2):
            r = server.call(soap, "Subscription", vc.body_get_rp_doc(), op="GetResourcePropertyDocument", rid=sid)
            ck.assert_wsrf_fault(r, soap, "wsrf-r:ResourceUnknownFault", "Subscription")
    finally:
        destroy(server, soap, s["rid"])


def subscribe_body_with_consumer(consumer_xml):
    return ('<wsnt:Subscribe>%s<wsnt:Filter><wsnt:TopicExpression Dialect="%s">api:ActiveSystems'
            '</wsnt:TopicExpression></wsnt:Filter></wsnt:Subscribe>' % (consumer_xml, vc.SIMPLE_DIALECT))


@pytest.mark.parametrize("consumer_xml", [
    "<wsnt:ConsumerReference><wsa:Address>urn:example:not-http</wsa:Address></wsnt:ConsumerReference>",
    "<wsnt:ConsumerReference><wsa:Address>mailto:someone@example.org</wsa:Address></wsnt:ConsumerReference>",
    "<wsnt:ConsumerReference><wsa:Address>not a URI</wsa:Address></wsnt:ConsumerReference>",
    "<wsnt:ConsumerReference><wsa:Address></wsa:Address></wsnt:ConsumerReference>",
    "<wsnt:ConsumerReference/>",
    ""], ids=["urn", "mailto", "not-a-uri", "empty-address", "no-address", "no-consumer-reference"])
def test_api_18_subscribe_invalid_epr(server, soap, consumer_xml):
    """Api_18: a consumer EPR vcds cannot deliver to (no or empty wsa:Address, not an absolute
    http(s) URI, no ConsumerReference) -> wsnt:SubscribeCreationFailedFault (WS-N fault action)."""
    r = server.call(soap, "Portal", subscribe_body_with_consumer(consumer_xml), op="Subscribe")
    ck.assert_wsrf_fault(r, soap, "wsnt:SubscribeCreationFailedFault", "Portal", action=vc.WSN_FAULT)


@pytest.mark.parametrize("topic,ns", [("api:ThereIsNoSuchEventHere", ""), ("cmp:LifecycleTransition", ""),
                                      ("undeclared:ActiveSystems", ""), ("t:ActiveSystems", 'xmlns:t="urn:example:other"')],
                         ids=["unknown-name", "system-topic", "undeclared-prefix", "wrong-namespace"])
def test_api_18a_subscribe_invalid_topic(server, soap, topic, ns):
    """Api_18a: subscribing at the Portal to a topic it does not have (the reference's
    'ThereIsNoSuchEventHere'; a System-only topic; an unresolvable or foreign QName) ->
    wsnt:TopicNotSupportedFault or wsnt:InvalidTopicExpressionFault."""
    r = subscribe(server, soap, "Portal", None, "http://127.0.0.1:9/x", "t", topic, extra_ns=ns)
    ck.assert_wsrf_fault(r, soap, {"wsnt:TopicNotSupportedFault", "wsnt:InvalidTopicExpressionFault"}, "Portal",
                         action=vc.WSN_FAULT)


@pytest.mark.slow
def test_api_19_subscribe_broken_epr(server, soap, consumer):
    """Api_19: well-formed consumer EPRs that cannot take a Notify (a closed 127.0.0.1 port; an
    HTTP server that answers POST with 501) are accepted, and their failing deliveries hold up
    neither Create nor the Notify to a working consumer; the server keeps answering."""
    dead = "http://127.0.0.1:%d/nobody-listens" % free_port()
    refusing = FileServer({})
    sids = []
    s = None
    try:
        for addr in (dead, refusing.base + "refuses-post"):
            r = subscribe(server, soap, "Portal", None, addr, "broken", "api:ActiveSystems")
            sids.append(subscription_epr(r, soap, server)[0])
        path, token, sid = portal_subscription(server, soap, consumer, "api19")
        sids.append(sid)
        t0 = time.time()
        s = create_system(server, soap)
        assert time.time() - t0 < 3, "Create took %.1f s with broken consumers subscribed" % (time.time() - t0)
        wait_creation_event(server, consumer, path, token, s["rid"])
        assert server.alive(), "the server stopped answering"
    finally:
        for sid in sids:
            server.call(soap, "Subscription", vc.body_unsubscribe(), op="Unsubscribe", rid=sid)
        if s:
            destroy(server, soap, s["rid"])
        refusing.close()


@pytest.mark.slow
def test_api_20_multiple_subscriptions(server, soap, consumer):
    """Api_20: two subscriptions to System creation, with two consumers, are each notified of
    one Create."""
    second = Consumer()
    subs = []
    s = None
    try:
        for c in (consumer, second):
            subs.append((c,) + portal_subscription(server, soap, c, "api20"))
        s = create_system(server, soap)
        for c, path, token, _ in subs:
            wait_creation_event(server, c, path, token, s["rid"])
    finally:
        for _, _, _, sid in subs:
            server.call(soap, "Subscription", vc.body_unsubscribe(), op="Unsubscribe", rid=sid)
        if s:
            destroy(server, soap, s["rid"])
        second.close()


# ---------------------------------------------------------------------------------------------- xml
@pytest.mark.parametrize("body", ["<api:createRequest>", "<api:createRequest></api:lookupSystemRequest>",
                                  "<zz:createRequest/>", "<api:createRequest>&bogus;</api:createRequest>",
                                  "<api:createRequest a='1' a='2'/>", "<api:createRequest/><"],
                         ids=["unclosed", "mismatched-end-tag", "unbound-prefix", "undefined-entity",
                              "duplicate-attribute", "trailing-garbage"])
def test_api_21_invalid_xml(server, soap, body):
    """Api_21: a Create whose XML is not well-formed (or not namespace-well-formed) -> SOAP
    Client/Sender fault with a WS-BaseFaults detail; no System is created; the server still
    answers. (Non-XML, empty, truncated and oversized requests: test_hostile.)"""
    before = set(active_ids(server, soap))
    data = vc.envelope(soap, body, action=vc.ACTIONS["Create"], to=server.url("Portal"),
                       message_id="urn:uuid:%s" % uuid.uuid4())
    http, url = server.post_raw("Portal", data, vc.http_headers(soap, vc.ACTIONS["Create"]))
    r = vc.Resp(soap, http, None, url, data)
    ck.assert_sender_fault(r, soap)
    assert server.alive()
    new = set(active_ids(server, soap)) - before
    assert not new, "ill-formed Create created Systems %s" % new


# ---------------------------------------------------------------------------------------------- informative
def get_multiple(server, soap, endpoint, qnames, rid=None):
    r = server.call(soap, endpoint, vc.body_get_multiple(qnames), op="GetMultipleResourceProperties", rid=rid)
    c = ck.assert_ok(r, soap, "GetMultipleResourceProperties", "wsrf-rp:GetMultipleResourcePropertiesResponse")
    return [k for k in c if isinstance(k.tag, str)], r


@pytest.mark.parametrize("endpoint", ["Portal", "System"])
def test_api_35_36_get_multiple_properties(server, soap, endpoint):
    """Api_35 (Portal) and Api_36 (System), informative: GetMultipleResourceProperties gives the
    requested properties in request order with the values GetResourceProperty gives; a property
    asked twice is answered (each value once or twice); an absent optional property (api:StartedTime
    of an instantiated System) adds nothing; one unknown QName (the reference uses a fault QName)
    -> InvalidResourcePropertyQNameFault. (ManageabilityCapability: test_api_01_06_manageability_capability.)"""
    rid = None
    if endpoint == "Portal":
        names = ["api:StaticPortalStatus", "api:ActiveSystems", "muws1:ResourceId", "wsnt:FixedTopicSet"]
        twice = "api:StaticPortalStatus"
    else:
        rid = create_system(server, soap)["rid"]
        names = ["vcds:SystemState", "muws1:ResourceId", "api:StartedTime", "api:CreatedTime",
                 "wsrf-rl:TerminationTime"]
        twice = "api:CreatedTime"
    try:
        vals, r = get_multiple(server, soap, endpoint, names, rid)
        want = [vc.q(n) for n in names if n != "api:StartedTime"]
        assert [v.tag for v in vals] == want, "order %s, expected %s%s" % ([v.tag for v in vals], want, ck._ctx(r))
        for v in vals:
            if v.tag in (vc.q("muws1:ResourceId"), vc.q("api:CreatedTime"), vc.q("wsnt:FixedTopicSet")):
                single, r1 = get_prop(server, soap, endpoint, "p:%s" % etree_local(v), rid=rid,
                                      extra_ns='xmlns:p="%s"' % vc.etree.QName(v).namespace)
                assert texts(single) == texts([v]), ck._ctx(r1)
        vals, r = get_multiple(server, soap, endpoint, [twice, twice], rid)
        assert 1 <= len(vals) <= 2 and {v.tag for v in vals} == {vc.q(twice)}, ck._ctx(r)
        r = server.call(soap, endpoint, vc.body_get_multiple(["muws1:ResourceId", "api:BadArgumentFault"]),
                        op="GetMultipleResourceProperties", rid=rid)
        ck.assert_wsrf_fault(r, soap, "wsrf-rp:InvalidResourcePropertyQNameFault", endpoint)
    finally:
        if rid:
            destroy(server, soap, rid)
