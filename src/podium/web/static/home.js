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
      ...upcoming.map((s) => entry(s, new Date(s.starts_at).toLocaleString(podiumI18n.lang))));
    document.getElementById("nothing-on").hidden = live.length + upcoming.length > 0;
  } catch (_) { /* the next round tries again */ }
}
showListing();
setInterval(showListing, 15000);
