/*
 * Browser side of the live stream.
 *
 * The dash-extensions WebSocket (in the app shell) opens, closes and reopens the socket; its
 * `state` prop drives the connection badge and reconnection. Frames are read straight from that
 * socket (a listener added when it is constructed, see `tap`), not from the component's `message`
 * prop: Dash's renderer coalesces rapid prop updates, so a prop-driven dispatcher would see only
 * the latest frame and lose the rest (and pay a renderer round per frame). Every event still
 * carries a seq: the dispatcher applies events strictly in seq order, drops duplicates, and asks
 * the server to resend after the last applied seq if it ever sees a gap (a replay after a
 * reconnect, a frame dropped anywhere). Handlers therefore see every event exactly once, in order.
 *
 * State that only the latest value matters for (KPI text, badges, the health map) is written with
 * dash_clientside.set_props; a coalesced write loses nothing. Live graphs are extended with
 * Plotly.extendTraces from the dispatcher's own sample window (what dcc.Graph's extendData does),
 * each graph remembering the last sample seq it drew.
 *
 * Later panels (mlops_live_data.js, mlops_live_ml.js) add handlers to `mlops.handlers`, painters
 * to `mlops.painters` (run after each frame and on every tick) and hooks to `mlops.snapshotHooks`
 * (run whenever a snapshot is applied, `redraw` true after a reset).
 */
(function () {
  "use strict";

  const TRACE_MAX = 5000;
  const PENDING_MAX = 20000;
  const RESUME_RETRY_MS = 1000;

  const mlops = (window.mlops = window.mlops || {});
  const S = (mlops.state = {
    config: null,
    epoch: null,
    lastSeq: 0,
    complete: 0, // a scoped stream (share link) has sent every event it may show up to this seq
    pending: new Map(),
    resetting: false,
    resetBuffer: [],
    resumeAt: 0,
    resumeAfter: -1,
    nonce: 0,
    connects: 0,
    attempts: 0,
    open: false,
    lastHeard: 0,
    reconnectTimer: null,
    reconnectAt: 0,
    samples: [],
    latestStats: null,
    health: {},
    generation: 0, // bumped on reset: every graph redraws from scratch
    dirty: { kpi: false, health: false, badge: false },
  });
  mlops.trace = []; // seqs handled, oldest first (bounded); tests and debugging read it
  mlops.latency = []; // ms from the event's server timestamp to its handler (bounded)
  mlops.connection = []; // [{text, t}] every badge change, newest last (bounded)
  mlops.counters = { frames: 0, handled: 0, duplicates: 0, gaps: 0, resumes: 0, resets: 0, reconnects: 0 };
  mlops.painters = mlops.painters || [];
  mlops.snapshotHooks = mlops.snapshotHooks || [];
  mlops.TRACE_MAX = TRACE_MAX;

  const noUpdate = () => window.dash_clientside.no_update;
  const setProps = (id, props) => window.dash_clientside.set_props(id, props);
  // For components that only some pages have (KPI cards are not on embed pages).
  const setIfShown = (id, props) => document.getElementById(id) && setProps(id, props);
  const ids = () => S.config.ids;

  function pushBounded(list, value) {
    list.push(value);
    if (list.length > TRACE_MAX) list.splice(0, list.length - TRACE_MAX);
  }

  // ---- formatting -------------------------------------------------------------------------------
  function bytes(n) {
    if (n === null || n === undefined) return "—";
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) {
      n /= 1024;
      i += 1;
    }
    return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + units[i];
  }
  const pct = (v) => (v === null || v === undefined ? "—" : v.toFixed(1) + "%");

  // ---- URLs -------------------------------------------------------------------------------------
  function dashPrefix() {
    const el = document.getElementById("_dash-config");
    try {
      return (el && JSON.parse(el.textContent).requests_pathname_prefix) || "/";
    } catch (e) {
      return "/";
    }
  }
  function wsUrl() {
    const proto = window.location.protocol === "https:" ? "wss:" : "ws:";
    const q = [];
    if (S.epoch) q.push("after=" + S.lastSeq, "epoch=" + encodeURIComponent(S.epoch));
    S.connects += 1;
    q.push("c=" + S.connects); // a new URL each time: the component opens a new socket on URL change
    return proto + "//" + window.location.host + dashPrefix() + S.config.ws_path + "?" + q.join("&");
  }
  mlops.apiUrl = (path) => dashPrefix() + S.config.api_path + "/" + path;
  // Writes carry the CSRF token the server set as a cookie (the same one Dash's renderer echoes).
  mlops.csrfHeaders = function () {
    const match = document.cookie.match(/(?:^|;\s*)_csrf_token=([^;]*)/);
    return match ? { "X-CSRFToken": decodeURIComponent(match[1]) } : {};
  };
  mlops.setProps = setProps;
  mlops.setIfShown = setIfShown;
  mlops.ids = ids;

  // ---- snapshot ---------------------------------------------------------------------------------
  function applySnapshot(snap, redraw) {
    S.epoch = snap.epoch || null;
    S.lastSeq = snap.seq || 0;
    S.complete = 0;
    S.pending.clear();
    const incoming = snap.samples || [];
    let kept = [];
    if (redraw && S.samples.length) {
      // A new history (server restarted on the memory log): keep the older points the page already
      // has, so the charts show the outage as a pause instead of going blank. Their seqs belong to
      // the old epoch, so they are zeroed to never be mistaken for new samples.
      const firstT = incoming.length ? incoming[0].t : null;
      kept = S.samples.filter((s) => firstT === null || s.t < firstT).map((s) => Object.assign({}, s, { seq: 0 }));
    }
    S.samples = kept.concat(incoming).slice(-S.config.max_points);
    S.latestStats = snap.latest_stats || null;
    S.health = (snap.health && snap.health.components) || {};
    if (redraw) S.generation += 1;
    S.dirty.kpi = true;
    S.dirty.health = redraw;
    S.dirty.badge = true;
    for (const hook of mlops.snapshotHooks) {
      try {
        hook(snap, redraw);
      } catch (err) {
        console.error("mlops: snapshot hook failed", err);
      }
    }
  }

  // ---- handlers (one per event type) ------------------------------------------------------------
  function onSystemStats(e) {
    const sample = { seq: e.seq, t: e.ts };
    const fields = new Set([].concat(...Object.values(S.config.charts)));
    for (const f of fields) sample[f] = e.data[f];
    S.samples.push(sample);
    if (S.samples.length > S.config.max_points) S.samples.splice(0, S.samples.length - S.config.max_points);
    S.latestStats = e.data;
    S.dirty.kpi = true;
  }
  function onHealthChange(e) {
    S.health[e.data.component] = { status: e.data.status, message: e.data.message, since: e.ts };
    S.dirty.health = true;
    S.dirty.badge = true;
  }
  mlops.latest = {}; // the newest payload of each type, for panels that land with later features
  const keepLatest = (e) => {
    mlops.latest[e.type] = e;
  };
  // Handlers of later panels (mlops_live_data.js, mlops_live_ml.js) win over keepLatest, whichever
  // file loads first.
  mlops.handlers = Object.assign(
    {
      system_stats: onSystemStats,
      health_change: onHealthChange,
      training_progress: keepLatest,
      training_complete: keepLatest,
      training_error: keepLatest,
      upload_progress: keepLatest,
      upload_complete: keepLatest,
      upload_error: keepLatest,
      activity_update: keepLatest,
      model_status: keepLatest,
      pipeline_created: keepLatest,
      pipeline_updated: keepLatest,
      pipeline_deleted: keepLatest,
      dataset_created: keepLatest,
      dataset_updated: keepLatest,
      prediction_volume: keepLatest,
      model_deployed: keepLatest,
    },
    mlops.handlers || {}
  );

  function handle(e) {
    const handler = mlops.handlers[e.type];
    try {
      keepLatest(e);
      if (!handler) console.warn("mlops: no handler for event type", e.type);
      else if (handler !== keepLatest) handler(e);
    } catch (err) {
      console.error("mlops: handler for", e.type, "failed", err);
    }
    mlops.counters.handled += 1;
    pushBounded(mlops.trace, e.seq);
    pushBounded(mlops.latency, Date.now() - Date.parse(e.ts));
  }

  // ---- painting (after each frame, only what changed) --------------------------------------------
  function graphDiv(id) {
    const el = document.getElementById(id);
    const gd = el && (el.classList.contains("js-plotly-plot") ? el : el.querySelector(".js-plotly-plot"));
    return gd && gd.data && window.Plotly ? gd : null;
  }
  mlops.graphDiv = graphDiv;
  // Each graph div remembers the newest sample seq it shows and the generation it was drawn in. A div
  // it has not drawn (first paint, a page just navigated to, a reset) gets the whole window at once;
  // after that only newer samples are appended, trimmed to max_points.
  function drawGraphs() {
    const samples = S.samples;
    if (!samples.length) return;
    const newest = samples[samples.length - 1].seq;
    for (const [graph, fields] of Object.entries(S.config.charts)) {
      const gd = graphDiv(graph);
      if (!gd || (gd._mlopsGen === S.generation && gd._mlopsSeq >= newest)) continue;
      const traces = fields.map((_, i) => i);
      if (gd._mlopsGen !== S.generation) {
        Plotly.restyle(gd, { x: fields.map(() => samples.map((s) => s.t)), y: fields.map((f) => samples.map((s) => s[f])) }, traces);
      } else {
        let start = samples.length;
        while (start > 0 && samples[start - 1].seq > gd._mlopsSeq) start -= 1;
        const fresh = samples.slice(start);
        Plotly.extendTraces(
          gd,
          { x: fields.map(() => fresh.map((s) => s.t)), y: fields.map((f) => fresh.map((s) => s[f])) },
          traces,
          S.config.max_points
        );
      }
      gd._mlopsGen = S.generation;
      gd._mlopsSeq = newest;
    }
  }
  function drawKpis() {
    const d = S.latestStats;
    if (!d) return;
    const i = ids();
    const load = d.load_1 === null || d.load_1 === undefined ? "" : "load " + d.load_1.toFixed(2) + " · ";
    setIfShown(i.KPI_CPU, { children: pct(d.cpu_percent) });
    setIfShown(i.KPI_CPU_SUB, { children: load + d.cpu_per_core.length + " cores" });
    setIfShown(i.KPI_MEM, { children: pct(d.mem_percent) });
    setIfShown(i.KPI_MEM_SUB, { children: bytes(d.mem_used) + " of " + bytes(d.mem_total) });
    setIfShown(i.KPI_DISK, { children: pct(d.disk_percent) });
    setIfShown(i.KPI_DISK_SUB, { children: bytes(d.disk_free) + " free on " + d.disk_path });
    setIfShown(i.KPI_RSS, { children: bytes(d.process_rss) });
    setIfShown(i.KPI_RSS_SUB, { children: "resident memory on " + d.host });
  }
  function paint() {
    drawGraphs();
    // Kept dirty while the page lacks the component (not rendered yet, or an embed page).
    if (S.dirty.kpi && document.getElementById(ids().KPI_CPU)) {
      S.dirty.kpi = false;
      drawKpis();
    }
    if (S.dirty.badge) {
      // The navbar is on every page, the health panel only on the overview.
      S.dirty.badge = false;
      const rank = { healthy: 0, degraded: 1, down: 2 };
      const colors = { healthy: "success", degraded: "warning", down: "danger" };
      let overall = null;
      for (const c of Object.values(S.health)) if (overall === null || rank[c.status] > rank[overall]) overall = c.status;
      setProps(ids().HEALTH_BADGE, {
        children: overall === null ? "Health: unknown" : "Health: " + overall,
        color: colors[overall] || "secondary",
      });
    }
    // A dcc.Store has no DOM node: the health list beside it tells whether the panel is on the page.
    if (S.dirty.health && document.getElementById(ids().HEALTH_LIST)) {
      S.dirty.health = false;
      setProps(ids().HEALTH_STORE, { data: { components: Object.assign({}, S.health) } });
    }
    for (const painter of mlops.painters) {
      try {
        painter();
      } catch (err) {
        console.error("mlops: painter failed", err);
      }
    }
  }

  // ---- ordering, gaps, resume, reset ------------------------------------------------------------
  function resumeRequest(force) {
    const now = Date.now();
    if (!force && S.resumeAfter === S.lastSeq && now - S.resumeAt < RESUME_RETRY_MS) return null;
    S.resumeAt = now;
    S.resumeAfter = S.lastSeq;
    S.nonce += 1;
    mlops.counters.resumes += 1;
    return JSON.stringify({ kind: "resume", after: S.lastSeq, epoch: S.epoch, n: S.nonce });
  }

  function receive(events) {
    for (const e of events) {
      if (S.resetting) {
        S.resetBuffer.push(e);
        continue;
      }
      if (e.epoch !== S.epoch) {
        startReset();
        S.resetBuffer.push(e);
        continue;
      }
      if (e.seq <= S.lastSeq || S.pending.has(e.seq)) {
        mlops.counters.duplicates += 1;
        continue;
      }
      S.pending.set(e.seq, e);
    }
    drain();
  }

  function drain() {
    for (;;) {
      let next = S.pending.has(S.lastSeq + 1) ? S.lastSeq + 1 : null;
      if (next === null && S.complete > S.lastSeq) {
        // A scoped stream skips the seqs it may not show: nothing else exists up to S.complete.
        for (const seq of S.pending.keys()) if (seq <= S.complete && (next === null || seq < next)) next = seq;
        if (next === null) {
          S.lastSeq = S.complete;
          continue;
        }
      }
      if (next === null) break;
      const e = S.pending.get(next);
      S.pending.delete(next);
      S.lastSeq = next;
      handle(e);
    }
    if (S.pending.size > PENDING_MAX) startReset();
  }

  function gapRequest() {
    if (S.resetting || S.pending.size === 0) return null;
    mlops.counters.gaps += 1;
    return resumeRequest(false);
  }

  function startReset() {
    if (S.resetting) return;
    S.resetting = true;
    S.resetBuffer = [];
    mlops.counters.resets += 1;
    const attempt = () =>
      fetch(mlops.apiUrl("snapshot"), { cache: "no-store" })
        .then((r) => {
          if (!r.ok) throw new Error("snapshot HTTP " + r.status);
          return r.json();
        })
        .then((snap) => {
          applySnapshot(snap, true);
          S.resetting = false;
          const buffered = S.resetBuffer.filter((e) => e.epoch === S.epoch);
          S.resetBuffer = [];
          receive(buffered);
          paint();
          const req = gapRequest();
          if (req) send(req);
        })
        .catch((err) => {
          console.warn("mlops: snapshot reload failed, retrying", err);
          setTimeout(attempt, 1000);
        });
    attempt();
  }

  // ---- connection state and reconnection ---------------------------------------------------------
  function badge(text, color) {
    noteConnection(text);
    setProps(ids().CONN_BADGE, { children: text, color: color });
  }
  function noteConnection(text) {
    const last = mlops.connection[mlops.connection.length - 1];
    if (!last || last.text !== text) pushBounded(mlops.connection, { text: text, t: Date.now() });
  }
  function reconnectText() {
    const secs = Math.max(0, Math.ceil((S.reconnectAt - Date.now()) / 1000));
    const offline = navigator.onLine === false || S.attempts > 6;
    return [(offline ? "Offline · retrying in " : "Reconnecting in ") + secs + " s", offline ? "danger" : "warning"];
  }
  function connectNow() {
    if (S.reconnectTimer) clearTimeout(S.reconnectTimer);
    S.reconnectTimer = null;
    mlops.counters.reconnects += 1;
    setProps(ids().WS, { url: wsUrl() });
  }
  function scheduleReconnect() {
    if (S.reconnectTimer) return;
    const cap = Math.min(10000, 250 * Math.pow(2, S.attempts)); // exponential backoff ...
    const delay = Math.max(100, Math.random() * cap); // ... with full jitter
    S.attempts += 1;
    S.reconnectAt = Date.now() + delay;
    S.reconnectTimer = setTimeout(connectNow, delay);
  }

  function tick() {
    if (!S.config) return;
    const now = Date.now();
    const heartbeatMs = 1000 * (S.config.heartbeat_s || 15);
    if (S.open) {
      if (now - S.lastHeard > 2.5 * heartbeatMs) {
        // Silent socket (server gone without a close): replace it; the component closes the old one.
        S.open = false;
        badge("Reconnecting…", "warning");
        connectNow();
      } else if (now - (S.lastPing || 0) > heartbeatMs) {
        S.lastPing = now;
        send(JSON.stringify({ kind: "ping", t: now }));
      }
      if (S.pending.size && now - S.resumeAt > RESUME_RETRY_MS) {
        const req = resumeRequest(true);
        if (req) send(req);
      }
    } else if (S.reconnectTimer) {
      const [text, color] = reconnectText();
      badge(text, color);
    }
    paint(); // catches up graphs that appeared since (navigation, plotly.js finished loading)
  }

  // ---- frames from the socket ------------------------------------------------------------------
  function send(text) {
    const socket = mlops.socket;
    if (socket && socket.readyState === 1) socket.send(text);
  }

  function onFrame(data) {
    if (typeof data !== "string" || !S.config) return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch (err) {
      console.warn("mlops: dropped a frame that is not JSON");
      return;
    }
    mlops.counters.frames += 1;
    S.lastHeard = Date.now();
    let reply = null;
    switch (msg.kind) {
      case "events":
        if (typeof msg.upto === "number" && msg.upto > S.complete) S.complete = msg.upto;
        receive(msg.events);
        reply = gapRequest();
        break;
      case "hello":
        if (S.epoch === null && msg.epoch) S.epoch = msg.epoch;
        break;
      case "reset":
        startReset();
        break;
      case "ping":
        reply = JSON.stringify({ kind: "pong", t: msg.t });
        break;
      case "error":
        console.warn("mlops: server said", msg.code, msg.message);
        break;
      default:
        break;
    }
    paint();
    if (reply !== null) send(reply);
  }

  // The component creates its sockets with the global constructor: sockets to our own endpoint get
  // one more listener, feeding onFrame. Everything else about them is the component's.
  const NativeWebSocket = window.WebSocket;
  class TappedWebSocket extends NativeWebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      if (S.config && String(url).indexOf(dashPrefix() + S.config.ws_path + "?") >= 0) {
        mlops.socket = this;
        this.addEventListener("message", (ev) => {
          if (mlops.socket === this) onFrame(ev.data); // a replaced socket's late frames are ignored
        });
        // Nothing reads the component's `message` prop: keeping it unset spares the renderer one
        // store update and re-render per frame (with 10 tabs open that was most of the page's CPU).
        Object.defineProperty(this, "onmessage", { configurable: true, get: () => null, set: () => {} });
      }
    }
  }
  window.WebSocket = TappedWebSocket;

  // ---- the clientside callbacks ----------------------------------------------------------------
  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.mlops = {
    init: function (snapshot, config) {
      if (!snapshot || !config) return noUpdate();
      const first = S.config === null;
      S.config = config;
      applySnapshot(snapshot, !first);
      S.dirty.health = true;
      paint();
      if (first) setInterval(tick, 250);
      return wsUrl();
    },

    onState: function (state) {
      if (!state || !S.config) return [noUpdate(), noUpdate()];
      if (state.readyState === 1) {
        S.open = true;
        S.attempts = 0;
        S.lastHeard = Date.now();
        noteConnection("Live");
        return ["Live", "success"];
      }
      if (state.readyState === 3) {
        S.open = false;
        if (S.connects === 0) return [noUpdate(), noUpdate()];
        scheduleReconnect();
        const closed = reconnectText();
        noteConnection(closed[0]);
        return closed;
      }
      return [noUpdate(), noUpdate()];
    },

    embedSnippet: function (clicks, isOpen) {
      const chart = window.dash_clientside.callback_context.triggered_id.chart;
      const iframe = (src) =>
        '<iframe src="' + src + '" width="100%" height="320" style="border:0" title="MLOps Dashboard: ' + chart + '"></iframe>';
      if (S.config.auth !== "on") return [!isOpen, iframe(window.location.origin + dashPrefix() + "embed/" + chart)];
      // With logins on, a page elsewhere cannot use the viewer's session: it gets a read-only share
      // link to this chart alone (signed, expires, revocable by an admin).
      if (!isOpen) {
        const target = { type: "embed-snippet", chart: chart };
        fetch(mlops.apiUrl("charts/" + chart + "/share"), { method: "POST", headers: mlops.csrfHeaders(), cache: "no-store" })
          .then((r) => r.json().then((body) => [r.ok, body]))
          .then(([ok, body]) =>
            setProps(target, {
              children: ok
                ? iframe(body.url) + "\n\nA read-only link to this chart, valid until " + body.expires_at.slice(0, 10) + "."
                : "No share link: " + ((body.error && body.error.message) || "refused"),
            })
          )
          .catch((err) => setProps(target, { children: "No share link: " + err }));
      }
      return [!isOpen, "Creating a share link…"];
    },

    renderHealth: function (data) {
      const components = (data && data.components) || {};
      const colors = { healthy: "success", degraded: "warning", down: "danger" };
      const rows = Object.keys(components)
        .sort()
        .map((name) => {
          const c = components[name];
          return {
            namespace: "dash_html_components",
            type: "Div",
            props: {
              className: "list-group-item d-flex justify-content-between align-items-start health-row",
              "data-component": name,
              "data-status": c.status,
              children: [
                {
                  namespace: "dash_html_components",
                  type: "Div",
                  props: {
                    children: [
                      { namespace: "dash_html_components", type: "Div", props: { className: "fw-semibold", children: name } },
                      { namespace: "dash_html_components", type: "Small", props: { className: "text-muted", children: c.message || "" } },
                    ],
                  },
                },
                {
                  namespace: "dash_html_components",
                  type: "Span",
                  props: { className: "badge text-bg-" + (colors[c.status] || "secondary"), children: c.status },
                },
              ],
            },
          };
        });
      if (!rows.length) {
        rows.push({ namespace: "dash_html_components", type: "Div", props: { className: "list-group-item text-muted", children: "No health reports yet" } });
      }
      return rows;
    },
  };
})();
