// The dashboard's behaviour: confirmations, keyboard shortcuts, and a job's live
// progress over server-sent events. No inline handlers: the page's CSP allows this
// file only.
"use strict";

(function () {
  const body = document.body;
  const base = body.dataset.base || "/dashboard";
  const api = body.dataset.api || "/api";
  const FINAL = ["succeeded", "failed", "cancelled", "skipped"];

  // Forms that change something ask first.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm) {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    }
  });

  const selectAll = document.getElementById("select-all");
  if (selectAll) {
    selectAll.addEventListener("change", function () {
      document.querySelectorAll('input[name="ids"][form="bulk-ids"]').forEach(function (box) {
        box.checked = selectAll.checked;
      });
    });
  }

  // Keyboard shortcuts (listed in the dialog that "?" opens).
  const help = document.getElementById("shortcuts");
  function toggleHelp() {
    if (!help) return;
    if (help.open) help.close(); else help.showModal();
  }
  const opener = document.getElementById("shortcuts-open");
  if (opener) opener.addEventListener("click", toggleHelp);

  function press(id) {
    const button = document.getElementById(id);
    if (button && button.form) {
      button.form.requestSubmit(button);
      return true;
    }
    return false;
  }
  const GO = { o: "/", j: "/jobs", w: "/workers", q: "/queues", s: "/schedules", l: "/limits", p: "/plugins" };
  let pendingG = 0;
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target instanceof HTMLElement &&
        (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) {
      return;
    }
    const key = event.key;
    if (pendingG && Date.now() - pendingG < 1500 && GO[key]) {
      pendingG = 0;
      event.preventDefault();
      window.location.assign(base + GO[key]);
      return;
    }
    pendingG = 0;
    if (key === "?") { event.preventDefault(); toggleHelp(); return; }
    if (key === "g") { pendingG = Date.now(); return; }
    if (key === "/") {
      const filter = document.querySelector("[data-filter]");
      if (filter) {
        event.preventDefault();
        const box = document.getElementById("filter-box");
        if (box) box.open = true;
        filter.focus();
      }
      return;
    }
    if (key === "n") {
      const box = document.getElementById("enqueue-box");
      if (box) { event.preventDefault(); box.open = true; document.getElementById("enqueue-type").focus(); }
      return;
    }
    const actions = { r: "action-retry", c: "action-cancel", s: "action-resubmit" };
    if (actions[key] && press(actions[key])) event.preventDefault();
  });

  // A job's page follows the job: progress, status and timeline, live.
  const job = document.getElementById("job");
  if (!job || !window.EventSource) return;
  const renderedFinal = job.dataset.final === "true";
  let last = Number(job.dataset.after || 0);
  const bar = document.getElementById("progress");
  const text = document.getElementById("progress-text");
  const message = document.getElementById("progress-message");
  const live = document.getElementById("live");
  const badge = document.querySelector("#job-status .status");
  const timeline = document.getElementById("timeline");

  function cell(row, value) {
    const td = document.createElement("td");
    td.textContent = value;
    row.appendChild(td);
  }
  function addEvent(e) {
    if (!timeline) return;
    const row = document.createElement("tr");
    row.className = "ev-" + e.kind + " fresh";
    cell(row, String(e.at).replace("T", " ").slice(0, 19) + "Z");
    cell(row, e.kind + (e.status ? " " + e.status : ""));
    let detail = e.progress != null ? Math.round(e.progress * 100) + " % " : "";
    detail += e.message || "";
    if (e.actor) detail += " by " + e.actor;
    cell(row, detail);
    timeline.appendChild(row);
  }

  const url = api + "/events?job_id=" + encodeURIComponent(job.dataset.jobId) + "&after=" + last;
  const source = new EventSource(url);
  source.onopen = function () { if (live) live.hidden = false; };
  source.onerror = function () { if (live) live.hidden = true; };
  source.onmessage = function (message_) {
    let e;
    try { e = JSON.parse(message_.data); } catch (_) { return; }
    if (typeof e.seq !== "number" || e.seq <= last) return;
    last = e.seq;
    addEvent(e);
    if (e.progress != null && bar) {
      const percent = Math.round(e.progress * 100);
      bar.value = percent;
      if (text) text.textContent = percent + " %";
      if (message && e.message != null) message.textContent = e.message;
    }
    if (e.kind === "status" && e.status) {
      if (badge) {
        badge.textContent = e.status;
        badge.className = "status status-" + e.status;
      }
      if (FINAL.indexOf(e.status) >= 0 && e.status === "succeeded" && bar) {
        bar.value = 100;
        if (text) text.textContent = "100 %";
      }
      if ((FINAL.indexOf(e.status) >= 0) !== renderedFinal) {
        // The page shows what it could not know yet (an output, an error): load it again.
        source.close();
        window.setTimeout(function () { window.location.reload(); }, 600);
      }
    }
  };
})();
