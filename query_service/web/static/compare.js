// The ranking workbench: one query under two rankings, overlap figures, moved/new/dropped marks,
// and per-query deltas of an offline evaluation file, each query opening the side-by-side view.
"use strict";

(function () {
  const {el, clear, show, postJSON, photo, fmt} = window.MM;
  const $ = (id) => document.getElementById(id);
  const evalState = {perQuery: null, judgments: null, variants: null, variantRankings: {}};

  function side(name) {
    const variant = $(`${name}-variant`).value;
    if (variant) return {variant};
    const text = $(`${name}-ranking`).value.trim();
    try {
      return {ranking: text ? JSON.parse(text) : {}};
    } catch (error) {
      throw new Error(`the ${name} ranking is not valid JSON: ${error.message}`);
    }
  }

  function badge(movement) {
    const labels = {up: `▲ ${movement.shift}`, down: `▼ ${-movement.shift}`, new: "new", dropped: "dropped", same: "="};
    const spoken = {up: `moved up ${movement.shift}`, down: `moved down ${-movement.shift}`, new: "new in this ranking",
      dropped: "dropped from the right ranking", same: "same rank"};
    return el("span", {class: `badge badge-${movement.status}`, title: spoken[movement.status]}, [
      el("span", {"aria-hidden": "true", text: labels[movement.status]}),
      el("span", {class: "visually-hidden", text: ` (${spoken[movement.status]})`})]);
  }

  function row(hit, rank, movement) {
    const source = hit._source || {};
    return el("li", {"data-id": hit._id, "data-status": movement ? movement.status : null,
      class: movement ? movement.status : null}, [
      photo(source),
      el("span", {class: "title", text: source.title || hit._id}),
      el("span", {class: "muted", text: [source.base_colour, source.article_type].filter(Boolean).join(" · ")}),
      movement ? badge(movement) : null]);
  }

  function renderSides(answer) {
    const byId = Object.fromEntries(answer.overlap.movements.map((m) => [m.id, m]));
    const left = clear($("left-hits"));
    answer.left.result.hits.forEach((hit, i) => {
      const movement = byId[hit._id];
      left.append(row(hit, i + 1, movement && movement.status === "dropped" ? movement : null));
    });
    const right = clear($("right-hits"));
    answer.right.result.hits.forEach((hit, i) => right.append(row(hit, i + 1, byId[hit._id])));
    $("left-heading").textContent = `Left: ${answer.left.label}`;
    $("right-heading").textContent = `Right: ${answer.right.label}`;
    const o = answer.overlap;
    $("overlap").textContent = `Jaccard ${fmt(o.jaccard)} · rank-biased overlap (p = ${o.p}) ${fmt(o.rbo)} · ` +
      `${o.counts.same} same, ${o.counts.up} up, ${o.counts.down} down, ${o.counts.new} new, ${o.counts.dropped} dropped`;
    $("overlap").dataset.rbo = String(o.rbo);
    $("overlap").dataset.jaccard = String(o.jaccard);
    const degraded = [...new Set([...(answer.left.result.degraded || []), ...(answer.right.result.degraded || [])])];
    show($("degraded"), degraded.length ? `Degraded: ${degraded.join("; ")}` : "");
  }

  async function runCompare() {
    show($("compare-error"), "");
    const text = $("cq").value.trim();
    if (!text) { show($("compare-error"), "Type a query to compare."); $("cq").focus(); return; }
    try {
      const body = {text, size: Math.min(50, Math.max(1, Number($("csize").value) || 20)), left: side("left"), right: side("right")};
      $("overlap").textContent = "Comparing…";
      renderSides(await postJSON("/compare/run", body));
    } catch (error) {
      $("overlap").textContent = "";
      show($("compare-error"), `The comparison failed: ${error.message}`);
    }
  }

  function readFile(input) {
    const file = input.files[0];
    return file ? file.text() : Promise.resolve(null);
  }

  function fillSelect(select, names, chosen) {
    clear(select);
    for (const name of names) select.append(el("option", {value: name, selected: name === chosen, text: name}));
  }

  async function loadEval(event) {
    if (event) event.preventDefault();
    show($("eval-error"), "");
    try {
      const text = await readFile($("eval-file"));
      if (!text) { show($("eval-error"), "Choose a per_query.json file first."); return; }
      const perQuery = JSON.parse(text);
      const body = {per_query: perQuery, judgments: await readFile($("judgments-file")), variants: await readFile($("variants-file"))};
      for (const key of ["baseline", "candidate", "metric"]) if ($(`eval-${key}`).value) body[key] = $(`eval-${key}`).value;
      const answer = await postJSON("/compare/eval", body);
      fillSelect($("eval-baseline"), answer.rankings, answer.baseline);
      fillSelect($("eval-candidate"), answer.rankings, answer.candidate);
      fillSelect($("eval-metric"), answer.metrics, answer.metric);
      evalState.variantRankings = Object.fromEntries(answer.variants.map((v) => [v.name, v.ranking]));
      renderEval(answer);
    } catch (error) {
      show($("eval-error"), `Could not read the evaluation: ${error.message}`);
    }
  }

  // Opens one eval query side by side, with the eval's own rankings when the variants file gave them.
  function openQuery(row, answer) {
    $("cq").value = row.query || "";
    for (const [name, ranking] of [["left", answer.baseline], ["right", answer.candidate]]) {
      const known = evalState.variantRankings[ranking];
      const select = $(`${name}-variant`);
      if (known) {
        select.value = "";
        $(`${name}-ranking`).value = JSON.stringify(known);
      } else if ([...select.options].some((o) => o.value === ranking)) {
        select.value = ranking;
      }
    }
    if (!row.query) { show($("compare-error"), `Query ${row.qid} has no text in the judgments file (or none was given).`); return; }
    runCompare();
    $("cq").focus();
  }

  function renderPlot(answer) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    const width = 1000, height = 220, mid = height / 2, n = Math.max(1, answer.rows.length);
    const scale = Math.max(1e-9, ...answer.rows.map((r) => Math.abs(r.delta)));
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("preserveAspectRatio", "none");
    // The table below is the accessible form of this plot; the bars are a mouse shortcut.
    svg.setAttribute("aria-hidden", "true");
    const axis = document.createElementNS(ns, "line");
    Object.entries({x1: 0, x2: width, y1: mid, y2: mid, stroke: "#767676"}).forEach(([k, v]) => axis.setAttribute(k, v));
    svg.append(axis);
    answer.rows.forEach((r, i) => {
      const bar = document.createElementNS(ns, "rect");
      const h = Math.max(1, Math.abs(r.delta) / scale * (mid - 8));
      const attrs = {x: i * width / n, width: Math.max(1, width / n - 1), y: r.delta >= 0 ? mid - h : mid, height: h,
        class: r.delta > 0 ? "bar-up" : r.delta < 0 ? "bar-down" : "bar-zero", "data-qid": r.qid};
      Object.entries(attrs).forEach(([k, v]) => bar.setAttribute(k, v));
      const title = document.createElementNS(ns, "title");
      title.textContent = `${r.qid} ${r.query || ""}: ${fmt(r.delta)}`;
      bar.append(title);
      bar.addEventListener("click", () => openQuery(r, answer));
      svg.append(bar);
    });
    clear($("eval-plot")).append(svg);
  }

  function renderEval(answer) {
    const s = answer.summary;
    $("eval-summary").textContent = `${answer.candidate} vs ${answer.baseline} on ${answer.metric}: ${s.queries} queries, ` +
      `mean delta ${fmt(s.mean_delta)}, ${s.improved} better, ${s.worse} worse, ${s.same} unchanged`;
    renderPlot(answer);
    const body = clear(document.querySelector("#eval-table tbody"));
    for (const r of answer.rows) {
      body.append(el("tr", {"data-qid": r.qid}, [
        el("td", {}, [el("button", {type: "button", class: "secondary eval-open", onclick: () => openQuery(r, answer)},
          [r.query ? `${r.qid}: ${r.query}` : r.qid])]),
        el("td", {class: "num", text: fmt(r.baseline)}), el("td", {class: "num", text: fmt(r.candidate)}),
        el("td", {class: "num", text: fmt(r.delta)})]));
    }
    $("eval-table-wrap").hidden = !answer.rows.length;
  }

  $("compare-form").addEventListener("submit", (event) => { event.preventDefault(); runCompare(); });
  $("eval-form").addEventListener("submit", loadEval);
  for (const id of ["eval-file", "judgments-file", "variants-file"]) {
    $(id).addEventListener("change", () => {
      for (const key of ["baseline", "candidate", "metric"]) clear($(`eval-${key}`));
      if ($("eval-file").files[0]) loadEval();
    });
  }
})();
