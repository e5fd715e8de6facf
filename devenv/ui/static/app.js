// devenv ui: swap in the fragments the server streams, and post actions with this run's token.
"use strict";

const token = document.querySelector('meta[name="devenv-token"]').content;
const names = ["meta", "action", "services", "watch", "checks", "phases"];

function setLive(live) {
  const el = document.getElementById("live");
  el.dataset.live = String(live);
  el.textContent = live ? "live" : "reconnecting…";
}

function setBusy() {
  const state = document.querySelector("#action [data-busy]");
  const busy = state !== null && state.dataset.busy === "true";
  for (const button of document.querySelectorAll("button[data-action]")) {
    button.disabled = busy;
  }
}

const events = new EventSource("/events");
events.onopen = () => setLive(true);
events.onerror = () => setLive(false);
for (const name of names) {
  // fragments are rendered and escaped on the server
  events.addEventListener(name, (e) => {
    document.getElementById(name).innerHTML = e.data;
    setBusy();
  });
}

async function post(path) {
  const response = await fetch(path, { method: "POST", headers: { "X-Devenv-Token": token } });
  if (!response.ok) {
    const body = await response.json().catch(() => ({ error: response.statusText }));
    const el = document.getElementById("action");
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = body.error || response.statusText;
    el.replaceChildren(p);
  }
}

document.addEventListener("click", (e) => {
  const button = e.target.closest("button[data-action]");
  if (button !== null && !button.disabled) {
    post(button.dataset.action);
  }
});

const select = document.getElementById("log-service");
async function loadLogs() {
  const service = select.value;
  if (!service) {
    return;
  }
  const response = await fetch("/logs/" + encodeURIComponent(service));
  if (select.value === service) {
    document.getElementById("logs").innerHTML = await response.text();
  }
}
select.addEventListener("change", loadLogs);
setInterval(loadLogs, 2000);
setBusy();
