/*
 * Browser side of the ML plane: training jobs (table, progress bars, Cancel, live curves), the model
 * registry (status badges, Deploy, the endpoint with a curl example), prediction volume (chart and
 * KPI), the overview's ML KPIs, their toasts, and the Train and Copy buttons.
 *
 * Jobs and models are collections kept for the whole session, not only while their page is shown:
 * the overview's KPIs count them. A page drawn by the server brings its rows through a store, and
 * they are merged with what events said meanwhile: a job's status only moves forward (queued,
 * running, then finished), and for a model the newest news wins (its `updated_at` against the
 * event's time). Painters write a table's store back when its rows change, and live values (progress,
 * metrics, counts) straight into the cells: see "tables" below.
 *
 * Curves and the prediction-volume chart are extended with Plotly.extendTraces, like the system
 * charts: each graph div remembers what it shows and gets only newer points.
 */
(function () {
  "use strict";

  const mlops = (window.mlops = window.mlops || {});
  const { H, fmtInt, when } = mlops.html;

  const JOBS_MAX = 100; // finished jobs kept (active ones always are)
  const CURVES_MAX = 20; // jobs whose curves are kept
  const IDLE_INTERVALS = 2.5; // as components/charts.py: a model idle this long drew 0 requests/s
  const RATE_WINDOW_MS = 60000;
  const ACTIVE = new Set(["queued", "running"]);
  const JOB_RANK = { queued: 0, running: 1, succeeded: 2, failed: 2, cancelled: 2 };
  const JOB_COLORS = { queued: "secondary", running: "primary", succeeded: "success", failed: "danger", cancelled: "secondary" };
  const MODEL_COLORS = { training: "info", ready: "primary", deploying: "warning", deployed: "success", retired: "secondary", failed: "danger" };
  const DEPLOYABLE = new Set(["ready", "retired"]);
  const LOSS_METRIC = /loss|error|mae|mse|rmse/i; // metrics that shrink as a model learns: the loss graph
  const HEADLINE = ["accuracy", "r2", "f1"]; // the metric a toast or a row quotes first

  const ml = (mlops.ml = {
    jobs: new Map(), // job id -> job
    models: new Map(), // model id -> model
    curves: new Map(), // job id -> {keys: [metric], points: [{n, step, m}], n}
    volume: [], // prediction_volume samples {seq, t, model_id, pipeline_id, count, total, interval_s}, oldest first
    seeded: { jobs: false, models: false },
    selectedJob: null, // chosen by a click; otherwise the newest running job
    autoJob: null,
    selectedModel: null, // chosen by a click; otherwise the latest deployed model
    busy: new Set(), // actions whose request is in flight
  });
  const ids = () => mlops.ids();
  const defined = (obj) => {
    for (const k of Object.keys(obj)) if (obj[k] === undefined) delete obj[k];
    return obj;
  };
  const ms = (ts) => (ts ? Date.parse(ts) : NaN);

  // ---- formatting -------------------------------------------------------------------------------
  function num(v) {
    if (v === null || v === undefined || typeof v !== "number") return "—";
    return Math.abs(v) >= 1000 ? fmtInt(Math.round(v)) : String(Number(v.toPrecision(4)));
  }
  function seconds(s) {
    if (s === null || s === undefined || !isFinite(s)) return "";
    if (s < 60) return s.toFixed(1) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
  }
  function metricsText(metrics, limit) {
    const entries = Object.entries(metrics || {}).filter(([, v]) => typeof v === "number");
    entries.sort((a, b) => rankMetric(a[0]) - rankMetric(b[0]));
    return entries
      .slice(0, limit || entries.length)
      .map(([k, v]) => k + " " + num(v))
      .join(" · ");
  }
  function rankMetric(name) {
    const i = HEADLINE.indexOf(name);
    return i < 0 ? HEADLINE.length : i;
  }
  const badge = (text, color, extra) => H("Span", { className: "badge text-bg-" + color + " " + (extra || "") }, text);
  const pipelineName = (pid) => {
    const pipelines = mlops.collections && mlops.collections.pipelines;
    const p = pipelines && pipelines.get(String(pid));
    return p ? p.name : "pipeline #" + pid;
  };
  const modelName = (m) => (m.pipeline_name || pipelineName(m.pipeline_id)) + (m.version ? " v" + m.version : "");

  // The server's clock, from the browser's: events are stamped by the server, and the smallest
  // recent delay between a stamp and its arrival is the clock offset (plus a few ms of transit).
  function serverNow() {
    const recent = mlops.latency.slice(-200);
    return Date.now() - (recent.length ? Math.min.apply(null, recent) : 0);
  }

  // ---- jobs -------------------------------------------------------------------------------------
  function putJob(job) {
    const key = String(job.id);
    const old = ml.jobs.get(key);
    if (!old) ml.jobs.set(key, job);
    else {
      const rank = (j) => JOB_RANK[j.status] || 0;
      const newer = rank(job) > rank(old) || (rank(job) === rank(old) && (job.progress || 0) >= (old.progress || 0));
      ml.jobs.set(key, newer ? Object.assign({}, old, job) : Object.assign({}, job, old));
    }
    if (ml.jobs.size > JOBS_MAX) {
      const finished = jobList().filter((j) => !ACTIVE.has(j.status));
      for (const j of finished.slice(Math.max(0, finished.length - (ml.jobs.size - JOBS_MAX)))) ml.jobs.delete(String(j.id));
    }
  }
  const created = (j) => ms(j.created_at) || ms(j._created) || 0;
  function jobList() {
    return Array.from(ml.jobs.values()).sort((a, b) => created(b) - created(a));
  }
  function mergeJobs(items) {
    for (const job of items) putJob(Object.assign({}, job));
    ml.seeded.jobs = true;
  }
  // The job the curves show: the one clicked, else the newest running one (kept once it finishes).
  function currentJob() {
    if (ml.selectedJob && ml.jobs.has(ml.selectedJob)) return ml.selectedJob;
    const jobs = jobList();
    const running = jobs.find((j) => j.status === "running");
    if (running) ml.autoJob = String(running.id);
    if (ml.autoJob && ml.jobs.has(ml.autoJob)) return ml.autoJob;
    return jobs.length ? String(jobs[0].id) : null;
  }
  function jobDuration(j) {
    if (typeof j.duration_s === "number") return j.duration_s;
    const start = ms(j.started_at) || ms(j._started);
    const end = ms(j.finished_at) || ms(j._finished) || (ACTIVE.has(j.status) ? serverNow() : NaN);
    return start && end ? Math.max(0, (end - start) / 1000) : null;
  }

  function record(jobId, step, metrics) {
    const names = Object.keys(metrics || {});
    if (!names.length) return;
    let curve = ml.curves.get(jobId);
    if (!curve) {
      curve = { keys: [], points: [], n: 0 };
      ml.curves.set(jobId, curve);
      if (ml.curves.size > CURVES_MAX) ml.curves.delete(ml.curves.keys().next().value);
    }
    const last = curve.points[curve.points.length - 1];
    if (last && step <= last.step) return; // a stage change repeats the last step
    for (const k of names) if (curve.keys.indexOf(k) < 0) curve.keys.push(k);
    curve.n += 1;
    curve.points.push({ n: curve.n, step: step, m: metrics });
    if (curve.points.length > mlops.TRACE_MAX) curve.points.splice(0, curve.points.length - mlops.TRACE_MAX);
  }

  function onProgress(e) {
    const d = e.data;
    const key = String(d.job_id);
    const old = ml.jobs.get(key);
    const status = d.stage === "queued" ? "queued" : "running";
    const job = defined({
      id: key,
      pipeline_id: d.pipeline_id,
      name: d.name || (old && old.name) || "job " + key.slice(0, 8),
      external: old ? old.external : d.pipeline_id === null || d.pipeline_id === undefined,
      status: status,
      progress: d.fraction,
      step: d.step,
      total: d.total,
      eta_s: d.eta_s,
      stage: d.stage,
      metrics: Object.keys(d.metrics || {}).length ? d.metrics : undefined,
      _created: old ? undefined : e.ts,
      _started: status === "running" && !(old && (old.started_at || old._started)) ? e.ts : undefined,
    });
    putJob(job);
    record(key, d.step, d.metrics);
  }
  function onComplete(e) {
    const d = e.data;
    const key = String(d.job_id);
    putJob(
      defined({
        id: key,
        pipeline_id: d.pipeline_id,
        name: d.name || undefined,
        status: "succeeded",
        progress: 1,
        eta_s: null,
        model_id: d.model_id,
        metrics: d.metrics,
        duration_s: d.duration_s,
        _created: ml.jobs.has(key) ? undefined : e.ts,
        _finished: e.ts,
      })
    );
    const headline = metricsText(d.metrics, 1);
    const model = d.model_id !== null && d.model_id !== undefined ? " Model #" + d.model_id + " is ready to deploy." : "";
    mlops.toast("Training complete", (d.name || key) + (headline ? ": " + headline + "." : ".") + model, "success");
  }
  function onError(e) {
    const d = e.data;
    const key = String(d.job_id);
    const cancelled = d.code === "cancelled";
    putJob(
      defined({
        id: key,
        pipeline_id: d.pipeline_id,
        name: d.name || undefined,
        status: cancelled ? "cancelled" : "failed",
        error: d.error,
        code: d.code,
        eta_s: null,
        _created: ml.jobs.has(key) ? undefined : e.ts,
        _finished: e.ts,
      })
    );
    const name = d.name || (ml.jobs.get(key) || {}).name || key;
    if (cancelled) mlops.toast("Training cancelled", name + ": " + d.error + ".", "secondary");
    else mlops.toast("Training failed", name + ": " + d.error, "danger");
  }

  // ---- models -----------------------------------------------------------------------------------
  // Events carry a model's lifecycle; rows from the registry carry everything. A row older than the
  // last event (fetched before it) still brings its schema, metrics and names, but not its status.
  const LIFECYCLE = ["status", "message", "deployed_at", "_at"];
  function putModel(model) {
    const key = String(model.id);
    const old = ml.models.get(key);
    if (!old) ml.models.set(key, model);
    else if ((model._at || 0) >= (old._at || 0)) ml.models.set(key, Object.assign({}, old, model));
    else {
      const kept = {};
      for (const field of LIFECYCLE) if (field in old) kept[field] = old[field];
      ml.models.set(key, Object.assign({}, old, model, kept));
    }
  }
  function fromServer(m) {
    return Object.assign({}, m, { id: String(m.id), _at: ms(m.updated_at) || 0 });
  }
  function mergeModels(items) {
    for (const m of items) putModel(fromServer(m));
    ml.seeded.models = true;
  }
  function modelList() {
    return Array.from(ml.models.values()).sort((a, b) => Number(b.id) - Number(a.id));
  }
  // The model whose endpoint the page shows: the one clicked, else the latest deployed, else the newest.
  function currentModel() {
    if (ml.selectedModel && ml.models.has(ml.selectedModel)) return ml.models.get(ml.selectedModel);
    const deployed = modelList()
      .filter((m) => m.status === "deployed")
      .sort((a, b) => (ms(b.deployed_at) || b._at || 0) - (ms(a.deployed_at) || a._at || 0));
    return deployed[0] || modelList()[0] || null;
  }
  // The full row (schema, metrics, names) after a change the event does not carry; a model the
  // registry does not know (an event published by hand) keeps what its events said.
  const fetching = new Map();
  const unknown = new Set(); // ids the registry answered 404 for
  function refresh(modelId) {
    const key = String(modelId);
    if (fetching.has(key)) {
      fetching.set(key, true); // fetch again when this one returns
      return;
    }
    fetching.set(key, false);
    api("GET", "models/" + encodeURIComponent(key))
      .then((m) => putModel(fromServer(m)))
      .catch((err) => err.status === 404 && unknown.add(key))
      .then(() => {
        const again = fetching.get(key);
        fetching.delete(key);
        if (again) refresh(key);
      });
  }
  function onModelStatus(e) {
    const d = e.data;
    const key = String(d.model_id);
    const known = ml.models.get(key);
    putModel(defined({ id: key, pipeline_id: d.pipeline_id, version: d.version || undefined, status: d.status, message: d.message, _at: ms(e.ts) }));
    if (!known || !known.created_at || d.status === "ready" || d.status === "deployed") refresh(key);
  }
  function onDeployed(e) {
    const d = e.data;
    const key = String(d.model_id);
    const at = ms(e.ts);
    // One version per pipeline is deployed: the one it replaced is retired (model_status says so too).
    for (const m of ml.models.values()) {
      if (String(m.pipeline_id) === String(d.pipeline_id) && m.id !== key && m.status === "deployed") {
        putModel({ id: m.id, status: "retired", _at: at });
      }
    }
    putModel(defined({ id: key, pipeline_id: d.pipeline_id, version: d.version || undefined, status: "deployed", deployed_at: e.ts, _at: at }));
    refresh(key);
    const m = ml.models.get(key);
    const endpoint = d.endpoint || mlops.apiUrl("pipelines/" + d.pipeline_id + "/predict");
    mlops.toast("Model deployed", modelName(m) + " now answers at " + endpoint + ".", "success");
  }
  function onVolume(e) {
    const d = e.data;
    pushVolume({ seq: e.seq, t: e.ts, model_id: d.model_id, pipeline_id: d.pipeline_id, count: d.count, total: d.total, interval_s: d.interval_s });
    const m = ml.models.get(String(d.model_id));
    if (m && (m.predictions || 0) < d.total) {
      ml.models.set(String(d.model_id), Object.assign({}, m, { predictions: d.total }));
    } else if (!m && ml.seeded.models && !unknown.has(String(d.model_id))) refresh(d.model_id);
  }
  function pushVolume(sample) {
    ml.volume.push(sample);
    const max = mlops.state.config.max_points;
    if (ml.volume.length > max) ml.volume.splice(0, ml.volume.length - max);
  }

  // A new snapshot brings the recent volume; after a reset (new history) the page keeps the older
  // points it has, as the system charts do, and re-reads jobs and models, whose news it may have missed.
  mlops.snapshotHooks.push(function (snap, redraw) {
    const incoming = snap.predictions || [];
    let kept = [];
    if (redraw && ml.volume.length) {
      const firstT = incoming.length ? incoming[0].t : null;
      kept = ml.volume.filter((s) => firstT === null || s.t < firstT).map((s) => Object.assign({}, s, { seq: 0 }));
    }
    ml.volume = kept.concat(incoming).slice(-mlops.state.config.max_points);
    if (redraw) {
      api("GET", "jobs?limit=50").then((body) => mergeJobs(body.items)).catch(() => null);
      api("GET", "models").then((body) => mergeModels(body.items)).catch(() => null);
    }
  });

  // ---- requests and buttons ---------------------------------------------------------------------
  function api(method, path) {
    return fetch(mlops.apiUrl(path), { method: method, cache: "no-store", headers: mlops.csrfHeaders() }).then(
      (r) =>
        r.text().then((text) => {
          let body = null;
          try {
            body = text ? JSON.parse(text) : null;
          } catch (err) {
            body = null;
          }
          if (r.ok) return body;
          const err = new Error(body && body.error ? body.error.message : "the server answered " + r.status);
          err.status = r.status;
          throw err;
        }),
      () => {
        throw new Error("the dashboard could not be reached");
      }
    );
  }
  function action(key, request, done, failHeader) {
    if (ml.busy.has(key)) return; // a double click sends one request
    ml.busy.add(key);
    request()
      .then(done, (err) => mlops.toast(failHeader, err.message, "danger"))
      .then(() => ml.busy.delete(key));
  }
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    // Plain http on another host has no clipboard API: the old way still works there.
    return new Promise((resolve, reject) => {
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      const ok = document.execCommand("copy");
      document.body.removeChild(area);
      if (ok) resolve();
      else reject(new Error("the browser refused to copy"));
    });
  }

  document.addEventListener("click", (ev) => {
    if (!mlops.state || !mlops.state.config || !ev.target.closest) return;
    const copy = ev.target.closest("[data-copy-target]");
    if (copy) {
      const target = document.getElementById(copy.getAttribute("data-copy-target"));
      copyText(target ? target.innerText || target.textContent : "").then(
        () => {
          copy.classList.add("copied");
          setTimeout(() => copy.classList.remove("copied"), 1500);
        },
        (err) => mlops.toast("Copy failed", err.message, "warning")
      );
      return;
    }
    const button = ev.target.closest("[data-action]");
    const verb = button && button.getAttribute("data-action");
    if (verb === "train") {
      const pid = button.getAttribute("data-pipeline-id");
      action(
        "train-" + pid,
        () => api("POST", "pipelines/" + encodeURIComponent(pid) + "/train"),
        (job) => {
          putJob(Object.assign({}, job, { id: String(job.id) }));
          mlops.toast("Training queued", job.name + " is queued for training; follow it on the Training page.", "primary");
        },
        "Training not started"
      );
    } else if (verb === "cancel") {
      const id = button.getAttribute("data-job-id");
      action("cancel-" + id, () => api("POST", "jobs/" + encodeURIComponent(id) + "/cancel"), (job) => putJob(Object.assign({}, job, { id: String(job.id) })), "Cancel failed");
    } else if (verb === "deploy") {
      const id = button.getAttribute("data-model-id");
      ml.selectedModel = id;
      action("deploy-" + id, () => api("POST", "models/" + encodeURIComponent(id) + "/deploy"), (m) => putModel(fromServer(m)), "Deploy failed");
    } else if (verb === "select-model") {
      ml.selectedModel = button.getAttribute("data-model-id");
    } else if (!button) {
      const row = ev.target.closest("tr[data-job-id]");
      if (row) ml.selectedJob = row.getAttribute("data-job-id");
    }
  });

  // ---- tables: redrawn when their rows change, live values written into the cells ---------------
  // Dash remounts everything under a `children` it is given, so redrawing a table ten times a second
  // would replace its buttons under the pointer (a click whose press and release land on different
  // nodes is lost). A table is redrawn (its store written) only when its rows change: which, in what
  // order, their status or the selection. Progress, ETA, metrics, durations and prediction counts
  // go into their cells with set_props, which updates those components alone.
  const stringifyId = (id) =>
    "{" +
    Object.keys(id)
      .sort()
      .map((k) => JSON.stringify(k) + ":" + JSON.stringify(id[k]))
      .join(",") +
    "}";
  const cell = (type, key) => ({ type: type, id: String(key) });
  function setCell(type, key, props) {
    const id = cell(type, key);
    if (document.getElementById(stringifyId(id))) mlops.setProps(id, props);
  }
  function setText(id, text) {
    const el = document.getElementById(id);
    if (el && el.textContent !== text) mlops.setProps(id, { children: text });
  }

  function jobCells(j) {
    const pct = Math.round(100 * (j.status === "succeeded" ? 1 : j.progress || 0));
    const running = j.status === "running";
    let note = "";
    if (running && typeof j.eta_s === "number") note = "ETA " + seconds(j.eta_s);
    else if (running && j.stage && j.stage !== "training" && j.stage !== "running") note = j.stage;
    else if (j.status === "queued") note = "waiting for a worker";
    const elapsed = jobDuration(j);
    const duration = ACTIVE.has(j.status) && elapsed !== null ? seconds(Math.floor(elapsed)) : seconds(elapsed);
    return { pct: pct, note: note, metrics: metricsText(j.metrics), duration: duration };
  }
  function writeJobCells(key, c, was) {
    if (c.pct !== was.pct) {
      setCell("job-bar", key, { style: { width: c.pct + "%" }, "aria-valuenow": String(c.pct) });
      setCell("job-percent", key, { children: c.pct + "%" });
    }
    if (c.note !== was.note) setCell("job-eta", key, { children: c.note });
    if (c.metrics !== was.metrics) setCell("job-metrics", key, { children: c.metrics });
    if (c.duration !== was.duration) setCell("job-duration", key, { children: c.duration });
  }
  const jobShape = (j) => [j.id, j.status, j.name, j.pipeline_id, j.external, j.error].join("\u0001");
  const modelCells = (m) => ({ predictions: fmtInt(m.predictions || 0) });
  function writeModelCells(key, c) {
    setCell("model-predictions", key, { children: c.predictions });
  }
  const modelShape = (m) =>
    [m.id, m.status, m.version, m.pipeline_name, m.pipeline_id, metricsText(m.metrics, 2), m.created_at, JSON.stringify(m.schema || [])].join("\u0001");

  const TABLES = {
    jobs: {
      table: () => ids().JOBS_TABLE,
      store: () => ids().JOBS_STORE,
      items: jobList,
      selected: () => currentJob(),
      shape: jobShape,
      cells: jobCells,
      write: writeJobCells,
    },
    models: {
      table: () => ids().MODELS_TABLE,
      store: () => ids().MODELS_STORE,
      items: modelList,
      selected: () => (currentModel() || {}).id,
      shape: modelShape,
      cells: modelCells,
      write: writeModelCells,
    },
  };
  // What a table shows, remembered on its div (a page navigated to has a new div, drawn afresh).
  function remember(t, items) {
    const el = document.getElementById(t.table());
    if (!el) return null;
    el._mlopsShape = t.selected() + "|" + items.map(t.shape).join(";");
    el._mlopsCells = new Map(items.map((item) => [String(item.id), t.cells(item)]));
    return el;
  }
  // A store is written only once its table shows the server's rows (the renderer has run).
  function drawTable(t) {
    const el = document.getElementById(t.table());
    if (!el || !el.firstChild || !el._mlopsCells) return;
    const items = t.items();
    if (el._mlopsShape !== t.selected() + "|" + items.map(t.shape).join(";")) {
      remember(t, items);
      mlops.setProps(t.store(), { data: { items: items } });
      return;
    }
    for (const item of items) {
      const key = String(item.id);
      const now = t.cells(item);
      const was = el._mlopsCells.get(key) || {};
      if (JSON.stringify(now) !== JSON.stringify(was)) {
        el._mlopsCells.set(key, now);
        t.write(key, now, was);
      }
    }
  }
  function drawTables() {
    drawTable(TABLES.jobs);
    drawTable(TABLES.models);
  }

  function predictionsPerMinute() {
    const since = serverNow() - RATE_WINDOW_MS;
    let sum = 0;
    const models = new Set();
    for (let k = ml.volume.length - 1; k >= 0 && ms(ml.volume[k].t) >= since; k--) {
      sum += ml.volume[k].count;
      models.add(String(ml.volume[k].model_id));
    }
    return [sum, models.size];
  }
  function kpiTexts() {
    const i = ids();
    const out = [];
    if (ml.seeded.jobs) {
      const jobs = Array.from(ml.jobs.values());
      const running = jobs.filter((j) => j.status === "running").length;
      const queued = jobs.filter((j) => j.status === "queued").length;
      out.push([i.KPI_TRAININGS, String(running + queued)], [i.KPI_TRAININGS_SUB, running + " running · " + queued + " queued"]);
    }
    if (ml.seeded.models) {
      const models = Array.from(ml.models.values());
      const deployed = models.filter((m) => m.status === "deployed").length;
      out.push([i.KPI_DEPLOYED, String(deployed)], [i.KPI_DEPLOYED_SUB, models.length + " in the registry"]);
    }
    const [perMinute, serving] = predictionsPerMinute();
    out.push([i.KPI_PREDICTIONS, fmtInt(perMinute)], [i.KPI_PREDICTIONS_SUB, "over the last 60 s" + (serving ? " · " + serving + (serving === 1 ? " model" : " models") : "")]);
    return out;
  }
  function drawKpis() {
    if (!document.getElementById(ids().KPI_PREDICTIONS)) return;
    for (const [id, text] of kpiTexts()) setText(id, text);
  }

  function lineTrace(label, x, y, hover) {
    return { x: x, y: y, name: label, mode: "lines", line: { width: 2 }, hovertemplate: hover + "<extra>" + label + "</extra>" };
  }
  function replaceTraces(gd, traces) {
    if (gd.data.length) Plotly.deleteTraces(gd, gd.data.map((_, k) => k));
    if (traces.length) Plotly.addTraces(gd, traces);
  }

  // Points to append for sample `s` of a model whose previous sample was `prev` (or none).
  const iso = (t) => new Date(t).toISOString();
  function volumePoints(prev, s) {
    const x = [];
    const y = [];
    if (prev) {
      const gap = ms(s.t) - ms(prev.t);
      if (gap > IDLE_INTERVALS * prev.interval_s * 1000) {
        x.push(iso(ms(prev.t) + prev.interval_s * 1000), iso(ms(s.t) - s.interval_s * 1000));
        y.push(0, 0);
      }
    }
    x.push(s.t);
    y.push(s.count / s.interval_s);
    return [x, y];
  }
  const volumeTrace = (model, x, y) => lineTrace("model " + model, x, y, "%{y:.3~f}/s");
  function drawVolume() {
    const gd = mlops.graphDiv(ids().GRAPH_PREDICTIONS);
    if (!gd) return;
    const S = mlops.state;
    const samples = ml.volume;
    const newest = samples.length ? samples[samples.length - 1].seq : 0;
    if (gd._mlopsGen === S.generation && gd._mlopsSeq >= newest) return;
    if (gd._mlopsGen !== S.generation) {
      const series = new Map();
      const last = new Map();
      for (const s of samples) {
        const key = String(s.model_id);
        if (!series.has(key)) series.set(key, [[], []]);
        const [x, y] = volumePoints(last.get(key), s);
        series.get(key)[0].push(...x);
        series.get(key)[1].push(...y);
        last.set(key, s);
      }
      replaceTraces(gd, Array.from(series, ([key, [x, y]]) => volumeTrace(key, x, y)));
      gd._mlopsModels = Array.from(series.keys());
      gd._mlopsLast = last;
    } else {
      let start = samples.length;
      while (start > 0 && samples[start - 1].seq > gd._mlopsSeq) start -= 1;
      const fresh = new Map();
      for (const s of samples.slice(start)) {
        const key = String(s.model_id);
        if (gd._mlopsModels.indexOf(key) < 0) {
          Plotly.addTraces(gd, volumeTrace(key, [], []));
          gd._mlopsModels.push(key);
        }
        if (!fresh.has(key)) fresh.set(key, [[], []]);
        const [x, y] = volumePoints(gd._mlopsLast.get(key), s);
        fresh.get(key)[0].push(...x);
        fresh.get(key)[1].push(...y);
        gd._mlopsLast.set(key, s);
      }
      if (fresh.size) {
        const keys = Array.from(fresh.keys());
        Plotly.extendTraces(
          gd,
          { x: keys.map((k) => fresh.get(k)[0]), y: keys.map((k) => fresh.get(k)[1]) },
          keys.map((k) => gd._mlopsModels.indexOf(k)),
          S.config.max_points
        );
      }
    }
    gd._mlopsGen = S.generation;
    gd._mlopsSeq = newest;
  }

  // A job's earlier points (before this page opened) come from the server's event history, once
  // per job, merged with what arrived live.
  const backfilled = new Set(); // asked for
  const answered = new Set(); // and heard back
  function backfill(jobId) {
    // Only ids of the server's form (32 hex) can have a record: jobs announced by hand through
    // POST /events with other ids are not asked about (a 404 is a console error in the page).
    if (!jobId || backfilled.has(jobId) || !/^[0-9a-f]{32}$/.test(jobId)) return;
    backfilled.add(jobId);
    api("GET", "jobs/" + encodeURIComponent(jobId) + "/progress")
      .then((body) => {
        answered.add(jobId);
        const byStep = new Map();
        for (const item of (body && body.items) || []) byStep.set(item.step, item.metrics);
        const curve = ml.curves.get(jobId);
        for (const p of curve ? curve.points : []) byStep.set(p.step, p.m);
        if (!byStep.size || (curve && byStep.size === curve.points.length)) return drawCurves();
        ml.curves.delete(jobId);
        for (const step of Array.from(byStep.keys()).sort((a, b) => a - b)) record(jobId, step, byStep.get(step));
        const i = ids();
        for (const graphId of [i.GRAPH_TRAIN_LOSS, i.GRAPH_TRAIN_SCORE]) {
          const gd = mlops.graphDiv(graphId);
          if (gd) gd._mlopsSignature = null; // redraw from the merged points
        }
        drawCurves();
      })
      .catch((err) => {
        if (err.status === 404) answered.add(jobId); // a job the server has no record of (announced by hand)
        else backfilled.delete(jobId); // asked again on a later paint
      });
  }

  function drawCurves() {
    const i = ids();
    if (!document.getElementById(i.CURVES_TITLE)) return;
    const jobId = currentJob();
    backfill(jobId);
    const job = jobId ? ml.jobs.get(jobId) : null;
    const curve = (jobId && ml.curves.get(jobId)) || { keys: [], points: [], n: 0 };
    for (const [graphId, lossSide] of [
      [i.GRAPH_TRAIN_LOSS, true],
      [i.GRAPH_TRAIN_SCORE, false],
    ]) {
      const gd = mlops.graphDiv(graphId);
      if (!gd) continue;
      const keys = curve.keys.filter((k) => LOSS_METRIC.test(k) === lossSide);
      const signature = jobId + "|" + keys.join("|");
      const column = (k, points) => points.map((p) => (typeof p.m[k] === "number" ? p.m[k] : null));
      if (gd._mlopsSignature !== signature) {
        const steps = curve.points.map((p) => p.step);
        replaceTraces(gd, keys.map((k) => lineTrace(k, steps, column(k, curve.points), "%{y:.4~g}")));
        gd._mlopsSignature = signature;
        gd._mlopsN = curve.n;
      } else if (curve.n > gd._mlopsN && keys.length) {
        const fresh = curve.points.filter((p) => p.n > gd._mlopsN);
        Plotly.extendTraces(
          gd,
          { x: keys.map(() => fresh.map((p) => p.step)), y: keys.map((k) => column(k, fresh)) },
          keys.map((_, k) => k),
          mlops.TRACE_MAX
        );
        gd._mlopsN = curve.n;
      }
    }
    let title = "No job selected";
    if (job) {
      const step = job.total ? " · step " + (job.step || 0) + " of " + job.total : "";
      const none = answered.has(jobId) ? " · no curve points kept for this job" : "";
      title = job.name + " · " + job.status + step + (curve.points.length ? "" : none);
    }
    setText(i.CURVES_TITLE, title);
  }
  mlops.painters.push(drawTables, drawKpis, drawVolume, drawCurves);

  mlops.handlers = Object.assign(mlops.handlers || {}, {
    training_progress: onProgress,
    training_complete: onComplete,
    training_error: onError,
    model_status: onModelStatus,
    model_deployed: onDeployed,
    prediction_volume: onVolume,
  });

  // ---- renderers (clientside callbacks) ---------------------------------------------------------
  function progressCell(j, c) {
    const key = String(j.id);
    const color = { succeeded: "bg-success", failed: "bg-danger", cancelled: "bg-secondary", queued: "bg-secondary" }[j.status] || "";
    const bar = H("Div", {
      id: cell("job-bar", key),
      className: "progress-bar " + color + (j.status === "running" ? " progress-bar-striped progress-bar-animated" : ""),
      role: "progressbar",
      style: { width: c.pct + "%" },
      "aria-valuenow": String(c.pct),
      "aria-valuemin": "0",
      "aria-valuemax": "100",
    });
    return H("Td", { className: "job-progress" }, [
      H("Div", { className: "d-flex align-items-center" }, [
        H("Div", { className: "progress flex-grow-1", style: { height: "1rem" } }, bar),
        H("Span", { id: cell("job-percent", key), className: "ms-2 small job-percent" }, c.pct + "%"),
      ]),
      H("Div", { id: cell("job-eta", key), className: "small text-muted job-eta" }, c.note),
    ]);
  }
  function jobRow(j, selected) {
    const id = String(j.id);
    const external = j.external || j.pipeline_id === null || j.pipeline_id === undefined;
    const c = jobCells(j);
    const status = [badge(j.status, JOB_COLORS[j.status] || "secondary", "job-status")];
    if (j.error) status.push(H("Div", { className: "small text-danger job-error" }, j.error));
    return H("Tr", { "data-job-id": id, "data-status": j.status, className: "job-row" + (selected ? " table-active" : "") }, [
      H("Td", {}, [H("Div", { className: "fw-semibold" }, j.name), H("Div", { className: "small text-muted font-monospace" }, id.slice(0, 8))]),
      H("Td", {}, external ? badge("external", "light", "border") : "#" + j.pipeline_id),
      H("Td", {}, status),
      progressCell(j, c),
      H("Td", { id: cell("job-metrics", id), className: "small job-metrics" }, c.metrics),
      H("Td", { id: cell("job-duration", id), className: "small text-nowrap job-duration" }, c.duration),
      H(
        "Td",
        {},
        ACTIVE.has(j.status) && !external
          ? H("Button", { className: "btn btn-sm btn-outline-danger", "data-action": "cancel", "data-job-id": id }, "Cancel")
          : ""
      ),
    ]);
  }

  function curlExample(url, schema) {
    const example = {};
    for (const c of schema || []) {
      if (c.type === "number") example[c.name] = 0;
      else if (c.type === "boolean") example[c.name] = false;
      else example[c.name] = (c.categories && c.categories[0]) || "";
    }
    const body = JSON.stringify({ instances: [example] }).replace(/'/g, "'\\''"); // safe inside '...'
    const auth = mlops.state.config.auth === "on" ? ' -H "Authorization: Bearer $MLOPS_TOKEN"' : "";
    return "curl -X POST " + url + auth + " -H 'Content-Type: application/json' -d '" + body + "'";
  }
  function endpointPanel(m) {
    const i = ids();
    if (!m) {
      return [
        H("Div", { className: "card-header fw-semibold" }, "Endpoint"),
        H("Div", { className: "card-body text-muted small" }, "Train a model, then deploy it: its endpoint and a curl example appear here."),
      ];
    }
    const deployed = m.status === "deployed";
    const path = deployed ? "pipelines/" + m.pipeline_id + "/predict" : "models/" + m.id + "/predict";
    const url = window.location.origin + mlops.apiUrl(path);
    const inputs = (m.schema || []).map((c) => c.name + " (" + c.type + ")").join(", ");
    return [
      H("Div", { className: "card-header d-flex justify-content-between align-items-center" }, [
        H("Span", { className: "fw-semibold" }, "Endpoint · " + modelName(m)),
        badge(m.status, MODEL_COLORS[m.status] || "secondary", deployed ? "badge-deployed" : ""),
      ]),
      H("Div", { className: "card-body" }, [
        H(
          "Div",
          { className: "small text-muted mb-1" },
          deployed ? "The pipeline's endpoint, answered by its deployed version:" : "This version only (deploy it to serve it at the pipeline's endpoint):"
        ),
        H("Div", { className: "font-monospace small mb-2 endpoint-url" }, "POST " + url),
        H("Pre", { id: i.MODEL_CURL, className: "small bg-light border rounded p-2 mb-2 text-wrap model-curl" }, curlExample(url, m.schema)),
        H("Button", { className: "btn btn-sm btn-outline-secondary copy-button", "data-copy-target": i.MODEL_CURL, title: "Copy to the clipboard" }, H("Span", { className: "copy-label" }, "Copy")),
        inputs ? H("Div", { className: "small text-muted mt-2" }, "Inputs: " + inputs) : null,
        m.classes ? H("Div", { className: "small text-muted" }, "Classes: " + m.classes.join(", ")) : null,
      ].filter(Boolean)),
    ];
  }
  function modelRow(m, selected) {
    const deployed = m.status === "deployed";
    const actions = [];
    if (DEPLOYABLE.has(m.status)) {
      actions.push(H("Button", { className: "btn btn-sm btn-outline-success me-1", "data-action": "deploy", "data-model-id": m.id }, "Deploy"));
    }
    actions.push(H("Button", { className: "btn btn-sm btn-outline-secondary", "data-action": "select-model", "data-model-id": m.id }, "Endpoint"));
    return H("Tr", { "data-model-id": m.id, "data-status": m.status, className: (deployed ? "model-deployed" : "") + (selected ? " table-active" : "") }, [
      H("Td", { className: "fw-semibold" }, m.pipeline_name || pipelineName(m.pipeline_id)),
      H("Td", {}, m.version ? "v" + m.version : "—"),
      H("Td", {}, [
        badge(m.status, MODEL_COLORS[m.status] || "secondary", "model-status" + (deployed ? " badge-deployed" : "")),
        m.status === "failed" && m.message ? H("Div", { className: "small text-danger" }, m.message) : null,
      ].filter(Boolean)),
      H("Td", { className: "small model-metrics" }, metricsText(m.metrics, 2)),
      H("Td", { id: cell("model-predictions", m.id), className: "model-predictions" }, modelCells(m).predictions),
      H("Td", { className: "small text-muted" }, when(m.created_at)),
      H("Td", { className: "text-nowrap" }, actions),
    ]);
  }

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.mlops_ml = {
    renderJobs: function (data) {
      mergeJobs((data && data.items) || []);
      const items = jobList();
      const selected = currentJob();
      remember(TABLES.jobs, items); // drawn from the collection as it is now
      if (!items.length) return H("Div", { className: "p-3 text-muted" }, "No training jobs yet: press Train on a pipeline.");
      return H("Table", { className: "table table-sm table-hover align-middle mb-0 jobs-table" }, [
        H("Thead", {}, H("Tr", {}, ["Job", "Pipeline", "Status", "Progress", "Metrics", "Duration", ""].map((h) => H("Th", {}, h)))),
        H(
          "Tbody",
          {},
          items.map((j) => jobRow(j, String(j.id) === selected))
        ),
      ]);
    },

    renderModels: function (data) {
      mergeModels((data && data.items) || []);
      const items = modelList();
      const current = currentModel();
      remember(TABLES.models, items);
      const panel = endpointPanel(current);
      if (!items.length) return [H("Div", { className: "p-3 text-muted" }, "No models yet: train a pipeline."), panel];
      return [
        H("Table", { className: "table table-sm table-hover align-middle mb-0 models-table" }, [
          H("Thead", {}, H("Tr", {}, ["Pipeline", "Version", "Status", "Metrics", "Predictions", "Created", ""].map((h) => H("Th", {}, h)))),
          H(
            "Tbody",
            {},
            items.map((m) => modelRow(m, current && m.id === current.id))
          ),
        ]),
        panel,
      ];
    },

    seedOverview: function (data) {
      mergeJobs((data && data.jobs) || []);
      mergeModels((data && data.models) || []);
      const texts = new Map(kpiTexts());
      const i = ids();
      return [texts.get(i.KPI_TRAININGS), texts.get(i.KPI_DEPLOYED), texts.get(i.KPI_PREDICTIONS)];
    },
  };
})();
