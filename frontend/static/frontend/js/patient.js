// The patient view: identity, device, current values (live), alarm limits, active and past
// alarms, and a history chart over a chosen range from the REST history (aggregated buckets).

import { accessCard } from "./access.js";
import { NotesList } from "./notes.js";
import { CtgStrip } from "./strip.js";
import { api, resultsOf } from "./api.js";
import { alarmSound } from "./audio.js";
import { drawHistory } from "./chart.js";
import { LiveView } from "./socket.js";
import { fitCanvas } from "./trend.js";
import { fetchAllRows, idOf, normaliseAlert } from "./ward.js";
import {
  PRIORITY_LABEL,
  PRIORITY_MARK,
  dateTime,
  el,
  humanKind,
  parseTime,
  setText,
  toLocalInput,
} from "./util.js";

const RANGES = [
  { key: "1h", label: "Last hour", ms: 3600e3 },
  { key: "12h", label: "12 hours", ms: 12 * 3600e3 },
  { key: "24h", label: "24 hours", ms: 24 * 3600e3 },
];
const TARGET_BUCKETS = 360;
const METRIC_STYLE = {
  heart_rate: { title: "Heart rate", color: "#4ade80", band: "rgba(74,222,128,0.22)" },
  fetal_heart_rate: { title: "Fetal heart rate", color: "#c4b5fd", band: "rgba(196,181,253,0.22)" },
};

/** Bucket seconds for a range: about TARGET_BUCKETS points, never under 5 s. */
export function bucketFor(rangeMs) {
  const raw = rangeMs / 1000 / TARGET_BUCKETS;
  const nice = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
  return nice.find((s) => s >= raw) || 3600;
}

const BANDS = [
  ["brady_high", "high", "≤"],
  ["brady_medium", "medium", "≤"],
  ["brady_low", "low", "≤"],
  ["tachy_low", "low", "≥"],
  ["tachy_medium", "medium", "≥"],
  ["tachy_high", "high", "≥"],
];
const LIMIT_COLOR = { high: "rgba(255,59,48,0.75)", medium: "rgba(255,214,10,0.7)", low: "rgba(34,211,238,0.7)" };

/** Alarm limits as [{metric, source, bands: {brady_high: 60, ...}, holds}]. */
export function limitsList(data) {
  if (!data) return [];
  const rows = Array.isArray(data) ? data : Array.isArray(data.limits) ? data.limits : resultsOf(data);
  return rows.map((r) => ({
    metric: r.metric,
    source: r.source || "",
    bands: Object.fromEntries(BANDS.map(([key]) => [key, num(r[key])])),
    holds: { high: r.hold_high_seconds, medium: r.hold_medium_seconds, low: r.hold_low_seconds },
  }));
}

function describeError(err) {
  const parts = [];
  const walk = (value) => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === "object") Object.values(value).forEach(walk);
    else if (value !== null && value !== undefined) parts.push(String(value));
  };
  walk(err.details);
  return [err.message, ...new Set(parts)].join(" ");
}

function num(v) {
  const n = Number(v);
  return v === null || v === undefined || Number.isNaN(n) ? null : n;
}

export class PatientView extends LiveView {
  constructor({ root, socket, patientId, ui }) {
    super({ root, socket, ui }, { patient: patientId });
    this.patientId = patientId;
    this.range = { key: "1h", from: Date.now() - 3600e3, to: Date.now() };
    this.live = {};
    this.limits = [];
    this.alerts = [];
    this._resize = new ResizeObserver(() => this.drawChart());
  }

  async mount() {
    const p = await api.get(`/api/patients/${this.patientId}/`);
    if (this.destroyed) return;
    this.patient = p;
    let ward = null;
    if (p.ward) ward = await api.get(`/api/wards/${idOf(p.ward)}/`).catch(() => null);
    this.ui.crumbs([
      { text: "Wards", href: "#/" },
      ward ? { text: ward.name, href: `#/ward/${ward.id}` } : null,
      { text: p.name },
    ].filter(Boolean));

    const d = (this.dom = {});
    d.values = {};
    const valueBlocks = ["heart_rate", ...(p.monitoring_profile === "obstetric" ? ["fetal_heart_rate"] : [])].map((m) => {
      d.values[m] = el("span", { class: "value" }, "--");
      return el("div", { class: `vital vital-${m}` }, el("span", { class: "vital-label" }, METRIC_STYLE[m].title), d.values[m], el("span", { class: "vital-unit" }, "bpm"));
    });
    d.device = el("dl", { class: "facts" }, el("dt", {}, "Device"), el("dd", {}, "Loading…"));
    d.limits = el("div", {}, el("p", { class: "muted" }, "Loading…"));
    d.activeAlerts = el("ol", { class: "alert-list" });
    d.pastAlerts = el("ol", { class: "alert-list past" });
    d.canvas = el("canvas", { class: "history", role: "img", "aria-label": "Heart-rate history chart" });
    d.chartNote = el("p", { class: "chart-note", "aria-live": "polite" });
    d.from = el("input", { type: "datetime-local", id: "range-from", "aria-label": "From" });
    d.to = el("input", { type: "datetime-local", id: "range-to", "aria-label": "To" });
    d.rangeButtons = RANGES.map((r) =>
      el("button", { type: "button", class: "btn btn-range", dataset: { range: r.key }, "aria-pressed": String(r.key === this.range.key), onclick: () => this.setRange(r.key) }, r.label),
    );
    const custom = el(
      "form",
      { class: "custom-range" },
      el("span", { class: "muted" }, "Custom:"),
      d.from,
      d.to,
      el("button", { type: "submit", class: "btn btn-range", dataset: { range: "custom" } }, "Show"),
    );
    custom.addEventListener("submit", (e) => {
      e.preventDefault();
      const from = Date.parse(d.from.value);
      const to = Date.parse(d.to.value);
      if (!(from < to)) {
        setText(d.chartNote, "Choose a start before the end.");
        return;
      }
      this.setRange("custom", from, to);
    });

    const facts = [
      ["MRN", p.mrn],
      ["Date of birth", p.date_of_birth || "—"],
      ["Sex", { F: "Female", M: "Male", O: "Other" }[p.sex] || p.sex || "—"],
      ["Monitoring", p.monitoring_profile === "obstetric" ? "Obstetric (maternal + fetal)" : "Adult"],
      ["Ward", ward ? ward.name : "—"],
      ["Bed", p.bed || "—"],
    ];
    // Obstetric patients get the CTG strip (strip.js).
    this.strip = p.monitoring_profile === "obstetric" ? new CtgStrip({ patientId: this.patientId }) : null;
    this.notesList = new NotesList({ patientId: this.patientId });
    if (this.strip) this.strip.onNote = (note) => this.notesList.setNote(note);
    this.root.replaceChildren(
      el(
        "div",
        { class: "patient-layout" },
        el(
          "section",
          { class: "card identity", "aria-labelledby": "patient-name" },
          el("h1", { id: "patient-name" }, p.name),
          el("dl", { class: "facts" }, facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", k === "Bed" ? { id: "patient-bed" } : {}, String(v))])),
          el("div", { class: "vitals big" }, valueBlocks),
        ),
        el("section", { class: "card", "aria-labelledby": "device-h" }, el("h2", { id: "device-h" }, "Device"), d.device),
        el("section", { class: "card", "aria-labelledby": "limits-h" }, el("h2", { id: "limits-h" }, "Alarm limits"), d.limits),
        el(
          "section",
          { class: "card wide", "aria-labelledby": "history-h" },
          el("div", { class: "chart-head" }, el("h2", { id: "history-h" }, "History"), el("div", { class: "range-picker", role: "group", "aria-label": "Range" }, d.rangeButtons, custom)),
          el("div", { class: "legend" }, Object.entries(METRIC_STYLE).map(([m, s]) => el("span", { class: `legend-item legend-${m}` }, s.title))),
          el("div", { class: "history-wrap" }, d.canvas),
          d.chartNote,
          this.notesList.node,
        ),
        this.strip ? this.strip.node : null,
        el("section", { class: "card card-active", "aria-labelledby": "active-h" }, el("h2", { id: "active-h" }, "Active alarms"), d.activeAlerts),
        el("section", { class: "card", "aria-labelledby": "past-h" }, el("h2", { id: "past-h" }, "Past alarms"), d.pastAlerts),
        accessCard(this.patientId),
      ),
    );
    this._resize.observe(d.canvas);
    this.listen();
    this.loadLimits();
    this.loadAlerts();
    this.loadDevice();
    this.setRange("1h");
    if (this.strip) this.strip.load();
  }

  destroy() {
    this.leave();
    if (this.strip) this.strip.destroy();
    this.notesList.destroy();
    alarmSound.setActive(false);
    this._resize.disconnect();
  }

  handle(msg) {
    if (this.destroyed) return;
    if (msg.type === "snapshot" && Number(msg.patient) === this.patientId) {
      const p = (msg.patients || []).find((x) => Number(x.id) === this.patientId);
      if (!p) return;
      if (p.device !== undefined) this.showDevice(p.device);
      for (const [m, r] of Object.entries(p.latest || {})) if (r) this.setValue(m, r.bpm);
    } else if (msg.type === "readings") {
      for (const item of msg.items || []) {
        if (Number(idOf(item.patient)) !== this.patientId) continue;
        this.setValue(item.metric, item.value ?? item.bpm);
        if (this.strip) this.strip.addReading(item);
      }
    } else if (msg.type === "ctg" && Number(idOf(msg.patient)) === this.patientId) {
      if (this.strip) this.strip.classified();
    } else if (msg.type === "alert" && msg.alert && Number(idOf(msg.alert.patient)) === this.patientId) {
      const a = normaliseAlert(msg.alert);
      const isNew = !this.alerts.some((x) => x.id === a.id);
      if (isNew && a.state === "active") {
        this.ui.announce(`${PRIORITY_LABEL[a.priority] || ""} priority alarm: ${a.message || humanKind(a.kind)}.`);
        if (a.priority === "high") alarmSound.alarm();
      }
      this.alerts = [a, ...this.alerts.filter((x) => x.id !== a.id)];
      this.renderAlerts();
    } else if (msg.type === "note" && msg.note && Number(msg.patient) === this.patientId) {
      if (this.strip) this.strip.setNote(msg.note);
      this.notesList.setNote(msg.note);
    } else if (msg.type === "patient" && Number(msg.patient) === this.patientId) {
      // Admitted, moved, updated or discharged (REST, admin or the ADT feed): the identity
      // card follows; the crumbs and ward name are read again on the next visit.
      const p = msg.entry;
      if (p) {
        setText(this.root.querySelector("#patient-name"), p.name);
        const bed = this.root.querySelector("#patient-bed");
        if (bed) setText(bed, p.bed || "—");
      }
      const said = { admitted: "was admitted", moved: "was moved", updated: "was updated", discharged: "was discharged" };
      this.ui.announce(`${(p && p.name) || this.patient.name} ${said[msg.action] || msg.action}.`);
    } else if (msg.type === "error" && msg.error) {
      this.ui.error(msg.error, msg);
    }
  }

  setValue(metric, bpm) {
    if (this.dom.values[metric]) setText(this.dom.values[metric], String(Math.round(bpm)));
  }

  async loadDevice() {
    try {
      const devices = resultsOf(await api.get(`/api/devices/?patient=${this.patientId}`)).filter((d) => Number(idOf(d.patient)) === this.patientId);
      if (devices.length) this.showDevice({ ...devices[0], ...(this.device || {}) });
      else if (!this.device) this.showDevice(null);
    } catch {
      if (!this.device) this.showDevice(null);
    }
  }

  showDevice(dev) {
    if (this.destroyed) return;
    this.device = dev ? { ...(this.device || {}), ...dev } : null;
    const d = this.device;
    if (!d) {
      this.dom.device.replaceChildren(el("dt", {}, "Device"), el("dd", {}, "No device assigned"));
      return;
    }
    const online = d.is_active === false ? "inactive" : d.online === undefined ? "—" : d.online ? "online" : "offline";
    const rows = [
      ["Serial", d.serial],
      ["Model", d.model || "—"],
      ["State", online],
      ["Last seen", dateTime(parseTime(d.last_seen_at))],
    ];
    this.dom.device.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { dataset: k === "State" ? { state: online } : {} }, String(v ?? "—"))]));
  }

  async loadLimits() {
    try {
      this.limitsData = await api.get(`/api/patients/${this.patientId}/alarm-limits/`);
      this.limits = limitsList(this.limitsData);
      this.renderLimits(false);
      this.drawChart();
    } catch (err) {
      this.dom.limits.replaceChildren(el("p", { class: "muted" }, `Unavailable: ${err.message}`));
    }
  }

  /** The limits table; in edit mode every band is a number input (empty = band off). */
  renderLimits(editing, error = "") {
    const head = el(
      "tr",
      {},
      el("th", { scope: "col" }, "Metric"),
      BANDS.map(([, prio, op]) => el("th", { scope: "col", class: `limit-${prio}` }, `${PRIORITY_LABEL[prio]} ${op}`)),
    );
    const inputs = [];
    const rows = this.limits.map((l) => {
      const title = (METRIC_STYLE[l.metric] || { title: l.metric }).title;
      return el(
        "tr",
        { dataset: { metric: l.metric } },
        el("th", { scope: "row" }, title, l.source ? el("span", { class: "muted small" }, ` (${l.source})`) : null),
        BANDS.map(([key, prio, op]) => {
          if (!editing) return el("td", { class: `limit-${prio}`, dataset: { band: key } }, l.bands[key] ?? "off");
          const input = el("input", {
            type: "number",
            min: "0",
            max: "300",
            class: "limit-input",
            value: l.bands[key] ?? "",
            placeholder: "off",
            dataset: { metric: l.metric, band: key },
            "aria-label": `${title}: ${PRIORITY_LABEL[prio]} priority when ${op} (bpm)`,
          });
          inputs.push(input);
          return el("td", { class: `limit-${prio}` }, input);
        }),
      );
    });
    const h = this.limits[0] && this.limits[0].holds;
    const holds = h
      ? el("p", { class: "muted small" }, `Rates in bpm. A condition must last ${h.high ?? "?"} s (high), ${h.medium ?? "?"} s (medium), ${h.low ?? "?"} s (low) before it alarms.`)
      : null;
    const table = rows.length
      ? el("table", { class: "limits" }, el("thead", {}, head), el("tbody", {}, rows))
      : el("p", { class: "muted" }, "No alarm limits.");
    const errorBox = el("p", { class: "form-error", role: "alert", id: "limits-error" }, error);
    let actions;
    if (editing) {
      const save = el("button", { type: "submit", class: "btn btn-primary", id: "limits-save" }, "Save limits");
      const cancel = el("button", { type: "button", class: "btn", onclick: () => this.renderLimits(false) }, "Cancel");
      const reset = el("button", { type: "button", class: "btn", id: "limits-reset", onclick: () => this.resetLimits() }, "Profile defaults");
      actions = el("div", { class: "limit-actions" }, save, cancel, reset);
      const form = el("form", { class: "limits-form" }, table, errorBox, actions);
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        this.saveLimits(inputs);
      });
      this.dom.limits.replaceChildren(form, holds);
      inputs[0]?.focus();
    } else {
      const edit = el("button", { type: "button", class: "btn", id: "limits-edit", onclick: () => this.renderLimits(true) }, "Edit limits");
      this.dom.limits.replaceChildren(table, holds, errorBox, el("div", { class: "limit-actions" }, edit));
    }
  }

  async saveLimits(inputs) {
    const byMetric = {};
    for (const input of inputs) {
      const { metric, band } = input.dataset;
      byMetric[metric] ||= { metric };
      byMetric[metric][band] = input.value === "" ? null : Number(input.value);
    }
    try {
      this.limitsData = await api.put(`/api/patients/${this.patientId}/alarm-limits/`, { limits: Object.values(byMetric) });
      this.limits = limitsList(this.limitsData);
      this.renderLimits(false);
      this.drawChart();
      this.ui.announce("Alarm limits saved.");
    } catch (err) {
      this.renderLimits(true, describeError(err));
      // Keep what the user typed: put the values back into the fresh inputs.
      for (const input of this.dom.limits.querySelectorAll(".limit-input")) {
        const typed = inputs.find((i) => i.dataset.metric === input.dataset.metric && i.dataset.band === input.dataset.band);
        if (typed) input.value = typed.value;
      }
    }
  }

  async resetLimits() {
    try {
      await api.delete(`/api/patients/${this.patientId}/alarm-limits/`);
      await this.loadLimits();
      this.ui.announce("Alarm limits back to the profile defaults.");
    } catch (err) {
      this.renderLimits(true, describeError(err));
    }
  }

  async loadAlerts() {
    try {
      const rows = await fetchAllRows(`/api/alerts/?patient=${this.patientId}&ordering=-raised_at`, 4);
      this.alerts = rows.map(normaliseAlert);
    } catch (err) {
      this.alerts = [];
      this.dom.pastAlerts.replaceChildren(el("li", { class: "alert-none" }, `Unavailable: ${err.message}`));
    }
    this.renderAlerts();
  }

  renderAlerts() {
    const item = (a) =>
      el(
        "li",
        { class: "alert-item", dataset: { alert: String(a.id), priority: a.priority, state: a.state } },
        el("span", { class: "alert-mark", "aria-hidden": "true" }, PRIORITY_MARK[a.priority] || "!"),
        el(
          "div",
          { class: "alert-body" },
          el("div", { class: "alert-line" }, el("strong", { class: "alert-prio" }, PRIORITY_LABEL[a.priority] || a.priority), " ", el("span", { class: "alert-state" }, a.state)),
          el("div", { class: "alert-msg" }, a.message || humanKind(a.kind)),
          el("div", { class: "alert-time" }, `Raised ${dateTime(parseTime(a.raised_at))}`,
            a.acknowledged_at ? ` · acknowledged ${dateTime(parseTime(a.acknowledged_at))}` : "",
            a.resolved_at ? ` · resolved ${dateTime(parseTime(a.resolved_at))}` : ""),
        ),
        a.state === "active"
          ? el("button", { type: "button", class: "btn btn-ack", dataset: { alert: String(a.id) }, onclick: () => this.acknowledge(a.id) }, "Acknowledge")
          : null,
      );
    const open = this.alerts.filter((a) => a.state !== "resolved");
    // This patient's unacknowledged high alarm keeps sounding here too.
    alarmSound.setActive(open.some((a) => a.state === "active" && a.priority === "high"));
    const past = this.alerts.filter((a) => a.state === "resolved");
    this.dom.activeAlerts.replaceChildren(...(open.length ? open.map(item) : [el("li", { class: "alert-none" }, "No active alarms.")]));
    this.dom.pastAlerts.replaceChildren(...(past.length ? past.map(item) : [el("li", { class: "alert-none" }, "No past alarms.")]));
    this.drawChart();
  }

  async acknowledge(id) {
    try {
      const a = await api.post(`/api/alerts/${id}/acknowledge/`, {});
      if (a && a.id) {
        const n = normaliseAlert(a);
        this.alerts = this.alerts.map((x) => (x.id === n.id ? n : x));
        this.renderAlerts();
      }
    } catch (err) {
      this.ui.error({ code: err.code, message: `Could not acknowledge: ${err.message}` });
    }
  }

  setRange(key, from = null, to = null) {
    const now = Date.now();
    if (key !== "custom") {
      const r = RANGES.find((x) => x.key === key);
      from = now - r.ms;
      to = now;
    }
    this.range = { key, from, to };
    this.dom.from.value = toLocalInput(from);
    this.dom.to.value = toLocalInput(to);
    for (const b of this.dom.rangeButtons) b.setAttribute("aria-pressed", String(b.dataset.range === key));
    this.loadHistory();
    this.notesList.load(from, to);
  }

  async loadHistory() {
    const { from, to } = this.range;
    const bucket = bucketFor(to - from);
    const token = (this._historyToken = Symbol("history"));
    setText(this.dom.chartNote, "Loading history…");
    const url = `/api/records/${this.patientId}/?bucket=${bucket}&from=${encodeURIComponent(new Date(from).toISOString())}&to=${encodeURIComponent(new Date(to).toISOString())}`;
    try {
      const rows = await fetchAllRows(url);
      if (token !== this._historyToken || this.destroyed) return;
      const byMetric = {};
      for (const r of rows) {
        const t0 = parseTime(r.bucket_start ?? r.recorded_at);
        const p = r.bucket_start
          ? { t: t0 + (bucket * 1000) / 2, min: Number(r.min), max: Number(r.max), mean: Number(r.mean), count: r.count }
          : { t: t0, min: r.bpm, max: r.bpm, mean: r.bpm, count: 1 };
        (byMetric[r.metric] ||= []).push(p);
      }
      for (const pts of Object.values(byMetric)) pts.sort((a, b) => a.t - b.t);
      this.history = { byMetric, bucket, from, to };
      const n = Object.values(byMetric).reduce((s, pts) => s + pts.length, 0);
      setText(this.dom.chartNote, n ? `${dateTime(from)} – ${dateTime(to)} · ${bucket} s buckets: band = min to max, line = mean.` : "No readings in this range.");
      this.root.dataset.historyPoints = String(n);
      this.drawChart();
    } catch (err) {
      if (token !== this._historyToken) return;
      setText(this.dom.chartNote, `History unavailable: ${err.message}`);
    }
  }

  drawChart() {
    if (!this.dom || !this.history || this.destroyed) return;
    const canvas = this.dom.canvas;
    const box = canvas.getBoundingClientRect();
    const { dpr } = fitCanvas(canvas, box.width, box.height);
    const { byMetric, from, to, bucket } = this.history;
    const series = Object.entries(byMetric)
      .filter(([m]) => METRIC_STYLE[m])
      .map(([m, points]) => ({ color: METRIC_STYLE[m].color, band: METRIC_STYLE[m].band, points }));
    const limits = [];
    const shown = new Set(series.length ? Object.keys(byMetric) : []);
    for (const l of this.limits) {
      if (!shown.has(l.metric)) continue;
      const short = l.metric === "fetal_heart_rate" ? "FHR" : "HR";
      for (const [key, prio, op] of BANDS) {
        if (l.bands[key] !== null) limits.push({ value: l.bands[key], color: LIMIT_COLOR[prio], label: `${short} ${op} ${l.bands[key]} (${prio})` });
      }
    }
    const alerts = this.alerts.map((a) => ({ t: parseTime(a.raised_at), priority: a.priority }));
    drawHistory(canvas, { from, to, dpr, series, limits, alerts, bucketMs: bucket * 1000 });
  }
}
