"use strict";
// Live captions: the last few lines said on stage, each with its speaker's name, from the
// timeline's objects ("captions", and a keyframe's "recent_captions"). A partial line is shown
// lighter and replaced in place by its final; lines are ordered by when they began.
//
// A visible region, not an announcer: role="log" with aria-live="off". Screen-reader users hear
// the speakers themselves, and a reader speaking every line (partials changing many times a
// second) over the audio would drown it; the log stays one landmark away for a braille display
// or a reader who wants to look back. News that matters (a question) still goes through announce().
//
// makeCaptions({ region, box, toggle, lines }) -> { apply(item), show(enabled), clear() }:
//   region  the whole thing (hidden when the space has captions off, so nothing promises them)
//   box     where the lines go (hidden while the listener switched CC off)
//   toggle  the CC button (aria-pressed), or null where captions are always shown (the console)
// The listener's CC choice is kept in localStorage (on by default), shared by page and embed.
const CAPTIONS_CHOICE = "podium.captions";
const MAX_CAPTIONS_KEPT = 40;  // lines remembered to order what comes late; a long space costs nothing more

function makeCaptions({ region, box, toggle = null, lines = 3 }) {
  const said = new Map();  // utterance -> { caption, element }
  let enabled = false;
  let wanted = readChoice();

  function readChoice() {
    try { return localStorage.getItem(CAPTIONS_CHOICE) !== "off"; } catch (_) { return true; }  // a frame refused storage
  }
  function keepChoice() {
    try { localStorage.setItem(CAPTIONS_CHOICE, wanted ? "on" : "off"); } catch (_) { /* this page only */ }
  }

  function render() {
    region.hidden = !enabled;
    box.hidden = !enabled || !wanted;
    if (toggle) {
      toggle.hidden = !enabled;  // where it sits outside the region (the embed's row)
      toggle.setAttribute("aria-pressed", String(wanted));
    }
  }

  function lineOf(caption) {
    const element = document.createElement("p");
    element.className = "caption";
    const who = document.createElement("span");
    who.className = "who";
    const words = document.createElement("span");
    words.className = "words";
    element.append(who, words);
    // A line that arrives slides in (not for those who asked for less motion: see the CSS).
    element.classList.add("arriving");
    element.addEventListener("animationend", () => element.classList.remove("arriving"), { once: true });
    return element;
  }

  function take(caption) {
    const known = said.get(caption.id);
    if (known && known.caption.final && !caption.final) return;  // a late partial never undoes its final
    const entry = known || { caption, element: lineOf(caption) };
    entry.caption = caption;
    said.set(caption.id, entry);
    const name = personName({ id: caption.speaker, name: caption.name });
    const who = entry.element.querySelector(".who");
    setText(who, `${name}: `);
    who.className = `who ${voiceClass(caption.speaker)}`;
    setText(entry.element.querySelector(".words"), caption.text);
    entry.element.classList.toggle("partial", !caption.final);
    entry.element.dataset.utterance = caption.id;
  }

  function draw() {
    const ordered = [...said.values()].sort((a, b) => a.caption.start_s - b.caption.start_s);
    for (const old of ordered.slice(0, Math.max(0, ordered.length - MAX_CAPTIONS_KEPT))) said.delete(old.caption.id);
    const shown = ordered.slice(-lines).filter((entry) => entry.caption.text.trim());
    for (const element of [...box.children]) if (!shown.some((entry) => entry.element === element)) element.remove();
    arrange(box, shown.map((entry) => entry.element));
    box.classList.toggle("empty", shown.length === 0);
  }

  if (toggle) {
    toggle.addEventListener("click", () => {
      wanted = !wanted;
      keepChoice();
      render();
    });
  }
  render();
  draw();

  return {
    // One timeline object: a keyframe's recent finals first (a reader arriving mid-space), then
    // the interval's own captions (the latest state of each utterance in it).
    apply(item) {
      const fresh = [...(item.recent_captions || []).map((c) => ({ ...c, final: true })), ...(item.captions || [])];
      if (!fresh.length) return;
      for (const caption of fresh) if (caption && caption.id) take(caption);
      draw();
    },
    show(on) {
      enabled = Boolean(on);
      render();
    },
    clear() {
      said.clear();
      draw();
    },
    get shown() { return enabled && wanted; },
  };
}
