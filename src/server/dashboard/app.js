/*
 * app.js - the dashboard's DOM side: fetches what format.js names, every
 * 10 s unless paused, and draws it. Text from the server (tier names, hints,
 * the model's name) goes in with textContent only, never as markup. Charts
 * are SVG built element by element. An API key, asked for when a request
 * answers 401, lives in sessionStorage (this tab, until it closes) and is
 * sent only to this origin.
 */
(function () {
  'use strict';

  var F = window.HearthFmt;
  var SVG = 'http://www.w3.org/2000/svg';
  var KEY = 'hearth.apiKey';
  var W = 600, H = 160, PAD_L = 48, PAD_B = 20;
  var state = { range: 1, paused: false, timer: 0, busy: false, key: '' };

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function svg(tag, attrs, parent) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) {
      e.setAttribute(k, attrs[k]);
    });
    if (parent) parent.appendChild(e);
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function storedKey() {
    try {
      return sessionStorage.getItem(KEY) || state.key;
    } catch (e) {
      return state.key;
    }
  }

  /* resolves to parsed JSON (or text); rejects with {status} */
  function get(url, text) {
    var headers = {};
    var key = storedKey();
    if (key) headers.Authorization = 'Bearer ' + key;
    return fetch(url, { headers: headers, cache: 'no-store', credentials: 'omit' }).then(function (r) {
      if (!r.ok) throw { status: r.status, url: url };
      return text ? r.text() : r.json();
    });
  }

  function settle(p) {
    return p.then(function (v) {
      return { ok: true, v: v };
    }, function (e) {
      return { ok: false, e: e };
    });
  }

  function cards(node, list) {
    clear(node);
    list.forEach(function (c) {
      var d = el('div', 'card');
      d.appendChild(el('div', 'label', c.label));
      d.appendChild(el('div', 'value', c.value));
      d.appendChild(el('div', 'sub', c.sub));
      node.appendChild(d);
    });
  }

  function rows(tbody, list) {
    clear(tbody);
    list.forEach(function (cells) {
      var tr = el('tr');
      cells.forEach(function (c) {
        tr.appendChild(typeof c === 'string' ? el('td', '', c) : c);
      });
      tbody.appendChild(tr);
    });
  }

  function legend(node, chart) {
    clear(node);
    chart.series.forEach(function (s) {
      var item = el('span', 'key');
      item.appendChild(el('i', s.cls));
      item.appendChild(document.createTextNode(s.name));
      node.appendChild(item);
    });
  }

  function axes(g, chart, w, h) {
    var min = chart.min || 0;
    [0, 0.5, 1].forEach(function (f) {
      var y = h - f * h;
      svg('line', { x1: 0, x2: w, y1: y, y2: y, class: 'grid' }, g);
      svg('text', { x: -6, y: y + 4, class: 'tick', 'text-anchor': 'end' }, g).textContent =
        chart.fmt(min + f * (chart.max - min));
    });
    var n = chart.labels.length, step = Math.max(1, Math.ceil(n / 6));
    for (var i = 0; i < n; i += step) {
      var x = chart.kind === 'stack' ? ((i + 0.5) * w) / n : n > 1 ? (i / (n - 1)) * w : w / 2;
      svg('text', { x: x, y: h + 15, class: 'tick', 'text-anchor': 'middle' }, g).textContent = chart.labels[i];
    }
  }

  function draw(id, chart) {
    var box = clear($(id));
    legend($(id + '-legend'), chart);
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img' }, box);
    var w = W - PAD_L - 8, h = H - PAD_B - 8;
    var g = svg('g', { transform: 'translate(' + PAD_L + ',8)' }, root);
    if (!chart.labels.length) {
      svg('text', { x: w / 2, y: h / 2, class: 'tick', 'text-anchor': 'middle' }, g).textContent = 'no data';
      return;
    }
    axes(g, chart, w, h);
    if (chart.kind === 'stack') {
      F.stackRects(chart, w, h).forEach(function (r) {
        var s = chart.series[r.series];
        var rect = svg('rect', { x: r.x, y: r.y, width: r.w, height: r.h, class: s.cls }, g);
        svg('title', {}, rect).textContent = chart.labels[r.i] + ' ' + s.name + ': ' + chart.fmt(r.v);
      });
      return;
    }
    chart.series.forEach(function (s) {
      var d = F.linePath(s.values, chart.min || 0, chart.max, w, h);
      if (d) svg('path', { d: d, class: 'line ' + s.cls }, g);
    });
  }

  function renderSeries(ser) {
    var c = F.seriesCharts(ser);
    draw('c-requests', c.requests);
    draw('c-cost', c.cost);
    draw('c-latency', c.latency);
    draw('c-quality', c.quality);
  }

  function renderDrift(r) {
    var st = $('drift-status');
    st.textContent = r.status;
    st.className = 'pill st-' + r.status;
    $('drift-window').textContent = 'last ' + F.num(r.window.requests) + ' requests (24 h) against ' +
      F.num(r.reference.requests) + ' before them (7 d)';
    rows($('drift-rows'), F.driftRows(r).map(function (s) {
      var name = el('td', '', s.name);
      name.title = s.what;
      return [name, el('td', 'pill st-' + s.status, s.status), s.psi, s.p, s.reference, s.window, s.hint];
    }));
  }

  function showError(msg) {
    var e = $('error');
    e.textContent = msg;
    e.hidden = !msg;
  }

  function needKey(msg) {
    $('auth').hidden = false;
    $('auth-msg').textContent = msg;
    $('key').focus();
  }

  function refresh() {
    if (state.busy) return;
    state.busy = true;
    var E = F.ENDPOINTS;
    Promise.all([settle(get(E.health)), settle(get(E.models)), settle(get(E.metrics, true)),
      settle(get(E.stats)), settle(get(F.RANGES[state.range].url)), settle(get(E.drift))]).then(function (res) {
      state.busy = false;
      var v = function (i) {
        return res[i].ok ? res[i].v : null;
      };
      cards($('server-cards'), F.serverCards(v(0), v(1), v(2), Date.now()));
      var failed = res.filter(function (x) {
        return !x.ok;
      }).map(function (x) {
        return x.e;
      });
      if (failed.some(function (e) {
        return e && e.status === 401;
      })) {
        needKey(storedKey() ? 'The server refused this key.' : 'This server needs an API key.');
      }
      if (v(3)) {
        cards($('gw-cards'), F.statsCards(v(3)));
        rows($('tier-rows'), F.tierRows(v(3)));
        var keys = F.keyRows(v(3));
        rows($('key-rows'), keys);
        $('keys-section').hidden = keys.length === 0;
      }
      if (v(4)) renderSeries(v(4));
      if (v(5)) renderDrift(v(5));
      showError(failed.filter(function (e) {
        return !e || e.status !== 401;
      }).map(function (e) {
        return e && e.url ? e.url + ': HTTP ' + e.status : 'the server did not answer';
      }).join('; '));
      $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    }).catch(function (e) {
      showError('the page failed to draw: ' + e); /* the next refresh tries again */
    });
  }

  function schedule() {
    clearInterval(state.timer);
    state.timer = state.paused ? 0 : setInterval(refresh, 10000);
    $('pause').textContent = state.paused ? 'Resume' : 'Pause';
  }

  function init() {
    var nav = $('range');
    F.RANGES.forEach(function (r, i) {
      var b = el('button', i === state.range ? 'on' : '', r.name);
      b.type = 'button';
      b.addEventListener('click', function () {
        state.range = i;
        Array.prototype.forEach.call(nav.children, function (c, j) {
          c.className = j === i ? 'on' : '';
        });
        refresh();
      });
      nav.appendChild(b);
    });
    $('pause').addEventListener('click', function () {
      state.paused = !state.paused;
      schedule();
    });
    $('auth').addEventListener('submit', function (ev) {
      ev.preventDefault();
      state.key = $('key').value;
      try {
        sessionStorage.setItem(KEY, state.key);
      } catch (e) {
        /* storage refused (private mode): the key lasts until this page reloads */
      }
      $('key').value = '';
      $('auth').hidden = true;
      refresh();
    });
    schedule();
    refresh();
  }

  init();
})();
