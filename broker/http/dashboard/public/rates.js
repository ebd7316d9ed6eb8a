// Live rates: /api/stats gives cumulative counters; a rate is the difference of two samples over their time apart.
import uPlot from '/dashboard/vendor/uplot.js';

/** Seconds of history kept and plotted. */
export const WINDOW_SECONDS = 120;
/** The most topics one per-topic chart draws (the busiest over the window); more lines would be unreadable. */
const MAX_TOPIC_SERIES = 8;
const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];

function perSecond(now, before, seconds) {
  const d = (now ?? 0) - (before ?? 0);
  // A counter that went down means the broker restarted: no rate for that interval rather than a negative one.
  return d >= 0 ? d / seconds : 0;
}

/** Turns successive /api/stats samples into rate history (messages/s and bytes/s, overall and per topic). */
export class RateTracker {
  constructor() {
    this.previous = undefined;
    this.times = [];
    this.messagesIn = [];
    this.messagesOut = [];
    this.bytesIn = [];
    this.bytesOut = [];
    /** topic → { in: number[], out: number[] }, aligned with `times` (0 before the topic existed). */
    this.topics = new Map();
    this.latest = undefined;
  }

  /** Adds a sample; returns the rates since the previous one, or undefined for the first sample. */
  push(stats) {
    const previous = this.previous;
    this.previous = stats;
    if (previous === undefined) return undefined;
    const seconds = (stats.time - previous.time) / 1000;
    if (!(seconds > 0)) return undefined;
    const t = stats.totals ?? {};
    const p = previous.totals ?? {};
    const rates = {
      time: stats.time / 1000,
      messagesIn: perSecond(t.messagesIn, p.messagesIn, seconds),
      messagesOut: perSecond(t.messagesOut, p.messagesOut, seconds),
      bytesIn: perSecond(t.bytesIn, p.bytesIn, seconds),
      bytesOut: perSecond(t.bytesOut, p.bytesOut, seconds),
      topics: new Map(),
    };
    const topics = stats.topics ?? {};
    for (const name of Object.keys(topics)) {
      const now = topics[name];
      const before = previous.topics?.[name];
      rates.topics.set(name, {
        in: perSecond(now.messagesIn, before?.messagesIn, seconds),
        out: perSecond(now.messagesOut, before?.messagesOut, seconds),
      });
    }
    this.record(rates);
    this.latest = rates;
    return rates;
  }

  record(rates) {
    const size = this.times.length;
    this.times.push(rates.time);
    this.messagesIn.push(rates.messagesIn);
    this.messagesOut.push(rates.messagesOut);
    this.bytesIn.push(rates.bytesIn);
    this.bytesOut.push(rates.bytesOut);
    for (const [name, r] of rates.topics) {
      let series = this.topics.get(name);
      if (series === undefined) {
        series = { in: new Array(size).fill(0), out: new Array(size).fill(0) };
        this.topics.set(name, series);
      }
      series.in.push(r.in);
      series.out.push(r.out);
    }
    for (const series of this.topics.values()) {
      if (series.in.length === size) { series.in.push(0); series.out.push(0); } // the topic is gone (deleted)
    }
    const excess = this.times.length - WINDOW_SECONDS;
    if (excess > 0) {
      for (const a of [this.times, this.messagesIn, this.messagesOut, this.bytesIn, this.bytesOut]) a.splice(0, excess);
      for (const [name, series] of this.topics) {
        series.in.splice(0, excess);
        series.out.splice(0, excess);
        if (series.in.every((v) => v === 0) && series.out.every((v) => v === 0)) this.topics.delete(name);
      }
    }
  }

  /** The busiest topics over the window (by messages in + out), at most `limit`, in name order for stable colours. */
  busiestTopics(limit = MAX_TOPIC_SERIES) {
    const sum = (a) => a.reduce((x, y) => x + y, 0);
    return [...this.topics.entries()]
      .map(([name, s]) => ({ name, load: sum(s.in) + sum(s.out) }))
      .filter((t) => t.load > 0)
      .sort((a, b) => b.load - a.load || (a.name < b.name ? -1 : 1))
      .slice(0, limit)
      .map((t) => t.name)
      .sort();
  }
}

function options(title, series, width) {
  return {
    title,
    width,
    height: 220,
    cursor: { drag: { x: false, y: false } },
    legend: { live: true },
    scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [{}, { label: 'messages/s', size: 60 }],
    series: [{}, ...series],
  };
}

function line(label, colour, dash) {
  return { label, stroke: colour, width: 2, ...(dash ? { dash: [6, 4] } : {}), value: (_u, v) => (v == null ? '—' : v.toFixed(1)) };
}

/** One uPlot chart in `container`, rebuilt when its set of series changes, resized with its container. */
class Chart {
  constructor(container, title) {
    this.container = container;
    this.title = title;
    this.plot = undefined;
    this.key = '';
    new ResizeObserver(() => this.resize()).observe(container);
  }

  update(series, data) {
    const key = series.map((s) => s.label).join('\u0000');
    if (this.plot === undefined || key !== this.key) {
      this.plot?.destroy();
      this.key = key;
      this.plot = new uPlot(options(this.title, series, this.width()), data, this.container);
    } else {
      this.plot.setData(data);
    }
  }

  width() {
    const style = getComputedStyle(this.container);
    const content = this.container.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return Math.max(280, Math.floor(content));
  }

  resize() {
    if (this.plot !== undefined && this.container.clientWidth > 0) this.plot.setSize({ width: this.width(), height: 220 });
  }

  /** The plotted data (x in seconds, then one array per series), for tests and debugging. */
  get data() {
    return this.plot?.data ?? [];
  }
}

/** The three rate charts: overall in/out, and per topic in and out. */
export class RateCharts {
  constructor(tracker, elements) {
    this.tracker = tracker;
    this.total = new Chart(elements.total, 'All topics');
    this.topicsIn = new Chart(elements.topicsIn, 'Messages in, per topic');
    this.topicsOut = new Chart(elements.topicsOut, 'Messages out, per topic');
  }

  redraw() {
    const t = this.tracker;
    this.total.update([line('in', PALETTE[0]), line('out', PALETTE[1], true)], [t.times, t.messagesIn, t.messagesOut]);
    const names = t.busiestTopics();
    const series = names.map((name, i) => line(name, PALETTE[i % PALETTE.length]));
    this.topicsIn.update(series, [t.times, ...names.map((n) => t.topics.get(n).in)]);
    this.topicsOut.update(series, [t.times, ...names.map((n) => t.topics.get(n).out)]);
  }
}
