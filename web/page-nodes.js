// page-nodes: Nodes — per node its OS, kernel, whether the kernel-support
// table certifies it (and why not), the datapath state and its reason
// (enforcing, unsupported, not installed, outdated, offline), the detections
// its backend runs (and why an enabled one does not), the agent
// version, the last heartbeat, and its workloads (shown on demand).

import * as api from './api.js';
import { ago, badge, fmtTime, h, replace, select, table } from './dom.js';

// Why the backends that do not run here cannot: the agent's probes ({"ebpf": "missing ...", ...}).
function backendWhy(n) {
  const probes = (n.datapath && n.datapath.probes) || {};
  return Object.keys(probes).filter((k) => probes[k]).map((k) => `${k}: missing ${probes[k]}`).join('; ');
}

// The detections the node's datapath runs for its cluster, and why an enabled one does not
// (or runs with a difference): datapath.detections and datapath.detection_gaps.
function detections(n) {
  const dp = n.datapath || {};
  if (!dp.detections) return '';
  const gaps = dp.detection_gaps || {};
  const why = Object.keys(gaps).map((k) => `${k}: ${gaps[k]}`).join('; ');
  return h('span', dp.detections.length ? dp.detections.join(', ') : 'none', why ? h('small.why', why) : null);
}

export default function nodesPage(ctx) {
  const q = ctx.query;
  let cluster = q.cluster || '';
  let clusters = null;
  const open = new Set(); // nodes whose workloads are shown, by "cluster/name"
  const workloads = new Map();
  const filterBox = h('div.filters', { role: 'group', 'aria-label': 'Node filters' });
  const list = h('div');
  ctx.main.append(h('div.page-head', h('h1', 'Nodes')),
    h('p.lead', 'Rules take effect only on nodes whose datapath is enforcing. A node is offline after three missed heartbeats.'),
    filterBox, list);

  let nodes = [];
  function draw() {
    const now = Date.now();
    const rows = [];
    for (const n of nodes) {
      const key = `${n.cluster}/${n.name}`;
      rows.push(n);
      if (open.has(key)) rows.push({ sub: true, key, n });
    }
    replace(list, table([
      { label: 'Node', render: (n) => (n.sub ? '' : n.name) },
      { label: 'Cluster', render: (n) => (n.sub ? '' : n.cluster) },
      { label: 'OS', render: (n) => (n.sub ? workloadList(n) : n.os || '') },
      { label: 'Kernel', render: (n) => (n.sub ? '' : n.kernel || '') },
      { label: 'Certified', render: (n) => (n.sub ? '' : n.certified ? 'yes' : h('span', 'no', n.compat_why ? h('small.why', n.compat_why) : null)) },
      { label: 'Datapath', render: (n) => (n.sub ? '' : h('span', badge(n.state), n.reason ? h('small.why', n.reason) : null)) },
      { label: 'Backend', render: (n) => (n.sub ? '' : h('span', (n.datapath && n.datapath.backend) || '', backendWhy(n) ? h('small.why', backendWhy(n)) : null)) },
      { label: 'Detections', render: (n) => (n.sub ? '' : detections(n)) },
      { label: 'Agent', render: (n) => (n.sub ? '' : n.agent_version || '') },
      { label: 'Last heartbeat (UTC)', render: (n) => (n.sub ? '' : h('span', fmtTime(n.last_heartbeat), h('small.why', ago(n.last_heartbeat, now)))) },
      { label: 'Workloads', class: 'num', render: (n) => (n.sub ? '' : h('button', {
        type: 'button',
        'aria-expanded': open.has(`${n.cluster}/${n.name}`) ? 'true' : 'false',
        dataset: { key: `wl:${n.cluster}/${n.name}` },
        onclick: () => toggle(n),
      }, `${open.has(`${n.cluster}/${n.name}`) ? 'Hide' : 'Show'} (${n.workload_count ?? 0})`)) },
    ], rows, { empty: 'No node has joined yet. Agents join with moatd --server URL --cluster ID --join-token T --node NAME.', caption: `${nodes.length} node(s)`, rowData: (n) => (n.sub ? { workloadsOf: n.key } : { node: n.name }) }));
    // A workload list spans the row it is in.
    for (const tr of list.querySelectorAll('tr[data-workloads-of]')) {
      const cells = [...tr.children];
      cells.forEach((td, i) => { if (i !== 2) td.remove(); });
      tr.firstElementChild.colSpan = 10;
    }
  }

  function workloadList(row) {
    const items = workloads.get(row.key);
    if (!items) return h('p.muted', 'Reading…');
    return table([
      { label: 'Workload', render: (w) => `${w.namespace}/${w.name}` },
      { label: 'App', render: (w) => (w.labels && w.labels.app) || '' },
      { label: 'Image', render: (w) => w.image || '' },
      { label: 'Addresses', render: (w) => (w.ips || []).join(', ') },
      { label: 'Interface', render: (w) => w.interface || '' },
    ], items, { empty: 'This node reports no workload.', caption: `Workloads of ${row.n.name}` });
  }

  async function readWorkloads(n) {
    workloads.set(`${n.cluster}/${n.name}`, await api.getAll('/workloads', { cluster: n.cluster, node: n.name }));
  }

  async function toggle(n) {
    const key = `${n.cluster}/${n.name}`;
    if (open.has(key)) {
      open.delete(key);
      draw();
      return;
    }
    open.add(key);
    draw();
    await readWorkloads(n);
    draw();
  }

  const page = {
    title: 'Nodes',
    every: 5000, // ms: states derived from the time of the last heartbeat
    topics: ['nodes', 'heartbeats', 'config'],
    async refresh() {
      const [cl, ns] = await Promise.all([api.get('/clusters', { limit: 1000 }), api.getAll('/nodes', { cluster })]);
      const names = cl.items.map((c) => c.name);
      if (!clusters || names.join('\n') !== clusters.join('\n')) {
        clusters = names;
        replace(filterBox, h('div.filter', h('label', { for: 'nf-cluster' }, 'Cluster'),
          select([['', 'All'], ...clusters], cluster, { id: 'nf-cluster', onchange: (ev) => { cluster = ev.target.value; ctx.setQuery({ cluster }); ctx.reread(); } })));
      }
      nodes = ns;
      await Promise.all(ns.filter((n) => open.has(`${n.cluster}/${n.name}`)).map(readWorkloads));
      draw();
    },
  };
  return page;
}
