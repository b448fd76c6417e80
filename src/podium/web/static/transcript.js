"use strict";
// The transcript beside a recording: every line with its speaker and time, the line being heard
// marked (aria-current) in step with the audio, a press on a line plays from there, and a search
// that finds words and goes from match to match ("2 of 5"), focus staying in the search box.
//
// The list is one stop for the Tab key (a roving tabindex: the line being heard, or the match
// found); the arrow keys, Home and End move within it. It scrolls itself to follow the audio,
// but never under someone reading it: a wheel, a touch, a key or a search holds it a while.
//
// makeTranscript({ list, audio, offset_s, seek, search }) -> { show(segments), current() }
//   offset_s  where the audio element's 0 is on the recording's axis (a clip starts later)
//   seek(s)   plays from s on the audio's own axis (the page knows how to start its player)
//   search    { input, next, found } or null
const HOLD_MS = 8000;

function transcriptClock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), x = s % 60;
  return (h ? `${h}:${String(m).padStart(2, "0")}` : `${m}`) + `:${String(x).padStart(2, "0")}`;
}

function makeTranscript({ list, audio, offset_s = 0, seek, search = null }) {
  let lines = [];  // { segment, item, button, words }
  let now = -1;  // the line being heard
  let heldUntil = 0;
  let matches = [];  // indexes of the lines that match the search
  let hit = -1;  // which of the matches was jumped to
  const reduced = () => matchMedia("(prefers-reduced-motion: reduce)").matches;
  const hold = () => { heldUntil = Date.now() + HOLD_MS; };

  function lineItem(segment, index) {
    const item = document.createElement("li");
    const press = document.createElement("button");
    press.type = "button";
    press.className = "line";
    press.tabIndex = -1;
    press.dataset.index = String(index);
    const at = document.createElement("span");
    at.className = "at";
    at.textContent = transcriptClock(segment.start_s - offset_s);
    const who = document.createElement("span");
    who.className = `who ${voiceClass(segment.speaker_id)}`;
    who.textContent = personName({ id: segment.speaker_id, name: segment.speaker });
    const words = document.createElement("span");
    words.className = "words";
    words.textContent = segment.text;
    const said = document.createElement("span");
    said.className = "said";
    said.append(who, " ", words);
    press.append(at, " ", said);
    item.append(press);
    return { segment, item, button: press, words };
  }

  // The one line Tab reaches.
  function rove(index) {
    lines.forEach((line, i) => { line.button.tabIndex = i === index ? 0 : -1; });
  }
  const roving = () => lines.findIndex((line) => line.button.tabIndex === 0);

  // Scrolls the list (not the page) so that the line sits in its upper third.
  function reveal(index, force = false) {
    const line = lines[index];
    if (!line || (!force && Date.now() < heldUntil)) return;
    const top = line.item.offsetTop - list.clientHeight / 3;
    list.scrollTo({ top: Math.max(0, top), behavior: reduced() ? "auto" : "smooth" });
  }

  function follow() {
    const at = audio.currentTime + offset_s;
    // The last line begun by now (they are ordered by start): a binary search, the list may be long.
    let low = 0, high = lines.length - 1, found = -1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      if (lines[mid].segment.start_s <= at + 0.05) { found = mid; low = mid + 1; } else high = mid - 1;
    }
    if (found === now) return;
    if (now >= 0 && lines[now]) lines[now].button.removeAttribute("aria-current");
    now = found;
    if (now < 0) return;
    lines[now].button.setAttribute("aria-current", "true");
    if (!list.contains(document.activeElement) && hit < 0) rove(now);
    reveal(now);
  }

  list.addEventListener("click", (event) => {
    const press = event.target.closest("button.line");
    if (!press) return;
    const index = Number(press.dataset.index);
    rove(index);
    seek(Math.max(0, lines[index].segment.start_s - offset_s));
  });
  list.addEventListener("keydown", (event) => {
    const moves = { ArrowDown: 1, ArrowUp: -1, Home: -Infinity, End: Infinity };
    if (!(event.key in moves)) return;
    event.preventDefault();
    hold();
    const from = Math.max(0, roving());
    const to = Math.min(lines.length - 1, Math.max(0, from + moves[event.key]));
    rove(to);
    lines[to].button.focus({ preventScroll: true });
    reveal(to, true);
  });
  for (const event of ["wheel", "touchmove", "pointerdown"]) list.addEventListener(event, hold, { passive: true });
  audio.addEventListener("timeupdate", follow);
  audio.addEventListener("seeked", () => { heldUntil = 0; follow(); });

  // -- Search --------------------------------------------------------------------------------

  function mark(line, query) {
    const text = line.segment.text;
    if (!query) { setText(line.words, text); return; }
    const lower = text.toLocaleLowerCase(podiumI18n.lang);
    const parts = [];
    let from = 0;
    for (let at = lower.indexOf(query); at >= 0; at = lower.indexOf(query, at + query.length)) {
      parts.push(document.createTextNode(text.slice(from, at)));
      const found = document.createElement("mark");
      found.textContent = text.slice(at, at + query.length);
      parts.push(found);
      from = at + query.length;
    }
    parts.push(document.createTextNode(text.slice(from)));
    line.words.replaceChildren(...parts);
  }

  function jump(step) {
    if (!search) return;
    if (hit >= 0 && lines[matches[hit]]) lines[matches[hit]].button.classList.remove("found");
    if (!matches.length) {
      hit = -1;
      search.found.textContent = search.input.value.trim() ? t("transcript.no_match") : "";
      return;
    }
    if (hit < 0) {
      // The first match from the line being heard on, so the search starts where the listener is.
      hit = matches.findIndex((index) => index >= Math.max(0, now));
      if (hit < 0) hit = 0;
    } else hit = (hit + step + matches.length) % matches.length;
    const line = lines[matches[hit]];
    line.button.classList.add("found");
    rove(matches[hit]);
    hold();
    reveal(matches[hit], true);
    search.found.textContent = t("transcript.match_of", { n: (hit + 1).toLocaleString(podiumI18n.lang), m: matches.length.toLocaleString(podiumI18n.lang) });
  }

  function find() {
    const query = search.input.value.trim().toLocaleLowerCase(podiumI18n.lang);
    matches = [];
    lines.forEach((line, index) => {
      mark(line, query);
      if (query && line.segment.text.toLocaleLowerCase(podiumI18n.lang).includes(query)) matches.push(index);
    });
    lines.forEach((line) => line.button.classList.remove("found"));
    hit = -1;
    jump(0);
  }

  if (search) {
    search.input.addEventListener("input", find);
    search.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); jump(event.shiftKey ? -1 : 1); }
      if (event.key === "Escape" && search.input.value) { event.preventDefault(); search.input.value = ""; find(); }
    });
    search.next.addEventListener("click", () => jump(1));
  }

  return {
    show(segments) {
      lines = segments.map(lineItem);
      now = -1;
      list.replaceChildren(...lines.map((line) => line.item));
      rove(0);
      if (search && search.input.value) find();
      follow();
    },
    current: () => now,
  };
}

// The listener page of a space that ended: the transcript beside the player (below it on a phone),
// with its WebVTT and SRT files. Read once the replay is there; a transcript still being finished
// is read again a few times.
(function () {
  if (!$("transcript-card") || !$("play")) return;
  const audio = $("audio");
  const card = $("transcript-card");
  let asked = false;
  let tries = 0;
  const transcript = makeTranscript({
    list: $("transcript-lines"),
    audio,
    seek: (to) => {
      const player = window.podium;
      const started = Boolean(player.hls || audio.src);
      if (started) window.podiumReplay.seek(to);
      else window.podiumReplay.want(to);
      if (!player.playing) $("play").click();
    },
    search: { input: $("transcript-search"), next: $("transcript-next"), found: $("transcript-found") },
  });

  function withKey(url) {
    const key = sessionStorage.getItem(`podium.key.${spaceId}`);
    return key ? `${url}?key=${encodeURIComponent(key)}` : url;
  }

  async function load() {
    tries += 1;
    try {
      const response = await fetch(withKey(`/api/spaces/${spaceId}/transcript`), { cache: tries > 1 ? "no-cache" : "default" });
      if (!response.ok) return;  // no transcript (captions were off, or none here): the page stays as it was
      const data = await response.json();
      if (!data.segments || !data.segments.length) {
        if (!data.complete && tries < 6) setTimeout(load, 5000);
        return;
      }
      $("transcript-note").textContent = data.complete
        ? t("transcript.made_by", { engine: data.engine })
        : t("transcript.finishing", { engine: data.engine });
      $("transcript-vtt").href = withKey(`/api/spaces/${spaceId}/transcript.vtt`);
      $("transcript-srt").href = withKey(`/api/spaces/${spaceId}/transcript.srt`);
      card.hidden = false;
      document.querySelector("main").classList.add("with-transcript");
      transcript.show(data.segments);
      if (!data.complete && tries < 6) setTimeout(load, 5000);
    } catch (_) {
      if (tries < 6) setTimeout(load, 5000);
    }
  }

  setInterval(() => {
    const space = window.podium && window.podium.space;
    if (!asked && space && space.state === "ended" && space.urls.replay) { asked = true; load(); }
  }, 500);
})();
