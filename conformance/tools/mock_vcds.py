#!/usr/bin/env python3
"""A small Python stand-in for `vcds serve`, used ONLY to self-test the conformance suite and the
benchmark script while the Rust server does not exist (it is not the product and not a reference
for anything the contract does not say). It follows docs/api.md + wsdl/vcds.wsdl as the suite reads
them.

    conformance/tools/mock_vcds.py serve --listen 127.0.0.1:PORT --data-dir DIR
    VCDS_BIN=conformance/tools/mock_vcds.py python3 -m pytest conformance
"""
import argparse
import datetime as dt
import json
import os
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import isodate
import requests
from lxml import etree

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
S11 = "http://schemas.xmlsoap.org/soap/envelope/"
S12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
VCDS = "urn:vcds:2026"
API = "http://www.gridforum.org/cddlm/deployapi/2005/02"
MUWS = "http://docs.oasis-open.org/wsdm/muws1-2.xsd"
RP = "http://docs.oasis-open.org/wsrf/rp-2"
RL = "http://docs.oasis-open.org/wsrf/rl-2"
BF = "http://docs.oasis-open.org/wsrf/bf-2"
R2 = "http://docs.oasis-open.org/wsrf/r-2"
WSNT = "http://docs.oasis-open.org/wsn/b-2"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NSMAP = {"wsa": WSA, "vcds": VCDS, "api": API, "muws1": MUWS, "wsrf-rp": RP, "wsrf-rl": RL,
         "wsrf-bf": BF, "wsrf-r": R2, "wsnt": WSNT, "xsi": XSI}
RPW = "http://docs.oasis-open.org/wsrf/rpw-2"
RLW = "http://docs.oasis-open.org/wsrf/rlw-2"
BW = "http://docs.oasis-open.org/wsn/bw-2"
TNS = "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl"
A = {
    "GetResourcePropertyDocument": RPW + "/GetResourcePropertyDocument/GetResourcePropertyDocumentRequest",
    "GetResourceProperty": RPW + "/GetResourceProperty/GetResourcePropertyRequest",
    "GetMultipleResourceProperties": RPW + "/GetMultipleResourceProperties/GetMultipleResourcePropertiesRequest",
    "QueryResourceProperties": RPW + "/QueryResourceProperties/QueryResourcePropertiesRequest",
    "SetResourceProperties": RPW + "/SetResourceProperties/SetResourcePropertiesRequest",
    "Destroy": RLW + "/ImmediateResourceTermination/DestroyRequest",
    "SetTerminationTime": RLW + "/ScheduledResourceTermination/SetTerminationTimeRequest",
    "Subscribe": BW + "/NotificationProducer/SubscribeRequest",
    "Renew": BW + "/SubscriptionManager/RenewRequest",
    "Unsubscribe": BW + "/SubscriptionManager/UnsubscribeRequest",
    "Create": TNS + "/PortalEPR/CreateRequest",
    "LookupSystem": TNS + "/PortalEPR/LookupSystemRequest",
}
OPS = {
    "Portal": ["GetResourcePropertyDocument", "GetResourceProperty", "GetMultipleResourceProperties",
               "QueryResourceProperties", "Subscribe", "Create", "LookupSystem"],
    "System": ["GetResourcePropertyDocument", "GetResourceProperty", "GetMultipleResourceProperties",
               "QueryResourceProperties", "SetResourceProperties", "Destroy", "SetTerminationTime", "Subscribe"],
    "Subscription": ["GetResourcePropertyDocument", "GetResourceProperty", "Renew", "Unsubscribe", "Destroy"],
}
XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
SIMPLE = "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Simple"
CONCRETE = "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete"
MAX_BODY = 4 * 1024 * 1024
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def Q(ns, local):
    return "{%s}%s" % (ns, local)


def now():
    return dt.datetime.now(dt.timezone.utc)


def fmt(t):
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Fault(Exception):
    def __init__(self, code, reason, detail=None, subcodes=(), action="http://docs.oasis-open.org/wsrf/fault",
                 status=None, headers=(), soap=None):
        self.code, self.reason, self.detail, self.subcodes = code, reason, detail, list(subcodes)
        self.action, self.status, self.headers, self.soap = action, status, list(headers), soap


def el(tag, text=None, nsmap=None, **attrs):
    e = etree.Element(tag, nsmap=nsmap)
    if text is not None:
        e.text = text
    for k, v in attrs.items():
        e.set(k, v)
    return e


class State:
    def __init__(self, data_dir, base):
        self.lock = threading.RLock()
        self.path = os.path.join(data_dir, "mock-state.json")
        self.base = base
        self.systems, self.subs = {}, {}
        if os.path.exists(self.path):
            with open(self.path) as f:
                d = json.load(f)
            self.systems, self.subs = d["systems"], d["subs"]
        self.reap(notify=False)

    def save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"systems": self.systems, "subs": self.subs}, f)
        os.replace(tmp, self.path)

    def epr(self, endpoint, rid=None, tag=Q(WSA, "EndpointReference")):
        e = el(tag, nsmap=NSMAP)
        etree.SubElement(e, Q(WSA, "Address")).text = "%s/wsrf/services/%s" % (self.base, endpoint)
        if rid is not None:
            rp = etree.SubElement(e, Q(WSA, "ReferenceParameters"))
            etree.SubElement(rp, Q(VCDS, "ResourceId")).text = rid
        return e

    def reap(self, notify=True):
        with self.lock:
            t = time.time()
            gone = [k for k, s in self.systems.items() if s["tt"] is not None and s["tt"] <= t]
            for k in gone:
                self.destroy_system(k, notify)
            for k in [k for k, s in self.subs.items() if s["tt"] is not None and s["tt"] <= t]:
                del self.subs[k]
            if gone:
                self.save()

    def destroy_system(self, rid, notify=True):
        old = self.active_systems()
        del self.systems[rid]
        if notify:
            tn = el(Q(RL, "TerminationNotification"), nsmap=NSMAP)
            etree.SubElement(tn, Q(RL, "TerminationTime")).text = fmt(now())
            self.publish("System", rid, Q(RL, "ResourceTermination"), tn)
            self.publish_change("Portal", None, Q(API, "ActiveSystems"), [old], [self.active_systems()])
        for k in [k for k, s in self.subs.items() if s["producer"] == ["System", rid]]:
            del self.subs[k]

    def active_systems(self):
        a = el(Q(API, "ActiveSystems"), nsmap=NSMAP)
        for rid in sorted(self.systems, key=lambda k: self.systems[k]["created"]):
            a.append(self.epr("System", rid))
        return a

    # ---- RP documents
    def doc(self, endpoint, rid):
        if endpoint == "Portal":
            d = el(Q(VCDS, "PortalProperties"), nsmap=NSMAP)
            etree.SubElement(d, Q(MUWS, "ResourceId")).text = "urn:vcds:portal"
            sps = etree.SubElement(d, Q(API, "StaticPortalStatus"))
            p = etree.SubElement(sps, Q(API, "portal"))
            etree.SubElement(p, Q(API, "name")).text = "vcds mock"
            d.append(self.active_systems())
        elif endpoint == "System":
            s = self.systems[rid]
            d = el(Q(VCDS, "SystemProperties"), nsmap=NSMAP)
            etree.SubElement(d, Q(MUWS, "ResourceId")).text = s["api_id"]
            etree.SubElement(d, Q(API, "CreatedTime")).text = fmt(dt.datetime.fromtimestamp(s["created"], dt.timezone.utc))
            if s["desc"] is not None:
                etree.SubElement(d, Q(VCDS, "Description")).text = s["desc"]
            for t in s["tags"]:
                etree.SubElement(d, Q(VCDS, "Tag")).text = t
        else:
            s = self.subs[rid]
            d = el(Q(VCDS, "SubscriptionProperties"), nsmap=NSMAP)
            etree.SubElement(d, Q(MUWS, "ResourceId")).text = rid
            d.append(etree.fromstring(s["consumer"]))
            f = etree.SubElement(d, Q(WSNT, "Filter"))
            te = etree.SubElement(f, Q(WSNT, "TopicExpression"), nsmap={"t": s["topic"][0]})
            te.set("Dialect", SIMPLE)
            te.text = "t:" + s["topic"][1]
            etree.SubElement(d, Q(WSNT, "CreationTime")).text = fmt(dt.datetime.fromtimestamp(s["created"], dt.timezone.utc))
        etree.SubElement(d, Q(RL, "CurrentTime")).text = fmt(now())
        if endpoint != "Portal":
            tt = etree.SubElement(d, Q(RL, "TerminationTime"))
            ttv = (self.systems[rid] if endpoint == "System" else self.subs[rid])["tt"]
            if ttv is None:
                tt.set(Q(XSI, "nil"), "true")
            else:
                tt.text = fmt(dt.datetime.fromtimestamp(ttv, dt.timezone.utc))
        if endpoint != "Subscription":
            etree.SubElement(d, Q(RP, "QueryExpressionDialect")).text = XPATH
            etree.SubElement(d, Q(WSNT, "FixedTopicSet")).text = "true"
            etree.SubElement(d, Q(WSNT, "TopicExpressionDialect")).text = SIMPLE
            etree.SubElement(d, Q(WSNT, "TopicExpressionDialect")).text = CONCRETE
        return d

    # ---- notifications
    def publish_change(self, endpoint, rid, qn, old, new):
        ch = el(Q(RP, "ResourcePropertyValueChangeNotification"), nsmap=NSMAP)
        # rp-2.xsd: empty Old/NewValues must be xsi:nil (their content is <xsd:any minOccurs="1">)
        o = etree.SubElement(ch, Q(RP, "OldValues"))
        o.extend(old)
        n = etree.SubElement(ch, Q(RP, "NewValues"))
        n.extend(new)
        for e in (o, n):
            if len(e) == 0:
                e.set(Q(XSI, "nil"), "true")
        self.publish(endpoint, rid, qn, ch)

    def publish(self, endpoint, rid, topic, payload):
        ns, local = topic[1:].split("}")
        for sid, s in list(self.subs.items()):
            if s["producer"] == [endpoint, rid] and s["topic"] == [ns, local]:
                msg = self.notify_envelope(sid, s, endpoint, rid, ns, local, payload)
                addr = etree.fromstring(s["consumer"]).findtext(Q(WSA, "Address"))
                threading.Thread(target=_post, args=(addr, msg), daemon=True).start()

    def notify_envelope(self, sid, s, endpoint, rid, ns, local, payload):
        env = el(Q(S11, "Envelope"), nsmap=dict(NSMAP, env=S11))
        h = etree.SubElement(env, Q(S11, "Header"))
        cons = etree.fromstring(s["consumer"])
        etree.SubElement(h, Q(WSA, "To")).text = cons.findtext(Q(WSA, "Address"))
        etree.SubElement(h, Q(WSA, "Action")).text = BW + "/NotificationConsumer/Notify"
        etree.SubElement(h, Q(WSA, "MessageID")).text = "urn:uuid:%s" % uuid.uuid4()
        rps = cons.find(Q(WSA, "ReferenceParameters"))
        for p in (rps if rps is not None else []):
            p2 = etree.fromstring(etree.tostring(p))
            p2.set(Q(WSA, "IsReferenceParameter"), "true")
            h.append(p2)
        b = etree.SubElement(env, Q(S11, "Body"))
        nt = etree.SubElement(b, Q(WSNT, "Notify"))
        m = etree.SubElement(nt, Q(WSNT, "NotificationMessage"))
        m.append(self.epr("Subscription", sid, Q(WSNT, "SubscriptionReference")))
        t = etree.SubElement(m, Q(WSNT, "Topic"), nsmap={"tp": ns})
        t.set("Dialect", SIMPLE)
        t.text = "tp:" + local
        m.append(self.epr(endpoint, rid, Q(WSNT, "ProducerReference")))
        etree.SubElement(m, Q(WSNT, "Message")).append(payload)
        return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def _post(addr, data):
    try:
        requests.post(addr, data=data, timeout=10, headers={
            "Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"%s/NotificationConsumer/Notify"' % BW})
    except requests.RequestException:
        pass


def parse_qname(e, text=None):
    text = (e.text if text is None else text or "").strip()
    if not re.match(r"^([A-Za-z_][\w.-]*:)?[A-Za-z_][\w.-]*$", text):
        return None
    if ":" in text:
        p, local = text.split(":", 1)
        ns = e.nsmap.get(p)
        return None if ns is None else Q(ns, local)
    return Q(e.nsmap.get(None) or "", text) if e.nsmap.get(None) else text


def parse_time(text, base):
    text = (text or "").strip()
    if text.startswith("P") or text.startswith("-P"):
        return base + isodate.parse_duration(text)
    t = isodate.parse_datetime(text)
    if t.tzinfo is None:
        raise ValueError("no time zone")
    return t


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, *a):
        pass

    def do_GET(self):
        path = self.path.split("?")[0]
        if self.path.endswith("?wsdl") and path.startswith("/wsrf/services/"):
            with open(os.path.join(ROOT, "wsdl", "vcds.wsdl"), "rb") as f:
                txt = f.read().decode()
            txt = txt.replace("http://localhost:8080", self.state.base).replace(
                'schemaLocation="../schemas/', 'schemaLocation="%s/schemas/' % self.state.base)
            return self.reply(200, txt.encode(), "text/xml; charset=utf-8")
        if (path.startswith("/schemas/") or path.startswith("/wsdl/")) and ".." not in path and "%" not in path:
            f = os.path.normpath(os.path.join(ROOT, path.lstrip("/")))
            if f.startswith(ROOT + "/") and os.path.isfile(f):
                with open(f, "rb") as fh:
                    return self.reply(200, fh.read(), "text/xml; charset=utf-8")
        self.reply(404, b"not found", "text/plain")

    def reply(self, status, body, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n)
        ctype = self.headers.get("Content-Type", "")
        soap = "1.2" if ctype.startswith("application/soap+xml") else "1.1"
        endpoint = self.path.rsplit("/", 1)[-1]
        msgid = None
        try:
            if n > MAX_BODY:
                raise Fault("Sender", "request larger than %d bytes" % MAX_BODY)
            if b"<!DOCTYPE" in data:
                raise Fault("Sender", "DTDs are not allowed in SOAP messages")
            try:
                env = etree.fromstring(data, PARSER)
            except etree.XMLSyntaxError as e:
                raise Fault("Sender", "malformed XML: %s" % e)
            if etree.QName(env).localname != "Envelope":
                raise Fault("Sender", "not a SOAP envelope")
            ens = etree.QName(env).namespace
            if ens not in (S11, S12):
                raise Fault("VersionMismatch", "unsupported envelope namespace %s" % ens,
                            headers=[self.upgrade()] if soap == "1.2" else [])
            if (ens == S12) != (soap == "1.2"):
                raise Fault("Sender", "Content-Type %s does not match the envelope" % ctype)
            hdr = env.find(Q(ens, "Header"))
            body = env.find(Q(ens, "Body"))
            if body is None or len([c for c in body if isinstance(c.tag, str)]) != 1:
                raise Fault("Sender", "Body must have exactly one child")
            req = [c for c in body if isinstance(c.tag, str)][0]
            headers = [h for h in (hdr if hdr is not None else []) if isinstance(h.tag, str)]
            msgid = next((h.text for h in headers if h.tag == Q(WSA, "MessageID")), None)
            for h in headers:
                mu = h.get(Q(ens, "mustUnderstand"))
                role = h.get(Q(S12, "role"))
                if ens == S12 and role not in (None, S12 + "/role/next", S12 + "/role/ultimateReceiver"):
                    continue
                if mu in ("1", "true") and etree.QName(h).namespace not in (WSA, VCDS):
                    nu = el(Q(S12, "NotUnderstood"), nsmap={"env": S12, "p": etree.QName(h).namespace})
                    nu.set("qname", "p:" + etree.QName(h).localname)
                    raise Fault("MustUnderstand", "header %s not understood" % h.tag,
                                headers=[nu] if ens == S12 else [], status=500)
            if sum(1 for h in headers if h.tag == Q(WSA, "Action")) > 1:
                raise Fault("Sender", "more than one wsa:Action header",
                            subcodes=[Q(WSA, "InvalidAddressingHeader"), Q(WSA, "InvalidCardinality")],
                            action=WSA + "/fault")
            action = next((h.text.strip() for h in headers if h.tag == Q(WSA, "Action") and h.text), None)
            if action is None:
                pd = el(Q(WSA, "ProblemHeaderQName"), "wsa:Action", nsmap={"wsa": WSA})
                raise Fault("Sender", "wsa:Action is required", detail=pd,
                            subcodes=[Q(WSA, "MessageAddressingHeaderRequired")],
                            action=WSA + "/fault")
            http_action = None
            if soap == "1.1":
                sa = self.headers.get("SOAPAction")
                http_action = sa.strip().strip('"') if sa is not None else None
            else:
                m = re.search(r'action="?([^";]+)"?', ctype)
                http_action = m.group(1) if m else None
            if http_action and http_action != action:
                raise Fault("Sender", "SOAPAction differs from wsa:Action",
                            subcodes=[Q(WSA, "InvalidAddressingHeader"), Q(WSA, "ActionMismatch")],
                            action=WSA + "/fault")
            op = next((o for o in OPS.get(endpoint, []) if A[o] == action), None)
            if op is None:
                pa = el(Q(WSA, "ProblemAction"), nsmap={"wsa": WSA})
                etree.SubElement(pa, Q(WSA, "Action")).text = action
                raise Fault("Sender", "action not supported here: %s" % action, detail=pa,
                            subcodes=[Q(WSA, "ActionNotSupported")], action=WSA + "/fault")
            rid = next(((h.text or "").strip() for h in headers if h.tag == Q(VCDS, "ResourceId")), None)
            with self.state.lock:
                self.state.reap()
                if endpoint != "Portal":
                    table = self.state.systems if endpoint == "System" else self.state.subs
                    if not rid or rid not in table:
                        raise self.wsrf(R2, "ResourceUnknownFault", "unknown resource %r" % rid)
                result = getattr(self, "op_" + op)(endpoint, rid, req)
            out = self.envelope(ens, A[op][:-len("Request")] + "Response", msgid, [], result)
            return self.reply(200, out, self.ctype(ens))
        except Fault as f:
            ens = {"1.1": S11, "1.2": S12}[soap]
            self.send_fault(f, ens, msgid, endpoint)

    def upgrade(self):
        u = el(Q(S12, "Upgrade"), nsmap={"env": S12})
        se = etree.SubElement(u, Q(S12, "SupportedEnvelope"))
        se.set("qname", "env:Envelope")
        se = etree.SubElement(u, Q(S12, "SupportedEnvelope"), nsmap={"q": S11})
        se.set("qname", "q:Envelope")
        return u

    def ctype(self, ens):
        return "text/xml; charset=utf-8" if ens == S11 else "application/soap+xml; charset=utf-8"

    def envelope(self, ens, action, relates, headers, body_child):
        env = el(Q(ens, "Envelope"), nsmap={"env": ens, "wsa": WSA})
        h = etree.SubElement(env, Q(ens, "Header"))
        etree.SubElement(h, Q(WSA, "Action")).text = action
        etree.SubElement(h, Q(WSA, "MessageID")).text = "urn:uuid:%s" % uuid.uuid4()
        if relates:
            etree.SubElement(h, Q(WSA, "RelatesTo")).text = relates
        for x in headers:
            h.append(x)
        etree.SubElement(env, Q(ens, "Body")).append(body_child)
        return etree.tostring(env, xml_declaration=True, encoding="UTF-8")

    def base_fault(self, tag, desc, endpoint):
        d = el(tag, nsmap=NSMAP)
        etree.SubElement(d, Q(BF, "Timestamp")).text = fmt(now())
        o = self.state.epr(endpoint if endpoint in OPS else "Portal", None, Q(BF, "Originator"))
        d.append(o)
        etree.SubElement(d, Q(BF, "Description")).text = desc
        return d

    def wsrf(self, ns, local, desc, sender=True, action="http://docs.oasis-open.org/wsrf/fault", change=None):
        f = Fault("Sender" if sender else "Receiver", desc, action=action)
        f.wsrf = (Q(ns, local), desc)
        f.change = change
        return f

    def send_fault(self, f, ens, msgid, endpoint):
        if f.code == "VersionMismatch" and ens == S11 and f.headers:
            f.headers = []
        detail = []
        if getattr(f, "wsrf", None):
            bf = self.base_fault(f.wsrf[0], f.wsrf[1], endpoint)
            if f.change is not None:
                ch = etree.SubElement(bf, Q(RP, "ResourcePropertyChangeFailure"))
                ch.set("Restored", "true")
                if f.change:
                    rv = etree.SubElement(ch, Q(RP, "RequestedValue"))
                    rv.extend(f.change)
            detail.append(bf)
        else:
            if f.detail is not None:
                detail.append(f.detail)
            header_fault = f.code == "MustUnderstand" or f.subcodes
            if not (ens == S11 and header_fault):
                detail.append(self.base_fault(Q(BF, "BaseFault"), f.reason, endpoint))
            elif f.detail is not None and ens == S11:
                detail = []
                fd = el(Q(WSA, "FaultDetail"), nsmap={"wsa": WSA})
                fd.append(f.detail)
                f.headers.append(fd)
        fe = el(Q(ens, "Fault"), nsmap={"env": ens})
        if ens == S11:
            code = {"Sender": "Client", "Receiver": "Server"}.get(f.code, f.code)
            fc = etree.SubElement(fe, "faultcode", nsmap={"wsa": WSA})
            fc.text = ("wsa:" + f.subcodes[0].split("}")[1]) if f.subcodes else "env:" + code
            etree.SubElement(fe, "faultstring").text = f.reason
            if detail:
                d = etree.SubElement(fe, "detail")
                d.extend(detail)
        else:
            c = etree.SubElement(fe, Q(S12, "Code"))
            etree.SubElement(c, Q(S12, "Value")).text = "env:" + f.code
            parent = c
            for sc in f.subcodes:
                s = etree.SubElement(parent, Q(S12, "Subcode"))
                etree.SubElement(s, Q(S12, "Value"), nsmap={"wsa": WSA}).text = "wsa:" + sc.split("}")[1]
                parent = s
            r = etree.SubElement(fe, Q(S12, "Reason"))
            t = etree.SubElement(r, Q(S12, "Text"))
            t.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
            t.text = f.reason
            if detail:
                d = etree.SubElement(fe, Q(S12, "Detail"))
                d.extend(detail)
        out = self.envelope(ens, f.action, msgid, f.headers, fe)
        status = f.status or (400 if ens == S12 and f.code == "Sender" else 500)
        self.reply(status, out, self.ctype(ens))

    # ---- operations
    def op_GetResourcePropertyDocument(self, endpoint, rid, req):
        r = el(Q(RP, "GetResourcePropertyDocumentResponse"), nsmap=NSMAP)
        r.append(self.state.doc(endpoint, rid))
        return r

    def values(self, endpoint, rid, qn_el, text=None):
        qn = parse_qname(qn_el, text)
        doc = self.state.doc(endpoint, rid)
        known = {c.tag for c in doc}
        if endpoint == "System":
            known |= {Q(VCDS, "Description"), Q(VCDS, "Tag")}
        if qn is None or qn not in known:
            raise self.wsrf(RP, "InvalidResourcePropertyQNameFault", "unknown property %r" % (text or qn_el.text))
        return [c for c in doc if c.tag == qn]

    def op_GetResourceProperty(self, endpoint, rid, req):
        r = el(Q(RP, "GetResourcePropertyResponse"), nsmap=NSMAP)
        r.extend(self.values(endpoint, rid, req))
        return r

    def op_GetMultipleResourceProperties(self, endpoint, rid, req):
        r = el(Q(RP, "GetMultipleResourcePropertiesResponse"), nsmap=NSMAP)
        for p in req.findall(Q(RP, "ResourceProperty")):
            r.extend(self.values(endpoint, rid, p))
        return r

    def op_QueryResourceProperties(self, endpoint, rid, req):
        qe = req.find(Q(RP, "QueryExpression"))
        if qe is None or qe.get("Dialect") != XPATH:
            raise self.wsrf(RP, "UnknownQueryExpressionDialectFault", "unknown dialect")
        doc = self.state.doc(endpoint, rid)
        etree.ElementTree(doc)
        ns = {k: v for k, v in qe.nsmap.items() if k}
        try:
            res = doc.xpath((qe.text or "").strip(), namespaces=ns)
        except etree.XPathError as e:
            raise self.wsrf(RP, "InvalidQueryExpressionFault", "invalid XPath: %s" % e)
        r = el(Q(RP, "QueryResourcePropertiesResponse"), nsmap=NSMAP)
        if isinstance(res, bool):
            r.text = "true" if res else "false"
        elif isinstance(res, float):
            r.text = ("%d" % res) if res == int(res) else repr(res)
        elif isinstance(res, str):
            r.text = res
        else:
            for x in res:
                if isinstance(x, str):
                    r.text = (r.text or "") + x
                else:
                    r.append(x)
        return r

    def op_SetResourceProperties(self, endpoint, rid, req):
        s = self.state.systems[rid]
        desc, tags = s["desc"], list(s["tags"])
        writable = {Q(VCDS, "Description"), Q(VCDS, "Tag")}
        known = writable | {c.tag for c in self.state.doc(endpoint, rid)}
        for comp in req:
            if not isinstance(comp.tag, str):
                continue
            kind = etree.QName(comp).localname
            if kind == "Delete":
                qn = parse_qname(comp, comp.get("ResourceProperty"))
                items = [qn]
            else:
                items = [c.tag for c in comp if isinstance(c.tag, str)]
            for qn in items:
                if qn not in known:
                    raise self.wsrf(RP, "InvalidResourcePropertyQNameFault", "unknown property %s" % qn)
                if qn not in writable:
                    raise self.wsrf(RP, "UnableToModifyResourcePropertyFault", "%s is read-only" % qn,
                                    change=[etree.fromstring(etree.tostring(c)) for c in comp if c.tag == qn][:1] or [])
            vals = [c for c in comp if isinstance(c.tag, str)]
            if kind == "Delete":
                if items[0] == Q(VCDS, "Description"):
                    desc = None
                else:
                    tags = []
            elif kind in ("Update", "Insert"):
                d = [v.text or "" for v in vals if v.tag == Q(VCDS, "Description")]
                t = [v.text or "" for v in vals if v.tag == Q(VCDS, "Tag")]
                if d:
                    if len(d) > 1 or (kind == "Insert" and desc is not None):
                        raise self.wsrf(RP, "InvalidModificationFault", "Description is 0..1", change=[])
                    desc = d[0]
                if t:
                    tags = t if kind == "Update" else tags + t
            else:
                raise self.wsrf(RP, "InvalidModificationFault", "unknown component %s" % kind, change=[])
        old_d, old_t = s["desc"], s["tags"]
        s["desc"], s["tags"] = desc, tags
        self.state.save()
        if old_d != desc:
            self.state.publish_change("System", rid, Q(VCDS, "Description"),
                                      [el(Q(VCDS, "Description"), old_d, nsmap=NSMAP)] if old_d is not None else [],
                                      [el(Q(VCDS, "Description"), desc, nsmap=NSMAP)] if desc is not None else [])
        if old_t != tags:
            self.state.publish_change("System", rid, Q(VCDS, "Tag"), [el(Q(VCDS, "Tag"), x, nsmap=NSMAP) for x in old_t],
                                      [el(Q(VCDS, "Tag"), x, nsmap=NSMAP) for x in tags])
        return el(Q(RP, "SetResourcePropertiesResponse"), nsmap=NSMAP)

    def op_Destroy(self, endpoint, rid, req):
        if endpoint == "System":
            self.state.destroy_system(rid)
        else:
            del self.state.subs[rid]
        self.state.save()
        return el(Q(RL, "DestroyResponse"), nsmap=NSMAP)

    def op_SetTerminationTime(self, endpoint, rid, req):
        s = self.state.systems[rid]
        cur = now()
        d = req.find(Q(RL, "RequestedLifetimeDuration"))
        t = req.find(Q(RL, "RequestedTerminationTime"))
        try:
            if d is not None:
                new = parse_time(d.text, cur)
            elif t is not None and t.get(Q(XSI, "nil")) in ("true", "1"):
                new = None
            elif t is not None:
                new = parse_time(t.text, cur)
            else:
                raise ValueError("no time")
            if new is not None:
                new.timestamp()
        except (ValueError, isodate.ISO8601Error, OverflowError) as e:
            raise self.wsrf(RL, "UnableToSetTerminationTimeFault", "bad time: %s" % e)
        s["tt"] = None if new is None else new.timestamp()
        self.state.save()
        r = el(Q(RL, "SetTerminationTimeResponse"), nsmap=NSMAP)
        n = etree.SubElement(r, Q(RL, "NewTerminationTime"))
        if new is None:
            n.set(Q(XSI, "nil"), "true")
        else:
            n.text = fmt(new)
        etree.SubElement(r, Q(RL, "CurrentTime")).text = fmt(cur)
        return r

    def op_Subscribe(self, endpoint, rid, req):
        cons = req.find(Q(WSNT, "ConsumerReference"))
        te = req.find("%s/%s" % (Q(WSNT, "Filter"), Q(WSNT, "TopicExpression")))
        if cons is None or te is None:
            raise self.wsrf(WSNT, "SubscribeCreationFailedFault", "ConsumerReference and a TopicExpression are required",
                            action="http://docs.oasis-open.org/wsn/fault")
        if te.get("Dialect") not in (SIMPLE, CONCRETE):
            raise self.wsrf(WSNT, "TopicExpressionDialectUnknownFault", "unknown dialect",
                            action="http://docs.oasis-open.org/wsn/fault")
        qn = parse_qname(te)
        topics = {c.tag for c in self.state.doc(endpoint, rid)}
        if endpoint == "System":
            topics |= {Q(VCDS, "Description"), Q(VCDS, "Tag"), Q(RL, "ResourceTermination")}
        if qn not in topics:
            raise self.wsrf(WSNT, "TopicNotSupportedFault", "no topic %s" % qn,
                            action="http://docs.oasis-open.org/wsn/fault")
        it = req.findtext(Q(WSNT, "InitialTerminationTime"))
        tt = parse_time(it, now()).timestamp() if it else None
        sid = str(uuid.uuid4())
        cons_copy = etree.fromstring(etree.tostring(cons))
        self.state.subs[sid] = dict(consumer=etree.tostring(cons_copy).decode(), topic=qn[1:].split("}"),
                                    producer=[endpoint, rid], tt=tt, created=time.time())
        self.state.save()
        r = el(Q(WSNT, "SubscribeResponse"), nsmap=NSMAP)
        r.append(self.state.epr("Subscription", sid, Q(WSNT, "SubscriptionReference")))
        etree.SubElement(r, Q(WSNT, "CurrentTime")).text = fmt(now())
        if tt:
            etree.SubElement(r, Q(WSNT, "TerminationTime")).text = fmt(dt.datetime.fromtimestamp(tt, dt.timezone.utc))
        return r

    def op_Renew(self, endpoint, rid, req):
        tt = parse_time(req.findtext(Q(WSNT, "TerminationTime")), now())
        self.state.subs[rid]["tt"] = tt.timestamp()
        self.state.save()
        r = el(Q(WSNT, "RenewResponse"), nsmap=NSMAP)
        etree.SubElement(r, Q(WSNT, "TerminationTime")).text = fmt(tt)
        etree.SubElement(r, Q(WSNT, "CurrentTime")).text = fmt(now())
        return r

    def op_Unsubscribe(self, endpoint, rid, req):
        del self.state.subs[rid]
        self.state.save()
        return el(Q(WSNT, "UnsubscribeResponse"), nsmap=NSMAP)

    def op_Create(self, endpoint, rid, req):
        old = self.state.active_systems()
        new_rid = str(uuid.uuid4())
        self.state.systems[new_rid] = dict(api_id="urn:uuid:" + new_rid, created=time.time(), desc=None,
                                           tags=[], tt=None)
        self.state.save()
        self.state.publish_change("Portal", None, Q(API, "ActiveSystems"), [old], [self.state.active_systems()])
        r = el(Q(API, "createResponse"), nsmap=NSMAP)
        etree.SubElement(r, Q(API, "ResourceId")).text = "urn:uuid:" + new_rid
        r.append(self.state.epr("System", new_rid, Q(API, "systemReference")))
        return r

    def op_LookupSystem(self, endpoint, rid, req):
        want = (req.findtext(Q(API, "ResourceId")) or "").strip()
        for k, s in self.state.systems.items():
            if s["api_id"] == want:
                return self.state.epr("System", k, Q(API, "lookupSystemResponse"))
        raise self.wsrf(R2, "ResourceUnknownFault", "no System %s" % want)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--listen", required=True)
    s.add_argument("--data-dir", required=True)
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    if host not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("mock: loopback only")
    os.makedirs(a.data_dir, exist_ok=True)
    Handler.state = State(a.data_dir, "http://%s:%s" % (host, port))
    httpd = ThreadingHTTPServer((host, int(port)), Handler)
    httpd.daemon_threads = True

    def reaper():
        while True:
            time.sleep(0.2)
            Handler.state.reap()
    threading.Thread(target=reaper, daemon=True).start()
    httpd.serve_forever()


if __name__ == "__main__":
    main()
