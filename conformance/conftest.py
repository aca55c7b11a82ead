"""pytest fixtures for the vcds conformance suite.

The server under test: $VCDS_BIN (default <repo>/target/debug/vcds), started as
    vcds serve --listen 127.0.0.1:<free port> --data-dir <tmp dir> --site sim --sim-pnodes 1000
once per session (fixture `server`), plus private instances for persistence tests (fixture
`server_factory`, whose handles can stop/restart on the same data dir and port).
Set VCDS_URL=http://127.0.0.1:PORT to test an already running server instead (persistence
tests then still start their own instances from VCDS_BIN).
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import vcds_client as vc  # noqa: E402

ROOT = os.path.dirname(HERE)
DEFAULT_BIN = os.path.join(ROOT, "target", "debug", "vcds")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ServerProcess:
    """One `vcds serve` child process (127.0.0.1 only)."""

    def __init__(self, binary, data_dir, port=None, log_dir=None, extra_args=()):
        self.binary = binary
        self.extra_args = list(extra_args)
        self.data_dir = data_dir
        self.port = port or free_port()
        self.log_dir = log_dir or data_dir
        self.proc = None
        self.log_path = None
        self.starts = 0

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def client(self):
        return vc.Server(self.base)

    def start(self, timeout=60):
        self.starts += 1
        self.log_path = os.path.join(self.log_dir, "vcds-serve-%d-%d.log" % (self.port, self.starts))
        log = open(self.log_path, "wb")
        # The simulated site: the suite checks the wire contract and creates hundreds of
        # Systems, more than this machine's local site can hold at once.
        cmd = [self.binary, "serve", "--listen", "127.0.0.1:%d" % self.port, "--data-dir", self.data_dir,
               "--site", "sim", "--sim-pnodes", "1000"] + self.extra_args
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, start_new_session=True)
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("vcds serve exited with %s during start-up:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("vcds serve did not listen on 127.0.0.1:%d within %ss:\n%s"
                           % (self.port, timeout, self.log_tail()))

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def log_tail(self, n=60):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return "(no log)"


def _binary():
    b = os.environ.get("VCDS_BIN", DEFAULT_BIN)
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        pytest.exit("vcds binary not found at %s (build it with `cargo build -p vcds` or set VCDS_BIN); "
                    "the offline checks alone: python3 -m pytest test_offline.py" % b, returncode=3)
    return b


@pytest.fixture(scope="session")
def tmp_root():
    d = tempfile.mkdtemp(prefix="vcds-conformance-")
    yield d
    if os.environ.get("VCDS_KEEP_TMP") != "1":
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def server_process(tmp_root):
    if os.environ.get("VCDS_URL"):
        yield None
        return
    data = os.path.join(tmp_root, "data-main")
    os.makedirs(data)
    sp = ServerProcess(_binary(), data, log_dir=tmp_root)
    try:
        sp.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    yield sp
    sp.stop()


@pytest.fixture(autouse=True)
def _server_still_running(request):
    """After every test: if the shared server process has died, stop the session with its exit
    status and log tail instead of a cascade of connection errors."""
    yield
    if "server_process" not in request.fixturenames:
        return
    sp = request.getfixturevalue("server_process")
    if sp is not None and sp.proc is not None and sp.proc.poll() is not None:
        pytest.exit("vcds serve (pid %d) died with status %s during %s; last log lines:\n%s"
                    % (sp.proc.pid, sp.proc.returncode, request.node.nodeid, sp.log_tail()), returncode=4)


@pytest.fixture(scope="session")
def server(server_process):
    """vcds_client.Server for the shared server."""
    if server_process is None:
        return vc.Server(os.environ["VCDS_URL"])
    return server_process.client


@pytest.fixture
def server_factory(tmp_root):
    """Starts private servers: factory(*extra serve args) -> started ServerProcess (own data dir,
    own port)."""
    made = []

    def factory(*extra_args):
        data = tempfile.mkdtemp(prefix="data-", dir=tmp_root)
        sp = ServerProcess(_binary(), data, log_dir=tmp_root, extra_args=extra_args)
        made.append(sp)
        return sp.start()

    yield factory
    for sp in made:
        sp.stop()


@pytest.fixture(params=vc.SOAP_VERSIONS, ids=["soap11", "soap12"])
def soap(request):
    return request.param


def create_system(server, soap="1.1", hostname=None):
    """Create a System through the Portal (raw SOAP); returns dict(rid, address, api_id, resp)."""
    r = server.call(soap, "Portal", vc.body_create(hostname), op="Create")
    assert r.status == 200 and r.xml is not None and not r.is_fault, r.describe()
    cr = r.body_child
    assert cr.tag == vc.q("api:createResponse"), r.describe()
    api_id = (cr.findtext(vc.q("api:ResourceId")) or "").strip()
    ref = cr.find(vc.q("api:systemReference"))
    assert ref is not None, r.describe()
    address, params = vc.epr_of(ref)
    rid = params.get(vc.q("vcds:ResourceId"))
    assert rid, "systemReference has no vcds:ResourceId reference parameter:\n" + r.describe()
    return dict(rid=rid, address=address, api_id=api_id, resp=r)


@pytest.fixture
def system(server):
    """A fresh System resource (destroyed afterwards when still there)."""
    s = create_system(server)
    yield s
    try:
        server.call("1.1", "System", vc.body_destroy(), op="Destroy", rid=s["rid"], timeout=10)
    except Exception:
        pass


@pytest.fixture(scope="session")
def zeep_client(server):
    """zeep Client on <Portal>?wsdl with a history plugin. zeep applies its WS-Addressing plugin
    (zeep.wsa.WsAddressingPlugin: wsa:Action from the WSDL's wsam:Action, MessageID, To) by
    itself to every operation whose WSDL input has wsam:Action; adding it to `plugins` as well
    would send every header twice."""
    import zeep
    from zeep.plugins import HistoryPlugin
    from zeep.transports import Transport
    history = HistoryPlugin(maxlen=5)
    client = zeep.Client(server.url("Portal") + "?wsdl",
                         transport=Transport(timeout=30, operation_timeout=30),
                         plugins=[history])
    client.vcds_history = history
    return client


def zeep_service(client, endpoint, soap):
    return client.bind("VcdsService", "%sSoap%s" % (endpoint, soap.replace(".", "")))


def rid_header(rid):
    """The vcds:ResourceId reference-parameter header block as an lxml element (for zeep)."""
    from lxml import etree
    el = etree.Element(vc.q("vcds:ResourceId"), nsmap={"vcds": vc.NS["vcds"], "wsa": vc.NS["wsa"]})
    el.set(vc.q("wsa:IsReferenceParameter"), "true")
    el.text = rid
    return el
