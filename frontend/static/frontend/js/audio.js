// Audible cue for high-priority alarms: the IEC 60601-1-8 high-priority burst (ten pulses,
// 3 + 2, pause, 3 + 2), repeated while an unacknowledged high alarm is present in the view.
// The user can switch the sound off; the "sound off" state is always shown.

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
    this.muted = sessionStorage.getItem("pm.muted") === "1";
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

  setMuted(muted) {
    this.muted = muted;
    sessionStorage.setItem("pm.muted", muted ? "1" : "0");
    this.dispatchEvent(new Event("change"));
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

  /** A new high alarm: sound at once even if bursts are already repeating. */
  alarm() {
    if (this.active) this._burst();
    else this.setActive(true);
  }

  _burst() {
    this.bursts += 1;
    this.dispatchEvent(new Event("burst"));
    if (this.muted || !this.ctx) return;
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
