"""Raw SOAP 1.1/1.2 + WS-Addressing client and response checks for the vcds conformance suite.

Everything here is built with lxml + requests so that the exact bytes on the wire are under the
test's control (wrong actions, missing headers, hostile XML). zeep-based calls live in the tests.
Only 127.0.0.1 is ever contacted.
"""
import datetime as _dt
import os
import re
import tempfile
import uuid

# The reference copies of the OASIS schemas (../shared/reference/oasis) use absolute
# http://docs.oasis-open.org/... import locations that their catalog.xml maps to local files.
# libxml2 reads XML_CATALOG_FILES when it first needs a catalog, so set it before lxml loads.
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED_OASIS = os.environ.get(
    "VCDS_SHARED_OASIS", os.path.normpath(os.path.join(ROOT, "..", "shared", "reference", "oasis")))
if os.path.isfile(os.path.join(SHARED_OASIS, "catalog.xml")):
    _cat = os.path.join(SHARED_OASIS, "catalog.xml")
    _old = os.environ.get("XML_CATALOG_FILES", "")
    if _cat not in _old.split():
        os.environ["XML_CATALOG_FILES"] = (_old + " " + _cat).strip()

import requests  # noqa: E402
from lxml import etree  # noqa: E402

# ----------------------------------------------------------------------------------------------
# namespaces and action URIs (docs/api.md)
NS = {
    "s11": "http://schemas.xmlsoap.org/soap/envelope/",
    "s12": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "vcds": "urn:vcds:2026",
    "api": "http://www.gridforum.org/cddlm/deployapi/2005/02",
    "muws1": "http://docs.oasis-open.org/wsdm/muws1-2.xsd",
    "wsrf-rp": "http://docs.oasis-open.org/wsrf/rp-2",
    "wsrf-rl": "http://docs.oasis-open.org/wsrf/rl-2",
    "wsrf-bf": "http://docs.oasis-open.org/wsrf/bf-2",
    "wsrf-r": "http://docs.oasis-open.org/wsrf/r-2",
    "wsnt": "http://docs.oasis-open.org/wsn/b-2",
    "wstop": "http://docs.oasis-open.org/wsn/t-1",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "cmp": "http://www.gridforum.org/cddlm/components/2005/02",
}
ENV_NS = {"1.1": NS["s11"], "1.2": NS["s12"]}
SOAP_VERSIONS = ["1.1", "1.2"]

RPW = "http://docs.oasis-open.org/wsrf/rpw-2"
RLW = "http://docs.oasis-open.org/wsrf/rlw-2"
BW = "http://docs.oasis-open.org/wsn/bw-2"
TNS = "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl"
ACTIONS = {
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
    "Initialize": TNS + "/SystemEPR/InitializeRequest",
    "AddFile": TNS + "/SystemEPR/AddFileRequest",
    "Run": TNS + "/SystemEPR/RunRequest",
    "Terminate": TNS + "/SystemEPR/TerminateRequest",
    "Ping": TNS + "/SystemEPR/PingRequest",
    "Resolve": TNS + "/SystemEPR/ResolveRequest",
    "Suspend": "urn:vcds:2026/SystemEPR/SuspendRequest",
    "Resume": "urn:vcds:2026/SystemEPR/ResumeRequest",
}
NOTIFY_ACTION = BW + "/NotificationConsumer/Notify"
WSRF_FAULT = "http://docs.oasis-open.org/wsrf/fault"
WSA_FAULT = "http://www.w3.org/2005/08/addressing/fault"
WSN_FAULT = "http://docs.oasis-open.org/wsn/fault"
XPATH_DIALECT = "http://www.w3.org/TR/1999/REC-xpath-19991116"
SIMPLE_DIALECT = "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Simple"
CONCRETE_DIALECT = "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete"
ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"


def response_action(request_action):
    return re.sub(r"Request$", "Response", request_action)


def q(prefixed):
    """'wsrf-rp:GetResourceProperty' -> '{http://...}GetResourceProperty'."""
    p, local = prefixed.split(":", 1)
    return "{%s}%s" % (NS[p], local)


# A parser that never touches the network, never expands entities and never loads a DTD.
SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                              huge_tree=False, remove_blank_text=False)


def parse(data):
    return etree.fromstring(data, SAFE_PARSER)


# ----------------------------------------------------------------------------------------------
# envelopes
_XMLNS = " ".join('xmlns:%s="%s"' % (p, u) for p, u in NS.items() if p not in ("s11", "s12"))


def resource_id_header(rid, must_understand=None, soap="1.1"):
    mu = ""
    if must_understand is not None:
        mu = ' env:mustUnderstand="%s"' % must_understand
    return ('<vcds:ResourceId wsa:IsReferenceParameter="true"%s>%s</vcds:ResourceId>'
            % (mu, _esc(rid)))


def _esc(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def envelope(soap, body, action=None, to=None, message_id=None, headers=(), reply_to=True,
             extra_ns=""):
    """A complete envelope as bytes. body/headers are XML strings that may use the prefixes in NS
    (declared on the Envelope) and env: for the envelope namespace. action=None omits wsa:Action."""
    h = []
    if to is not None:
        h.append("<wsa:To>%s</wsa:To>" % _esc(to))
    if action is not None:
        h.append("<wsa:Action>%s</wsa:Action>" % _esc(action))
    if message_id is not None:
        h.append("<wsa:MessageID>%s</wsa:MessageID>" % _esc(message_id))
    if reply_to:
        h.append("<wsa:ReplyTo><wsa:Address>%s</wsa:Address></wsa:ReplyTo>" % ANONYMOUS)
    h.extend(headers)
    text = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<env:Envelope xmlns:env="%s" %s %s><env:Header>%s</env:Header>'
            '<env:Body>%s</env:Body></env:Envelope>'
            % (ENV_NS[soap], _XMLNS, extra_ns, "".join(h), body))
    return text.encode("utf-8")


def http_headers(soap, action):
    if soap == "1.1":
        h = {"Content-Type": "text/xml; charset=utf-8"}
        if action is not None:
            h["SOAPAction"] = '"%s"' % action
        return h
    ct = "application/soap+xml; charset=utf-8"
    if action is not None:
        ct += '; action="%s"' % action
    return {"Content-Type": ct}


class Resp:
    """A parsed HTTP/SOAP response."""

    def __init__(self, soap, http, request_message_id=None, url=None, request=None):
        self.soap = soap
        self.http = http
        self.status = http.status_code
        self.content_type = http.headers.get("Content-Type", "")
        self.raw = http.content
        self.request_message_id = request_message_id
        self.url = url
        self.request = request
        self.xml = None
        self.parse_error = None
        try:
            self.xml = parse(http.content)
        except etree.XMLSyntaxError as e:
            self.parse_error = e

    # -- navigation
    @property
    def env_ns(self):
        return etree.QName(self.xml).namespace if self.xml is not None else None

    def header(self, qname):
        if self.xml is None:
            return None
        hdr = self.xml.find("{%s}Header" % self.env_ns)
        if hdr is None:
            return None
        return hdr.find(q(qname) if ":" in qname and not qname.startswith("{") else qname)

    def header_text(self, qname):
        el = self.header(qname)
        return None if el is None else (el.text or "").strip()

    @property
    def body(self):
        return self.xml.find("{%s}Body" % self.env_ns)

    @property
    def body_child(self):
        kids = [c for c in self.body if isinstance(c.tag, str)]
        return kids[0] if kids else None

    @property
    def is_fault(self):
        c = self.body_child if self.xml is not None else None
        return c is not None and c.tag == "{%s}Fault" % self.env_ns

    def describe(self):
        txt = self.raw.decode("utf-8", "replace")
        if len(txt) > 3000:
            txt = txt[:3000] + "...[%d bytes]" % len(self.raw)
        req = ""
        if self.request is not None:
            r = self.request.decode("utf-8", "replace")
            req = "\n--- request (%d bytes) ---\n%s" % (len(self.request), r[:1500])
        return "POST %s -> HTTP %s %s%s\n--- response ---\n%s" % (
            self.url, self.status, self.content_type, req, txt)

    # -- fault fields, both SOAP versions
    def fault_code(self):
        """(code QName as '{ns}local', [subcode QNames]) of a fault."""
        f = self.body_child
        if self.soap_of_response == "1.1":
            fc = f.find("faultcode")
            return resolve_qname(fc), []
        code = f.find("{%s}Code" % NS["s12"])
        val = code.find("{%s}Value" % NS["s12"])
        subs = []
        sc = code.find("{%s}Subcode" % NS["s12"])
        while sc is not None:
            subs.append(resolve_qname(sc.find("{%s}Value" % NS["s12"])))
            sc = sc.find("{%s}Subcode" % NS["s12"])
        return resolve_qname(val), subs

    def fault_reason(self):
        f = self.body_child
        if self.soap_of_response == "1.1":
            el = f.find("faultstring")
        else:
            el = f.find("{%s}Reason/{%s}Text" % (NS["s12"], NS["s12"]))
        return None if el is None else el.text

    def fault_detail_children(self):
        f = self.body_child
        d = f.find("detail") if self.soap_of_response == "1.1" else f.find("{%s}Detail" % NS["s12"])
        if d is None:
            return []
        return [c for c in d if isinstance(c.tag, str)]

    @property
    def soap_of_response(self):
        return {NS["s11"]: "1.1", NS["s12"]: "1.2"}.get(self.env_ns)


def resolve_qname(el):
    """Resolve an element's xsd:QName text with its in-scope namespaces -> '{ns}local'."""
    if el is None or el.text is None:
        return None
    text = el.text.strip()
    if ":" in text:
        p, local = text.split(":", 1)
        ns = el.nsmap.get(p)
        return "{%s}%s" % (ns, local) if ns else "{?%s}%s" % (p, local)
    ns = el.nsmap.get(None)
    return "{%s}%s" % (ns, text) if ns else text


def resolve_qname_attr(el, attr):
    """Resolve a QName-valued attribute with the element's in-scope namespaces."""
    v = (el.get(attr) or "").strip()
    p, _, local = v.rpartition(":")
    ns = el.nsmap.get(p or None)
    return "{%s}%s" % (ns, local) if ns else local


class RawHTTPResponse:
    """What requests.Response offers to Resp, read from a raw socket."""

    def __init__(self, status, headers, content):
        self.status_code, self.headers, self.content = status, headers, content


def raw_post(base, path, data, headers, timeout=60):
    """POST over a plain socket that tolerates the server answering (and closing) before the whole
    body was sent, as HTTP allows for oversized requests. Returns RawHTTPResponse."""
    import socket
    from urllib.parse import urlsplit
    import requests.structures
    u = urlsplit(base)
    sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
    head = ["POST %s HTTP/1.1" % path, "Host: %s:%d" % (u.hostname, u.port), "Connection: close",
            "Content-Length: %d" % len(data)] + ["%s: %s" % kv for kv in headers.items()]
    try:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        view = memoryview(data)
        for i in range(0, len(data), 65536):
            sock.sendall(view[i:i + 65536])
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered early; read what it said
    buf = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    finally:
        sock.close()
    if b"\r\n\r\n" not in buf:
        raise requests.ConnectionError("no HTTP response (%d bytes received)" % len(buf))
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = requests.structures.CaseInsensitiveDict(
        (l.split(":", 1)[0].strip(), l.split(":", 1)[1].strip()) for l in lines[1:] if ":" in l)
    if hdrs.get("Transfer-Encoding", "").lower() == "chunked":
        out, rest = b"", body
        while rest:
            size_line, rest = rest.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        body = out
    elif "Content-Length" in hdrs:
        body = body[:int(hdrs["Content-Length"])]
    return RawHTTPResponse(status, hdrs, body)


class Server:
    """Where a vcds server listens (base URL) plus convenience calls."""

    def __init__(self, base):
        self.base = base.rstrip("/")

    def url(self, endpoint):
        return "%s/wsrf/services/%s" % (self.base, endpoint)

    def post_raw(self, endpoint, data, headers, timeout=30):
        url = self.url(endpoint) if "/" not in endpoint else self.base + endpoint
        http = requests.post(url, data=data, headers=headers, timeout=timeout)
        return http, url

    def call(self, soap, endpoint, body, op=None, action="__op__", rid=None, headers=(),
             message_id="__new__", to="__url__", http_action="__same__", timeout=30, extra_ns=""):
        """Send one request. op names the operation (for the default action); action=None omits
        wsa:Action; http_action: SOAPAction / action= parameter (default: same as wsa:Action)."""
        if action == "__op__":
            action = ACTIONS[op]
        if message_id == "__new__":
            message_id = "urn:uuid:%s" % uuid.uuid4()
        if to == "__url__":
            to = self.url(endpoint)
        hdrs = list(headers)
        if rid is not None:
            hdrs.append(resource_id_header(rid))
        data = envelope(soap, body, action=action, to=to, message_id=message_id, headers=hdrs,
                        extra_ns=extra_ns)
        if http_action == "__same__":
            http_action = action
        http, url = self.post_raw(endpoint, data, http_headers(soap, http_action), timeout=timeout)
        return Resp(soap, http, message_id, url, data)

    def alive(self, timeout=10):
        """True when the Portal still answers a plain GetResourcePropertyDocument."""
        try:
            r = self.call("1.1", "Portal", "<wsrf-rp:GetResourcePropertyDocument/>",
                          op="GetResourcePropertyDocument", timeout=timeout)
        except requests.RequestException:
            return False
        return r.status == 200 and r.xml is not None and not r.is_fault


# ----------------------------------------------------------------------------------------------
# request bodies (validated offline by test_offline.py)
def body_get_rp_doc():
    return "<wsrf-rp:GetResourcePropertyDocument/>"


def body_get_rp(qname_text, extra_ns=""):
    return "<wsrf-rp:GetResourceProperty %s>%s</wsrf-rp:GetResourceProperty>" % (extra_ns, qname_text)


def body_get_multiple(qnames, extra_ns=""):
    return ("<wsrf-rp:GetMultipleResourceProperties %s>%s</wsrf-rp:GetMultipleResourceProperties>"
            % (extra_ns, "".join("<wsrf-rp:ResourceProperty>%s</wsrf-rp:ResourceProperty>" % x
                                 for x in qnames)))


def body_query(expr, dialect=XPATH_DIALECT, extra_ns=""):
    return ('<wsrf-rp:QueryResourceProperties><wsrf-rp:QueryExpression Dialect="%s" %s>%s'
            '</wsrf-rp:QueryExpression></wsrf-rp:QueryResourceProperties>'
            % (dialect, extra_ns, _esc(expr)))


def body_set_rp(*components):
    return "<wsrf-rp:SetResourceProperties>%s</wsrf-rp:SetResourceProperties>" % "".join(components)


def update(xml):
    return "<wsrf-rp:Update>%s</wsrf-rp:Update>" % xml


def insert(xml):
    return "<wsrf-rp:Insert>%s</wsrf-rp:Insert>" % xml


def delete(qname):
    return '<wsrf-rp:Delete ResourceProperty="%s"/>' % qname


def body_destroy():
    return "<wsrf-rl:Destroy/>"


def body_set_tt(duration=None, time=None, nil=False):
    if nil:
        inner = '<wsrf-rl:RequestedTerminationTime xsi:nil="true"/>'
    elif duration is not None:
        inner = "<wsrf-rl:RequestedLifetimeDuration>%s</wsrf-rl:RequestedLifetimeDuration>" % duration
    else:
        inner = "<wsrf-rl:RequestedTerminationTime>%s</wsrf-rl:RequestedTerminationTime>" % time
    return "<wsrf-rl:SetTerminationTime>%s</wsrf-rl:SetTerminationTime>" % inner


def body_subscribe(consumer, topic, dialect=SIMPLE_DIALECT, ref_params="", initial=None,
                   extra_ns=""):
    it = "" if initial is None else "<wsnt:InitialTerminationTime>%s</wsnt:InitialTerminationTime>" % initial
    rp = "" if not ref_params else "<wsa:ReferenceParameters>%s</wsa:ReferenceParameters>" % ref_params
    return ('<wsnt:Subscribe><wsnt:ConsumerReference><wsa:Address>%s</wsa:Address>%s'
            '</wsnt:ConsumerReference><wsnt:Filter><wsnt:TopicExpression Dialect="%s" %s>%s'
            '</wsnt:TopicExpression></wsnt:Filter>%s</wsnt:Subscribe>'
            % (_esc(consumer), rp, dialect, extra_ns, topic, it))


def body_renew(tt):
    return "<wsnt:Renew><wsnt:TerminationTime>%s</wsnt:TerminationTime></wsnt:Renew>" % tt


def body_unsubscribe():
    return "<wsnt:Unsubscribe/>"


def body_create(hostname=None):
    if hostname is None:
        return "<api:createRequest/>"
    return "<api:createRequest><api:hostname>%s</api:hostname></api:createRequest>" % _esc(hostname)


def body_lookup(resource_id):
    return "<api:lookupSystemRequest><api:ResourceId>%s</api:ResourceId></api:lookupSystemRequest>" % _esc(resource_id)


# ----------------------------------------------------------------------------------------------
# EPRs
def epr_of(el):
    """(address, {ref-param QName: text}) of an EndpointReferenceType element."""
    addr = el.find(q("wsa:Address"))
    params = {}
    rp = el.find(q("wsa:ReferenceParameters"))
    if rp is not None:
        for c in rp:
            if isinstance(c.tag, str):
                params[c.tag] = (c.text or "").strip()
    return (None if addr is None else (addr.text or "").strip()), params


# ----------------------------------------------------------------------------------------------
# time
_DT_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$")


def parse_dt(text):
    m = _DT_RE.match((text or "").strip())
    if not m:
        raise ValueError("not an xsd:dateTime: %r" % text)
    base = _dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    if m.group(2):
        base += _dt.timedelta(microseconds=int(round(float(m.group(2)) * 1e6)))
    tz = m.group(3)
    if tz is None:
        raise ValueError("xsd:dateTime without time zone: %r" % text)
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        base -= sign * _dt.timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    return base.replace(tzinfo=_dt.timezone.utc)


def utcnow():
    return _dt.datetime.now(_dt.timezone.utc)


def xsd_dt(d):
    return d.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------------------------
# schema validation (repo schemas/, and the reference copies when present)
_SCHEMA_FILES_ORDER = [
    ("http://schemas.xmlsoap.org/soap/envelope/", "soap11-envelope.xsd"),
    ("http://www.w3.org/2003/05/soap-envelope", "soap12-envelope.xsd"),
    ("http://www.w3.org/XML/1998/namespace", "xml.xsd"),
    ("http://www.w3.org/2005/08/addressing", "ws-addr.xsd"),
    ("http://docs.oasis-open.org/wsrf/bf-2", "bf-2.xsd"),
    ("http://docs.oasis-open.org/wsrf/r-2", "r-2.xsd"),
    ("http://docs.oasis-open.org/wsrf/rp-2", "rp-2.xsd"),
    ("http://docs.oasis-open.org/wsrf/rl-2", "rl-2.xsd"),
    ("http://docs.oasis-open.org/wsn/t-1", "t-1.xsd"),
    ("http://docs.oasis-open.org/wsn/b-2", "b-2.xsd"),
]
_VCDS_SCHEMAS = [
    ("http://docs.oasis-open.org/wsdm/muws1-2.xsd", "muws1-2.xsd"),
    ("http://www.gridforum.org/cddlm/deployapi/2005/02", "deployapi.xsd"),
    ("urn:vcds:2026", "vcds.xsd"),
]
_validators = None


def _combined_schema(oasis_dir):
    parts = ['<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
             'targetNamespace="urn:vcds:conformance:all">']
    for ns, f in _SCHEMA_FILES_ORDER:
        parts.append('<xsd:import namespace="%s" schemaLocation="%s"/>'
                     % (ns, _file_uri(os.path.join(oasis_dir, f))))
    for ns, f in _VCDS_SCHEMAS:
        parts.append('<xsd:import namespace="%s" schemaLocation="%s"/>'
                     % (ns, _file_uri(os.path.join(ROOT, "schemas", f))))
    parts.append("</xsd:schema>")
    with tempfile.TemporaryDirectory(prefix="vcds-xsd-") as d:
        path = os.path.join(d, "all.xsd")
        with open(path, "w") as fh:
            fh.write("\n".join(parts))
        return etree.XMLSchema(etree.parse(path, SAFE_PARSER))


def _file_uri(p):
    return "file://" + os.path.abspath(p)


def validators():
    """[(label, XMLSchema)]: 'repo' (schemas/oasis) and, when present, 'reference'
    (../shared/reference/oasis). Each validates a whole SOAP envelope: the envelope schemas'
    lax wildcards validate every header and body element whose declaration is known."""
    global _validators
    if _validators is None:
        v = [("repo schemas/oasis", _combined_schema(os.path.join(ROOT, "schemas", "oasis")))]
        if os.path.isfile(os.path.join(SHARED_OASIS, "rp-2.xsd")):
            v.append(("reference " + SHARED_OASIS, _combined_schema(SHARED_OASIS)))
        _validators = v
    return _validators


def schema_errors(el):
    """List of 'label: error' for every validator that rejects el (a whole envelope, or any
    element with a global declaration)."""
    errs = []
    for label, schema in validators():
        if not schema.validate(el):
            errs.extend("%s: %s" % (label, e) for e in schema.error_log)
    return errs
