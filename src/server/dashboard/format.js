/*
 * format.js - the dashboard's pure part: which URLs it reads, and the JSON
 * of those endpoints turned into what the page shows (cards, table rows,
 * chart geometry). No DOM and no network here, so that node can load this
 * file and check it against a real server's answers
 * (tests/server/dashboard_check.js); app.js draws what these return.
 *
 * Every URL the page fetches is a literal in ENDPOINTS or RANGES:
 * tests/test_server_dashboard.c scans for them and requests each one.
 */
(function (root) {
  'use strict';

  var ENDPOINTS = {
    stats: '/v1/hearth/stats',
    drift: '/v1/hearth/drift?window=24h&reference=7d',
    metrics: '/metrics',
    health: '/health',
    models: '/v1/models'
  };

  /* the range picker: a bucket each that gives 30 to 60 bars */
  var RANGES = [
    { name: '1h', url: '/v1/hearth/series?since=1h&bucket=1m' },
    { name: '24h', url: '/v1/hearth/series?since=24h&bucket=30m' },
    { name: '7d', url: '/v1/hearth/series?since=7d&bucket=3h' },
    { name: '30d', url: '/v1/hearth/series?since=30d&bucket=12h' }
  ];

  function isNum(v) {
    return typeof v === 'number' && isFinite(v);
  }

  function num(v) {
    if (!isNum(v)) return '–';
    var a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + 'G';
    if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M';
    if (a >= 1e4) return (v / 1e3).toFixed(1) + 'k';
    if (Number.isInteger(v)) return String(v);
    return v.toFixed(a >= 100 ? 0 : a >= 1 ? 2 : 3);
  }

  function pct(share) {
    return isNum(share) ? (share * 100).toFixed(1) + ' %' : '–';
  }

  function usd(v) {
    if (!isNum(v)) return '–';
    return '$' + v.toFixed(Math.abs(v) >= 100 ? 2 : Math.abs(v) >= 1 ? 3 : 4);
  }

  function ms(v) {
    if (!isNum(v)) return '–';
    return v >= 10000 ? (v / 1000).toFixed(1) + ' s' : Math.round(v) + ' ms';
  }

  function duration(s) {
    if (!isNum(s) || s < 0) return '–';
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60);
    if (d) return d + 'd ' + h + 'h';
    if (h) return h + 'h ' + m + 'm';
    return m + 'm ' + Math.floor(s % 60) + 's';
  }

  function pad2(n) {
    return (n < 10 ? '0' : '') + n;
  }

  /* a bucket's start in local time: the clock for buckets under a day */
  function timeLabel(t, bucketMs) {
    var d = new Date(t);
    var day = pad2(d.getMonth() + 1) + '-' + pad2(d.getDate());
    if (bucketMs >= 86400000) return day;
    var clock = pad2(d.getHours()) + ':' + pad2(d.getMinutes());
    return bucketMs >= 3600000 ? day + ' ' + clock : clock;
  }

  /* Prometheus text -> {"name{labels}": value}; comments skipped */
  function parseMetrics(text) {
    var out = {};
    String(text).split('\n').forEach(function (line) {
      if (!line || line.charAt(0) === '#') return;
      var sp = line.lastIndexOf(' ');
      if (sp <= 0) return;
      var v = Number(line.slice(sp + 1));
      if (!isNaN(v)) out[line.slice(0, sp)] = v;
    });
    return out;
  }

  function metricSum(m, name) {
    var s = 0;
    Object.keys(m).forEach(function (k) {
      if (k === name || k.indexOf(name + '{') === 0) s += m[k];
    });
    return s;
  }

  /* the server's cards: model, slots, uptime (models' "created" is when
   * the server started; the page's clock is the reference). The model is
   * the first local one (with a "status"; the gateway's remote names
   * follow the local models and have none). */
  function serverCards(health, models, metrics, nowMs) {
    var m = metrics ? parseMetrics(metrics) : {};
    var local = models && models.data ? models.data.filter(function (x) { return x.status; }) : [];
    var model = local[0];
    var up = model && isNum(model.created) ? nowMs / 1000 - model.created : NaN;
    var has = function (k) {
      return Object.prototype.hasOwnProperty.call(m, k);
    };
    return [
      { label: 'model', value: model ? String(model.id) : '–', sub: health ? String(health.status) : 'unreachable' },
      { label: 'slots busy', value: has('hearth_slots_busy') ? num(m.hearth_slots_busy) + ' / ' + num(m.hearth_slots) : '–',
        sub: has('hearth_queue_depth') ? num(m.hearth_queue_depth) + ' queued' : '' },
      { label: 'tokens generated', value: num(metricSum(m, 'hearth_generated_tokens_total')),
        sub: num(metricSum(m, 'hearth_requests_total')) + ' HTTP requests' },
      { label: 'uptime', value: duration(up), sub: '' }
    ];
  }

  /* the gateway's cards from /v1/hearth/stats */
  function statsCards(s) {
    return [
      { label: 'requests', value: num(s.requests), sub: num(s.errors) + ' errors, ' + num(s.degraded) + ' degraded' },
      { label: 'answered locally', value: pct(s.local_share), sub: num(s.local) + ' local, ' + num(s.escalated) + ' escalated' },
      { label: 'cost', value: usd(s.cost_usd), sub: usd(s.cloud_only_cost_usd) + ' if all cloud' },
      { label: 'savings', value: isNum(s.savings_pct) ? s.savings_pct.toFixed(1) + ' %' : '–', sub: 'vs cloud only' }
    ];
  }

  /* one row per tier: name, requests, share, p50, p95, tokens in/out, cost */
  function tierRows(s) {
    var tiers = s && s.tiers ? s.tiers : {};
    return Object.keys(tiers).map(function (name) {
      var t = tiers[name];
      return [name, num(t.requests), pct(s.requests ? t.requests / s.requests : NaN), ms(t.p50_ms), ms(t.p95_ms),
        num(t.prompt_tokens) + ' / ' + num(t.completion_tokens), usd(t.cost_usd)];
    });
  }

  /* the ledger's totals per API key (none without keys) */
  function keyRows(s) {
    var keys = s && s.keys ? s.keys : {};
    return Object.keys(keys).map(function (name) {
      var k = keys[name];
      return [name, num(k.requests), num(k.local), num(k.escalated), num(k.errors),
        num(k.prompt_tokens) + ' / ' + num(k.completion_tokens), usd(k.cost_usd)];
    });
  }

  /* a signal's side of the drift report in words */
  function side(sig, sd) {
    if (!sd) return '–';
    if (sd.shares) {
      var parts = Object.keys(sd.shares).filter(function (k) {
        return sd.shares[k] > 0;
      }).map(function (k) {
        return k + ' ' + pct(sd.shares[k]);
      });
      return 'n ' + num(sd.n) + (parts.length ? ': ' + parts.join(', ') : '');
    }
    return 'n ' + num(sd.n) + ', mean ' + num(sd.mean) + ', p50 ' + num(sd.p50) + ', p95 ' + num(sd.p95);
  }

  function driftRows(r) {
    return (r && r.signals ? r.signals : []).map(function (s) {
      return {
        name: String(s.name), what: s.what ? String(s.what) : '', status: String(s.status),
        psi: isNum(s.psi) ? s.psi.toFixed(3) : '–',
        p: isNum(s.p_value) ? (s.p_value < 1e-4 ? s.p_value.toExponential(1) : s.p_value.toFixed(4)) : '–',
        reference: side(s, s.reference), window: side(s, s.window), hint: s.hint ? String(s.hint) : ''
      };
    });
  }

  /* a round upper bound for an axis (1, 2, 5 x 10^k) */
  function niceMax(v) {
    if (!isNum(v) || v <= 0) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
    return 10 * p;
  }

  /*
   * The four charts of a /v1/hearth/series answer. Each: {labels, max,
   * kind: "stack"|"line", series: [{name, cls, values}]}; values are numbers
   * or null (no data in that bucket: a gap in a line).
   */
  function seriesCharts(ser) {
    var b = ser && ser.buckets ? ser.buckets : [];
    var bucketMs = ser ? ser.bucket_ms : 0;
    var col = function (k) {
      return b.map(function (x) {
        return isNum(x[k]) ? x[k] : null;
      });
    };
    var labels = b.map(function (x) {
      return timeLabel(x.start_ms, bucketMs);
    });
    var top = function (lists) {
      var m = 0;
      lists.forEach(function (l) {
        l.forEach(function (v) {
          if (v !== null && v > m) m = v;
        });
      });
      return niceMax(m);
    };
    /* the ledger counts each request once: local, escalated or an error */
    var req = [
      { name: 'local', cls: 's-local', values: col('local') },
      { name: 'escalated', cls: 's-esc', values: col('escalated') },
      { name: 'errors', cls: 's-err', values: col('errors') }
    ];
    var cost = [
      { name: 'cost', cls: 's-local', values: col('cost_usd') },
      { name: 'cloud-only cost', cls: 's-esc', values: col('cloud_only_cost_usd') }
    ];
    var lat = [
      { name: 'local p50', cls: 's-local', values: col('local_p50_ms') },
      { name: 'local p95', cls: 's-esc', values: col('local_p95_ms') }
    ];
    var qual = [
      { name: 'confidence (mean)', cls: 's-local', values: col('conf_mean') },
      { name: 'router score', cls: 's-esc', values: col('router_score') }
    ];
    return {
      requests: { kind: 'stack', labels: labels, max: top([col('requests')]), series: req, fmt: num },
      cost: { kind: 'line', labels: labels, max: top([cost[0].values, cost[1].values]), series: cost, fmt: usd },
      latency: { kind: 'line', labels: labels, max: top([lat[0].values, lat[1].values]), series: lat, fmt: ms },
      quality: { kind: 'line', labels: labels, max: 1, min: qualMin(qual), series: qual, fmt: num }
    };
  }

  /* confidence is a log-probability mean (<= 0), the router's score a
   * probability: the axis goes down far enough for both */
  function qualMin(qual) {
    var m = 0;
    qual.forEach(function (s) {
      s.values.forEach(function (v) {
        if (v !== null && v < m) m = v;
      });
    });
    return m < 0 ? -niceMax(-m) : 0;
  }

  /* chart geometry in a w x h box: bars for a stack, paths for lines */
  function stackRects(chart, w, h) {
    var n = chart.labels.length, out = [];
    if (!n) return out;
    var bw = w / n, base = new Array(n).fill(0);
    chart.series.forEach(function (s, si) {
      s.values.forEach(function (v, i) {
        if (!v) return;
        var y0 = h - (base[i] / chart.max) * h;
        base[i] += v;
        var y1 = h - (base[i] / chart.max) * h;
        out.push({ series: si, i: i, x: i * bw + bw * 0.1, y: y1, w: bw * 0.8, h: y0 - y1, v: v });
      });
    });
    return out;
  }

  function linePath(values, min, max, w, h) {
    var n = values.length, d = '', pen = false;
    var span = max - min || 1;
    values.forEach(function (v, i) {
      if (v === null) {
        pen = false;
        return;
      }
      var x = n > 1 ? (i / (n - 1)) * w : w / 2;
      var y = h - ((v - min) / span) * h;
      d += (pen ? 'L' : 'M') + x.toFixed(1) + ' ' + y.toFixed(1);
      pen = true;
    });
    return d;
  }

  var api = {
    ENDPOINTS: ENDPOINTS, RANGES: RANGES, num: num, pct: pct, usd: usd, ms: ms, duration: duration,
    timeLabel: timeLabel, parseMetrics: parseMetrics, serverCards: serverCards, statsCards: statsCards,
    tierRows: tierRows, keyRows: keyRows, driftRows: driftRows, niceMax: niceMax, seriesCharts: seriesCharts,
    stackRects: stackRects, linePath: linePath
  };
  if (typeof module === 'object' && module.exports) module.exports = api;
  else root.HearthFmt = api;
})(this);
