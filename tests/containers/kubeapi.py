#!/usr/bin/python3
"""A recorded Kubernetes API server for tests/containers/kube.sh.

Replays the list and watch answers in tests/containers/kube/ (the JSON of
real API answers: PodList, NamespaceList, watch events with a BOOKMARK, an
ADDED pod, a 410 Gone ERROR) in the order a client-go reflector meets them,
on 127.0.0.1 only, and logs every request it gets so the test can check
what the client asked for:

  pods:       list (rv 105) -> watch from 105: BOOKMARK 107, then (step1)
              ADDED db-0 at 110, then (step2) the connection is dropped ->
              watch from 110: ERROR 410 -> list again (rv 200: web relabelled,
              cli gone) -> watch from 200: bookmarks until the end
  namespaces: list (rv 100) -> watch from 100: (step3) MODIFIED shop (its
              team label changes), then bookmarks

It also answers API discovery (/api, /apis, /version: discovery.json) and a
404 NotFound Status for any other object, as a cluster without Moat does:
enough for `kubectl apply --dry-run=client` (tests/containers/deploy.sh).

A step happens when the test creates the file DIR/STEP. Requests without the
kubeconfig's bearer token for pods and namespaces get 401; a pods request without the node's
fieldSelector gets 400; a watch from another resourceVersion than the one
due is logged as UNEXPECTED and answered 400.

Usage: kubeapi.py DIR NODE TOKEN  (prints the port on stdout, then serves)
"""
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kube")
DIR, NODE, TOKEN = sys.argv[1], sys.argv[2], sys.argv[3]
LOG = open(os.path.join(DIR, "requests.log"), "a", buffering=1)
lock = threading.Lock()
state = {"pods_lists": 0, "pods_watches": 0, "ns_watches": 0}


def fixture(name):
    with open(os.path.join(HERE, name)) as f:
        return json.loads(f.read().replace("@NODE@", NODE))


def wait_step(step, handler):
    """Waits for DIR/STEP; False when the server is stopping or the client left."""
    path = os.path.join(DIR, step)
    for _ in range(6000):
        if os.path.exists(path):
            return True
        time.sleep(0.05)
    return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def status(self, code, reason, message):
        self.answer(code, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                           "status": "Failure", "message": message, "reason": reason, "code": code})

    def start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def event(self, obj):
        data = (json.dumps(obj) + "\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def bookmarks(self, kind, rv):
        """Keeps the watch open with a bookmark a second until the client leaves."""
        try:
            for _ in range(600):
                time.sleep(1)
                self.event({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": "v1",
                                                           "metadata": {"resourceVersion": rv}}})
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        watch = q.get("watch") in ("1", "true")
        rv = q.get("resourceVersion", "")
        LOG.write("GET %s %s%s\n" % (url.path, "watch rv=" + rv if watch else "list",
                                     " bookmarks" if q.get("allowWatchBookmarks") == "true" else ""))
        discovery = fixture("discovery.json")
        if url.path in discovery:  # public, as discovery is to system:unauthenticated
            return self.answer(200, discovery[url.path])
        if url.path in ("/api/v1/pods", "/api/v1/namespaces") and \
                self.headers.get("Authorization") != "Bearer " + TOKEN:
            return self.status(401, "Unauthorized", "Unauthorized")
        if url.path == "/api/v1/namespaces":
            return self.namespaces(watch, rv)
        if url.path == "/api/v1/pods":
            if q.get("fieldSelector") != "spec.nodeName=" + NODE:
                return self.status(400, "BadRequest", "expected the node's fieldSelector")
            return self.pods(watch, rv)
        return self.status(404, "NotFound", "the server could not find the requested resource")

    def namespaces(self, watch, rv):
        if not watch:
            return self.answer(200, fixture("namespaces-list.json"))
        with lock:
            state["ns_watches"] += 1
            n = state["ns_watches"]
        if n == 1 and rv != "100" or n > 1 and rv not in ("100", "300"):
            LOG.write("UNEXPECTED namespaces watch rv=%s\n" % rv)
            return self.status(400, "BadRequest", "unexpected resourceVersion")
        self.start_stream()
        if rv == "100":
            if not wait_step("step3", self):
                return
            self.event(fixture("namespaces-watch-modified.json"))
        self.bookmarks("Namespace", "300")

    def pods(self, watch, rv):
        if not watch:
            with lock:
                state["pods_lists"] += 1
                n = state["pods_lists"]
            return self.answer(200, fixture("pods-list-%d.json" % min(n, 2)))
        with lock:
            state["pods_watches"] += 1
            n = state["pods_watches"]
        due = {1: "105", 2: "110"}.get(n, "200")
        if rv != due:
            LOG.write("UNEXPECTED pods watch %d rv=%s (due %s)\n" % (n, rv, due))
            return self.status(400, "BadRequest", "unexpected resourceVersion")
        self.start_stream()
        if n == 1:
            self.event(fixture("pods-watch-1-bookmark.json"))
            if not wait_step("step1", self):
                return
            self.event(fixture("pods-watch-1-added.json"))
            if not wait_step("step2", self):
                return
            LOG.write("DROP pods watch\n")
            self.close_connection = True
            self.connection.shutdown(2)  # dropped mid-stream: no closing chunk
            return
        if n == 2:
            self.event(fixture("pods-watch-2-gone.json"))
            self.end_stream()
            return
        self.bookmarks("Pod", "200")


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
