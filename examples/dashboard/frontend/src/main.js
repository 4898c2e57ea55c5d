// Dashboard front end: polls the backend's /api/stats and renders a few cards.
// `npm run build` bundles this into dist/assets/app.<hash>.js (+ source map).
const REFRESH_MS = 5000;

async function fetchStats() {
  const res = await fetch("/api/stats", { headers: { accept: "application/json" } });
  if (!res.ok) throw new Error(`GET /api/stats: ${res.status}`);
  return res.json();
}

function card(title, value) {
  const el = document.createElement("section");
  el.className = "card";
  el.innerHTML = `<h2></h2><p class="value"></p>`;
  el.querySelector("h2").textContent = title;
  el.querySelector(".value").textContent = String(value);
  return el;
}

async function refresh() {
  const root = document.getElementById("cards");
  const status = document.getElementById("status");
  try {
    const stats = await fetchStats();
    root.replaceChildren(
      card("Service", stats.service),
      card("Version", stats.version),
      card("Uptime (s)", stats.uptime_seconds),
      card("Requests", stats.requests),
    );
    status.textContent = `updated ${new Date().toLocaleTimeString()}`;
    status.classList.remove("error");
  } catch (err) {
    status.textContent = err.message;
    status.classList.add("error");
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
