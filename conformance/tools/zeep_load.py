#!/usr/bin/env python3
"""Loads wsdl/vcds.wsdl (or a ?wsdl URL) with zeep and checks it against docs/api.md.

Usage: python3 conformance/tools/zeep_load.py [WSDL-FILE-OR-URL]

Checks:
  * zeep builds a Client from the WSDL (all schemas resolve and compile in zeep);
  * the service has the six ports {Portal,System,Subscription}Soap{11,12} bound to the right
    SOAP version, each with the operations docs/api.md lists for that endpoint;
  * every operation's input wsam:Action equals the docs/api.md table, the output action is the
    input action with Request -> Response, and the SOAP 1.1 soapAction equals the input action;
  * output wsam:Actions mirror the inputs; fault actions are the WSRF / WS-N fault actions.
Prints one line per port and exits non-zero on the first mismatch list.
"""
import os
import re
import sys

import zeep
from zeep.wsdl.bindings.soap import Soap11Binding, Soap12Binding

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ENDPOINT_OPS = {
    "Portal": ["GetResourcePropertyDocument", "GetResourceProperty", "GetMultipleResourceProperties",
               "QueryResourceProperties", "Subscribe", "Create", "LookupSystem"],
    "System": ["GetResourcePropertyDocument", "GetResourceProperty", "GetMultipleResourceProperties",
               "QueryResourceProperties", "SetResourceProperties", "Destroy", "SetTerminationTime",
               "Subscribe", "Initialize", "AddFile", "Run", "Terminate", "Ping", "Resolve",
               "Suspend", "Resume"],
    "Subscription": ["GetResourcePropertyDocument", "GetResourceProperty", "Renew", "Unsubscribe",
                     "Destroy"],
}


def api_md_actions(path):
    """operation -> request action, from the table in docs/api.md."""
    actions = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\|\s*(\w+)\s*\|\s*`[^`]+`[^|]*\|\s*`(http[^`]+)`\s*\|", line)
            if m:
                actions[m.group(1)] = m.group(2)
    return actions


def main():
    wsdl = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "wsdl", "vcds.wsdl")
    client = zeep.Client(wsdl)
    api_md = os.path.join(ROOT, "docs", "api.md")
    expected_actions = api_md_actions(api_md) if os.path.exists(api_md) else {}
    problems = []
    if expected_actions and len(expected_actions) < 12:
        problems.append("could only read %d actions from docs/api.md" % len(expected_actions))
    service = client.wsdl.services.get("VcdsService")
    if service is None:
        print("no VcdsService in", wsdl)
        return 1
    for endpoint, ops in ENDPOINT_OPS.items():
        for ver, cls in (("11", Soap11Binding), ("12", Soap12Binding)):
            pname = "%sSoap%s" % (endpoint, ver)
            port = service.ports.get(pname)
            if port is None:
                problems.append("missing port " + pname)
                continue
            if not isinstance(port.binding, cls):
                problems.append("%s: binding is %s" % (pname, type(port.binding).__name__))
            if not port.binding_options["address"].endswith("/wsrf/services/" + endpoint):
                problems.append("%s: address %s" % (pname, port.binding_options["address"]))
            have = sorted(port.binding._operations)
            if have != sorted(ops):
                problems.append("%s: operations %s, expected %s" % (pname, have, sorted(ops)))
            for name in ops:
                op = port.binding._operations.get(name)
                if op is None:
                    continue
                req = op.abstract.wsa_action
                exp = expected_actions.get(name)
                if exp and req != exp:
                    problems.append("%s.%s: input wsam:Action %s != api.md %s" % (pname, name, req, exp))
                if op.soapaction != req:
                    problems.append("%s.%s: soapAction %s != wsam:Action %s" % (pname, name, op.soapaction, req))
            print("%-20s %-30s %s ops=%d" % (pname, port.binding.name.localname,
                                              port.binding_options["address"], len(have)))
    # output actions and fault actions, straight from the document
    from lxml import etree
    if re.match(r"https?://", wsdl):
        import requests
        doc = etree.fromstring(requests.get(wsdl, timeout=10).content)
    else:
        doc = etree.parse(wsdl).getroot()
    W = "http://schemas.xmlsoap.org/wsdl/"
    WSAM = "{http://www.w3.org/2007/05/addressing/metadata}Action"
    for pt in doc.findall("{%s}portType" % W):
        for op in pt.findall("{%s}operation" % W):
            i = op.find("{%s}input" % W)
            o = op.find("{%s}output" % W)
            if o is not None:
                ia, oa = i.get(WSAM), o.get(WSAM)
                if not ia or not oa or oa != re.sub(r"Request$", "Response", ia):
                    problems.append("%s.%s: output action %s does not mirror %s"
                                    % (pt.get("name"), op.get("name"), oa, ia))
            for fl in op.findall("{%s}fault" % W):
                if fl.get(WSAM) not in ("http://docs.oasis-open.org/wsrf/fault",
                                        "http://docs.oasis-open.org/wsn/fault"):
                    problems.append("%s.%s fault %s: action %s" % (pt.get("name"), op.get("name"),
                                                                   fl.get("name"), fl.get(WSAM)))
    if problems:
        print("PROBLEMS:")
        for p in problems:
            print("  " + p)
        return 1
    print("zeep: WSDL loads; ports, operations and actions match docs/api.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
