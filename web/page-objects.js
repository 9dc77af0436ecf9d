// page-objects: Network objects — the list with the API's filters, create
// and edit (namespace, app, images, labels; or CIDRs for an IP block), a
// preview of the workloads the object in the form selects now (POST
// /objects/preview, as the form is typed), delete and batch delete (the API
// refuses an object that rules use, naming them).

import * as api from './api.js';
import { batchBar, clearErrors, confirmDialog, dialog, field, h, input, readOnly, replace, select, showErrors, table } from './dom.js';

const FILTERS = [['name', 'Name', 'exact name'], ['namespace', 'Namespace', 'exact pattern'], ['app', 'App', 'exact pattern'],
  ['image', 'Image', 'an image reference'], ['label', 'Label', 'key=value']];

function lines(text) {
  return text.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
}

// A CIDR line: "203.0.113.0/24" or "10.0.0.0/8 except 10.1.0.0/16 10.2.0.0/16".
function parseCidrs(text) {
  return text.split('\n').map((s) => s.trim()).filter(Boolean).map((line) => {
    const m = line.match(/^(\S+)\s+except\s+(.+)$/i);
    return m ? { cidr: m[1], except: m[2].split(/[\s,]+/).filter(Boolean) } : line;
  });
}

function cidrText(c) {
  return typeof c === 'string' ? c : `${c.cidr} except ${(c.except || []).join(' ')}`;
}

function workloadTable(items) {
  return table([
    { label: 'Cluster', render: (w) => w.cluster },
    { label: 'Node', render: (w) => w.node },
    { label: 'Workload', render: (w) => `${w.namespace}/${w.name}` },
    { label: 'App', render: (w) => (w.labels && w.labels.app) || '' },
    { label: 'Image', render: (w) => w.image || '' },
    { label: 'Addresses', render: (w) => (w.ips || []).join(', ') },
  ], items, { empty: 'It selects no workload now.' });
}

function objectForm(ctx, clusters, obj, done) {
  const isBlock = Boolean(obj && obj.cidrs);
  const name = input({ name: 'name', value: obj?.name || '' });
  const descr = h('textarea', { name: 'description', rows: 2 }, obj?.description || '');
  const cluster = select([['', 'every cluster'], ...clusters], obj?.cluster || '', { name: 'cluster' });
  const kindSel = select([['selector', 'workloads (namespace, app, images, labels)'], ['ipblock', 'IP block (CIDRs outside the cluster)']], isBlock ? 'ipblock' : 'selector', { name: 'kind' });
  const namespace = input({ name: 'namespace', value: obj?.namespace || '', placeholder: 'shop, or team-*' });
  const app = input({ name: 'app', value: obj?.app || '', placeholder: 'web*' });
  const images = h('textarea', { name: 'images', rows: 2, placeholder: 'nginx:*' }, (obj?.images || []).join('\n'));
  const labels = h('textarea', { name: 'labels', rows: 2, placeholder: 'tier=frontend' }, (obj?.labels || []).join('\n'));
  const cidrs = h('textarea', { name: 'cidrs', rows: 3, placeholder: '203.0.113.0/24\n10.0.0.0/8 except 10.1.0.0/16' }, (obj?.cidrs || []).map(cidrText).join('\n'));
  const selectorPart = h('div.part',
    h('div.grid2', field('Namespace', namespace, { field: 'namespace', required: true, hint: '* matches any run of characters.' }),
      field('App', app, { field: 'app', hint: 'Pattern on the workload label app.' })),
    h('div.grid2', field('Images', images, { field: 'images', hint: 'One pattern a line; any may match.' }),
      field('Labels', labels, { field: 'labels', hint: 'key=value, one a line; all must match.' })));
  const blockPart = h('div.part', field('CIDRs', cidrs, { field: 'cidrs', hint: 'One prefix a line, optionally followed by "except" and prefixes inside it.' }));
  const preview = h('div.preview', { 'aria-live': 'polite' });

  const body = () => {
    const b = { name: name.value.trim() };
    if (descr.value.trim()) b.description = descr.value;
    if (cluster.value) b.cluster = cluster.value;
    if (kindSel.value === 'ipblock') {
      b.cidrs = parseCidrs(cidrs.value);
    } else {
      b.namespace = namespace.value.trim();
      if (app.value.trim()) b.app = app.value.trim();
      if (lines(images.value).length) b.images = lines(images.value);
      if (lines(labels.value).length) b.labels = lines(labels.value);
    }
    return b;
  };

  let timer = null;
  let seq = 0;
  async function showPreview() {
    const mine = ++seq;
    const b = body();
    if (!b.name) delete b.name;
    try {
      const r = await api.post('/objects/preview', b, { ...(obj ? { id: obj.id } : {}), limit: 50 }, { quiet: true });
      if (mine !== seq) return;
      if (!r.valid) {
        replace(preview, h('h3', 'Workloads it selects now'),
          h('p.muted', 'Not yet a valid object:'), h('ul.preview-errors', r.errors.map((x) => h('li', x.field ? `${x.field}: ${x.message}` : x.message))));
        return;
      }
      replace(preview, h('h3', 'Workloads it selects now'),
        r.kind === 'ipblock' ? h('p', 'An IP block matches addresses outside the cluster, never a workload.') : null,
        r.kind !== 'ipblock' ? h('p.muted', `${r.total} workload(s)${r.total > r.items.length ? `, the first ${r.items.length} shown` : ''}.`) : null,
        r.kind !== 'ipblock' ? workloadTable(r.items) : null);
    } catch (e) {
      if (mine !== seq) return;
      replace(preview, h('h3', 'Workloads it selects now'), h('p.error', `No preview: ${e.message}`));
    }
  }
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(showPreview, 350);
  };

  const showKind = () => {
    selectorPart.hidden = kindSel.value !== 'selector';
    blockPart.hidden = kindSel.value !== 'ipblock';
  };
  kindSel.addEventListener('change', () => { showKind(); later(); });
  showKind();

  const form = h('form.form', {
    novalidate: true,
    oninput: later,
    onsubmit: async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      try {
        const saved = obj ? await api.put(`/objects/${obj.id}`, body()) : await api.post('/objects', body());
        ctx.toast(obj ? `Object ${saved.name} saved.` : `Object ${saved.name} created (#${saved.id}).`);
        done();
      } catch (e) {
        if (e.errors) showErrors(form, e.errors);
      }
    },
  },
  h('ul.form-errors', { tabindex: '-1' }),
  h('div.grid2', field('Name', name, { field: 'name', required: true, hint: '1-64 of A-Z a-z 0-9 . _ -' }), field('Cluster', cluster, { field: 'cluster', hint: 'Restrict the object to one cluster.' })),
  field('Selects', kindSel, {}),
  selectorPart, blockPart,
  field('Description', descr, { field: 'description' }),
  h('div.actions', h('button.primary', { type: 'submit' }, obj ? 'Save object' : 'Create object'),
    h('button', { type: 'button', onclick: () => form.closest('dialog').close() }, ctx.canWrite ? 'Cancel' : 'Close')),
  preview);
  showPreview();
  return ctx.canWrite ? form : readOnly(form);
}

export default function objectsPage(ctx) {
  const q = ctx.query;
  let filters = Object.fromEntries(['cluster', ...FILTERS.map((f) => f[0])].map((k) => [k, q[k] || '']));
  const selected = new Set();
  let clusters = [];
  const filterBox = h('div.filters', { role: 'group', 'aria-label': 'Object filters' });
  const batch = h('div.batch', { role: 'group', 'aria-label': 'Selected objects' });
  const list = h('div');
  ctx.main.append(
    h('div.page-head', h('h1', 'Network objects'),
      ctx.canWrite ? h('button.primary', { type: 'button', onclick: () => edit(null) }, 'New object') : null),
    h('p.lead', 'Objects pick workloads (namespace, app, images, labels) or outside addresses (CIDRs) for rules. The built-in objects any, host and cluster-dns are always there.'),
    filterBox, batch, list);

  const drawFilters = () => replace(filterBox,
    FILTERS.map(([k, label, ph]) => h('div.filter', h('label', { for: `of-${k}` }, label),
      input({ id: `of-${k}`, type: 'search', value: filters[k], placeholder: ph, onchange: (ev) => { filters = { ...filters, [k]: ev.target.value.trim() }; ctx.setQuery(filters); ctx.reread(); } }))),
    h('div.filter', h('label', { for: 'of-cluster' }, 'Cluster'),
      select([['', 'All'], ...clusters], filters.cluster, { id: 'of-cluster', onchange: (ev) => { filters = { ...filters, cluster: ev.target.value }; ctx.setQuery(filters); ctx.reread(); } })));

  function edit(obj) {
    const d = dialog(obj ? `Object ${obj.name} (#${obj.id})` : 'New network object', objectForm(ctx, clusters, obj, () => { d.close(); ctx.reread(); }));
  }

  function refused(e) {
    dialog('Not deleted', h('p', e.status === 409 ? 'Rules still use these objects; change or delete the rules first:' : e.message),
      e.status === 409 ? h('ul', e.errors.map((x) => h('li', x.message))) : null,
      h('div.actions', h('button', { type: 'button', autofocus: true, onclick: (ev) => ev.target.closest('dialog').close() }, 'Close')));
  }

  async function remove(obj) {
    if (!await confirmDialog(`Delete object ${obj.name}?`, `Object #${obj.id} will be deleted.`)) return;
    try {
      await api.del(`/objects/${obj.id}`, { quiet: true });
      ctx.toast(`Object ${obj.name} deleted.`);
    } catch (e) {
      if (e.status === 403) ctx.banner(`Not allowed (403): ${e.message}`);
      else refused(e);
    }
    ctx.reread();
  }

  async function removeSelected() {
    const ids = [...selected];
    if (!await confirmDialog(`Delete ${ids.length} object(s)?`, 'All of them are deleted, or none when a rule uses one.')) return;
    try {
      await api.post('/objects/batch', { action: 'delete', ids }, undefined, { quiet: true });
      ctx.toast(`${ids.length} object(s) deleted.`);
      selected.clear();
    } catch (e) {
      if (e.status === 403) ctx.banner(`Not allowed (403): ${e.message}`);
      else refused(e);
    }
    ctx.reread();
  }

  const drawBatch = () => batchBar(batch, ctx.canWrite, selected, [['delete', 'Delete selected', removeSelected, 'danger']]);

  let filtersDrawn = '';
  const page = {
    title: 'Network objects',
    topics: ['config'],
    async refresh() {
      const [cl, objs] = await Promise.all([api.get('/clusters', { limit: 1000 }), api.getAll('/objects', filters)]);
      clusters = cl.items.map((c) => c.name);
      if (filtersDrawn !== clusters.join('\n')) {
        filtersDrawn = clusters.join('\n');
        drawFilters();
      }
      for (const k of [...selected]) if (!objs.some((o) => o.id === k)) selected.delete(k);
      replace(list, table([
        { label: 'ID', class: 'num', render: (o) => String(o.id) },
        { label: 'Name', render: (o) => h('button.link', { type: 'button', dataset: { key: `open:${o.id}` }, onclick: () => edit(o) }, o.name) },
        { label: 'Selects', render: (o) => (o.cidrs ? 'IP block' : 'workloads') },
        { label: 'Namespace', render: (o) => o.namespace || '' },
        { label: 'App', render: (o) => o.app || '' },
        { label: 'Images', render: (o) => (o.images || []).join(', ') },
        { label: 'Labels', render: (o) => (o.labels || []).join(', ') },
        { label: 'CIDRs', render: (o) => (o.cidrs || []).map(cidrText).join(', ') },
        { label: 'Cluster', render: (o) => o.cluster || 'all' },
        { label: 'Description', render: (o) => h('span.descr', o.description || '') },
        { label: 'Actions', render: (o) => h('div.row-actions',
          h('button', { type: 'button', dataset: { key: `edit:${o.id}` }, onclick: () => edit(o) }, ctx.canWrite ? 'Edit' : 'View'),
          ctx.canWrite ? h('button.danger', { type: 'button', dataset: { key: `del:${o.id}` }, onclick: () => remove(o) }, 'Delete') : null) },
      ], objs, {
        empty: 'No object matches these filters.',
        caption: `${objs.length} object(s)`,
        rowData: (o) => ({ object: o.id, name: o.name }),
        select: ctx.canWrite ? { set: selected, key: (o) => o.id, label: (o) => `object ${o.name}`, changed: (all) => { drawBatch(); if (all) ctx.reread(); } } : null,
      }));
      drawBatch();
    },
  };
  return page;
}
