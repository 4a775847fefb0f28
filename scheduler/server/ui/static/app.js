// Ark dashboard: fetch the page's fragment with the tab's token and keep it
// live. The token lives in sessionStorage (this tab only) and travels as
// an Authorization header, so the stream is read with fetch(): EventSource
// cannot send headers.
"use strict";

const tokenKey = "ark-token";
const view = document.getElementById("view");
const live = document.getElementById("live");
const errorBox = document.getElementById("error");
let controller = null;
let lastIndex = 0;

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

function dataURL() {
  const q = new URLSearchParams(view.dataset.query || "");
  if (view.dataset.id) q.set("id", view.dataset.id);
  if (lastIndex) q.set("index", String(lastIndex));
  const s = q.toString();
  return "/ui/data/" + view.dataset.page + (s ? "?" + s : "");
}

function headers() {
  const h = { Accept: "text/event-stream" };
  const tok = sessionStorage.getItem(tokenKey);
  if (tok) h.Authorization = "Bearer " + tok;
  return h;
}

// handle applies one Server-Sent Event.
function handle(ev) {
  if (ev.event === "page") {
    view.innerHTML = ev.data;
    lastIndex = Number(ev.id) || lastIndex;
    view.dataset.index = String(lastIndex);
    showError("");
  } else if (ev.event === "failure") {
    showError(ev.data);
  }
}

// parse splits a buffer into complete events and returns what is left.
function parse(buf) {
  let i;
  while ((i = buf.indexOf("\n\n")) >= 0) {
    const block = buf.slice(0, i);
    buf = buf.slice(i + 2);
    const ev = { event: "message", id: "", data: [] };
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const c = line.indexOf(":");
      const field = c < 0 ? line : line.slice(0, c);
      let value = c < 0 ? "" : line.slice(c + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") ev.data.push(value);
      else if (field === "event") ev.event = value;
      else if (field === "id") ev.id = value;
    }
    if (ev.data.length) handle({ event: ev.event, id: ev.id, data: ev.data.join("\n") });
  }
  return buf;
}

async function follow() {
  if (controller) controller.abort();
  const mine = new AbortController();
  controller = mine;
  for (;;) {
    let wait = 1000;
    try {
      const resp = await fetch(dataURL(), { headers: headers(), signal: mine.signal, cache: "no-store" });
      if (!resp.ok) {
        const text = await resp.text();
        let msg = text;
        try { msg = JSON.parse(text).error || text; } catch (e) { /* plain text */ }
        if (resp.status === 401) msg = "This server needs a token: paste one above. (" + msg + ")";
        showError(resp.status + ": " + msg);
        live.textContent = "stopped";
        live.className = "live";
        if (resp.status === 401 || resp.status === 403 || resp.status === 404) return;
        wait = 5000;
      } else {
        live.textContent = "live";
        live.className = "live on";
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf = parse(buf + value);
        }
      }
    } catch (e) {
      if (mine.signal.aborted) return;
      showError("Lost the server: " + e.message + "; retrying.");
      wait = 3000;
    }
    live.textContent = "reconnecting";
    live.className = "live";
    await new Promise((r) => setTimeout(r, wait));
    if (mine.signal.aborted) return;
  }
}

document.getElementById("login").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = document.getElementById("token");
  if (input.value) sessionStorage.setItem(tokenKey, input.value.trim());
  input.value = "";
  lastIndex = 0;
  follow();
});

document.getElementById("forget").addEventListener("click", () => {
  sessionStorage.removeItem(tokenKey);
  lastIndex = 0;
  view.innerHTML = "";
  follow();
});

// The jobs filter applies as soon as a choice changes.
view.addEventListener("change", (e) => {
  const form = e.target.form;
  if (form && form.classList.contains("filter")) form.requestSubmit();
});

// A page left for another closes its stream: a browser keeps few
// connections per server, and pages kept in its back/forward cache would
// otherwise hold theirs open. A page brought back from that cache reopens it.
window.addEventListener("pagehide", () => {
  if (controller) controller.abort();
  controller = null;
});
window.addEventListener("pageshow", (e) => {
  if (e.persisted) follow();
});

follow();
