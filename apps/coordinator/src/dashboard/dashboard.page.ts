// The dashboard: one self-contained page (inline CSS and JS, no CDN) that polls /workers
// and /jobs and follows the selected job's loss over /jobs/:id/events (Server-Sent Events).
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>TensorFleet</title>
<style>
  :root { --fg: #1d2330; --muted: #6b7385; --line: #e3e6ec; --accent: #2f6fed; --ok: #1f9d55; --bad: #d64545; --warn: #c98a0b; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, Segoe UI, sans-serif; color: var(--fg); background: #f6f7f9; }
  header { padding: 12px 20px; background: #111827; color: #fff; display: flex; gap: 16px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  header span { color: #aab2c0; font-size: 12px; }
  header a { color: #9cc0ff; margin-left: auto; font-size: 12px; }
  main { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; padding: 16px 20px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; overflow: auto; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: 14px; margin: 0 0 8px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
  table { width: 100%; border-collapse: collapse; }
  th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { font-weight: 600; color: var(--muted); font-size: 12px; }
  tr.job { cursor: pointer; } tr.job:hover { background: #f1f5ff; } tr.sel { background: #e6eeff; }
  .dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; margin-right: 6px; }
  .state { font-weight: 600; }
  .s-running, .s-alive { color: var(--accent); } .s-completed { color: var(--ok); } .s-failed, .s-dead { color: var(--bad); }
  .s-paused, .s-queued, .s-scheduled { color: var(--warn); } .s-cancelled { color: var(--muted); }
  .bar { width: 140px; height: 10px; background: var(--line); border-radius: 5px; overflow: hidden; display: inline-block; vertical-align: middle; }
  .bar > i { display: block; height: 100%; background: var(--accent); }
  .muted { color: var(--muted); } .err { color: var(--bad); white-space: normal; max-width: 420px; }
  canvas { width: 100%; height: 260px; display: block; }
  #detail { font-size: 12px; color: var(--muted); margin-bottom: 6px; }
  @media (max-width: 900px) { main { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<header><h1>TensorFleet</h1><span id="summary">loading…</span><a href="docs">API (OpenAPI)</a><a href="metrics">metrics</a></header>
<main>
  <section><h2>Workers</h2>
    <table><thead><tr><th>Worker</th><th>Backend</th><th>Device</th><th>State</th><th>Job</th><th>Rank</th><th>Seen</th></tr></thead><tbody id="workers"></tbody></table>
  </section>
  <section><h2>Loss <span id="chartTitle" class="muted"></span></h2>
    <div id="detail">select a job</div>
    <canvas id="chart" width="800" height="260"></canvas>
  </section>
  <section class="wide"><h2>Layout <span id="layoutTitle" class="muted"></span></h2>
    <table><thead><tr><th>Rank</th><th>Worker</th><th>Replica</th><th>Part</th><th>Sections</th><th>Parameters</th><th>Weights</th><th>Optimizer</th><th>GMACs / image</th></tr></thead><tbody id="layout"></tbody></table>
  </section>
  <section class="wide"><h2>Jobs</h2>
    <table><thead><tr><th>Job</th><th>Model</th><th>State</th><th>Progress</th><th>Epoch</th><th>Loss</th><th>Acc</th><th>Img/s</th><th>Ranks</th><th>Checkpoint</th><th></th></tr></thead><tbody id="jobs"></tbody></table>
  </section>
</main>
<script>
(function () {
  var selected = null, source = null, points = [], evalPoints = [];
  function $(id) { return document.getElementById(id); }
  function esc(s) { return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) { return ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]; }); }
  function num(v, d) { return typeof v === 'number' ? v.toFixed(d) : ''; }
  function ago(ms) { var s = Math.max(0, Math.round((Date.now() - ms) / 1000)); return s < 60 ? s + 's' : Math.round(s / 60) + 'm'; }
  // The API token (when the coordinator has any): given once as #token=… or asked for on a 401,
  // kept in localStorage; every request sends it as a bearer header, the event stream as ?access_token=.
  var TOKEN_KEY = 'fleet.apiToken';
  (function () { var m = /(?:^#|&)token=([^&]+)/.exec(location.hash); if (m) { localStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1])); history.replaceState(null, '', location.pathname + location.search); } })();
  function token() { return localStorage.getItem(TOKEN_KEY) || ''; }
  function api(path, init) {
    init = init || {}; var t = token();
    if (t) init.headers = Object.assign({}, init.headers, { authorization: 'Bearer ' + t });
    return fetch(path, init).then(function (r) {
      if (r.status === 401) { var t2 = window.prompt('This coordinator needs an API token (FLEET_API_TOKEN or FLEET_API_READ_TOKEN):', ''); if (t2) localStorage.setItem(TOKEN_KEY, t2); }
      return r;
    });
  }
  function withToken(url) { var t = token(); return t ? url + (url.indexOf('?') < 0 ? '?' : '&') + 'access_token=' + encodeURIComponent(t) : url; }
  function getJSON(path) { return api(path).then(function (r) { if (!r.ok) throw new Error(path + ': ' + r.status); return r.json(); }); }

  function renderWorkers(ws) {
    $('workers').innerHTML = ws.map(function (w) {
      var st = w.alive ? w.state : 'dead';
      return '<tr><td>' + esc(w.id) + '<div class="muted">' + esc(w.host) + ' pid ' + esc(w.pid) + '</div></td><td>' + esc(w.backend) + '</td><td>' + esc(w.device) +
        '</td><td class="state s-' + (w.alive ? 'alive' : 'dead') + '">' + esc(st) + '</td><td>' + esc(w.jobId || '') + '</td><td>' + esc(w.rank == null ? '' : w.rank) +
        '</td><td class="muted">' + ago(w.lastSeen) + '</td></tr>';
    }).join('') || '<tr><td colspan="7" class="muted">no workers registered</td></tr>';
    return ws;
  }

  function renderJobs(js) {
    $('jobs').innerHTML = js.map(function (j) {
      var p = typeof j.progress === 'number' ? j.progress : (j.state === 'completed' ? 1 : 0);
      var actions = (j.state === 'running' || j.state === 'queued' ? '<button data-a="pause" data-id="' + esc(j.id) + '">pause</button> ' : '') +
        (j.state === 'paused' || j.state === 'failed' ? '<button data-a="resume" data-id="' + esc(j.id) + '">resume</button> ' : '') +
        (['queued', 'scheduled', 'running', 'paused'].indexOf(j.state) >= 0 ? '<button data-a="cancel" data-id="' + esc(j.id) + '">cancel</button>' : '');
      return '<tr class="job' + (j.id === selected ? ' sel' : '') + '" data-id="' + esc(j.id) + '"><td>' + esc(j.name || j.id) + '<div class="muted">' + esc(j.id) + '</div></td><td>' + esc(j.spec.model.name) +
        '</td><td class="state s-' + esc(j.state) + '">' + esc(j.state) + (j.pauseRequested ? ' (pausing)' : '') + (j.error ? '<div class="err">' + esc(j.error) + '</div>' : '') +
        '</td><td><span class="bar"><i style="width:' + (p * 100).toFixed(1) + '%"></i></span> <span class="muted">' + esc(j.step == null ? 0 : j.step) + '/' + esc(j.totalSteps || '?') + '</span>' +
        '</td><td>' + esc(j.epoch == null ? '' : j.epoch) + '</td><td>' + num(j.loss, 4) + '</td><td>' + (typeof j.accuracy === 'number' ? (j.accuracy * 100).toFixed(1) + '%' : '') +
        '</td><td>' + num(j.imagesPerSec, 1) + '</td><td>' + (j.members ? j.members.length : (j.layout ? j.layout.length : j.spec.parallelism.dataParallel)) + '</td><td class="muted">' + esc(j.lastCheckpoint || '') + '</td><td>' + actions + '</td></tr>';
    }).join('') || '<tr><td colspan="11" class="muted">no jobs yet: POST /jobs or fleet submit</td></tr>';
    return js;
  }

  function mb(b) { return (b / 1e6).toFixed(1) + ' MB'; }
  function renderLayout(j) {
    var rows = (j && j.layout) || [];
    $('layoutTitle').textContent = j ? (j.name || j.id) + (j.spec.parallelism.modelParallel ? ' · ' + j.spec.parallelism.modelParallel.kind : ' · data parallel') : '';
    $('layout').innerHTML = rows.map(function (l) {
      var part = l.role === 'replica' ? 'whole model' : l.role + ' ' + l.stage;
      var secs = l.sections[0] === l.sections[1] ? l.sections[0] : l.sections[0] + ' … ' + l.sections[1];
      return '<tr><td>' + esc(l.rank) + '</td><td>' + esc(l.workerId || '') + '</td><td>' + esc(l.replica) + '</td><td>' + esc(part) + '</td><td>' + esc(secs) +
        '</td><td>' + esc(l.params.toLocaleString()) + '</td><td>' + mb(l.weightBytes) + '</td><td>' + mb(l.optimizerBytes) + '</td><td>' + (l.macs / 1e9).toFixed(2) + '</td></tr>';
    }).join('') || '<tr><td colspan="9" class="muted">select a job</td></tr>';
  }

  function refresh() {
    Promise.all([getJSON('workers'), getJSON('jobs')]).then(function (r) {
      renderWorkers(r[0]); renderJobs(r[1]);
      renderLayout(r[1].filter(function (j) { return j.id === selected; })[0]);
      var alive = r[0].filter(function (w) { return w.alive; }).length, busy = r[0].filter(function (w) { return w.alive && w.state === 'busy'; }).length;
      var running = r[1].filter(function (j) { return j.state === 'running'; }).length, queued = r[1].filter(function (j) { return j.state === 'queued'; }).length;
      $('summary').textContent = alive + ' workers alive, ' + busy + ' busy · ' + running + ' running, ' + queued + ' queued · ' + new Date().toLocaleTimeString();
      if (!selected && r[1].length) select(r[1][0].id);
    }).catch(function (e) { $('summary').textContent = 'coordinator unreachable: ' + e.message; });
  }

  function draw() {
    var c = $('chart'), ctx = c.getContext('2d'), W = c.width = c.clientWidth * (window.devicePixelRatio || 1), H = c.height = 260 * (window.devicePixelRatio || 1);
    var pad = 40 * (window.devicePixelRatio || 1);
    ctx.clearRect(0, 0, W, H); ctx.font = (11 * (window.devicePixelRatio || 1)) + 'px system-ui'; ctx.fillStyle = '#6b7385';
    var all = points.concat(evalPoints);
    if (!all.length) { ctx.fillText('no metrics yet', pad, H / 2); return; }
    var xs = all.map(function (p) { return p[0]; }), ys = all.map(function (p) { return p[1]; });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs), y0 = Math.min(0, Math.min.apply(null, ys)), y1 = Math.max.apply(null, ys);
    if (x1 === x0) x1 = x0 + 1; if (y1 === y0) y1 = y0 + 1;
    function X(v) { return pad + (v - x0) / (x1 - x0) * (W - 1.5 * pad); } function Y(v) { return H - pad + (y0 - v) / (y1 - y0) * (H - 1.5 * pad); }
    ctx.strokeStyle = '#e3e6ec'; ctx.beginPath();
    for (var i = 0; i <= 4; i++) { var yv = y0 + (y1 - y0) * i / 4; ctx.moveTo(pad, Y(yv)); ctx.lineTo(W - pad / 2, Y(yv)); ctx.fillText(yv.toFixed(2), 2, Y(yv) + 4); }
    ctx.stroke(); ctx.fillText('step ' + x0, pad, H - pad / 3); ctx.fillText('step ' + x1, W - pad * 2, H - pad / 3);
    ctx.strokeStyle = '#2f6fed'; ctx.lineWidth = 1.5 * (window.devicePixelRatio || 1); ctx.beginPath();
    points.forEach(function (p, k) { if (k) ctx.lineTo(X(p[0]), Y(p[1])); else ctx.moveTo(X(p[0]), Y(p[1])); }); ctx.stroke();
    ctx.fillStyle = '#1f9d55'; evalPoints.forEach(function (p) { ctx.beginPath(); ctx.arc(X(p[0]), Y(p[1]), 4, 0, 7); ctx.fill(); });
  }

  function addMetric(m) {
    if (m.rank !== 0 && m.rank !== undefined) return;
    (m.kind === 'eval' ? evalPoints : points).push([m.step, m.loss]);
    if (points.length > 5000) points = points.filter(function (_, i) { return i % 2 === 0; });
  }

  function select(id) {
    if (source) source.close();
    selected = id; points = []; evalPoints = [];
    $('chartTitle').textContent = id; $('detail').textContent = 'loading…';
    getJSON('jobs/' + encodeURIComponent(id) + '/metrics?from=0&count=10000').then(function (r) {
      if (selected !== id) return;
      r.entries.forEach(addMetric); draw();
      source = new EventSource(withToken('jobs/' + encodeURIComponent(id) + '/events?metricsFrom=' + encodeURIComponent(r.next)));
      source.addEventListener('metric', function (e) { addMetric(JSON.parse(e.data)); draw(); });
      source.addEventListener('job', function (e) { var j = JSON.parse(e.data); $('detail').textContent = j.state + ' · step ' + (j.step || 0) + '/' + (j.totalSteps || '?') + (j.evalAccuracy != null ? ' · eval acc ' + (j.evalAccuracy * 100).toFixed(1) + '%' : '') + (j.error ? ' · ' + j.error : ''); });
      source.addEventListener('event', function (e) { var ev = JSON.parse(e.data); if (ev.type === 'job-state') refresh(); });
      source.addEventListener('end', function () { source.close(); refresh(); });
    }).catch(function (e) { $('detail').textContent = e.message; });
    refresh();
  }

  $('jobs').addEventListener('click', function (e) {
    var b = e.target.closest('button');
    if (b) { e.stopPropagation(); api('jobs/' + encodeURIComponent(b.dataset.id) + '/' + b.dataset.a, { method: 'POST' }).then(function (r) { if (!r.ok) r.json().then(function (e) { alert(e.message || r.status); }); refresh(); }); return; }
    var tr = e.target.closest('tr.job'); if (tr) select(tr.dataset.id);
  });
  window.addEventListener('resize', draw);
  refresh(); setInterval(refresh, 2000);
})();
</script>
</body>
</html>
`;
