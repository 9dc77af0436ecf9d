#!/usr/bin/python3
"""dnsd: a tiny DNS resolver for the lab's detection tests (stdlib only).

    dnsd.py ADDRESS_A ADDRESS_AAAA

Listens on UDP and TCP port 53 (IPv4 and IPv6) and answers every query with
one record: ADDRESS_A for A, ADDRESS_AAAA for AAAA, nothing for other types.
Three names misbehave on purpose, to play a resolver gone wrong:
  other-question.test: the answer repeats another question (evil.example)
  no-answer.test:       no answer at all
  big.test:             over TCP, a 65,535-byte answer (the most DNS over TCP
                        can frame), padded with 0xc0 bytes (pointers everywhere)
Prints `ready` once it listens; runs until SIGTERM.
"""
import select
import signal
import socket
import struct
import sys
import threading


def name_at(msg, off):
    labels = []
    while off < len(msg) and msg[off]:
        n = msg[off]
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n
    return ".".join(labels), off + 1


def encode(name):
    out = b""
    for label in name.split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def answer(query, a4, a6):
    if len(query) < 17:
        return None
    txid, flags, qd = struct.unpack(">HHH", query[:6])
    if flags & 0x8000 or qd != 1:
        return None
    name, end = name_at(query, 12)
    qtype, qclass = struct.unpack(">HH", query[end:end + 4])
    if name == "no-answer.test":
        return None
    question = query[12:end + 4]
    if name == "other-question.test":
        question = encode("evil.example") + struct.pack(">HH", qtype, qclass)
    rdata = None
    if qtype == 1:
        rdata = socket.inet_pton(socket.AF_INET, a4)
    elif qtype == 28:
        rdata = socket.inet_pton(socket.AF_INET6, a6)
    header = struct.pack(">HHHHHH", txid, 0x8180, 1, 1 if rdata else 0, 0, 0)
    out = header + question
    if rdata:
        out += b"\xc0\x0c" + struct.pack(">HHIH", qtype, 1, 30, len(rdata)) + rdata
    return out


def serve_tcp(conn, a4, a6):
    """One DNS-over-TCP connection: length-prefixed queries until the peer closes."""
    conn.settimeout(5)
    try:
        while True:
            head = conn.recv(2, socket.MSG_WAITALL)
            if len(head) < 2:
                return
            query = conn.recv(struct.unpack(">H", head)[0], socket.MSG_WAITALL)
            reply = answer(query, a4, a6)
            if reply is None:
                continue
            name, _ = name_at(query, 12)
            if name == "big.test":
                reply = (reply + b"\xc0" * 65535)[:65535]
            conn.sendall(struct.pack(">H", len(reply)) + reply)
    except OSError:
        return
    finally:
        conn.close()


def listen_tcp(a4, a6):
    t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("::", 53))
    t.listen(16)

    def loop():
        while True:
            conn, _ = t.accept()
            threading.Thread(target=serve_tcp, args=(conn, a4, a6), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()


def main():
    a4, a6 = sys.argv[1], sys.argv[2]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    socks = []
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s6.bind(("::", 53))
    socks.append(s6)
    listen_tcp(a4, a6)
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select(socks, [], [])
        for s in ready:
            query, peer = s.recvfrom(4096)
            reply = answer(query, a4, a6)
            if reply:
                s.sendto(reply, peer)


if __name__ == "__main__":
    main()
