// History chart: per metric a min/max band and a mean line over time buckets, alarm limits
// as dashed lines, alarm onsets as coloured ticks. Drawn by hand on a canvas.

const PRIORITY_COLOR = { high: "#ff3b30", medium: "#ffd60a", low: "#22d3ee" };

function niceStep(span, target) {
  const raw = span / target;
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((s) => s * 1000);
  return steps.find((s) => s >= raw) || steps[steps.length - 1];
}

function label(ms, spanMs) {
  const d = new Date(ms);
  const hh = String(d.getHours()).padStart(2, "0");
  const mm = String(d.getMinutes()).padStart(2, "0");
  if (spanMs > 36 * 3600 * 1000) return `${d.getDate()}/${d.getMonth() + 1} ${hh}:${mm}`;
  return `${hh}:${mm}`;
}

/**
 * canvas: sized backing store. opts: {from, to, dpr, series: [{color, points: [{t, min, max,
 * mean}]}], limits: [{value, color}], alerts: [{t, priority}], bucketMs}
 */
export function drawHistory(canvas, opts) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width;
  const H = canvas.height;
  const dpr = opts.dpr || 1;
  const padL = 44 * dpr;
  const padR = 10 * dpr;
  const padT = 10 * dpr;
  const padB = 26 * dpr;
  const w = W - padL - padR;
  const h = H - padT - padB;
  ctx.clearRect(0, 0, W, H);

  let lo = 50;
  let hi = 180;
  for (const s of opts.series) {
    for (const p of s.points) {
      lo = Math.min(lo, p.min);
      hi = Math.max(hi, p.max);
    }
  }
  lo = Math.max(0, Math.floor((lo - 10) / 20) * 20);
  hi = Math.ceil((hi + 10) / 20) * 20;
  const span = opts.to - opts.from;
  const xOf = (t) => padL + ((t - opts.from) / span) * w;
  const yOf = (v) => padT + h - ((v - lo) / (hi - lo)) * h;

  ctx.font = `${11 * dpr}px system-ui, sans-serif`;
  ctx.fillStyle = "#9aa4b2";
  ctx.strokeStyle = "rgba(255,255,255,0.08)";
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  ctx.beginPath();
  for (let v = lo; v <= hi; v += 20) {
    const y = Math.round(yOf(v)) + 0.5;
    ctx.moveTo(padL, y);
    ctx.lineTo(padL + w, y);
    ctx.fillText(String(v), padL - 6 * dpr, y);
  }
  const step = niceStep(span, Math.max(2, Math.floor(w / (90 * dpr))));
  const tz = new Date().getTimezoneOffset() * 60000;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (let t = Math.ceil((opts.from - tz) / step) * step + tz; t <= opts.to; t += step) {
    const x = Math.round(xOf(t)) + 0.5;
    ctx.moveTo(x, padT);
    ctx.lineTo(x, padT + h);
    // A label near an edge is moved inwards rather than cut by the canvas's edge.
    const text = label(t, span);
    const half = ctx.measureText(text).width / 2;
    ctx.fillText(text, Math.min(Math.max(x, half + 1), canvas.width - half - 1), padT + h + 6 * dpr);
  }
  ctx.stroke();

  ctx.save();
  ctx.beginPath();
  ctx.rect(padL, padT, w, h);
  ctx.clip();

  // Labels of close lines are set side by side instead of on top of each other.
  const placed = [];
  const sortedLimits = [...(opts.limits || [])].sort((a, b) => a.value - b.value);
  for (const limit of sortedLimits) {
    ctx.setLineDash([6 * dpr, 4 * dpr]);
    ctx.strokeStyle = limit.color || "rgba(255,255,255,0.35)";
    ctx.beginPath();
    const y = Math.round(yOf(limit.value)) + 0.5;
    ctx.moveTo(padL, y);
    ctx.lineTo(padL + w, y);
    ctx.stroke();
    if (limit.label) {
      ctx.fillStyle = limit.color || "#fff";
      ctx.textAlign = "left";
      ctx.textBaseline = "bottom";
      const width = ctx.measureText(limit.label).width;
      let x = padL + 4 * dpr;
      let ly = y;
      for (const p of placed) if (Math.abs(p.y - ly) < 12 * dpr) x = Math.max(x, p.x + p.w + 12 * dpr);
      if (x + width > padL + w) {
        // No room beside the others on a narrow chart: the label goes on a line of its own.
        x = padL + 4 * dpr;
        while (placed.some((p) => Math.abs(p.y - ly) < 12 * dpr && p.x < x + width)) ly -= 12 * dpr;
      }
      ctx.fillText(limit.label, x, ly - 2 * dpr);
      placed.push({ x, y: ly, w: width });
    }
  }
  ctx.setLineDash([]);

  const gap = (opts.bucketMs || 60000) * 2.5;
  for (const s of opts.series) {
    const pts = s.points;
    // Band: one closed shape per run of adjacent buckets.
    ctx.fillStyle = s.band;
    let run = [];
    const flush = () => {
      if (!run.length) return;
      ctx.beginPath();
      run.forEach((p, i) => (i ? ctx.lineTo(xOf(p.t), yOf(p.max)) : ctx.moveTo(xOf(p.t), yOf(p.max))));
      for (let i = run.length - 1; i >= 0; i--) ctx.lineTo(xOf(run[i].t), yOf(run[i].min));
      ctx.closePath();
      ctx.fill();
      if (run.length === 1) ctx.fillRect(xOf(run[0].t) - dpr, yOf(run[0].max), 2 * dpr, Math.max(dpr, yOf(run[0].min) - yOf(run[0].max)));
      run = [];
    };
    for (let i = 0; i < pts.length; i++) {
      if (run.length && pts[i].t - run[run.length - 1].t > gap) flush();
      run.push(pts[i]);
    }
    flush();
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 1.6 * dpr;
    ctx.beginPath();
    let prev = -Infinity;
    for (const p of pts) {
      if (p.t - prev > gap) ctx.moveTo(xOf(p.t), yOf(p.mean));
      else ctx.lineTo(xOf(p.t), yOf(p.mean));
      prev = p.t;
    }
    ctx.stroke();
  }

  for (const a of opts.alerts || []) {
    if (a.t < opts.from || a.t > opts.to) continue;
    ctx.fillStyle = PRIORITY_COLOR[a.priority] || "#fff";
    ctx.fillRect(Math.round(xOf(a.t)) - dpr, padT, 2 * dpr, 8 * dpr);
  }
  ctx.restore();
}
