// Entry point: sign-in, the ward picker, the router (#/ward/<id>, #/patient/<id>), and the
// page furniture (connection indicator, alarm sound switch, error banner, announcer).

import { api, session } from "./api.js";
import { alarmSound } from "./audio.js";
import { PatientView } from "./patient.js";
import { DashboardSocket } from "./socket.js";
import { WardView, idOf } from "./ward.js";
import { clockTime, el, setText } from "./util.js";

const main = document.getElementById("main");
const banner = document.getElementById("banner");
const announcer = document.getElementById("alarm-announcer");
const conn = document.getElementById("conn");
const muteButton = document.getElementById("mute");
const audioOffButton = document.getElementById("audio-off");
const who = document.getElementById("who");
const signoutButton = document.getElementById("signout");
const crumbsNav = document.getElementById("crumbs");

let socket = null;
let view = null;
let audioWard = null; // the ward whose alarm audio the topbar controls (ward view only)
let pauseSeconds = 120;

const ui = {
  crumbs(items) {
    crumbsNav.replaceChildren(
      ...items.flatMap((item, i) => [
        i ? el("span", { class: "crumb-sep", "aria-hidden": "true" }, "›") : null,
        item.href
          ? el("a", { href: item.href }, item.text)
          : el("span", { "aria-current": "page" }, item.text),
      ]).filter(Boolean),
    );
  },
  error(error, frame = null) {
    const message = error.message || "Something went wrong.";
    banner.replaceChildren(
      el("span", { class: "banner-text" }, message),
      el("button", { type: "button", class: "btn btn-quiet", onclick: () => (banner.hidden = true) }, "Dismiss"),
    );
    banner.dataset.code = error.code || "";
    banner.hidden = false;
    if (frame) console.warn("server error frame", frame);
  },
  clearError() {
    banner.hidden = true;
    banner.replaceChildren();
  },
  announce(text) {
    // A fresh node per message so that screen readers announce repeats too.
    announcer.append(el("p", {}, text));
    while (announcer.childElementCount > 5) announcer.firstElementChild.remove();
  },
};

function ensureSocket() {
  if (!socket) {
    socket = new DashboardSocket();
    socket.addEventListener("state", (e) => {
      showConnection(e.detail);
      if (e.detail.state === "open") loadAudio(); // another station may have paused meanwhile
    });
    socket.addEventListener("message", (e) => {
      const msg = e.detail;
      if (msg.type === "audio" && msg.ward === audioWard) applyAudio(msg);
    });
  }
  return socket;
}

function showConnection({ state, delay, attempt }) {
  conn.hidden = false;
  conn.dataset.state = state;
  const text = {
    idle: "Not connected",
    connecting: "Connecting…",
    open: "Live",
    reconnecting: delay ? `Connection lost · retrying in ${Math.ceil(delay / 1000)} s` : "Reconnecting…",
    closed: "Disconnected",
  }[state];
  setText(conn.querySelector(".conn-text"), attempt > 1 && state === "reconnecting" ? `${text} (attempt ${attempt})` : text);
  conn.title = state === "open" ? "Receiving live data" : "Live data is NOT being received";
}

// Alarm audio of the ward (IEC 60601-1-8): "Pause audio" for the place's pause time, with a
// countdown; admins may also switch it off (shown until resumed). Recorded by the server.
const minSec = (s) => `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;

function renderMute() {
  const state = alarmSound.state;
  const by = alarmSound.audio.pause?.by?.name;
  muteButton.hidden = !session.signedIn || audioWard === null;
  muteButton.setAttribute("aria-pressed", String(state !== "sounding"));
  muteButton.dataset.audio = state;
  muteButton.classList.toggle("muted", state === "paused");
  muteButton.classList.toggle("audio-off", state === "off");
  const text = {
    sounding: `Pause alarm audio (${minSec(pauseSeconds)})`,
    paused: `Audio paused ${minSec(alarmSound.remainingSeconds ?? 0)}${by ? ` · ${by}` : ""} · resume`,
    off: `ALARM AUDIO OFF${by ? ` · ${by}` : ""} · turn on`,
  }[state];
  setText(muteButton, text);
  audioOffButton.hidden = muteButton.hidden || session.user?.role !== "admin" || state === "off";
  document.body.dataset.audio = audioWard === null ? "sounding" : state;
}

function applyAudio(audio) {
  if (typeof audio.pause_seconds === "number") pauseSeconds = audio.pause_seconds;
  alarmSound.applyState(audio);
}

async function loadAudio() {
  const ward = audioWard;
  if (ward === null) return;
  try {
    const audio = await api.get(`/api/wards/${ward}/alarm-audio/`);
    if (ward === audioWard) applyAudio(audio);
  } catch (err) {
    console.warn("alarm audio state unavailable", err);
  }
}

async function audioCommand(action, body = {}) {
  const ward = audioWard;
  alarmSound.unlock();
  try {
    const audio = await api.post(`/api/wards/${ward}/alarm-audio/${action}/`, body);
    if (ward === audioWard) applyAudio(audio);
  } catch (err) {
    ui.error(err);
  }
}
muteButton.addEventListener("click", () => {
  audioCommand(alarmSound.state === "sounding" ? "pause" : "resume");
});
audioOffButton.addEventListener("click", () => audioCommand("pause", { mode: "off" }));
alarmSound.addEventListener("change", renderMute);
alarmSound.addEventListener("burst", () => {
  muteButton.dataset.alarmCount = String(alarmSound.bursts);
});
// Any interaction may unlock audio (browsers require a gesture before sound).
document.addEventListener("pointerdown", () => alarmSound.unlock(), { once: true });
document.addEventListener("keydown", () => alarmSound.unlock(), { once: true });

signoutButton.addEventListener("click", async () => {
  if (socket) socket.stop();
  socket = null;
  conn.hidden = true;
  await session.logout();
  location.hash = "#/";
  route();
});
session.addEventListener("expired", () => {
  if (socket) socket.stop();
  socket = null;
  conn.hidden = true;
  route("Your session has expired. Please sign in again.");
});

function renderWho() {
  const u = session.user;
  who.textContent = u ? `${[u.first_name, u.last_name].filter(Boolean).join(" ") || u.email} · ${u.role || ""}` : "";
  signoutButton.hidden = !session.signedIn;
  renderMute();
}

/** Show a sign-in style form: `children` (its heading and fields), then an error line and a
 * submit button labelled `label`. A submit disables the button while `onSubmit()` runs; what it
 * throws goes to `onError(err, error)` with the error line. Focuses `focus`; returns the line. */
function showForm({ attrs, children, label, errorId, onSubmit, onError, focus }) {
  const error = el("p", { class: "form-error", role: "alert", id: errorId });
  const submit = el("button", { type: "submit", class: "btn btn-primary" }, label);
  const form = el("form", { class: "signin", ...attrs }, ...children, error, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      await onSubmit();
    } catch (err) {
      onError(err, error);
    } finally {
      submit.disabled = false;
    }
  });
  main.replaceChildren(el("div", { class: "center" }, form));
  focus.focus();
  return error;
}

function showSignIn(notice = "") {
  ui.crumbs([]);
  const email = el("input", { id: "email", name: "email", type: "email", autocomplete: "username", required: true });
  const password = el("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  // Second factor (docs/security.md): shown when the server answers otp_required.
  const otp = el("input", { id: "otp", name: "otp", autocomplete: "one-time-code", inputmode: "text", spellcheck: "false" });
  const otpRow = el("div", { class: "otp-row", hidden: true }, el("label", { for: "otp" }, "Authenticator code (or a recovery code)"), otp);
  const error = showForm({
    attrs: { "aria-labelledby": "signin-title", novalidate: true },
    children: [
      el("h1", { id: "signin-title" }, "Sign in to the central station"),
      el("label", { for: "email" }, "E-mail"),
      email,
      el("label", { for: "password" }, "Password"),
      password,
      otpRow,
    ],
    label: "Sign in",
    errorId: "signin-error",
    onSubmit: async () => {
      alarmSound.unlock(); // still inside the user's gesture: the first await comes later
      await session.login(email.value.trim(), password.value, otp.value.trim());
      renderWho();
      route();
    },
    onError: (err, error) => {
      if (err.code === "otp_enrollment_required" && err.enrollment) {
        showOtpEnrollment(err.enrollment, err.message);
        return;
      }
      error.textContent = err.status === 0 ? err.message : err.message || "Sign-in failed.";
      if (err.code === "otp_required" || err.code === "otp_invalid") {
        otpRow.hidden = false;
        otp.select();
        otp.focus();
        return;
      }
      password.select();
    },
    focus: email,
  });
  if (notice) error.textContent = notice;
}

/** First sign-in of a role that requires a second factor: the secret for an authenticator app,
 * its first code, then the recovery codes (shown once). */
function showOtpEnrollment(enrollment, message) {
  ui.crumbs([{ text: "Second factor" }]);
  const code = el("input", { id: "otp-confirm", autocomplete: "one-time-code", inputmode: "numeric", required: true });
  showForm({
    attrs: { "aria-labelledby": "otp-title", id: "otp-enroll" },
    children: [
      el("h1", { id: "otp-title" }, "Set up your second factor"),
      el("p", { class: "muted" }, message),
      el("p", {}, "Add this key to an authenticator app (or open the link on your phone), then enter the 6-digit code it shows."),
      el("label", { for: "otp-secret" }, "Key"),
      el("input", { id: "otp-secret", readonly: true, value: enrollment.secret }),
      el("p", {}, el("a", { href: enrollment.otpauth_uri, id: "otp-uri" }, "Open in an authenticator app")),
      el("label", { for: "otp-confirm" }, "Code"),
      code,
    ],
    label: "Confirm",
    onSubmit: async () => {
      const data = await session.confirmOtp(enrollment.token, code.value.trim());
      showRecoveryCodes(data.recovery_codes || []);
    },
    onError: (err, error) => {
      error.textContent = err.message || "The code was not accepted.";
      code.select();
    },
    focus: code,
  });
}

function showRecoveryCodes(codes) {
  const done = el("button", { type: "button", class: "btn btn-primary", id: "recovery-done" }, "I have kept them: continue");
  done.addEventListener("click", () => {
    renderWho();
    route();
  });
  main.replaceChildren(
    el(
      "div",
      { class: "center" },
      el(
        "section",
        { class: "signin", "aria-labelledby": "recovery-title" },
        el("h1", { id: "recovery-title" }, "Recovery codes"),
        el("p", {}, "Each code signs you in once without your phone. Keep them somewhere safe: they are not shown again."),
        el("ul", { class: "recovery-codes", id: "recovery-codes" }, codes.map((c) => el("li", {}, el("code", {}, c)))),
        done,
      ),
    ),
  );
  done.focus();
}

function showPasswordChange() {
  ui.crumbs([{ text: "Change password" }]);
  const old = el("input", { id: "old-password", type: "password", autocomplete: "current-password", required: true });
  const fresh = el("input", { id: "new-password", type: "password", autocomplete: "new-password", required: true });
  showForm({
    attrs: { "aria-labelledby": "pw-title" },
    children: [
      el("h1", { id: "pw-title" }, "Choose your own password"),
      el("p", { class: "muted" }, "You signed in with a one-time password. Choose a new one to continue."),
      el("label", { for: "old-password" }, "One-time password"),
      old,
      el("label", { for: "new-password" }, "New password"),
      fresh,
    ],
    label: "Change password",
    onSubmit: async () => {
      await api.post("/api/auth/password/change/", { old_password: old.value, new_password: fresh.value });
      await session.login(session.user.email, fresh.value);
      route();
    },
    onError: (err, error) => {
      const details = err.details ? Object.values(err.details).flat().join(" ") : "";
      error.textContent = `${err.message} ${details}`.trim();
    },
    focus: old,
  });
}

async function showWardPicker() {
  ui.crumbs([{ text: "Wards" }]);
  main.replaceChildren(el("p", { class: "loading" }, "Loading wards…"));
  const [wards, places] = await Promise.all([api.all("/api/wards/"), api.all("/api/places/").catch(() => [])]);
  const placeName = new Map(places.map((p) => [p.id, p.name]));
  const byPlace = new Map();
  for (const w of wards) {
    const pid = idOf(w.place);
    if (!byPlace.has(pid)) byPlace.set(pid, []);
    byPlace.get(pid).push(w);
  }
  const sections = [...byPlace.entries()].map(([pid, list]) =>
    el(
      "section",
      { class: "place-group", "aria-labelledby": `place-${pid}` },
      el("h2", { id: `place-${pid}` }, placeName.get(pid) || `Place ${pid}`),
      el(
        "ul",
        { class: "ward-list" },
        list.map((w) => el("li", {}, el("a", { class: "ward-link", href: `#/ward/${w.id}`, dataset: { ward: String(w.id) } }, w.name))),
      ),
    ),
  );
  main.replaceChildren(
    el(
      "div",
      { class: "picker" },
      el("h1", {}, "Choose a ward"),
      sections.length
        ? sections
        : el("p", { class: "empty" }, "You have no wards yet: an administrator must give you access to a hospital or clinic."),
    ),
  );
  main.querySelector(".ward-link")?.focus();
}

async function route(notice = "") {
  if (view) {
    view.destroy();
    view = null;
  }
  ui.clearError();
  renderWho();
  if (!session.signedIn) {
    showSignIn(notice);
    return;
  }
  if (session.user && session.user.must_change_password) {
    showPasswordChange();
    return;
  }
  const path = location.hash.replace(/^#/, "") || "/";
  const ward = path.match(/^\/ward\/(\d+)\/?$/);
  const patient = path.match(/^\/patient\/(\d+)\/?$/);
  try {
    audioWard = ward ? Number(ward[1]) : null;
    alarmSound.applyState({ state: "sounding" });
    if (ward) {
      loadAudio();
      view = new WardView({ root: main, socket: ensureSocket(), wardId: Number(ward[1]), ui });
      main.replaceChildren(el("p", { class: "loading" }, "Opening ward…"));
      await view.mount();
    } else if (patient) {
      view = new PatientView({ root: main, socket: ensureSocket(), patientId: Number(patient[1]), ui });
      main.replaceChildren(el("p", { class: "loading" }, "Opening patient…"));
      await view.mount();
    } else {
      await showWardPicker();
    }
  } catch (err) {
    if (!session.signedIn) return; // expired: the sign-in form is already shown
    const what = ward ? "ward" : patient ? "patient" : "page";
    const message =
      err.status === 404 || err.status === 403
        ? `This ${what} does not exist or you do not have access to it.`
        : err.message || "Could not load.";
    main.replaceChildren(
      el("div", { class: "page-error", role: "alert" }, el("h1", {}, "Cannot open"), el("p", {}, message), el("a", { href: "#/" }, "Back to wards")),
    );
    ui.error({ code: err.code, message });
  }
}

window.addEventListener("hashchange", () => route());
window.addEventListener("online", () => socket && socket.retryNow());
setInterval(() => setText(document.getElementById("clock"), clockTime(Date.now())), 1000);
route();
