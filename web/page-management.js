// page-management: Protection management — one row per cluster with its
// status (normal, or abnormal with the nodes and reasons), the defense switch
// (one cluster, or the selected ones at once), mode, default action, enabled
// and total rules, and alerts of the last 7 days; each links to the
// cluster's rule management (page-rules.js).

import * as api from './api.js';
import { badge, batchBar, clearErrors, confirmDialog, dialog, field, fmtInt, h, input, readOnly, replace, select, showErrors, table } from './dom.js';

const COUNTS_EVERY = 60000; // ms: rule and alert counts are read again at least this often

// The cell that says whether a cluster is protected, and if not, why.
export function statusCell(c) {
  if (c.status === 'normal') return h('span', badge('normal'), h('small', ` ${c.enforcing}/${c.nodes} nodes enforcing`));
  if (c.status === 'unknown') return h('span', badge('unknown'), h('small', ' no node has joined'));
  return h('div', badge('abnormal'), h('small', ` ${c.enforcing}/${c.nodes} nodes enforcing`),
    h('ul.reasons', (c.abnormal_nodes || []).map((n) => h('li', h('strong', n.name), `: ${n.state.replace(/_/g, ' ')}`, n.reason ? ` — ${n.reason}` : ''))));
}

// The defense switch of cluster `c`: a button with role=switch.
export function defenseSwitch(c, ctx, after) {
  const on = c.defense === 'on';
  return h('button.switch', {
    type: 'button',
    role: 'switch',
    'aria-checked': on ? 'true' : 'false',
    'aria-label': `Defense of cluster ${c.name}`,
    dataset: { key: `defense:${c.name}` },
    disabled: !ctx.canWrite,
    title: ctx.canWrite ? null : 'Needs the admin role',
    onclick: async (ev) => {
      const btn = ev.currentTarget;
      btn.disabled = true;
      try {
        await api.patch(`/clusters/${api.enc(c.name)}`, { defense: on ? 'off' : 'on' });
        ctx.toast(`Defense of ${c.name} is ${on ? 'off' : 'on'}.`);
      } catch {
        /* the banner says why */
      }
      btn.disabled = !ctx.canWrite;
      after();
    },
  }, h('span.knob', { 'aria-hidden': 'true' }), h('span.switch-text', on ? 'On' : 'Off'));
}

function clusterForm(ctx, c, done) {
  const isNew = !c;
  const name = input({ name: 'name', value: c?.name || '', required: true, disabled: !isNew });
  const mode = select([['protect', 'protect — enforce the rules'], ['monitor', 'monitor — alert on what would be blocked']], c?.mode || 'protect', { name: 'mode' });
  const def = select([['block', 'block'], ['alert', 'alert'], ['allow', 'allow']], c?.default_action || 'block', { name: 'default_action' });
  const defense = select([['off', 'off'], ['on', 'on']], c?.defense || 'off', { name: 'defense' });
  const descr = h('textarea', { name: 'description', rows: 2 }, c?.description || '');
  const form = h('form.form', {
    novalidate: true,
    onsubmit: async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      const body = { mode: mode.value, default_action: def.value, defense: defense.value };
      if (descr.value.trim() || c?.description) body.description = descr.value;
      try {
        if (isNew) await api.post('/clusters', { name: name.value.trim(), ...body });
        else await api.patch(`/clusters/${api.enc(c.name)}`, body);
        ctx.toast(isNew ? `Cluster ${name.value.trim()} created.` : `Cluster ${c.name} saved.`);
        done();
      } catch (e) {
        if (e.errors) showErrors(form, e.errors);
      }
    },
  },
  h('ul.form-errors', { tabindex: '-1' }),
  field('Name', name, { field: 'name', required: true, hint: isNew ? 'The cluster id agents join with: letters, digits, . _ -' : null }),
  field('Defense', defense, { field: 'defense' }),
  field('Mode', mode, { field: 'mode' }),
  field('Default action', def, { field: 'default_action', hint: 'What happens to traffic toward a workload that no rule matches.' }),
  field('Description', descr, { field: 'description' }),
  h('div.actions', h('button.primary', { type: 'submit' }, isNew ? 'Create cluster' : 'Save cluster'),
    h('button', { type: 'button', onclick: () => form.closest('dialog').close() }, ctx.canWrite ? 'Cancel' : 'Close')));
  return ctx.canWrite ? form : readOnly(form);
}

export default function managementPage(ctx) {
  const selected = new Set();
  const head = h('div.page-head', h('h1', 'Protection management'),
    ctx.canWrite ? h('button.primary', { type: 'button', onclick: () => edit(null) }, 'New cluster') : null);
  const batch = h('div.batch', { role: 'group', 'aria-label': 'Selected clusters' });
  const list = h('div');
  ctx.main.append(head, h('p.lead', 'Each cluster\'s defense switch, mode and default action, and whether every node enforces. Open a cluster for its rules.'), batch, list);

  function edit(c) {
    const d = dialog(c ? `Cluster ${c.name}` : 'New cluster', clusterForm(ctx, c, () => { d.close(); ctx.reread(); }));
  }

  async function remove(c) {
    if (!await confirmDialog(`Delete cluster ${c.name}?`, `Its rules go with it. Agents of ${c.name} lose their credentials.`)) return;
    await ctx.act(() => api.del(`/clusters/${api.enc(c.name)}`), `Cluster ${c.name} deleted.`);
  }

  const switchSelected = (defense) => {
    const names = [...selected];
    return ctx.act(async () => {
      await api.post('/clusters/batch', { defense, clusters: names });
      selected.clear();
    }, `Defense ${defense} for ${names.length} cluster(s).`);
  };
  const drawBatch = () => batchBar(batch, ctx.canWrite, selected, [
    ['on', 'Defense on', () => switchSelected('on')],
    ['off', 'Defense off', () => switchSelected('off')]]);

  // Per cluster: rules enabled and in all, alerts of the last 7 days. Read
  // again when rules or alerts moved, or after COUNTS_EVERY; the clusters
  // (switches, health) are read every time.
  const counts = new Map();
  let countsAt = 0;
  async function readCounts(c) {
    const path = `/clusters/${api.enc(c.name)}/rules`;
    const since = new Date(Date.now() - 7 * 86400000).toISOString().replace(/\.\d+Z$/, 'Z');
    const [all, enabled, alerts] = await Promise.all([
      api.get(path, { limit: 1 }), api.get(path, { enabled: 'true', limit: 1 }),
      api.get('/alerts', { cluster: c.name, since, limit: 1 })]);
    counts.set(c.name, { total: all.total, enabled: enabled.total, alerts7: alerts.total });
  }

  const page = {
    title: 'Protection management',
    every: 5000, // ms: states derived from the time of the last heartbeat
    topics: ['config', 'alerts', 'nodes', 'heartbeats'],
    async refresh(whys) {
      const cl = await api.get('/clusters', { limit: 1000 });
      const stale = !whys || whys.has('config') || whys.has('alerts') || Date.now() - countsAt > COUNTS_EVERY;
      if (stale || cl.items.some((c) => !counts.has(c.name))) {
        await Promise.all(cl.items.map(readCounts));
        countsAt = Date.now();
      }
      const rows = cl.items.map((c) => ({ ...c, rules: counts.get(c.name), alerts7: counts.get(c.name).alerts7 }));
      for (const k of [...selected]) if (!rows.some((r) => r.name === k)) selected.delete(k);
      replace(list, table([
        { label: 'Cluster', render: (c) => h('a', { href: `/management/${encodeURIComponent(c.name)}` }, c.name) },
        { label: 'Status', render: statusCell },
        { label: 'Defense', render: (c) => defenseSwitch(c, ctx, ctx.reread) },
        { label: 'Mode', render: (c) => badge(c.mode) },
        { label: 'Default action', render: (c) => badge(c.default_action) },
        { label: 'Rules enabled / total', class: 'num', render: (c) => `${fmtInt(c.rules.enabled)} / ${fmtInt(c.rules.total)}` },
        { label: 'Alerts, 7 days', class: 'num', render: (c) => h('a', { href: `/alerts?cluster=${encodeURIComponent(c.name)}&window=7d` }, fmtInt(c.alerts7)) },
        { label: 'Actions', render: (c) => h('div.row-actions',
          h('a.button', { href: `/management/${encodeURIComponent(c.name)}` }, 'Rules'),
          h('button', { type: 'button', dataset: { key: `edit:${c.name}` }, onclick: () => edit(c) }, ctx.canWrite ? 'Settings' : 'View'),
          ctx.canWrite ? h('button.danger', { type: 'button', dataset: { key: `del:${c.name}` }, onclick: () => remove(c) }, 'Delete') : null) },
      ], rows, {
        empty: 'No cluster yet.',
        rowData: (c) => ({ cluster: c.name }),
        select: ctx.canWrite ? { set: selected, key: (c) => c.name, label: (c) => `cluster ${c.name}`, changed: (all) => { drawBatch(); if (all) ctx.reread(); } } : null,
      }));
      drawBatch();
    },
  };
  return page;
}
