"use strict";
// The listener page: play the space's LL-HLS stream (native on Safari, hls.js elsewhere),
// beat so the host knows we are here, and show the live listener count.
const audio = $("audio");
const listenerId = listenerIdIn(sessionStorage);
// A private space's listener link carries its key in the fragment (never sent to a server log).
const linkKeyName = `podium.key.${location.pathname.split("/").pop()}`;
const linkKey = new URLSearchParams(location.hash.slice(1)).get("key") || sessionStorage.getItem(linkKeyName);
if (linkKey) {
  sessionStorage.setItem(linkKeyName, linkKey);
  history.replaceState(null, "", location.pathname + location.search);
}
// What the page knows about its player; the level meter and anyone debugging read it.
const player = (window.podium = { space: null, hls: null, analyser: null, playing: false, admitted: null });
let beatTimer = null;
// Live captions under the player (captions.js); audience.js feeds them the timeline's objects.
window.podiumCaptions = makeCaptions({ region: $("captions"), box: $("caption-lines"), toggle: $("cc") });

function render() {
  const space = player.space;
  if (!space) return;
  $("title").textContent = space.title;
  document.title = t("listen.page_title", { title: space.title });
  $("state").textContent = stateName(space);
  $("state").dataset.state = space.state;
  const open = space.state === "live" || (space.state === "scheduled" && space.preshow);
  // Shown while the space is on and its host has captions on; the replay has the transcript instead.
  window.podiumCaptions.show(open && Boolean(space.captions && space.captions.enabled));
  if (player.playing && space.state === "live" && $("status").textContent === t("listen.playing_preshow")) $("status").textContent = t("listen.playing_live");
  // Live (or in its pre-show), the stream is for those let in: the button waits for the join.
  $("play").disabled = (space.state === "scheduled" && !space.preshow && !player.playing) || (open && !player.admitted);
  const waiting = space.state === "scheduled";
  $("remind-line").hidden = !(waiting && space.starts_at);
  if (!waiting) $("countdown").hidden = true;
  if (waiting) {
    $("when").textContent = space.starts_at ? t("listen.starts_at", { time: when(space.starts_at) }) : t("listen.starts_soon");
    $("remind").href = `/api/spaces/${space.id}/calendar.ics`;
    if (!player.playing && player.admitted) $("status").textContent = t(space.preshow ? "listen.preshow_on" : "listen.waiting_for_host");
    else if (!player.playing && !space.preshow) $("status").textContent = t("listen.waiting_for_host");
  } else if (space.state === "ended") {
    $("when").textContent = t(space.urls.replay ? "listen.ended_replay_below" : "listen.ended_not_recorded");
    $("play").disabled = !space.urls.replay;
    if (!player.playing) $("status").textContent = t(space.urls.replay ? "listen.press_play_replay" : "listen.stream_over");
    if (space.urls.download) { $("download").href = space.urls.download + (linkKey ? `?key=${encodeURIComponent(linkKey)}` : ""); $("download-line").hidden = false; }
    // Nobody is on stage any more, and the server refuses reactions, posts and hands: the replay
    // page keeps only what can still be used (the questions and comments stay, as a record).
    // The questions and comments are the replay's own list, in step with the audio (replay.js);
    // nobody listens "now" to a space that ended.
    for (const card of ["stage-card", "react-card", "post-card", "hand-card", "questions-card", "comments-card", "now-stat"]) $(card).hidden = true;
    // A listener who was live at the end hears its last seconds; the replay is another playlist
    // (the pre-show is not in it), loaded afresh when they play again.
    if (player.wasLive && player.playing) {
      $("status").textContent = t("listen.live_ended_playing");
      watchLiveTail();
    }
    else if (player.wasLive) dropLivePlayer();
    if (up.session) stepDown(t("listen.space_ended_on_stage"));
  } else {
    $("when").textContent = "";
    if (!player.playing && player.admitted) $("status").textContent = t("listen.live_press_play");
  }
}

function showCounts(listeners) {
  $("now").textContent = listeners.now.toLocaleString(podiumI18n.lang);
  $("peak").textContent = listeners.peak.toLocaleString(podiumI18n.lang);
}

async function refresh() {
  try {
    const response = await fetch(`/api/spaces/${spaceId}`);
    if (!response.ok) throw new Error((await response.json()).error);
    player.space = await response.json();
    showCounts(player.space.listeners);
    render();
    if (player.space.state !== "ended" && beatTimer === null) beat();
    if (admitting === null && (player.space.state === "live" || player.space.preshow)) admitting = admit();
  } catch (e) {
    $("error").textContent = t("common.load_space_failed", { message: e.message });
  }
}

// Live or in the pre-show: take our place (the waiting room may hold us a while), then play.
let admitting = null;
async function admit() {
  try {
    player.admitted = await window.podiumAdmit(spaceId, listenerId, (text) => { $("status").textContent = text; }, linkKey);
    render();
    // Counted from now on: the first beat goes at once, not an interval later.
    clearTimeout(beatTimer);
    beat();
  } catch (e) {
    admitting = null;
    $("error").textContent = t("listen.admit_failed", { message: e.message });
  }
}

// Only listeners who were let in are counted: each beat carries the join's pass. The server
// announces a sample rate and the join told us our point (the server's, not one we could pick):
// we beat while it falls below the rate, and stay silent otherwise (counted through the sample).
let sampleRate = 1;
const inSample = () => player.admitted && player.admitted.sample_point < sampleRate;
const beatBody = (leaving) => JSON.stringify({ listener_id: listenerId, pass: player.admitted.pass, leaving });

async function beat(leaving = false) {
  if (leaving) { if (inSample()) navigator.sendBeacon(`/api/spaces/${spaceId}/heartbeat`, new Blob([beatBody(true)], { type: "application/json" })); return; }
  let interval = (player.space && player.space.heartbeat_interval_s) || 5;
  if (player.space) sampleRate = player.space.listeners.sample_rate;
  if (inSample()) {
    try {
      // The pass as a bearer token too: the door serves an admitted listener's beat as listening.
      const headers = { "Content-Type": "application/json", Authorization: `Bearer ${player.admitted.pass}` };
      const response = await fetch(`/api/spaces/${spaceId}/heartbeat`, { method: "POST", headers, body: beatBody(false) });
      if (response.ok) {
        const data = await response.json();
        showCounts(data.listeners);
        interval = data.interval_s;
        sampleRate = data.listeners.sample_rate;
        if (player.space && data.state !== player.space.state) refresh();
        if (data.state === "ended") { beatTimer = null; return; }
      } else if (response.status === 401 || response.status === 403) {
        // The pass expired (after hours) or the node's secret changed: join again, quietly.
        player.admitted = null;
        admitting = admit();
      }
    } catch (_) { /* the next beat tries again */ }
  }
  beatTimer = setTimeout(beat, interval * 1000);
}

async function start() {
  // Let in: the stream the join gave us (signed for a private space); a private replay: the link's.
  const url = (player.admitted && player.admitted.urls && player.admitted.urls.hls)
    || (linkKey ? `/hls/${spaceId}/k/${linkKey}/index.m3u8` : player.space.urls.hls);
  if (mediaSourceHere()) await loadHls().catch(() => null);
  if (window.Hls && window.Hls.isSupported()) {
    const hls = new window.Hls(LIVE_HLS_OPTIONS);
    player.hls = hls;
    hls.on(window.Hls.Events.ERROR, (_event, data) => {
      if (data.fatal) {
        $("status").textContent = t("listen.stalled");
        if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
        else setTimeout(() => hls.startLoad(), 1000);
      }
    });
    hls.loadSource(url);
    hls.attachMedia(audio);
  } else if (audio.canPlayType("application/vnd.apple.mpegurl")) {
    audio.src = url;  // Safari plays LL-HLS natively
  } else {
    $("error").textContent = t("listen.cannot_play");
    return false;
  }
  return true;
}

$("play").addEventListener("click", async () => {
  if (player.playing) {
    audio.pause();
    showPaused(t("listen.paused"));
    return;
  }
  if (!player.hls && !audio.src && !(await start())) return;
  if (player.space.state !== "ended") player.wasLive = true;
  attachLevelMeter(audio, player, $("level"));
  if (player.audioContext.state === "suspended") await player.audioContext.resume();
  const startAt = window.podiumReplay && window.podiumReplay.startAt();
  if (startAt !== null && startAt !== undefined) audio.currentTime = startAt;
  else if (player.hls && player.hls.liveSyncPosition && player.space.state === "live") audio.currentTime = player.hls.liveSyncPosition;
  try {
    await audio.play();
    player.playing = true;
    showOnLockScreen();
    $("play").textContent = "❚❚";
    $("play").setAttribute("aria-label", t("listen.pause"));
    $("status").textContent = playingText();
  } catch (e) {
    $("error").textContent = t("listen.play_failed", { message: e.message });
  }
});
// The title and controls a phone shows on its lock screen and in its notification (Media Session).
function showOnLockScreen() {
  if (!("mediaSession" in navigator)) return;
  navigator.mediaSession.metadata = new MediaMetadata({
    title: player.space.title,
    artist: t("common.brand"),
    artwork: [{ src: "/static/icon.svg", sizes: "any", type: "image/svg+xml" }],
  });
  navigator.mediaSession.playbackState = "playing";
  const press = (wanted) => () => { if (player.playing !== wanted) $("play").click(); };
  navigator.mediaSession.setActionHandler("play", press(true));
  navigator.mediaSession.setActionHandler("pause", press(false));
  for (const [action, step] of [["seekbackward", -30], ["seekforward", 30]]) {
    navigator.mediaSession.setActionHandler(action, window.podiumReplay ? () => window.podiumReplay.seek(audio.currentTime + step) : null);
  }
}
function playingText() {
  const state = player.space && player.space.state;
  if (state === "scheduled") return t("listen.playing_preshow");
  return t(state === "live" ? "listen.playing_live" : "listen.playing_replay");
}
function showPaused(status) {
  player.playing = false;
  if ("mediaSession" in navigator) navigator.mediaSession.playbackState = "paused";
  $("play").textContent = "▶";
  $("play").setAttribute("aria-label", t("listen.play"));
  $("status").textContent = status;
}
audio.addEventListener("waiting", () => { if (player.playing) $("status").textContent = t("listen.buffering"); });
// The end of the recording (a replay, or a live space that ended while we listened): the button
// plays it again, from the start, as media elements do.
function atTheEnd() {
  showPaused(t(player.wasLive ? "listen.press_play_replay" : "listen.at_end"));
  if (player.wasLive && player.space.state === "ended") dropLivePlayer();
}
audio.addEventListener("ended", atTheEnd);
// A live stream that ended while we listened does not always end its media element (the player
// may wait on a playlist that no longer grows): once what is buffered has played, that is the end.
let tailWatch = null;
function watchLiveTail() {
  if (tailWatch) return;
  tailWatch = setInterval(() => {
    const buffered = audio.buffered;
    const tail = buffered.length ? buffered.end(buffered.length - 1) - audio.currentTime : 0;
    if (!player.wasLive || !player.playing) { clearInterval(tailWatch); tailWatch = null; return; }
    if (tail < 0.3) { clearInterval(tailWatch); tailWatch = null; audio.pause(); atTheEnd(); }
  }, 1000);
}
function dropLivePlayer() {
  if (player.hls) player.hls.destroy();
  else audio.removeAttribute("src");
  player.hls = null;
  player.wasLive = false;
}
audio.addEventListener("playing", () => {
  const live = player.space && player.space.state === "live";
  $("status").textContent = live && window.podiumReplay && window.podiumReplay.behind() > 8 ? t("listen.playing_behind") : playingText();
});
window.addEventListener("pagehide", () => beat(true));
loadHlsOnIntent($("play"));

// The way up: a named guest raises a hand; once the host brings them up, a toast and a chime say
// so, and they go on stage from this page. The stream never stops: while they speak it plays on,
// muted (the stage's return audio brings the others live, without the stream's delay or their own
// voice), and it is heard again the moment they leave.
const memberKey = `podium.member.${spaceId}`;
const up = { me: null, session: null, invited: false };
const ON_STAGE = ["speaker", "cohost"];

function renderUp() {
  const onStage = up.me && ON_STAGE.includes(up.me.role);
  $("up-controls").hidden = !onStage && !up.session;
  $("join-stage").hidden = up.session !== null;
  $("self-mute").hidden = $("leave-stage").hidden = up.session === null;
  const muted = Boolean(up.me && up.me.muted);
  $("self-mute").textContent = t(muted ? "common.unmute" : "common.mute");
  $("self-mute").setAttribute("aria-pressed", String(muted));
  if (onStage && !up.invited) {
    up.invited = true;
    $("toast-text").textContent = t("listen.invited_up");
    $("toast").hidden = false;
    chime();
  }
}

function stepDown(message) {
  if (up.session) {
    up.session.pc.close();
    up.session.stream.getTracks().forEach((track) => track.stop());
    up.session = null;
  }
  audio.muted = false;
  $("up-status").textContent = message;
  renderUp();
}

async function refreshStage() {
  // Who speaks comes with the timeline (audience.js); this only follows our own hand.
  const token = localStorage.getItem(memberKey);
  if (!token) return;
  try {
    up.me = await api(`/api/spaces/${spaceId}/me`, { token });
    $("hand-form").hidden = true;
    if (ON_STAGE.includes(up.me.role)) $("hand-status").textContent = t("listen.brought_up");
    else {
      up.invited = false;  // a next invitation is news again
      $("toast").hidden = true;
      if (up.session) stepDown(t("join.moved_to_audience"));
      $("hand-status").textContent = t(up.me.hand_raised ? "listen.hand_raised" : "listen.listening_as", { name: up.me.name });
    }
    renderUp();
  } catch (e) {
    if (up.session) stepDown(t("join.no_longer_on_stage", { message: e.message }));
    localStorage.removeItem(memberKey);
    up.me = null;
    $("hand-form").hidden = false;
    $("hand-status").textContent = e.message;
    renderUp();
  }
}

async function joinStage() {
  $("toast").hidden = true;
  $("join-stage").disabled = true;
  try {
    $("up-status").textContent = t("common.asking_microphone");
    up.session = await publishMicrophone(player.space.urls.whip, localStorage.getItem(memberKey), async (state) => {
      if (!up.session) return;
      if (state === "connected") {
        audio.muted = true;
        $("up-status").textContent = t("listen.on_stage_keeps_playing");
      } else if (state === "failed" || state === "closed" || state === "disconnected") {
        // The host ending the space closes every connection: that is the end, not a failure.
        await refresh();
        if (player.space.state === "ended") stepDown(t("listen.space_ended_on_stage"));
        else if (state !== "disconnected") $("up-status").textContent = t("common.stage_failed");
      } else $("up-status").textContent = t("common.stage_connecting");
    });
    micMeter(up.session.stream, "mic-meter", "mic-bar");
  } catch (e) {
    $("up-status").textContent = t("common.go_live_failed", { message: e.message });
  }
  $("join-stage").disabled = false;
  renderUp();
}
$("join-stage").addEventListener("click", joinStage);
$("toast-join").addEventListener("click", () => { joinStage(); $("join-stage").focus(); });
$("self-mute").addEventListener("click", async () => {
  const action = up.me.muted ? "unmute" : "mute";
  try {
    up.me = await api(`/api/spaces/${spaceId}/members/${up.me.id}/${action}`, { method: "POST", token: localStorage.getItem(memberKey) });
    for (const track of up.session.stream.getAudioTracks()) track.enabled = !up.me.muted;
    renderUp();
  } catch (e) { $("up-status").textContent = e.message; }
});
$("leave-stage").addEventListener("click", async () => {
  try {
    up.me = await api(`/api/spaces/${spaceId}/leave`, { method: "POST", token: localStorage.getItem(memberKey) });
    stepDown(t("join.left"));
  } catch (e) { $("up-status").textContent = e.message; }
});
$("hand-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    let token = localStorage.getItem(memberKey);
    if (!token) {
      const guest = await api(`/api/spaces/${spaceId}/guests`, { method: "POST", body: { name: $("guest-name").value } });
      token = guest.token;
      localStorage.setItem(memberKey, token);
    }
    await api(`/api/spaces/${spaceId}/hand`, { method: "POST", token });
    refreshStage();
  } catch (e) { $("hand-status").textContent = t("listen.hand_failed", { message: e.message }); }
});
refreshStage();
setInterval(refreshStage, 1500);
refresh();
setInterval(refresh, 10000);

// The countdown to a scheduled start, to the second; at zero the page looks for the stream.
function countdown() {
  const space = player.space;
  if (!space || space.state !== "scheduled" || !space.starts_at) return;
  const left = Math.round((new Date(space.starts_at) - Date.now()) / 1000);
  const box = $("countdown");
  box.hidden = false;
  if (left <= 0) { box.textContent = t("listen.starting"); return; }
  const d = Math.floor(left / 86400), h = Math.floor((left % 86400) / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
  const two = (n) => String(n).padStart(2, "0");
  const parts = [d ? t("listen.days", { n: d }) : "", h ? t("listen.hours", { n: h }) : "", t("listen.minutes_seconds", { m: two(m), s: two(s) })];
  box.textContent = t("listen.starts_in", { time: parts.filter(Boolean).join(" ") });
}
setInterval(countdown, 1000);
setInterval(() => { if (player.space && player.space.state === "scheduled" && new Date(player.space.starts_at) <= Date.now()) refresh(); }, 3000);
