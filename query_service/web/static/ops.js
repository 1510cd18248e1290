// The ops page: asks for the admin token, keeps it in sessionStorage (this tab only), sends it
// as an Authorization header (never in a URL), and shows /ops/data read-only.
"use strict";

(function () {
  const {el, clear, show, requestJSON, fmt, percent, table} = window.MM;
  const $ = (id) => document.getElementById(id);
  const KEY = "mmsearch-admin-token";

  function yesNo(value, good, bad) {
    return el("span", {class: value ? "ok" : "bad", text: value ? good : bad});
  }

  function renderReadiness(snapshot) {
    const r = snapshot.readiness;
    const checks = Object.entries(r.checks || {}).map(([name, value]) => [name, value === null ? "–" : String(value)]);
    clear($("readiness")).append(
      el("p", {}, ["Service: ", yesNo(r.ready, "ready (the loaded model matches the index)", "not ready")]),
      el("p", {text: `Loaded model: ${snapshot.model.name || "none"} (${(snapshot.model.identity || "–").slice(0, 16)})`}),
      el("div", {class: "table-wrap"}, [table("Readiness checks", ["Check", "Value"], checks)]));
  }

  function renderIndices(status) {
    const box = clear($("indices"));
    if (status.error) { box.append(el("p", {class: "bad", text: status.error})); return; }
    box.append(el("p", {text: `Alias ${status.alias} → ${(status.points_to || []).join(", ") || "nothing"}`}));
    const rows = (status.indices || []).map((row) => [
      row.index, (row.aliases || []).join(", ") || "–", String(row.docs),
      percent(row.text_vector_coverage), percent(row.image_vector_coverage),
      row.size_bytes === null || row.size_bytes === undefined ? "–" : `${(row.size_bytes / 1048576).toFixed(1)} MiB`,
      row.model_name || "–", (row.model_identity || "–").slice(0, 16),
      yesNo(row.model_matches, "yes", "no"), row.created_at || "–"]);
    box.append(el("div", {class: "table-wrap"}, [table("Index versions, newest first",
      ["Index", "Aliases", "Docs", "Text vectors", "Image vectors", "Size", "Model", "Model identity", "Loaded model", "Created"], rows)]));
  }

  function ci(pair) {
    return Array.isArray(pair) ? `[${fmt(pair[0])}, ${fmt(pair[1])}]` : "–";
  }

  function renderAb(report, box) {
    const srm = report.srm;
    box.append(el("p", {"data-srm": srm.ok ? "ok" : "mismatch"}, ["Sample ratio: ",
      yesNo(srm.ok, `ok (p = ${fmt(srm.p)})`, `MISMATCH (p = ${fmt(srm.p)}): the split is broken, do not trust the figures below`)]));
    const rows = Object.entries(report.variants).map(([name, v]) => [
      name + (name === report.control ? " (control)" : ""), String(v.units), String(v.impressions),
      `${fmt(v.ctr)} ${ci(v.ctr_ci)}`, `${fmt(v.mrr)} ${ci(v.mrr_ci)}`,
      `${fmt(v.zero_result_rate)} ${ci(v.zero_result_ci)}`, fmt(v.p95_latency_ms, 1),
      v.vs_control ? `CTR ${fmt(v.vs_control.ctr_diff)} (p ${fmt(v.vs_control.ctr_p)})` : "–"]);
    box.append(el("div", {class: "table-wrap"}, [table("Per-variant metrics with 95% intervals",
      ["Variant", "Units", "Impressions", "CTR", "MRR", "Zero-result rate", "p95 latency (ms)", "vs control"], rows)]));
  }

  function renderExperiment(section) {
    const box = clear($("experiments"));
    if (!section.configured) { box.append(el("p", {class: "muted", text: "No experiment is configured."})); return; }
    box.append(el("h3", {text: `${section.id} (${section.mode}) — ${section.running ? "running" : "not running"}`}));
    box.append(el("p", {class: "muted", text: "Shares: " + Object.entries(section.shares).map(([k, v]) => `${k} ${percent(v)}`).join(", ")}));
    if (section.error) { box.append(el("p", {class: "bad", text: section.error})); return; }
    const report = section.report;
    if (report.variants) renderAb(report, box);
    else box.append(el("p", {text: `Interleaving: ${report.impressions} impressions, A wins ${report.wins_a}, ` +
      `B wins ${report.wins_b}, ties ${report.ties}, p = ${fmt(report.p)}, winner ${report.winner || "none yet"}`}));
  }

  async function load() {
    const token = sessionStorage.getItem(KEY);
    show($("ops-error"), "");
    if (!token) { $("ops-status").textContent = "Enter the admin token to load the data."; return; }
    $("ops-status").textContent = "Loading…";
    try {
      const snapshot = await requestJSON("/ops/data", {headers: {Authorization: `Bearer ${token}`}});
      renderReadiness(snapshot);
      renderIndices(snapshot.index_status);
      renderExperiment(snapshot.experiment);
      $("ops-content").hidden = false;
      $("ops-status").textContent = `Loaded at ${snapshot.generated_at}`;
    } catch (error) {
      $("ops-content").hidden = true;
      $("ops-status").textContent = "";
      show($("ops-error"), `Could not load the ops data: ${error.message}`);
    }
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (token) sessionStorage.setItem(KEY, token);
    $("token").value = "";
    load();
  });
  $("token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    $("ops-content").hidden = true;
    $("ops-status").textContent = "Token forgotten.";
  });
  load();
})();
