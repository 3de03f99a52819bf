// The navigation bar and one helper for calling the API (JSON errors shown as messages).
const PAGES = [["people", "People"], ["unknowns", "Unknowns"], ["events", "Events"], ["live", "Live"]];

function navigation(here) {
  const nav = document.createElement("nav");
  for (const [page, title] of PAGES) {
    const a = document.createElement("a");
    a.href = "/" + page; a.textContent = title;
    if (page === here) a.className = "here";
    nav.appendChild(a);
  }
  const docs = document.createElement("a");
  docs.href = "/openapi.json"; docs.textContent = "API";
  nav.appendChild(docs);
  document.body.prepend(nav);
}

async function api(method, path, body) {
  const options = {method: method, headers: {}};
  if (body instanceof FormData) options.body = body;
  else if (body !== undefined) { options.body = JSON.stringify(body); options.headers["Content-Type"] = "application/json"; }
  const response = await fetch(path, options);
  const data = response.headers.get("content-type", "").includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error((data && (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail))) || response.statusText);
  return data;
}

function show(message, ok) {
  const box = document.getElementById("message");
  box.textContent = message;
  box.className = "message " + (ok ? "ok" : "error");
}

function element(tag, attrs, text) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}
