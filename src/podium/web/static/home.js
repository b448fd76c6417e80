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
  try {
    const response = await fetch("/api/spaces", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || `error ${response.status}`);
    localStorage.setItem(`podium.host.${data.id}`, data.host_token);
    location.href = `${data.urls.host}#token=${encodeURIComponent(data.host_token)}`;
  } catch (e) {
    error.textContent = `Could not create the space: ${e.message}`;
  }
});
