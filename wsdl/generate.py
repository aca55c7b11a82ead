#!/usr/bin/env python3
"""Generates wsdl/vcds.wsdl (the machine-readable vcds wire contract, see docs/api.md).

The WSDL repeats every operation in 3 port types x 2 SOAP bindings; writing that by hand drifts,
so the operation table below is the single place to edit. Run from anywhere:

    python3 wsdl/generate.py            # rewrites wsdl/vcds.wsdl
    python3 wsdl/generate.py --check    # exit 1 if wsdl/vcds.wsdl is not what this script writes

Only the Python standard library is used.
"""
import os
import sys
from xml.sax.saxutils import quoteattr

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "vcds.wsdl")

TNS = "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl"
RPW = "http://docs.oasis-open.org/wsrf/rpw-2"
RLW = "http://docs.oasis-open.org/wsrf/rlw-2"
BW = "http://docs.oasis-open.org/wsn/bw-2"
WSRF_FAULT = "http://docs.oasis-open.org/wsrf/fault"
WSN_FAULT = "http://docs.oasis-open.org/wsn/fault"
DEFAULT_BASE = "http://localhost:8080/wsrf/services/"

NAMESPACES = [
    ("wsdl", "http://schemas.xmlsoap.org/wsdl/"),
    ("soap", "http://schemas.xmlsoap.org/wsdl/soap/"),
    ("soap12", "http://schemas.xmlsoap.org/wsdl/soap12/"),
    ("xsd", "http://www.w3.org/2001/XMLSchema"),
    ("wsam", "http://www.w3.org/2007/05/addressing/metadata"),
    ("wsa", "http://www.w3.org/2005/08/addressing"),
    ("tns", TNS),
    ("api", "http://www.gridforum.org/cddlm/deployapi/2005/02"),
    ("vcds", "urn:vcds:2026"),
    ("wsrf-rp", "http://docs.oasis-open.org/wsrf/rp-2"),
    ("wsrf-rl", "http://docs.oasis-open.org/wsrf/rl-2"),
    ("wsrf-r", "http://docs.oasis-open.org/wsrf/r-2"),
    ("wsrf-bf", "http://docs.oasis-open.org/wsrf/bf-2"),
    ("wsnt", "http://docs.oasis-open.org/wsn/b-2"),
]

# (namespace, schemaLocation relative to wsdl/ as served at /wsdl/vcds.wsdl)
IMPORTS = [
    ("http://www.w3.org/2005/08/addressing", "../schemas/oasis/ws-addr.xsd"),
    ("http://docs.oasis-open.org/wsrf/bf-2", "../schemas/oasis/bf-2.xsd"),
    ("http://docs.oasis-open.org/wsrf/r-2", "../schemas/oasis/r-2.xsd"),
    ("http://docs.oasis-open.org/wsrf/rp-2", "../schemas/oasis/rp-2.xsd"),
    ("http://docs.oasis-open.org/wsrf/rl-2", "../schemas/oasis/rl-2.xsd"),
    ("http://docs.oasis-open.org/wsn/b-2", "../schemas/oasis/b-2.xsd"),
    ("http://www.gridforum.org/cddlm/deployapi/2005/02", "../schemas/deployapi.xsd"),
    ("urn:vcds:2026", "../schemas/vcds.xsd"),
]

# fault message name -> (element QName, fault wsa:Action)
FAULTS = {}
for _n in ("ResourceUnknownFault", "ResourceUnavailableFault"):
    FAULTS[_n] = ("wsrf-r:" + _n, WSRF_FAULT)
for _n in ("InvalidResourcePropertyQNameFault", "InvalidModificationFault",
           "UnableToModifyResourcePropertyFault", "SetResourcePropertyRequestFailedFault",
           "UnknownQueryExpressionDialectFault", "InvalidQueryExpressionFault",
           "QueryEvaluationErrorFault"):
    FAULTS[_n] = ("wsrf-rp:" + _n, WSRF_FAULT)
for _n in ("ResourceNotDestroyedFault", "UnableToSetTerminationTimeFault",
           "TerminationTimeChangeRejectedFault"):
    FAULTS[_n] = ("wsrf-rl:" + _n, WSRF_FAULT)
for _n in ("SubscribeCreationFailedFault", "InvalidFilterFault", "TopicExpressionDialectUnknownFault",
           "InvalidTopicExpressionFault", "TopicNotSupportedFault", "InvalidProducerPropertiesExpressionFault",
           "InvalidMessageContentExpressionFault", "UnrecognizedPolicyRequestFault",
           "UnsupportedPolicyRequestFault", "NotifyMessageNotSupportedFault",
           "UnacceptableInitialTerminationTimeFault", "UnacceptableTerminationTimeFault",
           "UnableToDestroySubscriptionFault"):
    FAULTS[_n] = ("wsnt:" + _n, WSN_FAULT)
# CDDLM deployment faults (schemas/deployapi.xsd, type api:DeploymentFaultType)
for _n in ("LifecycleFault", "BadArgumentFault", "UnsupportedLanguageFault", "NotUnderstoodFault",
           "DescriptorParseFault", "ResolutionFault", "InitializationFault", "LivenessFault"):
    FAULTS[_n] = ("api:" + _n, WSRF_FAULT)

# vcds faults (schemas/vcds.xsd)
FAULTS["ReservationRefusedFault"] = ("vcds:ReservationRefusedFault", WSRF_FAULT)
# Any operation in secure mode, for a client identity the grid-mapfile does not map.
FAULTS["AccessDeniedFault"] = ("vcds:AccessDeniedFault", WSRF_FAULT)

R = ["ResourceUnknownFault", "ResourceUnavailableFault"]
L = R + ["LifecycleFault"]
SUBSCRIBE_FAULTS = R + [
    "SubscribeCreationFailedFault", "InvalidFilterFault", "TopicExpressionDialectUnknownFault",
    "InvalidTopicExpressionFault", "TopicNotSupportedFault", "InvalidProducerPropertiesExpressionFault",
    "InvalidMessageContentExpressionFault", "UnacceptableInitialTerminationTimeFault",
    "UnrecognizedPolicyRequestFault", "UnsupportedPolicyRequestFault", "NotifyMessageNotSupportedFault",
]


def op(name, req_el, resp_el, req_action, resp_action, faults, req_msg=None, resp_msg=None, doc=""):
    return dict(name=name, req_el=req_el, resp_el=resp_el, req_action=req_action,
                resp_action=resp_action, faults=faults + ["AccessDeniedFault"],
                req_msg=req_msg or name + "Request", resp_msg=resp_msg or name + "Response", doc=doc)


OPS = {
    "GetResourcePropertyDocument": op(
        "GetResourcePropertyDocument", "wsrf-rp:GetResourcePropertyDocument",
        "wsrf-rp:GetResourcePropertyDocumentResponse",
        RPW + "/GetResourcePropertyDocument/GetResourcePropertyDocumentRequest",
        RPW + "/GetResourcePropertyDocument/GetResourcePropertyDocumentResponse", R,
        doc="The whole resource property document (one child: the document root)."),
    "GetResourceProperty": op(
        "GetResourceProperty", "wsrf-rp:GetResourceProperty", "wsrf-rp:GetResourcePropertyResponse",
        RPW + "/GetResourceProperty/GetResourcePropertyRequest",
        RPW + "/GetResourceProperty/GetResourcePropertyResponse",
        R + ["InvalidResourcePropertyQNameFault"],
        doc="All values of one resource property, named by an xsd:QName."),
    "GetMultipleResourceProperties": op(
        "GetMultipleResourceProperties", "wsrf-rp:GetMultipleResourceProperties",
        "wsrf-rp:GetMultipleResourcePropertiesResponse",
        RPW + "/GetMultipleResourceProperties/GetMultipleResourcePropertiesRequest",
        RPW + "/GetMultipleResourceProperties/GetMultipleResourcePropertiesResponse",
        R + ["InvalidResourcePropertyQNameFault"],
        doc="Values of several resource properties, in request order."),
    "QueryResourceProperties": op(
        "QueryResourceProperties", "wsrf-rp:QueryResourceProperties",
        "wsrf-rp:QueryResourcePropertiesResponse",
        RPW + "/QueryResourceProperties/QueryResourcePropertiesRequest",
        RPW + "/QueryResourceProperties/QueryResourcePropertiesResponse",
        R + ["UnknownQueryExpressionDialectFault", "InvalidQueryExpressionFault",
             "QueryEvaluationErrorFault", "InvalidResourcePropertyQNameFault"],
        doc="XPath 1.0 (dialect http://www.w3.org/TR/1999/REC-xpath-19991116) over the resource "
            "property document, the document root element being the context node."),
    "SetResourceProperties": op(
        "SetResourceProperties", "wsrf-rp:SetResourceProperties",
        "wsrf-rp:SetResourcePropertiesResponse",
        RPW + "/SetResourceProperties/SetResourcePropertiesRequest",
        RPW + "/SetResourceProperties/SetResourcePropertiesResponse",
        R + ["InvalidModificationFault", "UnableToModifyResourcePropertyFault",
             "InvalidResourcePropertyQNameFault", "SetResourcePropertyRequestFailedFault"],
        doc="Insert/Update/Delete of the writable properties vcds:Description and vcds:Tag."),
    "Destroy": op(
        "Destroy", "wsrf-rl:Destroy", "wsrf-rl:DestroyResponse",
        RLW + "/ImmediateResourceTermination/DestroyRequest",
        RLW + "/ImmediateResourceTermination/DestroyResponse",
        ["ResourceNotDestroyedFault"] + R,
        doc="Destroys the resource now; afterwards its EPR yields wsrf-r:ResourceUnknownFault."),
    "SetTerminationTime": op(
        "SetTerminationTime", "wsrf-rl:SetTerminationTime", "wsrf-rl:SetTerminationTimeResponse",
        RLW + "/ScheduledResourceTermination/SetTerminationTimeRequest",
        RLW + "/ScheduledResourceTermination/SetTerminationTimeResponse",
        ["UnableToSetTerminationTimeFault", "TerminationTimeChangeRejectedFault"] + R,
        doc="Schedules termination (RequestedTerminationTime, nil = never, or "
            "RequestedLifetimeDuration)."),
    "Subscribe": op(
        "Subscribe", "wsnt:Subscribe", "wsnt:SubscribeResponse",
        BW + "/NotificationProducer/SubscribeRequest",
        BW + "/NotificationProducer/SubscribeResponse", SUBSCRIBE_FAULTS,
        doc="WS-BaseNotification subscription; every resource property QName is a topic "
            "(ResourcePropertyValueChangeNotification), plus wsrf-rl:ResourceTermination."),
    "Renew": op(
        "Renew", "wsnt:Renew", "wsnt:RenewResponse",
        BW + "/SubscriptionManager/RenewRequest", BW + "/SubscriptionManager/RenewResponse",
        R + ["UnacceptableTerminationTimeFault"]),
    "Unsubscribe": op(
        "Unsubscribe", "wsnt:Unsubscribe", "wsnt:UnsubscribeResponse",
        BW + "/SubscriptionManager/UnsubscribeRequest", BW + "/SubscriptionManager/UnsubscribeResponse",
        R + ["UnableToDestroySubscriptionFault"]),
    "Create": op(
        "Create", "api:createRequest", "api:createResponse",
        TNS + "/PortalEPR/CreateRequest", TNS + "/PortalEPR/CreateResponse", R,
        doc="CDDLM: creates a System (state instantiated); returns its ResourceId and EPR."),
    "LookupSystem": op(
        "LookupSystem", "api:lookupSystemRequest", "api:lookupSystemResponse",
        TNS + "/PortalEPR/LookupSystemRequest", TNS + "/PortalEPR/LookupSystemResponse", R,
        doc="CDDLM: the EPR of the System with this api:ResourceId; unknown id gives "
            "wsrf-r:ResourceUnknownFault."),
    "Initialize": op(
        "Initialize", "api:initializeRequest", "api:initializeResponse",
        TNS + "/SystemEPR/InitializeRequest", TNS + "/SystemEPR/InitializeResponse",
        L + ["BadArgumentFault", "UnsupportedLanguageFault", "NotUnderstoodFault",
             "DescriptorParseFault", "ResolutionFault", "InitializationFault",
             "ReservationRefusedFault"],
        doc="CDDLM: instantiated to initialized, holding an advance reservation for the cluster "
            "(refused with vcds:ReservationRefusedFault: what runs out and the earliest start). api:descriptor (api:language = CDL-1.0) holds the "
            "CDL document inline (api:body) or names a file added with AddFile (api:reference). "
            "Option urn:vcds:2026:option:validate-only checks the descriptor and changes nothing."),
    "AddFile": op(
        "AddFile", "api:addFileRequest", "api:addFileResponse",
        TNS + "/SystemEPR/AddFileRequest", TNS + "/SystemEPR/AddFileResponse",
        L + ["BadArgumentFault"],
        doc="CDDLM: stores a file (api:data, base64, or api:uri, a file: or http: URI under a "
            "source the provider allows with --addfile-from; at most 1 MiB) under api:name; the response "
            "lists the URI that descriptors import it by and Initialize references it by."),
    "Run": op(
        "Run", "api:runRequest", "api:runResponse",
        TNS + "/SystemEPR/RunRequest", TNS + "/SystemEPR/RunResponse", L,
        doc="CDDLM: initialized to running; the cluster goes provisioning, installing, ready "
            "(vcds:Phase)."),
    "Terminate": op(
        "Terminate", "api:terminateRequest", "api:terminateResponse",
        TNS + "/SystemEPR/TerminateRequest", TNS + "/SystemEPR/TerminateResponse", L,
        doc="CDDLM: to terminated (optional api:reason); a no-op on a terminated System."),
    "Ping": op(
        "Ping", "api:pingRequest", "api:pingResponse",
        TNS + "/SystemEPR/PingRequest", TNS + "/SystemEPR/PingResponse", L + ["LivenessFault"],
        doc="CDDLM: the lifecycle state as cmp:State; api:LivenessFault (with the reason) when "
            "the cluster's deployment failed."),
    "Resolve": op(
        "Resolve", "api:resolveRequest", "api:resolveResponse",
        TNS + "/SystemEPR/ResolveRequest", TNS + "/SystemEPR/ResolveResponse",
        L + ["BadArgumentFault", "ResolutionFault"],
        doc="CDDLM: the resolved descriptor element at a CDL reference path (api:path), lazy "
            "references followed."),
    "Suspend": op(
        "Suspend", "vcds:suspendRequest", "vcds:suspendResponse",
        "urn:vcds:2026/SystemEPR/SuspendRequest", "urn:vcds:2026/SystemEPR/SuspendResponse", L,
        doc="vcds extension: a running, ready cluster to suspended."),
    "Resume": op(
        "Resume", "vcds:resumeRequest", "vcds:resumeResponse",
        "urn:vcds:2026/SystemEPR/ResumeRequest", "urn:vcds:2026/SystemEPR/ResumeResponse", L,
        doc="vcds extension: a suspended cluster back to running."),
}

PORT_TYPES = [
    ("PortalEPR", "Portal", "vcds:PortalProperties",
     "The Portal (one per site): the endpoint is the resource; no reference parameter.",
     ["GetResourcePropertyDocument", "GetResourceProperty", "GetMultipleResourceProperties",
      "QueryResourceProperties", "Subscribe", "Create", "LookupSystem"]),
    ("SystemEPR", "System", "vcds:SystemProperties",
     "One System per virtual cluster, identified by the reference parameter vcds:ResourceId "
     "(SOAP header with wsa:IsReferenceParameter=\"true\").",
     ["GetResourcePropertyDocument", "GetResourceProperty", "GetMultipleResourceProperties",
      "QueryResourceProperties", "SetResourceProperties", "Destroy", "SetTerminationTime",
      "Subscribe", "Initialize", "AddFile", "Run", "Terminate", "Ping", "Resolve", "Suspend",
      "Resume"]),
    ("SubscriptionEPR", "Subscription", "vcds:SubscriptionProperties",
     "One per WS-N subscription (the SubscriptionManager), identified by vcds:ResourceId.",
     ["GetResourcePropertyDocument", "GetResourceProperty", "Renew", "Unsubscribe", "Destroy"]),
]

NOTIFY_ACTION = BW + "/NotificationConsumer/Notify"


def build():
    o = []
    w = o.append
    w('<?xml version="1.0" encoding="UTF-8"?>')
    w("<!--")
    w("  vcds (Virtual Cluster Deployment Service) wire contract: WSDL 1.1, document/literal,")
    w("  SOAP 1.1 and SOAP 1.2 bindings, WS-Addressing 1.0 actions (wsam:Action).")
    w("  GENERATED by wsdl/generate.py - edit the operation table there and re-run it.")
    w("  Human summary: docs/api.md.")
    w("")
    w("  Served as /wsdl/vcds.wsdl (as is) and as <endpoint>?wsdl, where the server makes the")
    w("  port addresses (" + DEFAULT_BASE + "...) and the schema locations")
    w("  (../schemas/...) absolute for the host the client used.")
    w("  Resource identity: System and Subscription resources are addressed by the EPR reference")
    w("  parameter vcds:ResourceId, which clients send back as a SOAP header block")
    w("  <vcds:ResourceId wsa:IsReferenceParameter=\"true\">ID</vcds:ResourceId>. Being part of the")
    w("  EPR, not of the operation, it is not declared as a soap:header in the bindings.")
    w("-->")
    w("<wsdl:definitions name=\"vcds\" targetNamespace=\"%s\"" % TNS)
    for p, u in NAMESPACES:
        w("    xmlns:%s=\"%s\"" % (p, u))
    o[-1] += ">"
    w("")
    w("  <wsdl:documentation>vcds: CDDLM deployment API (Portal, System) over OASIS WSRF 1.2 /")
    w("    WS-BaseNotification 1.3 with WS-Addressing 1.0.</wsdl:documentation>")
    w("")
    w("  <wsdl:types>")
    w("    <xsd:schema targetNamespace=\"%s\" elementFormDefault=\"qualified\">" % TNS)
    for ns, loc in IMPORTS:
        w("      <xsd:import namespace=\"%s\" schemaLocation=\"%s\"/>" % (ns, loc))
    w("    </xsd:schema>")
    w("  </wsdl:types>")
    w("")
    # messages
    used_ops = []
    for _, _, _, _, ops in PORT_TYPES:
        for n in ops:
            if n not in used_ops:
                used_ops.append(n)
    w("  <!-- ====================== request / response messages ====================== -->")
    for n in used_ops:
        d = OPS[n]
        w("  <wsdl:message name=\"%s\">" % d["req_msg"])
        w("    <wsdl:part name=\"body\" element=\"%s\"/>" % d["req_el"])
        w("  </wsdl:message>")
        w("  <wsdl:message name=\"%s\">" % d["resp_msg"])
        w("    <wsdl:part name=\"body\" element=\"%s\"/>" % d["resp_el"])
        w("  </wsdl:message>")
    w("  <wsdl:message name=\"Notify\">")
    w("    <wsdl:part name=\"body\" element=\"wsnt:Notify\"/>")
    w("  </wsdl:message>")
    w("")
    w("  <!-- ============ fault messages (all wsrf-bf:BaseFaultType extensions) ============ -->")
    used_faults = []
    for n in used_ops:
        for f in OPS[n]["faults"]:
            if f not in used_faults:
                used_faults.append(f)
    for f in used_faults:
        w("  <wsdl:message name=\"%s\">" % f)
        w("    <wsdl:part name=\"fault\" element=\"%s\"/>" % FAULTS[f][0])
        w("  </wsdl:message>")
    w("")
    # port types
    for pt, _, rp, doc, ops in PORT_TYPES:
        w("  <wsdl:portType name=\"%s\" wsrf-rp:ResourceProperties=\"%s\">" % (pt, rp))
        w("    <wsdl:documentation>%s</wsdl:documentation>" % doc)
        for n in ops:
            d = OPS[n]
            w("    <wsdl:operation name=\"%s\">" % n)
            if d["doc"]:
                w("      <wsdl:documentation>%s</wsdl:documentation>" % d["doc"])
            w("      <wsdl:input name=\"%s\" message=\"tns:%s\" wsam:Action=\"%s\"/>"
              % (d["req_msg"], d["req_msg"], d["req_action"]))
            w("      <wsdl:output name=\"%s\" message=\"tns:%s\" wsam:Action=\"%s\"/>"
              % (d["resp_msg"], d["resp_msg"], d["resp_action"]))
            for f in d["faults"]:
                w("      <wsdl:fault name=\"%s\" message=\"tns:%s\" wsam:Action=\"%s\"/>"
                  % (f, f, FAULTS[f][1]))
            w("    </wsdl:operation>")
        w("  </wsdl:portType>")
        w("")
    w("  <!-- vcds calls this on subscribers (SOAP 1.1 only); no vcds port implements it. -->")
    w("  <wsdl:portType name=\"NotificationConsumer\">")
    w("    <wsdl:operation name=\"Notify\">")
    w("      <wsdl:input name=\"Notify\" message=\"tns:Notify\" wsam:Action=\"%s\"/>" % NOTIFY_ACTION)
    w("    </wsdl:operation>")
    w("  </wsdl:portType>")
    w("")
    # bindings
    for pt, _, _, _, ops in PORT_TYPES:
        for ver, pfx in (("11", "soap"), ("12", "soap12")):
            w("  <wsdl:binding name=\"%sSoap%sBinding\" type=\"tns:%s\">" % (pt, ver, pt))
            w("    <%s:binding style=\"document\" transport=\"http://schemas.xmlsoap.org/soap/http\"/>" % pfx)
            for n in ops:
                d = OPS[n]
                w("    <wsdl:operation name=\"%s\">" % n)
                w("      <%s:operation soapAction=\"%s\" style=\"document\"/>" % (pfx, d["req_action"]))
                w("      <wsdl:input name=\"%s\"><%s:body use=\"literal\"/></wsdl:input>" % (d["req_msg"], pfx))
                w("      <wsdl:output name=\"%s\"><%s:body use=\"literal\"/></wsdl:output>" % (d["resp_msg"], pfx))
                for f in d["faults"]:
                    w("      <wsdl:fault name=\"%s\"><%s:fault name=\"%s\" use=\"literal\"/></wsdl:fault>"
                      % (f, pfx, f))
                w("    </wsdl:operation>")
            w("  </wsdl:binding>")
            w("")
    w("  <wsdl:binding name=\"NotificationConsumerSoap11Binding\" type=\"tns:NotificationConsumer\">")
    w("    <soap:binding style=\"document\" transport=\"http://schemas.xmlsoap.org/soap/http\"/>")
    w("    <wsdl:operation name=\"Notify\">")
    w("      <soap:operation soapAction=\"%s\" style=\"document\"/>" % NOTIFY_ACTION)
    w("      <wsdl:input name=\"Notify\"><soap:body use=\"literal\"/></wsdl:input>")
    w("    </wsdl:operation>")
    w("  </wsdl:binding>")
    w("")
    # service
    w("  <wsdl:service name=\"VcdsService\">")
    w("    <wsdl:documentation>One port per endpoint and SOAP version; the SOAP 1.1 and 1.2 ports of an")
    w("      endpoint share its address (the server tells the versions apart by envelope namespace")
    w("      and Content-Type).</wsdl:documentation>")
    for pt, path, _, _, _ in PORT_TYPES:
        for ver, pfx in (("11", "soap"), ("12", "soap12")):
            w("    <wsdl:port name=\"%sSoap%s\" binding=\"tns:%sSoap%sBinding\">" % (path, ver, pt, ver))
            w("      <%s:address location=\"%s%s\"/>" % (pfx, DEFAULT_BASE, path))
            w("    </wsdl:port>")
    w("  </wsdl:service>")
    w("</wsdl:definitions>")
    return "\n".join(o) + "\n"


def main():
    text = build()
    if "--check" in sys.argv[1:]:
        with open(OUT, encoding="utf-8") as f:
            if f.read() != text:
                print("wsdl/vcds.wsdl is out of date: run python3 wsdl/generate.py", file=sys.stderr)
                return 1
        print("wsdl/vcds.wsdl is up to date")
        return 0
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote", OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
