#!/usr/bin/env python3
"""vcctl.py: an independent command-line client of any vcds (CDDLM Portal and System endpoints
over SOAP 1.1), written against the WSDL with nothing but the Python standard library, so that
the conformance suite drives the service as an outside program would. The vcctl for users is the
Rust binary (clients/vcctl, `cargo build --release` makes target/release/vcctl); this one keeps
the same commands and output.

    conformance/vcctl.py --url http://HOST:PORT COMMAND [ARGS]

Commands (SYSTEM is the System's ResourceId):
    create                         create a System; prints its ResourceId
    initialize SYSTEM FILE         send the CDL descriptor FILE inline (--validate-only: check only)
    run SYSTEM                     start the cluster
    deploy FILE                    create + initialize + run, show progress until ready or failed;
                                   the ResourceId is the last line
    status SYSTEM                  lifecycle state, phase, times, cluster, reservation window,
                                   network, and the node table (P-node, IP, MAC, install state)
    watch SYSTEM                   show every phase change until released or failed (Ctrl-C stops)
    metrics SYSTEM                 Ganglia figures of each node (state, load, CPU, memory, network)
                                   and of the cluster, from the vcds:NodeMetrics and
                                   vcds:ClusterMetrics resource properties
    suspend SYSTEM / resume SYSTEM
    terminate SYSTEM [--reason R]
    destroy SYSTEM
    list                           the active Systems with state and phase
    extend SYSTEM DURATION         SetTerminationTime, e.g. PT6H or P2D from now
    subscribe SYSTEM CONSUMER_URL  [--topic cmp:LifecycleTransition]

--xml prints the raw response body instead of a table. Any fault exits with status 1 (the fault
reason and the vcds error code on stderr); a transport failure with status 2.
Only the Python standard library is used.
"""
import argparse
import sys
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

NS = {
    "s": "http://schemas.xmlsoap.org/soap/envelope/",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "vcds": "urn:vcds:2026",
    "api": "http://www.gridforum.org/cddlm/deployapi/2005/02",
    "cmp": "http://www.gridforum.org/cddlm/components/2005/02",
    "muws1": "http://docs.oasis-open.org/wsdm/muws1-2.xsd",
    "rp": "http://docs.oasis-open.org/wsrf/rp-2",
    "rl": "http://docs.oasis-open.org/wsrf/rl-2",
    "bf": "http://docs.oasis-open.org/wsrf/bf-2",
    "wsnt": "http://docs.oasis-open.org/wsn/b-2",
    "vc": "urn:vcds:2026:cdl",
}
CDL = "http://www.gridforum.org/namespaces/2005/02/cddlm/CDL-1.0"
VALIDATE_ONLY = "urn:vcds:2026:option:validate-only"
TNS = "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl"
ACTIONS = {
    "Create": TNS + "/PortalEPR/CreateRequest",
    "Initialize": TNS + "/SystemEPR/InitializeRequest",
    "Run": TNS + "/SystemEPR/RunRequest",
    "Terminate": TNS + "/SystemEPR/TerminateRequest",
    "Suspend": "urn:vcds:2026/SystemEPR/SuspendRequest",
    "Resume": "urn:vcds:2026/SystemEPR/ResumeRequest",
    "GetDocument": "http://docs.oasis-open.org/wsrf/rpw-2/GetResourcePropertyDocument/GetResourcePropertyDocumentRequest",
    "GetProperty": "http://docs.oasis-open.org/wsrf/rpw-2/GetResourceProperty/GetResourcePropertyRequest",
    "Destroy": "http://docs.oasis-open.org/wsrf/rlw-2/ImmediateResourceTermination/DestroyRequest",
    "SetTerminationTime": "http://docs.oasis-open.org/wsrf/rlw-2/ScheduledResourceTermination/SetTerminationTimeRequest",
    "Subscribe": "http://docs.oasis-open.org/wsn/bw-2/NotificationProducer/SubscribeRequest",
}
DONE_PHASES = {"ready", "failed", "released"}


class Fault(Exception):
    def __init__(self, reason, code, detail):
        super().__init__(reason)
        self.reason, self.code, self.detail = reason, code, detail


def q(prefixed):
    p, local = prefixed.split(":", 1)
    return "{%s}%s" % (NS[p], local)


class Client:
    def __init__(self, url, show_xml=False):
        self.base = url.rstrip("/")
        self.show_xml = show_xml

    def call(self, endpoint, op, body, rid=None):
        """One SOAP 1.1 request; the response body's first child, or Fault."""
        action = ACTIONS[op]
        url = "%s/wsrf/services/%s" % (self.base, endpoint)
        decls = " ".join('xmlns:%s="%s"' % (p, u) for p, u in NS.items())
        rid_header = ("" if rid is None else
                      '<vcds:ResourceId wsa:IsReferenceParameter="true">%s</vcds:ResourceId>' % escape(rid))
        envelope = ('<s:Envelope %s><s:Header><wsa:To>%s</wsa:To><wsa:Action>%s</wsa:Action>'
                    "<wsa:MessageID>urn:uuid:%s</wsa:MessageID>%s</s:Header><s:Body>%s</s:Body></s:Envelope>"
                    % (decls, escape(url), escape(action), uuid.uuid4(), rid_header, body))
        req = urllib.request.Request(url, data=envelope.encode("utf-8"), method="POST", headers={
            "Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"%s"' % action})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                text = resp.read()
        except urllib.error.HTTPError as e:
            text = e.read()
        root = ET.fromstring(text)
        body_el = root.find(q("s:Body"))
        child = None if body_el is None or len(body_el) == 0 else body_el[0]
        if child is None:
            raise Fault("empty response", None, None)
        if child.tag == q("s:Fault"):
            detail = child.find("detail")
            first = detail[0] if detail is not None and len(detail) else None
            code = None if first is None else first.findtext(q("bf:ErrorCode"))
            raise Fault((child.findtext("faultstring") or "").strip(), code, first)
        if self.show_xml:
            print(ET.tostring(child, encoding="unicode"))
        return child

    def system(self, op, rid, body):
        return self.call("System", op, body, rid=rid)

    def document(self, rid):
        resp = self.call("System", "GetDocument", "<rp:GetResourcePropertyDocument/>", rid=rid)
        return resp[0]


def strip_declaration(text):
    text = text.lstrip("\ufeff").lstrip()
    return text.split("?>", 1)[1].lstrip() if text.startswith("<?xml") else text


def read_descriptor(path):
    with open(path, encoding="utf-8") as f:
        return strip_declaration(f.read())


def status_of(doc):
    state = doc.find(q("vcds:SystemState") + "/" + q("cmp:State"))
    state_name = "?" if state is None or not len(state) else state[0].tag.rsplit("}", 1)[1]
    fields = {
        "ResourceId": doc.findtext(q("muws1:ResourceId")),
        "State": state_name.replace("State", "").lower(),
        "Phase": doc.findtext(q("vcds:Phase")) or "-",
        "Created": doc.findtext(q("api:CreatedTime")) or "-",
        "Started": doc.findtext(q("api:StartedTime")) or "-",
        "Terminated": doc.findtext(q("api:TerminatedTime")) or "-",
        "TerminationTime": doc.findtext(q("rl:TerminationTime")) or "never",
        "Cluster": doc.findtext(".//" + q("vc:cluster") + "/" + q("vc:name")) or "-",
        "Reservation": reservation_of(doc),
        "Network": network_of(doc),
    }
    login = doc.find(".//" + q("vc:cluster") + "/" + q("vc:login"))
    if login is not None:
        keys = [k.get("fingerprint") or "?" for k in login.findall(q("vc:authorizedKey"))]
        keys = ("%d authorized key%s: %s" % (len(keys), "" if len(keys) == 1 else "s", ", ".join(keys))
                if keys else "no authorized key")
        fields["User"] = "%s (%s)" % ((login.findtext(q("vc:user")) or "").strip(), keys)
    access = doc.find(q("vcds:Access"))
    if access is not None:
        user, host, port = (access.findtext(q("vcds:" + f)) for f in ("user", "host", "port"))
        fields["Login"] = "ssh %s%s@%s" % ("" if port == "22" else "-p %s " % port, user, host)
    scheduler = doc.find(q("vcds:Scheduler"))
    if scheduler is not None:
        nodes = ["%s %s" % (n.get("name"), (n.text or "").strip())
                 for n in scheduler.findall(q("vcds:node"))]
        fields["Scheduler"] = "%s: %s running, %s pending; %s (reported %s)" % (
            *(scheduler.findtext(q("vcds:" + f)) for f in ("name", "running", "pending")),
            ", ".join(nodes) or "no nodes", scheduler.findtext(q("vcds:reportedAt")))
    return fields


def reservation_of(doc):
    r = doc.find(q("vcds:Reservation"))
    if r is None:
        return "-"
    return "%s .. %s (%s)" % (r.findtext(q("vcds:start")), r.findtext(q("vcds:end")), r.findtext(q("vcds:state")))


def network_of(doc):
    n = doc.find(q("vcds:Network"))
    if n is None:
        return "-"
    return "%s %s, subnet %s, GW-node %s (%s)" % (
        n.findtext(q("vcds:isolation")), n.findtext(q("vcds:networkId")), n.findtext(q("vcds:subnet")),
        n.findtext(q("vcds:gateway") + "/" + q("vcds:pnode")), n.findtext(q("vcds:gateway") + "/" + q("vcds:ip")))


def nodes_of(doc):
    rows = []
    for n in doc.iter(q("vcds:Node")):
        rows.append({
            "Node": n.findtext(q("vcds:name")), "Appliance": n.findtext(q("vcds:appliance")),
            "P-node": n.findtext(q("vcds:pnode")), "IP": n.findtext(q("vcds:ip")),
            "MAC": n.findtext(q("vcds:mac")),
            "CPU/MiB/GiB": "%s/%s/%s" % (n.findtext(q("vcds:cpus")), n.findtext(q("vcds:memoryMiB")),
                                         n.findtext(q("vcds:diskGiB"))),
            "VM CPU/MiB": "%s/%s" % (n.findtext(q("vcds:vmCpus")) or "-", n.findtext(q("vcds:vmMemoryMiB")) or "-"),
            "State": n.findtext(q("vcds:state")),
            # the VM is not sized as booked
            "vm_differs": any(n.findtext(q("vcds:" + vm)) not in (None, n.findtext(q("vcds:" + booked)))
                              for vm, booked in (("vmCpus", "cpus"), ("vmMemoryMiB", "memoryMiB"))),
        })
    return rows


def metrics_of(doc):
    """(node rows, cluster figures) of the System's metric resource properties."""
    def fields(el):
        return {c.tag.rsplit("}", 1)[1]: (c.text or "") for c in el}
    nodes = [fields(n) for n in doc.iter(q("vcds:NodeMetrics"))]
    cluster = doc.find(q("vcds:ClusterMetrics"))
    return nodes, ({} if cluster is None else fields(cluster))


def table(rows, columns):
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(columns, widths)).rstrip())


def initialize_body(descriptor, validate_only=False):
    options = ('<api:options><api:option api:name="%s" api:mustUnderstand="true"/></api:options>'
               % VALIDATE_ONLY) if validate_only else ""
    return ('<api:initializeRequest><api:descriptor api:language="%s"><api:body>%s</api:body>'
            "</api:descriptor>%s</api:initializeRequest>" % (CDL, descriptor, options))


def create(c):
    resp = c.call("Portal", "Create", "<api:createRequest/>")
    return resp.findtext(q("api:ResourceId"))


def watch(c, rid, until=DONE_PHASES, out=sys.stderr):
    """Prints each state/phase change; returns the last phase once it is in `until`."""
    last = None
    while True:
        s = status_of(c.document(rid))
        now = (s["State"], s["Phase"])
        if now != last:
            print("%s  %-12s %s" % (time.strftime("%H:%M:%S"), s["State"], s["Phase"]), file=out, flush=True)
            last = now
        if s["Phase"] in until or s["State"] == "failed":
            return s["Phase"]
        time.sleep(1)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="vcctl", description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True, help="http://HOST:PORT of a vcds")
    ap.add_argument("--xml", action="store_true", help="print raw response bodies")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("create")
    p = sub.add_parser("initialize")
    p.add_argument("system")
    p.add_argument("file")
    p.add_argument("--validate-only", action="store_true")
    for name in ("run", "status", "watch", "metrics", "suspend", "resume", "destroy"):
        sub.add_parser(name).add_argument("system")
    p = sub.add_parser("deploy")
    p.add_argument("file")
    p = sub.add_parser("terminate")
    p.add_argument("system")
    p.add_argument("--reason", default="")
    sub.add_parser("list")
    p = sub.add_parser("extend")
    p.add_argument("system")
    p.add_argument("duration", help="xsd:duration from now, e.g. PT6H")
    p = sub.add_parser("subscribe")
    p.add_argument("system")
    p.add_argument("consumer", help="URL that receives wsnt:Notify")
    p.add_argument("--topic", default="cmp:LifecycleTransition")
    a = ap.parse_args(argv)
    c = Client(a.url, a.xml)
    try:
        if a.command == "create":
            print(create(c))
        elif a.command == "initialize":
            c.system("Initialize", a.system, initialize_body(read_descriptor(a.file), a.validate_only))
        elif a.command == "run":
            c.system("Run", a.system, "<api:runRequest/>")
        elif a.command == "deploy":
            descriptor = read_descriptor(a.file)
            rid = create(c)
            print("created %s" % rid, file=sys.stderr)
            c.system("Initialize", rid, initialize_body(descriptor))
            c.system("Run", rid, "<api:runRequest/>")
            phase = watch(c, rid)
            print(rid)
            return 0 if phase == "ready" else 1
        elif a.command == "status":
            doc = c.document(a.system)
            if not a.xml:
                for k, v in status_of(doc).items():
                    print("%-16s %s" % (k, v))
                nodes = nodes_of(doc)
                if nodes:
                    print()
                    vm = ["VM CPU/MiB"] if any(n["vm_differs"] for n in nodes) else []
                    table(nodes, ["Node", "Appliance", "P-node", "IP", "MAC", "CPU/MiB/GiB"] + vm + ["State"])
        elif a.command == "metrics":
            nodes, cluster = metrics_of(c.document(a.system))
            if not a.xml:
                print("  ".join("%s %s" % (k, v) for k, v in cluster.items()))
                if nodes:
                    print()
                    table(nodes, ["Name", "PNode", "State", "LoadOne", "CpuUser", "MemUsedKB",
                                  "MemTotalKB", "BytesIn", "BytesOut", "Stale"])
        elif a.command == "watch":
            watch(c, a.system, until={"released", "failed"}, out=sys.stdout)
        elif a.command in ("suspend", "resume"):
            c.system(a.command.capitalize(), a.system, "<vcds:%sRequest/>" % a.command)
        elif a.command == "terminate":
            c.system("Terminate", a.system,
                     "<api:terminateRequest><api:reason>%s</api:reason></api:terminateRequest>" % escape(a.reason))
        elif a.command == "destroy":
            c.system("Destroy", a.system, "<rl:Destroy/>")
        elif a.command == "list":
            resp = c.call("Portal", "GetProperty", "<rp:GetResourceProperty>api:ActiveSystems</rp:GetResourceProperty>")
            ids = [e.findtext(".//" + q("vcds:ResourceId")) for e in resp.iter(q("wsa:EndpointReference"))]
            if not a.xml:
                table([status_of(c.document(i)) for i in ids], ["ResourceId", "State", "Phase", "Cluster", "Created"])
        elif a.command == "extend":
            resp = c.system("SetTerminationTime", a.system,
                            "<rl:SetTerminationTime><rl:RequestedLifetimeDuration>%s</rl:RequestedLifetimeDuration>"
                            "</rl:SetTerminationTime>" % escape(a.duration))
            if not a.xml:
                print(resp.findtext(q("rl:NewTerminationTime")) or "never")
        elif a.command == "subscribe":
            resp = c.system("Subscribe", a.system,
                            "<wsnt:Subscribe><wsnt:ConsumerReference><wsa:Address>%s</wsa:Address></wsnt:ConsumerReference>"
                            '<wsnt:Filter><wsnt:TopicExpression Dialect="http://docs.oasis-open.org/wsn/t-1/TopicExpression/Simple">'
                            "%s</wsnt:TopicExpression></wsnt:Filter></wsnt:Subscribe>" % (escape(a.consumer), escape(a.topic)))
            if not a.xml:
                print(resp.findtext(".//" + q("vcds:ResourceId")))
    except Fault as f:
        print("vcctl: fault%s: %s" % (" [%s]" % f.code if f.code else "", f.reason), file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError, ET.ParseError) as e:
        print("vcctl: cannot talk to %s: %s" % (a.url, e), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
