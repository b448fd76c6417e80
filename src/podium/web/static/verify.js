"use strict";
// Sends a clip file to /api/verify and shows each check the instance made.
$("verify-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = $("clip-file").files[0];
  if (!file) return;
  $("verdict").textContent = t("verify.checking");
  $("verdict").dataset.valid = "";
  $("checks").replaceChildren();
  $("context-line").hidden = true;  // a link from an earlier, valid file must not vouch for this one
  try {
    const response = await fetch("/api/verify", { method: "POST", headers: { "Content-Type": "audio/mp4" }, body: file });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || t("common.error_status", { status: response.status }));
    $("verdict").dataset.valid = String(data.valid);
    $("verdict").textContent = data.valid
      ? t("verify.valid", { title: data.facts.title, offset: data.facts.offset_s.toLocaleString(podiumI18n.lang, { useGrouping: false, maximumFractionDigits: 20 }) })
      : t("verify.not_valid");
    $("checks").replaceChildren(...data.checks.map((c) => {
      const item = document.createElement("li");
      item.dataset.ok = String(c.ok);
      item.textContent = `${c.ok ? "✓" : "✗"} ${c.detail}`;
      return item;
    }));
    if (data.valid && data.facts.context_url) { $("context").href = data.facts.context_url; $("context-line").hidden = false; }
  } catch (e) {
    $("verdict").textContent = t("verify.failed", { message: e.message });
  }
});
