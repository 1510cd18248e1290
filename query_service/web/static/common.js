// Shared helpers of the mmsearch pages. No framework, no build step.
// Rule: data (queries, titles, attribute values, errors) only ever reaches the page through
// textContent or attribute setters, never an HTML-parsing sink, so nothing a shopper or a catalog sends runs.
"use strict";

window.MM = (function () {
  function pageData() {
    const node = document.getElementById("page-data");
    return node ? JSON.parse(node.textContent) : {};
  }

  // el("li", {class: "hit", "data-id": id}, [child, "text"]): strings become text nodes.
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = String(value);
      else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children || []) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function show(node, message) {
    node.textContent = message || "";
    node.hidden = !message;
  }

  // JSON in and out; a non-2xx answer becomes an Error carrying the service's message.
  async function requestJSON(url, options) {
    const response = await fetch(url, Object.assign({credentials: "same-origin"}, options || {}));
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok) {
      const message = body && (body.message || (body.error && body.error.reason) || body.error);
      const error = new Error(`${response.status}: ${message || response.statusText}`);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function postJSON(url, body, headers) {
    return requestJSON(url, {method: "POST", body: JSON.stringify(body),
      headers: Object.assign({"Content-Type": "application/json"}, headers || {})});
  }

  // A catalog image reference ("images/1234.jpg") -> the /photos URL; anything else has no photo here.
  function photoUrl(ref) {
    if (typeof ref !== "string" || !ref || ref.startsWith("<") || ref.startsWith("/") || /^[a-z][a-z0-9+.-]+:/i.test(ref)) {
      return null;
    }
    return "/photos/" + ref.split("/").map(encodeURIComponent).join("/");
  }

  function photo(source, className) {
    const url = photoUrl(source && source.image);
    const title = (source && source.title) || "Product";
    if (!url) return el("div", {class: "no-photo " + (className || ""), role: "img", "aria-label": `${title}: no photo`}, ["No photo"]);
    return el("img", {src: url, alt: title, loading: "lazy", class: className || null});
  }

  function fmt(value, digits) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    return typeof value === "number" ? value.toFixed(digits === undefined ? 3 : digits) : String(value);
  }

  function percent(value) {
    return value === null || value === undefined ? "–" : `${(100 * value).toFixed(1)}%`;
  }

  function table(caption, headers, rows) {
    return el("table", {}, [
      el("caption", {text: caption}),
      el("thead", {}, [el("tr", {}, headers.map((h) => el("th", {scope: "col", text: h})))]),
      el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => (c instanceof Node ? el("td", {}, [c]) : el("td", {text: c}))))))
    ]);
  }

  return {pageData, el, clear, show, requestJSON, postJSON, photoUrl, photo, fmt, percent, table};
})();
