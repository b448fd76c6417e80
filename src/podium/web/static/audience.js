"use strict";
// The audience side of the listener page. It reads only the timeline (one immutable object per
// second and a short-lived index), which a cache tier serves to any number of readers; its only
// writes are posts, votes and reactions.
(function () {
  // On the speaker's page the audience is shown, not joined: no votes, no reaction buttons, no
  // posting; the stage there is drawn from the stage itself (with roles), not from the timeline.
  const readOnly = document.body.dataset.audience === "read-only";
  const REACTIONS = ["👏", "❤️", "😂", "😮", "🔥", "👍"];
  const reactionCounts = Object.fromEntries(REACTIONS.map((e) => [e, 0]));
  const shownComments = new Set();
  const shownQuestions = new Set();
  const voted = new Set(JSON.parse(sessionStorage.getItem(`podium.voted.${spaceId}`) || "[]"));
  const MAX_FLOATING = 24;  // emoji in flight at once: a flood of reactions costs the page nothing more
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  let session = null;  // { token, user }

  function textNode(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    element.textContent = text;  // always text, never HTML
    return element;
  }

  // Questions are kept and updated in place (keyed by post), so a vote button that has keyboard
  // focus keeps it while the ranking changes; a vote of this browser shows as pressed.
  function showQuestions(questions) {
    $("no-questions").hidden = questions.length > 0;
    const list = $("questions");
    const kept = new Map([...list.children].map((item) => [item.dataset.post, item]));
    const items = questions.map((q) => {
      let item = kept.get(q.id);
      if (!item) {
        item = document.createElement("li");
        item.dataset.post = q.id;
        // Named by what it shows (the count), then what it does: "3 votes, vote for this question".
        const votes = readOnly ? document.createElement("span") : button("", () => vote(q.id, votes), "small secondary votes");
        votes.classList.add("votes");
        const arrow = textNode("span", "", "▲ ");
        arrow.setAttribute("aria-hidden", "true");
        votes.append(arrow, textNode("span", "n", ""), textNode("span", "visually-hidden", ""));
        const body = document.createElement("div");
        body.className = "text";
        body.append(textNode("span", "author", q.author), textNode("span", "", q.text));
        item.append(votes, body);
        if (shownQuestions.size && !shownQuestions.has(q.id)) announce(t("listen.new_question", { name: q.author, text: q.text }));
      }
      shownQuestions.add(q.id);
      kept.delete(q.id);
      item.classList.toggle("answered", q.state === "answered");
      const votes = item.querySelector(".votes");
      const mine = voted.has(q.id);
      votes.classList.toggle("voted", mine);
      if (!readOnly) votes.setAttribute("aria-pressed", String(mine));
      setText(votes.querySelector(".n"), q.votes.toLocaleString(podiumI18n.lang));
      setText(votes.querySelector(".visually-hidden"), tn(readOnly ? "listen.votes" : "listen.vote", q.votes));
      return item;
    });
    for (const gone of kept.values()) gone.remove();
    arrange(list, items);
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

  function applyItem(item, fresh) {
    for (const c of item.recent_comments || []) addComment(c);
    for (const c of item.comments) addComment(c);
    for (const id of item.removed || []) document.querySelectorAll(`[data-post="${CSS.escape(id)}"]`).forEach((e) => e.remove());
    if (item.questions) showQuestions(item.questions);
    if ("pinned" in item) showPinned(item.pinned);
    for (const [emoji, count] of Object.entries(item.reactions)) {
      reactionCounts[emoji] = (reactionCounts[emoji] || 0) + count;
      // Only news floats: a reader catching up on the seconds before it came just adds them up.
      if (fresh) for (let i = 0; i < Math.min(count, 3); i++) floatReaction(emoji, i * 180);
    }
    showReactionCounts();
    if (item.listeners && $("now")) { setText($("now"), item.listeners.now.toLocaleString(podiumI18n.lang)); setText($("peak"), item.listeners.peak.toLocaleString(podiumI18n.lang)); }
    if (item.speakers && !readOnly) renderStage($("stage"), { speakers: item.speakers.map((s) => ({ ...s, role: "", connected: true })) });
    if (window.podiumCaptions) window.podiumCaptions.apply(item);
  }

  // The reaction buttons are made once; only their counts change (focus stays where it is).
  function makeReactions() {
    $("reactions").replaceChildren(...REACTIONS.map((emoji) => {
      const holder = document.createElement("span");
      holder.className = "reaction";
      holder.dataset.emoji = emoji;
      if (readOnly) holder.append(textNode("span", "emoji", emoji), textNode("span", "count", "0"));
      else {
        const b = button(emoji, () => react(emoji), "react");
        b.setAttribute("aria-label", t("listen.react", { emoji }));
        holder.append(b, textNode("span", "count", "0"));
      }
      return holder;
    }));
  }

  function showReactionCounts() {
    for (const holder of $("reactions").children) {
      setText(holder.querySelector(".count"), (reactionCounts[holder.dataset.emoji] || 0).toLocaleString(podiumI18n.lang));
    }
  }

  // An emoji that rises across the page and fades, like the reactions of the apps people know.
  // Decoration only: hidden from screen readers, and still for those who ask for less motion.
  function floatReaction(emoji, delayMs = 0) {
    if (matchMedia("(prefers-reduced-motion: reduce)").matches) return;
    const layer = $("floats");
    if (!layer || layer.childElementCount >= MAX_FLOATING) return;
    const element = textNode("span", "float", emoji);
    element.style.left = `${8 + Math.random() * 84}%`;
    element.style.animationDelay = `${delayMs}ms`;
    element.addEventListener("animationend", () => element.remove());
    layer.append(element);
  }

  async function react(emoji) {
    floatReaction(emoji);
    try { await api(`/api/spaces/${spaceId}/reactions`, { method: "POST", body: { emoji } }); } catch (e) { $("post-status").textContent = e.message; }
  }

  async function vote(postId, votes) {
    if (!session) { $("post-status").textContent = t("listen.sign_in_to_vote"); return; }
    try {
      await api(`/api/spaces/${spaceId}/questions/${postId}/vote`, { method: "POST", token: session.token });
      voted.add(postId);
      sessionStorage.setItem(`podium.voted.${spaceId}`, JSON.stringify([...voted]));
      votes.classList.add("voted");
      votes.setAttribute("aria-pressed", "true");
    } catch (e) { $("post-status").textContent = e.message; }
  }

  function signedIn(data) {
    session = data;
    sessionStorage.setItem("podium.session", JSON.stringify(data));
    $("signin-form").hidden = true;
    $("post-form").hidden = false;
    $("signed-in-as").textContent = t("listen.signed_in_as", { name: data.user.username });
    // The name people know them by here: a raised hand uses it rather than asking again.
    $("guest-name").value = data.user.username;
    $("guest-name").hidden = document.querySelector('label[for="guest-name"]').hidden = true;
  }

  async function signIn(create) {
    const credentials = { username: $("username").value, password: $("password").value };
    try {
      if (create) await api("/api/accounts", { method: "POST", body: credentials });
      signedIn(await api("/api/sessions", { method: "POST", body: credentials }));
      $("post-status").textContent = "";
    } catch (e) { $("post-status").textContent = e.message; }
  }

  if (!readOnly) {
    $("signin-form").addEventListener("submit", (event) => { event.preventDefault(); signIn(false); });
    $("signup").addEventListener("click", () => signIn(true));
    // One box, two ways to send it: "Ask" (a question, ranked by votes) or "Comment".
    $("post-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const kind = event.submitter && event.submitter.value === "comment" ? "comment" : "question";
      const body = { kind, text: $("post-text").value, client_id: crypto.randomUUID().replace(/-/g, "") };
      $("ask").disabled = $("comment").disabled = true;
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
      $("ask").disabled = $("comment").disabled = false;
    });

  }

  const saved = sessionStorage.getItem("podium.session");
  if (saved && !readOnly) signedIn(JSON.parse(saved));
  makeReactions();
  followTimeline(applyItem);
})();
