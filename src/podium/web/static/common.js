"use strict";
// What the host console and the listener page share.
const $ = (id) => document.getElementById(id);

// A peak level (0..1) on a 60 dB scale, as ears and level meters read it.
function levelPercent(peak) {
  return Math.max(0, Math.min(100, Math.round(((20 * Math.log10(peak + 1e-9)) + 60) / 60 * 100)));
}

// Calls onLevel(percent) once per animation frame with the analyser's current peak level.
function watchLevel(analyser, onLevel) {
  const data = new Float32Array(analyser.fftSize);
  (function draw() {
    analyser.getFloatTimeDomainData(data);
    let peak = 0;
    for (const v of data) peak = Math.max(peak, Math.abs(v));
    onLevel(levelPercent(peak));
    requestAnimationFrame(draw);
  })();
}
