"use strict";
// The embeddable player (/embed/{id}), framed by other sites: one row (play, title, live badge and
// listener count, or the replay's position) and, in the full layout, the top questions and the
// latest comments. It reads only what the listener page reads (cacheable objects), joins only when
// the reader presses play, and beats only while it plays: an article's readers are not listeners.
(function () {
  const params = new URLSearchParams(location.search);
  const full = params.get("layout") === "full";
  const showQuestions = full || params.get("questions") === "1";
  const showComments = full || params.get("comments") === "1";
  document.body.dataset.layout = full || showQuestions || showComments ? "full" : "compact";
  $("details").hidden = !(full || showQuestions || showComments);
  $("questions-box").hidden = !showQuestions;
  $("comments-box").hidden = !showComments;
  $("open").href = `/s/${encodeURIComponent(spaceId)}`;

  const audio = $("audio");
  // sessionStore (admission.js): session storage, or memory in a frame that is refused it.
  const listenerId = listenerIdIn(sessionStore);
  // What the player knows; the browser tests (and anyone debugging) read it.
  const player = (window.podium = { space: null, hls: null, analyser: null, playing: false, admitted: null, duration: null });
  let status = "";
  let startAt = null;  // a replay position chosen before the stream was loaded
  let started = false;  // the stream is loading (or loaded) into the player
  let admitting = false;  // the join is under way (the waiting room may hold us a while)
  // Live captions while a live space plays (one line in the compact layout, three in the full):
  // the timeline is read only then, so an article's readers who never press play cost nothing.
  const captions = makeCaptions({ region: $("captions"), box: $("caption-lines"), toggle: $("cc"), lines: full || showQuestions || showComments ? 3 : 1 });
  let following = false;
  const captioning = () => Boolean(player.playing && player.space && player.space.state === "live" && player.space.captions && player.space.captions.enabled);
  function followCaptions() {
    captions.show(captioning());
    if (following || !captioning()) return;
    following = true;
    followTimeline((item) => captions.apply(item), () => !captioning()).finally(() => { following = false; });
  }

  function say(text) {
    status = text;
    $("status").textContent = text;
  }

  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds || 0));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), rest = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
  }

  function isOpen(space) {
    return space.state === "live" || (space.state === "scheduled" && space.preshow);
  }

  function isReplay(space) {
    return space.state === "ended" && Boolean(space.urls.replay);
  }

  function showPosition() {
    const space = player.space;
    if (!space || !isReplay(space)) return;
    const length = Number.isFinite(audio.duration) && audio.duration > 0 ? audio.duration : player.duration;
    const at = startAt !== null && !player.playing ? startAt : audio.currentTime;
    $("position").hidden = !length;
    if (!length) return;
    $("position").textContent = t("embed.position", { at: clock(at), length: clock(length) });
    const seek = $("seek");
    seek.hidden = false;
    seek.max = String(Math.floor(length));
    if (document.activeElement !== seek) seek.value = String(Math.floor(at));
    seek.setAttribute("aria-valuetext", $("position").textContent);
  }

  function render() {
    const space = player.space;
    if (!space) return;
    $("title").textContent = space.title;
    document.title = `${space.title} — ${t("embed.page_title")}`;
    const badge = $("state");
    badge.hidden = false;
    badge.dataset.state = space.state;
    if (space.state === "live") badge.textContent = t("embed.badge_live");
    else if (space.state === "scheduled") badge.textContent = t(space.preshow ? "embed.badge_preshow" : "embed.badge_soon");
    else badge.textContent = t(isReplay(space) ? "embed.badge_replay" : "embed.badge_ended");
    $("listeners").hidden = !isOpen(space);
    $("listeners").textContent = tn("embed.listeners", space.listeners.now);
    const when = space.started_at || space.starts_at;
    const instance = t("embed.on_instance", { instance: location.host });
    const moment = when ? new Date(when).toLocaleString(podiumI18n.lang, { dateStyle: "medium", timeStyle: "short" }) : "";
    const begun = space.started_at || (space.starts_at && new Date(space.starts_at) <= Date.now());
    $("when").textContent = moment ? `${instance} · ${t(begun ? "embed.started" : "embed.starts", { time: moment })}` : instance;
    if (space.private) {
      $("play").disabled = true;
      say(t("embed.private"));
      return;
    }
    $("play").disabled = !(isOpen(space) || isReplay(space) || player.playing);
    followCaptions();
    showPosition();
    if (player.playing) return;
    if (isOpen(space)) say(t(space.state === "live" ? "embed.ready_live" : "embed.ready_preshow"));
    else if (space.state === "scheduled") say(t("embed.waiting"));
    else if (isReplay(space)) { if (!status || status === t("embed.loading")) say(t("embed.ready_replay")); }
    else say(t("embed.not_recorded"));
  }

  let loadFailed = false;
  async function refresh() {
    try {
      const response = await fetch(`/api/spaces/${spaceId}`);
      const data = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(data.error || `error ${response.status}`);
      const before = player.space && player.space.state;
      player.space = data;
      if (loadFailed) { $("error").textContent = ""; loadFailed = false; }
      render();
      if (isReplay(data) && !lengthAsked && !started) { lengthAsked = true; prepareReplay(); }
      if (before !== data.state) readPosts();
    } catch (e) {
      if (!player.space) $("title").textContent = t("embed.page_title");
      $("error").textContent = t("embed.not_found", { message: e.message });
      loadFailed = true;
    }
  }

  // -- Playing ---------------------------------------------------------------------------------

  function makeHls(url, autoStartLoad) {
    // As on the listener page: low-latency mode, and a player that fell behind catches up.
    const hls = new window.Hls({ ...LIVE_HLS_OPTIONS, autoStartLoad });
    player.hls = hls;
    hls.on(window.Hls.Events.LEVEL_LOADED, (_event, data) => {
      if (data.details && !data.details.live) { player.duration = data.details.totalduration; showPosition(); }
    });
    hls.on(window.Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      say(t("embed.stalled"));
      if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      else setTimeout(() => hls.startLoad(), 1000);
    });
    hls.loadSource(url);
    hls.attachMedia(audio);
    return hls;
  }

  // A replay's playlists (not its audio) are read at once, without hls.js (fetched only to play):
  // the length shows before playing, summed from the media playlist.
  let lengthAsked = false;
  async function prepareReplay() {
    try {
      const entry = new URL(player.space.urls.replay, location.href);
      const media = (await (await fetch(entry)).text()).split("\n").find((line) => line && !line.startsWith("#"));
      const text = await (await fetch(new URL(media, entry))).text();
      const seconds = [...text.matchAll(/^#EXTINF:([0-9.]+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
      if (player.duration === null && seconds > 0) { player.duration = seconds; showPosition(); }
    } catch (_) { /* the length shows once the audio loads */ }
  }

  async function startStream() {
    const space = player.space;
    const url = isReplay(space) ? space.urls.replay : (player.admitted && player.admitted.urls && player.admitted.urls.hls) || space.urls.hls;
    if (mediaSourceHere()) await loadHls().catch(() => null);
    if (window.Hls && window.Hls.isSupported()) { makeHls(url, true); return true; }
    if (audio.canPlayType("application/vnd.apple.mpegurl")) { audio.src = url; return true; }  // Safari
    $("error").textContent = t("embed.cannot_play");
    return false;
  }

  function showPlaying(playing) {
    player.playing = playing;
    followCaptions();
    $("play-icon").textContent = playing ? "❚❚" : "▶";
    $("play").setAttribute("aria-label", t(playing ? "embed.pause" : "embed.play"));
  }

  function playingText() {
    const space = player.space;
    if (space.state === "scheduled") return t("embed.playing_preshow");
    return t(space.state === "live" ? "embed.playing_live" : "embed.playing_replay");
  }

  $("play").addEventListener("click", async () => {
    const space = player.space;
    if (!space || admitting) return;
    if (player.playing) {
      audio.pause();
      showPlaying(false);
      say(t("embed.paused"));
      return;
    }
    $("error").textContent = "";
    attachLevelMeter(audio, player, $("level"));  // within the click: browsers let audio start only from a gesture
    if (player.audioContext.state === "suspended") player.audioContext.resume();
    if (isOpen(space) && !player.admitted) {
      // The button stays enabled (a disabled one would drop the keyboard's focus); presses wait.
      admitting = true;
      $("play").setAttribute("aria-busy", "true");
      try {
        player.admitted = await window.podiumAdmit(spaceId, listenerId, say, null);
      } catch (e) {
        $("error").textContent = t("embed.join_failed", { message: e.message });
        return;
      } finally {
        admitting = false;
        $("play").removeAttribute("aria-busy");
        render();
      }
    }
    if (!started) {
      if (!(await startStream())) return;
      started = true;
    }
    if (startAt !== null) { audio.currentTime = startAt; startAt = null; }
    else if (player.hls && player.hls.liveSyncPosition && space.state === "live") audio.currentTime = player.hls.liveSyncPosition;
    try {
      await audio.play();
      showPlaying(true);
      say(playingText());
      if (isOpen(space)) beat();
    } catch (e) {
      $("error").textContent = t("embed.play_failed", { message: e.message });
    }
  });

  $("seek").addEventListener("input", () => {
    const to = Number($("seek").value);
    if (started) audio.currentTime = to;
    else startAt = to;
    showPosition();
  });
  audio.addEventListener("timeupdate", showPosition);
  audio.addEventListener("durationchange", showPosition);
  audio.addEventListener("waiting", () => { if (player.playing) say(t("embed.buffering")); });
  audio.addEventListener("playing", () => { if (player.playing) say(playingText()); });
  audio.addEventListener("ended", () => { showPlaying(false); say(t("embed.the_end")); });

  // -- Counting (only while playing and let in; sampled as the server asks) -------------------
  // Each beat carries the join's pass; the join told us our place in the sample (the server's).

  let beatTimer = null;
  async function beat(leaving = false) {
    if (!player.space || !player.admitted) return;
    const url = `/api/spaces/${spaceId}/heartbeat`;
    const body = JSON.stringify({ listener_id: listenerId, pass: player.admitted.pass, leaving });
    const inSample = player.admitted.sample_point < player.space.listeners.sample_rate;
    if (leaving) { if (inSample) navigator.sendBeacon(url, new Blob([body], { type: "application/json" })); return; }
    clearTimeout(beatTimer);
    let interval = player.space.heartbeat_interval_s || 5;
    if (inSample && player.playing) {
      try {
        // The pass as a bearer token too: the door serves an admitted listener's beat as listening.
        const headers = { "Content-Type": "application/json", Authorization: `Bearer ${player.admitted.pass}` };
        const response = await fetch(url, { method: "POST", headers, body });
        if (response.ok) {
          const data = await response.json();
          player.space.listeners = data.listeners;
          interval = data.interval_s;
          if (data.state !== player.space.state) refresh();
          render();
          if (data.state === "ended") return;
        } else if (response.status === 401 || response.status === 403) {
          // The pass expired (after hours): join again, quietly, and go on counting.
          player.admitted = await window.podiumAdmit(spaceId, listenerId, () => {}, null).catch(() => null);
        }
      } catch (_) { /* the next beat tries again */ }
    }
    if (player.playing) beatTimer = setTimeout(beat, interval * 1000);
  }
  window.addEventListener("pagehide", () => { if (player.playing) beat(true); });

  // -- Questions and comments (full layout) ---------------------------------------------------

  function textNode(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    element.textContent = text;  // always text, never HTML
    return element;
  }

  function postItem(post, votes) {
    const item = document.createElement("li");
    if (post.state === "answered") item.classList.add("answered");
    if (votes) {
      const count = textNode("span", "votes", `▲ ${post.votes}`);
      count.setAttribute("aria-label", tn("embed.votes", post.votes));
      item.append(count);
    }
    const body = document.createElement("div");
    body.className = "text";
    body.append(textNode("span", "author", post.author), textNode("span", "", post.text));
    item.append(body);
    return item;
  }

  // Plain GETs the browser and the edge may cache (the API answers them public, for a second).
  async function read(path) {
    const response = await fetch(path);
    if (!response.ok) throw new Error(`error ${response.status}`);
    return response.json();
  }

  async function readPosts() {
    try {
      if (showQuestions) {
        const { questions } = await read(`/api/spaces/${spaceId}/questions`);
        $("questions").replaceChildren(...questions.slice(0, 3).map((q) => postItem(q, true)));
        $("no-questions").hidden = questions.length > 0;
      }
      if (showComments) {
        const { comments } = await read(`/api/spaces/${spaceId}/comments`);
        $("comments").replaceChildren(...comments.slice(0, 5).map((c) => postItem(c, false)));
        $("no-comments").hidden = comments.length > 0;
      }
    } catch (_) { /* the next round tries again */ }
  }

  say(t("embed.loading"));
  loadHlsOnIntent($("play"));
  refresh();
  setInterval(refresh, 10000);
  // Posts change while a space is on; an ended one's are read once (on the first refresh).
  setInterval(() => { if (player.space && player.space.state !== "ended" && (showQuestions || showComments)) readPosts(); }, 5000);
})();
