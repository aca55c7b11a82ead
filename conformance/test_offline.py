"""Offline self-checks (no server): the suite's own request envelopes are schema-valid, the WSDL is
current and loads in zeep. Run alone with: pytest conformance/test_offline.py"""
import os
import subprocess
import sys

import pytest

import vcds_client as vc

ROOT = vc.ROOT

REQUESTS = {
    "GetResourcePropertyDocument": vc.body_get_rp_doc(),
    "GetResourceProperty": vc.body_get_rp("vcds:Description"),
    "GetMultipleResourceProperties": vc.body_get_multiple(["wsrf-rl:CurrentTime", "muws1:ResourceId"]),
    "QueryResourceProperties": vc.body_query("/*/muws1:ResourceId"),
    "SetResourceProperties": vc.body_set_rp(vc.update("<vcds:Description>x</vcds:Description>"),
                                            vc.insert("<vcds:Tag>a</vcds:Tag>"), vc.delete("vcds:Tag")),
    "Destroy": vc.body_destroy(),
    "SetTerminationTime": vc.body_set_tt(duration="PT1H"),
    "Subscribe": vc.body_subscribe("http://127.0.0.1:1/consumer", "vcds:Description",
                                   ref_params="<vcds:Tag>t</vcds:Tag>", initial="PT10M"),
    "Renew": vc.body_renew("PT1H"),
    "Unsubscribe": vc.body_unsubscribe(),
    "Create": vc.body_create("frontend-1"),
    "LookupSystem": vc.body_lookup("urn:uuid:0"),
}


@pytest.mark.parametrize("soap", vc.SOAP_VERSIONS, ids=["soap11", "soap12"])
@pytest.mark.parametrize("op", sorted(REQUESTS))
def test_request_envelopes_are_schema_valid(op, soap):
    env = vc.envelope(soap, REQUESTS[op], action=vc.ACTIONS[op], to="http://127.0.0.1:1/x",
                      message_id="urn:uuid:00000000-0000-4000-8000-000000000000",
                      headers=[vc.resource_id_header("r1")])
    errs = vc.schema_errors(vc.parse(env))
    assert not errs, "\n".join(errs)


def test_set_termination_time_variants_valid():
    for b in (vc.body_set_tt(nil=True), vc.body_set_tt(time="2030-01-01T00:00:00Z")):
        env = vc.envelope("1.1", b, action=vc.ACTIONS["SetTerminationTime"])
        assert not vc.schema_errors(vc.parse(env))


def test_wsdl_is_generated_and_current():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "wsdl", "generate.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_zeep_loads_wsdl_and_actions_match_api_md():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "conformance", "tools", "zeep_load.py"),
                        os.path.join(ROOT, "wsdl", "vcds.wsdl")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def test_samples_validate():
    from lxml import etree
    d = os.path.join(ROOT, "conformance", "samples")
    for f in sorted(os.listdir(d)):
        el = etree.parse(os.path.join(d, f), vc.SAFE_PARSER).getroot()
        errs = vc.schema_errors(el)
        assert not errs, "%s: %s" % (f, errs)


def test_reference_schemas_present_or_reported():
    if not os.path.isfile(os.path.join(vc.SHARED_OASIS, "rp-2.xsd")):
        pytest.skip("reference schemas not present at %s: responses are validated against the "
                    "repo copies in schemas/oasis only" % vc.SHARED_OASIS)
    assert len(vc.validators()) == 2
