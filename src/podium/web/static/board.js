"use strict";
// The go/no-go board on the host console: is everyone getting in, is the stream on time, is
// anything being shed? Polls the board API (host token) every two seconds; a five-minute chart.
(function () {
  const hostToken = localStorage.getItem(`podium.host.${spaceId}`);
  if (!hostToken) { $("board-card").hidden = true; return; }
  const history = [];  // [listeners, arrivals per second], one per poll
  const keep = 150;
  const lang = podiumI18n.lang;

  const isLive = () => typeof space !== "undefined" && space !== null && space.state === "live";

  function verdict(board) {
    const stream = board.stream;
    const problems = [];
    // Before the host goes live no stream runs, and that is as it should be.
    if (!stream.running && isLive()) problems.push(t("board.not_running"));
    else if (stream.last_part_age_s !== null && stream.last_part_age_s > 1.5) problems.push(t("board.late"));
    if (board.load.shedding.includes("join")) problems.push(t("board.joins_held"));
    if (board.load.pressure >= 0.85) problems.push(t("board.near_capacity"));
    if (board.last_rehearsal && board.last_rehearsal.verdict !== "GO") problems.push(t("board.rehearsal_no_go"));
    return problems;
  }

  function draw() {
    // Newest at the right edge, two minutes and a half across; each line scaled to its own top.
    const canvas = $("b-chart");
    const g = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height;
    const step = w / (keep - 1);
    g.clearRect(0, 0, w, h);
    g.font = "11px sans-serif";
    const series = [[0, "#2f6fde", t("board.chart_listening")], [1, "#d9822b", t("board.chart_joins")]];
    series.forEach(([index, color, name], row) => {
      const values = history.map((entry) => entry[index]);
      const top = Math.max(1, ...values);
      g.strokeStyle = color;
      g.fillStyle = color;
      g.lineWidth = 2;
      g.beginPath();
      values.forEach((v, i) => {
        const x = w - (values.length - 1 - i) * step, y = h - 4 - (v / top) * (h - 18);
        if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
      });
      g.stroke();
      g.fillText(t("board.chart_max", { name, top: top.toLocaleString(podiumI18n.lang) }), 6 + row * 150, 12);
    });
  }

  async function poll() {
    try {
      const board = await api(`/api/spaces/${spaceId}/board`, { token: hostToken });
      const number = (n) => n.toLocaleString(lang);
      $("b-listeners").textContent = number(board.listeners.now);
      $("b-waiting").textContent = number(board.joins.waiting);
      $("b-arrivals").textContent = number(board.joins.arrivals_per_s);
      $("b-admitted").textContent = number(board.joins.admitted);
      $("b-stream").textContent = t(board.stream.running ? (board.stream.last_part_age_s !== null && board.stream.last_part_age_s > 1.5 ? "board.stream_late" : "board.stream_on_time") : "board.stream_off");
      $("b-load").textContent = `${number(Math.round(board.load.pressure * 100))} %`;
      const poor = (board.stream.connections || []).filter((c) => c.poor);
      const connections = poor.length
        ? poor.map((c) => t("board.connection_poor", {
          name: c.name,
          loss: c.loss_percent.toLocaleString(lang),
          filled: ((c.recovered_ms + c.concealed_ms) / 1000).toLocaleString(lang, { maximumFractionDigits: 1 }),
        })).join(" ")
        : t("board.connections_clean");
      // Rewritten only when it changes: a screen reader is not told the same thing every two seconds.
      if ($("b-connections").textContent !== connections) $("b-connections").textContent = connections;
      $("b-connections").classList.toggle("warning", poor.length > 0);
      // Request classes by what they are to a host, in the page's language.
      const kind = (name) => { const key = `board.class_${name}`; const text = t(key); return text === key ? name : text; };
      const shed = Object.entries(board.requests).filter(([, c]) => c.shed > 0).map(([name, c]) => `${kind(name)}: ${number(c.shed)}`);
      $("b-shedding").textContent = [
        board.load.shedding.length ? t("board.shedding_now", { list: board.load.shedding.map(kind).join(", ") }) : t("board.nothing_shed"),
        shed.length ? t("board.shed_so_far", { list: shed.join(", ") }) : "",
        t("board.refused_by_signature", { count: number(board.refused_by_signature) }),
        board.under_attack.active ? t("board.puzzle_on", { bits: board.under_attack.difficulty_bits }) : t("board.puzzle_off"),
      ].filter(Boolean).join(" ");
      if (document.activeElement !== $("attack-mode")) $("attack-mode").value = board.under_attack.mode;
      const last = board.last_rehearsal;
      const fixed = (n, digits) => n.toLocaleString(lang, { minimumFractionDigits: digits, maximumFractionDigits: digits, useGrouping: false });
      $("b-rehearsal").textContent = last
        ? t("board.last_rehearsal", {
          time: when(last.at * 1000),
          verdict: last.verdict,
          listeners: number(last.listeners),
          rate: number(last.peak_joins_per_s),
          success: fixed(last.success * 100, 1),
          p95: last.ttfa_s.p95 === null ? "–" : `${fixed(last.ttfa_s.p95, 2)} s`,
          reasons: last.reasons.length ? ` (${last.reasons.join("; ")})` : "",
        })
        : t("board.no_rehearsal");
      const problems = verdict(board);
      // For the host, in their words: ready, or what keeps it from being so (the details below).
      const ready = board.stream.running ? t("board.ready_line") : t("board.ready_to_start");
      setText($("readiness"), problems.length ? t("board.busy", { problems: problems.join("; ") }) : ready);
      $("verdict").textContent = t(problems.length ? "board.not_ready" : "board.ready");
      $("verdict").dataset.verdict = problems.length ? "no-go" : "go";
      $("verdict").title = problems.join("; ") || t("board.all_on_time");
      history.push([board.listeners.now, board.joins.arrivals_per_s]);
      if (history.length > keep) history.shift();
      draw();
    } catch (e) {
      $("b-shedding").textContent = t("board.read_failed", { message: e.message });
    }
  }
  $("attack-mode").addEventListener("change", async () => {
    try { await api(`/api/spaces/${spaceId}/under-attack`, { method: "POST", token: hostToken, body: { mode: $("attack-mode").value } }); poll(); }
    catch (e) { $("b-shedding").textContent = e.message; }
  });
  poll();
  setInterval(poll, 2000);
})();
