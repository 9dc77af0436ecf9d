#!/usr/bin/python3
"""Checks of two moat-server replicas on one PostgreSQL database (tests/pg/run.sh).

Usage: replicas.py CHECK URL_A URL_B ADMIN_TOKEN [ARGS...]; prints one JSON
object (what was seen) and exits 0 when the check holds, 1 when it does not.
Every wait is bounded; nothing is timed but the propagation bound of SPEC §9.
"""
import json
import sys
import threading
import time
import urllib.error
import urllib.request


def call(base, method, path, token, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header('Authorization', 'Bearer ' + token)
    if data is not None:
        req.add_header('Content-Type', 'application/json')
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text) if text else None
        except ValueError:
            return e.code, None


def register(base, admin, cluster, node):
    st, jt = call(base, 'POST', '/api/v1/clusters/%s/join-tokens' % cluster, admin, {'uses': 1})
    assert st == 201, (st, jt)
    st, reg = call(base, 'POST', '/api/v1/agents/register', '',
                   {'cluster': cluster, 'node': node, 'join_token': jt['join_token']})
    assert st == 201, (st, reg)
    return reg['token']


def check_wake(a, b, admin, cluster, settle=0):
    """A long-poll held by B is answered within 1 s of a rule change written through A.
    settle > 0: first wait (up to that many seconds) until B's notices flow again (after the
    database restarted: B's listening connection is made anew with a back-off)."""
    tag = str(int(time.time() * 1000) % 100000)
    agent = register(a, admin, cluster, 'poller-' + tag)
    deadline = time.monotonic() + settle
    while settle:
        st, pol = call(b, 'GET', '/api/v1/agents/policy', agent)
        call(a, 'POST', '/api/v1/clusters/%s/rules' % cluster, admin,
             {'name': 'settle-%s-%d' % (tag, int(time.monotonic() * 1000)), 'source': 'any',
              'destinations': [{'object': 'any', 'ports': [3000]}], 'action': 'alert', 'priority': 500})
        st, got = call(b, 'GET', '/api/v1/agents/policy?revision=%d&wait=1' % pol['revision'], agent)
        if st == 200 or time.monotonic() > deadline:
            break
    st, pol = call(b, 'GET', '/api/v1/agents/policy', agent)
    assert st == 200, (st, pol)
    rounds, worst, seen = 5, 0.0, []
    for i in range(rounds):
        rev = pol['revision']
        got = {}

        def poll():
            got['answer'] = call(b, 'GET', '/api/v1/agents/policy?revision=%d&wait=20' % rev, agent)
            got['at'] = time.monotonic()
        t = threading.Thread(target=poll)
        t.start()
        time.sleep(0.3)  # the poll is suspended on B by then (a late one answers at once: still ok)
        wrote = time.monotonic()
        st, _ = call(a, 'POST', '/api/v1/clusters/%s/rules' % cluster, admin,
                     {'name': 'wake-%s-%d' % (tag, i), 'source': 'any', 'destinations': [{'object': 'any', 'ports': [1000 + i]}],
                      'action': 'block', 'priority': 10 + i})
        assert st == 201, st
        t.join(25)
        st, pol = got.get('answer', (0, None))
        took = got.get('at', wrote + 99) - wrote
        worst = max(worst, took)
        names = [r.get('name') for r in (pol or {}).get('rules', [])]
        seen.append({'status': st, 'took': round(took, 3), 'has_rule': 'wake-%s-%d' % (tag, i) in names})
    # Woken by the notice, well before the 20 s wait ends; how soon is measured by
    # make bench (bench/replicas.py), not asserted on a loaded test machine.
    ok = all(s['status'] == 200 and s['has_rule'] and s['took'] < 5.0 for s in seen)
    return ok, {'rounds': seen, 'worst_s': round(worst, 3)}


def check_unique(a, b, admin, rounds):
    """Creates of one name through A and B at once: exactly one wins each time."""
    results = []
    for i in range(rounds):
        out = {}
        barrier = threading.Barrier(2)

        def create(base, key):
            barrier.wait()
            out[key] = call(base, 'POST', '/api/v1/objects', admin,
                            {'name': 'same-%d' % i, 'namespace': 'race', 'app': key})[0]
        ts = [threading.Thread(target=create, args=(a, 'a')), threading.Thread(target=create, args=(b, 'b'))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        results.append(sorted([out.get('a'), out.get('b')], key=str))
    ok = all(r == [201, 409] for r in results)
    st, lst = call(b, 'GET', '/api/v1/objects?namespace=race&limit=1000', admin)
    ok = ok and st == 200 and lst['total'] == rounds
    return ok, {'rounds': rounds, 'outcomes': {str(k): results.count(k) for k in map(list, {tuple(r) for r in results})},
                'stored': lst.get('total') if lst else None}


def check_revision(a, b, admin, cluster, per_side):
    """Rule writes through A and B at once: the cluster's revision moves once per write."""
    agent = register(a, admin, cluster, 'counter')
    st, pol = call(b, 'GET', '/api/v1/agents/policy', agent)
    start = pol['revision']
    codes = []

    def writer(base, side):
        for i in range(per_side):
            codes.append(call(base, 'POST', '/api/v1/clusters/%s/rules' % cluster, admin,
                              {'name': 'rev-%s-%d' % (side, i), 'source': 'any',
                               'destinations': [{'object': 'any', 'ports': [2000 + i]}],
                               'action': 'alert', 'priority': 100})[0])
    ts = [threading.Thread(target=writer, args=(a, 'a')), threading.Thread(target=writer, args=(b, 'b'))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    created = codes.count(201)
    revs = {}
    for name, base in (('a', a), ('b', b)):
        st, pol = call(base, 'GET', '/api/v1/agents/policy', agent)
        revs[name] = pol['revision'] if st == 200 else None
    ok = created == 2 * per_side and revs['a'] == revs['b'] == start + created
    return ok, {'start': start, 'created': created, 'codes': sorted(set(codes)), 'revisions': revs}


def check_crash(a, b, admin, cluster, pid_a, batches):
    """kill -9 of A while 4 clients write through it and 2 agents send event batches: every
    acknowledged write is there, every batch counted once after the agents moved to B."""
    import os
    import signal
    agents = [register(a, admin, cluster, 'crash-%d' % i) for i in range(2)]
    acked, lock, stop = [], threading.Lock(), threading.Event()
    after_kill = []

    def client(k):
        i, base = 0, a
        while not stop.is_set() and i < 400:
            name = 'crash-%d-%d' % (k, i)
            try:
                st, o = call(base, 'POST', '/api/v1/objects', admin, {'name': name, 'namespace': 'crash'}, timeout=10)
            except OSError:
                if base == a:  # A is gone: this name may or may not be there; go on through B
                    base = b
                    i += 1
                    continue
                raise
            if st == 201:
                with lock:
                    acked.append((name, o['id']))
                    if base == b:
                        after_kill.append(name)
            i += 1

    counted = [0, 0]

    def agent(k):
        base = a
        for n in range(batches):
            ev = {'kind': 'port_scan', 'applied_action': 'alert', 'attempts': 1,
                  'source': {'address': '198.51.100.%d' % (10 + k)}, 'destination': {'address': '10.1.0.1', 'port': 22}}
            for _ in range(50):  # the same batch until a server takes it
                try:
                    st, r = call(base, 'POST', '/api/v1/agents/events', agents[k], {'batch': 'b%d' % n, 'events': [ev]}, timeout=10)
                    if st == 200:
                        counted[k] += 1
                        break
                except OSError:
                    base = b
            time.sleep(0.01)

    ts = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    ts += [threading.Thread(target=agent, args=(k,)) for k in range(2)]
    for t in ts:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 100 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(pid_a, signal.SIGKILL)
    killed_at = len(acked)
    deadline = time.monotonic() + 60
    while len(after_kill) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for t in ts:
        t.join(120)
    st, lst = call(b, 'GET', '/api/v1/objects?namespace=crash&limit=1000', admin)
    stored = {o['name']: o['id'] for o in lst['items']}
    missing = [n for n, i in acked if stored.get(n) != i]
    st, al = call(b, 'GET', '/api/v1/alerts?cluster=%s&kind=port_scan&limit=1000' % cluster, admin)
    per_node = {}
    for x in al['items']:
        per_node[x['node']] = per_node.get(x['node'], 0) + x.get('attempts', 0)
    want = {'crash-0': batches, 'crash-1': batches}
    ok = not missing and per_node == want and counted == [batches, batches] and len(after_kill) >= 40
    return ok, {'acked': len(acked), 'acked_before_kill': killed_at, 'acked_through_b': len(after_kill),
                'missing': missing[:10], 'attempts_per_node': per_node, 'want': want, 'answered': counted}


def raw_policy(base, token, after):
    """The full policy answer's bytes once the replica's revision is above `after` (bounded)."""
    req = urllib.request.Request(base + '/api/v1/agents/policy?revision=%d&wait=10' % after)
    req.add_header('Authorization', 'Bearer ' + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def check_policy(a, b, admin, cluster, steps):
    """Random writes through A and B by turns (objects, rules, workloads reported to either,
    cluster settings, quarantines, node removal): after each, both replicas' full policy
    answers, each built from its own last one (server/polbuild.c), are the same bytes at the
    same revision. A write one replica's incremental build missed would differ."""
    import random
    rnd = random.Random(11)
    st, _ = call(a, 'POST', '/api/v1/clusters', admin, {'name': cluster, 'defense': 'on'})
    assert st == 201, st
    st, _ = call(a, 'PATCH', '/api/v1/clusters/' + cluster, admin,  # reported quarantines spread
                 {'detections': {'port_scan': {'action': 'block', 'quarantine': 14400}}})
    assert st == 200, st
    sides = {'a': a, 'b': b}
    nodes = {}

    def join(name):
        nodes[name] = {'token': register(sides[rnd.choice('ab')], admin, cluster, name), 'wl': {}}
    for n in ('pa-1', 'pa-2'):
        join(n)
    objs, rules, counter = [], [], [0]

    def fresh(p):
        counter[0] += 1
        return '%s%d' % (p, counter[0])
    st, text = raw_policy(a, nodes['pa-1']['token'], 0)
    prev = json.loads(text)['revision']
    bad, kinds = [], set()
    for i in range(steps):
        base = a if i % 2 == 0 else b
        what = rnd.choice(['object+', 'object~', 'rule+', 'rule~', 'rule-', 'wl+', 'wl+', 'wl~',
                           'wl-', 'cluster', 'quarantine', 'node-'])
        if what in ('object~', 'rule+') and not objs:
            what = 'object+'
        if what in ('rule~', 'rule-') and not rules:
            what = 'wl+'
        kinds.add(what)
        if what == 'object+':
            st, o = call(base, 'POST', '/api/v1/objects', admin,
                         {'name': fresh('po'), 'namespace': 'ns', 'app': fresh('a'), 'cluster': cluster})
            objs.append(o['id'])
        elif what == 'object~':
            st, _ = call(base, 'PATCH', '/api/v1/objects/%d' % rnd.choice(objs), admin, {'app': fresh('a')})
        elif what == 'rule+':
            st, o = call(base, 'GET', '/api/v1/objects/%d' % rnd.choice(objs), admin)
            st, r = call(base, 'POST', '/api/v1/clusters/%s/rules' % cluster, admin,
                         {'name': fresh('pr'), 'source': 'any', 'action': 'block', 'priority': rnd.randint(1, 900),
                          'destinations': [{'object': o['name'], 'ports': [rnd.randint(1, 9000)]}]})
            rules.append(r['id'])
        elif what == 'rule~':
            st, _ = call(base, 'PATCH', '/api/v1/clusters/%s/rules/%d' % (cluster, rnd.choice(rules)), admin,
                         {'priority': rnd.randint(1, 900)})
        elif what == 'rule-':
            rid = rnd.choice(rules)
            st, _ = call(base, 'DELETE', '/api/v1/clusters/%s/rules/%d' % (cluster, rid), admin)
            rules.remove(rid)
        elif what.startswith('wl'):
            n = nodes[rnd.choice(sorted(nodes))]
            if what == 'wl+' or not n['wl']:
                w = fresh('pw')
                n['wl'][w] = {'name': w, 'namespace': 'ns', 'labels': {'app': fresh('a')},
                              'ips': ['10.77.%d.%d' % (rnd.randint(0, 255), rnd.randint(1, 254))]}
            elif what == 'wl~':
                w = rnd.choice(sorted(n['wl']))
                n['wl'][w] = dict(n['wl'][w], labels={'app': fresh('a')})
            else:
                del n['wl'][rnd.choice(sorted(n['wl']))]
            st, _ = call(base, 'PUT', '/api/v1/agents/workloads', n['token'], {'workloads': list(n['wl'].values())})
        elif what == 'cluster':
            st, _ = call(base, 'PATCH', '/api/v1/clusters/' + cluster, admin, {'description': fresh('d')})
        elif what == 'quarantine':
            n = nodes[rnd.choice(sorted(nodes))]
            counter[0] += 1  # a new address each time: the report changes something
            st, _ = call(base, 'PUT', '/api/v1/agents/quarantines', n['token'],
                         {'quarantines': [{'address': '10.66.%d.%d' % (counter[0] % 60000 // 250,
                                                                  counter[0] % 250 + 1),
                                           'reason': 'port_scan',
                                           'since': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
                                           'until': '2099-01-01T00:00:00Z'}]})
        elif what == 'node-':
            name = rnd.choice(sorted(nodes))
            st, lst = call(base, 'GET', '/api/v1/nodes?cluster=%s&limit=1000' % cluster, admin)
            nid = [x['id'] for x in lst['items'] if x['name'] == name][0]
            st, _ = call(base, 'DELETE', '/api/v1/nodes/%d' % nid, admin)
            del nodes[name]
            join(fresh('pa-'))
        if st not in (200, 201, 204):
            bad.append('step %d %s: status %s' % (i, what, st))
            break
        tok = nodes[sorted(nodes)[0]]['token']
        sa, ta = raw_policy(a, tok, prev)
        sb, tb = raw_policy(b, tok, prev)
        if sa != 200 or sb != 200 or ta != tb:
            at = next((k for k in range(min(len(ta), len(tb))) if ta[k] != tb[k]), min(len(ta), len(tb)))
            bad.append('step %d %s: A %s (%d B), B %s (%d B), first difference at byte %d' % (
                i, what, sa, len(ta), sb, len(tb), at))
            break
        prev = json.loads(ta)['revision']
    return not bad, {'steps': steps, 'kinds': sorted(kinds), 'revision': prev, 'bad': bad[:3]}


def main():
    check, a, b, admin = sys.argv[1:5]
    rest = sys.argv[5:]
    if check == 'wake':
        ok, seen = check_wake(a, b, admin, rest[0], int(rest[1]) if len(rest) > 1 else 0)
    elif check == 'unique':
        ok, seen = check_unique(a, b, admin, int(rest[0]))
    elif check == 'revision':
        ok, seen = check_revision(a, b, admin, rest[0], int(rest[1]))
    elif check == 'policy':
        ok, seen = check_policy(a, b, admin, rest[0], int(rest[1]))
    elif check == 'crash':
        ok, seen = check_crash(a, b, admin, rest[0], int(rest[1]), int(rest[2]))
    else:
        raise SystemExit('unknown check ' + check)
    print(json.dumps(seen))
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
