"""labkit: what the lab's Python suites share (tests/lab/attacks.py,
tests/lab/detections.py): entering lab namespaces with setns(2), captures
and raw senders on a workload's eth0, real TCP/UDP sessions from inside a
workload, the lab's state, policy rules, moatd's generation and alerts, and
the `ok`/`FAIL` (and `held`/`bypassed`) lines with their closing count.

Debian's python3-scapy is used by the suites, not here.
"""
import ctypes
import json
import os
import select
import socket
import subprocess
import sys
import time

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
libc = ctypes.CDLL("libc.so.6", use_errno=True)
MOAT = os.environ.get("MOAT", "moat")


class Results:
    """Counts what a suite prints."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, name):
        self.passed += 1
        print("ok " + name, flush=True)

    def bad(self, name, why):
        self.failed += 1
        print("FAIL %s: %s" % (name, why), flush=True)

    def held(self, name):
        self.passed += 1
        print("held " + name, flush=True)

    def bypassed(self, name, why):
        self.failed += 1
        print("bypassed %s: %s" % (name, why), flush=True)

    def check(self, name, got, want):
        if got == want:
            self.ok(name)
        else:
            self.bad(name, "got %r, want %r" % (got, want))

    def close(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        sys.exit(1 if self.failed else 0)


# ---------- namespaces ----------

class NetNS:
    """Runs the body inside network namespace `name` (this thread only)."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.orig = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open("/run/netns/" + self.name, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns " + self.name)
        finally:
            os.close(fd)
        return self

    def __exit__(self, *exc):
        libc.setns(self.orig, CLONE_NEWNET)
        os.close(self.orig)


def lab_status(lab):
    out = subprocess.run([MOAT, "lab", "status", "--name", lab, "-o", "json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def ip_json(netns, *args):
    out = subprocess.run(["ip", "-n", netns, "-j"] + list(args), check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else []


class Workload:
    def __init__(self, w):
        self.name = w["name"]
        self.netns = w["netns"]
        self.v4 = next(a for a in w["ips"] if ":" not in a)
        self.v6 = next(a for a in w["ips"] if ":" in a)
        link = ip_json(self.netns, "link", "show", "eth0")[0]
        self.mac = link["address"]
        addrs = ip_json(self.netns, "-6", "addr", "show", "eth0")[0]["addr_info"]
        self.ll = next(a["local"] for a in addrs if a["local"].startswith("fe80"))

    def addr(self, v6):
        return self.v6 if v6 else self.v4


# ---------- capture and send ----------

class Capture:
    """Frames arriving on a workload's eth0 (inside its namespace)."""

    def __init__(self, wl):
        with NetNS(wl.netns):
            self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            self.s.bind(("eth0", 0))
        self.s.setblocking(False)
        self.frames = []

    def pump(self):
        while True:
            try:
                data, addr = self.s.recvfrom(65535)
            except BlockingIOError:
                return
            if addr[2] != PACKET_OUTGOING:
                from scapy.all import Ether  # noqa: E402 (scapy is slow to import)
                self.frames.append(Ether(data))

    def find(self, pred):
        self.pump()
        return [f for f in self.frames if pred(f)]

    def wait(self, pred, timeout=3.0):
        deadline = time.monotonic() + timeout
        while True:
            got = self.find(pred)
            if got:
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            select.select([self.s], [], [], min(left, 0.2))

    def close(self):
        self.s.close()


class Sender:
    """Raw frames out of a workload's eth0."""

    def __init__(self, wl):
        with NetNS(wl.netns):
            self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            self.s.bind(("eth0", 0))

    def send(self, *frames):
        for f in frames:
            self.s.send(bytes(f))


def has(marker):
    return lambda f: marker in bytes(f)


def sock_in(wl, family, kind):
    with NetNS(wl.netns):
        return socket.socket(family, kind)


def fam(v6):
    return socket.AF_INET6 if v6 else socket.AF_INET


def tcp_connects(src, dst_addr, port, v6, timeout=2.0, opts=(), scope=0, bind=None):
    """A full TCP session from workload `src`: connect, one echoed line."""
    s = sock_in(src, fam(v6), socket.SOCK_STREAM)
    try:
        for level, name, value in opts:
            s.setsockopt(level, name, value)
        if bind:
            s.bind(bind)
        s.settimeout(timeout)
        s.connect((dst_addr, port, 0, scope) if v6 else (dst_addr, port))
        s.sendall(b"moat-attack-check\n")
        got = b""
        while not got.endswith(b"\n"):
            chunk = s.recv(100)
            if not chunk:
                return False
            got += chunk
        return got == b"moat-attack-check\n"
    except OSError:
        return False
    finally:
        s.close()


def udp_echo(src, dst_addr, port, v6, size=32, timeout=2.0, scope=0):
    """One datagram of `size` bytes from `src`; True when echoed whole."""
    s = sock_in(src, fam(v6), socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        payload = (b"moat-udp-check-" * (size // 15 + 1))[:size]
        s.sendto(payload, (dst_addr, port, 0, scope) if v6 else (dst_addr, port))
        data = s.recv(65535)
        return data == payload
    except OSError:
        return False
    finally:
        s.close()


def generation(node):
    try:
        with open("/run/moat/moatd-%s.json" % node) as f:
            return json.load(f).get("generation", 0)
    except (OSError, ValueError):
        return 0



def rule(name, src, dst, ports, proto, action, prio):
    return ("---\nkind: DefenseRule\ncluster: lab\nname: %s\nsource: %s\ndestinations:\n"
            "  - object: %s\n%sprotocol: %s\naction: %s\npriority: %d\n"
            % (name, src, dst, '    ports: "%s"\n' % ports if ports else "", proto, action, prio))


def apply_policy(node, path, text, timeout=10):
    """Writes the policy file (rename: moatd reads it whole) and waits for moatd to apply it."""
    before = generation(node)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)
    deadline = time.monotonic() + timeout
    while generation(node) <= before:
        if time.monotonic() > deadline:
            raise SystemExit("moatd did not apply the policy within %d s" % timeout)
        time.sleep(0.05)


def wait_for(cond, timeout=5.0, step=0.05):
    """cond() until it is true or the bound passes; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def eth(src, dst_mac, t=None):
    from scapy.all import Ether  # noqa: E402
    e = Ether(src=src.mac, dst=dst_mac)
    if t is not None:
        e.type = t
    return e


def flush_neigh(wl):
    subprocess.run(["ip", "-n", wl.netns, "neigh", "flush", "dev", "eth0"], check=False)


def neigh_mac(wl, addr):
    for n in ip_json(wl.netns, "neigh", "show", "dev", "eth0"):
        if n.get("dst") == addr:
            return n.get("lladdr")
    return None


def alerts_lines(path):
    """moatd's alerts file, the last line of each alert id (an alert is rewritten as it grows)."""
    try:
        with open(path) as f:
            lines = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return []
    last = {}
    for a in lines:
        last[a["id"]] = a
    return list(last.values())



def wait_dad(wls, timeout=5.0):
    """Every workload's IPv6 addresses past duplicate address detection."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tentative = [w.name for w in wls
                     for a in ip_json(w.netns, "-6", "addr", "show", "eth0")[0]["addr_info"]
                     if a.get("tentative")]
        if not tentative:
            return
        time.sleep(0.05)
    raise SystemExit("attacks: IPv6 addresses still tentative after %.0f s" % timeout)
