// The CTG strip of an obstetric patient: fetal heart rate on the FIGO scale (50-210 bpm, the
// 110-160 band shaded) above uterine activity (0-100), on a paper grid at 1, 2 or 3 cm/min;
// the maternal heart rate on the FHR grid in its own colour; accelerations and decelerations
// marked and the classification and baseline shown (GET /api/patients/<id>/ctg/ for the alarm
// evaluator's window ending at the strip's right edge: what the tile shows); gaps drawn
// as gaps. Live, or scrolled back through the stored history; saved as a PNG. Clinicians'
// notes (GET/POST /api/patients/<id>/notes/) are blue marks at their time: a click (or tap)
// on the strip opens a note at that moment; notes written elsewhere arrive as `note` frames.
import { api, fetchBlob } from "./api.js";
import { el, setText, toLocalInput } from "./util.js";

const PX_PER_CM = 96 / 2.54; // CSS pixels
const FHR = { low: 50, high: 210, bandLow: 110, bandHigh: 160 };
const COLOURS = {
  paper: "#0b1016", minor: "#17212c", major: "#26384a", band: "rgba(48, 209, 88, 0.10)",
  fetal_heart_rate: "#22d3ee", heart_rate: "#f472b6", uterine_activity: "#fbbf24",
  acceleration: "#30d158", deceleration: "#ff9f0a", text: "#9aa7b4", note: "#60a5fa",
};
const GAP_MS = 2500; // samples further apart than this are drawn as a gap
const METRICS = ["fetal_heart_rate", "heart_rate", "uterine_activity"];
const ANALYSIS_EVERY_MS = 30_000;
const clock = (t) => new Date(t).toTimeString().slice(0, 8);

export class CtgStrip {
  constructor({ patientId }) {
    this.patientId = patientId;
    this.speed = 1; // cm/min
    this.end = null; // null: live (the strip ends now)
    this.series = Object.fromEntries(METRICS.map((m) => [m, []]));
    this.analysis = null;
    this.destroyed = false;
    this.pending = false;
    const d = (this.dom = {});
    d.summary = el("p", { class: "ctg-summary", id: "ctg-summary", "aria-live": "polite" }, "Loading…");
    d.canvas = el("canvas", { class: "ctg-strip", id: "ctg-strip", role: "img", "aria-label": "CTG strip: fetal heart rate above uterine activity" });
    d.speeds = [1, 2, 3].map((s) =>
      el("button", { type: "button", class: "btn btn-range", dataset: { speed: String(s) }, "aria-pressed": String(s === this.speed), onclick: () => this.setSpeed(s) }, `${s} cm/min`),
    );
    d.earlier = el("button", { type: "button", class: "btn", id: "ctg-earlier", onclick: () => this.scroll(-1) }, "◀ Earlier");
    d.later = el("button", { type: "button", class: "btn", id: "ctg-later", onclick: () => this.scroll(1) }, "Later ▶");
    d.live = el("button", { type: "button", class: "btn", id: "ctg-live", "aria-pressed": "true", onclick: () => this.goLive() }, "Live");
    d.save = el("button", { type: "button", class: "btn", id: "ctg-save", onclick: () => this.savePng() }, "Save PNG");
    d.pdf = el("button", { type: "button", class: "btn", id: "ctg-pdf", title: "The strip's window as the CTG record (A4, for the chart)", onclick: () => this.openPdf(false) }, "PDF");
    d.pdfAll = el("button", { type: "button", class: "btn", id: "ctg-pdf-all", title: "The last 24 hours of monitoring as the CTG record", onclick: () => this.openPdf(true) }, "CTG record (PDF)");
    d.addNote = el("button", { type: "button", class: "btn", id: "ctg-add-note", onclick: () => this.openNote(this.end ?? Date.now()) }, "Add note");
    // The note form: opened by a click on the strip (at that time) or by "Add note" (now).
    d.noteAt = el("input", { type: "datetime-local", id: "note-at", step: "1", "aria-label": "Time of the note", required: true });
    d.noteText = el("input", { type: "text", id: "note-text", maxlength: "1000", required: true, placeholder: "e.g. vaginal examination 6 cm", "aria-label": "Note" });
    d.noteError = el("p", { class: "form-error", role: "alert", id: "note-error" });
    d.noteForm = el("form", { class: "note-form", id: "note-form", hidden: true },
      el("div", { class: "note-fields" }, d.noteAt, d.noteText),
      el("div", { class: "note-actions" },
        el("button", { type: "submit", class: "btn btn-primary", id: "note-save" }, "Save note"),
        el("button", { type: "button", class: "btn", onclick: () => this.closeNote() }, "Cancel")),
      d.noteError);
    d.noteForm.addEventListener("submit", (e) => { e.preventDefault(); this.saveNote(); });
    d.legend = el("div", { class: "legend" },
      el("span", { class: "legend-item ctg-legend-fhr" }, "Fetal HR"),
      el("span", { class: "legend-item ctg-legend-mhr" }, "Maternal HR"),
      el("span", { class: "legend-item ctg-legend-ua" }, "Uterine activity"),
    );
    this.node = el("section", { class: "card wide ctg-card", "aria-labelledby": "ctg-h" },
      el("div", { class: "chart-head" }, el("h2", { id: "ctg-h" }, "CTG"),
        el("div", { class: "range-picker", role: "group", "aria-label": "Paper speed" }, d.speeds),
        el("div", { class: "range-picker", role: "group", "aria-label": "Scroll" }, d.earlier, d.later, d.live),
        el("div", { class: "range-picker", role: "group", "aria-label": "Notes and export" }, d.addNote, d.save, d.pdf, d.pdfAll)),
      d.summary, d.legend, el("div", { class: "ctg-wrap" }, d.canvas), d.noteForm);
    this.notes = new Map(); // id -> note, those of the loaded window and any arriving live
    this.onNote = null; // the patient view's listener for notes written here
    d.canvas.addEventListener("click", (e) => {
      const box = d.canvas.getBoundingClientRect();
      const { from, to } = this.window();
      this.openNote(from + ((e.clientX - box.left) / box.width) * (to - from));
    });
    this._resize = new ResizeObserver(() => this.draw());
    this._resize.observe(d.canvas);
    this._timer = setInterval(() => { if (this.end === null) this.loadAnalysis(); }, ANALYSIS_EVERY_MS);
    d.canvas.addEventListener("wheel", (e) => { e.preventDefault(); this.scroll(e.deltaY > 0 || e.deltaX > 0 ? 1 : -1, 0.25); }, { passive: false });
  }

  destroy() {
    this.destroyed = true;
    clearInterval(this._timer);
    this._resize.disconnect();
  }

  /** The visible span in ms: the canvas's width in cm at the paper speed. */
  spanMs() {
    const width = this.dom.canvas.clientWidth || 800;
    return ((width / PX_PER_CM) / this.speed) * 60_000;
  }

  window() {
    const to = this.end ?? Date.now();
    return { from: to - this.spanMs(), to };
  }

  setSpeed(speed) {
    this.speed = speed;
    for (const b of this.dom.speeds) b.setAttribute("aria-pressed", String(Number(b.dataset.speed) === speed));
    this.load();
  }

  scroll(direction, share = 0.5) {
    const now = Date.now();
    const to = (this.end ?? now) + direction * share * this.spanMs();
    this.end = to >= now ? null : to;
    this.dom.live.setAttribute("aria-pressed", String(this.end === null));
    this.load();
  }

  goLive() {
    this.end = null;
    this.dom.live.setAttribute("aria-pressed", "true");
    this.load();
  }

  async load() {
    const { from, to } = this.window();
    const query = `from=${encodeURIComponent(new Date(from).toISOString())}&to=${encodeURIComponent(new Date(to).toISOString())}`;
    try {
      const body = await api.get(`/api/records/${this.patientId}/?bucket=1&${query}`);
      if (this.destroyed) return;
      const series = Object.fromEntries(METRICS.map((m) => [m, []]));
      for (const row of body.results || []) {
        if (series[row.metric]) series[row.metric].push({ t: Date.parse(row.bucket_start) + 500, v: row.mean });
      }
      for (const m of METRICS) series[m].sort((a, b) => a.t - b.t);
      this.series = series;
    } catch (err) {
      setText(this.dom.summary, `CTG unavailable: ${err.message}`);
    }
    this.draw();
    this.loadNotes();
    this.loadAnalysis();
  }

  async loadNotes() {
    const { from, to } = this.window();
    const query = `from=${encodeURIComponent(new Date(from - 60_000).toISOString())}&to=${encodeURIComponent(new Date(to + 60_000).toISOString())}&page_size=1000`;
    try {
      const body = await api.get(`/api/patients/${this.patientId}/notes/?${query}`);
      if (this.destroyed) return;
      for (const note of body.results || []) this.notes.set(note.id, note);
    } catch {
      // The trace still shows; notes come back with the next load or live.
    }
    this.draw();
  }

  /** A note written, corrected or annotated anywhere (a `note` frame, or this page's save). */
  setNote(note) {
    this.notes.set(note.id, note);
    this.draw();
  }

  openNote(at) {
    this.dom.noteAt.value = toLocalInput(at, true);
    this.dom.noteText.value = "";
    setText(this.dom.noteError, "");
    this.dom.noteForm.hidden = false;
    this.dom.noteText.focus();
  }

  closeNote() {
    this.dom.noteForm.hidden = true;
  }

  async saveNote() {
    const at = Date.parse(this.dom.noteAt.value);
    const text = this.dom.noteText.value.trim();
    if (!Number.isFinite(at) || !text) {
      setText(this.dom.noteError, "A note needs a time and a text.");
      return;
    }
    try {
      const note = await api.post(`/api/patients/${this.patientId}/notes/`, { at: new Date(at).toISOString(), text });
      this.setNote(note);
      if (this.onNote) this.onNote(note);
      this.closeNote();
    } catch (err) {
      setText(this.dom.noteError, err.message);
    }
  }

  async openPdf(whole) {
    const button = whole ? this.dom.pdfAll : this.dom.pdf;
    let query = `speed=${this.speed === 3 ? 3 : 1}`;
    if (!whole) {
      const { from, to } = this.window();
      query += `&from=${encodeURIComponent(new Date(from).toISOString())}&to=${encodeURIComponent(new Date(to).toISOString())}`;
    }
    button.disabled = true;
    try {
      const blob = await fetchBlob(`/api/patients/${this.patientId}/ctg.pdf?${query}`);
      const link = el("a", { href: URL.createObjectURL(blob), download: `ctg-record-patient-${this.patientId}.pdf`, id: "ctg-pdf-link" });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
      this.dom.pdf.dataset.last = String(blob.size);
    } catch (err) {
      setText(this.dom.summary, `CTG record unavailable: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  }

  /** The analysis shown in the header and drawn on the strip: the alarm evaluator's window
   * (its length and look-back are the server's) ending at the strip's right edge, so the
   * header reads what the tile and the alarms read for that moment (docs/ctg.md). */
  async loadAnalysis() {
    // Live, the server's present ends the window (not this computer's clock, which may be
    // off); scrolled back, the strip's right edge.
    const query = this.end === null ? "" : `?to=${encodeURIComponent(new Date(this.end).toISOString())}`;
    try {
      this.analysis = await api.get(`/api/patients/${this.patientId}/ctg/${query}`);
    } catch {
      this.analysis = null;
    }
    if (this.destroyed) return;
    this.showSummary();
    this.draw();
  }

  /** The evaluator classified the patient again (a live ``ctg`` frame): a live strip reads
   * the window again at once instead of at its next refresh. */
  classified() {
    if (this.end === null) this.loadAnalysis();
  }

  showSummary() {
    const a = this.analysis;
    if (!a || typeof a.classification !== "string") return;
    const parts = [`CTG ${a.classification.replace("_", " ")}`];
    if (a.baseline_bpm != null) parts.push(`baseline ${a.baseline_bpm} bpm`);
    if (a.variability_bpm != null) parts.push(`variability ${a.variability_bpm} bpm`);
    if (a.contractions_per_10_min != null) parts.push(`${a.contractions_per_10_min} contractions / 10 min`);
    parts.push(`signal loss ${a.signal_loss_percent} %`);
    const from = Date.parse(a.from);
    const to = Date.parse(a.to);
    const minutes = Math.round((to - from) / 60_000);
    const monitored = Math.floor((a.monitored_seconds ?? (to - from) / 1000) / 60);
    parts.push(monitored < minutes ? `monitored ${monitored} of ${minutes} min to ${clock(to)}` : `${minutes} min to ${clock(to)}`);
    Object.assign(this.dom.summary.dataset, { classification: a.classification, baseline: String(a.baseline_bpm ?? ""), from: a.from, to: a.to });
    setText(this.dom.summary, parts.join(" · ") + ((a.reasons || []).length ? ` — ${a.reasons.join(" ")}` : ""));
  }

  /** A live reading frame item (the patient view passes its patient's items). */
  addReading(item) {
    if (this.end !== null || !this.series[item.metric]) return;
    const value = item.value ?? item.bpm;
    this.series[item.metric].push({ t: Date.parse(item.recorded_at), v: value });
    if (!this.pending) {
      this.pending = true;
      requestAnimationFrame(() => { this.pending = false; this.draw(); });
    }
  }

  draw() {
    if (this.destroyed) return;
    const canvas = this.dom.canvas;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    const { from, to } = this.window();
    const x = (t) => ((t - from) / (to - from)) * width;
    const fhrH = Math.round(height * 0.62);
    const uaTop = fhrH + 14;
    const uaH = height - uaTop;
    const yF = (v) => fhrH - ((v - FHR.low) / (FHR.high - FHR.low)) * fhrH;
    const yU = (v) => uaTop + uaH - (v / 100) * uaH;

    ctx.fillStyle = COLOURS.paper;
    ctx.fillRect(0, 0, width, height);
    ctx.fillStyle = COLOURS.band;
    ctx.fillRect(0, yF(FHR.bandHigh), width, yF(FHR.bandLow) - yF(FHR.bandHigh));
    // Paper: a line every 10 bpm / 10 units, bold every 30 bpm / 50 units; every minute
    // (bold every 10 minutes).
    ctx.lineWidth = 1;
    const hline = (y, major) => { ctx.strokeStyle = major ? COLOURS.major : COLOURS.minor; ctx.beginPath(); ctx.moveTo(0, y + 0.5); ctx.lineTo(width, y + 0.5); ctx.stroke(); };
    for (let v = FHR.low; v <= FHR.high; v += 10) hline(yF(v), (v - 60) % 30 === 0);
    for (let v = 0; v <= 100; v += 10) hline(yU(v), v % 50 === 0);
    const firstMinute = Math.ceil(from / 60_000) * 60_000;
    ctx.fillStyle = COLOURS.text;
    ctx.font = "11px system-ui, sans-serif";
    for (let t = firstMinute; t <= to; t += 60_000) {
      const major = Math.round(t / 60_000) % 10 === 0;
      ctx.strokeStyle = major ? COLOURS.major : COLOURS.minor;
      ctx.beginPath(); ctx.moveTo(x(t) + 0.5, 0); ctx.lineTo(x(t) + 0.5, height); ctx.stroke();
      if (major) ctx.fillText(new Date(t).toTimeString().slice(0, 5), x(t) + 3, fhrH + 11);
    }
    for (const v of [60, 90, 120, 150, 180, 210]) ctx.fillText(String(v), 2, yF(v) + 11);

    // Events of the analysis: accelerations along the top, decelerations along the bottom.
    const a = this.analysis;
    const marks = { accelerations: 0, decelerations: 0 };
    if (a && typeof a.classification === "string") {
      for (const acc of a.accelerations || []) {
        ctx.fillStyle = COLOURS.acceleration;
        ctx.fillRect(x(Date.parse(acc.start)), 0, Math.max(2, x(Date.parse(acc.end)) - x(Date.parse(acc.start))), 5);
        marks.accelerations += 1;
      }
      for (const dec of a.decelerations || []) {
        const x0 = x(Date.parse(dec.start));
        ctx.fillStyle = COLOURS.deceleration;
        ctx.fillRect(x0, fhrH - 5, Math.max(2, x(Date.parse(dec.end)) - x0), 5);
        ctx.fillText(dec.prolonged ? "P" : (dec.kind || "?").charAt(0).toUpperCase(), x0 + 2, fhrH - 8);
        marks.decelerations += 1;
      }
      if (a.baseline_bpm != null) {
        const y = yF(a.baseline_bpm) + 0.5;
        ctx.strokeStyle = COLOURS.text;
        ctx.setLineDash([4, 4]);
        ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(width, y); ctx.stroke();
        ctx.setLineDash([]);
      }
    }

    // The traces: a gap in the samples is a gap in the line.
    const segments = {};
    const trace = (metric, y) => {
      const points = this.series[metric].filter((p) => p.t >= from - GAP_MS && p.t <= to);
      ctx.strokeStyle = COLOURS[metric];
      ctx.lineWidth = metric === "fetal_heart_rate" ? 1.6 : 1.2;
      ctx.beginPath();
      let last = null;
      let count = 0;
      for (const p of points) {
        if (last === null || p.t - last > GAP_MS) { ctx.moveTo(x(p.t), y(p.v)); count += 1; } else ctx.lineTo(x(p.t), y(p.v));
        last = p.t;
      }
      ctx.stroke();
      segments[metric] = count;
      return points.length;
    };
    const drawn = trace("heart_rate", yF) + trace("fetal_heart_rate", yF) + trace("uterine_activity", yU);

    // Notes: a blue dashed line through both panels at the note's time, its text on a flag.
    let notesDrawn = 0;
    ctx.font = "12px system-ui, sans-serif";
    for (const note of [...this.notes.values()].sort((p, q) => Date.parse(p.at) - Date.parse(q.at))) {
      const t = Date.parse(note.at);
      if (t < from || t > to) continue;
      const nx = Math.round(x(t)) + 0.5;
      ctx.strokeStyle = COLOURS.note;
      ctx.lineWidth = 1.5;
      ctx.setLineDash([5, 3]);
      ctx.beginPath(); ctx.moveTo(nx, 0); ctx.lineTo(nx, height); ctx.stroke();
      ctx.setLineDash([]);
      const label = note.text.length > 28 ? `${note.text.slice(0, 27)}…` : note.text;
      const w = Math.min(ctx.measureText(label).width + 8, width);
      const lx = Math.min(Math.max(0, nx + 2), width - w);
      const ly = 8 + (notesDrawn % 3) * 18;
      ctx.fillStyle = COLOURS.note;
      ctx.fillRect(lx, ly, w, 16);
      ctx.fillStyle = "#000";
      ctx.fillText(label, lx + 4, ly + 12);
      notesDrawn += 1;
    }
    Object.assign(canvas.dataset, {
      notes: String(notesDrawn),
      from: new Date(from).toISOString(), to: new Date(to).toISOString(), speed: String(this.speed),
      points: String(drawn), fhrSegments: String(segments.fetal_heart_rate || 0),
      accelerations: String(marks.accelerations), decelerations: String(marks.decelerations),
    });
  }

  savePng() {
    const { from } = this.window();
    this.dom.canvas.toBlob((blob) => {
      if (!blob) return;
      const link = el("a", { href: URL.createObjectURL(blob), download: `ctg-patient-${this.patientId}-${new Date(from).toISOString().slice(0, 16).replace(":", "")}.png` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    }, "image/png");
  }
}
