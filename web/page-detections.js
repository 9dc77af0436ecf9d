// page-detections: Detections — per cluster, what its detections are set to
// (read-only: they are cluster settings, changed with `moat apply` or the
// API), the sources in quarantine now (address, reason, since, until, the
// nodes whose kernels caught it) with a release for admins, and the
// cluster's threat list (how many prefixes, the text, replace or remove it;
// a list that does not parse shows its errors by line and stores nothing).

import * as api from './api.js';
import { badge, clearErrors, confirmDialog, fmtInt, fmtTime, h, replace, select, showErrors, table } from './dom.js';

const DETECTIONS = ['brute_force', 'port_scan', 'dns_hijack', 'spoofing', 'threat_intel'];

// One detection's setting as a short phrase: "block, 20 in 10 s on 22, 3389; quarantine 600 s".
function settingText(name, d) {
  if (!d || !d.enabled) return 'off';
  const parts = [d.action || 'alert'];
  if (d.threshold !== undefined) parts.push(`${d.threshold} in ${d.window ?? '?'} s`);
  if (Array.isArray(d.ports) && d.ports.length) parts.push(`on ${d.ports.join(', ')}`);
  if (Array.isArray(d.resolvers) && d.resolvers.length) parts.push(`resolvers ${d.resolvers.join(', ')}`);
  if (d.quarantine) parts.push(`quarantine ${d.quarantine} s`);
  return name === 'threat_intel' && !d.action ? 'on' : parts.join(', ');
}

export default function detectionsPage(ctx) {
  let cluster = ctx.query.cluster || '';
  let clusters = null;
  const filterBox = h('div.filters', { role: 'group', 'aria-label': 'Cluster' });
  const settings = h('section', { 'aria-labelledby': 'det-settings' });
  const quarantines = h('section', { 'aria-labelledby': 'det-quarantines' });
  const threats = h('section', { 'aria-labelledby': 'det-threats' });
  ctx.main.append(h('div.page-head', h('h1', 'Detections')),
    h('p.lead', 'Brute force and port scans put their source in quarantine on every node of the cluster; the threat list blocks or alerts on known-bad addresses in both directions.'),
    filterBox, settings, quarantines, threats);

  const base = () => `/clusters/${api.enc(cluster)}`;

  async function release(q) {
    if (!await confirmDialog(`Release ${q.address}?`, `New connections from ${q.address} reach the workloads of ${cluster} again, on every node.`, 'Release')) return;
    await ctx.act(() => api.del(`${base()}/quarantines/${api.enc(q.address)}`), `${q.address} released from quarantine.`);
  }

  function drawSettings(c) {
    const det = (c && c.detections) || {};
    replace(settings, h('h2', { id: 'det-settings' }, 'Settings'),
      table([
        { label: 'Detection', render: (n) => n.replace(/_/g, ' ') },
        { label: 'State', render: (n) => (det[n] && det[n].enabled ? badge(det[n].action || 'on') : badge('off')) },
        { label: 'Setting', render: (n) => settingText(n, det[n]) },
      ], DETECTIONS, { caption: `Detections of ${cluster}`, rowData: (n) => ({ detection: n }) }),
      h('p.hint', 'Set with ', h('code', 'moat apply'), ' (the cluster\'s ', h('code', 'detections'), ') or PATCH /api/v1/clusters/', cluster, '.'));
  }

  function drawQuarantines(items) {
    replace(quarantines, h('h2', { id: 'det-quarantines' }, 'In quarantine'),
      table([
        { label: 'Address', render: (q) => q.address },
        { label: 'Reason', render: (q) => badge(q.reason) },
        { label: 'Since (UTC)', render: (q) => fmtTime(q.since) },
        { label: 'Until (UTC)', render: (q) => fmtTime(q.until) },
        { label: 'Caught by', render: (q) => (q.nodes || []).join(', ') },
        ctx.canWrite ? { label: 'Actions', render: (q) => h('button.danger', { type: 'button', dataset: { key: `release:${q.address}` }, onclick: () => release(q) }, 'Release') } : null,
      ].filter(Boolean), items, { empty: 'No source is in quarantine.', caption: `${fmtInt(items.length)} source(s) in quarantine`, rowData: (q) => ({ address: q.address }) }));
  }

  function threatForm() {
    const text = h('textarea', { name: 'threat-list', rows: 6, spellcheck: 'false', placeholder: '203.0.113.0/24 botnet-c2\n2001:db8:bad::/48 scanner' });
    const file = h('input', { type: 'file', accept: '.txt,text/plain', 'aria-label': 'Read the list from a file' });
    file.addEventListener('change', async () => {
      if (file.files[0]) text.value = await file.files[0].text();
    });
    const form = h('form.form', {
      novalidate: true,
      'aria-label': 'Replace the threat list',
      onsubmit: async (ev) => {
        ev.preventDefault();
        clearErrors(form);
        try {
          const r = await api.putText(`${base()}/threat-intel`, text.value);
          ctx.toast(`Threat list of ${cluster}: ${fmtInt(r.prefixes)} prefixes, version ${r.version}.`);
          text.value = '';
          ctx.reread();
        } catch (e) {
          if (e.errors) showErrors(form, e.errors);
        }
      },
    },
    h('ul.form-errors', { tabindex: '-1' }),
    h('div.field', h('label', { for: 'det-threat-text' }, 'New list'), text, file,
      h('div.hint', 'One CIDR and a label per line, # for comments; it replaces the whole list.')),
    h('div.actions', h('button.primary', { type: 'submit' }, 'Replace the list')));
    text.id = 'det-threat-text';
    return form;
  }

  // Drawn again only when the cluster or the list's version changes, so that
  // the form keeps what the user is typing through live updates.
  let shownKey = null;
  function drawThreats(summary, text) {
    const has = Boolean(summary.version);
    const body = has
      ? h('details', h('summary', `${fmtInt(summary.prefixes)} prefix(es), version ${summary.version}, updated ${fmtTime(summary.updated)} UTC`),
        h('pre.threat-text', text ?? ''))
      : h('p.muted', 'This cluster has no threat list.');
    replace(threats, h('h2', { id: 'det-threats' }, 'Threat list'), h('div.threat-summary', { dataset: { prefixes: String(summary.prefixes) } }, body),
      ctx.canWrite && has ? h('div.row-actions', h('button.danger', {
        type: 'button',
        dataset: { key: 'threats:delete' },
        onclick: async () => {
          if (!await confirmDialog(`Remove the threat list of ${cluster}?`, 'Its addresses are no longer blocked or alerted on.', 'Remove')) return;
          await ctx.act(() => api.del(`${base()}/threat-intel`), `Threat list of ${cluster} removed.`);
        },
      }, 'Remove the list')) : null,
      ctx.canWrite ? threatForm() : null);
  }

  const page = {
    title: 'Detections',
    every: 5000, // ms: quarantines end by time, with no write
    topics: ['config', 'nodes'],
    async refresh() {
      const cl = await api.get('/clusters', { limit: 1000 });
      const names = cl.items.map((c) => c.name);
      if (!cluster || !names.includes(cluster)) cluster = names[0] || '';
      if (!clusters || names.join('\n') !== clusters.join('\n')) {
        clusters = names;
        replace(filterBox, h('div.filter', h('label', { for: 'df-cluster' }, 'Cluster'),
          select(clusters, cluster, { id: 'df-cluster', onchange: (ev) => { cluster = ev.target.value; ctx.setQuery({ cluster }); ctx.reread(); } })));
      }
      if (!cluster) {
        replace(settings, h('p.muted', 'No cluster yet.'));
        replace(quarantines);
        replace(threats);
        return;
      }
      const [items, summary] = await Promise.all([
        api.getAll(`${base()}/quarantines`),
        api.get(`${base()}/threat-intel/summary`),
      ]);
      // The text is read again only when its version moved (it can be 128 MiB).
      const key = `${cluster}\n${summary.version}`;
      if (key !== shownKey) {
        const text = summary.version ? await api.getText(`${base()}/threat-intel`, [404]) : null;
        shownKey = key;
        drawThreats(summary, text);
      }
      drawSettings(cl.items.find((c) => c.name === cluster));
      drawQuarantines(items);
    },
  };
  return page;
}
