"""C17 (WS-BaseNotification: Subscribe, Notify on a ResourcePropertyValueChangeNotification,
Renew, Unsubscribe) and the termination notification of C18, with a consumer HTTP server in the
test process on 127.0.0.1. Subscription requests in SOAP 1.1 and 1.2; Notify is SOAP 1.1."""
import datetime as dt
import http.server
import queue
import threading
import time
import uuid

import pytest

import checks as ck
import vcds_client as vc
from conftest import rid_header, zeep_service
from test_wsrf import get_doc

TEST_NS = "urn:vcds:conformance"


class Consumer:
    """A NotificationConsumer on 127.0.0.1:<free port>; every POST is queued."""

    def __init__(self):
        self.received = queue.Queue()
        consumer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                consumer.received.put(dict(path=self.path, headers=dict(self.headers), body=body,
                                           at=time.time(), port=consumer.port))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def address(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def wait(self, timeout, path=None):
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                return None
            try:
                m = self.received.get(timeout=left)
            except queue.Empty:
                return None
            if path is None or m["path"] == path:
                return m

    def drain(self):
        out = []
        while True:
            try:
                out.append(self.received.get_nowait())
            except queue.Empty:
                return out

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def consumer():
    c = Consumer()
    yield c
    c.close()


def subscribe(server, soap, endpoint, rid, consumer_addr, token, topic, dialect=vc.SIMPLE_DIALECT,
              initial="PT10M", extra_ns=""):
    ref = '<t:Token xmlns:t="%s">%s</t:Token>' % (TEST_NS, token)
    return server.call(soap, endpoint, vc.body_subscribe(consumer_addr, topic, dialect, ref, initial, extra_ns),
                       op="Subscribe", rid=rid)


def subscription_epr(r, soap, server):
    c = ck.assert_ok(r, soap, "Subscribe", "wsnt:SubscribeResponse")
    addr, params = vc.epr_of(c.find(vc.q("wsnt:SubscriptionReference")))
    assert addr == server.url("Subscription"), "SubscriptionReference address %r%s" % (addr, ck._ctx(r))
    sid = params.get(vc.q("vcds:ResourceId"))
    assert sid, "SubscriptionReference has no vcds:ResourceId" + ck._ctx(r)
    return sid, c


def check_notify(msg, path, token, topic_qname, server):
    """The Notify POST: SOAP 1.1, SOAPAction and wsa:Action Notify, the consumer's reference
    parameter echoed as a header, schema-valid; returns the wsnt:NotificationMessage list."""
    ctx = "\n--- Notify POST %s ---\n%s\n%s" % (msg["path"], msg["headers"], msg["body"][:3000].decode("utf-8", "replace"))
    assert msg["path"] == path, ctx
    ct = {k.lower(): v for k, v in msg["headers"].items()}
    assert ct.get("content-type", "").split(";")[0].strip() == "text/xml", "Notify is SOAP 1.1 (text/xml)" + ctx
    assert ct.get("soapaction", "").strip('"') == vc.NOTIFY_ACTION, "SOAPAction" + ctx
    env = vc.parse(msg["body"])
    assert env.tag == "{%s}Envelope" % vc.NS["s11"], ctx
    hdr = env.find("{%s}Header" % vc.NS["s11"])
    assert hdr is not None and hdr.findtext(vc.q("wsa:Action")).strip() == vc.NOTIFY_ACTION, ctx
    to = hdr.findtext(vc.q("wsa:To"))
    assert to is not None and to.strip().endswith(":%s%s" % (msg["port"], path)), (
        "wsa:To must be the consumer address, got %r" % to + ctx)
    tok = hdr.find("{%s}Token" % TEST_NS)
    assert tok is not None and tok.text == token, "consumer reference parameter not echoed" + ctx
    assert tok.get(vc.q("wsa:IsReferenceParameter")) in ("true", "1"), "IsReferenceParameter" + ctx
    errs = vc.schema_errors(env)
    assert not errs, "Notify does not validate: %s%s" % (errs[:8], ctx)
    notify = env.find("{%s}Body/%s" % (vc.NS["s11"], vc.q("wsnt:Notify")))
    assert notify is not None, ctx
    msgs = notify.findall(vc.q("wsnt:NotificationMessage"))
    assert msgs, ctx
    for m in msgs:
        topic = m.find(vc.q("wsnt:Topic"))
        assert topic is not None and topic.get("Dialect") in (vc.SIMPLE_DIALECT, vc.CONCRETE_DIALECT), ctx
        assert vc.resolve_qname(topic) == topic_qname, "Topic %s, expected %s%s" % (
            vc.resolve_qname(topic), topic_qname, ctx)
    return msgs, ctx


# ---------------------------------------------------------------------------------------------- C17
@pytest.mark.slow
def test_c17_subscribe_notify_renew_unsubscribe(server, soap, system, consumer, zeep_client):
    rid = system["rid"]
    token = uuid.uuid4().hex
    path = "/consumer/%s" % token
    r = subscribe(server, soap, "System", rid, consumer.address(path), token, "vcds:Description")
    sid, c = subscription_epr(r, soap, server)
    tt = c.find(vc.q("wsnt:TerminationTime"))
    if tt is not None and tt.text:
        assert ck.dt_close(vc.parse_dt(tt.text), vc.utcnow() + dt.timedelta(minutes=10), 60), tt.text

    # the Subscription resource's properties
    doc, rd = get_doc(server, soap, "Subscription", sid)
    assert doc.tag == vc.q("vcds:SubscriptionProperties"), ck._ctx(rd)
    ck.assert_schema_valid(doc, rd)
    caddr, cparams = vc.epr_of(doc.find(vc.q("wsnt:ConsumerReference")))
    assert caddr == consumer.address(path) and cparams.get("{%s}Token" % TEST_NS) == token, ck._ctx(rd)

    # a value change -> Notify with ResourcePropertyValueChangeNotification
    text = "c17-%s" % uuid.uuid4().hex[:6]
    r = server.call(soap, "System", vc.body_set_rp(vc.update("<vcds:Description>%s</vcds:Description>" % text)),
                    op="SetResourceProperties", rid=rid)
    ck.assert_ok(r, soap, "SetResourceProperties")
    msg = consumer.wait(10, path)
    assert msg is not None, "no Notify within 10 s after SetResourceProperties Update of vcds:Description"
    msgs, ctx = check_notify(msg, path, token, vc.q("vcds:Description"), server)
    m = msgs[0]
    saddr, sparams = vc.epr_of(m.find(vc.q("wsnt:SubscriptionReference")))
    assert saddr == server.url("Subscription") and sparams.get(vc.q("vcds:ResourceId")) == sid, ctx
    paddr, pparams = vc.epr_of(m.find(vc.q("wsnt:ProducerReference")))
    assert paddr == server.url("System") and pparams.get(vc.q("vcds:ResourceId")) == rid, ctx
    ch = m.find("%s/%s" % (vc.q("wsnt:Message"), vc.q("wsrf-rp:ResourcePropertyValueChangeNotification")))
    assert ch is not None, ctx
    new = ch.find(vc.q("wsrf-rp:NewValues"))
    assert [(e.tag, e.text) for e in new] == [(vc.q("vcds:Description"), text)], ctx
    old = ch.find(vc.q("wsrf-rp:OldValues"))
    assert old is None or (len(old) == 0 and old.get(vc.q("xsi:nil")) in ("true", "1")), (
        "Description had no old value: OldValues absent or xsi:nil (rp-2.xsd)" + ctx)

    # Renew extends the subscription
    r = server.call(soap, "Subscription", vc.body_renew("PT1H"), op="Renew", rid=sid)
    c = ck.assert_ok(r, soap, "Renew", "wsnt:RenewResponse")
    renewed = vc.parse_dt(c.findtext(vc.q("wsnt:TerminationTime")))
    assert ck.dt_close(renewed, vc.utcnow() + dt.timedelta(hours=1), 60), renewed
    doc, rd = get_doc(server, soap, "Subscription", sid)
    rp_tt = vc.parse_dt(doc.findtext(vc.q("wsrf-rl:TerminationTime")))
    assert ck.dt_close(rp_tt, renewed, 1), ck._ctx(rd)

    # Unsubscribe (through zeep) -> no more notifications, the subscription is gone
    consumer.drain()
    sub = zeep_service(zeep_client, "Subscription", soap)
    sub.Unsubscribe(_soapheaders=[rid_header(sid)])
    received = zeep_client.vcds_history.last_received["envelope"]
    assert received.find(".//" + vc.q("wsnt:UnsubscribeResponse")) is not None
    ck.assert_schema_valid(received)
    r = server.call(soap, "System", vc.body_set_rp(vc.update("<vcds:Description>after</vcds:Description>")),
                    op="SetResourceProperties", rid=rid)
    ck.assert_ok(r, soap, "SetResourceProperties")
    late = consumer.wait(3, path)
    assert late is None, "Notify after Unsubscribe:\n%s" % late["body"][:2000]
    r = server.call(soap, "Subscription", vc.body_get_rp_doc(), op="GetResourcePropertyDocument", rid=sid)
    ck.assert_wsrf_fault(r, soap, "wsrf-r:ResourceUnknownFault", "Subscription")


@pytest.mark.slow
def test_c17_concrete_dialect_and_own_prefix(server, soap, system, consumer):
    """The Concrete dialect and a different prefix for the topic namespace select the same topic."""
    token = uuid.uuid4().hex
    path = "/c/%s" % token
    r = subscribe(server, soap, "System", system["rid"], consumer.address(path), token, "zq:Tag",
                  dialect=vc.CONCRETE_DIALECT, extra_ns='xmlns:zq="urn:vcds:2026"')
    sid, _ = subscription_epr(r, soap, server)
    r = server.call(soap, "System", vc.body_set_rp(vc.insert("<vcds:Tag>n</vcds:Tag>")),
                    op="SetResourceProperties", rid=system["rid"])
    ck.assert_ok(r, soap, "SetResourceProperties")
    msg = consumer.wait(10, path)
    assert msg is not None, "no Notify for topic vcds:Tag (Concrete dialect)"
    check_notify(msg, path, token, vc.q("vcds:Tag"), server)
    server.call(soap, "Subscription", vc.body_unsubscribe(), op="Unsubscribe", rid=sid)


def test_c17_unknown_dialect(server, soap, system):
    r = subscribe(server, soap, "System", system["rid"], "http://127.0.0.1:9/x", "t", "vcds:Description",
                  dialect="urn:bogus:dialect")
    ck.assert_wsrf_fault(r, soap, "wsnt:TopicExpressionDialectUnknownFault", "System", action=vc.WSN_FAULT)


def test_c17_unknown_topic(server, soap, system):
    r = subscribe(server, soap, "System", system["rid"], "http://127.0.0.1:9/x", "t", "vcds:NoSuchTopic")
    ck.assert_wsrf_fault(r, soap, {"wsnt:TopicNotSupportedFault", "wsnt:InvalidTopicExpressionFault"}, "System",
                         action=vc.WSN_FAULT)


@pytest.mark.slow
def test_c17_subscription_expires(server, soap, system):
    """InitialTerminationTime PT2S: after ~3 s the Subscription resource is unknown."""
    r = subscribe(server, soap, "System", system["rid"], "http://127.0.0.1:9/x", "t", "vcds:Description",
                  initial="PT2S")
    sid, _ = subscription_epr(r, soap, server)
    time.sleep(3.5)
    r = server.call(soap, "Subscription", vc.body_get_rp_doc(), op="GetResourcePropertyDocument", rid=sid)
    ck.assert_wsrf_fault(r, soap, "wsrf-r:ResourceUnknownFault", "Subscription")


@pytest.mark.slow
def test_c17_portal_active_systems_topic(server, soap, consumer):
    """Every RP QName is a topic, on the Portal too: a Create changes api:ActiveSystems."""
    from conftest import create_system
    token = uuid.uuid4().hex
    path = "/p/%s" % token
    r = subscribe(server, soap, "Portal", None, consumer.address(path), token, "api:ActiveSystems")
    sid, _ = subscription_epr(r, soap, server)
    s = create_system(server, soap)
    msg = consumer.wait(10, path)
    assert msg is not None, "no Notify on api:ActiveSystems after Create"
    msgs, ctx = check_notify(msg, path, token, vc.q("api:ActiveSystems"), server)
    server.call(soap, "Subscription", vc.body_unsubscribe(), op="Unsubscribe", rid=sid)
    server.call(soap, "System", vc.body_destroy(), op="Destroy", rid=s["rid"])


# ---------------------------------------------------------------------------------------------- C18
@pytest.mark.slow
def test_c18_termination_notification(server, soap, consumer):
    """C18: subscribers of wsrf-rl:ResourceTermination get a wsrf-rl:TerminationNotification when the
    scheduled termination time is reached."""
    from conftest import create_system
    s = create_system(server, soap)
    token = uuid.uuid4().hex
    path = "/t/%s" % token
    r = subscribe(server, soap, "System", s["rid"], consumer.address(path), token, "wsrf-rl:ResourceTermination")
    subscription_epr(r, soap, server)
    r = server.call(soap, "System", vc.body_set_tt(duration="PT2S"), op="SetTerminationTime", rid=s["rid"])
    ck.assert_ok(r, soap, "SetTerminationTime")
    msg = consumer.wait(10, path)
    assert msg is not None, "no TerminationNotification within 10 s of a PT2S termination time"
    msgs, ctx = check_notify(msg, path, token, vc.q("wsrf-rl:ResourceTermination"), server)
    tn = msgs[0].find("%s/%s" % (vc.q("wsnt:Message"), vc.q("wsrf-rl:TerminationNotification")))
    assert tn is not None, ctx
    r = server.call(soap, "System", vc.body_get_rp_doc(), op="GetResourcePropertyDocument", rid=s["rid"])
    ck.assert_wsrf_fault(r, soap, "wsrf-r:ResourceUnknownFault", "System")
