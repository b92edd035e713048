/*
 * Browser side of the data plane: the upload (file sent by the browser straight to the REST endpoint,
 * with progress), uploads in progress elsewhere, the live datasets / pipelines tables, the activity
 * feed and toasts. `mlops.html` shares the element builders and formatters with mlops_live_ml.js.
 *
 * Tables and the feed are drawn by clientside callbacks from dcc.Stores; event handlers keep a copy
 * of each collection and write the whole (small) collection back with set_props, so a write the
 * renderer coalesces loses nothing. User text is always passed as text: React escapes it.
 */
(function () {
  "use strict";

  const mlops = (window.mlops = window.mlops || {});
  const H = (type, props, children) => ({
    namespace: "dash_html_components",
    type: type,
    props: Object.assign({}, props || {}, children === undefined ? {} : { children: children }),
  });
  const DBC = (type, props) => ({ namespace: "dash_bootstrap_components", type: type, props: props });
  const collections = (mlops.collections = { datasets: null, pipelines: null, activity: null });
  const FEED_MAX = 50;

  function fmtBytes(n) {
    const units = ["B", "KB", "MB", "GB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i += 1;
    }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }
  const fmtInt = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"));
  const when = (ts) => (ts ? new Date(ts).toLocaleString() : "");
  mlops.html = { H: H, DBC: DBC, fmtInt: fmtInt, fmtBytes: fmtBytes, when: when };

  // ---- toasts -----------------------------------------------------------------------------------
  let toasts = [];
  let toastSeq = 0;
  mlops.toast = function (header, body, icon) {
    toastSeq += 1;
    toasts = toasts.concat([{ id: toastSeq, header: header, body: body, icon: icon }]).slice(-4);
    mlops.setProps(mlops.ids().TOASTS, {
      children: toasts.map((t) =>
        DBC("Toast", {
          id: "toast-" + t.id,
          header: t.header,
          icon: t.icon,
          duration: 6000,
          dismissable: true,
          is_open: true,
          className: "mb-2 mlops-toast mlops-toast-" + (t.icon || "primary"),
          children: t.body,
        })
      ),
    });
  };

  // ---- collections kept in stores ---------------------------------------------------------------
  function upsert(name, storeId, witnessId, item, remove) {
    if (!collections[name] || !document.getElementById(witnessId)) return; // page not shown
    const map = collections[name];
    if (remove) map.delete(String(item.id));
    else map.set(String(item.id), Object.assign({}, map.get(String(item.id)) || {}, item));
    const items = Array.from(map.values()).sort((a, b) => a.id - b.id);
    mlops.setProps(storeId, { data: { items: items } });
  }

  function onDataset(e) {
    const i = mlops.ids();
    upsert("datasets", i.DATASETS_STORE, i.DATASETS_TABLE, e.data, false);
  }
  function onPipeline(e) {
    const i = mlops.ids();
    upsert("pipelines", i.PIPELINES_STORE, i.PIPELINES_TABLE, e.data, e.type === "pipeline_deleted");
    const verb = { pipeline_created: "created", pipeline_updated: "updated", pipeline_deleted: "deleted" }[e.type];
    mlops.toast("Pipeline " + verb, (e.data.name || "#" + e.data.id) + " was " + verb + ".", e.type === "pipeline_deleted" ? "warning" : "primary");
  }
  function onActivity(e) {
    const i = mlops.ids();
    if (e.data.source_type === "dataset_deleted") {
      upsert("datasets", i.DATASETS_STORE, i.DATASETS_TABLE, { id: e.data.subject_id }, true);
    }
    if (!collections.activity || !document.getElementById(i.ACTIVITY_LIST)) return;
    const item = Object.assign({ created_at: e.ts }, e.data);
    collections.activity = [item].concat(collections.activity.filter((a) => a.id !== item.id)).slice(0, FEED_MAX);
    mlops.setProps(i.ACTIVITY_STORE, { data: { items: collections.activity } });
  }

  // ---- upload -----------------------------------------------------------------------------------
  const upload = (mlops.upload = { id: null, xhr: null, stage: null, labels: [] });

  function progress(value, label, color, animated) {
    const i = mlops.ids();
    if (upload.labels[upload.labels.length - 1] !== label) upload.labels = upload.labels.concat([label]).slice(-200);
    mlops.setIfShown(i.UPLOAD_PROGRESS, { value: value, label: label, color: color || "primary", animated: !!animated, striped: !!animated });
  }
  function status(text, className) {
    const i = mlops.ids();
    mlops.setIfShown(i.UPLOAD_STATUS, { children: text, className: "small upload-status " + (className || "") });
  }

  // Uploads sent by other tabs or scripts: listed under the upload card until they complete or fail.
  const others = (mlops.upload.others = new Map());
  let othersVersion = 0;
  const OTHERS_MAX = 20;
  function noteOther(e, done) {
    if (e.data.upload_id === upload.id) return;
    const key = String(e.data.upload_id);
    if (done) others.delete(key);
    else {
      others.delete(key); // re-inserted last: the newest activity sorts last
      others.set(key, Object.assign({ seen: Date.now() }, e.data));
      while (others.size > OTHERS_MAX) others.delete(others.keys().next().value);
    }
    othersVersion += 1;
  }
  function otherRow(u) {
    const fraction =
      u.fraction !== null && u.fraction !== undefined ? u.fraction : u.bytes_total ? u.bytes_received / u.bytes_total : null;
    const pct = fraction === null ? null : Math.round(100 * fraction);
    const detail =
      u.stage === "parsing"
        ? "parsing" + (pct === null ? "" : " " + pct + "%") + " · " + fmtInt(u.rows_parsed) + " rows"
        : "receiving" + (pct === null ? "" : " " + pct + "%") + " · " + fmtBytes(u.bytes_received);
    return H("Div", { className: "small other-upload mt-2", "data-upload-id": String(u.upload_id) }, [
      H("Div", { className: "d-flex justify-content-between" }, [H("Span", { className: "fw-semibold" }, u.filename), H("Span", { className: "text-muted" }, detail)]),
      H("Div", { className: "progress", style: { height: "0.4rem" } }, H("Div", { className: "progress-bar progress-bar-striped progress-bar-animated bg-info", style: { width: (pct === null ? 100 : pct) + "%" } })),
    ]);
  }
  function drawOthers() {
    const el = document.getElementById(mlops.ids().UPLOADS_LIST);
    if (!el) return;
    const stale = Date.now() - 10 * 60 * 1000; // an upload silent this long has gone without a word
    for (const [key, u] of others) {
      if (u.seen < stale) {
        others.delete(key);
        othersVersion += 1;
      }
    }
    if (el._mlopsVersion === othersVersion) return;
    el._mlopsVersion = othersVersion;
    const rows = Array.from(others.values()).map(otherRow);
    mlops.setProps(mlops.ids().UPLOADS_LIST, {
      children: rows.length ? [H("Div", { className: "small text-muted mt-3" }, "Uploads in progress elsewhere")].concat(rows) : [],
    });
  }
  mlops.painters.push(drawOthers);

  function onUploadProgress(e) {
    noteOther(e, false);
    if (e.data.upload_id !== upload.id || e.data.stage !== "parsing") return;
    upload.stage = "parsing";
    const pct = e.data.fraction === null ? 100 : Math.round(100 * e.data.fraction);
    progress(pct, "Parsing " + pct + "% · " + fmtInt(e.data.rows_parsed) + " rows", "info", true);
  }
  function onUploadComplete(e) {
    noteOther(e, true);
    mlops.toast("Upload complete", (e.data.name || e.data.filename) + ": " + fmtInt(e.data.rows) + " rows, " + e.data.columns + " columns.", "success");
  }
  function onUploadError(e) {
    noteOther(e, true);
    mlops.toast("Upload failed", e.data.filename + ": " + e.data.error, "danger");
  }

  function send(file) {
    if (!file || upload.xhr) return;
    const i = mlops.ids();
    const nameInput = document.getElementById(i.UPLOAD_NAME);
    upload.id = (window.crypto && crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).replace(/-/g, "");
    upload.stage = "receiving";
    const form = new FormData();
    form.append("file", file, file.name);
    if (nameInput && nameInput.value.trim()) form.append("name", nameInput.value.trim());
    const xhr = new XMLHttpRequest();
    upload.xhr = xhr;
    xhr.open("POST", mlops.apiUrl("datasets?upload_id=" + encodeURIComponent(upload.id)));
    for (const [name, value] of Object.entries(mlops.csrfHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (ev) => {
      if (!ev.lengthComputable || upload.stage !== "receiving") return;
      const pct = Math.round((100 * ev.loaded) / ev.total);
      progress(pct, "Uploading " + pct + "% · " + fmtBytes(ev.loaded) + " of " + fmtBytes(ev.total), "primary", true);
    };
    xhr.onload = () => {
      upload.xhr = null;
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch (err) {
        body = null;
      }
      if (xhr.status === 201 && body) {
        progress(100, "Done", "success", false);
        status("Stored " + body.name + " (version " + body.version + "): " + fmtInt(body.rows) + " rows, " + body.columns.length + " columns.", "text-success");
      } else {
        const message = body && body.error ? body.error.message : "the server answered " + xhr.status;
        progress(100, "Failed", "danger", false);
        status("Upload failed: " + message, "text-danger");
      }
    };
    xhr.onerror = () => {
      upload.xhr = null;
      progress(100, "Failed", "danger", false);
      status("Upload failed: the connection to the dashboard was lost.", "text-danger");
    };
    status("Sending " + file.name + " (" + fmtBytes(file.size) + ")…", "text-muted");
    progress(0, "Uploading 0%", "primary", true);
    xhr.send(form);
  }

  // Delegated listeners: the upload zone is rendered (and re-rendered) by Dash at any time.
  function zone(target) {
    const i = mlops.ids && window.mlops.state && window.mlops.state.config ? mlops.ids() : null;
    return i && target && target.closest ? target.closest("#" + i.UPLOAD_ZONE) : null;
  }
  document.addEventListener("dragover", (ev) => {
    const z = zone(ev.target);
    if (z) {
      ev.preventDefault();
      z.classList.add("dragging");
    }
  });
  document.addEventListener("dragleave", (ev) => {
    const z = zone(ev.target);
    if (z) z.classList.remove("dragging");
  });
  document.addEventListener("drop", (ev) => {
    const z = zone(ev.target);
    if (!z) return;
    ev.preventDefault();
    z.classList.remove("dragging");
    if (ev.dataTransfer && ev.dataTransfer.files.length) send(ev.dataTransfer.files[0]);
  });
  // Dash has no file <input>: one lives outside React's tree and the zone opens it.
  function fileInput() {
    let input = document.getElementById(mlops.ids().UPLOAD_INPUT);
    if (!input) {
      input = document.createElement("input");
      input.type = "file";
      input.id = mlops.ids().UPLOAD_INPUT;
      input.accept = ".csv,.tsv,.txt,text/csv";
      input.className = "d-none";
      input.addEventListener("change", () => {
        if (input.files && input.files.length) send(input.files[0]);
        input.value = "";
      });
      document.body.appendChild(input);
    }
    return input;
  }
  mlops.upload.fileInput = fileInput;
  document.addEventListener("click", (ev) => {
    if (zone(ev.target)) fileInput().click();
  });
  document.addEventListener("keydown", (ev) => {
    if (zone(ev.target) && (ev.key === "Enter" || ev.key === " ")) fileInput().click();
  });

  mlops.handlers = Object.assign(mlops.handlers || {}, {
    dataset_created: onDataset,
    dataset_updated: onDataset,
    pipeline_created: onPipeline,
    pipeline_updated: onPipeline,
    pipeline_deleted: onPipeline,
    activity_update: onActivity,
    upload_progress: onUploadProgress,
    upload_complete: onUploadComplete,
    upload_error: onUploadError,
  });

  // ---- renderers (clientside callbacks) ---------------------------------------------------------
  const LEVEL_BADGE = { info: "secondary", success: "success", warning: "warning", error: "danger" };

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.mlops_data = {
    renderDatasets: function (data) {
      const items = (data && data.items) || [];
      collections.datasets = new Map(items.map((d) => [String(d.id), d]));
      if (!items.length) return H("Div", { className: "p-3 text-muted" }, "No datasets yet: upload a CSV.");
      return H("Table", { className: "table table-sm table-hover mb-0 datasets-table" }, [
        H("Thead", {}, H("Tr", {}, ["Name", "Version", "Rows", "Columns", "Size", "File", "Updated", ""].map((h) => H("Th", {}, h)))),
        H(
          "Tbody",
          {},
          items.map((d) =>
            H("Tr", { "data-dataset": d.name }, [
              H("Td", { className: "fw-semibold" }, d.name),
              H("Td", {}, "v" + d.version),
              H("Td", {}, fmtInt(d.rows)),
              H("Td", {}, String(d.columns_total ?? d.columns.length)), // a wide dataset's event lists the first columns only
              H("Td", {}, fmtBytes(d.size_bytes)),
              H("Td", { className: "text-muted small" }, d.filename),
              H("Td", { className: "text-muted small" }, when(d.updated_at)),
              H("Td", {}, H("Button", { id: { type: mlops.ids().DATASET_VIEW, id: d.id }, className: "btn btn-sm btn-outline-secondary", n_clicks: 0 }, "Profile")),
            ])
          )
        ),
      ]);
    },

    renderPipelines: function (data) {
      const items = (data && data.items) || [];
      collections.pipelines = new Map(items.map((p) => [String(p.id), p]));
      if (!items.length) return H("Div", { className: "p-3 text-muted" }, "No pipelines yet.");
      return H("Table", { className: "table table-sm table-hover mb-0 pipelines-table" }, [
        H("Thead", {}, H("Tr", {}, ["Name", "Dataset", "Target", "Model", "Parameters", ""].map((h) => H("Th", {}, h)))),
        H(
          "Tbody",
          {},
          items.map((p) =>
            H("Tr", { "data-pipeline": p.name }, [
              H("Td", { className: "fw-semibold" }, p.name),
              H("Td", {}, "#" + p.dataset_id),
              H("Td", {}, p.target),
              H("Td", {}, p.model),
              H("Td", { className: "font-monospace small" }, JSON.stringify(p.params || {})),
              H("Td", { className: "text-nowrap" }, [
                // Train is a plain button: mlops_live_ml.js posts to the training endpoint on click.
                H("Button", { className: "btn btn-sm btn-outline-primary me-1", "data-action": "train", "data-pipeline-id": String(p.id), "data-name": p.name }, "Train"),
                H("Button", { id: { type: mlops.ids().PIPELINE_EDIT, id: p.id }, className: "btn btn-sm btn-outline-secondary me-1", n_clicks: 0 }, "Edit"),
                H("Button", { id: { type: mlops.ids().PIPELINE_DELETE, id: p.id }, className: "btn btn-sm btn-outline-danger", n_clicks: 0 }, "Delete"),
              ]),
            ])
          )
        ),
      ]);
    },

    renderActivity: function (data) {
      const items = (data && data.items) || [];
      collections.activity = items.slice(0, FEED_MAX);
      if (!items.length) return [H("Div", { className: "list-group-item text-muted" }, "Nothing has happened yet.")];
      return items.map((a) =>
        H("Div", { className: "list-group-item activity-row", "data-level": a.level }, [
          H("Div", { className: "d-flex justify-content-between" }, [
            H("Span", { className: "badge text-bg-" + (LEVEL_BADGE[a.level] || "secondary") + " me-2" }, a.category),
            H("Small", { className: "text-muted" }, when(a.created_at)),
          ]),
          H("Div", { className: "small activity-message" }, a.message),
        ])
      );
    },

  };
})();
