"use strict";
// The page's strings in the language the server chose for it (src/podium/web/i18n.py), from the
// JSON block the page carries: t("listen.play"), t("key", { name: value }), tn("key", count).
const podiumI18n = (() => {
  const node = document.getElementById("podium-i18n");
  const data = node ? JSON.parse(node.textContent) : { lang: "en", strings: {} };
  const rules = new Intl.PluralRules(data.lang);
  const fill = (text, fields) =>
    text.replace(/\{(\w+)\}/g, (whole, name) => (fields && name in fields ? String(fields[name]) : whole));
  // A missing key shows itself, so that a forgotten string is seen rather than silently blank.
  const t = (key, fields) => (key in data.strings ? fill(data.strings[key], fields) : key);
  const tn = (key, count, fields) => {
    const form = `${key}.${rules.select(count)}`;
    return t(form in data.strings ? form : `${key}.other`, { count: count.toLocaleString(data.lang), ...fields });
  };
  return { lang: data.lang, t, tn };
})();
const { t, tn } = podiumI18n;
