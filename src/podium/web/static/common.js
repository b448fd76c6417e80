"use strict";
// What the host console and the listener page share.
const $ = (id) => document.getElementById(id);

// A peak level (0..1) on a 60 dB scale, as ears and level meters read it.
function levelPercent(peak) {
  return Math.max(0, Math.min(100, Math.round(((20 * Math.log10(peak + 1e-9)) + 60) / 60 * 100)));
}

// Calls onLevel(percent) once per animation frame with the analyser's current peak level.
function watchLevel(analyser, onLevel) {
  const data = new Float32Array(analyser.fftSize);
  (function draw() {
    analyser.getFloatTimeDomainData(data);
    let peak = 0;
    for (const v of data) peak = Math.max(peak, Math.abs(v));
    onLevel(levelPercent(peak));
    requestAnimationFrame(draw);
  })();
}

const spaceId = location.pathname.split("/").pop();

async function api(path, { method = "GET", token = null, body = undefined } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || t("common.error_status", { status: response.status }));
  return data;
}

function iceComplete(connection) {
  if (connection.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    connection.addEventListener("icegatheringstatechange", () => {
      if (connection.iceGatheringState === "complete") resolve();
    });
    setTimeout(resolve, 3000);  // host candidates come first; go with what we have
  });
}

// Publishes the microphone to the stage over WHIP and plays back what the stage returns
// (everyone but us). Returns { pc, stream, resource, returnAnalyser }.
async function publishMicrophone(whipUrl, token, onState) {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  });
  const pc = new RTCPeerConnection({ iceServers: await api(`/api/spaces/${spaceId}/ice-servers`, { token }).then((answer) => answer.ice_servers, () => []) });
  const session = { pc, stream, resource: null, returnAnalyser: null };
  for (const track of stream.getAudioTracks()) pc.addTransceiver(track, { direction: "sendrecv", streams: [stream] });
  pc.addEventListener("track", (event) => {
    const remote = event.streams[0] || new MediaStream([event.track]);
    const player = document.getElementById("return-audio");
    player.srcObject = remote;  // Chromium feeds WebAudio from a remote stream only while it plays
    player.play().catch(() => {});
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 4096;
    context.createMediaStreamSource(remote).connect(analyser);
    session.returnAnalyser = analyser;
    window.podium = Object.assign(window.podium || {}, { returnAnalyser: analyser });
  });
  pc.addEventListener("connectionstatechange", () => onState(pc.connectionState));
  await pc.setLocalDescription(await pc.createOffer());
  await iceComplete(pc);
  const response = await fetch(whipUrl, {
    method: "POST",
    headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` },
    body: pc.localDescription.sdp,
  });
  if (response.status !== 201) {
    const text = await response.text();
    pc.close();
    stream.getTracks().forEach((t) => t.stop());
    let message = text;
    try { message = JSON.parse(text).error; } catch (_) { /* plain text */ }
    throw new Error(message || t("common.error_status", { status: response.status }));
  }
  session.resource = response.headers.get("Location");
  await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
  return session;
}

function micMeter(stream, meterId, barId) {
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  context.createMediaStreamSource(stream).connect(analyser);
  watchLevel(analyser, (percent) => {
    $(barId).style.width = `${percent}%`;
    $(meterId).setAttribute("aria-valuenow", String(percent));
  });
}

// A moment as people read it: the date and the time to the minute, in the page's language.
function when(moment) {
  return new Date(moment).toLocaleString(podiumI18n.lang, { dateStyle: "medium", timeStyle: "short" });
}

// A space's state and a person's role as badges and the stage show them, in the page's language.
function stateName(space) {
  if (space.state === "scheduled" && space.preshow) return t("common.state_preshow");
  // A space made to start now has no start time: it is not "scheduled", it waits for its host.
  if (space.state === "scheduled" && !space.starts_at) return t("common.state_not_live");
  const names = { scheduled: t("common.state_scheduled"), live: t("common.state_live"), ended: t("common.state_ended") };
  return names[space.state] || space.state;
}
// A person's name as the page shows it: the host who never gave one is "Host" in the page's language.
function personName(person) {
  const host = person.role === "host" || person.id === "host";  // the timeline's speakers carry no role
  return host && person.name === "Host" ? t("common.default_host_name") : person.name;
}
function roleName(role) {
  const names = { host: t("common.role_host"), cohost: t("common.role_cohost"), speaker: t("common.role_speaker"), listener: t("common.role_listener") };
  return names[role] || role;
}

// Draws the stage: one card per person on it, with a ring while they speak. `controls(person)`
// may return buttons for moderators. Cards are kept and updated in place (keyed by member), so a
// button that has keyboard focus keeps it while the stage changes around it.
function renderStage(container, stage, controls) {
  const kept = new Map([...container.children].map((item) => [item.dataset.member, item]));
  const items = stage.speakers.map((person) => {
    let item = kept.get(person.id);
    if (!item) {
      item = document.createElement("li");
      item.dataset.member = person.id;
      const avatar = document.createElement("span");
      avatar.className = "avatar";
      avatar.setAttribute("aria-hidden", "true");
      const name = document.createElement("span");
      name.className = "name";
      const detail = document.createElement("span");
      detail.className = "detail";
      item.append(avatar, name, detail);
    }
    kept.delete(person.id);
    item.className = "person" + (person.speaking ? " speaking" : "") + (person.muted ? " muted" : "");
    setText(item.querySelector(".avatar"), personName(person).slice(0, 1).toUpperCase());
    setText(item.querySelector(".name"), personName(person));
    const states = person.role ? [roleName(person.role)] : [];
    if (person.muted) states.push(t("common.muted"));
    else if (person.speaking) states.push(t("common.speaking"));
    if (!person.connected) states.push(t("common.not_connected"));
    setText(item.querySelector(".detail"), states.join(" · "));
    if (controls) {
      let actions = item.querySelector(".actions");
      if (!actions) { actions = document.createElement("div"); actions.className = "actions"; item.append(actions); }
      const focused = actions.contains(document.activeElement) ? document.activeElement.textContent : null;
      actions.replaceChildren(...controls(person));
      if (focused !== null) [...actions.children].find((b) => b.textContent === focused)?.focus();
    }
    return item;
  });
  for (const gone of kept.values()) gone.remove();
  arrange(container, items);
}

// Puts `items` in `list` in this order without ever moving the item that holds keyboard focus
// (a moved element loses it): the others are moved around that one instead.
function arrange(list, items) {
  const focused = items.findIndex((item) => item.contains(document.activeElement));
  const head = focused < 0 ? items.length : focused;
  for (let i = 0; i < head; i++) if (list.children[i] !== items[i]) list.insertBefore(items[i], list.children[i] || null);
  let anchor = items[head];
  for (let i = head + 1; i < items.length; i++) {
    if (anchor.nextSibling !== items[i]) list.insertBefore(items[i], anchor.nextSibling);
    anchor = items[i];
  }
}

// Two soft notes: something needs the person at this page (an invitation, a raised hand).
function chime() {
  try {
    const context = new AudioContext();
    [660, 880].forEach((hz, i) => {
      const tone = context.createOscillator();
      const gain = context.createGain();
      tone.frequency.value = hz;
      gain.gain.setValueAtTime(0.0001, context.currentTime + i * 0.18);
      gain.gain.exponentialRampToValueAtTime(0.2, context.currentTime + i * 0.18 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, context.currentTime + i * 0.18 + 0.3);
      tone.connect(gain).connect(context.destination);
      tone.start(context.currentTime + i * 0.18);
      tone.stop(context.currentTime + i * 0.18 + 0.32);
    });
    setTimeout(() => context.close(), 1000);
  } catch (_) { /* no sound is no reason to miss the invitation: the toast stays */ }
}

// Writes text only when it changed, so that nothing is re-announced or re-laid out for nothing.
function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

// Polite announcements for screen readers through one live region (#announce), at most one every
// ANNOUNCE_GAP_MS: what arrives meanwhile replaces what waits, so a busy space never floods the
// reader with a queue of stale news.
const ANNOUNCE_GAP_MS = 4000;
const announcer = { last: 0, waiting: null, timer: null };
function announce(text) {
  const region = $("announce");
  if (!region) return;
  announcer.waiting = text;
  if (announcer.timer) return;
  const say = () => {
    announcer.timer = null;
    announcer.last = Date.now();
    region.textContent = announcer.waiting;
    announcer.waiting = null;
  };
  const wait = announcer.last + ANNOUNCE_GAP_MS - Date.now();
  if (wait <= 0) say();
  else announcer.timer = setTimeout(say, wait);
}

function button(label, onClick, className = "small secondary") {
  const element = document.createElement("button");
  element.type = "button";
  element.className = className;
  element.textContent = label;
  element.addEventListener("click", onClick);
  return element;
}

// -- What the listener page and the embedded player share ------------------------------------

// This tab's random listener id, kept in `store`: the client id of its join, which its pass (and
// so its heartbeats) are bound to. Its place in the heartbeat sample is the server's (the join says).
function listenerIdIn(store, key = "podium.listener") {
  let id = store.getItem(key);
  if (!id) {
    id = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");
    store.setItem(key, id);
  }
  return id;
}

// hls.js, fetched only when someone is about to play (a pointer over the play button, focus on
// it, or the press itself): it is most of a page's weight, and many visitors never press play.
// Browsers without Media Source Extensions (iPhone Safari) play HLS natively and never fetch it.
let hlsLoading = null;
function loadHls() {
  if (window.Hls) return Promise.resolve(window.Hls);
  hlsLoading = hlsLoading || new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/static/vendor/hls.js";
    script.addEventListener("load", () => resolve(window.Hls));
    script.addEventListener("error", () => { hlsLoading = null; script.remove(); reject(new Error("hls.js")); });
    document.head.append(script);
  });
  return hlsLoading;
}
const mediaSourceHere = () => Boolean(window.MediaSource || window.ManagedMediaSource);
function loadHlsOnIntent(button) {
  const early = () => { if (mediaSourceHere()) loadHls().catch(() => { /* tried again on the press */ }); };
  for (const event of ["pointerenter", "focus", "touchstart"]) button.addEventListener(event, early, { once: true, passive: true });
}

// hls.js for live listening: low latency, and a player that fell behind (a stall, a slow start)
// catches up by playing slightly faster instead of staying seconds behind the room.
const LIVE_HLS_OPTIONS = { lowLatencyMode: true, backBufferLength: 30, maxLiveSyncPlaybackRate: 1.5 };

// Routes the audio element through an analyser (once), so that `meter` shows its level and the
// tests can read what is heard (player.analyser).
function attachLevelMeter(audio, player, meter) {
  if (player.analyser) return;
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 4096;
  context.createMediaElementSource(audio).connect(analyser);
  analyser.connect(context.destination);
  player.analyser = analyser;
  player.audioContext = context;
  watchLevel(analyser, (percent) => { meter.style.width = `${percent}%`; });
}

// Reads the space's timeline (one immutable object per interval, and a short-lived index; a cache
// tier serves both to any crowd): from the last keyframe (which carries the whole picture) on,
// each next object asked for directly (the server answers it the moment it exists). Calls
// onItem(item, fresh) in order, `fresh` for news rather than the catching up; ends when the space
// ended and all is read, or when stop() says so.
async function followTimeline(onItem, stop = () => false) {
  const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const readIndex = async () => {
    const response = await fetch(`/timeline/${spaceId}/index.json`);
    if (!response.ok) throw new Error(`index: ${response.status}`);
    return response.json();
  };
  let index = null;
  let next = null;
  while (!stop()) {
    try {
      if (index === null) {
        index = await readIndex();
        if (next === null) next = index.keyframe;
      }
      if (index.state === "ended" && next > index.latest) return;  // the whole timeline is read
      const response = await fetch(index.item_url.replace("{seq}", String(next)));
      if (response.ok) {
        const item = await response.json();
        if (stop()) return;
        onItem(item, next >= index.latest);
        next += 1;
        continue;
      }
      index = await readIndex();
      if (index.state === "ended" && next > index.latest) return;
      if (next > index.latest + 1) next = index.keyframe;  // the server restarted its numbering
      await pause((index.interval_s || 1) * 1000);
    } catch (_) {
      index = null;  // read it again before going on
      await pause(2000);
    }
  }
}

// A colour per speaker for captions and transcripts (four, then round again), in the order they
// first speak on this page: who said what shows at a glance, and the name says it anyway.
const voices = new Map();
function voiceClass(speakerId) {
  if (!voices.has(speakerId)) voices.set(speakerId, voices.size % 4);
  return `voice-${voices.get(speakerId)}`;
}
