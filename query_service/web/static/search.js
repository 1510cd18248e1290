// The search page: text and/or photo, modes, advanced ranking, facets, paging, score breakdowns,
// the parse ("understood"), degradation banner, experiment variant, and click events.
"use strict";

(function () {
  const {el, clear, show, postJSON, photo, fmt} = window.MM;
  const data = window.MM.pageData();
  const PAGE_SIZE = 12;
  const ATTRIBUTES = [["article_type", "Type"], ["base_colour", "Colour"], ["gender", "Gender"],
    ["season", "Season"], ["usage", "Usage"], ["year", "Year"], ["brand", "Brand"]];
  const $ = (id) => document.getElementById(id);
  const state = {file: null, filters: {}, offset: 0, last: null, busy: false};

  function unitId() {
    // A random id per browser, so the A/B bucketing is stable for this shopper; never a person's data.
    let id = localStorage.getItem("mmsearch-unit");
    if (!id) {
      id = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2));
      localStorage.setItem("mmsearch-unit", id);
    }
    return id;
  }

  function mode() {
    const checked = document.querySelector('input[name="mode"]:checked');
    return checked ? checked.value : "hybrid";
  }

  // null: no override, so the deployment's ranking (and an A/B assignment) applies.
  function rankingOverrides() {
    if (!$("advanced-on").checked) {
      const preset = data.modes[mode()];
      return preset ? JSON.parse(JSON.stringify(preset)) : null;
    }
    const legs = {};
    for (const input of document.querySelectorAll("input[data-leg]")) {
      const weight = Number(input.value);
      if (weight > 0) legs[input.dataset.leg] = weight;
    }
    return {legs, method: $("method").value, normalization: $("normalization").value,
      combination: $("combination").value, rrf_k: Math.round(Number($("rrf-k").value) || 0),
      understanding: $("understanding").checked, native_retriever: $("native-retriever").checked};
  }

  function filtersPayload() {
    const out = {};
    for (const [field, values] of Object.entries(state.filters)) if (values.size) out[field] = [...values];
    return out;
  }

  function readAsDataURL(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }

  // Multipart (the photo as a file) when no ranking override is needed; JSON otherwise, since
  // only the JSON body carries a ranking (the photo then travels as base64).
  async function send(text, ranking) {
    const common = {size: PAGE_SIZE, from: state.offset, facets: data.facets, user_id: unitId()};
    const filters = filtersPayload();
    if (state.file && !ranking) {
      const form = new FormData();
      form.append("image", state.file);
      if (text) form.append("text", text);
      for (const [key, value] of Object.entries(common)) form.append(key, Array.isArray(value) ? value.join(",") : String(value));
      form.append("filters", JSON.stringify(filters));
      return window.MM.requestJSON("/search", {method: "POST", body: form});
    }
    const body = Object.assign({}, common, {filters, explain: true});
    if (text) body.text = text;
    if (state.file) body.image_base64 = await readAsDataURL(state.file);
    if (ranking) body.ranking = ranking;
    return postJSON("/search", body);
  }

  async function search(resetOffset) {
    if (resetOffset) state.offset = 0;
    const text = $("q").value.trim();
    show($("error"), "");
    if (!text && !state.file) {
      show($("error"), "Type some words or add a photo to search.");
      return;
    }
    state.busy = true;
    $("summary").textContent = "Searching…";
    try {
      state.last = await send(text, rankingOverrides());
      render(state.last);
    } catch (error) {
      $("summary").textContent = "";
      show($("error"), `The search failed: ${error.message}`);
    } finally {
      state.busy = false;
    }
  }

  function render(result) {
    const degraded = result.degraded || [];
    show($("degraded"), degraded.length ? `Some of the search is degraded: ${degraded.join("; ")}` : "");
    const first = result.total ? result.offset + 1 : 0;
    const last = result.offset + result.hits.length;
    $("summary").textContent = `${result.total} results` + (result.total ? `, showing ${first}–${last}` : "");
    const experiment = result.experiment;
    $("variant").textContent = `Ranking: ${result.variant}` +
      (experiment ? ` (experiment ${experiment.id}, variant ${experiment.variant}, ${experiment.mode})` : "");
    renderUnderstood(result.understood);
    renderFacets(result.facets || {});
    renderHits(result);
    renderPagination(result);
  }

  function renderUnderstood(understood) {
    const box = clear($("understood"));
    const attributes = understood && understood.attributes ? Object.entries(understood.attributes) : [];
    box.hidden = !attributes.length;
    if (!attributes.length) return;
    box.append(el("strong", {text: "Understood: "}));
    box.append(el("ul", {}, attributes.map(([field, info]) => el("li", {
      "data-field": field,
      text: `${field}: ${(info.values || []).join(", ")} (confidence ${fmt(info.confidence, 2)}` +
        (info.span ? `, from “${info.span}”` : "") + (info.source ? `, ${info.source}` : "") + ")"}))));
    const uses = [];
    if ((understood.filtered || []).length) uses.push(`filtered the vector legs on ${understood.filtered.join(", ")}`);
    if (understood.boosted) uses.push("boosted matching keywords");
    if ((understood.filter_dropped || []).length) uses.push(`dropped the filter of ${understood.filter_dropped.join(", ")}`);
    if (uses.length) box.append(el("p", {class: "muted", text: `Used: ${uses.join("; ")}.`}));
  }

  function toggleFilter(field, value) {
    const values = state.filters[field] || (state.filters[field] = new Set());
    if (values.has(value)) values.delete(value); else values.add(value);
    search(true);
  }

  function renderFacets(facets) {
    const active = clear($("active-filters"));
    for (const [field, values] of Object.entries(state.filters)) {
      for (const value of values) {
        active.append(el("button", {type: "button", class: "chip secondary", "aria-label": `Remove filter ${field}: ${value}`,
          onclick: () => toggleFilter(field, value)}, [`${value} ×`]));
      }
    }
    const box = clear($("facets"));
    for (const [field, buckets] of Object.entries(facets)) {
      if (!buckets.length) continue;
      const selected = state.filters[field] || new Set();
      box.append(el("fieldset", {class: "facet-group", "data-facet": field}, [
        el("legend", {text: field.replace(/_/g, " ")}),
        ...buckets.map((b) => el("button", {type: "button", class: "facet-value", "data-value": b.value,
          "aria-pressed": selected.has(b.value) ? "true" : "false",
          onclick: () => toggleFilter(field, b.value)}, [`${b.value} (${b.count})`]))
      ]));
    }
  }

  function breakdownTable(breakdown) {
    const rows = Object.entries(breakdown.legs || {}).map(([leg, part]) => el("tr", {}, [
      el("th", {scope: "row", text: leg}), el("td", {text: part.rank}), el("td", {text: fmt(part.raw_score)}),
      el("td", {text: fmt(part.normalized)}), el("td", {text: fmt(part.weight, 2)}), el("td", {text: fmt(part.contribution, 4)})]));
    return el("table", {class: "breakdown"}, [
      el("caption", {text: `Fused score ${fmt(breakdown.fused_score, 4)}`}),
      el("thead", {}, [el("tr", {}, ["Leg", "Rank", "Raw", "Normalised", "Weight", "Contribution"].map((h) => el("th", {scope: "col", text: h})))]),
      el("tbody", {}, rows)]);
  }

  function attributeList(source) {
    return el("dl", {class: "attributes"}, ATTRIBUTES.filter(([key]) => source[key] !== undefined && source[key] !== null)
      .flatMap(([key, label]) => [el("dt", {text: label}), el("dd", {"data-attr": key, text: source[key]})]));
  }

  function renderHits(result) {
    const list = clear($("hits"));
    result.hits.forEach((hit, index) => {
      const source = hit._source || {};
      const position = result.offset + index + 1;
      const item = el("li", {class: "hit", "data-id": hit._id, "data-position": position}, [
        photo(source),
        el("h3", {class: "hit-title"}, [el("button", {type: "button", class: "hit-open",
          onclick: () => openProduct(hit, position, index)}, [source.title || hit._id])]),
        attributeList(source)]);
      if (hit.breakdown) {
        const panelId = `breakdown-${position}`;
        const panel = el("div", {id: panelId, class: "breakdown-panel", hidden: true}, [breakdownTable(hit.breakdown)]);
        const toggle = el("button", {type: "button", class: "breakdown-toggle", "aria-expanded": "false", "aria-controls": panelId,
          "aria-label": `Score breakdown of ${source.title || hit._id}`}, ["Score breakdown"]);
        toggle.addEventListener("click", () => {
          const open = toggle.getAttribute("aria-expanded") !== "true";
          toggle.setAttribute("aria-expanded", String(open));
          panel.hidden = !open;
        });
        item.append(el("div", {class: "hit-actions"}, [toggle]), panel);
      }
      list.append(item);
    });
  }

  function renderPagination(result) {
    const nav = $("pagination");
    nav.hidden = result.total <= PAGE_SIZE;
    const pages = Math.max(1, Math.ceil(result.total / PAGE_SIZE));
    $("page-info").textContent = `Page ${Math.floor(result.offset / PAGE_SIZE) + 1} of ${pages}`;
    $("prev-page").disabled = result.offset <= 0;
    $("next-page").disabled = result.offset + PAGE_SIZE >= result.total;
  }

  function logClick(hit, position, index) {
    const result = state.last;
    // No ticket: the service has no events credential configured, and /events would refuse the click.
    if (!data.events || !result || !result.query_id || !result.event_ticket) return;
    // The ticket is this search's credential for /events (it cannot hold a server token).
    const event = {type: "click", query_id: result.query_id, ticket: result.event_ticket, doc_id: hit._id, position,
      variant: result.variant, unit_id: unitId()};
    if (result.experiment) event.experiment_id = result.experiment.id;
    if (result.teams && result.teams[index]) event.team = result.teams[index];
    // keepalive: the event still leaves if the shopper navigates away at once.
    fetch("/events", {method: "POST", keepalive: true, headers: {"Content-Type": "application/json"},
      body: JSON.stringify(event)}).catch(() => {});
  }

  function openProduct(hit, position, index) {
    logClick(hit, position, index);
    const source = hit._source || {};
    const dialog = $("product-dialog");
    $("product-title").textContent = source.title || hit._id;
    const image = $("product-photo");
    const url = window.MM.photoUrl(source.image);
    image.hidden = !url;
    if (url) { image.src = url; image.alt = source.title || "Product photo"; }
    $("product-attributes").replaceWith(Object.assign(attributeList(source), {id: "product-attributes"}));
    dialog.returnFocusTo = document.activeElement;
    dialog.showModal();
    $("product-close").focus();
  }

  function setPhoto(file) {
    if (file && !file.type.startsWith("image/")) {
      show($("error"), "That file is not an image.");
      return;
    }
    state.file = file || null;
    const preview = $("photo-preview");
    preview.hidden = !file;
    const image = $("photo-preview-img");
    if (image.src) URL.revokeObjectURL(image.src);
    if (file) image.src = URL.createObjectURL(file); else image.removeAttribute("src");
    if (!file) $("photo").value = "";
  }

  function wirePhotoInput() {
    $("photo").addEventListener("change", (event) => setPhoto(event.target.files[0]));
    $("photo-remove").addEventListener("click", () => { setPhoto(null); $("photo").focus(); });
    const zone = $("drop-zone");
    zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("dragging"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragging");
      const file = event.dataTransfer.files[0];
      if (file) setPhoto(file);
    });
    document.addEventListener("paste", (event) => {
      const item = [...(event.clipboardData ? event.clipboardData.items : [])].find((i) => i.type.startsWith("image/"));
      if (item) { event.preventDefault(); setPhoto(item.getAsFile()); }
    });
  }

  function wire() {
    $("search-form").addEventListener("submit", (event) => { event.preventDefault(); search(true); });
    $("prev-page").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); search(false); });
    $("next-page").addEventListener("click", () => { state.offset += PAGE_SIZE; search(false); });
    for (const radio of document.querySelectorAll('input[name="mode"]')) radio.addEventListener("change", () => { if (state.last) search(true); });
    const dialog = $("product-dialog");
    $("product-close").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => { if (dialog.returnFocusTo) dialog.returnFocusTo.focus(); });
    wirePhotoInput();
  }

  wire();
})();
