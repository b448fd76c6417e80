"use strict";
// The speaker view: redeem an invite (once), go live, mute yourself, leave; hear everyone else.
const memberKey = `podium.member.${spaceId}`;
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("invite")) {
  sessionStorage.setItem(`podium.invite.${spaceId}`, fragment.get("invite"));
  history.replaceState(null, "", location.pathname);  // keep the invite out of the address bar
}
let token = localStorage.getItem(memberKey);
let me = null;
let space = null;
let session = null;

function showError(message) { $("error").textContent = message; }
function setStatus(message) { $("status").textContent = message; }

function render() {
  if (space) {
    $("title").textContent = space.title;
    document.title = t("join.title", { title: space.title });
    $("state").textContent = stateName(space);
    $("state").dataset.state = space.state;
  }
  const onStage = me && ["host", "cohost", "speaker"].includes(me.role);
  $("name-form").hidden = Boolean(token);
  $("controls").hidden = !onStage;
  if (me) $("who").textContent = onStage ? t("join.on_stage_as", { name: me.name, role: roleName(me.role) }) : t("join.in_audience_as", { name: me.name });
  $("golive").disabled = !onStage || session !== null || (space && space.state === "ended");
  $("mute").disabled = session === null;
  $("mute").textContent = t(me && me.muted ? "common.unmute" : "common.mute");
  $("mute").setAttribute("aria-pressed", String(Boolean(me && me.muted)));
}

async function refresh() {
  try {
    space = await api(`/api/spaces/${spaceId}`);
    if (token) {
      me = await api(`/api/spaces/${spaceId}/me`, { token });
      if (session && !["host", "cohost", "speaker"].includes(me.role)) stopPublishing(t("join.moved_to_audience"));
    }
    if (session && space.state === "ended") stopPublishing(t("join.space_ended"));
    render();
  } catch (e) {
    if (token && /revoked|blocked/.test(e.message)) {
      stopPublishing(t("join.no_longer_on_stage", { message: e.message }));
      localStorage.removeItem(memberKey);
      token = null;
      me = null;
      render();
      $("name-form").hidden = true;
    }
    showError(e.message);
  }
}

async function refreshStage() {
  try { renderStage($("stage"), await api(`/api/spaces/${spaceId}/stage`, { token })); } catch (_) { /* next time */ }
}

function stopPublishing(message) {
  if (session) {
    session.pc.close();
    session.stream.getTracks().forEach((t) => t.stop());
    session = null;
  }
  setStatus(message);
}

$("name-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const invite = sessionStorage.getItem(`podium.invite.${spaceId}`);
  if (!invite) { showError(t("join.needs_invite")); return; }
  try {
    const data = await api(`/api/spaces/${spaceId}/invites/redeem`, { method: "POST", token: invite, body: { name: $("name").value } });
    token = data.token;
    localStorage.setItem(memberKey, token);
    sessionStorage.removeItem(`podium.invite.${spaceId}`);
    me = data.member;
    render();
  } catch (e) { showError(t("join.join_failed", { message: e.message })); }
});

$("golive").addEventListener("click", async () => {
  showError("");
  $("golive").disabled = true;
  try {
    setStatus(t("common.asking_microphone"));
    session = await publishMicrophone(space.urls.whip, token, async (state) => {
      if (state === "failed" || state === "closed") {
        // The host ending the space closes every connection: that is the end, not a failure.
        try { space = await api(`/api/spaces/${spaceId}`); } catch (_) { /* judged below as it was */ }
        if (space.state === "ended") { stopPublishing(t("join.space_ended")); render(); return; }
      }
      setStatus({ connected: t("common.stage_connected"), connecting: t("common.stage_connecting"), failed: t("common.stage_failed") }[state] || state);
    });
    micMeter(session.stream, "meter", "meter-bar");
    render();
  } catch (e) {
    showError(t("common.go_live_failed", { message: e.message }));
    session = null;
    render();
  }
});

$("mute").addEventListener("click", async () => {
  const action = me.muted ? "unmute" : "mute";
  try {
    me = await api(`/api/spaces/${spaceId}/members/${me.id}/${action}`, { method: "POST", token });
    for (const track of session.stream.getAudioTracks()) track.enabled = !me.muted;
    render();
  } catch (e) { showError(e.message); }
});

$("leave").addEventListener("click", async () => {
  try {
    me = await api(`/api/spaces/${spaceId}/leave`, { method: "POST", token });
    stopPublishing(t("join.left"));
    render();
  } catch (e) { showError(e.message); }
});

refresh();
refreshStage();
setInterval(refresh, 2000);
setInterval(refreshStage, 700);
