/**
 * The dashboard in real headless Chromium against a real in-process broker: the page loads without console errors,
 * shows a topic produced after it loaded, draws non-zero live rates while messages flow, and escapes what it shows.
 * Set METAQ_SCREENSHOT=<path> to also save the overview screenshot there (the README's picture).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import pino from 'pino';
import { createClient } from '../sdk/client/client.js';
import { decodeMessageSet } from '../sdk/protocol/record.js';
import { launchChromium, watchPageProblems, type PageProblems } from './harness/chromium.js';
import { startCluster } from './harness/cluster.js';
import { RawClient } from './harness/raw-client.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';

const PAGE_TIMEOUT_MS = 20_000;

/** Puts to `topic` (and reads it back as group `group`) in a loop until `stop()`; `every` puts per read. */
function traffic(port: number, topic: string, options: { partitions: number; body: Buffer; every: number }):
{ stop(): Promise<void>; puts(): number } {
  let stopped = false;
  let puts = 0;
  const group = uniqueName('dash-group');
  const run = async (): Promise<void> => {
    const client = await RawClient.connect(port);
    const offsets = new Array<number>(options.partitions).fill(0);
    try {
      while (!stopped) {
        const partition = puts % options.partitions;
        await client.put(topic, partition, options.body);
        puts++;
        if (puts % options.every !== 0) continue;
        const offset = offsets[partition] ?? 0;
        const got = await client.get(topic, group, partition, offset, 64 * 1024);
        if (got.type === 'value') offsets[partition] = offset + decodeMessageSet(got.body, { baseOffset: offset }).bytesConsumed;
      }
    } finally {
      await client.close();
    }
  };
  const done = run();
  return {
    stop: async () => { stopped = true; await done; },
    puts: () => puts,
  };
}

async function openDashboard(browser: Browser, port: number): Promise<{ page: Page; problems: PageProblems }> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const problems = watchPageProblems(page);
  await page.goto(`http://127.0.0.1:${port}/`);
  return { page, problems };
}

async function rate(page: Page, id: 'rate-in' | 'rate-out'): Promise<number> {
  return Number(await page.getAttribute(`#${id}`, 'data-value'));
}

/** What the overall chart plots: the largest value of each series (in, out). */
function plottedMaxima(page: Page): Promise<number[]> {
  // Page-side code as text: this file is compiled without the DOM library.
  return page.evaluate<number[]>(`metaqDashboard.charts.total.data.slice(1)
    .map((series) => Math.max(0, ...series.filter(Number.isFinite)))`);
}

/** Waits until `expression` (JavaScript evaluated in the page) is truthy. */
async function pageCondition(page: Page, expression: string): Promise<void> {
  await page.waitForFunction(expression, undefined, { timeout: PAGE_TIMEOUT_MS });
}

function topicSeriesLabels(page: Page): Promise<string[]> {
  // The legend's first row is the x axis (time).
  return page.locator('#chart-topics-in .u-legend .u-series:not(:first-child) .u-label').allInnerTexts();
}

describe('dashboard', () => {
  let dir: { path: string; remove(): Promise<void> };
  let browser: Browser;
  let tb: TestBroker;
  let httpPort: number;

  before(async () => {
    dir = await tempDir('metaq-dashboard-');
    browser = await launchChromium();
    tb = await startTestBroker({ 'system.dashboardHttpPort': '0' });
    httpPort = tb.broker.httpPort;
    assert.ok(httpPort > 0, `the broker reports its HTTP port (got ${httpPort})`);
  });

  after(async () => {
    await browser?.close();
    await tb?.dispose();
    await dir?.remove();
  });

  it('serves the page, its script and the chart library from the broker itself', async () => {
    for (const [path, type] of [['/', 'text/html'], ['/dashboard/dashboard.js', 'text/javascript'],
      ['/dashboard/vendor/uplot.js', 'text/javascript'], ['/dashboard/vendor/uplot.css', 'text/css']] as const) {
      const response = await fetch(`http://127.0.0.1:${httpPort}${path}`);
      assert.equal(response.status, 200, path);
      assert.match(response.headers.get('content-type') ?? '', new RegExp(`^${type}`), path);
      assert.ok((await response.text()).length > 100, `${path} has a body`);
    }
  });

  it('shows a topic produced after the page loaded, then its partitions', async () => {
    const { page, problems } = await openDashboard(browser, httpPort);
    await pageCondition(page, `document.querySelector('#broker-summary').textContent.startsWith('broker 0')`);
    await page.click('a[data-tab="topics"]');
    await page.waitForSelector('#topics p.empty, #topics table', { timeout: PAGE_TIMEOUT_MS });

    const topic = uniqueName('dash-new');
    const client = await RawClient.connect(tb.port);
    try {
      for (let i = 0; i < 5; i++) await client.put(topic, 1, `hello ${i}`);
    } finally {
      await client.close();
    }
    const link = page.locator('#topics a', { hasText: topic });
    await link.waitFor({ timeout: PAGE_TIMEOUT_MS });
    await link.click();
    await page.waitForSelector('#topic-detail table', { timeout: PAGE_TIMEOUT_MS });
    assert.match(await page.locator('#topic-detail h2').innerText(), new RegExp(topic));
    assert.equal(await page.locator('#topic-detail tbody tr').count(), 4, 'the embedded config has 4 partitions');
    await page.close();
    assert.deepEqual(problems.all(), []);
  });

  it('plots live produce and consume rates above zero while messages flow, and no errors', async () => {
    const { page, problems } = await openDashboard(browser, httpPort);
    const flows = [
      traffic(tb.port, uniqueName('dash-orders'), { partitions: 4, body: Buffer.alloc(200, 'o'), every: 2 }),
      traffic(tb.port, uniqueName('dash-clicks'), { partitions: 2, body: Buffer.alloc(60, 'c'), every: 5 }),
      traffic(tb.port, uniqueName('dash-audit'), { partitions: 1, body: Buffer.alloc(1000, 'a'), every: 1 }),
    ];
    try {
      await waitFor(async () => (await rate(page, 'rate-in')) > 0 && (await rate(page, 'rate-out')) > 0,
        { timeoutMs: PAGE_TIMEOUT_MS, what: 'the displayed in and out rates to become > 0' });
      const [plottedIn = 0, plottedOut = 0] = await waitFor(async () => {
        const maxima = await plottedMaxima(page);
        return maxima.length === 2 && maxima.every((m) => m > 0) ? maxima : undefined;
      }, { timeoutMs: PAGE_TIMEOUT_MS, what: 'the overall chart to plot rates > 0' });
      assert.ok(plottedIn > 0 && plottedOut > 0);
      const labels = await waitFor(async () => {
        const l = await topicSeriesLabels(page);
        return l.length === 3 ? l : undefined;
      }, { timeoutMs: PAGE_TIMEOUT_MS, what: 'one per-topic series for each producing topic' });
      assert.deepEqual(labels.every((l) => l.startsWith('dash-')), true, labels.join(', '));
      // A few more samples so the picture shows lines rather than points.
      await pageCondition(page, 'metaqDashboard.tracker.times.length >= 8');
      await saveScreenshot(page, dir.path);
    } finally {
      await Promise.all(flows.map((f) => f.stop()));
    }
    assert.ok(flows.every((f) => f.puts() > 0));
    await page.close();
    assert.deepEqual(problems.all(), []);
  });

  it('renders every section without errors', async () => {
    const { page, problems } = await openDashboard(browser, httpPort);
    const expectations = [
      ['groups', '#groups', /ZooKeeper is off/],
      ['stats', '#stats', /Messages in/],
      ['config', '#config', /numPartitions/],
      ['overview', '#cluster', /this broker/],
    ] as const;
    for (const [tab, selector, text] of expectations) {
      await page.click(`a[data-tab="${tab}"]`);
      await waitFor(async () => text.test(await page.locator(selector).innerText()),
        { timeoutMs: PAGE_TIMEOUT_MS, what: `the ${tab} section to show ${text}` });
      assert.equal(await page.locator(`section[data-section="${tab}"]`).isVisible(), true);
    }
    await page.close();
    assert.deepEqual(problems.all(), []);
  });
});

describe('dashboard escaping', () => {
  it('shows a data path full of markup as text', async () => {
    const dir = await tempDir('metaq-dashboard-esc-');
    const browser = await launchChromium();
    const dataPath = join(dir.path, `data-<img src=x onerror="window.injected=1">&amp;<b>bold</b>`);
    const tb = await startTestBroker({ 'system.dashboardHttpPort': '0', 'system.dataPath': dataPath });
    try {
      const { page, problems } = await openDashboard(browser, tb.broker.httpPort);
      await pageCondition(page, `/data-</.test(document.querySelector('#broker').textContent)`);
      assert.match(await page.locator('#broker').innerText(), /data-<img src=x onerror="window.injected=1">&amp;<b>bold<\/b>/);
      assert.equal(await page.locator('#broker img, #broker b').count(), 0, 'no element made from the value');
      assert.equal(await page.evaluate('typeof window.injected'), 'undefined');
      await page.close();
      assert.deepEqual(problems.all(), []);
    } finally {
      await tb.dispose();
      await browser.close();
      await dir.remove();
    }
  });
});

describe('dashboard with ZooKeeper', () => {
  it('shows a consumer group with its owner, committed offsets and lag for every partition', async () => {
    const topic = uniqueName('dash-zk');
    const group = uniqueName('dash-billing');
    // A topic section of its own: the broker registers it in ZooKeeper at start, where producers look it up.
    const cluster = await startCluster({ brokers: 1, set: { [`topic=${topic}.numPartitions`]: '2' } });
    const dir = await tempDir('metaq-dashboard-zk-');
    const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
    const client = await createClient({ zkConnect: cluster.zkConnect, zkRoot: cluster.zkRoot, recoverDir: dir.path,
      offsetsFile: join(dir.path, 'offsets.json'), logger });
    const browser = await launchChromium();
    try {
      const producer = client.producer();
      for (let i = 0; i < 20; i++) await producer.send({ topic, value: `order ${i}` });
      let got = 0;
      const consumer = client.consumer({ group, consumerId: 'c1', commitIntervalMs: 100, maxFetchDelayMs: 100 });
      consumer.subscribe(topic, () => { got++; });
      await waitFor(() => got >= 20, { timeoutMs: 30_000, what: 'the consumer to read the 20 messages' });

      const broker = cluster.brokers[0]?.broker;
      assert.ok(broker !== undefined);
      const { page, problems } = await openDashboard(browser, broker.httpPort);
      await page.click('a[data-tab="groups"]');
      const section = page.locator('#groups .group', { hasText: group });
      await section.waitFor({ timeout: PAGE_TIMEOUT_MS });
      // Committed offsets reach ZooKeeper every 100 ms and the page refreshes every 2 s: wait for lag 0 everywhere.
      await waitFor(async () => {
        // A row's innerText separates its cells with tabs.
        const cells = (await section.locator('tbody tr').allInnerTexts()).map((row) => row.split('\t').map((c) => c.trim()));
        return cells.length === 2 && cells.every((c) => c[2] === `${group}_c1` && c[5] === '0 B' && c[3] === c[4]);
      }, { timeoutMs: PAGE_TIMEOUT_MS, what: `both partitions of ${topic} owned by ${group}_c1 with lag 0` });
      assert.match(await section.locator('h3').innerText(), /lag 0 B · 1 member/);
      await page.click('a[data-tab="overview"]');
      await page.locator('#cluster', { hasText: 'Brokers registered in ZooKeeper' }).waitFor({ timeout: PAGE_TIMEOUT_MS });
      await page.close();
      await consumer.close();
      assert.deepEqual(problems.all(), []);
    } finally {
      await browser.close();
      await client.close();
      await cluster.stop();
      await dir.remove();
    }
  });
});

async function saveScreenshot(page: Page, dir: string): Promise<void> {
  const path = join(dir, 'dashboard.png');
  await page.screenshot({ path, fullPage: true });
  const copyTo = process.env.METAQ_SCREENSHOT;
  if (copyTo !== undefined && copyTo !== '') {
    await mkdir(dirname(resolve(copyTo)), { recursive: true });
    await copyFile(path, resolve(copyTo));
    console.log(`dashboard screenshot saved to ${resolve(copyTo)}`);
  }
}
