/*
 * dashboard_check.js - the dashboard's pure part (src/server/dashboard/
 * format.js, loaded as it is, no npm packages) against a real server's
 * answers: node dashboard_check.js SOURCE_DIR PORT KEY EXPECT_REQUESTS SLOTS
 * Every URL format.js names is fetched with the key; what the page would
 * show is checked against the JSON itself (cards, tier rows, drift rows,
 * each range's charts: bars that add up to the requests, lines with a gap
 * for each empty bucket). Then app.js runs in a small fake DOM against the
 * same server: it asks for the key after a 401, and with it fills the
 * cards, tables and charts, the ledger's text as text. Exit status 0: all
 * checks passed.
 */
'use strict';

const assert = require('assert');
const [srcDir, port, key, expectRequests, slots] = process.argv.slice(2);
const F = require(srcDir + '/src/server/dashboard/format.js');
const base = 'http://127.0.0.1:' + port;

async function get(url, text) {
  const r = await fetch(base + url, { headers: { Authorization: 'Bearer ' + key } });
  assert.strictEqual(r.status, 200, url + ': HTTP ' + r.status);
  return text ? r.text() : r.json();
}

function checkChart(name, chart, buckets) {
  const w = 552, h = 132;
  assert.strictEqual(chart.labels.length, buckets.length, name + ': one label per bucket');
  chart.series.forEach((s) => assert.strictEqual(s.values.length, buckets.length, name + '/' + s.name));
  if (chart.kind === 'stack') {
    const rects = F.stackRects(chart, w, h);
    const per = new Array(buckets.length).fill(0), height = new Array(buckets.length).fill(0);
    rects.forEach((r) => {
      assert(r.h > 0 && r.y >= -1e-9 && r.y + r.h <= h + 1e-9, name + ': bar inside the box');
      per[r.i] += r.v;
      height[r.i] += r.h;
    });
    buckets.forEach((b, i) => {
      assert.strictEqual(per[i], b.requests, name + ': bucket ' + i + ' bars add up to its requests');
      assert(Math.abs(height[i] - (b.requests / chart.max) * h) < 1e-6, name + ': bar height');
      assert(b.requests <= chart.max, name + ': axis above the tallest bar');
    });
    return rects.length;
  }
  chart.series.forEach((s) => {
    const d = F.linePath(s.values, chart.min || 0, chart.max, w, h);
    assert(/^(M-?[\d.]+ -?[\d.]+(L-?[\d.]+ -?[\d.]+)*)*$/.test(d), name + ': path syntax ' + d);
    let runs = 0;
    s.values.forEach((v, i) => {
      if (v !== null && (i === 0 || s.values[i - 1] === null)) runs++;
      if (v !== null) assert(v >= (chart.min || 0) && v <= chart.max, name + ': ' + v + ' on the axis');
    });
    assert.strictEqual((d.match(/M/g) || []).length, runs, name + '/' + s.name + ': one stroke per run');
  });
  return 0;
}

async function main() {
  const E = F.ENDPOINTS;
  const [health, models, metrics, stats, drift] = await Promise.all([
    get(E.health), get(E.models), get(E.metrics, true), get(E.stats), get(E.drift)]);

  const sc = F.serverCards(health, models, metrics, Date.now());
  assert.strictEqual(sc[0].value, models.data[0].id, 'model card');
  const remoteFirst = { data: [{ id: 'rerank-v3.5', owned_by: 'co' }].concat(models.data) };
  assert.strictEqual(F.serverCards(health, remoteFirst, metrics, Date.now())[0].value,
    models.data[0].id, 'model card: a local model, not a remote name');
  assert.strictEqual(sc[0].sub, 'ok');
  assert.strictEqual(sc[1].value, '0 / ' + slots, 'slots card: ' + sc[1].value);
  assert.match(sc[3].value, /^\d+m \d+s$/, 'uptime ' + sc[3].value);
  const m = F.parseMetrics(metrics);
  assert.strictEqual(m.hearth_slots, Number(slots));

  assert.strictEqual(stats.requests, Number(expectRequests), 'stats requests');
  const gc = F.statsCards(stats);
  assert.strictEqual(gc[0].value, F.num(stats.requests));
  assert.strictEqual(gc[1].value, (stats.local_share * 100).toFixed(1) + ' %');
  const keyed = F.keyRows({ keys: { team: { requests: 3, local: 2, escalated: 1, errors: 0,
    prompt_tokens: 40, completion_tokens: 9, cost_usd: 0.0021 } } });
  assert.deepStrictEqual(keyed, [['team', '3', '2', '1', '0', '40 / 9', F.usd(0.0021)]], 'key rows');
  assert.deepStrictEqual(F.keyRows(stats), [], 'no keys, no rows');
  const tiers = F.tierRows(stats);
  assert.deepStrictEqual(tiers.map((r) => r[0]), Object.keys(stats.tiers));
  assert(tiers.every((r) => r.length === 7 && r.every((c) => typeof c === 'string')));
  const share = tiers.reduce((a, r) => a + parseFloat(r[2]), 0);
  assert(Math.abs(share - 100) < 0.5, 'tier shares add up to 100 %: ' + share);

  const rows = F.driftRows(drift);
  assert.strictEqual(rows.length, drift.signals.length);
  rows.forEach((r, i) => {
    assert.strictEqual(r.name, drift.signals[i].name);
    assert(['stable', 'warn', 'drift', 'insufficient'].includes(r.status), r.status);
    Object.values(r).forEach((v) => assert.strictEqual(typeof v, 'string'));
  });

  let bars = 0, total = 0;
  for (const range of F.RANGES) {
    const ser = await get(range.url);
    const c = F.seriesCharts(ser);
    bars += checkChart(range.name + ' requests', c.requests, ser.buckets);
    ['cost', 'latency', 'quality'].forEach((k) => checkChart(range.name + ' ' + k, c[k], ser.buckets));
    if (range.name === '30d') total = ser.buckets.reduce((a, b) => a + b.requests, 0);
  }
  assert(bars > 0, 'some bars drawn');
  assert.strictEqual(total, stats.requests, '30 days of series hold every request');
  const drawn = await runPage(stats, drift);
  console.log('dashboard_check: app.js in a fake DOM drew ' + drawn + ' bars; ' + rows.length + ' drift signals, ' + tiers.length + ' tiers, ' +
    bars + ' bars over ' + F.RANGES.length + ' ranges: ok');
}

/*
 * A small fake DOM, just what app.js touches (no jsdom): elements with
 * children, attributes, textContent and listeners; the page's ids taken
 * from index.html. Enough to run app.js as a browser would and look at
 * what it built.
 */
class Node {
  constructor(tag, ns) {
    this.tagName = tag.toUpperCase();
    this.ns = ns || '';
    this.children = [];
    this.attrs = {};
    this.listeners = {};
    this.text = '';
    this.hidden = false;
    this.className = '';
  }
  get firstChild() {
    return this.children[0] || null;
  }
  appendChild(c) {
    this.children.push(c);
    return c;
  }
  removeChild(c) {
    this.children.splice(this.children.indexOf(c), 1);
    return c;
  }
  setAttribute(k, v) {
    assert(!/^on/i.test(k), 'an event handler attribute: ' + k);
    this.attrs[k] = String(v);
  }
  addEventListener(type, f) {
    this.listeners[type] = f;
  }
  focus() {}
  get textContent() {
    return this.text + this.children.map((c) => c.textContent).join('');
  }
  set textContent(v) {
    this.children = [];
    this.text = String(v);
  }
  set innerHTML(v) {
    throw new Error('app.js set innerHTML');
  }
  all() {
    return [this].concat(...this.children.map((c) => c.all()));
  }
}

function fakePage(html, key) {
  const byId = {};
  for (const m of html.matchAll(/<(\w+)[^>]*\sid="([^"]+)"([^>]*)>/g)) {
    byId[m[2]] = new Node(m[1]);
    byId[m[2]].hidden = /\shidden/.test(m[0]);
  }
  const store = {};
  const ctx = {
    document: {
      getElementById: (id) => byId[id] || null,
      createElement: (t) => new Node(t),
      createElementNS: (ns, t) => new Node(t, ns),
      createTextNode: (t) => Object.assign(new Node('#text'), { text: String(t) })
    },
    sessionStorage: { getItem: (k) => (k in store ? store[k] : null), setItem: (k, v) => (store[k] = String(v)) },
    fetch: (url, opt) => {
      assert(url.charAt(0) === '/', 'a same-origin path: ' + url);
      return fetch(base + url, opt);
    },
    setInterval: () => 1,
    clearInterval: () => {},
    Promise, Date, Object, Array, Math, Number, String, isFinite, JSON
  };
  ctx.window = ctx;
  return { ctx, byId };
}

async function until(cond, what) {
  for (let i = 0; i < 100; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('timed out waiting for ' + what);
}

async function runPage(stats, drift) {
  const vm = require('vm');
  const fs = require('fs');
  const dir = srcDir + '/src/server/dashboard/';
  const { ctx, byId } = fakePage(fs.readFileSync(dir + 'index.html', 'utf8'));
  vm.createContext(ctx);
  vm.runInContext(fs.readFileSync(dir + 'format.js', 'utf8'), ctx, { filename: 'format.js' });
  vm.runInContext(fs.readFileSync(dir + 'app.js', 'utf8'), ctx, { filename: 'app.js' });
  /* no key yet: the JSON routes answer 401 and the page asks for one */
  await until(() => byId.updated.textContent !== '', 'the first refresh');
  assert.strictEqual(byId.auth.hidden, false, 'the key form shows after a 401');
  assert.strictEqual(byId['tier-rows'].children.length, 0);
  byId.key.value = key;
  byId.updated.textContent = '';
  byId.auth.listeners.submit({ preventDefault() {} });
  await until(() => byId.updated.textContent !== '', 'the refresh with the key');
  assert.strictEqual(byId.auth.hidden, true, 'the form hides');
  assert.strictEqual(byId.error.textContent, '', 'no error: ' + byId.error.textContent);
  const tiers = byId['tier-rows'].children;
  assert.deepStrictEqual(tiers.map((tr) => tr.children[0].textContent), Object.keys(stats.tiers));
  assert.strictEqual(byId['drift-rows'].children.length, drift.signals.length);
  assert.strictEqual(byId['keys-section'].hidden, true, 'no keys: their section stays hidden');
  assert.strictEqual(byId['drift-status'].textContent, drift.status);
  const everything = Object.values(byId).flatMap((n) => n.all());
  assert(!everything.some((n) => n.tagName === 'IMG' || n.tagName === 'SCRIPT'), 'markup from data');
  const bars = byId['c-requests'].all().filter((n) => n.tagName === 'RECT');
  assert(bars.length > 0, 'the requests chart has bars');
  const paths = byId['c-latency'].all().filter((n) => n.tagName === 'PATH');
  assert(paths.length > 0 && paths.every((p) => p.ns === 'http://www.w3.org/2000/svg'), 'latency lines');
  assert.strictEqual(byId['server-cards'].children.length, 4);
  assert.strictEqual(byId['gw-cards'].children[0].children[1].textContent, F.num(stats.requests));
  return bars.length;
}

main().catch((e) => {
  console.error('dashboard_check: FAILED: ' + (e && e.message ? e.message : e));
  process.exit(1);
});
