// The metaq dashboard: reads the broker's JSON API (/api/*), samples /api/stats every second for the rate charts and
// refreshes the visible section every few seconds. No framework and no build step.
import { fmt, html, show, table, keyValues } from '/dashboard/render.js';
import { RateTracker, RateCharts } from '/dashboard/rates.js';

const STATS_INTERVAL_MS = 1000;
const VIEW_INTERVAL_MS = 2000;
const TABS = ['overview', 'topics', 'groups', 'stats', 'config'];

const $ = (id) => document.getElementById(id);
const tracker = new RateTracker();
const charts = new RateCharts(tracker, { total: $('chart-total'), topicsIn: $('chart-topics-in'), topicsOut: $('chart-topics-out') });
let lastStats;
let route = parseRoute();
let viewTimer;

/** For tests and debugging in the browser console: the rate history and the charts. */
window.metaqDashboard = { tracker, charts };

class ApiError extends Error {
  constructor(path, status, message) {
    super(`${path}: ${message}`);
    this.status = status;
  }
}

async function api(path) {
  const response = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(path, response.status, body.error ?? `HTTP ${response.status}`);
  return body;
}

function setProblem(message) {
  const box = $('error');
  box.hidden = message === undefined;
  box.textContent = message ?? '';
  $('status').className = message === undefined ? 'status ok' : 'status down';
  $('status').title = message ?? 'connected';
}

function parseRoute() {
  const hash = decodeURIComponent(location.hash.replace(/^#/, ''));
  const slash = hash.indexOf('/');
  const tab = slash < 0 ? hash : hash.slice(0, slash);
  return { tab: TABS.includes(tab) ? tab : 'overview', topic: slash < 0 ? undefined : hash.slice(slash + 1) };
}

function topicLink(topic) {
  return html`<a href="#topics/${encodeURIComponent(topic)}">${topic}</a>`;
}

// --- sections -------------------------------------------------------------------------------------------------------

function renderBroker(b) {
  $('broker-summary').textContent = `broker ${b.brokerId} · ${b.host}:${b.port} · metaq ${b.version}`;
  show($('broker'), html`<dl class="facts">
    <dt>Broker id</dt><dd>${b.brokerId}</dd>
    <dt>Version</dt><dd>${b.version}</dd>
    <dt>Address</dt><dd>${b.host}:${b.port} <span class="muted">(HTTP ${b.httpPort})</span></dd>
    <dt>Uptime</dt><dd>${fmt.duration(b.uptimeSeconds)} <span class="muted">since ${b.startedAt}</span></dd>
    <dt>Data path</dt><dd><code>${b.dataPath}</code></dd>
    <dt>ZooKeeper</dt><dd>${b.zk?.enabled ? html`${b.zk.connect} <code>${b.zk.root}</code>` : 'off (standalone)'}</dd>
  </dl>`);
}

function renderLive() {
  const r = tracker.latest;
  const s = lastStats;
  show($('live'), html`<dl class="facts">
    <dt>Messages in</dt><dd>${fmt.rate(r?.messagesIn)}/s <span class="muted">${fmt.bytes(r?.bytesIn)}/s</span></dd>
    <dt>Messages out</dt><dd>${fmt.rate(r?.messagesOut)}/s <span class="muted">${fmt.bytes(r?.bytesOut)}/s</span></dd>
    <dt>Connections</dt><dd>${fmt.int(s?.connections)}</dd>
    <dt>Total in</dt><dd>${fmt.int(s?.totals?.messagesIn)} msgs <span class="muted">${fmt.bytes(s?.totals?.bytesIn)}</span></dd>
    <dt>Total out</dt><dd>${fmt.int(s?.totals?.messagesOut)} msgs <span class="muted">${fmt.bytes(s?.totals?.bytesOut)}</span></dd>
  </dl>`);
}

function renderCluster(c) {
  show($('cluster'), html`<p class="muted">${c.zk ? 'Brokers registered in ZooKeeper.' : 'ZooKeeper is off: this broker alone.'}</p>
  ${table([
    { label: 'Broker id', cell: (b) => html`${b.brokerId}${b.self ? html` <span class="tag">this broker</span>` : ''}` },
    { label: 'Master', cell: (b) => b.master ?? html`<span class="muted">none</span>` },
    { label: 'Slaves', cell: (b) => (b.slaves?.length ? b.slaves.map((s) => html`<div>${s.slaveId}: ${s.url}</div>`) : html`<span class="muted">none</span>`) },
  ], c.brokers ?? [], 'No brokers registered.')}`);
}

function renderTopics(list) {
  const rates = tracker.latest?.topics;
  const topics = [...(list.topics ?? [])].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
  show($('topics'), html`<h2>Topics <span class="muted">(${topics.length})</span></h2>${table([
    { label: 'Topic', cell: (t) => topicLink(t.topic) },
    { label: 'Partitions', num: true, cell: (t) => fmt.int(t.partitions) },
    { label: 'Size', num: true, cell: (t) => fmt.bytes(t.sizeBytes) },
    { label: 'In/s', num: true, cell: (t) => fmt.rate(rates?.get(t.topic)?.in ?? 0) },
    { label: 'Out/s', num: true, cell: (t) => fmt.rate(rates?.get(t.topic)?.out ?? 0) },
    { label: 'Messages in', num: true, cell: (t) => fmt.int(t.messagesIn) },
    { label: 'Bytes in', num: true, cell: (t) => fmt.bytes(t.bytesIn) },
    { label: 'Messages out', num: true, cell: (t) => fmt.int(t.messagesOut) },
    { label: 'Bytes out', num: true, cell: (t) => fmt.bytes(t.bytesOut) },
  ], topics, 'No topics yet: produce a message to create one.')}`);
}

function renderTopicDetail(d) {
  show($('topic-detail'), html`<h2>Topic <code>${d.topic}</code></h2>
  ${table([
    { label: 'Partition', num: true, cell: (p) => p.partition },
    { label: 'Min offset', num: true, cell: (p) => fmt.int(p.minOffset) },
    { label: 'Max offset', num: true, cell: (p) => fmt.int(p.maxOffset) },
    { label: 'Size', num: true, cell: (p) => fmt.bytes(p.sizeBytes) },
    { label: 'Segments', num: true, cell: (p) => fmt.int(p.segments) },
  ], d.partitions ?? [], 'No partitions on this broker.')}
  <h3>Configuration</h3>${keyValues(d.config)}`);
}

function renderGroups(g) {
  const groups = g.groups ?? [];
  if (!g.zk) {
    show($('groups'), html`<p class="empty">ZooKeeper is off: consumer groups, owners and committed offsets live in
      ZooKeeper (<code>[zookeeper] zk.zkEnable=true</code>), so there is nothing to show.</p>`);
    return;
  }
  const rows = (group) => (group.topics ?? []).flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, ...p })));
  const lagOf = (group) => group.lag ?? null;
  show($('groups'), html`<h2>Consumer groups <span class="muted">(${groups.length})</span></h2>
  ${groups.length === 0 ? html`<p class="empty">No consumer group has registered in ZooKeeper.</p>` : ''}
  ${groups.map((group) => html`<div class="group">
    <h3>${group.group} <span class="muted">· lag ${lagOf(group) === null ? 'unknown' : fmt.bytes(lagOf(group))}
      · ${fmt.int(group.members?.length ?? 0)} member(s)</span></h3>
    ${group.members?.length ? html`<p class="members">${group.members.map((m) => html`<code>${m.id}</code> `)}</p>` : ''}
    ${table([
      { label: 'Topic', cell: (p) => topicLink(p.topic) },
      { label: 'Partition', cell: (p) => `${p.brokerId}-${p.partition}` },
      { label: 'Owner', cell: (p) => p.owner ?? html`<span class="muted">none</span>` },
      { label: 'Committed', num: true, cell: (p) => fmt.int(p.committed) },
      { label: 'End', num: true, cell: (p) => fmt.int(p.end) },
      { label: 'Lag', num: true, cell: (p) => (p.lag === null || p.lag === undefined ? '—' : fmt.bytes(p.lag)) },
      { label: '', cell: (p) => (p.error ? html`<span class="bad">${p.error}</span>` : '') },
    ], rows(group), 'No partitions.')}
  </div>`)}`);
}

function renderStats(s) {
  const topics = Object.keys(s.topics ?? {}).sort();
  const t = s.totals ?? {};
  show($('stats'), html`<div class="cards"><div class="card"><h2>Totals</h2><dl class="facts">
    <dt>Uptime</dt><dd>${fmt.duration(s.uptimeSeconds)}</dd>
    <dt>Connections</dt><dd>${fmt.int(s.connections)}</dd>
    <dt>Messages in</dt><dd>${fmt.int(t.messagesIn)} <span class="muted">${fmt.bytes(t.bytesIn)}</span></dd>
    <dt>Messages out</dt><dd>${fmt.int(t.messagesOut)} <span class="muted">${fmt.bytes(t.bytesOut)}</span></dd>
    <dt>Gets</dt><dd>${fmt.int(t.gets)} <span class="muted">${fmt.int(t.getMisses)} found nothing</span></dd>
  </dl><p><a href="/metrics">Prometheus metrics</a></p></div></div>
  <h2>Per topic</h2>${table([
    { label: 'Topic', cell: (name) => topicLink(name) },
    { label: 'Messages in', num: true, cell: (name) => fmt.int(s.topics[name].messagesIn) },
    { label: 'Bytes in', num: true, cell: (name) => fmt.bytes(s.topics[name].bytesIn) },
    { label: 'Messages out', num: true, cell: (name) => fmt.int(s.topics[name].messagesOut) },
    { label: 'Bytes out', num: true, cell: (name) => fmt.bytes(s.topics[name].bytesOut) },
  ], topics, 'No traffic yet.')}`);
}

function renderConfig(c) {
  show($('config'), html`<p>Source: ${c.file ? html`<code>${c.file}</code>` : 'the embedded defaults'}</p>
  ${c.overrides && Object.keys(c.overrides).length > 0
    ? html`<div class="card"><h2>Command-line overrides</h2>${keyValues(c.overrides)}</div>` : ''}
  <div class="cards"><div class="card"><h2>[system]</h2>${keyValues(c.system)}</div>
  <div class="card"><h2>[zookeeper]</h2>${keyValues(c.zookeeper)}</div></div>
  <h2>Topic sections</h2>
  <div class="cards">${Object.keys(c.topics ?? {}).map((name) =>
    html`<div class="card"><h2>[topic=${name}]</h2>${keyValues(c.topics[name])}</div>`)}</div>`);
}

// --- loops ----------------------------------------------------------------------------------------------------------

async function refreshView() {
  switch (route.tab) {
    case 'overview': {
      const [broker, cluster] = await Promise.all([api('/api/broker'), api('/api/cluster')]);
      renderBroker(broker);
      renderCluster(cluster);
      break;
    }
    case 'topics': {
      renderTopics(await api('/api/topics'));
      if (route.topic === undefined) show($('topic-detail'), html``);
      else {
        try {
          renderTopicDetail(await api(`/api/topics/${encodeURIComponent(route.topic)}`));
        } catch (e) {
          if (!(e instanceof ApiError && e.status === 404)) throw e;
          show($('topic-detail'), html`<p class="empty">No topic <code>${route.topic}</code> on this broker.</p>`);
        }
      }
      break;
    }
    case 'groups': renderGroups(await api('/api/groups')); break;
    case 'stats': if (lastStats !== undefined) renderStats(lastStats); break;
    case 'config': renderConfig(await api('/api/config')); break;
  }
}

async function viewLoop() {
  clearTimeout(viewTimer);
  const shown = route;
  try {
    await refreshView();
    setProblem(undefined);
  } catch (e) {
    setProblem(`Cannot reach the broker: ${e.message}`);
  }
  if (shown === route) viewTimer = setTimeout(viewLoop, VIEW_INTERVAL_MS);
}

async function statsLoop() {
  const started = Date.now();
  try {
    lastStats = await api('/api/stats');
    const rates = tracker.push(lastStats);
    if (rates !== undefined) {
      $('rate-in').textContent = fmt.rate(rates.messagesIn);
      $('rate-in').dataset.value = String(rates.messagesIn);
      $('rate-out').textContent = fmt.rate(rates.messagesOut);
      $('rate-out').dataset.value = String(rates.messagesOut);
      charts.redraw();
    }
    renderLive();
    if (route.tab === 'stats') renderStats(lastStats);
  } catch (e) {
    setProblem(`Cannot reach the broker: ${e.message}`);
  }
  setTimeout(statsLoop, Math.max(0, STATS_INTERVAL_MS - (Date.now() - started)));
}

function showTab() {
  route = parseRoute();
  for (const section of document.querySelectorAll('[data-section]')) section.hidden = section.dataset.section !== route.tab;
  for (const link of document.querySelectorAll('[data-tab]')) {
    link.classList.toggle('active', link.dataset.tab === route.tab);
    if (link.dataset.tab === route.tab) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  void viewLoop();
}

window.addEventListener('hashchange', showTab);
showTab();
if (route.tab !== 'overview') api('/api/broker').then(renderBroker, (e) => setProblem(`Cannot reach the broker: ${e.message}`));
void statsLoop();
