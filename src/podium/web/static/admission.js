"use strict";
// Getting in: the join call, the waiting room and, when the node is under attack, the puzzle.
// podiumAdmit resolves once the server lets this browser in; meanwhile onUpdate(text) says where
// we are ("number 12 in line", "solving a small puzzle"). Never an error page: the line moves.

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The tab's session storage, or memory where the browser refuses it: a player framed by another
// site with third-party storage blocked throws on the mere read. A pass then lasts this page.
const sessionStore = (() => {
  try {
    window.sessionStorage.getItem("podium.probe");
    return window.sessionStorage;
  } catch (_) {
    const kept = new Map();
    return {
      getItem: (key) => (kept.has(key) ? kept.get(key) : null),
      setItem: (key, value) => { kept.set(key, String(value)); },
      removeItem: (key) => { kept.delete(key); },
    };
  }
})();

function leadingZeroBits(bytes) {
  let bits = 0;
  for (const byte of bytes) {
    if (byte === 0) { bits += 8; continue; }
    return bits + Math.clz32(byte) - 24;
  }
  return bits;
}

// The counter n for which SHA-256("<challenge>:<n>") starts with `bits` zero bits; in batches,
// so that the browser hashes in parallel and the page stays responsive.
async function solvePuzzle(challenge, bits, onProgress) {
  const encoder = new TextEncoder();
  const batch = 512;
  for (let base = 0; base < 2 ** 30; base += batch) {
    const work = [];
    for (let n = base; n < base + batch; n++) work.push(crypto.subtle.digest("SHA-256", encoder.encode(`${challenge}:${n}`)));
    const digests = await Promise.all(work);
    for (let i = 0; i < digests.length; i++) {
      if (leadingZeroBits(new Uint8Array(digests[i])) >= bits) return base + i;
    }
    onProgress(base + batch);
  }
  throw new Error(t("listen.puzzle_failed"));
}

async function podiumAdmit(space, clientId, onUpdate, linkKey = null) {
  const passKey = `podium.pass.${space}`;
  const solvedKey = `podium.solved.${space}`;
  const fresh = () => {
    const body = { client_id: clientId };
    const solved = sessionStore.getItem(solvedKey);
    if (solved) body.solved = solved;
    return body;
  };
  let body = fresh();
  const pass = sessionStore.getItem(passKey);
  if (pass) body = { client_id: clientId, pass };
  // A private space: the signed listener link's key goes with every join call.
  const withKey = (b) => (linkKey ? { ...b, key: linkKey } : b);
  let startedOver = 0;
  for (;;) {
    let response, data;
    try {
      response = await fetch(`/api/spaces/${space}/join`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(withKey(body)), cache: "no-store" });
      data = await response.json().catch(() => ({}));
    } catch (_) {
      onUpdate(t("listen.connection_dropped"));
      await sleep(2000);
      continue;
    }
    const retry = Number(response.headers.get("Retry-After") || data.retry_after_s || 1);
    if (data.solved) sessionStore.setItem(solvedKey, data.solved);
    if (response.status === 200) {
      sessionStore.setItem(passKey, data.pass);
      return data;
    }
    if (response.status === 202 && data.challenge) {
      onUpdate(t("listen.solving_puzzle"));
      const counter = await solvePuzzle(data.challenge, data.difficulty_bits, (tries) => onUpdate(tn("listen.puzzle_tries", tries)));
      body = { client_id: clientId, challenge: data.challenge, counter };
      continue;
    }
    if (response.status === 202) {
      onUpdate(t("listen.in_line", { position: data.position.toLocaleString(podiumI18n.lang) }));
      body = { client_id: clientId, ticket: data.ticket };
      if (data.solved) body.solved = data.solved;
      // Back when the place is due (Retry-After has whole seconds only), with a little jitter so
      // that a line does not come back in one burst.
      const dueMs = Number.isInteger(data.retry_after_ms) ? data.retry_after_ms : retry * 1000;
      await sleep(dueMs + Math.random() * 300);
      continue;
    }
    if (response.status === 429 || response.status === 503) {
      onUpdate(t("listen.busy", { seconds: retry.toLocaleString(podiumI18n.lang) }));
      await sleep(retry * 1000 + Math.random() * 500);
      continue;
    }
    if (response.status >= 400 && response.status < 500 && startedOver < 3 && (body.pass || body.ticket || body.challenge || body.solved)) {
      // An expired or used ticket or pass: take a new place in line.
      startedOver += 1;
      sessionStore.removeItem(passKey);
      sessionStore.removeItem(solvedKey);
      body = { client_id: clientId };
      continue;
    }
    throw new Error(data.error || t("common.error_status", { status: response.status }));
  }
}
window.podiumAdmit = podiumAdmit;
