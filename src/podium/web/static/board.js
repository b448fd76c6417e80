"use strict";
// The go/no-go board on the host console: is everyone getting in, is the stream on time, is
// anything being shed? Polls the board API (host token) every two seconds; a five-minute chart.
(function () {
  const hostToken = localStorage.getItem(`podium.host.${spaceId}`);
  if (!hostToken) { $("board-card").hidden = true; return; }
  const history = [];  // [listeners, arrivals per second], one per poll
  const keep = 150;

  function verdict(board) {
    const stream = board.stream;
    const problems = [];
    if (!stream.running) problems.push("the stream is not running yet");
    else if (stream.last_part_age_s !== null && stream.last_part_age_s > 1.5) problems.push("the stream is late");
    if (board.load.shedding.includes("join")) problems.push("new listeners are held in line by load");
    if (board.load.pressure >= 0.85) problems.push("the node is near its capacity");
    if (board.last_rehearsal && board.last_rehearsal.verdict !== "GO") problems.push("the last rehearsal said NO-GO");
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
    const series = [[0, "#2f6fde", "listening"], [1, "#d9822b", "joins/s"]];
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
      g.fillText(`${name} max ${top.toLocaleString()}`, 6 + row * 150, 12);
    });
  }

  async function poll() {
    try {
      const board = await api(`/api/spaces/${spaceId}/board`, { token: hostToken });
      $("b-listeners").textContent = board.listeners.now.toLocaleString();
      $("b-waiting").textContent = board.joins.waiting.toLocaleString();
      $("b-arrivals").textContent = board.joins.arrivals_per_s.toLocaleString();
      $("b-admitted").textContent = board.joins.admitted.toLocaleString();
      $("b-stream").textContent = board.stream.running ? (board.stream.last_part_age_s !== null && board.stream.last_part_age_s > 1.5 ? "late" : "on time") : "off";
      $("b-load").textContent = `${Math.round(board.load.pressure * 100)} %`;
      const shed = Object.entries(board.requests).filter(([, c]) => c.shed > 0).map(([name, c]) => `${name}: ${c.shed.toLocaleString()}`);
      $("b-shedding").textContent = (board.load.shedding.length ? `Shedding now: ${board.load.shedding.join(", ")}. ` : "Nothing is being shed. ")
        + (shed.length ? `Shed so far: ${shed.join(", ")}. ` : "")
        + `Refused by signature: ${board.refused_by_signature.toLocaleString()}. `
        + (board.under_attack.active ? `Puzzle on (${board.under_attack.difficulty_bits} bits).` : "Puzzle off.");
      if (document.activeElement !== $("attack-mode")) $("attack-mode").value = board.under_attack.mode;
      const last = board.last_rehearsal;
      $("b-rehearsal").textContent = last
        ? `Last rehearsal ${new Date(last.at * 1000).toLocaleString()}: ${last.verdict}, ${last.listeners.toLocaleString()} listeners at up to ${last.peak_joins_per_s} joins/s, ${(last.success * 100).toFixed(1)} % got in, first audio p95 ${last.ttfa_s.p95 === null ? "–" : `${last.ttfa_s.p95.toFixed(2)} s`}${last.reasons.length ? ` (${last.reasons.join("; ")})` : ""}.`
        : "No rehearsal yet: run `podium rehearse <page address> --host-token <token>` before the crowd comes.";
      const problems = verdict(board);
      $("verdict").textContent = problems.length ? "NO-GO" : "GO";
      $("verdict").dataset.verdict = problems.length ? "no-go" : "go";
      $("verdict").title = problems.join("; ") || "everything is on time";
      history.push([board.listeners.now, board.joins.arrivals_per_s]);
      if (history.length > keep) history.shift();
      draw();
    } catch (e) {
      $("b-shedding").textContent = `The board could not be read: ${e.message}`;
    }
  }
  $("attack-mode").addEventListener("change", async () => {
    try { await api(`/api/spaces/${spaceId}/under-attack`, { method: "POST", token: hostToken, body: { mode: $("attack-mode").value } }); poll(); }
    catch (e) { $("b-shedding").textContent = e.message; }
  });
  poll();
  setInterval(poll, 2000);
})();
