// ferry: the snapshots page's script. Plain JavaScript, no dependencies, no inline code
// (the page's Content-Security-Policy allows scripts from this server only).
(function () {
  "use strict";

  const LABELS = { pending: "Pending", in_progress: "In progress", completed: "Completed", failed: "Failed", deleted: "Deleted" };
  const POLL_MS = 1000;

  function csrf() {
    const m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : "";
  }

  // Formatting, as the server does (page/format.rs).
  function count(n) {
    return String(Math.round(Number(n) || 0)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }
  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    n = Number(n) || 0;
    if (n < 1024) return n + " B";
    let u = 0;
    while (n >= 1024 && u < units.length - 1) { n /= 1024; u += 1; }
    return n.toFixed(n >= 100 ? 0 : n >= 10 ? 1 : 2) + " " + units[u];
  }
  function duration(seconds) {
    const s = Math.max(0, Math.round(Number(seconds) || 0));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor((s + 30) / 60) + " min";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }
  function money(v) {
    if (v > 0 && v < 0.01) return "under 0.01";
    return v.toFixed(2);
  }
  function progressText(p) {
    let t = count(p.records);
    if (p.expected_records != null && p.expected_records >= p.records) t += " of " + count(p.expected_records);
    t += " records · " + bytes(p.bytes);
    if (p.eta_seconds != null) t += " · ETA " + duration(p.eta_seconds);
    return t;
  }

  // Tells screen readers that a run finished (the live progress itself stays quiet).
  function announce(text) {
    const region = document.getElementById("announce");
    if (region) region.textContent = text;
  }

  async function getJson(url) {
    const r = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (r.status === 401) {
      window.location.assign("/login?ended=1");
      throw new Error("logged out");
    }
    if (!r.ok) throw new Error(url + ": " + r.status);
    return r.json();
  }

  // A pending or running snapshot, in a history row or the detail page's head.
  function showLive(el, v) {
    el.dataset.status = v.status;
    const badge = el.querySelector("[data-badge]");
    if (badge) {
      badge.className = "badge badge-" + v.status;
      badge.textContent = LABELS[v.status] || v.status;
    }
    const p = v.progress;
    const bar = el.querySelector("[data-progress] progress");
    const text = el.querySelector("[data-progress-text]");
    if (p && text) text.textContent = progressText(p);
    if (p && bar && p.expected_records > 0) bar.value = Math.min(100, Math.floor((p.records * 100) / p.expected_records));
  }

  async function pollRow(tr) {
    let v;
    try { v = await getJson("/api/v1/snapshots/" + tr.dataset.id); } catch (e) { return; }
    if (v.status === "pending" || v.status === "in_progress") { showLive(tr, v); return; }
    // Finished: the server renders the row as the history does.
    const r = await fetch("/snapshots/" + tr.dataset.id + "/row", { credentials: "same-origin" });
    if (!r.ok) return;
    const t = document.createElement("template");
    t.innerHTML = (await r.text()).trim();
    const row = t.content.firstElementChild;
    if (!row) return;
    if (tr.classList.contains("fresh")) row.classList.add("fresh");
    tr.replaceWith(row);
    announce("Snapshot " + v.name + ": " + (LABELS[v.status] || v.status) + ".");
  }

  async function pollDetail(head) {
    let v;
    try { v = await getJson("/api/v1/snapshots/" + head.dataset.id); } catch (e) { return; }
    if (v.status === "pending" || v.status === "in_progress") showLive(head, v);
    else window.location.reload();
  }

  function follow() {
    const rows = Array.from(document.querySelectorAll('tr[data-status="pending"], tr[data-status="in_progress"]'));
    const head = document.querySelector('#detail[data-status="pending"], #detail[data-status="in_progress"]');
    if (!rows.length && !head) return;
    window.setTimeout(async function () {
      await Promise.all(rows.map(pollRow));
      if (head) await pollDetail(head);
      follow();
    }, POLL_MS);
  }

  // "Copy all URLs": the download script, to the clipboard.
  async function copy(button) {
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    const text = source.textContent;
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch (e) {
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "sr-only";
      document.body.appendChild(area);
      area.select();
      try { ok = document.execCommand("copy"); } catch (e2) { ok = false; }
      area.remove();
    }
    const out = button.parentElement.querySelector("[data-copied]");
    if (out) out.textContent = ok ? "Copied to the clipboard" : "Select the script below and copy it";
  }

  // The new-snapshot form: the chosen job's options, and the estimate as they change.
  function newSnapshot(form) {
    const job = form.querySelector("#job");
    const box = document.getElementById("estimate");
    const status = box.querySelector("[data-estimate-status]");
    const grid = box.querySelector("[data-estimate-values]");
    const basis = box.querySelector('[data-est="basis"]');
    let seq = 0;
    let timer = 0;

    function options() {
      return Array.from(form.querySelectorAll(".job-options")).find(function (b) { return b.dataset.job === job.value; });
    }
    function sync() {
      form.querySelectorAll(".job-options").forEach(function (b) { b.hidden = b.dataset.job !== job.value; });
      const b = options();
      const months = b && b.querySelector("[data-months]");
      if (months) months.disabled = !Array.from(b.querySelectorAll("input[type=checkbox][data-windowed]")).some(function (c) { return c.checked; });
    }
    function request() {
      const b = options();
      const out = { job: job.value };
      const name = form.querySelector("#name").value.trim();
      const description = form.querySelector("#description").value.trim();
      if (name) out.name = name;
      if (description) out.description = description;
      out.resources = b ? Array.from(b.querySelectorAll("input[type=checkbox]:checked")).map(function (c) { return c.value; }) : [];
      const months = b && b.querySelector("[data-months]");
      const m = months && !months.disabled && months.querySelector("input:checked");
      if (m) out.months = m.value === "all" ? "all" : Number(m.value);
      const c = b && b.querySelector('input[type=radio][name^="content."]:checked:not(:disabled)');
      if (c) out.content = c.value;
      return out;
    }
    function set(key, value) {
      const el = box.querySelector('[data-est="' + key + '"]');
      if (el) el.textContent = value;
    }
    function fail(message) {
      box.dataset.state = "error";
      status.textContent = message;
      grid.hidden = true;
      basis.textContent = "";
    }
    async function estimate() {
      const mine = ++seq;
      const body = request();
      if (!body.resources.length) { fail("Pick at least one resource."); return; }
      box.dataset.state = "loading";
      status.textContent = "Counting the rows…";
      let r;
      let v;
      try {
        r = await fetch("/api/v1/estimates", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf() },
          body: JSON.stringify(body),
        });
        v = await r.json();
      } catch (e) {
        if (mine === seq) fail("The estimate could not be fetched; check the connection and change a choice to retry.");
        return;
      }
      if (mine !== seq) return;
      if (!r.ok) { fail((v && v.error && v.error.message) || "The estimate failed (" + r.status + ")."); return; }
      const files = (v.resources || []).reduce(function (n, res) { return n + (res.files || 0); }, 0);
      set("rows", count(v.rows));
      set("size", bytes(v.estimated_bytes));
      set("files", count(files));
      set("parts", v.parts == null ? "not packed" : count(v.parts));
      set("time", v.estimated_seconds < 1 ? "under 1 s" : duration(v.estimated_seconds));
      set("cost", v.cost ? money(v.cost.per_month) + " / month" : "no price set");
      const guessed = (v.resources || []).some(function (res) { return res.basis && res.basis.kind === "default"; });
      basis.textContent = guessed
        ? "Size and time are first guesses: part of this request has not run here yet."
        : "Size and time are measured from past runs of this job.";
      status.textContent = "For " + body.resources.length + (body.resources.length === 1 ? " resource" : " resources") +
        (body.months ? ", " + (body.months === "all" ? "all months" : body.months + (body.months === 1 ? " month" : " months")) : "") + ".";
      grid.hidden = false;
      box.dataset.state = "ready";
    }
    function schedule() {
      window.clearTimeout(timer);
      timer = window.setTimeout(estimate, 300);
    }
    form.addEventListener("change", function (e) {
      if (e.target.id === "name" || e.target.id === "description") return;
      sync();
      schedule();
    });
    form.addEventListener("submit", function () {
      const button = document.getElementById("request-snapshot");
      button.disabled = true;
      button.textContent = "Requesting…";
    });
    sync();
    estimate();
  }

  document.addEventListener("click", function (e) {
    const button = e.target.closest("[data-copy]");
    if (button) copy(button);
  });

  function start() {
    const form = document.getElementById("new-snapshot");
    if (form) newSnapshot(form);
    follow();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
