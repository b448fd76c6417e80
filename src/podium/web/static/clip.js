"use strict";
// A clip's page: play it, go to the same moment in the full replay, and show what was signed.
(async function () {
  const [, , space, clip] = location.pathname.split("/");
  function fact(label, value, mono = false) {
    const term = document.createElement("dt");
    term.textContent = label;
    const detail = document.createElement("dd");
    detail.textContent = value;
    if (mono) detail.className = "mono";
    $("facts").append(term, detail);
  }
  try {
    const view = await api(`/api/spaces/${space}/clips/${clip}`);
    const f = view.facts;
    $("title").textContent = f.title;
    document.title = `${f.title} — Podium`;
    $("where").textContent = `${f.duration_s.toFixed(1)} s from ${f.offset_s.toFixed(1)} s into the recording`;
    $("audio").src = view.urls.file;
    $("file").href = view.urls.file;
    $("context").href = view.urls.context;
    fact("Clip SHA-256", f.clip_sha256, true);
    fact("Recording SHA-256", `${f.recording_sha256} (first ${f.recording_segments} segments)`, true);
    fact("Offset", `${f.offset_s} s (AAC frame ${f.first_frame}), ${f.frames} frames`);
    fact("Instance", f.instance);
    fact("Signing key", f.key_id, true);
    fact("Cut at", new Date(f.created_at).toLocaleString());
    if (view.signature) fact("Signature", view.signature, true);
  } catch (e) {
    $("error").textContent = `Could not load the clip: ${e.message}`;
  }
})();
