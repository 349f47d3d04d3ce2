/*
 * dashboard_check.js - the dashboard's pure part (src/server/dashboard/
 * format.js, loaded as it is, no npm packages) against a real server's
 * answers: node dashboard_check.js SOURCE_DIR PORT KEY EXPECT_REQUESTS SLOTS
 * Every URL format.js names is fetched with the key; what the page would
 * show is checked against the JSON itself (cards, tier rows, drift rows,
 * each range's charts: bars that add up to the requests, lines with a gap
 * for each empty bucket). Exit status 0: all checks passed.
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
  assert.strictEqual(sc[0].sub, 'ok');
  assert.strictEqual(sc[1].value, '0 / ' + slots, 'slots card: ' + sc[1].value);
  assert.match(sc[3].value, /^\d+m \d+s$/, 'uptime ' + sc[3].value);
  const m = F.parseMetrics(metrics);
  assert.strictEqual(m.hearth_slots, Number(slots));

  assert.strictEqual(stats.requests, Number(expectRequests), 'stats requests');
  const gc = F.statsCards(stats);
  assert.strictEqual(gc[0].value, F.num(stats.requests));
  assert.strictEqual(gc[1].value, (stats.local_share * 100).toFixed(1) + ' %');
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
  console.log('dashboard_check: ' + rows.length + ' drift signals, ' + tiers.length + ' tiers, ' +
    bars + ' bars over ' + F.RANGES.length + ' ranges: ok');
}

main().catch((e) => {
  console.error('dashboard_check: FAILED: ' + (e && e.message ? e.message : e));
  process.exit(1);
});
