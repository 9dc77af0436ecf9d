// page-rules: rule management of one cluster (/management/CLUSTER) — the
// list with filters, "in effect on k/n nodes", create and edit (source
// object, up to 8 destinations with port ranges, protocol, action,
// priority, enabled), delete, and batch enable/disable. ?rule=ID opens that
// rule (the alert dialog links here), ?new=1 the form for a new rule.

import * as api from './api.js';
import { ACTIONS } from './alerts-common.js';
import { defenseSwitch, statusCell } from './page-management.js';
import { badge, batchBar, clearErrors, confirmDialog, dialog, field, h, input, newId, readOnly, replace, select, showErrors, table } from './dom.js';

const BUILTINS = ['any', 'host', 'cluster-dns'];
const DESTS_MAX = 8;

function portsText(p) {
  if (p === undefined || p === null) return '';
  return Array.isArray(p) ? p.join(',') : String(p);
}

function destsCell(r) {
  return h('ul.dests', (r.destinations || []).map((d) => h('li', String(d.object), ' ', h('small', portsText(d.ports) || 'all ports'))));
}

export function effectCell(r, cluster) {
  const e = r.in_effect || { nodes: 0, of: 0 };
  let why = '';
  if (!r.enabled) why = 'disabled';
  else if (cluster.defense !== 'on') why = 'defense off';
  else if (e.nodes < e.of) why = 'not every node enforces';
  else if (e.of === 0) why = 'no node';
  return h('span', { class: e.nodes === e.of && e.of > 0 ? 'ok' : 'warn' }, `${e.nodes}/${e.of} nodes`, why ? h('small', ` (${why})`) : null);
}

// The objects a rule of `cluster` may name: the built-ins, then every object not restricted to another cluster.
function objectChoices(objects, cluster) {
  const own = objects.filter((o) => !o.cluster || o.cluster === cluster);
  return [...BUILTINS.map((b) => [b, `${b} (built-in)`]), ...own.map((o) => [o.name, o.cidrs ? `${o.name} (IP block)` : o.name])];
}

function ruleForm(ctx, cluster, objects, rule, done) {
  const system = rule && rule.type === 'system';
  const choices = objectChoices(objects, cluster);
  const lock = system ? { disabled: true } : {};
  const name = input({ name: 'name', value: rule?.name || '', ...lock });
  const descr = h('textarea', { name: 'description', rows: 2 }, rule?.description || '');
  const source = select(choices, rule ? String(rule.source) : 'any', { name: 'source', ...lock });
  const protocol = select([['tcp', 'tcp'], ['udp', 'udp'], ['any', 'any (every IP protocol)']], rule?.protocol || 'tcp', { name: 'protocol', ...lock });
  const action = select([['block', 'block — drop and alert'], ['alert', 'alert — allow and alert'], ['allow', 'allow — allow silently']], rule?.action || 'block', { name: 'action', ...lock });
  const priority = input({ name: 'priority', inputmode: 'numeric', value: rule ? String(rule.priority) : '100', ...lock });
  const enabled = h('input', { type: 'checkbox', name: 'enabled', checked: rule ? rule.enabled : true });
  const dests = (rule?.destinations || [{ object: choices[0][0] }]).map((d) => ({ object: String(d.object), ports: portsText(d.ports) }));
  const destBox = h('fieldset.dests', { 'data-field': 'destinations', tabindex: '-1', id: newId('dests') });

  function drawDests() {
    const rows = dests.map((d, i) => {
      const obj = select(choices, d.object, { onchange: (ev) => { d.object = ev.target.value; }, ...lock });
      const ports = input({ value: d.ports, placeholder: 'all ports', onchange: (ev) => { d.ports = ev.target.value; }, oninput: (ev) => { d.ports = ev.target.value; }, ...lock });
      return h('div.dest-row',
        field(`Destination ${i + 1} object`, obj, { field: `destinations[${i}].object` }),
        field(`Destination ${i + 1} ports`, ports, { field: `destinations[${i}].ports` }),
        system ? null : h('button', { type: 'button', 'aria-label': `Remove destination ${i + 1}`, disabled: dests.length === 1, onclick: () => { dests.splice(i, 1); drawDests(); } }, 'Remove'));
    });
    replace(destBox, h('legend', 'Destinations (1 to 8)'),
      h('div.hint', 'Ports: lo/hi ranges, comma-separated (80/80,443/443), or single ports (8080); empty means all ports.'), rows,
      system ? null : h('button', { type: 'button', disabled: dests.length >= DESTS_MAX, onclick: () => { dests.push({ object: choices[0][0], ports: '' }); drawDests(); destBox.querySelectorAll('select')[dests.length - 1].focus(); } }, 'Add destination'),
      h('div.error', { dataset: { errorFor: destBox.id } }));
  }
  drawDests();

  const form = h('form.form.rule-form', {
    novalidate: true,
    onsubmit: async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      const path = `/clusters/${api.enc(cluster)}/rules`;
      try {
        let saved;
        if (system) {
          saved = await api.patch(`${path}/${rule.id}`, { enabled: enabled.checked, description: descr.value });
        } else {
          const body = {
            name: name.value.trim(),
            enabled: enabled.checked,
            source: source.value,
            destinations: dests.map((d) => (d.ports.trim() ? { object: d.object, ports: d.ports.trim() } : { object: d.object })),
            protocol: protocol.value,
            action: action.value,
            priority: /^\s*\d+\s*$/.test(priority.value) ? Number(priority.value) : priority.value,
          };
          if (descr.value.trim()) body.description = descr.value;
          saved = rule ? await api.put(`${path}/${rule.id}`, body) : await api.post(path, body);
        }
        ctx.toast(rule ? `Rule ${saved.name} saved.` : `Rule ${saved.name} created (#${saved.id}).`);
        done();
      } catch (e) {
        if (e.errors) showErrors(form, e.errors);
      }
    },
  },
  h('ul.form-errors', { tabindex: '-1' }),
  system ? h('p.note', 'A system rule: only its switch and description can change.') : null,
  h('div.grid2',
    field('Name', name, { field: 'name', required: true }),
    field('Priority', priority, { field: 'priority', required: true, hint: '1 to 1000; smaller wins, then the smaller rule id.' })),
  h('div.grid2',
    field('Source object', source, { field: 'source' }),
    field('Protocol', protocol, { field: 'protocol' })),
  destBox,
  h('div.grid2',
    field('Action', action, { field: 'action' }),
    h('div.field.check', enabled, h('label', { for: enabled.id = newId('en') }, 'Enabled'))),
  field('Description', descr, { field: 'description' }),
  h('div.actions', h('button.primary', { type: 'submit' }, rule ? 'Save rule' : 'Create rule'),
    h('button', { type: 'button', onclick: () => form.closest('dialog').close() }, ctx.canWrite ? 'Cancel' : 'Close')));
  return ctx.canWrite ? form : readOnly(form);
}

export default function rulesPage(ctx) {
  const cluster = ctx.params.cluster;
  const q = ctx.query;
  let filters = { action: q.action || '', enabled: q.enabled || '', type: q.type || '', protocol: q.protocol || '', search: q.search || '' };
  const selected = new Set();
  let objects = [];
  let first = true;

  const summary = h('div.cluster-summary');
  const warn = h('div');
  const filterBox = h('div.filters', { role: 'group', 'aria-label': 'Rule filters' });
  const batch = h('div.batch', { role: 'group', 'aria-label': 'Selected rules' });
  const list = h('div');
  ctx.main.append(
    h('nav.crumbs', { 'aria-label': 'Breadcrumb' }, h('a', { href: '/management' }, 'Protection management'), ' › ', cluster),
    h('div.page-head', h('h1', `Rules of cluster ${cluster}`),
      ctx.canWrite ? h('button.primary', { type: 'button', onclick: () => edit(null) }, 'New rule') : null),
    summary, warn, filterBox, batch, list);

  const update = (k) => (ev) => {
    filters = { ...filters, [k]: ev.target.value };
    ctx.setQuery(filters);
    ctx.reread();
  };
  const sel = (k, label, values) => h('div.filter', h('label', { for: `rf-${k}` }, label), select([['', 'All'], ...values], filters[k], { id: `rf-${k}`, onchange: update(k) }));
  filterBox.append(
    h('div.filter', h('label', { for: 'rf-search' }, 'Search'), input({ id: 'rf-search', type: 'search', value: filters.search, placeholder: 'name or description', oninput: update('search') })),
    sel('action', 'Action', ACTIONS),
    sel('enabled', 'Enabled', [['true', 'enabled'], ['false', 'disabled']]),
    sel('type', 'Type', ['custom', 'system', 'suggested']),
    sel('protocol', 'Protocol', ['tcp', 'udp', 'any']));

  function edit(rule) {
    const title = rule ? `Rule ${rule.name} (#${rule.id})` : `New rule in ${cluster}`;
    const d = dialog(title, ruleForm(ctx, cluster, objects, rule, () => { d.close(); ctx.reread(); }));
  }

  async function remove(rule) {
    if (!await confirmDialog(`Delete rule ${rule.name}?`, `Rule #${rule.id} of cluster ${cluster} will stop applying on every node.`)) return;
    await ctx.act(() => api.del(`/clusters/${api.enc(cluster)}/rules/${rule.id}`), `Rule ${rule.name} deleted.`);
  }

  const setEnabled = (on) => {
    const ids = [...selected];
    return ctx.act(async () => {
      await api.post(`/clusters/${api.enc(cluster)}/rules/batch`, { ids, enabled: on });
      selected.clear();
    }, `${ids.length} rule(s) ${on ? 'enabled' : 'disabled'}.`);
  };
  const drawBatch = () => batchBar(batch, ctx.canWrite, selected, [
    ['enable', 'Enable', () => setEnabled(true)],
    ['disable', 'Disable', () => setEnabled(false)]]);

  function drawWarnings(c) {
    const notes = [];
    if (c.defense !== 'on') notes.push('Defense is off for this cluster: no rule is in effect, all traffic passes and nothing is recorded.');
    if (c.status === 'unknown') notes.push('No node has joined this cluster: the rules are in effect nowhere yet.');
    if (c.status === 'abnormal') notes.push(`Rules do not take effect on ${c.nodes - c.enforcing} of ${c.nodes} nodes (see the status above and Nodes).`);
    if (c.mode === 'monitor') notes.push('Monitor mode: block outcomes are applied as alerts ("would block").');
    replace(warn, notes.length ? h('ul.notes', notes.map((n) => h('li', n))) : null);
  }

  const page = {
    title: `Rules of ${cluster}`,
    every: 5000, // ms: states derived from the time of the last heartbeat
    topics: ['config', 'nodes', 'heartbeats'],
    async refresh() {
      let c;
      try {
        c = await api.get(`/clusters/${api.enc(cluster)}`, undefined, { quiet: true });
      } catch (e) {
        if (e.status === 404) {
          replace(summary, h('p.error', `There is no cluster ${cluster}.`));
          replace(list);
          return;
        }
        throw e;
      }
      const [rules, objs] = await Promise.all([
        api.getAll(`/clusters/${api.enc(cluster)}/rules`, { action: filters.action, enabled: filters.enabled, type: filters.type, protocol: filters.protocol }),
        api.getAll('/objects'),
      ]);
      objects = objs;
      replace(summary, h('dl.kv.inline',
        h('dt', 'Defense'), h('dd', defenseSwitch(c, ctx, ctx.reread)),
        h('dt', 'Status'), h('dd', statusCell(c)),
        h('dt', 'Mode'), h('dd', badge(c.mode)),
        h('dt', 'Default action'), h('dd', badge(c.default_action))));
      drawWarnings(c);
      const needle = filters.search.trim().toLowerCase();
      const shown = needle ? rules.filter((r) => `${r.name} ${r.description || ''}`.toLowerCase().includes(needle)) : rules;
      for (const k of [...selected]) if (!shown.some((r) => r.id === k)) selected.delete(k);
      replace(list, table([
        { label: 'ID', class: 'num', render: (r) => String(r.id) },
        { label: 'Priority', class: 'num', render: (r) => String(r.priority) },
        { label: 'Name', render: (r) => h('div', h('button.link', { type: 'button', dataset: { key: `open:${r.id}` }, onclick: () => edit(r) }, r.name), r.description ? h('div.descr', r.description) : null) },
        { label: 'Source', render: (r) => String(r.source) },
        { label: 'Destinations', render: destsCell },
        { label: 'Protocol', render: (r) => r.protocol },
        { label: 'Action', render: (r) => badge(r.action) },
        { label: 'Type', render: (r) => r.type },
        { label: 'Enabled', render: (r) => (r.enabled ? 'yes' : 'no') },
        { label: 'In effect', render: (r) => effectCell(r, c) },
        { label: 'Actions', render: (r) => h('div.row-actions',
          h('button', { type: 'button', dataset: { key: `edit:${r.id}` }, onclick: () => edit(r) }, ctx.canWrite ? 'Edit' : 'View'),
          ctx.canWrite && r.type !== 'system' ? h('button.danger', { type: 'button', dataset: { key: `del:${r.id}` }, onclick: () => remove(r) }, 'Delete') : null) },
      ], shown, {
        empty: 'No rule matches these filters.',
        caption: `${shown.length} rule(s)`,
        rowData: (r) => ({ rule: r.id }),
        select: ctx.canWrite ? { set: selected, key: (r) => r.id, label: (r) => `rule ${r.name}`, changed: (all) => { drawBatch(); if (all) ctx.reread(); } } : null,
      }));
      drawBatch();
      if (first) {
        first = false;
        const want = Number(q.rule);
        let r = want ? rules.find((x) => x.id === want) : null;
        if (want && !r) r = await api.get(`/clusters/${api.enc(cluster)}/rules/${want}`).catch(() => null);
        if (r) edit(r);
        else if (q.new && ctx.canWrite) edit(null);
      }
    },
  };
  return page;
}
