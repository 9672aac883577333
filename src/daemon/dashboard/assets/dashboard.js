// The servio dashboard: one EventSource on /v1/events (the daemon pushes the stack's
// status on every change and once a second), a fetch stream of log lines, and buttons that
// POST the CLI's verbs with the admin token. No library: the DOM is updated in place, keyed
// by service and instance id, so focus and scroll survive the updates.
'use strict';

const TOKEN_KEY = 'servio-admin-token';
const WINDOW_MS = 5 * 60 * 1000;
const MAX_LOG_LINES = 2000;

// The token arrives in the URL fragment (never sent to a server, never in a log), is kept
// for this tab only, and leaves the address bar at once.
const token = (() => {
  const found = /(?:^#|&)token=([0-9A-Za-z]+)/.exec(location.hash);
  if (found) {
    sessionStorage.setItem(TOKEN_KEY, found[1]);
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
})();

const $ = (id) => document.getElementById(id);
const state = { status: null, cpu: {}, series: new Map(), busy: false };

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// ---- formatting ----------------------------------------------------------------------

const HEALTH_CLASS = {
  healthy: 'h-ok', starting: 'h-wait', waiting: 'h-wait', restarting: 'h-wait', stopping: 'h-wait',
  unhealthy: 'h-bad', 'crash-looping': 'h-bad', failed: 'h-bad',
  exited: 'h-off', stopped: 'h-off',
};
const TROUBLE = new Set(['crash-looping', 'failed']);

function duration(ms) {
  if (ms == null) return '–';
  let s = Math.floor(ms / 1000);
  const parts = [[86400, 'd'], [3600, 'h'], [60, 'm']].flatMap(([unit, name]) => {
    const n = Math.floor(s / unit);
    s -= n * unit;
    return n ? [n + name] : [];
  });
  parts.push(s + 's');
  return parts.slice(0, 2).join(' ');
}
const bytes = (n) => n == null ? '–' : (n / 1048576).toFixed(1) + ' MiB';
const percent = (p) => p == null ? '–' : p.toFixed(1) + ' %';
const rate = (r) => r == null ? '–' : (r < 10 ? r.toFixed(2) : r.toFixed(0)) + '/s';
const millis = (m) => m == null ? '–' : (m < 10 ? m.toFixed(2) : m.toFixed(0)) + ' ms';

// ---- the live stream -----------------------------------------------------------------

function connect() {
  const events = new EventSource('/v1/events');
  events.addEventListener('open', () => setConn('live', 'live'));
  events.addEventListener('error', () => setConn('down', 'daemon unreachable — reconnecting…'));
  events.addEventListener('history', (e) => {
    const history = JSON.parse(e.data);
    state.series = new Map(history.routes.map((r) => [r.prefix, r]));
  });
  events.addEventListener('status', (e) => {
    const update = JSON.parse(e.data);
    state.status = update.status;
    state.cpu = update.cpu_percent || {};
    for (const route of update.routes) {
      const known = state.series.get(route.prefix);
      if (!known) { state.series.set(route.prefix, route); continue; }
      const last = known.points[known.points.length - 1];
      for (const point of route.points) {
        if (!last || point.at_ms > last.at_ms) known.points.push(point);
      }
      const oldest = Date.now() - WINDOW_MS;
      while (known.points.length && known.points[0].at_ms < oldest) known.points.shift();
    }
    render();
  });
}

function setConn(kind, text) {
  $('conn').dataset.state = kind;
  $('conn').textContent = text;
}

// ---- rendering -----------------------------------------------------------------------

function render() {
  const status = state.status;
  $('project').textContent = status.project;
  document.title = `${status.project} · servio`;
  renderAlert(status.services);
  renderServices(status.services);
  renderGraph(status.services);
  renderGateway(status);
  renderRoutes(status.routes);
  renderLogServices(status.services);
}

function renderAlert(services) {
  const troubled = services.flatMap((s) => s.instances
    .filter((i) => TROUBLE.has(i.health))
    .map((i) => `${i.id} is ${i.health}${i.last_exit ? ` (${i.last_exit})` : ''}`));
  $('alert').hidden = troubled.length === 0;
  $('alert').textContent = troubled.join('; ');
}

const COLUMNS = ['instance', 'health', 'pid', 'port', 'restarts', 'uptime', 'last exit', 'CPU', 'RSS', 'breaker', ''];

function renderServices(services) {
  const root = $('services');
  const seen = new Set();
  for (const service of services) {
    seen.add(service.name);
    let section = root.querySelector(`section[data-service="${CSS.escape(service.name)}"]`);
    if (!section) {
      section = serviceSection(service.name);
      root.append(section);
    }
    const troubled = service.instances.some((i) => TROUBLE.has(i.health));
    section.classList.toggle('trouble', troubled);
    const counts = {};
    for (const i of service.instances) counts[i.health] = (counts[i.health] || 0) + 1;
    const summary = Object.entries(counts).map(([h, n]) => `${n} ${h}`).join(', ') || 'no instances';
    section.querySelector('.meta').textContent =
      `v${service.version} · ${summary}${service.watching ? ' · watching' : ''}`;
    const scale = section.querySelector('input[type=number]');
    if (document.activeElement !== scale) scale.value = service.instances.length || 1;
    const body = section.querySelector('tbody');
    const ids = new Set(service.instances.map((i) => i.id));
    for (const row of [...body.rows]) if (!ids.has(row.dataset.instance)) row.remove();
    for (const instance of service.instances) {
      let row = body.querySelector(`tr[data-instance="${CSS.escape(instance.id)}"]`);
      if (!row) {
        row = instanceRow(service.name, instance.id);
        body.append(row);
      }
      fillRow(row, instance);
    }
  }
  for (const section of [...root.children]) if (!seen.has(section.dataset.service)) section.remove();
}

function serviceSection(name) {
  const scaleInput = el('input', { type: 'number', min: '0', max: '1000', 'aria-label': `instances of ${name}` });
  const verb = (action, label) => el('button', {
    type: 'button', 'data-action': action, 'data-service': name, text: label,
    onclick: () => act(`/v1/services/${encodeURIComponent(name)}/${action}`, null, `${label.toLowerCase()} ${name}`),
  });
  const scaleButton = el('button', {
    type: 'button', 'data-action': 'scale', 'data-service': name, text: 'Scale',
    onclick: () => act(`/v1/services/${encodeURIComponent(name)}/scale`,
      { replicas: Number(scaleInput.value) }, `scale ${name} to ${scaleInput.value}`),
  });
  const head = el('div', { class: 'service-head' },
    el('h3', { text: name }), el('span', { class: 'meta' }),
    el('div', { class: 'actions', role: 'group', 'aria-label': `${name} actions` },
      verb('restart', 'Restart'), verb('stop', 'Stop'), verb('start', 'Start'), scaleInput, scaleButton));
  const table = el('table', {},
    el('caption', { class: 'skip', text: `Instances of ${name}` }),
    el('thead', {}, el('tr', {}, ...COLUMNS.map((c) => el('th', { scope: 'col', text: c })))),
    el('tbody'));
  return el('section', { class: 'service', 'data-service': name, 'aria-label': name },
    head, el('div', { class: 'table-wrap' }, table));
}

function instanceRow(service, id) {
  const cells = ['id', 'health', 'pid num', 'port num', 'restarts num', 'uptime num', 'exit', 'cpu num', 'rss num', 'breaker']
    .map((c) => el('td', { class: c }));
  const restart = el('button', {
    type: 'button', 'data-action': 'restart-instance', 'data-instance': id, text: 'Restart',
    'aria-label': `restart instance ${id}`,
    onclick: () => act(`/v1/services/${encodeURIComponent(service)}/instances/${encodeURIComponent(id)}/restart`,
      null, `restart instance ${id}`),
  });
  return el('tr', { 'data-instance': id }, ...cells, el('td', {}, restart));
}

function fillRow(row, i) {
  const set = (cls, text) => { const cell = row.querySelector(`td.${cls}`); if (cell.textContent !== text) cell.textContent = text; };
  set('id', i.id);
  const health = row.querySelector('td.health');
  health.className = `health ${HEALTH_CLASS[i.health] || 'h-off'}`;
  set('health', i.health);
  set('pid', i.pid == null ? '–' : String(i.pid));
  set('port', i.port ? String(i.port) : '–');
  set('restarts', String(i.restarts));
  set('uptime', duration(i.uptime_ms));
  set('exit', i.last_exit || '–');
  set('cpu', percent(state.cpu[i.id]));
  set('rss', bytes(i.rss_bytes));
  set('breaker', i.breaker || 'closed');
  row.dataset.pid = i.pid == null ? '' : String(i.pid);
  row.dataset.health = i.health;
  row.querySelector('button').disabled = !token || state.busy || !i.managed || i.pid == null;
}

function renderGraph(services) {
  const byName = new Map(services.map((s) => [s.name, s]));
  const worst = (s) => {
    const healths = s.instances.map((i) => i.health);
    if (healths.some((h) => TROUBLE.has(h) || h === 'unhealthy')) return healths.find((h) => TROUBLE.has(h)) || 'unhealthy';
    if (healths.length && healths.every((h) => h === 'healthy')) return 'healthy';
    return healths[0] || 'stopped';
  };
  const depth = (name, seen = new Set()) => {
    const s = byName.get(name);
    if (!s || seen.has(name)) return 0;
    seen.add(name);
    return 1 + Math.max(0, ...(s.depends_on || []).map((d) => depth(d, seen)));
  };
  const items = [...services].sort((a, b) => depth(a.name) - depth(b.name) || a.name.localeCompare(b.name))
    .map((s) => {
      const h = worst(s);
      const deps = (s.depends_on || []).map((d) => `${d} (${byName.has(d) ? worst(byName.get(d)) : 'unknown'})`);
      return el('li', {}, el('span', { class: `health ${HEALTH_CLASS[h] || 'h-off'}`, text: `${s.name}: ${h}` }),
        el('span', { class: 'deps', text: deps.length ? ` ← needs ${deps.join(', ')}` : '' }));
    });
  $('graph').replaceChildren(...items);
  drawGraph(services, depth, (name) => (byName.has(name) ? worst(byName.get(name)) : 'unknown'));
}

// The dependency graph drawn: one column per depth (what needs nothing on the left), an
// line from each dependency to what needs it, each box coloured and labelled with the
// service's state (the list beside it says the same in words).
function drawGraph(services, depth, healthOf) {
  const W = 150, H = 34, GAP_X = 60, GAP_Y = 14;
  const columns = new Map();
  for (const s of [...services].sort((a, b) => a.name.localeCompare(b.name))) {
    const d = depth(s.name);
    if (!columns.has(d)) columns.set(d, []);
    columns.get(d).push(s.name);
  }
  const depths = [...columns.keys()].sort((a, b) => a - b);
  const at = new Map();
  depths.forEach((d, x) => columns.get(d).forEach((name, y) => at.set(name, { x: x * (W + GAP_X), y: y * (H + GAP_Y) })));
  const rows = Math.max(1, ...[...columns.values()].map((c) => c.length));
  const svg = document.createElementNS(SVG, 'svg');
  const width = Math.max(1, depths.length) * (W + GAP_X) - GAP_X + 2;
  const height = rows * (H + GAP_Y) - GAP_Y + 2;
  svg.setAttribute('viewBox', `-1 -1 ${width} ${height}`);
  svg.setAttribute('class', 'graph-drawing');
  svg.setAttribute('width', String(width));
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'dependency graph; the list below says the same in words');
  const node = (tag, attrs, text) => {
    const n = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
    if (text != null) n.textContent = text;
    return n;
  };
  for (const s of services) {
    const to = at.get(s.name);
    for (const dep of s.depends_on || []) {
      const from = at.get(dep);
      if (!from || !to) continue;
      svg.append(node('line', { class: 'edge', x1: from.x + W, y1: from.y + H / 2, x2: to.x, y2: to.y + H / 2 }));
    }
  }
  for (const [name, p] of at) {
    const health = healthOf(name);
    const g = node('g', { class: `box ${HEALTH_CLASS[health] || 'h-off'}`, 'data-service': name });
    g.append(node('rect', { x: p.x, y: p.y, width: W, height: H, rx: 5 }));
    g.append(node('text', { x: p.x + 8, y: p.y + 14, class: 'name' }, name));
    g.append(node('text', { x: p.x + 8, y: p.y + 28, class: 'state' }, health));
    svg.append(g);
  }
  $('graph-drawing').replaceChildren(svg);
}

function renderGateway(status) {
  const g = status.gateway;
  if (!g) return;
  const rows = [
    ['address', status.gateway_url || '–'], ['connections open', g.connections_open],
    ['connections total', g.connections_total], ['retries', g.retries],
    ['502 bad gateway', g.bad_gateway], ['503 unavailable', g.unavailable], ['504 timeout', g.gateway_timeout],
  ];
  $('gateway').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: String(v) })]));
}

function renderRoutes(routes) {
  const root = $('routes');
  if (!routes.length) return;
  $('no-routes')?.remove();
  for (const route of routes) {
    let figure = root.querySelector(`figure[data-route="${CSS.escape(route.prefix)}"]`);
    if (!figure) {
      figure = el('figure', { class: 'route', 'data-route': route.prefix },
        el('figcaption', {}, el('strong', { text: route.prefix }), el('span', { class: 'note', text: `→ ${route.service}` })),
        el('div', { class: 'legend' }, el('span', { class: 'a rate' }), el('span', { class: 'b errors' })),
        chart('requests and 5xx per second'),
        el('div', { class: 'legend' }, el('span', { class: 'a p50' }), el('span', { class: 'b p99' })),
        chart('p50 and p99 latency'),
        el('p', { class: 'note total' }));
      root.append(figure);
    }
    const points = state.series.get(route.prefix)?.points || [];
    const last = points[points.length - 1] || {};
    figure.querySelector('.rate').textContent = `requests ${rate(last.rate)}`;
    figure.querySelector('.errors').textContent = `5xx ${rate(last.error_rate)}`;
    figure.querySelector('.p50').textContent = `p50 ${millis(last.p50_ms)}`;
    figure.querySelector('.p99').textContent = `p99 ${millis(last.p99_ms)}`;
    figure.querySelector('.total').textContent = `${route.requests} requests, ${route.errors} 5xx since the gateway started`;
    figure.dataset.rate = String(last.rate ?? 0);
    figure.dataset.peakRate = String(Math.max(0, ...points.map((p) => p.rate)));
    const [rates, latency] = figure.querySelectorAll('svg');
    drawChart(rates, points, 'rate', 'error_rate');
    drawChart(latency, points, 'p50_ms', 'p99_ms');
  }
}

const SVG = 'http://www.w3.org/2000/svg';
function chart(label) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'chart');
  svg.setAttribute('viewBox', '0 0 300 56');
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  for (const cls of ['a', 'b']) {
    const line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('class', cls);
    line.setAttribute('vector-effect', 'non-scaling-stroke');
    svg.append(line);
  }
  return svg;
}

// Two series over the last five minutes on one scale (0 at the bottom, the peak at the top).
function drawChart(svg, points, a, b) {
  const now = Date.now();
  const peak = Math.max(1e-9, ...points.flatMap((p) => [p[a] || 0, p[b] || 0]));
  const xy = (key) => points.filter((p) => p[key] != null)
    .map((p) => `${(300 - (now - p.at_ms) / 1000).toFixed(1)},${(54 - (p[key] / peak) * 50).toFixed(1)}`).join(' ');
  const [first, second] = svg.querySelectorAll('polyline');
  first.setAttribute('points', xy(a));
  second.setAttribute('points', xy(b));
}

// ---- actions -------------------------------------------------------------------------

async function act(url, body, what) {
  if (!token) return;
  state.busy = true;
  setBusy(true);
  feedback(`${what}: running…`, 'busy');
  const began = performance.now();
  try {
    const answer = await fetch(url, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: body == null ? '' : JSON.stringify(body),
    });
    const took = ((performance.now() - began) / 1000).toFixed(1);
    const reply = await answer.json().catch(() => ({}));
    if (answer.ok) feedback(`${what}: done in ${took} s`, 'ok');
    else feedback(`${what} failed: ${reply.error?.message || answer.status}`, 'error');
  } catch (error) {
    feedback(`${what} failed: ${error.message}`, 'error');
  } finally {
    state.busy = false;
    setBusy(false);
  }
}

function setBusy(busy) {
  document.body.setAttribute('aria-busy', String(busy));
  for (const button of document.querySelectorAll('button[data-action]')) {
    if (button.dataset.action !== 'restart-instance') button.disabled = busy || !token;
  }
  if (state.status) renderServices(state.status.services);
}

function feedback(text, kind) {
  $('feedback').textContent = text;
  $('feedback').dataset.kind = kind;
}

// ---- logs ----------------------------------------------------------------------------

const logs = { lines: [], selected: null, paused: false, pending: [], abort: null, known: '' };

function renderLogServices(services) {
  const names = services.map((s) => s.name);
  if (names.join() === logs.known) return;
  logs.known = names.join();
  if (logs.selected == null) logs.selected = new Set(names);
  const boxes = names.map((name) => el('label', {},
    Object.assign(el('input', { type: 'checkbox', value: name, onchange: followLogs }), { checked: logs.selected.has(name) }),
    ` ${name} `));
  $('log-services').replaceChildren(el('legend', { text: 'Services' }), ...boxes);
  followLogs();
}

async function followLogs() {
  if (!token) return;
  logs.selected = new Set([...$('log-services').querySelectorAll('input:checked')].map((i) => i.value));
  logs.abort?.abort();
  logs.lines = [];
  logs.pending = [];
  renderLogs();
  if (!logs.selected.size) return;
  const abort = new AbortController();
  logs.abort = abort;
  const query = new URLSearchParams({ services: [...logs.selected].join(','), tail: '500' });
  try {
    const answer = await fetch(`/v1/logs?${query}`, {
      headers: { Authorization: `Bearer ${token}` }, signal: abort.signal,
    });
    if (!answer.ok) { $('log-state').textContent = `cannot read logs (${answer.status})`; return; }
    $('log-state').textContent = 'following';
    const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
    let rest = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const parts = (rest + value).split('\n');
      rest = parts.pop();
      const records = parts.filter((p) => p.trim()).map((p) => JSON.parse(p));
      if (records.length) addLogLines(records);
    }
  } catch (error) {
    if (abort.signal.aborted) return;
  }
  if (logs.abort === abort) {
    // The daemon went away: follow again once it is back.
    $('log-state').textContent = 'log stream ended — retrying…';
    setTimeout(() => { if (logs.abort === abort) followLogs(); }, 1000);
  }
}

function addLogLines(records) {
  if (logs.paused) { logs.pending.push(...records); return; }
  logs.lines.push(...records);
  if (logs.lines.length > MAX_LOG_LINES) logs.lines.splice(0, logs.lines.length - MAX_LOG_LINES);
  renderLogs();
}

function logMatches(record) {
  const text = $('log-filter').value.toLowerCase();
  const stream = $('log-stream').value;
  return (!stream || record.stream === stream) &&
    (!text || record.message.toLowerCase().includes(text) || record.instance.toLowerCase().includes(text));
}

function renderLogs() {
  const list = $('log-lines');
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const items = logs.lines.filter(logMatches).map((r) => el('li', { class: r.stream, 'data-time': r.time, 'data-instance': r.instance },
    el('span', { class: 'time', text: r.time.slice(11, 23) + ' ' }),
    el('span', { class: 'inst', text: r.instance + ' ' }),
    el('span', { class: 'stream', text: r.stream + ' ' }),
    el('span', { class: 'msg', text: r.message })));
  list.replaceChildren(...items);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

// The last line an instance printed before its latest unexpected end.
function jumpToCrash() {
  const crashed = (state.status?.services || []).flatMap((s) => s.instances)
    .filter((i) => i.last_exit && i.restarts > 0)
    .sort((a, b) => b.since.localeCompare(a.since))[0];
  const items = [...$('log-lines').children];
  let target = null;
  if (crashed) {
    target = items.filter((li) => li.dataset.instance === crashed.id && li.dataset.time <= crashed.since).pop();
  }
  target = target || items.filter((li) => li.classList.contains('err')).pop();
  for (const li of items) li.classList.remove('crash');
  if (!target) { $('log-state').textContent = 'no crash in the lines shown'; return; }
  target.classList.add('crash');
  target.tabIndex = -1;
  target.scrollIntoView({ block: 'center' });
  target.focus();
  $('log-state').textContent = crashed ? `last crash: ${crashed.id} (${crashed.last_exit})` : 'last error line';
}

function setupLogControls() {
  $('log-filter').addEventListener('input', renderLogs);
  $('log-stream').addEventListener('change', renderLogs);
  $('log-pause').addEventListener('click', () => {
    logs.paused = !logs.paused;
    $('log-pause').setAttribute('aria-pressed', String(logs.paused));
    $('log-pause').textContent = logs.paused ? 'Resume' : 'Pause';
    $('log-state').textContent = logs.paused ? 'paused' : 'following';
    if (!logs.paused && logs.pending.length) addLogLines(logs.pending.splice(0));
  });
  $('log-crash').addEventListener('click', jumpToCrash);
  $('log-controls').addEventListener('submit', (e) => e.preventDefault());
}

// ---- start ---------------------------------------------------------------------------

$('readonly').hidden = Boolean(token);
if (!token) $('log-state').textContent = 'logs need the admin token';
setupLogControls();
connect();
