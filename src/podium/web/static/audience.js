"use strict";
// The audience side of the listener page. It reads only the timeline (one immutable object per
// second and a short-lived index), which a cache tier serves to any number of readers; its only
// writes are posts, votes and reactions.
(function () {
  const REACTIONS = ["👏", "❤️", "😂", "😮", "🔥", "👍"];
  const reactionCounts = Object.fromEntries(REACTIONS.map((e) => [e, 0]));
  const shownComments = new Set();
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  let session = null;  // { token, user }

  function textNode(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    element.textContent = text;  // always text, never HTML
    return element;
  }

  function showQuestions(questions) {
    $("no-questions").hidden = questions.length > 0;
    $("questions").replaceChildren(...questions.map((q) => {
      const item = document.createElement("li");
      item.dataset.post = q.id;
      if (q.state === "answered") item.classList.add("answered");
      const votes = button(`▲ ${q.votes.toLocaleString(podiumI18n.lang)}`, () => vote(q.id), "small secondary votes");
      votes.setAttribute("aria-label", tn("listen.vote", q.votes));
      const body = document.createElement("div");
      body.className = "text";
      body.append(textNode("span", "author", q.author), textNode("span", "", q.text));
      item.append(votes, body);
      return item;
    }));
  }

  function addComment(c) {
    if (shownComments.has(c.id)) return;
    shownComments.add(c.id);
    const item = document.createElement("li");
    item.dataset.post = c.id;
    const body = document.createElement("div");
    body.className = "text";
    body.append(textNode("span", "author", c.author), textNode("span", "", c.text));
    item.append(body);
    $("comments").prepend(item);
    while ($("comments").children.length > 200) $("comments").lastElementChild.remove();
  }

  function showPinned(pinned) {
    $("pinned").hidden = !pinned;
    if (!pinned) return;
    $("pinned-text").textContent = pinned.text;
    const link = $("pinned-link");
    link.hidden = !pinned.url;
    if (pinned.url && /^https?:\/\//.test(pinned.url)) { link.href = pinned.url; link.textContent = pinned.url; }
  }

  function applyItem(item) {
    for (const c of item.recent_comments || []) addComment(c);
    for (const c of item.comments) addComment(c);
    for (const id of item.removed || []) document.querySelectorAll(`[data-post="${CSS.escape(id)}"]`).forEach((e) => e.remove());
    if (item.questions) showQuestions(item.questions);
    if ("pinned" in item) showPinned(item.pinned);
    for (const [emoji, count] of Object.entries(item.reactions)) reactionCounts[emoji] = (reactionCounts[emoji] || 0) + count;
    renderReactions();
    if (item.listeners) { $("now").textContent = item.listeners.now.toLocaleString(podiumI18n.lang); $("peak").textContent = item.listeners.peak.toLocaleString(podiumI18n.lang); }
    if (item.speakers) renderStage($("stage"), { speakers: item.speakers.map((s) => ({ ...s, role: "", connected: true })) });
  }

  async function readIndex() {
    const response = await fetch(`/timeline/${spaceId}/index.json`);
    if (!response.ok) throw new Error(`index: ${response.status}`);
    return response.json();
  }

  async function follow() {
    // Start at the last keyframe (it carries the whole picture), then ask for each next object
    // directly: the server answers it the moment it exists, so nothing waits on the index.
    let index = null;
    let next = null;
    for (;;) {
      try {
        if (index === null) {
          index = await readIndex();
          if (next === null) next = index.keyframe;
        }
        if (index.state === "ended" && next > index.latest) return;  // the whole timeline is read
        const response = await fetch(index.item_url.replace("{seq}", String(next)));
        if (response.ok) {
          applyItem(await response.json());
          next += 1;
          continue;
        }
        index = await readIndex();
        if (index.state === "ended" && next > index.latest) return;
        if (next > index.latest + 1) next = index.keyframe;  // the server restarted its numbering
        await sleep((index.interval_s || 1) * 1000);
      } catch (_) {
        index = null;  // read it again before going on
        await sleep(2000);
      }
    }
  }

  function renderReactions() {
    $("reactions").replaceChildren(...REACTIONS.map((emoji) => {
      const b = button("", () => react(emoji), "");
      b.setAttribute("aria-label", t("listen.react", { emoji }));
      b.append(textNode("span", "", emoji), textNode("span", "count", (reactionCounts[emoji] || 0).toLocaleString(podiumI18n.lang)));
      return b;
    }));
  }

  async function react(emoji) {
    try { await api(`/api/spaces/${spaceId}/reactions`, { method: "POST", body: { emoji } }); } catch (e) { $("post-status").textContent = e.message; }
  }

  async function vote(postId) {
    if (!session) { $("post-status").textContent = t("listen.sign_in_to_vote"); return; }
    try { await api(`/api/spaces/${spaceId}/questions/${postId}/vote`, { method: "POST", token: session.token }); }
    catch (e) { $("post-status").textContent = e.message; }
  }

  function signedIn(data) {
    session = data;
    sessionStorage.setItem("podium.session", JSON.stringify(data));
    $("signin-form").hidden = true;
    $("post-form").hidden = false;
    $("signed-in-as").textContent = t("listen.signed_in_as", { name: data.user.username });
  }

  async function signIn(create) {
    const credentials = { username: $("username").value, password: $("password").value };
    try {
      if (create) await api("/api/accounts", { method: "POST", body: credentials });
      signedIn(await api("/api/sessions", { method: "POST", body: credentials }));
      $("post-status").textContent = "";
    } catch (e) { $("post-status").textContent = e.message; }
  }

  $("signin-form").addEventListener("submit", (event) => { event.preventDefault(); signIn(false); });
  $("signup").addEventListener("click", () => signIn(true));
  $("post-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { kind: $("post-kind").value, text: $("post-text").value, client_id: crypto.randomUUID().replace(/-/g, "") };
    $("post").disabled = true;
    // Retried with the same client_id until acknowledged: a flaky network never posts twice.
    for (let attempt = 0; attempt < 4; attempt++) {
      try {
        await api(`/api/spaces/${spaceId}/posts`, { method: "POST", token: session.token, body });
        $("post-text").value = "";
        $("post-status").textContent = t(body.kind === "question" ? "listen.question_sent" : "listen.comment_sent");
        break;
      } catch (e) {
        $("post-status").textContent = e.message;
        if (!/network|fetch/i.test(e.message)) break;
        await sleep(1000 * (attempt + 1));
      }
    }
    $("post").disabled = false;
  });

  const saved = sessionStorage.getItem("podium.session");
  if (saved) signedIn(JSON.parse(saved));
  renderReactions();
  follow();
})();
