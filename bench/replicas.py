#!/usr/bin/python3
"""Drivers for bench/replicas.sh: setup, event ingest and propagation to many agents.

  replicas.py setup URL ADMIN                 a cluster, 200 objects, 100 rules
  replicas.py events ADMIN TAG AGENTS BATCHES URL...   events/s, agents spread over URLs
  replicas.py propagation ADMIN AGENTS ROUNDS URL...   p50/p99 ms from a rule written
                                              through the first URL to each agent's answer
Prints key=value lines. Everything goes to 127.0.0.1.
"""
import asyncio
import http.client
import json
import resource
import sys
import threading
import time
import urllib.parse


def conn_for(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=60)


def call(url, method, path, token, body=None, conn=None, want=(200, 201)):
    c = conn or conn_for(url)
    h = {'Authorization': 'Bearer ' + token}
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h['Content-Type'] = 'application/json'
    c.request(method, path, data, h)
    r = c.getresponse()
    out = r.read()
    if r.status not in want:
        sys.exit('bench/replicas: %s %s: %d %s' % (method, path, r.status, out[:300]))
    return json.loads(out) if out else None


def setup(url, admin):
    c = conn_for(url)
    call(url, 'POST', '/api/v1/clusters', admin, {'name': 'bench', 'defense': 'on'}, c)
    for i in range(200):
        call(url, 'POST', '/api/v1/objects', admin,
             {'name': 'obj-%d' % i, 'namespace': 'ns-%d' % (i % 10), 'app': 'app-%d' % i}, c)
    for i in range(100):
        call(url, 'POST', '/api/v1/clusters/bench/rules', admin,
             {'name': 'rule-%d' % i, 'source': 'obj-%d' % (i % 200),
              'destinations': [{'object': 'obj-%d' % ((i * 7 + 1) % 200), 'ports': [1000 + i]}],
              'protocol': 'tcp', 'action': 'allow', 'priority': 1 + i}, c)


def register(url, admin, node):
    jt = call(url, 'GET', '/api/v1/clusters/bench/join-token', admin)['join_token']
    return call(url, 'POST', '/api/v1/agents/register', '',
                {'cluster': 'bench', 'node': node, 'join_token': jt, 'agent_version': '0.1.0'})['token']


def events(admin, tag, agents, batches, urls):
    creds = [register(urls[0], admin, 'ev-%s-%d' % (tag, a)) for a in range(agents)]
    now = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())

    def body(a, b):
        ev = [{'time': now, 'kind': 'policy', 'applied_action': 'block', 'protocol': 'tcp',
               'source': {'address': '10.%d.%d.%d' % (a + 1, (b * 1000 + i) // 250 % 250, i % 250 + 1),
                          'port': 40000 + i % 2000},
               'destination': {'address': '10.200.0.1', 'port': 80 + i % 7}} for i in range(1000)]
        return json.dumps({'batch': '%s-%d' % (tag, b), 'events': ev}).encode()
    bodies = [[body(a, b) for b in range(batches)] for a in range(agents)]
    errors = []

    def send(a):
        url = urls[a % len(urls)]
        c = conn_for(url)
        for b in bodies[a]:
            c.request('POST', '/api/v1/agents/events', b,
                      {'Authorization': 'Bearer ' + creds[a], 'Content-Type': 'application/json'})
            r = c.getresponse()
            out = r.read()
            if r.status != 200:
                errors.append('%d %s' % (r.status, out[:200]))
                return
    ts = [threading.Thread(target=send, args=(a,)) for a in range(agents)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.monotonic() - t0
    if errors:
        sys.exit('bench/replicas: events: ' + errors[0])
    print('events_per_s=%.0f' % (agents * batches * 1000 / dt))


async def poll(host, port, token, rev, out, idx):
    r, w = await asyncio.open_connection(host, port)
    w.write(('GET /api/v1/agents/policy?revision=%d&wait=30 HTTP/1.1\r\nHost: x\r\n'
             'Authorization: Bearer %s\r\nConnection: close\r\n\r\n' % (rev, token)).encode())
    await w.drain()
    line = await r.readline()
    out[idx] = (time.monotonic(), line.split()[1].decode() if len(line.split()) > 1 else '?')
    w.close()


async def propagation_round(urls, admin, creds, rev, rnd):
    out = [None] * len(creds)
    tasks = []
    for i, cr in enumerate(creds):
        u = urllib.parse.urlparse(urls[i % len(urls)])
        tasks.append(asyncio.ensure_future(poll(u.hostname, u.port, cr, rev, out, i)))
    await asyncio.sleep(3)  # every poll is suspended by then (the answers are counted below)
    t0 = time.monotonic()
    await asyncio.get_event_loop().run_in_executor(None, lambda: call(
        urls[0], 'POST', '/api/v1/clusters/bench/rules', admin,
        {'name': 'prop-%d' % rnd, 'source': 'obj-1', 'destinations': [{'object': 'obj-2', 'ports': [7000 + rnd]}],
         'protocol': 'tcp', 'action': 'block', 'priority': 900}))
    await asyncio.wait(tasks, timeout=30)
    return [(o[0] - t0) * 1000 for o in out if o and o[1] == '200']


def propagation(admin, agents, rounds, urls):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, agents * 2 + 100)), hard))
    creds = [register(urls[0], admin, 'p-%d' % a) for a in range(agents)]
    lat = []
    for rnd in range(rounds):
        rev = call(urls[0], 'GET', '/api/v1/agents/policy', creds[0])['revision']
        got = asyncio.get_event_loop().run_until_complete(
            propagation_round(urls, admin, creds, rev, rnd))
        print('propagation_round_%d_answered=%d' % (rnd, len(got)))
        lat += got
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else -1
    print('propagation_agents=%d' % agents)
    print('propagation_answers=%d' % len(lat))
    print('propagation_p50_ms=%.1f' % q(0.50))
    print('propagation_p99_ms=%.1f' % q(0.99))
    print('propagation_max_ms=%.1f' % (lat[-1] if lat else -1))


def main():
    cmd = sys.argv[1]
    if cmd == 'setup':
        setup(sys.argv[2], sys.argv[3])
    elif cmd == 'events':
        events(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6:])
    elif cmd == 'propagation':
        propagation(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:])


if __name__ == '__main__':
    main()
