"use strict";
// Moving in time on the listener page: the seek bar with who-spoke-when markers, −30 s and back
// to live while live, the replay's questions and comments in step with the audio, and clips.
(function () {
  const audio = $("audio");
  const player = window.podium;
  const params = new URLSearchParams(location.search);
  let wanted = params.has("t") ? Math.max(0, parseFloat(params.get("t")) || 0) : null;
  let replay = { speakers: [], posts: [], duration_s: 0 };
  let dragging = false;
  let drawnFor = "";

  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), x = s % 60;
    return (h ? `${h}:${String(m).padStart(2, "0")}` : `${m}`) + `:${String(x).padStart(2, "0")}`;
  }
  function seekable() {
    const r = audio.seekable;
    if (!r || !r.length) return [0, replay.duration_s || 0];
    return [r.start(0), r.end(r.length - 1)];
  }
  function live() { return player.space && player.space.state === "live"; }
  function liveEdge() { return player.hls && player.hls.liveSyncPosition ? player.hls.liveSyncPosition : seekable()[1]; }
  function behind() { return live() ? Math.max(0, liveEdge() - audio.currentTime) : 0; }
  function seek(to) {
    const [start, end] = seekable();
    audio.currentTime = Math.min(Math.max(to, start), live() ? liveEdge() : end);
  }
  // listen.js asks where to start (a shared link's ?t=) and how far behind live we are.
  // The transcript asks to start from a line before anything was loaded (`want`, then play).
  window.podiumReplay = { startAt: () => { const t = wanted; wanted = null; return t; }, behind, seek, want: (to) => { wanted = Math.max(0, to); } };

  // Loaded as soon as listen.js knows the space, again every 10 s while it is live, and once
  // more when its state changes (the end makes the final duration and posts).
  let loading = false;
  let loadedAt = 0;
  let loadedState = null;
  async function load() {
    if (loading || !player.space || player.space.state === "scheduled") return;
    const state = player.space.state;
    const changed = loadedState !== null && loadedState !== state;
    if (!changed && loadedAt && (Date.now() - loadedAt < 10000 || (state !== "live" && replay.duration_s))) return;
    loading = true;
    try {
      const response = await fetch(`/api/spaces/${spaceId}/replay`, changed ? { cache: "no-cache" } : {});
      if (response.ok) { replay = await response.json(); loadedState = state; }
    } catch (_) { /* the next round tries again */ }
    loadedAt = Date.now();
    loading = false;
  }

  function drawMarkers(total) {
    const key = `${replay.speakers.length}:${Math.round(total)}`;
    if (key === drawnFor || total <= 0) return;
    drawnFor = key;
    const box = $("markers");
    box.replaceChildren();
    for (const change of replay.speakers) {
      const mark = document.createElement("span");
      mark.className = "marker";
      mark.style.left = `${Math.min(100, (100 * change.at_s) / total)}%`;
      mark.title = `${clock(change.at_s)} ${change.name}`;
      box.append(mark);
    }
  }

  function showPosts(at) {
    if (live()) return;
    const said = replay.posts.filter((p) => p.at_s <= at).slice(-20).reverse();
    $("replay-posts-card").hidden = replay.posts.length === 0;
    $("no-replay-posts").hidden = said.length > 0;
    const list = $("replay-posts");
    const ids = said.map((p) => p.id).join(",");
    if (list.dataset.ids === ids) return;
    list.dataset.ids = ids;
    list.replaceChildren(...said.map((p) => {
      // The same shape as the live comments (audience.js): who, when, then the text, as text.
      const item = document.createElement("li");
      item.dataset.post = p.id;
      const body = document.createElement("div");
      body.className = "text";
      const who = document.createElement("span");
      who.className = "author";
      who.textContent = `${p.author} · ${clock(p.at_s)}${p.kind === "question" ? ` · ${t("listen.question_tag")}` : ""}`;
      const text = document.createElement("span");
      text.textContent = p.text;
      body.append(who, text);
      item.append(body);
      return item;
    }));
  }

  // The transcript (transcript.js) is fetched only for a space that ended: live listeners never need it.
  let transcriptAsked = false;
  function loadTranscript() {
    if (transcriptAsked || !player.space || player.space.state !== "ended" || !player.space.urls.replay) return;
    transcriptAsked = true;
    document.head.append(Object.assign(document.createElement("script"), { src: "/static/transcript.js" }));
  }

  function tick() {
    load();
    loadTranscript();
    // In the pre-show there is nothing to move in yet: hold audio is not the show.
    const started = Boolean(player.hls || audio.src) && !(player.space && player.space.state === "scheduled");
    $("seek").hidden = !started;
    if (!started) {
      if (player.space && player.space.state === "ended") showPosts(Infinity);  // the whole record, until play
      return;
    }
    const [start, end] = seekable();
    const total = Math.max(end, replay.duration_s || 0);
    const position = $("position");
    position.min = String(start);
    position.max = String(total);
    if (!dragging) position.value = String(audio.currentTime);
    $("at").textContent = clock(audio.currentTime);
    $("length").textContent = live() ? (behind() > 5 ? t("listen.behind_live", { time: clock(behind()) }) : t("common.state_live")) : clock(total);
    $("golive").hidden = !(live() && behind() > 5);
    $("fwd30").hidden = live() && behind() <= 5;
    drawMarkers(total);
    const current = replay.speakers.filter((c) => c.at_s <= audio.currentTime).pop();
    $("speaker-now").textContent = current ? t("listen.speaking_now", { name: current.name === "Host" ? t("common.default_host_name") : current.name }) : "";
    // The audience's reactions of the last few seconds of the recording, as they came live.
    const recent = {};
    for (const r of live() ? [] : replay.reactions || []) {
      if (r.at_s > audio.currentTime - 3 && r.at_s <= audio.currentTime) {
        for (const [emoji, n] of Object.entries(r.counts)) recent[emoji] = (recent[emoji] || 0) + n;
      }
    }
    const shown = Object.entries(recent).map(([emoji, n]) => `${emoji} ${n.toLocaleString(podiumI18n.lang)}`).join("  ");
    $("replay-reactions").textContent = shown ? t("listen.reactions", { list: shown }) : "";
    showPosts(audio.currentTime);
  }

  $("position").addEventListener("input", () => { dragging = true; $("at").textContent = clock(Number($("position").value)); });
  $("position").addEventListener("change", () => { dragging = false; seek(Number($("position").value)); });
  $("back30").addEventListener("click", () => seek(audio.currentTime - 30));
  $("fwd30").addEventListener("click", () => seek(audio.currentTime + 30));
  $("golive").addEventListener("click", () => seek(liveEdge()));
  $("clip").addEventListener("click", async () => {
    // The 30 s that were just heard; while live, only what is already recorded (a few seconds back).
    const recorded = live() ? Math.max(0, liveEdge() - 4) : seekable()[1];
    const end = Math.min(audio.currentTime, recorded);
    const start = Math.max(0, end - 30);
    $("clip-status").textContent = t("listen.cutting_clip");
    try {
      const clip = await api(`/api/spaces/${spaceId}/clips`, { method: "POST", body: { start_s: start, duration_s: Math.max(10, end - start) } });
      $("clip-status").replaceChildren(document.createTextNode(t("listen.clip_ready")), Object.assign(document.createElement("a"), { href: clip.urls.page, textContent: t("listen.open_clip") }));
    } catch (e) { $("clip-status").textContent = t("listen.clip_failed", { message: e.message }); }
  });

  setInterval(tick, 250);
})();
