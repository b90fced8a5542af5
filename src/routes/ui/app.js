// labcat's web UI. No framework, no build step: the server renders each page's frame and
// this script fills it from the public JSON API, authenticated by the session cookie (which
// it cannot read: HttpOnly). Every write carries X-Labcat-CSRF, which the server requires
// of cookie-authenticated writes. Live updates come from the change feed (GET /events).

const body = document.body;
const PAGE = body.dataset.page;
const ME = { user: body.dataset.user, key: body.dataset.key };
const TYPES = ['rheed_video', 'xps', 'sem', 'metrology', 'optical', 'raman', 'photoluminescence',
  'ellipsometry', 'sims', 'oes', 'xrd', 'afm'];
const STATUSES = ['success', 'pending', 'error', 'running'];
const SORTS = [['-last_updated', 'Last updated, newest first'], ['last_updated', 'Last updated, oldest first'],
  ['-upload_datetime', 'Uploaded, newest first'], ['upload_datetime', 'Uploaded, oldest first']];
export const timings = (window.labcatTimings = {});

// ---------- small helpers ----------

const $ = (selector, root = document) => root.querySelector(selector);

/** An element: h('a', {href: '/x', class: 'y'}, 'text', child, ...). */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'value') node.value = value;
    else if (name === 'checked' || name === 'selected') node[name] = Boolean(value);
    else node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function select(attrs, options, current) {
  return h('select', attrs, options.map(([value, label]) =>
    h('option', { value, selected: value === current }, label)));
}

function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2)}`;
  control.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), control,
    hint ? h('span', { class: 'muted' }, hint) : null);
}

const clone = (value) => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)));
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isQuantity = (v) => isObject(v) && Object.keys(v).length === 2 && typeof v.value === 'number' && typeof v.unit === 'string';
const when = (text) => (text ? new Date(text).toLocaleString() : '—');
const show = (v) => (v === undefined ? '—' : JSON.stringify(v));

function announce(text) {
  const live = $('#live');
  if (live) live.textContent = text;
}

/** Calls the API; never throws for HTTP errors: {ok, status, data, headers}. */
async function api(method, path, payload, extraHeaders = {}) {
  const headers = { Accept: 'application/json', ...extraHeaders };
  if (method !== 'GET') headers['X-Labcat-CSRF'] = '1';
  if (payload !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: 'same-origin',
      body: payload === undefined ? undefined : JSON.stringify(payload),
    });
  } catch (error) {
    return { ok: false, status: 0, data: { detail: `labcat cannot be reached (${error.message})` }, headers: new Headers() };
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
  if (response.status === 401 && PAGE !== 'signin') {
    // The session ended (signed out elsewhere, expired, or its key was revoked).
    location.reload();
  }
  return { ok: response.ok, status: response.status, data, headers: response.headers };
}

function problem(result) {
  const data = result.data || {};
  const detail = typeof data.detail === 'string' ? data.detail : data.title || `HTTP ${result.status}`;
  const errors = (data.errors || []).map((e) => `${e.field}: ${e.message}`);
  return [detail, ...errors].join(' · ');
}

/** The change feed, for one project or all the user's; calls `onEvent` with each event.
 * A live feed starts "from now", so `onOpen` catches up with what changed before it opened
 * (and while it was reconnecting, which EventSource does by itself with Last-Event-ID). */
function follow(projectId, onEvent, onOpen) {
  if (!window.EventSource) return null;
  const source = new EventSource(projectId ? `/events?project_id=${encodeURIComponent(projectId)}` : '/events');
  let opened = false;
  source.onopen = () => {
    timings.feedOpen = true;
    if (opened) return; // a reconnect resumes from Last-Event-ID: nothing is missed
    opened = true;
    onOpen?.();
  };
  source.onmessage = (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch { return; /* not an event we know */ }
    onEvent(event);
  };
  return source;
}

// ---------- the frame: project switcher, sign out ----------

const params = new URLSearchParams(location.search);
let projects = [];
const projectName = (id) => projects.find((p) => p.id === id)?.name || id;

async function frame(current) {
  const switcher = $('#project-switcher');
  $('#sign-out')?.addEventListener('click', async () => {
    await api('POST', '/ui/sign_out');
    location.assign('/ui');
  });
  if (!switcher) return;
  const result = await api('GET', '/projects');
  projects = result.ok ? result.data : [];
  for (const project of projects) {
    switcher.append(h('option', { value: project.id }, `${project.name} (${project.role})`));
  }
  switcher.value = current || '';
  const members = $('#members-link');
  const setMembers = (id) => {
    members.hidden = !id;
    if (id) members.href = `/ui/projects/${id}/members`;
  };
  setMembers(switcher.value);
  switcher.addEventListener('labcat:project', () => setMembers(switcher.value));
  switcher.addEventListener('change', () => {
    setMembers(switcher.value);
    if (PAGE === 'entries') {
      entriesPage.setProject(switcher.value);
    } else {
      location.assign(switcher.value ? `/ui?project=${switcher.value}` : '/ui');
    }
  });
}

// ---------- sign in ----------

function signInPage() {
  const form = $('#signin');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = $('#api-key');
    const error = $('#signin-error');
    error.textContent = '';
    const result = await api('POST', '/ui/sign_in', { api_key: input.value.trim() });
    input.value = '';
    if (result.ok) {
      location.reload();
    } else {
      error.textContent = result.status === 401
        ? 'That key is not valid: unknown, revoked or expired.'
        : problem(result);
      input.focus();
    }
  });
}

// ---------- entries ----------

const entriesPage = {
  cursors: [null],
  page: 0,
  source: null,
  refreshTimer: null,

  filters() {
    return {
      project: params.get('project') || '',
      q: params.get('q') || '',
      type: params.get('type') || '',
      status: params.get('status') || '',
      from: params.get('from') || '',
      to: params.get('to') || '',
      meta: params.get('meta') || '',
      sort: params.get('sort') || '-last_updated',
      limit: params.get('limit') || '25',
    };
  },

  /** The search's query parameters (without paging and sorting). */
  query(filters) {
    const query = new URLSearchParams();
    if (filters.project) query.set('project_id', filters.project);
    if (filters.q.trim()) query.set('q', filters.q.trim());
    if (filters.type) query.set('data_type', filters.type);
    if (filters.status) query.set('status', filters.status);
    if (filters.from) query.set('upload_datetime_min', `${filters.from} 00:00:00`);
    if (filters.to) query.set('upload_datetime_max', `${filters.to} 23:59:59`);
    for (const line of filters.meta.split('\n')) {
      const text = line.trim().replace(/^metadata\./, '');
      const at = text.indexOf('=');
      if (at > 0) query.append(`metadata.${text.slice(0, at).trim()}`, text.slice(at + 1).trim());
    }
    return query;
  },

  render() {
    const f = this.filters();
    const main = $('#main');
    main.replaceChildren(
      h('h1', {}, 'Entries'),
      h('form', { id: 'filters', class: 'card filters', role: 'search', 'aria-label': 'Find entries', onsubmit: (e) => { e.preventDefault(); this.apply(); } },
        field('Search', h('input', { id: 'f-q', type: 'search', name: 'q', value: f.q, placeholder: 'words in names and metadata' })),
        field('Type', select({ id: 'f-type' }, [['', 'Any type'], ...TYPES.map((t) => [t, t])], f.type)),
        field('Status', select({ id: 'f-status' }, [['', 'Any status'], ...STATUSES.map((s) => [s, s])], f.status)),
        field('Uploaded from', h('input', { id: 'f-from', type: 'date', value: f.from })),
        field('Uploaded to', h('input', { id: 'f-to', type: 'date', value: f.to })),
        field('Sort', select({ id: 'f-sort' }, SORTS, f.sort)),
        field('Rows per page', select({ id: 'f-limit' }, [['25', '25'], ['50', '50'], ['100', '100']], f.limit)),
        h('div', { class: 'field wide' },
          h('label', { for: 'f-meta' }, 'Metadata filters'),
          h('textarea', { id: 'f-meta', rows: '2', 'aria-describedby': 'f-meta-hint', value: f.meta }),
          h('span', { id: 'f-meta-hint', class: 'muted' },
            'One per line, as in the API: operator=jdoe, temperature[gt]=700 K, instrument.name[prefix]=PHI')),
        h('div', { class: 'actions wide' },
          h('button', { type: 'submit' }, 'Apply filters'),
          h('button', { type: 'button', class: 'secondary', onclick: () => this.clear() }, 'Clear filters'))),
      h('p', { id: 'result-error', class: 'error', role: 'alert' }),
      h('div', { class: 'layout' },
        h('aside', { class: 'facets', 'aria-labelledby': 'facets-h' }, h('h2', { id: 'facets-h' }, 'Counts'), h('div', { id: 'facets' })),
        h('section', { 'aria-labelledby': 'results-h' },
          h('h2', { id: 'results-h' }, 'Results'),
          h('p', { id: 'count', role: 'status' }),
          h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Entry table' },
            h('table', { id: 'entries' },
              h('caption', { class: 'visually-hidden' }, 'Data entries found'),
              h('thead', {}, h('tr', {}, ['Name', 'Type', 'Status', 'Size (GB)', 'Project', 'Last updated'].map((name) => h('th', { scope: 'col' }, name)))),
              h('tbody', { id: 'rows' }))),
          h('nav', { class: 'pager', 'aria-label': 'Pages' },
            h('button', { type: 'button', id: 'prev', class: 'secondary', onclick: () => this.turn(-1) }, 'Previous page'),
            h('span', { id: 'page-no' }),
            h('button', { type: 'button', id: 'next', class: 'secondary', onclick: () => this.turn(1) }, 'Next page')))));
  },

  readForm() {
    const value = (id) => $(id).value;
    const next = new URLSearchParams();
    const f = { project: params.get('project') || '', q: value('#f-q'), type: value('#f-type'), status: value('#f-status'),
      from: value('#f-from'), to: value('#f-to'), meta: value('#f-meta'), sort: value('#f-sort'), limit: value('#f-limit') };
    for (const [name, v] of Object.entries(f)) {
      if (v && !(name === 'sort' && v === '-last_updated') && !(name === 'limit' && v === '25')) next.set(name, v);
    }
    return next;
  },

  apply() {
    const next = this.readForm();
    for (const name of [...params.keys()]) params.delete(name);
    for (const [name, v] of next) params.set(name, v);
    history.replaceState(null, '', `/ui${params.size ? `?${params}` : ''}`);
    this.cursors = [null];
    this.page = 0;
    this.load();
  },

  clear() {
    const project = params.get('project');
    for (const name of [...params.keys()]) params.delete(name);
    if (project) params.set('project', project);
    history.replaceState(null, '', `/ui${params.size ? `?${params}` : ''}`);
    this.render();
    this.cursors = [null];
    this.page = 0;
    this.load();
  },

  setProject(id) {
    if (id) params.set('project', id); else params.delete('project');
    this.apply();
    this.listen();
  },

  turn(step) {
    const page = this.page + step;
    if (page < 0 || page >= this.cursors.length || (step > 0 && !this.cursors[page])) return;
    this.page = page;
    this.load();
  },

  async load(changed) {
    const started = performance.now();
    timings.entriesPainted = undefined;
    const f = this.filters();
    const query = this.query(f);
    const facetQuery = new URLSearchParams(query);
    facetQuery.append('facet', 'char_source_type');
    facetQuery.append('facet', 'pipeline_status');
    query.set('order_by', f.sort);
    query.set('limit', f.limit);
    const cursor = this.cursors[this.page];
    if (cursor) query.set('cursor', cursor);
    const [found, facets] = await Promise.all([
      api('GET', `/data_entries?${query}`),
      api('GET', `/data_entries/facets?${facetQuery}`),
    ]);
    const error = $('#result-error');
    if (!found.ok) {
      error.textContent = `The search failed: ${problem(found)}`;
      $('#rows').replaceChildren();
      $('#count').textContent = '';
      return;
    }
    error.textContent = '';
    const fetched = performance.now();
    this.rows(found.data, changed);
    const link = found.headers.get('link') || '';
    const next = /<([^>]+)>;\s*rel="?next"?/.exec(link);
    this.cursors[this.page + 1] = next ? new URL(next[1], location.href).searchParams.get('cursor') : null;
    this.cursors.length = this.page + 2;
    const total = found.headers.get('x-total-count');
    $('#count').textContent = total === null ? `${found.data.length} entries shown` : `${total} entries found`;
    $('#page-no').textContent = `Page ${this.page + 1}`;
    $('#prev').disabled = this.page === 0;
    $('#next').disabled = !this.cursors[this.page + 1];
    if (facets.ok) this.facets(facets.data);
    timings.entriesRender = performance.now() - fetched;
    // Until the frame with the rows is laid out and painted.
    requestAnimationFrame(() => setTimeout(() => { timings.entriesPainted = performance.now() - fetched; }));
    timings.entriesLoad = performance.now() - started;
    timings.entriesRows = found.data.length;
    body.dataset.rendered = String((Number(body.dataset.rendered) || 0) + 1);
  },

  rows(entries, changed) {
    const rows = document.createDocumentFragment();
    for (const entry of entries) {
      rows.append(h('tr', { 'data-id': entry.data_id, class: changed?.has(entry.data_id) ? 'flash' : null },
        h('td', {}, h('a', { href: `/ui/entries/${entry.data_id}` }, entry.raw_name)),
        h('td', {}, entry.char_source_type),
        h('td', {}, h('span', { class: 'badge' }, entry.pipeline_status)),
        h('td', { class: 'num' }, entry.raw_size_gb ?? ''),
        h('td', {}, projectName(entry.project_id)),
        h('td', {}, when(entry.last_updated))));
    }
    if (!entries.length) rows.append(h('tr', {}, h('td', { colspan: '6' }, 'No entries match.')));
    $('#rows').replaceChildren(rows);
  },

  facets(data) {
    const names = { char_source_type: ['Type', '#f-type'], pipeline_status: ['Status', '#f-status'] };
    const out = [];
    for (const [facet, values] of Object.entries(data)) {
      const [title, control] = names[facet] || [facet, null];
      out.push(h('h3', {}, title), h('ul', {}, values.map(({ value, count }) => h('li', {},
        h('button', { type: 'button', 'aria-label': `Only ${title.toLowerCase()} ${value} (${count})`, onclick: () => { $(control).value = value; this.apply(); } }, String(value)),
        h('span', { class: 'muted' }, count)))));
    }
    $('#facets').replaceChildren(...out);
  },

  /** Reloads the page shown when others change entries (a burst is one reload). */
  listen() {
    this.source?.close();
    timings.feedOpen = false;
    const changed = new Set();
    this.source = follow(params.get('project') || '', (event) => {
      if (!String(event.type).startsWith('entry.')) return;
      if (event.data_id) changed.add(event.data_id);
      clearTimeout(this.refreshTimer);
      this.refreshTimer = setTimeout(() => {
        const ids = new Set(changed);
        changed.clear();
        this.load(ids);
        announce(`${ids.size} entr${ids.size === 1 ? 'y' : 'ies'} changed by others; the table is up to date.`);
      }, 150);
    }, () => this.load());
  },

  start() {
    this.render();
    this.load();
    this.listen();
  },
};

// ---------- one entry ----------

/** RFC 7396 merge patch turning `before` into `after` (null deletes a key). */
function mergeDiff(before, after) {
  const patch = {};
  for (const key of Object.keys(before)) if (!(key in after)) patch[key] = null;
  for (const [key, value] of Object.entries(after)) {
    if (isObject(value) && isObject(before[key]) && !isQuantity(value)) {
      const inner = mergeDiff(before[key], value);
      if (Object.keys(inner).length) patch[key] = inner;
    } else if (!same(before[key], value)) {
      patch[key] = clone(value);
    }
  }
  return patch;
}

function mergeApply(target, patch) {
  if (!isObject(patch)) return clone(patch);
  const out = isObject(target) ? clone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergeApply(out[key], value);
  }
  return out;
}

/** `[path, before, after]` for every leaf that differs between two documents. */
function leafChanges(before, after, path = []) {
  if (isObject(before) && isObject(after) && !isQuantity(before) && !isQuantity(after)) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    return [...keys].flatMap((key) => leafChanges(before[key], after[key], [...path, key]));
  }
  return same(before, after) ? [] : [[path.join('.'), before, after]];
}

const FIELDS = [
  ['raw_name', 'Raw name'], ['char_source_type', 'Char source type'], ['pipeline_status', 'Pipeline status'],
  ['physical_sample_id', 'Physical sample id'], ['raw_size_gb', 'Raw size (GB)'],
];

const entryPage = {
  id: body.dataset.id,
  base: null, // the entry as the server last said
  etag: null,
  draft: null, // what the form holds
  errors: {},

  async fetch() {
    const result = await api('GET', `/data_entries/${this.id}`);
    if (!result.ok) return null;
    return { entry: result.data, etag: result.headers.get('etag') };
  },

  adopt({ entry, etag }) {
    this.base = entry;
    this.etag = etag;
    this.draft = clone(entry);
    this.errors = {};
    for (const error of entry.metadata_errors || []) this.errors[`metadata${error.path || ''}`] = error.message;
  },

  async start() {
    const loaded = await this.fetch();
    if (!loaded) {
      $('#main').replaceChildren(h('h1', {}, 'Not found'), h('p', {}, 'There is no data entry here, or you cannot see it.'));
      return;
    }
    this.adopt(loaded);
    // The switcher shows the entry's project (and offers its members page).
    const switcher = $('#project-switcher');
    if (switcher && projects.some((p) => p.id === this.base.project_id)) {
      switcher.value = this.base.project_id;
      switcher.dispatchEvent(new CustomEvent('labcat:project'));
    }
    this.render();
    this.history();
    follow(this.base.project_id, (event) => this.onEvent(event), () => this.catchUp());
  },

  dirty() {
    return Object.keys(this.changes()).length > 0;
  },

  /** The PATCH body of what the user changed. */
  changes() {
    const patch = {};
    for (const [name] of FIELDS) {
      if (!same(this.base[name] ?? null, this.draft[name] ?? null)) patch[name] = this.draft[name] ?? null;
    }
    const metadata = mergeDiff(this.base.metadata, this.draft.metadata);
    if (Object.keys(metadata).length) patch.metadata = metadata;
    return patch;
  },

  render() {
    const entry = this.base;
    const draft = this.draft;
    const typed = FIELDS.map(([name, label]) => {
      let control;
      const attrs = { id: `f-${name}`, name, 'aria-describedby': `err-${name}`, oninput: (e) => this.setField(name, e.target) , onchange: (e) => this.setField(name, e.target) };
      if (name === 'char_source_type') control = select(attrs, TYPES.map((t) => [t, t]), draft[name]);
      else if (name === 'pipeline_status') control = select(attrs, STATUSES.map((s) => [s, s]), draft[name]);
      else if (name === 'raw_size_gb') control = h('input', { ...attrs, type: 'number', step: 'any', min: '0', value: draft[name] ?? '' });
      else control = h('input', { ...attrs, type: 'text', value: draft[name] ?? '', required: name === 'raw_name' });
      return h('div', { class: 'field' }, h('label', { for: `f-${name}` }, label), control,
        h('span', { id: `err-${name}`, class: 'error' }, this.errors[name] || ''));
    });
    const valid = entry.metadata_valid;
    $('#main').replaceChildren(
      h('h1', { id: 'entry-title' }, entry.raw_name),
      h('p', { class: 'muted' }, `In ${projectName(entry.project_id)} · revision ${entry.revision}`),
      h('div', { id: 'conflict' }),
      h('form', { id: 'entry-form', 'aria-labelledby': 'entry-title', onsubmit: (e) => { e.preventDefault(); this.save(); } },
        h('div', { class: 'entry-grid' },
          h('section', { class: 'card', 'aria-labelledby': 'fields-h' },
            h('h2', { id: 'fields-h' }, 'Fields'),
            h('div', { class: 'typed' }, typed),
            h('dl', { class: 'facts' },
              h('dt', {}, 'Data id'), h('dd', {}, entry.data_id),
              h('dt', {}, 'Project'), h('dd', {}, projectName(entry.project_id)),
              h('dt', {}, 'Created by'), h('dd', {}, entry.user_id),
              h('dt', {}, 'Uploaded'), h('dd', {}, when(entry.upload_datetime)),
              h('dt', {}, 'Last updated'), h('dd', { id: 'last-updated' }, when(entry.last_updated)),
              h('dt', {}, 'Revision'), h('dd', { id: 'revision' }, entry.revision),
              valid === null || valid === undefined ? null : [h('dt', {}, 'Metadata schema'), h('dd', {}, valid ? 'valid' : 'not valid')])),
          h('section', { class: 'card', 'aria-labelledby': 'metadata-h' },
            h('h2', { id: 'metadata-h' }, 'Metadata'),
            h('p', { id: 'err-metadata', class: 'error' }, this.errors.metadata || ''),
            h('div', { class: 'tree', id: 'tree' }),
            h('h3', {}, h('label', { for: 'metadata-json' }, 'Metadata as JSON')),
            h('textarea', { id: 'metadata-json', class: 'json', spellcheck: 'false', 'aria-describedby': 'json-error' }),
            h('div', { class: 'actions' },
              h('button', { type: 'button', class: 'secondary', onclick: () => this.applyJson() }, 'Apply JSON'),
              h('span', { id: 'json-error', class: 'error', role: 'alert' })))),
        h('div', { class: 'actions' },
          h('button', { type: 'submit', id: 'save' }, 'Save'),
          h('button', { type: 'button', class: 'secondary', onclick: () => { this.adopt({ entry: this.base, etag: this.etag }); this.render(); } }, 'Discard changes'),
          h('span', { id: 'save-status', role: 'status' }))),
      h('section', { class: 'card', 'aria-labelledby': 'history-h' },
        h('h2', { id: 'history-h' }, 'History'),
        h('ol', { class: 'timeline', id: 'history' })));
    this.renderTree();
  },

  setField(name, control) {
    let value = control.value;
    if (name === 'raw_size_gb') value = value === '' ? null : Number(value);
    else if (name === 'physical_sample_id') value = value.trim() === '' ? null : value.trim();
    this.draft[name] = value;
  },

  // -- the metadata tree --

  renderTree() {
    $('#tree').replaceChildren(this.treeLevel(this.draft.metadata, []));
    const json = $('#metadata-json');
    if (document.activeElement !== json) json.value = JSON.stringify(this.draft.metadata, null, 2);
  },

  changedTree() {
    this.renderTree();
  },

  at(path) {
    return path.reduce((node, key) => node?.[key], this.draft.metadata);
  },

  put(path, value) {
    const parent = this.at(path.slice(0, -1));
    parent[path[path.length - 1]] = value;
    const json = $('#metadata-json');
    if (document.activeElement !== json) json.value = JSON.stringify(this.draft.metadata, null, 2);
  },

  treeLevel(object, path) {
    const label = path.length ? path.join('.') : 'the metadata';
    const list = h('ul', {}, Object.keys(object).map((key) => this.treeNode(key, object[key], [...path, key])));
    const newKey = h('input', { type: 'text', 'aria-label': `New key in ${label}`, placeholder: 'new key' });
    const add = () => {
      const key = newKey.value.trim();
      if (!key || key in object) { newKey.focus(); return; }
      object[key] = '';
      this.changedTree();
      document.querySelector(`[data-path="${CSS.escape(JSON.stringify([...path, key]))}"]`)?.focus();
    };
    newKey.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); add(); } });
    return h('div', {}, list, h('div', { class: 'add-key' }, newKey,
      h('button', { type: 'button', class: 'secondary', 'aria-label': `Add key to ${label}`, onclick: add }, 'Add key')));
  },

  kindOf(value) {
    if (isQuantity(value)) return 'quantity';
    if (Array.isArray(value)) return 'list';
    if (isObject(value)) return 'object';
    if (value === null) return 'null';
    return typeof value === 'number' ? 'number' : typeof value === 'boolean' ? 'boolean' : 'text';
  },

  treeNode(key, value, path) {
    const name = path.join('.');
    const pointer = `metadata/${path.join('/')}`;
    const kind = this.kindOf(value);
    const controls = [];
    const dataPath = JSON.stringify(path);
    if (kind === 'text') {
      controls.push(h('input', { type: 'text', 'aria-label': `Value of ${name}`, 'data-path': dataPath, value, oninput: (e) => this.put(path, e.target.value) }));
    } else if (kind === 'number') {
      controls.push(h('input', { type: 'number', step: 'any', 'aria-label': `Value of ${name}`, 'data-path': dataPath, value: String(value),
        oninput: (e) => { if (e.target.value !== '' && !Number.isNaN(Number(e.target.value))) this.put(path, Number(e.target.value)); } }));
    } else if (kind === 'boolean') {
      controls.push(select({ 'aria-label': `Value of ${name}`, 'data-path': dataPath, onchange: (e) => this.put(path, e.target.value === 'true') },
        [['true', 'true'], ['false', 'false']], String(value)));
    } else if (kind === 'quantity') {
      controls.push(
        h('input', { type: 'number', step: 'any', 'aria-label': `Value of ${name}`, 'data-path': dataPath, value: String(value.value),
          oninput: (e) => { if (e.target.value !== '' && !Number.isNaN(Number(e.target.value))) this.at(path).value = Number(e.target.value); this.put(path, this.at(path)); } }),
        h('input', { type: 'text', class: 'unit', 'aria-label': `Unit of ${name}`, value: value.unit,
          oninput: (e) => { this.at(path).unit = e.target.value; this.put(path, this.at(path)); } }));
    } else if (kind === 'list') {
      controls.push(h('input', { type: 'text', 'aria-label': `Value of ${name} (JSON list)`, 'data-path': dataPath, value: JSON.stringify(value),
        onchange: (e) => { try { const v = JSON.parse(e.target.value); if (Array.isArray(v)) this.put(path, v); } catch { e.target.setAttribute('aria-invalid', 'true'); } } }));
    } else if (kind === 'null') {
      controls.push(h('span', { class: 'muted' }, 'null'));
    }
    const kinds = [['text', 'text'], ['number', 'number'], ['boolean', 'true/false'], ['quantity', 'quantity'], ['object', 'object'], ['list', 'list']];
    if (kind === 'null') kinds.push(['null', 'null']);
    const convert = (to) => {
      const scalar = isObject(value) || Array.isArray(value) ? '' : value;
      const next = { text: String(scalar ?? ''), number: Number(scalar) || 0, boolean: scalar === true || scalar === 'true',
        quantity: { value: Number(scalar) || 0, unit: '' }, object: {}, list: [], null: null }[to];
      this.put(path, next);
      this.changedTree();
    };
    const error = this.errors[pointer] || this.errors[`metadata/${path.join('.')}`];
    return h('li', {},
      h('div', { class: 'node' },
        h('span', { class: 'key' }, key),
        ...controls,
        select({ 'aria-label': `Kind of ${name}`, onchange: (e) => convert(e.target.value) }, kinds, kind),
        h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${name}`, onclick: () => {
          delete this.at(path.slice(0, -1))[key];
          this.changedTree();
        } }, 'Delete')),
      error ? h('p', { class: 'error' }, error) : null,
      kind === 'object' ? this.treeLevel(value, path) : null);
  },

  applyJson() {
    const out = $('#json-error');
    try {
      const value = JSON.parse($('#metadata-json').value);
      if (!isObject(value)) throw new Error('the metadata must be a JSON object');
      this.draft.metadata = value;
      out.textContent = '';
      this.renderTree();
    } catch (error) {
      out.textContent = `Not applied: ${error.message}`;
    }
  },

  // -- saving, conflicts, live changes --

  async save(patch = this.changes()) {
    const status = $('#save-status');
    if (!Object.keys(patch).length) {
      status.textContent = 'Nothing to save.';
      return;
    }
    status.textContent = 'Saving…';
    const result = await api('PATCH', `/data_entries/${this.id}`, patch, { 'If-Match': this.etag });
    if (result.ok) {
      this.adopt({ entry: result.data, etag: result.headers.get('etag') });
      this.render();
      $('#save-status').textContent = `Saved: revision ${this.base.revision}.`;
      this.history();
      return;
    }
    if (result.status === 412) {
      status.textContent = '';
      await this.conflict(patch);
      return;
    }
    if (result.status === 422 && result.data?.errors) {
      this.errors = {};
      for (const error of result.data.errors) {
        const key = error.field?.startsWith('metadata') && error.path !== undefined ? `metadata${error.path}` : error.field;
        this.errors[key] = error.message;
      }
      const keepDraft = this.draft;
      this.render();
      this.draft = keepDraft;
      $('#save-status').textContent = `Not saved: ${problem(result)}`;
      return;
    }
    status.textContent = result.status === 403
      ? 'Not saved: you may read this entry but not change it.'
      : `Not saved: ${problem(result)}`;
  },

  /** Someone else changed the entry since it was loaded: say what they changed, then let
   * the user reapply their own changes on top, or drop them. Nothing is overwritten. */
  async conflict(mine) {
    const current = await this.fetch();
    const box = $('#conflict');
    if (!current) {
      box.replaceChildren(h('div', { class: 'notice', role: 'alert' }, 'This entry was deleted or moved out of your reach meanwhile.'));
      return;
    }
    const theirs = [
      ...FIELDS.map(([name, label]) => [label, this.base[name], current.entry[name]]).filter(([, a, b]) => !same(a ?? null, b ?? null)),
      ...leafChanges(this.base.metadata, current.entry.metadata).map(([path, a, b]) => [`metadata.${path}`, a, b]),
    ];
    const log = await api('GET', `/data_entries/${this.id}/history`);
    const who = log.ok
      ? [...new Set(log.data.filter((r) => r.revision > this.base.revision).map((r) => r.user_id))].join(', ')
      : 'someone';
    const diffList = (rows) => h('ul', { class: 'diff' }, rows.map(([name, a, b]) =>
      h('li', {}, `${name}: `, h('del', {}, show(a)), ' → ', h('ins', {}, show(b)))));
    const minePretty = [
      ...FIELDS.filter(([name]) => name in mine).map(([name, label]) => [label, this.base[name], mine[name]]),
      ...(mine.metadata ? leafChanges(this.base.metadata, mergeApply(this.base.metadata, mine.metadata)).map(([p, a, b]) => [`metadata.${p}`, a, b]) : []),
    ];
    box.replaceChildren(h('div', { class: 'notice', role: 'alert', id: 'conflict-notice' },
      h('h2', {}, 'Someone else changed this entry'),
      h('p', {}, `While you were editing, ${who || 'someone'} saved revision ${current.entry.revision} (you started from revision ${this.base.revision}). Nothing of yours was saved and nothing of theirs was overwritten.`),
      h('h3', {}, 'What they changed'), theirs.length ? diffList(theirs) : h('p', {}, 'Nothing you can see.'),
      h('h3', {}, 'Your changes'), diffList(minePretty),
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: () => { box.replaceChildren(); this.rebase(current, mine); this.save(); } }, 'Reapply my changes'),
        h('button', { type: 'button', class: 'secondary', onclick: () => { this.adopt(current); this.render(); this.history(); announce('Your changes were discarded.'); } }, 'Discard my changes'))));
    box.querySelector('button').focus();
  },

  /** The user's changes `mine`, on top of the current entry. */
  rebase(current, mine) {
    this.adopt(current);
    for (const [name] of FIELDS) if (name in mine) this.draft[name] = mine[name];
    if (mine.metadata) this.draft.metadata = mergeApply(this.draft.metadata, mine.metadata);
    this.render();
  },

  /** What changed between loading the page and the feed opening. */
  async catchUp() {
    const loaded = await this.fetch();
    if (loaded && loaded.entry.revision > this.base.revision) {
      this.onEvent({ type: 'entry.updated', data_id: this.id, revision: loaded.entry.revision, actor: {} });
    }
  },

  async onEvent(event) {
    if (event.data_id !== this.id || (event.revision && event.revision <= this.base.revision && event.type !== 'entry.deleted')) return;
    if (event.type === 'entry.deleted') {
      $('#conflict').replaceChildren(h('div', { class: 'notice', role: 'alert' }, `This entry was deleted by ${event.actor?.user_id || 'someone'}.`));
      return;
    }
    const actor = event.actor?.user_id || 'someone';
    // A save already ran into this change: its notice says what they changed, and stays.
    if ($('#conflict-notice')) return;
    if (this.dirty()) {
      $('#conflict').replaceChildren(h('div', { class: 'notice', role: 'status' },
        `${actor} changed this entry (revision ${event.revision ?? 'new'}). Your unsaved changes are kept; saving will show you what they changed.`));
      return;
    }
    const loaded = await this.fetch();
    if (!loaded) return;
    this.adopt(loaded);
    this.render();
    this.history();
    announce(`${actor} changed this entry; it now shows revision ${this.base.revision}.`);
  },

  async history() {
    const result = await api('GET', `/data_entries/${this.id}/history`);
    const list = $('#history');
    if (!list) return;
    if (!result.ok) {
      list.replaceChildren(h('li', {}, `The history could not be read: ${problem(result)}`));
      return;
    }
    list.replaceChildren(...result.data.map((record) => {
      const rows = [];
      for (const [name, change] of Object.entries(record.changes || {})) {
        if (name === 'metadata' && isObject(change) && !('before' in change && 'after' in change)) {
          for (const [key, c] of Object.entries(change)) rows.push([`metadata.${key}`, c.before, c.after]);
        } else if (isObject(change) && 'after' in change) {
          rows.push([name, change.before, change.after]);
        }
      }
      return h('li', {},
        h('strong', {}, `Revision ${record.revision}: ${record.operation}`), ' ',
        h('span', { class: 'muted' }, `${when(record.changed_at)} by ${record.user_id}${record.key_id ? ` (key ${record.key_id.slice(0, 8)})` : ''}`),
        rows.length ? h('ul', { class: 'diff' }, rows.map(([name, a, b]) =>
          h('li', {}, `${name}: `, h('del', {}, show(a)), ' → ', h('ins', {}, show(b))))) : null);
    }));
  },
};

// ---------- API keys ----------

const keysPage = {
  async start() {
    const main = $('#main');
    main.replaceChildren(
      h('h1', {}, 'API keys'),
      h('form', { id: 'new-key', class: 'card', 'aria-labelledby': 'new-key-h', onsubmit: (e) => { e.preventDefault(); this.create(); } },
        h('h2', { id: 'new-key-h' }, 'Create a key'),
        h('div', { class: 'filters' },
          field('Key name', h('input', { id: 'k-name', type: 'text', required: true })),
          h('fieldset', {}, h('legend', {}, 'Scopes'),
            h('label', {}, h('input', { type: 'checkbox', id: 'k-read', checked: true }), ' read'), ' ',
            h('label', {}, h('input', { type: 'checkbox', id: 'k-write' }), ' write')),
          field('Expires in (days)', h('input', { id: 'k-days', type: 'number', min: '1', step: '1' }), 'empty: never')),
        h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create key')),
        h('p', { id: 'k-error', class: 'error', role: 'alert' }),
        h('div', { id: 'k-secret' })),
      h('h2', {}, 'Your keys'),
      h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Key table' },
        h('table', {},
          h('caption', { class: 'visually-hidden' }, 'Your API keys'),
          h('thead', {}, h('tr', {}, ['Name', 'Prefix', 'Scopes', 'Status', 'Created', 'Expires', 'Last used', 'Action'].map((n) => h('th', { scope: 'col' }, n)))),
          h('tbody', { id: 'key-rows' }))));
    await this.load();
  },

  async load() {
    const result = await api('GET', '/api_keys');
    const rows = $('#key-rows');
    if (!result.ok) {
      rows.replaceChildren(h('tr', {}, h('td', { colspan: '8' }, problem(result))));
      return;
    }
    rows.replaceChildren(...result.data.filter((k) => k.user_id === ME.user).map((key) => h('tr', {},
      h('td', {}, key.name, key.id === ME.key ? h('span', { class: 'muted' }, ' (this session)') : null),
      h('td', {}, h('code', {}, key.prefix)),
      h('td', {}, key.scopes.join(', ')),
      h('td', {}, key.status),
      h('td', {}, when(key.created_at)),
      h('td', {}, key.expires_at ? when(key.expires_at) : 'never'),
      h('td', {}, when(key.last_used_at)),
      h('td', {}, key.status === 'active'
        ? h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke key ${key.name} (${key.prefix})`, onclick: () => this.revoke(key) }, 'Revoke')
        : ''))));
  },

  async create() {
    const scopes = [['read', '#k-read'], ['write', '#k-write']].filter(([, id]) => $(id).checked).map(([s]) => s);
    const request = { name: $('#k-name').value.trim(), scopes };
    const days = Number($('#k-days').value);
    if (days > 0) request.expires_at = new Date(Date.now() + days * 86400000).toISOString().replace(/\.\d+Z$/, 'Z');
    const result = await api('POST', '/api_keys', request);
    const out = $('#k-secret');
    if (!result.ok) {
      $('#k-error').textContent = problem(result);
      return;
    }
    $('#k-error').textContent = '';
    $('#k-name').value = '';
    out.replaceChildren(h('div', { class: 'notice', role: 'status' },
      h('p', {}, `Key "${result.data.name}" was created. Copy it now: it is shown only this once, and labcat keeps only its hash.`),
      field('New key', h('input', { id: 'k-new-secret', class: 'secret', readonly: true, value: result.data.key })),
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', onclick: () => out.replaceChildren() }, 'Done, hide it'))));
    $('#k-new-secret').select();
    await this.load();
  },

  async revoke(key) {
    const result = await api('DELETE', `/api_keys/${key.id}`);
    if (!result.ok && result.status !== 401) {
      $('#k-error').textContent = problem(result);
      return;
    }
    if (key.id === ME.key) {
      location.assign('/ui'); // this session's key: the session has ended with it
      return;
    }
    announce(`Key ${key.name} was revoked.`);
    await this.load();
  },
};

// ---------- members ----------

const membersPage = {
  id: body.dataset.id,
  role: null,

  async start() {
    const [project, members] = await Promise.all([api('GET', `/projects/${this.id}`), api('GET', `/projects/${this.id}/members`)]);
    const main = $('#main');
    if (!project.ok || !members.ok) {
      main.replaceChildren(h('h1', {}, 'Members'), h('p', { class: 'error' }, problem(project.ok ? members : project)));
      return;
    }
    this.role = project.data.role;
    const admin = this.role === 'admin';
    const roles = [['viewer', 'viewer'], ['editor', 'editor'], ['admin', 'admin']];
    main.replaceChildren(
      h('h1', {}, `Members of ${project.data.name}`),
      h('p', { class: 'muted' }, admin ? 'You are an admin here: you may add members and change their roles.' : `Your role here is ${this.role}; only admins change members.`),
      h('p', { id: 'm-error', class: 'error', role: 'alert' }),
      h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Member table' },
        h('table', {},
          h('caption', { class: 'visually-hidden' }, 'Project members'),
          h('thead', {}, h('tr', {}, ['User', 'Role', 'Action'].map((n) => h('th', { scope: 'col' }, n)))),
          h('tbody', {}, members.data.map((m) => h('tr', {},
            h('td', {}, m.user_id),
            h('td', {}, admin
              ? select({ 'aria-label': `Role of ${m.user_id}`, onchange: (e) => this.put(m.user_id, e.target.value) }, roles, m.role)
              : m.role),
            h('td', {}, admin || m.user_id === ME.user
              ? h('button', { type: 'button', class: 'danger', 'aria-label': m.user_id === ME.user ? 'Leave the project' : `Remove ${m.user_id}`, onclick: () => this.remove(m.user_id) }, m.user_id === ME.user ? 'Leave' : 'Remove')
              : '')))))),
      admin ? h('form', { class: 'card', 'aria-labelledby': 'add-h', onsubmit: (e) => { e.preventDefault(); this.put($('#m-user').value.trim(), $('#m-role').value); } },
        h('h2', { id: 'add-h' }, 'Add a member'),
        h('div', { class: 'filters' },
          field('User id', h('input', { id: 'm-user', type: 'text', required: true })),
          field('Role', select({ id: 'm-role' }, roles, 'viewer'))),
        h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Add member'))) : null);
  },

  async put(user, role) {
    const result = await api('PUT', `/projects/${this.id}/members/${encodeURIComponent(user)}`, { role });
    if (!result.ok) { $('#m-error').textContent = problem(result); return; }
    announce(`${user} is now ${role}.`);
    await this.start();
  },

  async remove(user) {
    const result = await api('DELETE', `/projects/${this.id}/members/${encodeURIComponent(user)}`);
    if (!result.ok) { $('#m-error').textContent = problem(result); return; }
    announce(`${user} was removed.`);
    await this.start();
  },
};

// ---------- start ----------

if (PAGE === 'signin') {
  signInPage();
} else {
  const pages = { entries: entriesPage, entry: entryPage, keys: keysPage, members: membersPage };
  const current = PAGE === 'members' ? body.dataset.id : params.get('project');
  frame(current).then(() => pages[PAGE]?.start());
}
