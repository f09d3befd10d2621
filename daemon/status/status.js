/* evproxy's status page script (served as /status.js; script-src 'self' allows nothing inline).
   Every 2 s it fetches status.json, renders the totals, routes and servers with DOM calls only
   (names are text, never markup), and turns the difference between two samples into rates,
   timed by the daemon's own clock (uptime_ms). It marks <body> for tests and tools:
   data-samples (renders so far), data-css ("ok" once the stylesheet applied), data-csp (number of
   Content-Security-Policy violations seen). */
"use strict";

(function () {
  var POLL_MS = 2000;
  var prev = null; // the previous sample: {t, routes: {name: route}, servers: {key: server}}
  var samples = 0;
  var violations = 0;

  document.addEventListener("securitypolicyviolation", function () {
    violations++;
    document.body.setAttribute("data-csp", String(violations));
  });

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function fmtBytes(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(1)) + " " + units[i];
  }

  function fmtRate(r, bytes) {
    if (r === null) return "–";
    return bytes ? fmtBytes(r) + "/s" : r.toFixed(1) + "/s";
  }

  function fmtUptime(ms) {
    var s = Math.floor(ms / 1000);
    var d = Math.floor(s / 86400);
    var h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60);
    var out = (d ? d + "d " : "") + (d || h ? h + "h " : "") + (d || h || m ? m + "m " : "");
    return out + (s % 60) + "s";
  }

  // Per second, from the value in the previous sample (null on the first, or after a restart).
  function rate(cur, old, dt) {
    if (old === undefined || old === null || dt <= 0 || cur < old) return null;
    return ((cur - old) * 1000) / dt;
  }

  // A cell: its column name for the phone layout, its raw number (data-value) for tools.
  function cell(tr, label, text, value, cls) {
    var td = el("td", text, cls);
    td.setAttribute("data-label", label);
    td.setAttribute("data-field", label.toLowerCase().replace(/[^a-z]+/g, "_"));
    if (value !== undefined && value !== null) td.setAttribute("data-value", String(value));
    tr.appendChild(td);
    return td;
  }

  function badge(tr, label, state) {
    var td = cell(tr, label, null, state);
    td.appendChild(el("span", state, "badge " + state));
  }

  function replaceBody(table, rows) {
    var old = table.tBodies[0];
    var body = document.createElement("tbody");
    rows.forEach(function (r) {
      body.appendChild(r);
    });
    table.replaceChild(body, old);
  }

  function renderTotals(t, dt) {
    var items = [
      ["Active", t.active, String(t.active)],
      ["Accepted", t.accepted, String(t.accepted)],
      ["Conns/s", null, fmtRate(rate(t.accepted, prev && prev.totals.accepted, dt), false)],
      ["Refused", t.refused, String(t.refused)],
      ["Queued", t.queued, String(t.queued)],
      ["No server", t.no_server, String(t.no_server)],
      ["Connect failures", t.connect_failures, String(t.connect_failures)],
      ["Bytes in", t.bytes_in, fmtBytes(t.bytes_in)],
      ["In/s", null, fmtRate(rate(t.bytes_in, prev && prev.totals.bytes_in, dt), true)],
      ["Bytes out", t.bytes_out, fmtBytes(t.bytes_out)],
      ["Out/s", null, fmtRate(rate(t.bytes_out, prev && prev.totals.bytes_out, dt), true)],
    ];
    var dl = $("totals");
    while (dl.firstChild) dl.removeChild(dl.firstChild);
    items.forEach(function (it) {
      var div = el("div");
      var dd = el("dd", it[2]);
      div.setAttribute("data-field", it[0].toLowerCase().replace(/[^a-z]+/g, "_"));
      if (it[1] !== null) dd.setAttribute("data-value", String(it[1]));
      div.appendChild(el("dt", it[0]));
      div.appendChild(dd);
      dl.appendChild(div);
    });
  }

  function routeRow(r, dt) {
    var old = prev && prev.routes[r.name];
    var tr = el("tr");
    var refused = r.refused_acl + r.refused_limit + r.bad_proxy_header +
      r.refused_client_limit + r.rate_limited;
    tr.setAttribute("data-route", r.name);
    cell(tr, "Route", r.name, r.name);
    cell(tr, "Active", r.active, r.active);
    cell(tr, "Accepted", r.accepted, r.accepted);
    var cr = rate(r.accepted, old && old.accepted, dt);
    var irate = rate(r.bytes_in, old && old.bytes_in, dt);
    var orate = rate(r.bytes_out, old && old.bytes_out, dt);
    cell(tr, "Conns/s", fmtRate(cr, false), cr);
    var td = cell(tr, "Refused", refused, refused);
    td.title = "acl " + r.refused_acl + ", limit " + r.refused_limit +
      ", PROXY header " + r.bad_proxy_header + ", per-client limit " +
      r.refused_client_limit + ", client rate " + r.rate_limited;
    cell(tr, "Connect failures", r.connect_failures, r.connect_failures);
    cell(tr, "Bytes in", fmtBytes(r.bytes_in), r.bytes_in).title = r.bytes_in + " bytes";
    cell(tr, "In/s", fmtRate(irate, true), irate);
    cell(tr, "Bytes out", fmtBytes(r.bytes_out), r.bytes_out).title = r.bytes_out + " bytes";
    cell(tr, "Out/s", fmtRate(orate, true), orate);
    return tr;
  }

  function serverRow(route, s, dt) {
    var old = prev && prev.servers[route + "\n" + s.server];
    var tr = el("tr");
    tr.setAttribute("data-route", route);
    tr.setAttribute("data-server", s.server);
    cell(tr, "Route", route, route);
    cell(tr, "Server", s.server, s.server, "addr");
    badge(tr, "Admin", s.admin);
    badge(tr, "Health", s.health);
    cell(tr, "Active", s.active, s.active);
    cell(tr, "Connects", s.connects, s.connects);
    var cr = rate(s.connects, old && old.connects, dt);
    cell(tr, "Conns/s", fmtRate(cr, false), cr);
    cell(tr, "Connect failures", s.connect_failures, s.connect_failures);
    var err = s.last_error ? s.last_error + " (" + s.last_error_time + ")" : "–";
    cell(tr, "Last error", err, s.last_error || "", s.last_error ? "err" : null);
    return tr;
  }

  function render(data) {
    var dt = prev ? data.uptime_ms - prev.t : 0;
    var routes = [];
    var servers = [];
    var next = { t: data.uptime_ms, totals: data.totals, routes: {}, servers: {} };

    $("version").textContent = data.version;
    $("uptime").textContent = fmtUptime(data.uptime_ms);
    $("phase").textContent = data.phase;
    $("workers").textContent = String(data.workers);
    renderTotals(data.totals, dt);
    data.routes.forEach(function (r) {
      routes.push(routeRow(r, dt));
      next.routes[r.name] = r;
      r.upstreams.forEach(function (s) {
        servers.push(serverRow(r.name, s, dt));
        next.servers[r.name + "\n" + s.server] = s;
      });
    });
    replaceBody($("routes"), routes);
    replaceBody($("servers"), servers);
    prev = next;
    samples++;
    var st = $("state");
    st.textContent = "live, updated " + new Date().toLocaleTimeString();
    st.className = "state live";
    document.body.setAttribute("data-samples", String(samples));
  }

  function stale(why) {
    var st = $("state");
    st.textContent = "not updating: " + why;
    st.className = "state stale";
  }

  function poll() {
    fetch("status.json", { cache: "no-store" })
      .then(function (resp) {
        if (!resp.ok) throw new Error("HTTP " + resp.status);
        return resp.json();
      })
      .then(render)
      .catch(function (e) {
        stale(e && e.message ? e.message : String(e));
      })
      .then(function () {
        setTimeout(poll, POLL_MS);
      });
  }

  function start() {
    var css = getComputedStyle(document.documentElement).getPropertyValue("--evp-css");
    document.body.setAttribute("data-css", css.trim() === "loaded" ? "ok" : "missing");
    document.body.setAttribute("data-csp", String(violations));
    poll();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
