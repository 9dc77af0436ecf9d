// page-alerts: Alerts — the full list (SPEC §7's fields) with filters
// (cluster, time, kind, action, status, workload, node), paged; the status
// changes one by one (the alert dialog) and for the selected alerts at once
// (POST /alerts/batch, all or none).

import * as api from './api.js';
import { alertColumns, alertFilters, alertQuery, openAlert } from './alerts-common.js';
import { batchBar, fmtInt, h, replace, table } from './dom.js';

const PAGE = 50;

export default function alertsPage(ctx) {
  const q = ctx.query;
  let filters = Object.fromEntries(['cluster', 'window', 'kind', 'action', 'status', 'workload', 'node'].map((k) => [k, q[k] || '']));
  let offset = Math.max(0, Number(q.offset) || 0);
  const selected = new Set();
  let clusters = null;
  const filterBox = h('div');
  const batch = h('div.batch', { role: 'group', 'aria-label': 'Selected alerts' });
  const list = h('div');
  const pager = h('div.pager');
  ctx.main.append(h('div.page-head', h('h1', 'Alerts')),
    h('p.lead', 'Blocked and alerted connections and detection hits, aggregated per day by rule, source, destination, port and action. Times are UTC.'),
    filterBox, batch, list, pager);

  const update = (f) => {
    filters = f;
    offset = 0;
    clusters = null; // redraw the filters
    selected.clear();
    ctx.setQuery({ ...filters });
    ctx.reread();
  };
  const more = [{ key: 'workload', label: 'Workload', placeholder: 'NAMESPACE/NAME' }, { key: 'node', label: 'Node', placeholder: 'node name' }];

  const setStatus = (status) => {
    const ids = [...selected];
    return ctx.act(async () => {
      await api.post('/alerts/batch', { ids, status });
      selected.clear();
    }, `${ids.length} alert(s) marked ${status}.`);
  };
  const drawBatch = () => batchBar(batch, ctx.canWrite, selected, [
    ['handled', 'Mark handled', () => setStatus('handled')],
    ['ignored', 'Ignore', () => setStatus('ignored')],
    ['unhandled', 'Mark unhandled', () => setStatus('unhandled')]]);

  const go = (to) => {
    offset = Math.max(0, to);
    ctx.setQuery({ ...filters, offset: offset || '' });
    ctx.reread();
  };

  const page = {
    title: 'Alerts',
    topics: ['alerts', 'config'],
    async refresh() {
      const [cl, al] = await Promise.all([api.get('/clusters', { limit: 1000 }), api.get('/alerts', { ...alertQuery(filters), limit: PAGE, offset })]);
      const names = cl.items.map((c) => c.name);
      if (!clusters || names.join('\n') !== clusters.join('\n')) {
        clusters = names;
        replace(filterBox, alertFilters(filters, clusters, update, { more }));
      }
      const open = (a) => openAlert(a, ctx, ctx.reread);
      replace(list, table(alertColumns(open, { first: true, cluster: true, node: true }), al.items, {
        empty: 'No alert matches these filters.',
        caption: `${fmtInt(al.total)} alert(s)`,
        rowData: (a) => ({ alert: a.id }),
        select: ctx.canWrite ? { set: selected, key: (a) => a.id, label: (a) => `alert ${a.id}`, changed: (all) => { drawBatch(); if (all) ctx.reread(); } } : null,
      }));
      drawBatch();
      const last = Math.min(al.total, offset + al.items.length);
      replace(pager, h('span', al.total ? `${fmtInt(offset + 1)}–${fmtInt(last)} of ${fmtInt(al.total)}` : ''),
        h('button', { type: 'button', disabled: offset === 0, dataset: { key: 'page:prev' }, onclick: () => go(offset - PAGE) }, 'Newer'),
        h('button', { type: 'button', disabled: last >= al.total, dataset: { key: 'page:next' }, onclick: () => go(offset + PAGE) }, 'Older'));
    },
  };
  return page;
}
