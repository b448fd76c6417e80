"use strict";
// The host console: publish the microphone to the stage over WHIP, watch the level, end the space.
const spaceId = location.pathname.split("/").pop();
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("token")) {
  localStorage.setItem(`podium.host.${spaceId}`, fragment.get("token"));
  history.replaceState(null, "", location.pathname);  // keep the token out of the address bar
}
const token = localStorage.getItem(`podium.host.${spaceId}`);
let space = null;
let pc = null;
let whipResource = null;

function showError(message) { $("error").textContent = message; }
function setStatus(message) { $("status").textContent = message; }

function render() {
  if (!space) return;
  $("title").textContent = space.title;
  document.title = `${space.title} — host console`;
  $("state").textContent = space.state;
  $("state").dataset.state = space.state;
  $("now").textContent = space.listeners.now;
  $("peak").textContent = space.listeners.peak;
  const page = new URL(space.urls.page, location.href).href;
  $("listen-link").textContent = page;
  $("listen-link").href = page;
  $("hls-url").textContent = new URL(space.urls.hls, location.href).href;
  $("when").textContent = space.starts_at ? `Scheduled for ${new Date(space.starts_at).toLocaleString()}` : "";
  const ended = space.state === "ended";
  $("golive").disabled = ended || pc !== null;
  $("end").disabled = ended;
  if (ended) setStatus("This space has ended.");
}

async function refresh() {
  try {
    const response = await fetch(`/api/spaces/${spaceId}`, { cache: "no-store" });
    if (!response.ok) throw new Error((await response.json()).error);
    space = await response.json();
    render();
  } catch (e) {
    showError(`Could not load the space: ${e.message}`);
  }
}

function meter(stream) {
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  context.createMediaStreamSource(stream).connect(analyser);
  watchLevel(analyser, (percent) => {
    $("meter-bar").style.width = `${percent}%`;
    $("meter").setAttribute("aria-valuenow", String(percent));
  });
  return context;
}

function iceComplete(connection) {
  if (connection.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (connection.iceGatheringState === "complete") resolve(); };
    connection.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 3000);  // gather what we have; host candidates come first
  });
}

async function goLive() {
  showError("");
  if (!token) { showError("This browser does not hold the host token for this space."); return; }
  $("golive").disabled = true;
  try {
    setStatus("Asking for the microphone…");
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    meter(stream);
    pc = new RTCPeerConnection();
    for (const track of stream.getAudioTracks()) pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    pc.addEventListener("connectionstatechange", () => {
      const state = pc ? pc.connectionState : "closed";
      setStatus({ connected: "You are live on stage.", connecting: "Connecting to the stage…", failed: "The connection to the stage failed.", disconnected: "Reconnecting…" }[state] || state);
    });
    await pc.setLocalDescription(await pc.createOffer());
    await iceComplete(pc);
    setStatus("Connecting to the stage…");
    const response = await fetch(space.urls.whip, {
      method: "POST",
      headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` },
      body: pc.localDescription.sdp,
    });
    if (response.status !== 201) {
      const text = await response.text();
      let message = text;
      try { message = JSON.parse(text).error; } catch (_) { /* plain text */ }
      throw new Error(message || `error ${response.status}`);
    }
    whipResource = response.headers.get("Location");
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    await refresh();
  } catch (e) {
    showError(`Could not go live: ${e.message}`);
    if (pc) pc.close();
    pc = null;
    render();
  }
}

async function endSpace() {
  if (!confirm("End this space for everyone?")) return;
  try {
    const response = await fetch(`/api/spaces/${spaceId}/end`, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
    if (!response.ok) throw new Error((await response.json()).error);
    if (pc) pc.close();
    pc = null;
    space = await response.json();
    render();
  } catch (e) {
    showError(`Could not end the space: ${e.message}`);
  }
}

$("golive").addEventListener("click", goLive);
$("end").addEventListener("click", endSpace);
window.addEventListener("pagehide", () => {
  if (whipResource && token) fetch(whipResource, { method: "DELETE", headers: { Authorization: `Bearer ${token}` }, keepalive: true });
});
refresh();
setInterval(refresh, 3000);
