// Fixed-size ring buffers of (time, bpm) and a hand-drawn canvas trend of the last minutes.

export class RingBuffer {
  constructor(capacity) {
    this.capacity = capacity;
    this.times = new Float64Array(capacity);
    this.values = new Float32Array(capacity);
    this.start = 0;
    this.length = 0;
  }

  /** Append in time order; an older sample than the newest is dropped (no zig-zags). */
  push(t, v) {
    if (this.length && t <= this.lastTime()) return false;
    const i = (this.start + this.length) % this.capacity;
    this.times[i] = t;
    this.values[i] = v;
    if (this.length < this.capacity) this.length += 1;
    else this.start = (this.start + 1) % this.capacity;
    return true;
  }

  lastTime() {
    return this.length ? this.times[(this.start + this.length - 1) % this.capacity] : -Infinity;
  }

  firstTime() {
    return this.length ? this.times[this.start] : Infinity;
  }

  time(k) {
    return this.times[(this.start + k) % this.capacity];
  }

  value(k) {
    return this.values[(this.start + k) % this.capacity];
  }

  clear() {
    this.start = 0;
    this.length = 0;
  }
}

/**
 * One metric's trend: live samples in a ring buffer plus a coarser backfill (REST history)
 * that fills the time before the first live sample and any gap left by a reconnect.
 */
export class Series {
  constructor(capacity) {
    this.live = new RingBuffer(capacity);
    this.backfill = []; // [{t, v}] sorted, from aggregated history
  }

  setBackfill(points) {
    this.backfill = points.filter((p) => Number.isFinite(p.t) && Number.isFinite(p.v));
    this.backfill.sort((a, b) => a.t - b.t);
  }
}

const GAP_MS = 15_000; // no line across a signal gap longer than this

/**
 * Draw series on a canvas whose backing store is already sized (width/height in device px).
 * opts: {now, windowMs, min, max, limits: {low, high} | null, series: [{series, color}]}
 */
export function drawTrend(ctx, width, height, opts) {
  const { now, windowMs, min, max } = opts;
  ctx.clearRect(0, 0, width, height);
  const x0 = now - windowMs;
  const sx = width / windowMs;
  const sy = height / (max - min);
  const yOf = (v) => height - (Math.min(max, Math.max(min, v)) - min) * sy;

  // Grid: one line a minute, and horizontal guides.
  ctx.lineWidth = 1;
  ctx.strokeStyle = "rgba(255,255,255,0.07)";
  ctx.beginPath();
  for (let t = Math.ceil(x0 / 60000) * 60000; t < now; t += 60000) {
    const x = Math.round((t - x0) * sx) + 0.5;
    ctx.moveTo(x, 0);
    ctx.lineTo(x, height);
  }
  for (const g of opts.guides || []) {
    const y = Math.round(yOf(g)) + 0.5;
    ctx.moveTo(0, y);
    ctx.lineTo(width, y);
  }
  ctx.stroke();

  if (opts.limits) {
    ctx.setLineDash([4, 4]);
    ctx.strokeStyle = "rgba(255,255,255,0.28)";
    ctx.beginPath();
    for (const v of [opts.limits.low, opts.limits.high]) {
      if (!Number.isFinite(v)) continue;
      const y = Math.round(yOf(v)) + 0.5;
      ctx.moveTo(0, y);
      ctx.lineTo(width, y);
    }
    ctx.stroke();
    ctx.setLineDash([]);
  }

  ctx.lineJoin = "round";
  ctx.lineWidth = opts.lineWidth || 2;
  for (const { series, color } of opts.series) {
    ctx.strokeStyle = color;
    ctx.beginPath();
    let prevT = -Infinity;
    const plot = (t, v) => {
      if (t < x0 - GAP_MS) return;
      const x = (t - x0) * sx;
      const y = yOf(v);
      if (t - prevT > GAP_MS) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
      prevT = t;
    };
    // Merge backfill and live by time; backfill only where no live sample is near.
    const live = series.live;
    const bf = series.backfill;
    let i = 0;
    let k = 0;
    while (i < bf.length || k < live.length) {
      const lt = k < live.length ? live.time(k) : Infinity;
      if (i < bf.length && bf[i].t < lt) {
        const prevLive = k > 0 ? live.time(k - 1) : -Infinity;
        if (bf[i].t - prevLive > GAP_MS && lt - bf[i].t > GAP_MS / 3) plot(bf[i].t, bf[i].v);
        i += 1;
      } else {
        plot(lt, live.value(k));
        k += 1;
      }
    }
    ctx.stroke();
  }
}

/** Size a canvas's backing store to its CSS box; returns {width, height} in device px. */
export function fitCanvas(canvas, cssWidth, cssHeight) {
  const dpr = Math.min(2, window.devicePixelRatio || 1);
  const w = Math.max(1, Math.round(cssWidth * dpr));
  const h = Math.max(1, Math.round(cssHeight * dpr));
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  return { width: w, height: h, dpr };
}
