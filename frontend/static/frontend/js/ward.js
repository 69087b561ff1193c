// The ward view: one tile per bed, live over the dashboard WebSocket, plus the ward's alarm
// list. Incoming frames only change state and mark tiles dirty; the DOM and the canvases are
// updated once per animation frame.

import { api, resultsOf } from "./api.js";
import { alarmSound } from "./audio.js";
import { LiveView } from "./socket.js";
import { Series, drawTrend, fitCanvas } from "./trend.js";
import {
  PRIORITY_LABEL,
  PRIORITY_MARK,
  PRIORITY_RANK,
  ago,
  clockTime,
  el,
  humanKind,
  shortKind,
  parseTime,
  setAttr,
  setText,
} from "./util.js";

const TREND_WINDOW_MS = 10 * 60 * 1000;
const RING_CAPACITY = 10 * 60 * 8; // ten minutes at up to 8 Hz per metric
const STALE_MS = 30_000; // a value older than this is shown as "no signal"
const BACKFILL_BUCKET_S = 5;
// pulse_rate: an oximeter's pulse, shown beside (never as) the ECG heart rate, once one came.
const METRICS = ["heart_rate", "pulse_rate", "fetal_heart_rate"];
const METRIC_LABEL = { heart_rate: "HR", pulse_rate: "PR", fetal_heart_rate: "FHR" };
const METRIC_TITLE = { heart_rate: "Heart rate", pulse_rate: "Pulse rate (oximeter)", fetal_heart_rate: "Fetal heart rate" };
const METRIC_COLOR = { heart_rate: "#4ade80", pulse_rate: "#38bdf8", fetal_heart_rate: "#c4b5fd" };
// The latest CTG classification (FIGO 2015) on an obstetric tile: told by its word, not by
// its colour alone.
const CTG_LABEL = {
  normal: "Normal",
  suspicious: "Suspicious",
  pathological: "Pathological",
  insufficient_signal: "Insufficient",
};
const CTG_TITLE = {
  normal: "normal",
  suspicious: "suspicious",
  pathological: "pathological",
  insufficient_signal: "insufficient signal",
};

/** The newer of two classifications ("at": when it was computed; null: none yet). */
export function newerCtg(current, next) {
  if (!next) return current || null;
  if (!current) return next;
  return parseTime(next.at) >= parseTime(current.at) ? next : current;
}

/** The tooltip of a tile's CTG badge: what, since when, the baseline, and the reasons. */
export function ctgTitle(ctg) {
  const lines = [`CTG ${CTG_TITLE[ctg.classification] || ctg.classification} (FIGO 2015) since ${clockTime(parseTime(ctg.since))}`];
  if (ctg.baseline_bpm !== null && ctg.baseline_bpm !== undefined) lines.push(`Baseline ${ctg.baseline_bpm} bpm`);
  for (const reason of ctg.reasons || []) lines.push(`• ${reason}`);
  return lines.join("\n");
}

export function idOf(value) {
  return value && typeof value === "object" ? value.id : value;
}

export function normaliseAlert(alert) {
  return { ...alert, patient: idOf(alert.patient), device: idOf(alert.device) };
}

/** The alert shown on a tile: unacknowledged first, then by priority, then newest. */
export function topAlert(alerts) {
  let best = null;
  for (const a of alerts) {
    if (a.state === "resolved") continue;
    if (!best) {
      best = a;
      continue;
    }
    const ka = [a.state === "active" ? 1 : 0, PRIORITY_RANK[a.priority] || 0, parseTime(a.raised_at)];
    const kb = [best.state === "active" ? 1 : 0, PRIORITY_RANK[best.priority] || 0, parseTime(best.raised_at)];
    if (ka[0] > kb[0] || (ka[0] === kb[0] && (ka[1] > kb[1] || (ka[1] === kb[1] && ka[2] > kb[2])))) {
      best = a;
    }
  }
  return best;
}

class Tile {
  constructor(view, patient) {
    this.view = view;
    this.id = patient.id;
    this.patient = {};
    this.device = null;
    this.latest = {};
    this.alerts = new Map();
    this.ctg = null;
    this.series = { heart_rate: new Series(RING_CAPACITY), pulse_rate: new Series(RING_CAPACITY), fetal_heart_rate: new Series(RING_CAPACITY) };
    this.size = null;
    this.dirtyText = true;
    this.dirtyTrend = true;
    this._build();
    this.update(patient);
  }

  _build() {
    const titleId = `tile-${this.id}-title`;
    this.dom = {};
    const d = this.dom;
    d.bed = el("span", { class: "bed" });
    d.name = el("a", { class: "name", href: `#/patient/${this.id}`, id: titleId });
    d.profile = el("span", { class: "profile" });
    d.mark = el("span", { class: "alarm-mark", "aria-hidden": "true" });
    d.prio = el("span", { class: "alarm-prio" });
    d.msg = el("span", { class: "alarm-msg" });
    d.ack = el(
      "button",
      { type: "button", class: "btn btn-ack", hidden: true },
      el("span", { class: "ack-long" }, "Acknowledge"),
      el("span", { class: "ack-short", "aria-hidden": "true" }, "Ack"),
    );
    d.ack.addEventListener("click", (event) => {
      event.stopPropagation();
      if (d.ack.dataset.alert) this.view.acknowledge(Number(d.ack.dataset.alert));
    });
    d.band = el("div", { class: "alarm-band" }, d.mark, d.prio, d.msg, d.ack);
    d.values = {};
    d.vitals = {};
    const vitals = el("div", { class: "vitals" });
    for (const metric of METRICS) {
      const value = el("span", { class: "value", text: "--" });
      const block = el(
        "div",
        { class: `vital vital-${metric}`, role: "group", title: METRIC_TITLE[metric] },
        el("span", { class: "vital-label" }, METRIC_LABEL[metric]),
        value,
        el("span", { class: "vital-unit" }, "bpm"),
      );
      d.values[metric] = value;
      d.vitals[metric] = block;
      vitals.append(block);
    }
    d.ctgValue = el("span", { class: "ctg-value" });
    d.ctgBaseline = el("span", { class: "ctg-baseline" });
    d.ctgReason = el("span", { class: "ctg-reason" });
    d.ctg = el(
      "div",
      { class: "ctg-badge", role: "group", hidden: true, dataset: { ctg: "none" } },
      el("span", { class: "ctg-label" }, "CTG"),
      d.ctgValue,
      d.ctgBaseline,
      d.ctgReason,
    );
    d.canvas = el("canvas", { class: "trend", "aria-hidden": "true", dataset: { patient: String(this.id) } });
    d.trendWrap = el("div", { class: "trend-wrap" }, d.canvas, el("span", { class: "trend-caption", "aria-hidden": "true" }, "10 min"));
    d.deviceDot = el("span", { class: "dev-dot", "aria-hidden": "true" });
    d.deviceText = el("span", { class: "dev-text" });
    d.device = el("div", { class: "device" }, d.deviceDot, d.deviceText);
    d.root = el(
      "article",
      {
        class: "tile",
        tabindex: "0",
        "aria-labelledby": titleId,
        dataset: { patient: String(this.id), alarm: "none" },
      },
      el("header", { class: "tile-head" }, d.bed, d.name, d.profile),
      d.band,
      vitals,
      d.ctg,
      d.trendWrap,
      d.device,
    );
    d.root.addEventListener("keydown", (event) => {
      if (event.target !== d.root) return;
      if (event.key === "Enter") location.hash = `#/patient/${this.id}`;
      if ((event.key === "a" || event.key === "A") && !d.ack.hidden) d.ack.click();
    });
  }

  update(patient) {
    this.patient = { ...this.patient, ...patient };
    if (patient.device !== undefined) this.device = patient.device ? { ...patient.device } : null;
    if (patient.latest) {
      for (const metric of METRICS) {
        const r = patient.latest[metric];
        if (r && r.bpm !== undefined && r.bpm !== null) this.addReading(metric, r.bpm, parseTime(r.recorded_at));
      }
    }
    if (patient.ctg !== undefined) this.ctg = patient.ctg ? { ...patient.ctg } : null;
    if (Array.isArray(patient.alerts)) {
      this.alerts.clear();
      for (const a of patient.alerts) if (a.state !== "resolved") this.alerts.set(a.id, normaliseAlert(a));
    }
    this.dirtyText = true;
    this.dirtyTrend = true;
  }

  get obstetric() {
    return this.patient.monitoring_profile === "obstetric";
  }

  addReading(metric, bpm, t) {
    if (!Number.isFinite(t) || !this.series[metric]) return;
    const cur = this.latest[metric];
    if (!cur || t >= cur.t) this.latest[metric] = { bpm, t };
    this.series[metric].live.push(t, bpm);
    this.dirtyText = true;
    this.dirtyTrend = true;
  }

  setCtg(ctg) {
    this.ctg = newerCtg(this.ctg, ctg);
    this.dirtyText = true;
  }

  setAlert(alert) {
    if (alert.state === "resolved") this.alerts.delete(alert.id);
    else this.alerts.set(alert.id, alert);
    this.dirtyText = true;
  }

  /** Write state into the DOM (called inside requestAnimationFrame only). */
  render(now) {
    const d = this.dom;
    const p = this.patient;
    setText(d.bed, p.bed ? `Bed ${p.bed}` : "No bed");
    setText(d.name, p.name || `Patient ${this.id}`);
    setText(d.profile, this.obstetric ? "Obstetric" : "Adult");
    setAttr(d.root, "data-profile", this.obstetric ? "obstetric" : "adult");
    d.vitals.fetal_heart_rate.hidden = !this.obstetric;
    d.vitals.pulse_rate.hidden = !this.latest.pulse_rate;

    for (const metric of METRICS) {
      const latest = this.latest[metric];
      const stale = !latest || now - latest.t > STALE_MS;
      setText(d.values[metric], latest ? String(Math.round(latest.bpm)) : "--");
      d.vitals[metric].classList.toggle("stale", stale);
      setAttr(d.vitals[metric], "aria-label", latest
        ? `${METRIC_TITLE[metric]} ${Math.round(latest.bpm)} beats per minute${stale ? ", no recent signal" : ""}`
        : `${METRIC_TITLE[metric]}: no reading`);
    }

    this.renderCtg(now);

    const dev = this.device;
    let devState = "none";
    let devText = "No device assigned";
    if (dev) {
      const lastSeen = parseTime(dev.last_seen_at);
      if (dev.is_active === false) {
        devState = "inactive";
        devText = `${dev.serial} · inactive`;
      } else if (dev.online) {
        devState = "online";
        devText = `${dev.serial} · online`;
      } else {
        devState = "offline";
        devText = `${dev.serial} · offline · last seen ${ago(lastSeen, now)}`;
      }
    }
    setText(d.deviceText, devText);
    setAttr(d.device, "data-state", devState);

    const top = topAlert(this.alerts.values());
    if (top) {
      setAttr(d.root, "data-alarm", top.priority);
      setAttr(d.root, "data-alarm-state", top.state);
      setText(d.mark, PRIORITY_MARK[top.priority] || "!");
      setText(d.prio, `${PRIORITY_LABEL[top.priority] || top.priority}${top.state === "acknowledged" ? " · ACK" : ""}`);
      const more = this.alerts.size > 1 ? ` (+${this.alerts.size - 1})` : "";
      setText(d.msg, `${shortKind(top.kind)}${more}`);
      setAttr(d.msg, "title", top.message || shortKind(top.kind));
      d.ack.hidden = top.state !== "active";
      d.ack.dataset.alert = String(top.id);
      setAttr(d.ack, "aria-label", `Acknowledge ${PRIORITY_LABEL[top.priority] || ""} alarm for ${p.name || "patient"}, bed ${p.bed || "none"}`);
    } else {
      setAttr(d.root, "data-alarm", "none");
      setAttr(d.root, "data-alarm-state", null);
      setText(d.mark, "");
      setText(d.prio, "");
      setText(d.msg, "No active alarm");
      d.ack.hidden = true;
    }
    this.dirtyText = false;
  }

  renderCtg(now) {
    const d = this.dom;
    const ctg = this.ctg;
    d.ctg.hidden = !this.obstetric;
    if (!this.obstetric) return;
    const fhr = this.latest.fetal_heart_rate;
    // Without a recent fetal heart rate the classification is not current: dimmed.
    d.ctg.classList.toggle("stale", !fhr || now - fhr.t > STALE_MS);
    if (!ctg) {
      setAttr(d.ctg, "data-ctg", "none");
      setText(d.ctgValue, "--");
      setText(d.ctgBaseline, "");
      setText(d.ctgReason, "");
      setAttr(d.ctg, "title", "CTG: no classification yet");
      setAttr(d.ctg, "aria-label", "CTG: no classification yet");
      return;
    }
    const title = ctgTitle(ctg);
    setAttr(d.ctg, "data-ctg", ctg.classification);
    setText(d.ctgValue, CTG_LABEL[ctg.classification] || ctg.classification);
    setText(d.ctgBaseline, ctg.baseline_bpm === null || ctg.baseline_bpm === undefined ? "" : `BL ${ctg.baseline_bpm}`);
    setText(d.ctgReason, (ctg.reasons || [])[0] || "");
    setAttr(d.ctg, "title", title);
    setAttr(d.ctg, "aria-label", title.replaceAll("\n", ". "));
  }

  renderTrend(now) {
    if (!this.size) return;
    const ctx = this.dom.canvas.getContext("2d");
    const series = [{ series: this.series.heart_rate, color: METRIC_COLOR.heart_rate }];
    if (this.obstetric) series.push({ series: this.series.fetal_heart_rate, color: METRIC_COLOR.fetal_heart_rate });
    drawTrend(ctx, this.size.width, this.size.height, {
      now,
      windowMs: TREND_WINDOW_MS,
      min: 30,
      max: 210,
      guides: [60, 120, 160],
      series,
      lineWidth: 1.5 * this.size.dpr,
    });
    this.dirtyTrend = false;
  }
}

export class WardView extends LiveView {
  constructor({ root, socket, wardId, ui }) {
    super({ root, socket, ui }, { ward: wardId });
    this.wardId = wardId;
    this.tiles = new Map();
    this.seenAlerts = new Set();
    this.snapshots = 0;
    this.frame = 0;
    this.alertsDirty = true;
    this._onState = (e) => this._connectionChanged(e.detail);
    this._tick = setInterval(() => this._everySecond(), 1000);
    this._resize = new ResizeObserver((entries) => {
      for (const entry of entries) {
        const tile = this.tiles.get(Number(entry.target.dataset.patient));
        if (!tile) continue;
        const box = entry.contentRect;
        tile.size = fitCanvas(entry.target, box.width, box.height);
        tile.dirtyTrend = true;
      }
      this.schedule();
    });
  }

  async mount() {
    const ward = await api.get(`/api/wards/${this.wardId}/`);
    let placeName = "";
    try {
      placeName = (await api.get(`/api/places/${idOf(ward.place)}/`)).name;
    } catch {
      /* the ward name alone is enough */
    }
    if (this.destroyed) return;
    this.ward = ward;
    this.ui.crumbs([{ text: "Wards", href: "#/" }, { text: `${placeName ? placeName + " · " : ""}${ward.name}` }]);
    this.dom = {
      grid: el("div", { class: "tiles", "aria-label": `Beds of ${ward.name}` }),
      empty: el("p", { class: "empty", hidden: true }, "No patients in this ward."),
      waiting: el("p", { class: "waiting" }, "Connecting to the live feed…"),
      alertList: el("ol", { class: "alert-list" }),
      alertCount: el("span", { class: "count" }),
      wardTitle: el("h1", { class: "ward-title" }, ward.name, placeName ? el("span", { class: "place" }, placeName) : null),
      liveNote: el("span", { class: "live-note" }),
    };
    const d = this.dom;
    d.grid.addEventListener("keydown", (e) => this._navigate(e));
    this.root.replaceChildren(
      el(
        "div",
        { class: "ward-layout" },
        el(
          "section",
          { class: "ward-main", "aria-labelledby": "ward-heading" },
          el("div", { class: "ward-head", id: "ward-heading" }, d.wardTitle, d.liveNote),
          d.waiting,
          d.empty,
          d.grid,
        ),
        el(
          "aside",
          { class: "ward-alerts", "aria-labelledby": "alerts-heading" },
          el("h2", { id: "alerts-heading" }, "Alarms ", d.alertCount),
          d.alertList,
        ),
      ),
    );
    this.socket.addEventListener("state", this._onState);
    this.listen();
    this.schedule();
  }

  destroy() {
    this.leave();
    clearInterval(this._tick);
    cancelAnimationFrame(this.frame);
    this._resize.disconnect();
    this.socket.removeEventListener("state", this._onState);
    alarmSound.setActive(false);
  }

  _connectionChanged({ state }) {
    if (!this.dom) return;
    this.root.querySelector(".ward-layout")?.classList.toggle("not-live", state !== "open");
  }

  handle(msg) {
    if (this.destroyed || !this.dom) return;
    switch (msg.type) {
      case "snapshot":
        if (msg.ward !== undefined && Number(msg.ward) !== this.wardId) return;
        if (msg.ward === undefined && msg.patient !== undefined) return;
        this.applySnapshot(msg);
        break;
      case "readings":
        for (const item of msg.items || []) {
          const tile = this.tiles.get(Number(idOf(item.patient)));
          if (!tile) {
            this._resyncForUnknown(); // admitted or transferred into this ward since the snapshot
            continue;
          }
          const t = parseTime(item.recorded_at);
          tile.addReading(item.metric, item.bpm, t);
          if (tile.device && (!item.device || idOf(item.device) === tile.device.id)) {
            tile.device.online = true;
            if (!(parseTime(tile.device.last_seen_at) >= Date.now() - 1000)) tile.device.last_seen_at = new Date().toISOString();
          }
        }
        break;
      case "alert":
        if (msg.alert) this.applyAlert(normaliseAlert(msg.alert), true);
        break;
      case "device.status":
        this.applyDeviceStatus(msg);
        break;
      case "ctg": {
        const tile = this.tiles.get(Number(msg.patient));
        if (tile && msg.ctg) tile.setCtg(msg.ctg);
        else if (!tile && msg.ward !== undefined && Number(msg.ward) === this.wardId) this._resyncForUnknown();
        break;
      }
      case "patient":
        this.applyPatient(msg);
        break;
      case "error":
        if (msg.patient !== undefined) return; // about another view's subscription
        if (msg.ward !== undefined && Number(msg.ward) !== this.wardId) return;
        this.ui.error(msg.error || {}, msg);
        if (msg.ward !== undefined && msg.error && ["forbidden", "not_found"].includes(msg.error.code)) {
          // Access refused or withdrawn: stop showing data that is no longer live for us.
          this.socket.unsubscribe({ ward: this.wardId });
          this.dom.waiting.hidden = true;
          this.dom.grid.replaceChildren();
          this.tiles.clear();
          this.root.querySelector(".ward-main").prepend(
            el("div", { class: "page-error", role: "alert" }, el("h2", {}, "Cannot show this ward"), el("p", {}, msg.error.message || "Access refused.")),
          );
        }
        break;
      default:
        break;
    }
    this.schedule();
  }

  applySnapshot(msg) {
    this.snapshots += 1;
    const patients = msg.patients || [];
    const ids = new Set(patients.map((p) => Number(p.id)));
    for (const [id, tile] of this.tiles) {
      if (!ids.has(id)) {
        this._resize.unobserve(tile.dom.canvas);
        tile.dom.root.remove();
        this.tiles.delete(id);
      }
    }
    const sorted = [...patients].sort((a, b) => String(a.bed || "~").localeCompare(String(b.bed || "~"), undefined, { numeric: true }));
    const fresh = [];
    for (const p of sorted) {
      const id = Number(p.id);
      let tile = this.tiles.get(id);
      if (tile) tile.update(p);
      else {
        tile = new Tile(this, { ...p, id });
        this.tiles.set(id, tile);
        this._resize.observe(tile.dom.canvas);
      }
      fresh.push(tile.dom.root);
      for (const a of tile.alerts.values()) this.seenAlerts.add(a.id);
    }
    // Keep bed order; appending a node that is already there moves it (no rebuild).
    fresh.forEach((node, i) => {
      if (this.dom.grid.children[i] !== node) this.dom.grid.insertBefore(node, this.dom.grid.children[i] || null);
    });
    // A big ward gets smaller tiles so that a whole ward fits on one central-station screen.
    this.dom.grid.classList.toggle("dense", this.tiles.size > 16);
    this.dom.waiting.hidden = true;
    this.dom.empty.hidden = patients.length > 0;
    this.alertsDirty = true;
    this.root.dataset.snapshots = String(this.snapshots);
    setText(this.dom.liveNote, `Synchronised ${clockTime(Date.now())}`);
    this._backfill([...this.tiles.values()]);
  }

  /** A patient admitted, moved, updated or discharged (a `patient` frame): the tile appears,
   * changes bed (keeping bed order) or leaves the ward view. */
  applyPatient(msg) {
    const id = Number(msg.patient);
    const here = msg.ward !== null && msg.ward !== undefined && Number(msg.ward) === this.wardId;
    let tile = this.tiles.get(id);
    if (!here || msg.action === "discharged") {
      if (!tile) return;
      this._resize.unobserve(tile.dom.canvas);
      tile.dom.root.remove();
      this.tiles.delete(id);
      for (const a of tile.alerts.values()) this.seenAlerts.add(a.id);
      this.ui.announce(`${tile.patient.name || "Patient"} ${msg.action === "discharged" ? "was discharged" : "left this ward"}.`);
    } else if (msg.entry) {
      const fresh = !tile;
      if (tile) tile.update(msg.entry);
      else {
        tile = new Tile(this, { ...msg.entry, id });
        this.tiles.set(id, tile);
        this._resize.observe(tile.dom.canvas);
        this._backfill([tile]);
      }
      this._placeInBedOrder(tile);
      if (fresh) this.ui.announce(`${tile.patient.name || "A patient"} arrived, bed ${tile.patient.bed || "none"}.`);
    }
    this.dom.grid.classList.toggle("dense", this.tiles.size > 16);
    this.dom.empty.hidden = this.tiles.size > 0;
    this.alertsDirty = true;
  }

  _placeInBedOrder(tile) {
    const key = (t) => String(t.patient.bed || "~");
    const after = [...this.tiles.values()]
      .filter((t) => t !== tile && t.dom.root.parentNode === this.dom.grid)
      .sort((a, b) => key(a).localeCompare(key(b), undefined, { numeric: true }))
      .find((t) => key(t).localeCompare(key(tile), undefined, { numeric: true }) > 0);
    this.dom.grid.insertBefore(tile.dom.root, after ? after.dom.root : null);
  }

  /** Fill the trends' last ten minutes (and any reconnect gap) from aggregated history. */
  async _backfill(tiles) {
    const to = new Date();
    const from = new Date(to.getTime() - TREND_WINDOW_MS);
    const queue = [...tiles];
    const worker = async () => {
      while (queue.length && !this.destroyed) {
        const tile = queue.shift();
        const url = `/api/records/${tile.id}/?bucket=${BACKFILL_BUCKET_S}&from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`;
        try {
          const rows = await fetchAllRows(url);
          const byMetric = { heart_rate: [], pulse_rate: [], fetal_heart_rate: [] };
          for (const row of rows) {
            const metric = row.metric;
            if (!byMetric[metric]) continue;
            const t = parseTime(row.bucket_start ?? row.recorded_at);
            const v = row.mean ?? row.bpm;
            // A bucket's mean sits in the middle of its bucket.
            byMetric[metric].push({ t: row.bucket_start ? t + (BACKFILL_BUCKET_S * 1000) / 2 : t, v: Number(v) });
          }
          for (const metric of METRICS) tile.series[metric].setBackfill(byMetric[metric]);
          tile.dirtyTrend = true;
          this.schedule();
        } catch {
          /* the trend fills from live data */
        }
      }
    };
    await Promise.all([worker(), worker(), worker()]);
  }

  /** Ask for a fresh snapshot (at most every 10 s) when data of an unknown bed arrives. */
  _resyncForUnknown() {
    const now = Date.now();
    if (this._lastResync && now - this._lastResync < 10_000) return;
    this._lastResync = now;
    this.socket.send({ type: "subscribe", ward: this.wardId });
  }

  applyAlert(alert, live) {
    const tile = this.tiles.get(Number(alert.patient));
    if (!tile) {
      if (live && alert.ward !== undefined && Number(alert.ward) === this.wardId) this._resyncForUnknown();
      return;
    }
    tile.setAlert(alert);
    this.alertsDirty = true;
    const isNew = !this.seenAlerts.has(alert.id);
    this.seenAlerts.add(alert.id);
    if (live && isNew && alert.state === "active") {
      const p = tile.patient;
      this.ui.announce(
        `${PRIORITY_LABEL[alert.priority] || ""} priority alarm. Bed ${p.bed || "none"}, ${p.name || "patient"}: ${alert.message || humanKind(alert.kind)}.`,
      );
      if (alert.priority === "high") alarmSound.alarm();
    }
  }

  applyDeviceStatus(msg) {
    const dev = msg.device && typeof msg.device === "object" ? msg.device : msg;
    const deviceId = Number(dev.id ?? msg.device ?? msg.device_id);
    const patientId = idOf(dev.patient ?? msg.patient);
    for (const tile of this.tiles.values()) {
      const match = (tile.device && tile.device.id === deviceId) || (patientId !== undefined && tile.id === Number(patientId));
      if (!match) continue;
      const online = dev.online ?? msg.online ?? (msg.status ? msg.status === "online" : undefined);
      tile.device = {
        ...(tile.device || { id: deviceId, serial: dev.serial || `Device ${deviceId}` }),
        ...pick(dev, ["serial", "is_active", "last_seen_at"]),
        ...(online === undefined ? {} : { online }),
      };
      tile.dirtyText = true;
    }
  }

  async acknowledge(alertId) {
    const buttons = this.root.querySelectorAll(`button[data-alert="${alertId}"]`);
    buttons.forEach((b) => (b.disabled = true));
    try {
      const updated = await api.post(`/api/alerts/${alertId}/acknowledge/`, {});
      if (updated && updated.id) this.applyAlert(normaliseAlert(updated), false);
      this.ui.announce("Alarm acknowledged.");
    } catch (err) {
      this.ui.error({ code: err.code, message: `Could not acknowledge: ${err.message}` });
    } finally {
      buttons.forEach((b) => (b.disabled = false));
      this.schedule();
    }
  }

  schedule() {
    if (!this.frame && !this.destroyed) this.frame = requestAnimationFrame(() => this._render());
  }

  _everySecond() {
    // The trend scrolls with time and "last seen" texts age even without new data.
    for (const tile of this.tiles.values()) {
      tile.dirtyText = true;
      tile.dirtyTrend = true;
    }
    this.schedule();
  }

  _render() {
    this.frame = 0;
    const now = Date.now();
    for (const tile of this.tiles.values()) {
      if (tile.dirtyText) tile.render(now);
    }
    for (const tile of this.tiles.values()) {
      if (tile.dirtyTrend) tile.renderTrend(now);
    }
    if (this.alertsDirty) this._renderAlerts(now);
  }

  _renderAlerts(now) {
    this.alertsDirty = false;
    const all = [];
    for (const tile of this.tiles.values()) for (const a of tile.alerts.values()) all.push([a, tile]);
    all.sort(([a], [b]) =>
      (b.state === "active") - (a.state === "active") ||
      (PRIORITY_RANK[b.priority] || 0) - (PRIORITY_RANK[a.priority] || 0) ||
      parseTime(b.raised_at) - parseTime(a.raised_at));
    const items = all.map(([a, tile]) => {
      const label = PRIORITY_LABEL[a.priority] || a.priority;
      return el(
        "li",
        { class: "alert-item", dataset: { alert: String(a.id), priority: a.priority, state: a.state } },
        el("span", { class: "alert-mark", "aria-hidden": "true" }, PRIORITY_MARK[a.priority] || "!"),
        el(
          "div",
          { class: "alert-body" },
          el("div", { class: "alert-line" },
            el("strong", { class: "alert-prio" }, label),
            " ",
            el("span", { class: "alert-state" }, a.state === "acknowledged" ? "acknowledged" : "active"),
            el("span", { class: "alert-who" }, ` · Bed ${tile.patient.bed || "—"} · `, el("a", { href: `#/patient/${tile.id}` }, tile.patient.name || "")),
          ),
          el("div", { class: "alert-kind" }, shortKind(a.kind)),
          a.message && a.message !== shortKind(a.kind) ? el("div", { class: "alert-msg" }, a.message) : null,
          el("div", { class: "alert-foot" },
            el("span", { class: "alert-time" }, `Raised ${clockTime(parseTime(a.raised_at))} (${ago(parseTime(a.raised_at), now)})`),
            a.state === "active"
              ? el("button", {
                  type: "button",
                  class: "btn btn-ack",
                  dataset: { alert: String(a.id) },
                  "aria-label": `Acknowledge ${label} alarm, bed ${tile.patient.bed || "none"}`,
                  onclick: () => this.acknowledge(a.id),
                }, "Acknowledge")
              : null),
        ),
      );
    });
    if (!items.length) items.push(el("li", { class: "alert-none" }, "No active alarms."));
    this.dom.alertList.replaceChildren(...items);
    const active = all.filter(([a]) => a.state === "active");
    setText(this.dom.alertCount, active.length ? `(${active.length} active)` : "");
    alarmSound.setActive(active.some(([a]) => a.priority === "high"));
  }

  _navigate(event) {
    const keys = { ArrowRight: 1, ArrowDown: "down", ArrowLeft: -1, ArrowUp: "up", Home: "home", End: "end" };
    if (!(event.key in keys) || !event.target.classList.contains("tile")) return;
    const tiles = [...this.dom.grid.children];
    const i = tiles.indexOf(event.target);
    let j = i;
    const step = keys[event.key];
    if (step === 1 || step === -1) j = i + step;
    else if (step === "home") j = 0;
    else if (step === "end") j = tiles.length - 1;
    else {
      // Columns from the grid's computed template: only on a key press, never per frame.
      const cols = getComputedStyle(this.dom.grid).gridTemplateColumns.split(" ").length || 1;
      j = i + (step === "down" ? cols : -cols);
    }
    if (j >= 0 && j < tiles.length && j !== i) {
      event.preventDefault();
      tiles[j].focus();
    }
  }
}

export async function fetchAllRows(url, maxPages = 50) {
  const rows = [];
  let next = url;
  for (let i = 0; next && i < maxPages; i++) {
    const data = await api.get(next);
    rows.push(...resultsOf(data));
    next = data && !Array.isArray(data) && data.next ? relative(data.next) : null;
  }
  return rows;
}

function relative(url) {
  const u = new URL(url, location.origin);
  return u.pathname + u.search;
}

function pick(obj, keys) {
  const out = {};
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}
