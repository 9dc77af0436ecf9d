// page-status: Protection status (SPEC §8), for every cluster or one —
// risks in the last 24 hours, 30 and 180 days; unprotected clusters; rules;
// blocked and alerted connections per hour (a uPlot chart, with the same
// numbers as a table); top rules, sources, destinations and ports; alerts of
// the last 7 days per cluster; and the newest alerts, filterable, each
// opening the alert dialog.

import * as api from './api.js';
import { alertColumns, alertFilters, alertQuery, openAlert } from './alerts-common.js';
import { fmtInt, fmtTime, h, replace, select, table } from './dom.js';
import uPlot from './uPlot.esm.js';

const NEWEST = 10;
const CHART_HEIGHT = 170;

function card(label, value, sub) {
  return h('div.card', h('div.card-label', label), h('div.card-value', value), sub ? h('div.card-sub', sub) : null);
}

// A top rule is "ID NAME".
function ruleName(text) {
  const m = String(text).match(/^(\d+) (.*)$/);
  return m ? h('span', m[2], h('small', ` #${m[1]}`)) : String(text);
}

function topTable(title, column, rows, key) {
  return h('section.top-list', h('h3', title),
    table([{ label: column, render: (r) => (key === 'rule' ? ruleName(r.rule) : String(r[key])) },
      { label: 'Attempts', class: 'num', render: (r) => fmtInt(r.attempts) }], rows, { empty: 'None in the last 30 days.' }));
}

// The per-hour chart: blocked and alerted side by side in each hour.
function chart(el, hourly) {
  const xs = hourly.map((r) => Date.parse(r.hour) / 1000);
  const data = [xs, hourly.map((r) => r.blocked), hourly.map((r) => r.alerted)];
  const width = Math.max(320, el.clientWidth || 900);
  const bars = (align) => uPlot.paths.bars({ size: [0.4, 60], align });
  const opts = {
    width,
    height: CHART_HEIGHT,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(4, max * 1.1)] } },
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
    series: [
      {},
      { label: 'Blocked', stroke: '#b3261e', fill: 'rgba(179,38,30,0.75)', paths: bars(-1), points: { show: false } },
      { label: 'Alerted', stroke: '#a05a00', fill: 'rgba(230,150,20,0.75)', paths: bars(1), points: { show: false } },
    ],
    axes: [{ values: '{HH}:00' }, { label: 'connections', size: 60 }],
  };
  return new uPlot(opts, data, el);
}

function hourlyTable(hourly) {
  return table([
    { label: 'Hour (UTC)', render: (r) => fmtTime(r.hour).slice(0, 16) },
    { label: 'Blocked', class: 'num', render: (r) => fmtInt(r.blocked) },
    { label: 'Alerted', class: 'num', render: (r) => fmtInt(r.alerted) },
  ], hourly, { caption: 'Blocked and alerted connections per hour' });
}

export default function statusPage(ctx) {
  const q = ctx.query;
  let filters = { cluster: q.cluster || '', window: q.window || '', kind: q.kind || '', action: q.action || '', status: q.status || '' };
  let clusters = [];
  let plot = null;
  let lastAlerts = [];
  let drawn = false; // the filter controls, redrawn when the cluster list changes

  const clusterBox = h('div.filter');
  const cards = h('div.cards', { 'aria-live': 'off' });
  const chartEl = h('div.chart', { role: 'img', 'aria-label': 'Blocked and alerted connections per hour, last 24 hours' });
  const chartTable = h('details.chart-table', h('summary', 'Show the numbers'));
  const tops = h('div.tops');
  const perCluster = h('div');
  const filterBox = h('div');
  const alertsBox = h('div', { id: 'newest-alerts' });
  const allLink = h('p');

  ctx.main.append(
    h('div.page-head', h('h1', 'Protection status'), clusterBox),
    cards,
    h('section.panel', h('h2', 'Blocked and alerted connections per hour (last 24 hours, UTC)'), chartEl, chartTable),
    h('section.panel', h('h2', 'Newest alerts'), filterBox, alertsBox, allLink),
    h('section.panel', h('h2', 'Top of the last 30 days'), tops),
    h('section.panel', h('h2', 'Alerts in the last 7 days per cluster'), perCluster));

  const resize = new ResizeObserver(() => { if (plot && chartEl.clientWidth) plot.setSize({ width: chartEl.clientWidth, height: CHART_HEIGHT }); });
  resize.observe(chartEl);

  const update = (f) => {
    filters = f;
    drawn = false;
    ctx.setQuery(filters);
    ctx.reread();
  };

  function drawClusterSelect() {
    replace(clusterBox, h('label', { for: 'status-cluster' }, 'Cluster'),
      select([['', 'All clusters'], ...clusters], filters.cluster, { id: 'status-cluster', onchange: (ev) => update({ ...filters, cluster: ev.target.value }) }));
  }

  function drawStatus(s) {
    const r = s.rules;
    replace(cards,
      card('Risks, last 24 hours', fmtInt(s.alerts.last_24h)),
      card('Risks, last 30 days', fmtInt(s.alerts.last_30d)),
      card('Risks, last 180 days', fmtInt(s.alerts.last_180d)),
      card('Unprotected clusters', `${fmtInt(s.clusters.unprotected)} / ${fmtInt(s.clusters.total)}`, 'defense off, or a node not enforcing'),
      card('Rules', `${fmtInt(r.enabled)} enabled`, `${fmtInt(r.disabled)} disabled · ${fmtInt(r.suggested)} suggested · ${fmtInt(r.total)} in all`));
    if (plot) plot.setData([s.hourly.map((x) => Date.parse(x.hour) / 1000), s.hourly.map((x) => x.blocked), s.hourly.map((x) => x.alerted)]);
    else plot = chart(chartEl, s.hourly);
    replace(chartTable, h('summary', 'Show the numbers'), hourlyTable(s.hourly));
    replace(tops,
      topTable('Top rules', 'Rule', s.top.rules, 'rule'),
      topTable('Top sources', 'Source', s.top.sources, 'source'),
      topTable('Top destinations', 'Destination', s.top.destinations, 'destination'),
      topTable('Top ports', 'Port', s.top.ports, 'port'));
    replace(perCluster, table([
      { label: 'Cluster', render: (c) => h('a', { href: `/management/${encodeURIComponent(c.cluster)}` }, c.cluster) },
      { label: 'Alerts', class: 'num', render: (c) => fmtInt(c.alerts) },
    ], s.alerts_7d_per_cluster || [], { empty: 'No cluster yet.' }));
  }

  function drawAlerts(items, total) {
    lastAlerts = items;
    const open = (a) => openAlert(a, ctx, ctx.reread);
    replace(alertsBox, table(alertColumns(open, { cluster: !filters.cluster }), items, {
      empty: 'No alert matches these filters.',
      rowData: (a) => ({ alert: a.id }),
    }));
    const p = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
    replace(allLink, total > items.length ? `${fmtInt(total)} alerts match; the newest ${items.length} are shown. ` : '',
      h('a', { href: `/alerts${p.toString() ? `?${p}` : ''}` }, 'All alerts with these filters'));
  }

  const page = {
    title: 'Protection status',
    topics: ['config', 'alerts', 'nodes', 'heartbeats'],
    async refresh() {
      const path = filters.cluster ? `/clusters/${api.enc(filters.cluster)}/status` : '/status';
      const [cl, s, al] = await Promise.all([
        api.get('/clusters', { limit: 1000 }),
        api.get(path),
        api.get('/alerts', { ...alertQuery(filters), limit: NEWEST }),
      ]);
      const names = cl.items.map((c) => c.name);
      if (!drawn || names.join('\n') !== clusters.join('\n')) {
        clusters = names;
        drawn = true;
        drawClusterSelect();
        replace(filterBox, alertFilters(filters, clusters, update, { cluster: false }));
      }
      drawStatus(s);
      drawAlerts(al.items, al.total);
    },
    destroy() {
      resize.disconnect();
      if (plot) plot.destroy();
    },
    get alerts() {
      return lastAlerts;
    },
  };
  return page;
}
