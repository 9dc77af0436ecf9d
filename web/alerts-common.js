// alerts-common: what Protection status and Alerts share — the alert
// filters, the alert table's columns, and the alert dialog, from which the
// user opens the rule behind an alert, changes that rule's action, and marks
// the alert handled or ignored.

import * as api from './api.js';
import { badge, dialog, endpoint, fmtInt, fmtTime, h, input, replace, select } from './dom.js';

export const KINDS = ['policy', 'brute_force', 'port_scan', 'dns_hijack', 'spoofing', 'threat_intel'];
export const ACTIONS = ['block', 'alert', 'allow'];
export const STATUSES = ['unhandled', 'handled', 'ignored'];
// Time windows on last_seen: the filter's value -> seconds back from now.
export const WINDOWS = [['', 'Any time'], ['24h', 'Last 24 hours'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days'], ['180d', 'Last 180 days']];
const WINDOW_SECONDS = { '24h': 86400, '7d': 7 * 86400, '30d': 30 * 86400, '180d': 180 * 86400 };

function iso(t) {
  return new Date(t).toISOString().replace(/\.\d+Z$/, 'Z');
}

// The API query for filters {cluster, window, kind, action, status, workload, node, since, until}.
export function alertQuery(f) {
  const q = { cluster: f.cluster, kind: f.kind, action: f.action, status: f.status, workload: f.workload, node: f.node, since: f.since, until: f.until };
  if (f.window && WINDOW_SECONDS[f.window]) q.since = iso(Date.now() - WINDOW_SECONDS[f.window] * 1000);
  return q;
}

// The filter controls; onchange(newFilters) on every change. `clusters` are names.
export function alertFilters(f, clusters, onchange, opts = {}) {
  const set = (k) => (ev) => onchange({ ...f, [k]: ev.target.value });
  const sel = (k, label, values) => h('div.filter', h('label', { for: `af-${k}` }, label),
    select([['', 'All'], ...values], f[k], { id: `af-${k}`, onchange: set(k) }));
  return h('div.filters', { role: 'group', 'aria-label': 'Alert filters' },
    opts.cluster === false ? null : sel('cluster', 'Cluster', clusters),
    h('div.filter', h('label', { for: 'af-window' }, 'Time'), select(WINDOWS, f.window, { id: 'af-window', onchange: set('window') })),
    sel('kind', 'Kind', KINDS.map((k) => [k, k.replace(/_/g, ' ')])),
    sel('action', 'Action', ACTIONS),
    sel('status', 'Status', STATUSES),
    opts.more ? opts.more.map((m) => h('div.filter', h('label', { for: `af-${m.key}` }, m.label),
      input({ id: `af-${m.key}`, value: f[m.key] || '', placeholder: m.placeholder, onchange: set(m.key) }))) : null);
}

// The applied action, and what the rule said when they differ (monitor mode: "would block").
export function actionCell(a) {
  const differs = a.configured_action && a.configured_action !== a.applied_action;
  return h('span', badge(a.applied_action), differs ? h('small', ` (would ${a.configured_action})`) : null);
}

export function ruleCell(a) {
  if (a.rule) return h('span', a.rule.name, h('small', ` #${a.rule.id}`));
  if (a.kind === 'policy') return h('span.muted', 'default action');
  return h('span.muted', a.kind.replace(/_/g, ' '));
}

// Columns of an alert table; `open(alert)` shows the alert dialog.
export function alertColumns(open, opts = {}) {
  return [
    { label: 'Last seen (UTC)', render: (a) => h('button.link', { type: 'button', dataset: { key: `open:${a.id}` }, onclick: () => open(a), 'aria-label': `Alert ${a.id}, last seen ${fmtTime(a.last_seen)}: details` }, fmtTime(a.last_seen)) },
    opts.first ? { label: 'First seen', render: (a) => fmtTime(a.first_seen) } : null,
    opts.cluster ? { label: 'Cluster', render: (a) => a.cluster } : null,
    opts.node ? { label: 'Node', render: (a) => a.node } : null,
    { label: 'Kind', render: (a) => a.kind.replace(/_/g, ' ') },
    { label: 'Source', render: (a) => endpoint(a.source, false) },
    { label: 'Destination', render: (a) => endpoint(a.destination, true) },
    { label: 'Proto', render: (a) => a.protocol },
    { label: 'Rule', render: ruleCell },
    { label: 'Action', render: actionCell },
    { label: 'Attempts', class: 'num', render: (a) => fmtInt(a.attempts) },
    { label: 'Risk', render: (a) => badge(a.risk) },
    { label: 'Status', render: (a) => badge(a.status) },
  ].filter(Boolean);
}

function endpointDetails(e) {
  if (!e) return '';
  const rows = [['Address', e.address], ['Port', e.port], ['Workload', e.workload || (e.name ? `${e.namespace}/${e.name}` : '')], ['App', e.app], ['Image', e.image], ['Matched object', e.object]];
  return h('dl.kv', rows.filter(([, v]) => v !== undefined && v !== null && v !== '').map(([k, v]) => [h('dt', k), h('dd', String(v))]));
}

// The alert dialog. `changed()` is called after the alert or its rule changed.
export async function openAlert(alert, ctx, changed) {
  const status = h('span', badge(alert.status));
  const ruleBox = h('div.rule-box');
  const statusButtons = h('div.actions');
  const d = dialog(`Alert ${alert.id}`,
    h('dl.kv.cols',
      h('dt', 'Cluster'), h('dd', alert.cluster),
      h('dt', 'Node'), h('dd', alert.node),
      h('dt', 'Kind'), h('dd', alert.kind.replace(/_/g, ' ')),
      h('dt', 'Protocol'), h('dd', alert.protocol || ''),
      h('dt', 'Action'), h('dd', `${alert.applied_action} (configured: ${alert.configured_action})`),
      h('dt', 'Attempts'), h('dd', fmtInt(alert.attempts)),
      h('dt', 'First seen (UTC)'), h('dd', fmtTime(alert.first_seen)),
      h('dt', 'Last seen (UTC)'), h('dd', fmtTime(alert.last_seen)),
      h('dt', 'Risk'), h('dd', badge(alert.risk)),
      h('dt', 'Status'), h('dd', status)),
    h('div.two',
      h('section', h('h3', 'Source'), endpointDetails(alert.source)),
      h('section', h('h3', 'Destination'), endpointDetails(alert.destination))),
    alert.details && Object.keys(alert.details).length
      ? h('section', h('h3', 'Details'), h('dl.kv', Object.entries(alert.details).map(([k, v]) => [h('dt', k), h('dd', typeof v === 'string' ? v : JSON.stringify(v))])))
      : null,
    h('section', h('h3', 'Rule'), ruleBox),
    ctx.canWrite ? h('section', h('h3', 'Handling'), statusButtons) : null);

  const setStatus = async (s) => {
    try {
      const a = await api.patch(`/alerts/${alert.id}`, { status: s });
      alert.status = a.status;
      replace(status, badge(a.status));
      drawStatusButtons();
      ctx.toast(`Alert ${alert.id} marked ${s}.`);
      changed?.();
    } catch (e) {
      statusButtons.append(h('p.error', e.message));
    }
  };
  const drawStatusButtons = () => {
    replace(statusButtons,
      alert.status !== 'handled' ? h('button.primary', { type: 'button', onclick: () => setStatus('handled') }, 'Mark handled') : null,
      alert.status !== 'ignored' ? h('button', { type: 'button', onclick: () => setStatus('ignored') }, 'Ignore') : null,
      alert.status !== 'unhandled' ? h('button', { type: 'button', onclick: () => setStatus('unhandled') }, 'Mark unhandled') : null);
  };
  drawStatusButtons();

  if (!alert.rule) {
    ruleBox.append(h('p', alert.kind === 'policy'
      ? `No rule matched: cluster ${alert.cluster}'s default action applied.`
      : `Raised by the ${alert.kind.replace(/_/g, ' ')} detection, not by a rule.`),
    h('p', h('a', { href: `/management/${encodeURIComponent(alert.cluster)}`, onclick: () => d.close() }, `Rules of cluster ${alert.cluster}`)));
    return d;
  }
  const rulePath = `/clusters/${api.enc(alert.cluster)}/rules/${alert.rule.id}`;
  let rule;
  try {
    rule = await api.get(rulePath, undefined, { quiet: true });
  } catch (e) {
    ruleBox.append(h('p', `Rule ${alert.rule.name} (#${alert.rule.id}): ${e.status === 404 ? 'it no longer exists.' : e.message}`));
    return d;
  }
  const link = h('a', { href: `/management/${encodeURIComponent(alert.cluster)}?rule=${rule.id}`, onclick: () => d.close() }, 'Open rule');
  const current = h('span', badge(rule.action));
  ruleBox.append(h('p', h('strong', rule.name), ` (#${rule.id}, priority ${rule.priority}, ${rule.enabled ? 'enabled' : 'disabled'}): action `, current, ' — ', link));
  if (ctx.canWrite && rule.type !== 'system') {
    const actionSel = select(ACTIONS, rule.action, { id: 'alert-rule-action' });
    const msg = h('div.error', { id: 'alert-rule-action-err', role: 'alert' });
    actionSel.setAttribute('aria-describedby', msg.id);
    ruleBox.append(h('form.inline', {
      novalidate: true,
      onsubmit: async (ev) => {
        ev.preventDefault();
        msg.textContent = '';
        try {
          const r = await api.patch(rulePath, { action: actionSel.value });
          replace(current, badge(r.action));
          ctx.toast(`Rule ${r.name} now has action ${r.action}.`);
          changed?.();
        } catch (e) {
          msg.textContent = e.message;
        }
      },
    }, h('label', { for: actionSel.id }, 'Change the rule\'s action to'), actionSel,
    h('button', { type: 'submit' }, 'Change action'), msg));
  }
  return d;
}
