// dom: building the page without HTML strings. Everything a user or an
// agent wrote (names, descriptions, labels, messages) reaches the page as
// text nodes or attribute values through h(), never as markup: the console
// has no innerHTML anywhere (tests/browser checks that).

// h('tag.class', {attr: value, onclick: fn}, child, ...): an element.
// Children are nodes, strings (text), numbers, arrays, or null/false (skipped).
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = [el.className, v].filter(Boolean).join(' ');
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'selected') el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Replaces the children of `el`, keeping keyboard focus on the element with
// the same data-key (or id) when one was focused (live updates must not steal it).
export function replace(el, ...children) {
  const active = document.activeElement;
  const inside = active && active !== el && el.contains(active);
  const key = inside ? active.dataset.key : null;
  const id = inside ? active.id : null;
  el.replaceChildren();
  append(el, children);
  let again = null;
  if (key) again = [...el.querySelectorAll('[data-key]')].find((n) => n.dataset.key === key);
  else if (id) again = document.getElementById(id);
  if (again && el.contains(again)) again.focus();
  return el;
}

let uid = 0;
export function newId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

// ---- formatting ------------------------------------------------------------

// "2026-12-01T21:27:42Z" -> "2026-12-01 21:27:42" (the console shows UTC).
export function fmtTime(iso) {
  if (!iso) return '';
  return String(iso).replace('T', ' ').replace(/Z$/, '');
}

export function ago(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (!iso || Number.isNaN(t)) return '';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function fmtInt(n) {
  return Number(n || 0).toLocaleString('en-US');
}

// A badge whose colour follows its value (block, alert, allow, normal, ...).
export function badge(value, extra) {
  const v = String(value ?? '');
  return h(`span.badge.b-${v.replace(/[^a-z_]/g, '')}`, extra || {}, v.replace(/_/g, ' '));
}

// "NAMESPACE/NAME (address:port)" of an alert's source or destination.
export function endpoint(e, withPort) {
  if (!e) return '';
  const addr = e.address ? `${e.address}${withPort && e.port ? `:${e.port}` : ''}` : '';
  if (e.workload || e.name) {
    return h('span.ep', h('span', e.workload || `${e.namespace}/${e.name}`), addr ? h('small', addr) : null);
  }
  return h('span.ep', addr);
}

// ---- tables ----------------------------------------------------------------

// columns: [{label, render(row) -> node|string, class}]; opts.select: {set, key(row), label(row)}.
export function table(columns, rows, opts = {}) {
  const sel = opts.select;
  const head = h('tr',
    sel ? h('th.sel', { scope: 'col' }, selectAll(rows, sel)) : null,
    columns.map((c) => h('th', { scope: 'col', class: c.class }, c.label)));
  const body = rows.map((r) => h('tr', { dataset: opts.rowData ? opts.rowData(r) : {} },
    sel ? h('td.sel', h('input', {
      type: 'checkbox',
      'aria-label': `Select ${sel.label(r)}`,
      dataset: { key: `sel:${sel.key(r)}` },
      checked: sel.set.has(sel.key(r)),
      onchange: (ev) => { if (ev.target.checked) sel.set.add(sel.key(r)); else sel.set.delete(sel.key(r)); sel.changed?.(); },
    })) : null,
    columns.map((c) => h('td', { class: c.class }, c.render(r)))));
  return h('div.table-wrap',
    h('table', opts.caption ? h('caption', opts.caption) : null, h('thead', head),
      h('tbody', rows.length ? body : h('tr', h('td.empty', { colspan: columns.length + (sel ? 1 : 0) }, opts.empty || 'Nothing here yet.')))));
}

function selectAll(rows, sel) {
  const all = rows.length > 0 && rows.every((r) => sel.set.has(sel.key(r)));
  return h('input', {
    type: 'checkbox',
    'aria-label': 'Select all rows shown',
    dataset: { key: 'sel:all' },
    checked: all,
    onchange: (ev) => {
      for (const r of rows) {
        if (ev.target.checked) sel.set.add(sel.key(r)); else sel.set.delete(sel.key(r));
      }
      sel.changed?.(true);
    },
  });
}

// The bar of actions on the selected rows: "N selected" and a button per
// action [key, label, run, class]; empty for a viewer.
export function batchBar(el, canWrite, selected, actions) {
  if (!canWrite) return replace(el);
  const n = selected.size;
  return replace(el, h('span', `${n} selected`), actions.map(([key, label, run, cls]) =>
    h(`button${cls ? `.${cls}` : ''}`, { type: 'button', disabled: !n, dataset: { key: `batch:${key}` }, onclick: run }, label)));
}

// ---- forms -----------------------------------------------------------------

// A labelled control with a place for its error. `field` is the API's name
// for it ("name", "destinations[0].ports"): errors for that field go there.
export function field(label, control, opts = {}) {
  const id = control.id || newId('f');
  control.id = id;
  const errId = `${id}-err`;
  const hintId = opts.hint ? `${id}-hint` : null;
  control.setAttribute('aria-describedby', [hintId, errId].filter(Boolean).join(' '));
  if (opts.field) control.dataset.field = opts.field;
  return h(`div.field${opts.class ? `.${opts.class}` : ''}`,
    h('label', { for: id }, label, opts.required ? h('span.req', { 'aria-hidden': 'true' }, ' *') : null),
    control,
    opts.hint ? h('div.hint', { id: hintId }, opts.hint) : null,
    h('div.error', { id: errId, dataset: { errorFor: id } }));
}

export function input(attrs) {
  return h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', ...attrs });
}

export function select(options, value, attrs = {}) {
  return h('select', attrs, options.map((o) => {
    const [v, label] = Array.isArray(o) ? o : [o, o];
    return h('option', { value: v, selected: String(v) === String(value ?? '') }, label);
  }));
}

export function clearErrors(form) {
  for (const e of form.querySelectorAll('.error')) e.textContent = '';
  for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
  const general = form.querySelector('.form-errors');
  if (general) general.replaceChildren();
}

// "cidrs[0].except[1]" -> "cidrs[0].except" -> "cidrs[0]" -> "cidrs" -> "".
function parentField(f) {
  const up = f.replace(/(\[\d+\]|\.[^.[\]]*)$/, '');
  return up === f ? '' : up;
}

// Shows the API's errors ([{field, message}]) next to their controls: the
// control whose data-field is the error's field, else the nearest one up
// (`labels[1]` goes to `labels`, `cidrs[0].except[1]` to `cidrs`). What has
// no control is listed at the top of the form. Focuses the first one.
export function showErrors(form, errors) {
  clearErrors(form);
  let first = null;
  const general = form.querySelector('.form-errors');
  for (const e of errors || []) {
    let f = e.field || '';
    let control = null;
    while (f && !control) {
      control = [...form.querySelectorAll('[data-field]')].find((c) => c.dataset.field === f) || null;
      if (!control) f = parentField(f);
    }
    const box = control ? form.querySelector(`[data-error-for="${control.id}"]`) : null;
    if (box) {
      const where = e.field && e.field !== control.dataset.field ? `${e.field}: ` : '';
      box.append(h('div', `${where}${e.message}`));
      control.setAttribute('aria-invalid', 'true');
      if (!first || (control.compareDocumentPosition(first) & Node.DOCUMENT_POSITION_FOLLOWING)) first = control;
    } else if (general) {
      general.append(h('li', e.field ? `${e.field}: ${e.message}` : e.message));
    }
  }
  if (first) first.focus();
  else if (general && general.childElementCount) general.focus();
}

// ---- dialogs ---------------------------------------------------------------

// A modal <dialog> (Esc closes it, focus stays inside). Returns it; it is
// removed from the page when closed.
export function dialog(title, ...content) {
  const titleId = newId('dlg');
  const d = h('dialog', { 'aria-labelledby': titleId },
    h('div.dlg-head', h('h2', { id: titleId }, title),
      h('button.icon', { type: 'button', 'aria-label': 'Close', onclick: () => d.close() }, '×')),
    h('div.dlg-body', content));
  d.addEventListener('close', () => d.remove());
  document.body.append(d);
  d.showModal();
  const focus = d.querySelector('[autofocus]') || d.querySelector('input, select, textarea, button:not(.icon)');
  if (focus) focus.focus();
  return d;
}

// Asks to confirm; resolves true or false.
export function confirmDialog(title, text, yes = 'Delete') {
  return new Promise((resolve) => {
    let answer = false;
    const d = dialog(title,
      h('p', text),
      h('div.actions',
        h('button.danger', { type: 'button', onclick: () => { answer = true; d.close(); } }, yes),
        h('button', { type: 'button', autofocus: true, onclick: () => d.close() }, 'Cancel')));
    d.addEventListener('close', () => resolve(answer));
  });
}

// Makes a form read-only (the viewer role): every control disabled, submit buttons gone.
export function readOnly(form) {
  for (const c of form.querySelectorAll('input, select, textarea, button')) {
    if (c.type === 'submit' || c.dataset.write !== undefined) c.remove();
    else if (!c.closest('.actions')) c.disabled = true;
  }
  return form;
}
