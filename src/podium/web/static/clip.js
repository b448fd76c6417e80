"use strict";
// A clip's page: play it, go to the same moment in the full replay, and show what was signed.
(async function () {
  const [, , space, clip] = location.pathname.split("/");
  // Seconds with the page's decimal separator, `digits` after it (as many as there are if not given).
  function seconds(value, digits) {
    const fraction = digits === undefined ? {} : { minimumFractionDigits: digits, maximumFractionDigits: digits };
    return value.toLocaleString(podiumI18n.lang, { useGrouping: false, maximumFractionDigits: 20, ...fraction });
  }
  function fact(label, value, mono = false) {
    const term = document.createElement("dt");
    term.textContent = label;
    const detail = document.createElement("dd");
    detail.textContent = value;
    if (mono) detail.className = "mono";
    $("facts").append(term, detail);
  }
  // The clip's words, timed from the clip's start: as the clip's view carries them, or else the
  // lines of the space's transcript that overlap the clip (on the recording's axis, from the
  // clip's offset). A press on a line plays the clip from there.
  function wordsList(offset) {
    const audio = $("audio");
    return makeTranscript({
      list: $("clip-words"),
      audio,
      offset_s: offset,
      seek: (to) => { audio.currentTime = to; audio.play().catch(() => { /* the controls still work */ }); },
    });
  }
  async function showWords(view) {
    const f = view.facts;
    if (Array.isArray(view.words)) {
      if (!view.words.length) return;  // nothing said, or no captions in this space
      wordsList(0).show(view.words);
      $("clip-words-card").hidden = false;
      return;
    }
    try {
      const response = await fetch(`/api/spaces/${space}/transcript`);
      if (!response.ok) return;  // no transcript for this space: the page stays as it was
      const data = await response.json();
      const within = (data.segments || []).filter((s) => s.end_s > f.offset_s && s.start_s < f.offset_s + f.duration_s);
      wordsList(f.offset_s).show(within);
      $("clip-words-note").textContent = within.length ? t("transcript.made_by", { engine: data.engine }) : t("transcript.clip_none");
      $("clip-words-card").hidden = false;
    } catch (_) { /* the clip plays without its words */ }
  }
  try {
    const view = await api(`/api/spaces/${space}/clips/${clip}`);
    const f = view.facts;
    // The file carries its title in English ("… (clip)"); the page says "clip" in its own language.
    const title = f.title.endsWith(" (clip)") ? t("clip.title", { title: f.title.slice(0, -7) }) : f.title;
    $("title").textContent = title;
    document.title = t("listen.page_title", { title });
    $("where").textContent = t("clip.where", { duration: seconds(f.duration_s, 1), offset: seconds(f.offset_s, 1) });
    $("audio").src = view.urls.file;
    $("file").href = view.urls.file;
    $("context").href = view.urls.context;
    fact(t("clip.clip_sha256"), f.clip_sha256, true);
    fact(t("clip.recording_sha256"), t("clip.recording_value", { sha256: f.recording_sha256, segments: f.recording_segments.toLocaleString(podiumI18n.lang) }), true);
    fact(t("clip.offset"), t("clip.offset_value", { offset: seconds(f.offset_s), frame: f.first_frame.toLocaleString(podiumI18n.lang), frames: f.frames.toLocaleString(podiumI18n.lang) }));
    if (f.instance) fact(t("clip.instance"), f.instance);
    fact(t("clip.signing_key"), f.key_id, true);
    fact(t("clip.cut_at"), when(f.created_at));
    if (view.signature) fact(t("clip.signature"), view.signature, true);
    showWords(view);
  } catch (e) {
    $("error").textContent = t("clip.load_failed", { message: e.message });
  }
})();
