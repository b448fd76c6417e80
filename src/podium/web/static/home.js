"use strict";
// Creates a space and opens its host console. The host token travels in the URL fragment,
// which browsers never send to a server, and is kept in this browser's storage.
document.getElementById("create").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("error");
  error.textContent = "";
  const body = { title: document.getElementById("title").value, record: document.getElementById("record").checked };
  const starts = document.getElementById("starts").value;
  if (starts) body.starts_at = new Date(starts).toISOString();
  // Signed in (a session cookie), the space is created by the account, which announces it in the
  // listing; the CSRF cookie's echo proves that this page sent it.
  const headers = { "Content-Type": "application/json" };
  const csrf = document.cookie.split("; ").find((c) => c.startsWith("podium_csrf="));
  if (csrf) headers["X-CSRF-Token"] = decodeURIComponent(csrf.slice("podium_csrf=".length));
  try {
    const response = await fetch("/api/spaces", { method: "POST", headers, body: JSON.stringify(body) });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || `error ${response.status}`);
    localStorage.setItem(`podium.host.${data.id}`, data.host_token);
    location.href = `${data.urls.host}#token=${encodeURIComponent(data.host_token)}`;
  } catch (e) {
    error.textContent = t("home.create_failed", { message: e.message });
  }
});

// What is on: live spaces first, then the scheduled ones, soonest first.
async function showListing() {
  try {
    const response = await fetch("/api/spaces");
    if (!response.ok) return;
    const { live, upcoming } = await response.json();
    const entry = (space, note) => {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = space.urls.page;
      link.textContent = space.title;
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.dataset.state = space.state;
      badge.textContent = t(space.state === "live" ? "home.badge_live" : "home.badge_soon");
      const small = document.createElement("small");
      small.className = "muted";
      small.textContent = note;
      item.append(badge, link, small);
      return item;
    };
    document.getElementById("live-list").replaceChildren(
      ...live.map((s) => entry(s, tn("home.listening", s.listeners.now))));
    document.getElementById("upcoming-list").replaceChildren(
      ...upcoming.map((s) => entry(s, when(s.starts_at))));
    document.getElementById("nothing-on").hidden = live.length + upcoming.length > 0;
  } catch (_) { /* the next round tries again */ }
}
showListing();
setInterval(showListing, 15000);

// The spaces this browser hosts (their host tokens are kept here, and only here): live first,
// then upcoming, then ended, each a link to its console. Kept to the newest few, so a browser
// that hosted hundreds asks for a bounded number.
const MINE_SHOWN = 30;
async function showMine() {
  const ids = Object.keys(localStorage).filter((key) => key.startsWith("podium.host.")).map((key) => key.slice(12));
  if (!ids.length) return;
  const spaces = (await Promise.all(ids.map(async (id) => {
    try {
      const response = await fetch(`/api/spaces/${encodeURIComponent(id)}`);
      if (response.status === 404) localStorage.removeItem(`podium.host.${id}`);  // gone for good
      return response.ok ? response.json() : null;
    } catch (_) { return null; }
  }))).filter(Boolean);
  const order = { live: 0, scheduled: 1, ended: 2 };
  const moment = (s) => s.ended_at || s.starts_at || s.created_at;
  spaces.sort((a, b) => order[a.state] - order[b.state] || (a.state === "scheduled" ? moment(a).localeCompare(moment(b)) : moment(b).localeCompare(moment(a))));
  document.getElementById("mine-list").replaceChildren(...spaces.slice(0, MINE_SHOWN).map((space) => {
    const item = document.createElement("li");
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.dataset.state = space.state;
    badge.textContent = stateName(space);
    const link = document.createElement("a");
    link.href = space.urls.host;
    link.textContent = space.title;
    const small = document.createElement("small");
    small.className = "muted";
    const at = space.state === "scheduled" ? space.starts_at : moment(space);
    small.textContent = at ? when(at) : "";
    item.append(badge, link, small);
    return item;
  }));
  document.getElementById("mine-card").hidden = spaces.length === 0;
}
showMine();