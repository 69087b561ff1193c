// Audible cue for high-priority alarms: the IEC 60601-1-8 high-priority burst (ten pulses,
// 3 + 2, pause, 3 + 2), repeated while an unacknowledged high alarm is present in the view.
// IEC 60601-1-8 "audio paused": the ward's sound is silenced for a limited time (the place's
// pause time, 2 minutes by default) with a visible countdown, and sounds again when the time
// is up or a new high-priority alarm arrives. "Audio off" (admins only) lasts until resumed and
// is shown for as long as it lasts. The pause is the ward's, kept by the server (audit trail),
// so every station on the ward shows it; this class only applies it.

const PULSE_S = 0.15;
const PULSE_GAP_S = 0.1;
const BURST_REPEAT_MS = 8_000;
// Start time of each pulse within a burst, seconds.
const PATTERN = (() => {
  const starts = [];
  let t = 0;
  const group = (n) => {
    for (let i = 0; i < n; i++) {
      starts.push(t);
      t += PULSE_S + PULSE_GAP_S;
    }
  };
  group(3);
  t += 0.25;
  group(2);
  t += 0.75;
  group(3);
  t += 0.25;
  group(2);
  return starts;
})();

export class AlarmSound extends EventTarget {
  constructor() {
    super();
    this.ctx = null;
    this.audio = { state: "sounding", pause: null }; // as the server last said
    this.pausedUntil = 0; // Date.now() ms at which a pause ends
    this._countdown = null;
    this.active = false;
    this.bursts = 0;
    this._timer = null;
  }

  /** Browsers let audio start only after a user gesture: call this from one. */
  unlock() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    if (!this.ctx) this.ctx = new Ctx();
    if (this.ctx.state === "suspended") this.ctx.resume().catch(() => {});
  }

  /** Apply the ward's audio state (REST answer or `audio` frame). */
  applyState(audio) {
    clearInterval(this._countdown);
    this._countdown = null;
    const state = audio && ["paused", "off"].includes(audio.state) ? audio.state : "sounding";
    this.audio = { state, pause: state === "sounding" ? null : audio.pause };
    if (state === "paused") {
      this.pausedUntil = Date.now() + 1000 * (audio.pause?.remaining_seconds ?? 0);
      this._countdown = setInterval(() => this._tick(), 1000);
    }
    this.dispatchEvent(new Event("change"));
    if (state === "sounding" && this.active) this._burst();
  }

  get state() {
    return this.audio.state;
  }

  get silenced() {
    return this.audio.state !== "sounding";
  }

  /** Whole seconds left in a pause (null unless paused). */
  get remainingSeconds() {
    if (this.audio.state !== "paused") return null;
    return Math.max(0, Math.ceil((this.pausedUntil - Date.now()) / 1000));
  }

  _tick() {
    if (this.remainingSeconds > 0) {
      this.dispatchEvent(new Event("change"));
      return;
    }
    // Time is up: sound again at once; tell listeners so that the server is told too.
    this.applyState({ state: "sounding" });
    this.dispatchEvent(new Event("pause-ended"));
  }

  /** Whether an unacknowledged high-priority alarm is present; starts or stops the bursts. */
  setActive(active) {
    if (active === this.active) return;
    this.active = active;
    clearInterval(this._timer);
    this._timer = null;
    if (active) {
      this._burst();
      this._timer = setInterval(() => this._burst(), BURST_REPEAT_MS);
    }
  }

  /** A new high alarm: sound at once even if bursts are already repeating; it ends a pause
   * (not an admin's "audio off", which stays shown). */
  alarm() {
    if (this.audio.state === "paused") {
      this.applyState({ state: "sounding" });
      this.dispatchEvent(new Event("pause-ended"));
      if (this.active) return; // applyState has just sounded it
    }
    if (this.active) this._burst();
    else this.setActive(true);
  }

  _burst() {
    this.bursts += 1;
    if (this.silenced) return;
    this.dispatchEvent(new Event("burst"));
    if (!this.ctx) return;
    const ctx = this.ctx;
    const t0 = ctx.currentTime + 0.02;
    const gain = ctx.createGain();
    gain.gain.value = 0;
    gain.connect(ctx.destination);
    // A fundamental with harmonics: easier to localise than a pure tone.
    const oscs = [1, 2, 3, 4].map((h) => {
      const osc = ctx.createOscillator();
      const g = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = 523.25 * h;
      g.gain.value = 1 / (h * 1.6);
      osc.connect(g).connect(gain);
      return osc;
    });
    for (const start of PATTERN) {
      const a = t0 + start;
      gain.gain.setValueAtTime(0, a);
      gain.gain.linearRampToValueAtTime(0.18, a + 0.02);
      gain.gain.setValueAtTime(0.18, a + PULSE_S - 0.03);
      gain.gain.linearRampToValueAtTime(0, a + PULSE_S);
    }
    const end = t0 + PATTERN[PATTERN.length - 1] + PULSE_S + 0.05;
    for (const osc of oscs) {
      osc.start(t0);
      osc.stop(end);
    }
    oscs[0].onended = () => gain.disconnect();
  }
}

export const alarmSound = new AlarmSound();
