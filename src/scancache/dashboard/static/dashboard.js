// scancache dashboard: draws the frames /api/history and /api/events send (one a second).
// No framework; charts are uPlot (vendored beside this file). Works offline.
(function () {
  "use strict";
  var token = new URLSearchParams(location.search).get("token");
  var query = token ? "?token=" + encodeURIComponent(token) : "";
  var KEEP = 600;              // points per chart: ten minutes at one frame a second
  var cards = {};              // "caches/dns" -> {figures, chart, data}
  var lastTime = 0;

  var SERIES = [
    { key: "hits", label: "hits/s", stroke: "#16a34a" },
    { key: "misses", label: "misses/s", stroke: "#d97706" },
    { key: "stale_hits", label: "stale/s", stroke: "#7c3aed" },
    { key: "errors", label: "errors/s", stroke: "#dc2626" }
  ];

  function $(id) { return document.getElementById(id); }

  function make(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function num(value, digits) {
    if (value === null || value === undefined || value === "") return "–";
    if (typeof value !== "number") return String(value);
    if (Math.abs(value) >= 1e6) return (value / 1e6).toFixed(1) + "M";
    if (Math.abs(value) >= 1e4) return (value / 1e3).toFixed(1) + "k";
    return value.toFixed(digits === undefined ? (Number.isInteger(value) ? 0 : 1) : digits);
  }

  function pct(value) {
    return value === null || value === undefined ? "–" : (value * 100).toFixed(1) + "%";
  }

  // The figures a card shows: [field, label, text(cache), big?]; a field absent from a cache is skipped.
  var FIGURES = [
    ["hit_rate", "hit rate", function (c) { return pct(c.hit_rate); }, true],
    ["hits", "hits/s", function (c) { return num(c.rate.hits, 1); }, true],
    ["misses", "misses/s", function (c) { return num(c.rate.misses, 1); }, true],
    ["errors", "errors/s", function (c) { return num(c.rate.errors, 1); }, true],
    ["window_hit_rate", "hit rate (last s)", function (c) { return pct(c.window_hit_rate); }],
    ["stale_hits", "stale/s", function (c) { return num(c.rate.stale_hits, 1); }],
    ["size", "entries", function (c) { return num(c.size); }],
    ["evictions", "evictions", function (c) { return num(c.evictions); }],
    ["p50", "p50 µs", function (c) { return num(c.latency.p50, 1); }],
    ["p90", "p90 µs", function (c) { return num(c.latency.p90, 1); }],
    ["p99", "p99 µs", function (c) { return num(c.latency.p99, 1); }],
    ["total_hits", "hits total", function (c) { return num(c.hits); }],
    ["upstream_queries", "DNS queries/s", function (c) { return num(c.rate.upstream_queries, 1); }],
    ["timeouts", "DNS timeouts", function (c) { return num(c.timeouts); }],
    ["requests_total", "OSV/NVD req/s", function (c) { return num(c.rate.requests_total, 1); }],
    ["retries", "retries", function (c) { return num(c.retries); }],
    ["nvd_rate_waits", "NVD rate waits", function (c) { return num(c.nvd_rate_waits); }],
    ["workers", "workers", function (c) { return num(c.workers); }]
  ];

  function present(cache, field) {
    if (field === "p50" || field === "p90" || field === "p99") return cache.latency && field in cache.latency;
    if (field === "total_hits") return "hits" in cache;
    if (field === "window_hit_rate") return true;
    return field in cache || (cache.rate && field in cache.rate);
  }

  function card(section, name, cache) {
    var id = section + "/" + name;
    if (cards[id]) return cards[id];
    var box = make("div", "card");
    box.dataset.cache = name;
    box.dataset.section = section;
    var title = make("h3");
    title.appendChild(make("span", "", name));
    title.appendChild(make("span", "muted", cache.backend || ""));
    box.appendChild(title);
    var figures = make("div", "figures");
    var cells = {};
    FIGURES.forEach(function (f) {
      if (!present(cache, f[0])) return;
      var cell = make("div", "figure" + (f[3] ? " big" : ""));
      cell.appendChild(make("div", "label", f[1]));
      var value = make("div", "value", "–");
      value.dataset.field = f[0];
      cell.appendChild(value);
      figures.appendChild(cell);
      cells[f[0]] = [value, f[2]];
    });
    box.appendChild(figures);
    var resolvers = null;  // a DNS cache over a resolver pool: one row per resolver
    if (cache.resolvers && typeof cache.resolvers === "object") {
      var table = make("table", "resolvers");
      var head = make("tr");
      [["resolver", "address:port"], ["sent", "queries sent"], ["answered", "answers received"],
       ["t/o", "timeouts"], ["err", "errors (SERVFAIL, REFUSED, ...)"], ["ms", "mean latency of answers, ms"],
       ["health", "pool weight: decayed success ratio"]].forEach(function (h) {
        head.appendChild(make("th", "", h[0])).title = h[1];
      });
      table.appendChild(make("thead")).appendChild(head);
      resolvers = table.appendChild(make("tbody"));
      box.appendChild(make("div", "table-scroll")).appendChild(table);
    }
    var plot = make("div", "chart");
    box.appendChild(plot);
    $(section).appendChild(box);
    var data = [[]].concat(SERIES.map(function () { return []; }));
    var width = Math.max(300, box.clientWidth - 20);
    var chart = new uPlot({
      width: width, height: 150, legend: { live: false },
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } },
      axes: [{}, { size: 50 }],
      series: [{}].concat(SERIES.map(function (s) {
        return { label: s.label, stroke: s.stroke, width: 1.5, points: { show: false } };
      }))
    }, data, plot);
    var entry = { cells: cells, chart: chart, data: data, resolvers: resolvers };
    cards[id] = entry;
    return entry;
  }

  function push(section, name, cache, time) {
    var entry = card(section, name, cache);
    entry.data[0].push(time);
    SERIES.forEach(function (s, i) { entry.data[i + 1].push(cache.rate[s.key] || 0); });
    if (entry.data[0].length > KEEP) entry.data.forEach(function (column) { column.shift(); });
    return entry;
  }

  function show(entry, cache) {
    Object.keys(entry.cells).forEach(function (field) {
      var cell = entry.cells[field];
      cell[0].textContent = cell[1](cache);
    });
    entry.chart.setData(entry.data);
    if (entry.resolvers) renderResolvers(entry.resolvers, cache.resolvers || {});
  }

  // health: the pool's weight (decayed success ratio, 0..1) as a percentage; "trusted" re-checks answers.
  function renderResolvers(tbody, resolvers) {
    fill(tbody, Object.keys(resolvers).map(function (address) {
      var r = resolvers[address] || {};
      var tr = row([address, num(r.sent), num(r.answered), num(r.timeouts), num(r.errors),
                    num(r.mean_latency_ms, 1), pct(r.weight) + (r.trusted ? " trusted" : "")],
                   typeof r.weight === "number" && r.weight < 0.5 ? "firing" : "");
      tr.dataset.resolver = address;
      return tr;
    }));
  }

  function addFrame(frame, draw) {
    if (frame.time <= lastTime) return;
    lastTime = frame.time;
    if (Object.keys(frame.fleet || {}).length) $("fleet-section").hidden = false;  // size charts shown
    [["caches", frame.caches], ["fleet", frame.fleet]].forEach(function (pair) {
      Object.keys(pair[1] || {}).forEach(function (name) {
        var entry = push(pair[0], name, pair[1][name], frame.time);
        if (draw) show(entry, pair[1][name]);
      });
    });
    if (draw) render(frame);
  }

  function render(frame) {
    $("updated").textContent = "updated " + new Date(frame.time * 1000).toLocaleTimeString();
    if (frame.process) $("process").textContent = "pid " + frame.process.pid +
      (frame.process.resident_memory_bytes ? ", " + num(frame.process.resident_memory_bytes / 1048576, 0) + " MB" : "");
    $("no-caches").hidden = Object.keys(frame.caches || {}).length > 0;
    renderAlerts(frame.alerts || []);
    renderFleet(frame);
    renderLoaders(frame.loaders || {});
  }

  function row(cells, className) {
    var tr = make("tr", className || "");
    cells.forEach(function (text) { tr.appendChild(make("td", "", text)); });
    return tr;
  }

  function fill(tbody, rows) {
    while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
    rows.forEach(function (tr) { tbody.appendChild(tr); });
  }

  function renderAlerts(alerts) {
    $("alerts-section").hidden = alerts.length === 0;
    fill($("alerts").tBodies[0], alerts.map(function (a) {
      var tr = row([a.alert, a.cache, "", a.value === null ? "–" : num(a.value, 2), num(a.threshold, 2)],
                   a.firing ? "firing" : "");
      tr.children[2].appendChild(make("span", a.firing ? "firing-text" : "ok", a.firing ? "FIRING" : "ok"));
      tr.dataset.alert = a.alert;
      tr.dataset.firing = a.firing ? "1" : "0";
      return tr;
    }));
  }

  function renderFleet(frame) {
    var workers = frame.workers || [];
    $("fleet-section").hidden = workers.length === 0 && !frame.fleet_error;
    $("fleet-summary").textContent = frame.fleet_error ? "unreachable: " + frame.fleet_error :
      workers.length + " live worker" + (workers.length === 1 ? "" : "s");
    fill($("workers").tBodies[0], workers.map(function (w) {
      var caches = Object.keys(w.caches || {}).map(function (name) {
        var c = w.caches[name];
        return name + ": " + num(c.hits) + " / " + num(c.misses) + " / " + pct(c.hit_rate) + " / " + num(c.errors);
      }).join("; ");
      return row([w.worker, w.namespace, num(w.age_seconds, 1) + " s ago", caches]);
    }));
  }

  function renderLoaders(loaders) {
    var names = Object.keys(loaders);
    $("loaders-section").hidden = names.length === 0;
    var box = $("loaders");
    while (box.firstChild) box.removeChild(box.firstChild);
    names.forEach(function (name) {
      var l = loaders[name];
      box.appendChild(make("p", "muted", name + ": " + num(l.loaded_count) + " loaded, " + num(l.failed_count) +
        " failed, " + num(l.total_load_seconds, 3) + " s, process " + num(l.current_memory_mb, 1) + " MB"));
      var table = make("table");
      var head = make("tr");
      ["module", "status", "load s", "memory MB"].forEach(function (h) { head.appendChild(make("th", "", h)); });
      table.appendChild(make("thead")).appendChild(head);
      var body = table.appendChild(make("tbody"));
      l.modules.forEach(function (m) {
        body.appendChild(row([m.name, m.status, num(m.load_seconds, 4), num(m.memory_mb, 2)]));
      });
      box.appendChild(table);
    });
  }

  function status(text, className) {
    var node = $("status");
    node.textContent = text;
    node.className = "status " + (className || "");
  }

  function connect() {
    var events = new EventSource("api/events" + query);
    events.onopen = function () { status("live", "live"); };
    events.onerror = function () { status("reconnecting…", "down"); };
    events.onmessage = function (message) { addFrame(JSON.parse(message.data), true); };
  }

  fetch("api/history" + query, { headers: token ? { Authorization: "Bearer " + token } : {} })
    .then(function (response) { return response.ok ? response.json() : []; })
    .then(function (frames) {
      frames.forEach(function (frame, i) { addFrame(frame, i === frames.length - 1); });
    })
    .catch(function () { /* the event stream brings the next frame anyway */ })
    .then(connect);
})();
