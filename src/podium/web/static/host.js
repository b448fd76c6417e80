"use strict";
// The host console: publish the microphone to the stage over WHIP, watch the level, end the space.
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("token")) {
  localStorage.setItem(`podium.host.${spaceId}`, fragment.get("token"));
  history.replaceState(null, "", location.pathname);  // keep the token out of the address bar
}
const token = localStorage.getItem(`podium.host.${spaceId}`);
let space = null;
let pc = null;
let whipResource = null;
let session = null;
let me = null;  // the host as the stage sees them (their id, muted or not)
let onStage = [];  // the last stage read: who "mute everyone else" mutes
const seenHands = new Set();
let handsCount = 0;

function showError(message) { $("error").textContent = message; }
function setStatus(message) { $("status").textContent = message; }

function render() {
  if (!space) return;
  $("title").textContent = space.title;
  document.title = (handsCount ? `(${handsCount}) ` : "") + t("host.title", { title: space.title });
  $("state").textContent = stateName(space);
  $("state").dataset.state = space.state;
  $("now").textContent = space.listeners.now.toLocaleString(podiumI18n.lang);
  $("peak").textContent = space.listeners.peak.toLocaleString(podiumI18n.lang);
  const page = new URL(space.urls.page, location.href).href;
  if ($("listen-link").href !== page) { $("listen-link").textContent = page; $("listen-link").href = page; }
  $("hls-url").textContent = new URL(space.urls.hls, location.href).href;
  $("when").textContent = space.starts_at ? t("host.scheduled_for", { time: when(space.starts_at) }) : "";
  const ended = space.state === "ended";
  $("golive").disabled = ended || pc !== null;
  $("golive").hidden = pc !== null && !ended;  // on the air: the stage's own controls take its place
  // In the pre-show the microphone connects backstage; the switch puts the stage on the air.
  $("golive").textContent = t(space.preshow ? "host.connect_backstage" : "common.go_live");
  $("switch").hidden = !(space.preshow && pc !== null && space.state === "scheduled");
  if (space.preshow && pc !== null) setStatus(t(space.starts_at ? "host.backstage_timed" : "host.backstage"));
  $("end").disabled = ended;
  $("self-mute").hidden = $("mute-all").hidden = pc === null || ended;
  $("name-form").hidden = ended;
  const muted = Boolean(me && me.muted);
  $("self-mute").textContent = t(muted ? "host.unmute_me" : "host.mute_me");
  $("self-mute").setAttribute("aria-pressed", String(muted));
  if (ended) {
    // The end closes the connection and lets go of the microphone (the browser's indicator goes out).
    if (pc) pc.close();
    if (session) session.stream.getTracks().forEach((track) => track.stop());
    pc = null;
    session = null;
    setStatus(t("host.ended"));
  }
}

async function refresh() {
  try {
    const response = await fetch(`/api/spaces/${spaceId}`, { cache: "no-store" });
    if (!response.ok) throw new Error((await response.json()).error);
    space = await response.json();
    render();
  } catch (e) {
    showError(t("common.load_space_failed", { message: e.message }));
  }
}

async function goLive() {
  showError("");
  if (!token) { showError(t("host.no_token")); return; }
  $("golive").disabled = true;
  try {
    await saveName();
    setStatus(t("common.asking_microphone"));
    session = await publishMicrophone(space.urls.whip, token, (state) => {
      setStatus({ connected: t("common.stage_connected"), connecting: t("common.stage_connecting"), failed: t("common.stage_failed"), disconnected: t("common.stage_reconnecting") }[state] || state);
    });
    pc = session.pc;
    micMeter(session.stream, "meter", "meter-bar");
    whipResource = session.resource;
    await refresh();
    refreshMe();
  } catch (e) {
    showError(t("common.go_live_failed", { message: e.message }));
    pc = null;
    render();
  }
}

function moderate(person, action, label) {
  return button(label, async () => {
    try {
      await api(`/api/spaces/${spaceId}/members/${person.id}/${action}`, { method: "POST", token });
      refreshStage();
    } catch (e) { showError(t("host.action_failed", { action: label, message: e.message })); }
  });
}

async function refreshStage() {
  try {
    const stage = await api(`/api/spaces/${spaceId}/stage`, { token });
    onStage = stage.speakers;
    renderStage($("stage"), stage, (person) => person.role === "host" ? [] : [
      person.muted ? null : moderate(person, "mute", t("common.mute")),
      moderate(person, "audience", t("host.to_audience")),
      moderate(person, "remove", t("host.remove")),
      moderate(person, "block", t("host.block")),
    ].filter(Boolean));
    showHands((await api(`/api/spaces/${spaceId}/hands`, { token })).hands);
  } catch (e) { /* shown on the next successful refresh */ }
}

// Raised hands: a count badge (in the tab's title too), and for each new hand a chime and a toast
// wherever the host is on the page. Items are kept in place so focus on a button survives.
function showHands(hands) {
  const count = hands.length;
  $("hands-count").hidden = count === 0;
  setText($("hands-count"), count.toLocaleString(podiumI18n.lang));
  $("no-hands").hidden = count > 0;
  handsCount = count;
  if (space) document.title = (count ? `(${count}) ` : "") + t("host.title", { title: space.title });
  const fresh = hands.filter((hand) => !seenHands.has(hand.id));
  fresh.forEach((hand) => seenHands.add(hand.id));
  if (fresh.length) {
    $("toast-text").textContent = fresh.length === 1 ? t("host.hand_raised", { name: fresh[0].name }) : tn("host.hands_raised", fresh.length);
    $("toast").hidden = false;
    chime();
  }
  if (!count) $("toast").hidden = true;
  const list = $("hands");
  const kept = new Map([...list.children].map((item) => [item.dataset.member, item]));
  const items = hands.map((hand) => {
    let item = kept.get(hand.id);
    kept.delete(hand.id);
    if (!item) {
      item = document.createElement("li");
      item.dataset.member = hand.id;
      const name = document.createElement("span");
      name.textContent = hand.name;
      item.append(name, moderate(hand, "accept", t("host.bring_up")), moderate(hand, "decline", t("host.decline")));
    }
    return item;
  });
  for (const gone of kept.values()) gone.remove();
  arrange(list, items);
}

async function refreshMe() {
  try {
    me = await api(`/api/spaces/${spaceId}/me`, { token });
    if (!$("host-name").value && document.activeElement !== $("host-name")) $("host-name").value = me.name;
    render();
  } catch (_) { /* next time */ }
}

// The host's name, as listeners, the replay and the transcript will show it: set before going
// live (and changeable later).
async function saveName() {
  const name = $("host-name").value.trim();
  if (!name || (me && me.name === name)) return;
  me = await api(`/api/spaces/${spaceId}/me/name`, { method: "PUT", token, body: { name } });
  $("host-name").value = me.name;
  setStatus(t("host.name_saved", { name: me.name }));
  refreshStage();
}
$("name-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try { await saveName(); } catch (e) { showError(e.message); }
});

// A post's kind and state, as the moderation list names them.
function kindName(kind) {
  return { question: t("host.kind_question"), comment: t("host.kind_comment") }[kind] || kind;
}
function postStateName(state) {
  const names = { open: t("host.post_open"), answered: t("host.post_answered"), hidden: t("host.post_hidden"), deleted: t("host.post_deleted") };
  return names[state] || state;
}

// Every post, hidden ones included, with what a moderator can do to it. A post's item is made
// again only when the post changed, so a button that has focus keeps it across refreshes.
async function refreshPosts() {
  try {
    const { posts } = await api(`/api/spaces/${spaceId}/posts`, { token });
    $("no-posts").hidden = posts.length > 0;
    const list = $("posts");
    const kept = new Map([...list.children].map((item) => [item.dataset.post, item]));
    const items = posts.slice(0, 100).map((post) => {
      const version = `${post.state}|${post.votes}`;
      const old = kept.get(post.id);
      kept.delete(post.id);
      if (old && old.dataset.version === version) return old;
      const item = postItem(post);
      item.dataset.version = version;
      if (old) {
        // Focus goes to the same action on the new item where it still applies, else its first.
        const focused = old.contains(document.activeElement) ? document.activeElement.textContent : null;
        old.replaceWith(item);
        const buttons = [...item.querySelectorAll("button")];
        if (focused !== null) (buttons.find((b) => b.textContent === focused) || buttons[0] || list).focus();
      }
      return item;
    });
    for (const gone of kept.values()) gone.remove();
    arrange(list, items);
  } catch (_) { /* next time */ }
}

function postItem(post) {
  const item = document.createElement("li");
  item.className = `post ${post.state}`;
  item.dataset.post = post.id;
  const body = document.createElement("div");
  body.className = "text";
  const meta = document.createElement("span");
  meta.className = "author";
  meta.textContent = `${post.author} · ${kindName(post.kind)} · ${postStateName(post.state)}${post.kind === "question" ? ` · ${tn("host.votes", post.votes)}` : ""}`;
  const text = document.createElement("span");
  text.textContent = post.text;
  body.append(meta, text);
  const act = (action, label) => button(label, async () => {
    try { await api(`/api/spaces/${spaceId}/posts/${post.id}/${action}`, { method: "POST", token }); refreshPosts(); }
    catch (e) { showError(t("host.action_failed", { action: label, message: e.message })); }
  });
  const actions = document.createElement("div");
  actions.className = "actions";
  if (post.kind === "question" && post.state === "open") actions.append(act("answer", t("host.answered")));
  actions.append(post.state === "hidden" ? act("show", t("host.show")) : act("hide", t("host.hide")), act("delete", t("host.delete")));
  actions.append(button(t("host.block_author"), async () => {
    try { await api(`/api/spaces/${spaceId}/blocked/${post.user_id}`, { method: "POST", token }); showError(""); }
    catch (e) { showError(t("host.action_failed", { action: t("host.block"), message: e.message })); }
  }));
  item.append(body, actions);
  return item;
}

async function configure(settings) {
  try { await api(`/api/spaces/${spaceId}/moderation`, { method: "POST", token, body: settings }); showError(""); }
  catch (e) { showError(e.message); }
}

async function invite(role) {
  try {
    const data = await api(`/api/spaces/${spaceId}/invites`, { method: "POST", token, body: { role } });
    const link = new URL(data.invite_url, location.href).href;
    $("invite-link").textContent = link;
    $("invite-link").hidden = false;
    try {
      await navigator.clipboard.writeText(link);
      $("invite-status").textContent = t("host.invite_copied");
    } catch (_) {
      getSelection().selectAllChildren($("invite-link"));
      $("invite-status").textContent = t("host.link_select");
    }
  } catch (e) { showError(t("host.invite_failed", { message: e.message })); }
}

async function endSpace() {
  if (!confirm(t("host.confirm_end"))) return;
  try {
    const response = await fetch(`/api/spaces/${spaceId}/end`, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
    if (!response.ok) throw new Error((await response.json()).error);
    space = await response.json();
    render();
  } catch (e) {
    showError(t("host.end_failed", { message: e.message }));
  }
}

$("golive").addEventListener("click", goLive);
$("self-mute").addEventListener("click", async () => {
  if (!me) await refreshMe();
  const action = me.muted ? "unmute" : "mute";
  try {
    me = await api(`/api/spaces/${spaceId}/members/${me.id}/${action}`, { method: "POST", token });
    // The stage drops a muted member's audio; the track is silenced here too, so not a sample leaves.
    if (session) for (const track of session.stream.getAudioTracks()) track.enabled = !me.muted;
    render();
    refreshStage();
  } catch (e) { showError(t("host.action_failed", { action: $("self-mute").textContent, message: e.message })); }
});
$("mute-all").addEventListener("click", async () => {
  const others = onStage.filter((person) => person.role !== "host" && !person.muted);
  const results = await Promise.allSettled(others.map((person) => api(`/api/spaces/${spaceId}/members/${person.id}/mute`, { method: "POST", token })));
  const failed = results.filter((r) => r.status === "rejected");
  showError(failed.length ? t("host.action_failed", { action: t("host.mute_all"), message: failed[0].reason.message }) : "");
  refreshStage();
});

// The share sheet: the listener link (copied with a word of confirmation, or handed to the
// system's share sheet where the browser has one), a QR code for phones, the embed snippet.
$("share-open").addEventListener("click", () => {
  $("native-share").hidden = typeof navigator.share !== "function";
  $("share-qr").src = `/api/spaces/${spaceId}/qr.svg`;
  $("share-qr").hidden = false;
  $("share-sheet").showModal();
});
$("share-close").addEventListener("click", () => $("share-sheet").close());
$("share-sheet").addEventListener("close", () => $("share-open").focus());
$("copy-link").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText($("listen-link").href);
    $("share-status").textContent = t("host.link_copied");
  } catch (_) {
    getSelection().selectAllChildren($("listen-link"));
    $("share-status").textContent = t("host.link_select");  // no clipboard access: the link stays selected
  }
});
$("native-share").addEventListener("click", () => {
  navigator.share({ title: space.title, url: $("listen-link").href }).catch(() => { /* the person closed it */ });
});
$("toast-action").addEventListener("click", () => {
  $("toast").hidden = true;
  const first = $("hands").querySelector("button");
  $("hands-heading").scrollIntoView({ block: "center" });
  if (first) first.focus();
});
$("switch").addEventListener("click", async () => {
  try { space = await api(`/api/spaces/${spaceId}/go-live`, { method: "POST", token }); setStatus(t("common.stage_connected")); render(); }
  catch (e) { showError(t("host.switch_failed", { message: e.message })); }
});
$("end").addEventListener("click", endSpace);
$("invite-speaker").addEventListener("click", () => invite("speaker"));
$("moderation-form").addEventListener("submit", (event) => {
  event.preventDefault();
  configure({ slow_mode_s: Number($("slow-mode").value) || 0, posting_open: $("posting-open").checked });
});
$("pin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const pinned = { text: $("pin-text").value };
  if ($("pin-url").value.trim()) pinned.url = $("pin-url").value.trim();
  configure({ pinned });
});
$("unpin").addEventListener("click", () => configure({ pinned: null }));
$("invite-cohost").addEventListener("click", () => invite("cohost"));
// The consent-first snippet for articles, in the layout and language the host picks.
async function refreshEmbed() {
  const query = new URLSearchParams({ layout: $("embed-layout").value, lang: $("embed-lang").value });
  try {
    const { html } = await api(`/api/spaces/${spaceId}/embed-code?${query}`);
    $("embed-code").value = html;
    $("embed-code").hidden = false;
    $("embed-copy").disabled = false;
    $("embed-status").textContent = "";
  } catch (e) {
    $("embed-code").hidden = true;
    $("embed-copy").disabled = true;
    $("embed-status").textContent = t("host.embed_unavailable", { message: e.message });
  }
}
$("embed-layout").addEventListener("change", refreshEmbed);
$("embed-lang").addEventListener("change", refreshEmbed);
$("embed-copy").addEventListener("click", async () => {
  $("embed-code").select();
  try {
    await navigator.clipboard.writeText($("embed-code").value);
    $("embed-status").textContent = t("host.embed_copied");
  } catch (_) {
    $("embed-status").textContent = t("host.embed_select");  // no clipboard access: the code stays selected
  }
});
refreshEmbed();
window.addEventListener("pagehide", () => {
  if (whipResource && token) fetch(whipResource, { method: "DELETE", headers: { Authorization: `Bearer ${token}` }, keepalive: true });
});
refresh();
refreshStage();
refreshMe();
setInterval(refresh, 3000);
setInterval(refreshStage, 700);
refreshPosts();
setInterval(refreshPosts, 2000);

// Captions: the host switches them on or off for this space and picks the language; the console
// says which engine recognises the words and, when the node cannot keep up or has no engine, why
// captions lag, pause or are missing. The console shows the live captions too (small).
const consoleCaptions = makeCaptions({ region: $("console-captions"), box: $("console-caption-lines") });
let captions = null;  // the last GET/PUT /captions answer
let captionsFollowed = false;
let captionsSaves = 0;  // a read begun before a change was saved says what was, not what is

function languageName(code) {
  try { return new Intl.DisplayNames([podiumI18n.lang], { type: "language" }).of(code) || code; } catch (_) { return code; }
}

function showCaptions(data) {
  captions = data;
  const available = data.available !== false && data.state !== "unavailable";
  const select = $("captions-language");
  const codes = data.languages && data.languages.length ? data.languages : [data.language];
  if (select.dataset.codes !== codes.join(",")) {
    select.dataset.codes = codes.join(",");
    select.replaceChildren(...codes.map((code) => Object.assign(document.createElement("option"), { value: code, textContent: languageName(code) })));
  }
  if (document.activeElement !== select) select.value = data.language;
  $("captions-on").checked = Boolean(data.enabled) && available;
  const ended = space && space.state === "ended";
  $("captions-on").disabled = !available || ended;
  select.disabled = !available || ended || codes.length < 2;
  setText($("captions-engine"), available && data.engine ? t("captions.engine", { engine: data.engine }) : "");
  const notice = $("captions-notice");
  let text = "";
  if (!available) text = t("captions.unavailable", { reason: data.reason || data.detail || "" });
  else if (!data.enabled || data.state === "off") text = t("captions.off");
  // The workers' detail (who waits, and why) is the node's own sentence, after the state in words.
  else if (data.state === "behind" || data.state === "paused") text = [t(`captions.${data.state}`), data.detail].filter(Boolean).join(" ");
  else if (data.state === "live" && space && space.state === "live") text = t("captions.live");
  setText(notice, text);
  // What needs the host's eye (behind, paused, missing) stands out; the rest is quiet.
  notice.classList.toggle("warning", !available || data.state === "behind" || data.state === "paused");
  consoleCaptions.show(available && data.enabled && space && space.state !== "ended");
  if (available && !captionsFollowed) {
    captionsFollowed = true;
    followTimeline((item) => consoleCaptions.apply(item), () => Boolean(space && space.state === "ended"));
  }
}

async function refreshCaptions() {
  if (!token) return;
  const saves = captionsSaves;
  try {
    const data = await api(`/api/spaces/${spaceId}/captions`, { token });
    if (saves === captionsSaves) showCaptions(data);
  } catch (_) { /* next time */ }
}

async function saveCaptions() {
  const body = { enabled: $("captions-on").checked, language: $("captions-language").value || (captions && captions.language) };
  captionsSaves += 1;
  try {
    const data = await api(`/api/spaces/${spaceId}/captions`, { method: "PUT", token, body });
    showCaptions(data);
  } catch (e) {
    showError(t("captions.save_failed", { message: e.message }));
    refreshCaptions();
  }
}
$("captions-on").addEventListener("change", saveCaptions);
$("captions-language").addEventListener("change", saveCaptions);
$("captions-form").addEventListener("submit", (event) => event.preventDefault());
refreshCaptions();
setInterval(refreshCaptions, 3000);
