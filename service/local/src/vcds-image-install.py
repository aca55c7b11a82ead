#!/usr/bin/python3
"""The image installer's step on the node (vc:installer image), run once by cloud-init's
runcmd after it applied the site's NoCloud seed: what the Rocks installer does after the
packages, on the running system instead of a chroot. It fetches this node's kickstart, checks
that the image holds every %packages name, runs every %pre then every %post, marks the
disk installed, and reports `finished` once sshd answers and every readiness check of
/etc/vcds/ready.d (a roll's, such as the scheduler seeing every node) passes (a node that
reports ready is usable), or `failed` with the reason.

Usage: vcds-image-install KICKSTART_URL PROGRESS_URL MAC
"""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

LOG = "/var/log/vcds-install.log"
SECTION = re.compile(r"^%(pre|post|packages)(\s|$)")


def say(text):
    # On the console, as the Rocks installer's markers are.
    print(f"VCDS-INSTALL {text}", flush=True)


def report(progress, mac, state, message=None):
    query = {"state": state, "mac": mac}
    if message:
        query["msg"] = message[:400]
    url = f"{progress}?{urllib.parse.urlencode(query)}"
    for _ in range(30):
        try:
            urllib.request.urlopen(url, timeout=10).close()
            return
        except OSError:
            time.sleep(2)


def fetch(url):
    for _ in range(60):
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                return reply.read().decode()
        except OSError:
            time.sleep(2)
    raise RuntimeError(f"cannot fetch {url}")


def sections(kickstart):
    """(kind, header, body) of every %pre/%post/%packages section, in kickstart order."""
    out, current = [], None
    for line in kickstart.splitlines():
        if current is None:
            if SECTION.match(line):
                current = (SECTION.match(line).group(1), line, [])
        elif line.startswith("%end"):
            out.append((current[0], current[1], "\n".join(current[2]) + "\n"))
            current = None
        else:
            current[2].append(line)
    return out


def missing_packages(parts):
    wanted = set()
    for kind, _, body in parts:
        if kind == "packages":
            for line in body.splitlines():
                wanted.update(w for w in line.split("#")[0].split() if w[0] not in "@-")
    status = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${Status}\n"],
        capture_output=True, text=True, check=False,
    ).stdout
    installed = {l.split()[0] for l in status.splitlines() if l.endswith(" install ok installed")}
    return sorted(wanted - installed)


def run_script(kind, header, body, number):
    interpreter = "/bin/sh"
    given = re.search(r"--interpreter[= ](\S+)", header)
    if kind == "post" and given and subprocess.run(["test", "-x", given.group(1)]).returncode == 0:
        interpreter = given.group(1)
    path = f"/run/vcds-{number:02d}-{kind}"
    with open(path, "w") as script:
        script.write(body)
    say(f"%{kind} {number:02d}")
    with open(LOG, "a") as log:
        code = subprocess.run([interpreter, path], stdout=log, stderr=subprocess.STDOUT).returncode
    if code != 0:
        with open(LOG) as log:
            last = (log.read().strip().splitlines() or [""])[-1]
        raise RuntimeError(f"%{kind} {number:02d} exited {code}: {last}")


def sshd_answers(within):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", 22), timeout=5) as conn:
                if conn.recv(4).startswith(b"SSH-"):
                    return True
        except OSError:
            pass
        time.sleep(1)
    return False


def readiness_checks():
    checks = "/etc/vcds/ready.d"
    for name in sorted(os.listdir(checks)) if os.path.isdir(checks) else []:
        path = os.path.join(checks, name)
        if not os.access(path, os.X_OK):
            continue
        say(f"readiness check {name}")
        done = subprocess.run([path], capture_output=True, text=True, timeout=540, check=False)
        if done.returncode != 0:
            last = ((done.stdout + done.stderr).strip().splitlines() or [""])[-1]
            raise RuntimeError(f"readiness check {name}: {last}")


def main():
    kickstart_url, progress, mac = sys.argv[1:4]
    try:
        say(f"fetching {kickstart_url}")
        kickstart = fetch(f"{kickstart_url}?{urllib.parse.urlencode({'mac': mac})}")
        report(progress, mac, "started")
        parts = sections(kickstart)
        lacking = missing_packages(parts)
        if lacking:
            raise RuntimeError(f"the image lacks packages: {' '.join(lacking)}")
        with open("/root/vcds-ks.cfg", "w") as copy:
            copy.write(kickstart)
        # Where the site's install endpoints are, for the installed system's own reports.
        os.makedirs("/etc/vcds", exist_ok=True)
        with open("/etc/vcds/site", "w") as site:
            install = kickstart_url.removesuffix("/sbin/kickstart.cgi")
            site.write(f"VCDS_INSTALL={install}\nVCDS_MAC={mac}\n")
        # Every %pre, then every %post, as the Rocks installer runs them.
        for wanted in ("pre", "post"):
            for number, (kind, header, body) in enumerate(parts, 1):
                if kind == wanted:
                    run_script(kind, header, body, number)
        os.makedirs("/var/lib/vcds", exist_ok=True)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with open("/var/lib/vcds/installed", "w") as marker:
            marker.write(f"installed {stamp} from {kickstart_url} for {mac} (cloud image)\n")
        if not sshd_answers(120):
            raise RuntimeError("sshd does not answer on port 22")
        readiness_checks()
    except Exception as failure:  # every failure is reported, with its reason
        say(f"FAILED {failure}")
        report(progress, mac, "failed", str(failure))
        return 1
    say("finished")
    report(progress, mac, "finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
