"""CDDLM System endpoint (GFD.69) against a running vcds: the lifecycle, the initialization tests of
the reference test plan (Api_22-29, Api_38-41, cddlm.md section 5.3) and the deployment faults,
in SOAP 1.1 and 1.2, responses validated against schemas/."""
import base64
import os
import sys
import time

import pytest

import checks as ck
import vcds_client as vc
from conftest import create_system, rid_header, zeep_service

CDL = "http://www.gridforum.org/namespaces/2005/02/cddlm/CDL-1.0"
CDL15 = "http://www.gridforum.org/namespaces/2008/02/cddlm/CDL-1.5"
VALIDATE_ONLY = "urn:vcds:2026:option:validate-only"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_cluster():
    with open(os.path.join(ROOT, "examples", "small-cluster.cdl"), encoding="utf-8") as f:
        text = f.read()
    # an inline body is an element, not a document
    return text.split("?>", 1)[1].strip() if text.startswith("<?xml") else text


def body_initialize(inline=None, reference=None, language=CDL, options=""):
    lang = "" if language is None else ' api:language="%s"' % language
    src = ("<api:body>%s</api:body>" % inline) if inline is not None else (
        "<api:reference>%s</api:reference>" % reference)
    return ("<api:initializeRequest><api:descriptor%s>%s</api:descriptor>%s</api:initializeRequest>"
            % (lang, src, options))


def option(name, must_understand, value="<api:string>x</api:string>"):
    return ('<api:options><api:option api:name="%s" api:mustUnderstand="%s">%s</api:option></api:options>'
            % (name, "true" if must_understand else "false", value))


def body_add_file(name, data):
    return ("<api:addFileRequest><api:name>%s</api:name><api:mimetype>application/xml</api:mimetype>"
            "<api:data>%s</api:data></api:addFileRequest>" % (name, base64.b64encode(data).decode()))


def op(server, soap, rid, name, body):
    return server.call(soap, "System", body, op=name, rid=rid)


def ok(server, soap, rid, name, body, child):
    return ck.assert_ok(op(server, soap, rid, name, body), soap, name, child)


def deployment_fault(r, soap, fault):
    return ck.assert_wsrf_fault(r, soap, fault, "System")


def state_and_phase(server, soap, rid):
    r = server.call(soap, "System", vc.body_get_rp_doc(), op="GetResourcePropertyDocument", rid=rid)
    doc = ck.assert_ok(r, soap, "GetResourcePropertyDocument")
    state = doc.find(".//" + vc.q("cmp:State"))
    assert state is not None and len(state), "no cmp:State in the document" + ck._ctx(r)
    phase = doc.find(".//" + vc.q("vcds:Phase"))
    return etree_local(state[0]), None if phase is None else phase.text


def etree_local(el):
    return el.tag.rsplit("}", 1)[-1]


def test_lifecycle_create_initialize_run_ready_terminate_destroy(server, soap):
    """Api_34 running_events without the listener: instantiated -> initialized -> running (phases
    to ready) -> terminated; every response and RP document schema-valid."""
    rid = create_system(server, soap)["rid"]
    assert state_and_phase(server, soap, rid) == ("InstantiatedState", None)
    ok(server, soap, rid, "Initialize", body_initialize(inline=small_cluster()), "api:initializeResponse")
    assert state_and_phase(server, soap, rid) == ("InitializedState", "reserved")
    r = ok(server, soap, rid, "Resolve",
           '<api:resolveRequest><api:path>/small/vc:name</api:path></api:resolveRequest>',
           "api:resolveResponse")
    assert [c.text for c in r] == ["small"], [c.tag for c in r]
    ok(server, soap, rid, "Run", "<api:runRequest/>", "api:runResponse")
    deadline = time.time() + 30
    while state_and_phase(server, soap, rid) != ("RunningState", "ready"):
        assert time.time() < deadline, "phase ready not reached: %s" % (state_and_phase(server, soap, rid),)
        time.sleep(0.2)
    ping = ok(server, soap, rid, "Ping", "<api:pingRequest/>", "api:pingResponse")
    assert etree_local(ping.find(vc.q("cmp:State"))[0]) == "RunningState"
    ok(server, soap, rid, "Suspend", "<vcds:suspendRequest/>", "vcds:suspendResponse")
    assert state_and_phase(server, soap, rid) == ("SuspendedState", "suspended")
    ok(server, soap, rid, "Resume", "<vcds:resumeRequest/>", "vcds:resumeResponse")
    ok(server, soap, rid, "Terminate", "<api:terminateRequest><api:reason>wake up, time to die</api:reason></api:terminateRequest>",
       "api:terminateResponse")
    assert state_and_phase(server, soap, rid)[0] == "TerminatedState"
    # terminating a terminated system is a no-op
    ok(server, soap, rid, "Terminate", "<api:terminateRequest/>", "api:terminateResponse")
    r = server.call(soap, "System", vc.body_destroy(), op="Destroy", rid=rid)
    ck.assert_ok(r, soap, "Destroy", "wsrf-rl:DestroyResponse")


def test_lifecycle_fault_names_state_and_operation(server, soap):
    rid = create_system(server, soap)["rid"]
    el = deployment_fault(op(server, soap, rid, "Run", "<api:runRequest/>"), soap, "api:LifecycleFault")
    assert el.findtext(vc.q("api:state")) == "instantiated"
    assert el.findtext(vc.q("api:operation")) == "Run"
    deployment_fault(op(server, soap, rid, "Resume", "<vcds:resumeRequest/>"), soap, "api:LifecycleFault")


def test_api_22_deploy_inline_and_api_23_deploy_addfile(server, soap):
    rid = create_system(server, soap)["rid"]
    r = ok(server, soap, rid, "AddFile", body_add_file("small.cdl", small_cluster().encode()),
           "api:addFileResponse")
    assert [c.text for c in r] == ["small.cdl"]
    ok(server, soap, rid, "Initialize", body_initialize(reference="small.cdl"), "api:initializeResponse")
    assert state_and_phase(server, soap, rid) == ("InitializedState", "reserved")


def test_api_24_unknown_options_ignored(server, soap):
    rid = create_system(server, soap)["rid"]
    ok(server, soap, rid, "Initialize",
       body_initialize(inline=small_cluster(), options=option("urn:example:unknown", False)),
       "api:initializeResponse")


def test_api_25_unknown_mu_options_rejected(server, soap):
    rid = create_system(server, soap)["rid"]
    el = deployment_fault(op(server, soap, rid, "Initialize",
                             body_initialize(inline=small_cluster(), options=option("urn:example:unknown", True))),
                          soap, "api:NotUnderstoodFault")
    assert el.findtext(vc.q("api:option")) == "urn:example:unknown"
    assert state_and_phase(server, soap, rid)[0] == "InstantiatedState"


def test_validate_only_changes_nothing(server, soap):
    rid = create_system(server, soap)["rid"]
    ok(server, soap, rid, "Initialize",
       body_initialize(inline=small_cluster(), options=option(VALIDATE_ONLY, True, "<api:boolean>true</api:boolean>")),
       "api:initializeResponse")
    assert state_and_phase(server, soap, rid) == ("InstantiatedState", None)


def test_api_26_unknown_languages_rejected(server, soap):
    rid = create_system(server, soap)["rid"]
    el = deployment_fault(op(server, soap, rid, "Initialize", body_initialize(inline=small_cluster(), language=CDL15)),
                          soap, "api:UnsupportedLanguageFault")
    assert el.findtext(vc.q("api:language")) == CDL15


def test_api_41_missing_language_rejected(server, soap):
    rid = create_system(server, soap)["rid"]
    deployment_fault(op(server, soap, rid, "Initialize", body_initialize(inline=small_cluster(), language=None)),
                     soap, "api:BadArgumentFault")


def test_api_29_init_invalid_cdl(server, soap):
    """A structurally wrong descriptor: DescriptorParseFault with document, line and column; a
    dangling reference: ResolutionFault; nothing stored."""
    rid = create_system(server, soap)["rid"]
    wrong_order = ('<cdl:cdl xmlns:cdl="%s">\n  <cdl:system/>\n  <cdl:configuration/>\n</cdl:cdl>\n' % CDL)
    ok(server, soap, rid, "AddFile", body_add_file("order.cdl", wrong_order.encode()), "api:addFileResponse")
    el = deployment_fault(op(server, soap, rid, "Initialize", body_initialize(reference="order.cdl")),
                          soap, "api:DescriptorParseFault")
    assert (el.findtext(vc.q("api:document")), el.findtext(vc.q("api:line"))) == ("order.cdl", "3")
    dangling = '<cdl:cdl xmlns:cdl="%s"><cdl:system><app><user cdl:ref="/nowhere"/></app></cdl:system></cdl:cdl>' % CDL
    deployment_fault(op(server, soap, rid, "Initialize", body_initialize(inline=dangling)), soap, "api:ResolutionFault")
    assert state_and_phase(server, soap, rid) == ("InstantiatedState", None)


def test_api_38_addfile_no_data_and_api_39_too_much_data(server, soap):
    rid = create_system(server, soap)["rid"]
    deployment_fault(op(server, soap, rid, "AddFile", body_add_file("empty", b"")), soap, "api:BadArgumentFault")
    deployment_fault(op(server, soap, rid, "AddFile", body_add_file("big", b"x" * (1024 * 1024 + 1))),
                     soap, "api:BadArgumentFault")
    deployment_fault(op(server, soap, rid, "AddFile", body_add_file("../escape", b"x")), soap, "api:BadArgumentFault")


def test_zeep_ping(server, soap, zeep_client):
    """zeep drives the System operations from the WSDL (wsa:Action from wsam:Action)."""
    rid = create_system(server, soap)["rid"]
    system = zeep_service(zeep_client, "System", soap)
    system.Ping(_soapheaders=[rid_header(rid)])
    received = zeep_client.vcds_history.last_received["envelope"]
    state = received.find(".//" + vc.q("cmp:State"))
    assert state is not None and etree_local(state[0]) == "InstantiatedState"
    ck.assert_schema_valid(received)


def test_vcctl_deploy_status_and_faults(server):
    """conformance/vcctl.py: deploy prints progress and the ResourceId last; a fault exits 1."""
    import subprocess
    vcctl = [sys.executable, os.path.join(ROOT, "conformance", "vcctl.py"), "--url", server.base]
    out = subprocess.run(vcctl + ["deploy", os.path.join(ROOT, "examples", "small-cluster.cdl")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rid = out.stdout.strip().splitlines()[-1]
    assert "ready" in out.stderr, out.stderr
    status = subprocess.run(vcctl + ["status", rid], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "running" in status.stdout, status.stdout + status.stderr
    again = subprocess.run(vcctl + ["run", rid], capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "wrong-state" in again.stderr, again.stderr
    gone = subprocess.run(vcctl + ["destroy", rid], capture_output=True, text=True, timeout=60)
    assert gone.returncode == 0, gone.stderr


def rust_vcctl():
    """The Rust vcctl beside $VCDS_BIN (`cargo build -p vcctl`) or $VCCTL_BIN; the test is
    skipped with the reason when it is missing (failed under VCDS_REQUIRE_TOOLS=1)."""
    binary = os.environ.get("VCCTL_BIN") or os.path.join(
        os.path.dirname(os.environ.get("VCDS_BIN", os.path.join(ROOT, "target", "debug", "vcds"))), "vcctl")
    if os.path.isfile(binary) and os.access(binary, os.X_OK):
        return binary
    why = "%s not found: build it with `cargo build -p vcctl` or set VCCTL_BIN" % binary
    if os.environ.get("VCDS_REQUIRE_TOOLS") == "1":
        pytest.fail(why + "; VCDS_REQUIRE_TOOLS=1 makes it required", pytrace=False)
    pytest.skip(why)


def test_vcctl_rust_and_python_agree(server_factory):
    """The Rust vcctl (target/*/vcctl) and conformance/vcctl.py print the same status and list
    tables, and the same fault line with exit 1. A private server, so that the list holds only
    this test's System."""
    import subprocess
    binary = rust_vcctl()
    sp = server_factory("--sim-step-ms", "100")
    python = [sys.executable, os.path.join(ROOT, "conformance", "vcctl.py"), "--url", sp.base]
    rust = [binary, "--url", sp.base]

    def run(client, *args):
        return subprocess.run(client + list(args), capture_output=True, text=True, timeout=120)

    out = run(rust, "deploy", os.path.join(ROOT, "examples", "small-cluster.cdl"))
    assert out.returncode == 0, out.stderr
    rid = out.stdout.strip().splitlines()[-1]
    for args in (["status", rid], ["list"]):
        r, p = run(rust, *args), run(python, *args)
        assert (r.returncode, p.returncode) == (0, 0), r.stderr + p.stderr
        assert rid in r.stdout and r.stdout == p.stdout, "rust:\n%s\npython:\n%s" % (r.stdout, p.stdout)
    r, p = run(rust, "run", rid), run(python, "run", rid)
    assert r.returncode == p.returncode == 1
    assert r.stderr == p.stderr and "[wrong-state]" in r.stderr, r.stderr + p.stderr
    assert run(rust, "destroy", rid).returncode == 0


def test_api_30_34_31_lifecycle_events(server, soap):
    """Api_30/Api_34: a subscriber of cmp:LifecycleTransition gets a muws1:ManagementEvent per
    transition (initialized, running); Api_31: Destroy of a live System announces terminated."""
    import uuid
    from test_notification import Consumer, check_notify, subscribe, subscription_epr
    muws2 = "http://docs.oasis-open.org/wsdm/muws2-2.xsd"
    consumer = Consumer()
    try:
        rid = create_system(server, soap)["rid"]
        token = uuid.uuid4().hex
        path = "/lifecycle/%s" % token
        r = subscribe(server, soap, "System", rid, consumer.address(path), token, "cmp:LifecycleTransition")
        subscription_epr(r, soap, server)
        ok(server, soap, rid, "Initialize", body_initialize(inline=small_cluster()), "api:initializeResponse")
        ok(server, soap, rid, "Run", "<api:runRequest/>", "api:runResponse")
        r = server.call(soap, "System", vc.body_destroy(), op="Destroy", rid=rid)
        ck.assert_ok(r, soap, "Destroy", "wsrf-rl:DestroyResponse")
        seen = []
        for _ in range(3):
            msg = consumer.wait(10, path)
            assert msg is not None, "lifecycle events so far: %s" % seen
            msgs, ctx = check_notify(msg, path, token, vc.q("cmp:LifecycleTransition"), server)
            event = msgs[0].find("%s/%s" % (vc.q("wsnt:Message"), vc.q("muws1:ManagementEvent")))
            assert event is not None, ctx
            assert event.findtext(".//" + vc.q("muws1:ResourceId")) == rid, ctx
            transition = event.find("%s/{%s}StateTransition" % (vc.q("cmp:LifecycleTransition"), muws2))
            assert transition is not None, ctx
            entered = transition.find("{%s}EnteredState" % muws2)
            previous = transition.find("{%s}PreviousState" % muws2)
            seen.append((etree_local(previous[0]), etree_local(entered[0])))
        assert seen == [("InstantiatedState", "InitializedState"), ("InitializedState", "RunningState"),
                        ("RunningState", "TerminatedState")], seen
    finally:
        consumer.close()


def body_add_file_uri(name, uri):
    return "<api:addFileRequest><api:name>%s</api:name><api:uri>%s</api:uri></api:addFileRequest>" % (name, uri)


class FileServer:
    """A plain HTTP file server on 127.0.0.1 over a temporary directory."""

    def __init__(self, files):
        import functools
        import http.server
        import tempfile
        import threading
        self.dir = tempfile.mkdtemp(prefix="cdl-")
        for name, text in files.items():
            with open(os.path.join(self.dir, name), "w", encoding="utf-8") as f:
                f.write(text)
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=self.dir)
        handler.log_message = lambda *a: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.base = "http://127.0.0.1:%d/" % self.httpd.server_address[1]

    def close(self):
        self.httpd.shutdown()


def test_api_27_initialize_bad_url_and_api_23_by_url(server_factory):
    """Api_27: AddFile by a URL that cannot be fetched (outside the allowed sources, or missing
    under one) is api:BadArgumentFault and changes nothing; a good URL under an allowed source is
    fetched and Initialize references it."""
    files = FileServer({"small.cdl": small_cluster()})
    try:
        sp = server_factory("--addfile-from", files.base)
        server, soap = sp.client, "1.1"
        rid = create_system(server, soap)["rid"]
        for bad in ["http://127.0.0.1:9/elsewhere.cdl", files.base + "missing.cdl",
                    files.base + "../etc/passwd", "file:///etc/passwd"]:
            r = op(server, soap, rid, "AddFile", body_add_file_uri("x.cdl", bad))
            deployment_fault(r, soap, "api:BadArgumentFault")
        deployment_fault(op(server, soap, rid, "Initialize", body_initialize(reference="x.cdl")),
                         soap, "api:BadArgumentFault")
        assert state_and_phase(server, soap, rid) == ("InstantiatedState", None)
        ok(server, soap, rid, "AddFile", body_add_file_uri("small.cdl", files.base + "small.cdl"),
           "api:addFileResponse")
        ok(server, soap, rid, "Initialize", body_initialize(reference="small.cdl"), "api:initializeResponse")
        assert state_and_phase(server, soap, rid) == ("InitializedState", "reserved")
    finally:
        files.close()


def test_api_40_addfile_unknown_scheme(server, soap):
    """Api_40: an unknown api:scheme, and an api:uri with a scheme vcds does not fetch, are
    api:BadArgumentFault."""
    rid = create_system(server, soap)["rid"]
    with_scheme = ("<api:addFileRequest><api:name>x.cdl</api:name><api:scheme>gopher</api:scheme>"
                   "<api:data>eA==</api:data></api:addFileRequest>")
    deployment_fault(op(server, soap, rid, "AddFile", with_scheme), soap, "api:BadArgumentFault")
    deployment_fault(op(server, soap, rid, "AddFile", body_add_file_uri("x.cdl", "gopher://127.0.0.1/x.cdl")),
                     soap, "api:BadArgumentFault")


def lifecycle_listener(server, soap, rid, consumer):
    """Subscribes `consumer` to the System's lifecycle events; the path and token to wait on."""
    import uuid
    from test_notification import subscribe, subscription_epr
    token = uuid.uuid4().hex
    path = "/lifecycle/%s" % token
    r = subscribe(server, soap, "System", rid, consumer.address(path), token, "cmp:LifecycleTransition")
    subscription_epr(r, soap, server)
    return path, token


def next_transition(server, consumer, path, token):
    """The (previous, entered) states of the next lifecycle event at `path`."""
    from test_notification import check_notify
    muws2 = "http://docs.oasis-open.org/wsdm/muws2-2.xsd"
    msg = consumer.wait(15, path)
    assert msg is not None, "no lifecycle event at %s" % path
    msgs, ctx = check_notify(msg, path, token, vc.q("cmp:LifecycleTransition"), server)
    transition = msgs[0].find(".//{%s}StateTransition" % muws2)
    assert transition is not None, ctx
    return (etree_local(transition.find("{%s}PreviousState" % muws2)[0]),
            etree_local(transition.find("{%s}EnteredState" % muws2)[0]))


def test_api_33_multiple_lifecycle_listeners(server, soap):
    """Api_33: two listeners of one System each get every lifecycle event."""
    from test_notification import Consumer
    # One consumer each: Consumer.wait drops what arrives for another path.
    consumers = [Consumer(), Consumer()]
    try:
        rid = create_system(server, soap)["rid"]
        listeners = [(c, lifecycle_listener(server, soap, rid, c)) for c in consumers]
        ok(server, soap, rid, "Initialize", body_initialize(inline=small_cluster()), "api:initializeResponse")
        for consumer, (path, token) in listeners:
            assert next_transition(server, consumer, path, token) == ("InstantiatedState", "InitializedState")
    finally:
        for c in consumers:
            c.close()


def test_api_32_failure_events(server_factory):
    """Api_32: a deployment the site fails moves the System to failed with a lifecycle event;
    Ping then is api:LivenessFault (a private server whose simulated site fails every
    provisioning)."""
    from test_notification import Consumer
    sp = server_factory("--sim-failure", "provisioning:1.0", "--sim-step-ms", "100")
    server, soap = sp.client, "1.1"
    consumer = Consumer()
    try:
        rid = create_system(server, soap)["rid"]
        path, token = lifecycle_listener(server, soap, rid, consumer)
        ok(server, soap, rid, "Initialize", body_initialize(inline=small_cluster()), "api:initializeResponse")
        ok(server, soap, rid, "Run", "<api:runRequest/>", "api:runResponse")
        seen = [next_transition(server, consumer, path, token) for _ in range(3)]
        assert seen == [("InstantiatedState", "InitializedState"), ("InitializedState", "RunningState"),
                        ("RunningState", "FailedState")], seen
        assert state_and_phase(server, soap, rid) == ("FailedState", "failed")
        r = op(server, soap, rid, "Ping", "<api:pingRequest/>")
        ck.assert_wsrf_fault(r, soap, "api:LivenessFault", "System", sender=False)
    finally:
        consumer.close()
