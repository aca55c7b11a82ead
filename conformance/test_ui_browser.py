"""The web UI in a real browser: headless Chromium (Debian's chromium) driven over WebDriver
(Debian's chromium-driver, Python selenium) against `vcds serve --site sim` on 127.0.0.1.

A cluster is made through the SOAP API, then the browser loads the dashboard, opens the
cluster, presses Suspend, confirms, and waits for the phase to read "suspended". Screenshots of
every page are kept in $VCDS_UI_SCREENSHOTS (default <repo>/target/ui-screenshots/).

Skipped when chromium, chromedriver or selenium is missing, unless VCDS_REQUIRE_TOOLS=1 (CI),
which makes a missing tool a failure. Chromium, chromedriver and the temporary profile are
cleaned up whatever happens.
"""
import base64
import os
import shutil
import signal
import tempfile
import time

import pytest

import vcds_client as vc
from conftest import ROOT, create_system
from test_cddlm import body_initialize, ok, small_cluster, state_and_phase

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = os.environ.get("VCDS_UI_SCREENSHOTS", os.path.join(ROOT, "target", "ui-screenshots"))
# As root on this kind of machine: no sandbox, no GPU, and nothing that phones home.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,1000"]
WAIT_S = 20


def require_tools():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("python selenium (pip install -r conformance/requirements.txt)")
    if missing:
        why = "browser test needs %s (apt-get install chromium chromium-driver)" % ", ".join(missing)
        if os.environ.get("VCDS_REQUIRE_TOOLS") == "1":
            pytest.fail(why + "; VCDS_REQUIRE_TOOLS=1 makes it required", pytrace=False)
        pytest.skip(why)


def kill_profile_processes(profile):
    """Ends the Chromium processes that run with our own temporary profile (by pid; a quit
    that failed can leave them behind)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmdline = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        if ("--user-data-dir=" + profile) in cmdline:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture
def browser(tmp_root):
    require_tools()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="vcds-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + ["--user-data-dir=" + profile]:
        options.add_argument(flag)
    service = Service(executable_path=CHROMEDRIVER,
                      log_output=os.path.join(tmp_root, "chromedriver-%d.log" % os.getpid()))
    driver = None
    try:
        driver = webdriver.Chrome(service=service, options=options)
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        if driver is not None:
            try:
                driver.quit()
            except Exception:
                pass
        try:
            service.stop()
        except Exception:
            pass
        kill_profile_processes(profile)
        shutil.rmtree(profile, ignore_errors=True)


def shot(driver, name):
    """The whole page (beyond the window, through the DevTools protocol) as NAME.png."""
    os.makedirs(SCREENSHOTS, exist_ok=True)
    path = os.path.join(SCREENSHOTS, name + ".png")
    png = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    with open(path, "wb") as f:
        f.write(base64.b64decode(png["data"]))
    assert os.path.getsize(path) > 1000, "screenshot %s is empty" % path
    return path


def wait_for(what, check, timeout=WAIT_S):
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(0.2)


def shown_phase(driver):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    try:
        return driver.find_element("css selector", "#phase [data-phase]").get_attribute("data-phase")
    except (NoSuchElementException, StaleElementReferenceException):
        return None


def test_ui_dashboard_cluster_and_suspend_in_chromium(browser, server_factory):
    sp = server_factory("--sim-step-ms", "200")
    server = sp.client
    s = create_system(server)
    rid = s["rid"]
    ok(server, "1.1", rid, "Initialize", body_initialize(inline=small_cluster()), "api:initializeResponse")
    ok(server, "1.1", rid, "Run", "<api:runRequest/>", "api:runResponse")
    wait_for("phase ready over SOAP", lambda: state_and_phase(server, "1.1", rid)[1] == "ready")

    driver = browser
    driver.get(sp.base + "/ui/")
    wait_for("the dashboard", lambda: "Virtual clusters" in driver.page_source)
    assert "P-nodes" in driver.page_source, "the local admin sees the P-node dashboard"
    row = driver.find_element("css selector", "tr[data-cluster='%s']" % rid)
    assert "ready" in row.text, row.text
    assert driver.find_elements("css selector", "tr[data-pnode]"), "no P-node rows"
    shot(driver, "dashboard")

    row.find_element("css selector", "a").click()
    wait_for("the cluster page", lambda: shown_phase(driver) == "ready")
    assert rid in driver.page_source
    assert len(driver.find_elements("css selector", "tr[data-node]")) == 3, "frontend + 2 computes"
    assert "phase installing → ready" in driver.find_element("css selector", "ol.events").text
    shot(driver, "cluster-ready")

    driver.find_element("css selector", "button.btn-suspend").click()
    confirm = wait_for("the confirmation page",
                       lambda: driver.find_elements("css selector", "button#confirm"))
    assert "Suspend virtual cluster" in driver.page_source
    assert shown_phase(driver) is None, "the confirmation is its own page"
    shot(driver, "confirm-suspend")
    confirm[0].click()

    wait_for("phase suspended on the cluster page", lambda: shown_phase(driver) == "suspended")
    assert "phase ready → suspended" in driver.find_element("css selector", "ol.events").text
    shot(driver, "cluster-suspended")
    assert state_and_phase(server, "1.1", rid) == ("SuspendedState", "suspended")

    # Resume from the page's live state: the button is offered again once suspended.
    driver.find_element("css selector", "button.btn-resume").click()
    wait_for("the resume confirmation", lambda: driver.find_elements("css selector", "button#confirm"))[0].click()
    wait_for("phase ready again", lambda: shown_phase(driver) == "ready")
    assert state_and_phase(server, "1.1", rid) == ("RunningState", "ready")
    server.call("1.1", "System", vc.body_destroy(), op="Destroy", rid=rid)
