"""Raw-socket clients for tests/api/hostile.sh: what curl cannot send.

Each subcommand talks to moat-server on 127.0.0.1:PORT and prints one JSON
object with what it saw; every wait is bounded.

  idle PORT N HOLD READY   open N connections from 127.0.0.1 and send nothing;
                           touch READY once they are open, then wait up to HOLD s
                           for the server to close them
  drip PORT EVERY LIMIT    send a request one byte every EVERY s; report when
                           (if within LIMIT s) the server closed the connection
  raw PORT FILE            send FILE's bytes, read the answer (status line)
  lie PORT CLAIM SEND LIMIT  a POST announcing CLAIM body bytes that sends SEND of
                           them, then nothing: report how the server ends it
  deep N                   print an event batch whose details nest N levels
"""
import json
import os
import select
import socket
import sys
import time

HOST = "127.0.0.1"


def connect(port, source=None, timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if source:
        s.bind((source, 0))
    s.settimeout(timeout)
    s.connect((HOST, port))
    return s


def closed(s):
    """True when the peer has closed (or reset) the connection."""
    try:
        p = select.poll()  # not select(): descriptors past 1,024
        p.register(s, select.POLLIN | select.POLLERR | select.POLLHUP)
        if not p.poll(0):
            return False
        data = s.recv(4096)
        return data == b"" or not data
    except OSError:
        return True


def status_of(data):
    line = data.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def read_answer(s, limit):
    """Reads until the answer's headers (and what follows soon) or the end; the status or 0."""
    s.settimeout(limit)
    data = b""
    end = time.monotonic() + limit
    try:
        while time.monotonic() < end:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                break
    except OSError:
        pass
    return status_of(data), data


def idle(port, n, hold, ready):
    socks = []
    refused = 0
    for _ in range(n):
        try:
            socks.append(connect(port, timeout=2))
        except OSError:
            refused += 1
    time.sleep(0.2)
    dead_at_once = sum(1 for s in socks if closed(s))
    open(ready, "w").close()
    start = time.monotonic()
    alive = [s for s in socks if not closed(s)]
    held = len(alive)
    while alive and time.monotonic() - start < hold:
        time.sleep(0.1)
        alive = [s for s in alive if not closed(s)]
    took = time.monotonic() - start
    for s in socks:
        s.close()
    print(json.dumps({"tried": n, "refused": refused, "closed_at_once": dead_at_once,
                      "held": held, "still_open": len(alive), "seconds": round(took, 2)}))


def drip(port, every, limit):
    s = connect(port)
    request = b"GET /api/v1/clusters HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4096
    start = time.monotonic()
    sent = 0
    ended = None
    while time.monotonic() - start < limit:
        try:
            s.send(request[sent:sent + 1])
            sent += 1
        except OSError:
            ended = time.monotonic() - start
            break
        time.sleep(every)
        if closed(s):
            ended = time.monotonic() - start
            break
    s.close()
    print(json.dumps({"bytes_sent": sent, "closed_after": round(ended, 2) if ended else None}))


def raw(port, path):
    with open(path, "rb") as f:
        payload = f.read()
    s = connect(port)
    try:
        s.sendall(payload)
    except OSError:
        pass
    code, data = read_answer(s, 5)
    s.close()
    print(json.dumps({"status": code, "head": data[:300].decode("latin-1")}))


def lie(port, claim, send, limit):
    s = connect(port)
    token = os.environ.get("TOKEN", "")
    head = ("POST /api/v1/objects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (token, claim))
    s.sendall(head.encode() + b"{" * send)
    start = time.monotonic()
    code, data = read_answer(s, limit)
    took = time.monotonic() - start
    ended = closed(s) or code != 0 or not data
    s.close()
    print(json.dumps({"status": code, "ended": ended, "seconds": round(took, 2)}))


def deep(n):
    details = "1"
    for _ in range(n):
        details = '{"a":' + details + "}"
    print('{"batch":"deep-%d","events":[{"kind":"policy","applied_action":"block",'
          '"source":{"address":"10.9.0.1"},"destination":{"address":"10.9.0.2","port":80},'
          '"details":%s}]}' % (n, details))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "idle":
        idle(int(args[0]), int(args[1]), float(args[2]), args[3])
    elif cmd == "drip":
        drip(int(args[0]), float(args[1]), float(args[2]))
    elif cmd == "raw":
        raw(int(args[0]), args[1])
    elif cmd == "lie":
        lie(int(args[0]), int(args[1]), int(args[2]), float(args[3]))
    elif cmd == "deep":
        deep(int(args[0]))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
