// The dashboard WebSocket: auth frame first, then subscriptions. Reconnects with capped
// exponential backoff and jitter, authenticates again, resubscribes; each subscribe answers
// with a snapshot, which the views use to resynchronise.

import { session } from "./api.js";

const PING_EVERY_MS = 20_000;
const PONG_TIMEOUT_MS = 10_000;
const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 15_000;

export class DashboardSocket extends EventTarget {
  constructor(url = null) {
    super();
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.url = url || `${scheme}//${location.host}/ws/dashboard/`;
    this.ws = null;
    this.state = "idle"; // idle | connecting | open | reconnecting | closed
    this.subscriptions = new Map(); // "ward:3" -> {type: "subscribe", ward: 3}
    this.attempt = 0;
    this.reconnects = 0;
    this._retryTimer = null;
    this._pingTimer = null;
    this._pongTimer = null;
    this._stopped = true;
    // A refreshed access token is sent in band, so the server keeps the session open past
    // the old token's expiry without a reconnect.
    session.addEventListener("token", () => {
      if (this.state === "open") this.send({ type: "auth", token: session.access });
    });
  }

  start() {
    this._stopped = false;
    if (!this.ws) this._connect();
  }

  stop() {
    this._stopped = true;
    clearTimeout(this._retryTimer);
    this._stopTimers();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, "signed out");
    }
    this._setState("closed");
  }

  subscribe(scope) {
    const key = scopeKey(scope);
    this.subscriptions.set(key, { type: "subscribe", ...scope });
    if (this.state === "open") this.send({ type: "subscribe", ...scope });
  }

  unsubscribe(scope) {
    const key = scopeKey(scope);
    if (!this.subscriptions.delete(key)) return;
    if (this.state === "open") this.send({ type: "unsubscribe", ...scope });
  }

  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  _setState(state, detail = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, ...detail } }));
  }

  async _connect() {
    clearTimeout(this._retryTimer);
    this._setState(this.attempt === 0 && this.reconnects === 0 ? "connecting" : "reconnecting", {
      attempt: this.attempt,
    });
    let token;
    try {
      token = await session.accessToken();
    } catch (err) {
      if (!session.signedIn) return; // session ended: the app shows the sign-in form
      this._scheduleRetry();
      return;
    }
    if (this._stopped) return;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this._scheduleRetry();
      return;
    }
    this.ws = ws;
    let authed = false;
    ws.addEventListener("open", () => {
      ws.send(JSON.stringify({ type: "auth", token }));
    });
    ws.addEventListener("message", (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (msg.type === "auth.ok") {
        this.expiresAt = msg.expires_at || null;
        if (authed) return; // in-band re-authentication: the subscriptions still hold
        authed = true;
        const wasReconnect = this.reconnects > 0 || this.attempt > 0;
        this.attempt = 0;
        this._setState("open", { reconnected: wasReconnect });
        for (const frame of this.subscriptions.values()) ws.send(JSON.stringify(frame));
        this._startTimers();
        return;
      }
      if (msg.type === "pong") {
        clearTimeout(this._pongTimer);
        return;
      }
      this.dispatchEvent(new CustomEvent("message", { detail: msg }));
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this._stopTimers();
      if (this._stopped) return;
      if (event.code === 4401 && !authed) {
        // The token was refused: refresh it before trying again (expire() if that fails).
        session.refreshAccess().catch(() => {});
      }
      if (event.code === 4403) {
        this.dispatchEvent(new CustomEvent("message", {
          detail: { type: "error", error: { code: "forbidden", message: "Access refused by the server." } },
        }));
      }
      this.reconnects += 1;
      this._scheduleRetry(event.code);
    });
  }

  _scheduleRetry(code = null) {
    if (this._stopped) return;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** this.attempt);
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    this.attempt += 1;
    this._setState("reconnecting", { attempt: this.attempt, delay, code });
    this._retryTimer = setTimeout(() => this._connect(), delay);
  }

  /** Try at once (the "Reconnect now" button and coming back online). */
  retryNow() {
    if (this._stopped || this.state === "open" || this.ws) return;
    this.attempt = 0;
    this._connect();
  }

  _startTimers() {
    this._stopTimers();
    this._pingTimer = setInterval(() => {
      if (!this.send({ type: "ping" })) return;
      clearTimeout(this._pongTimer);
      this._pongTimer = setTimeout(() => {
        // No pong: the connection is dead even if the socket has not noticed yet.
        if (this.ws) this.ws.close(4000, "pong timeout");
      }, PONG_TIMEOUT_MS);
    }, PING_EVERY_MS);
  }

  _stopTimers() {
    clearInterval(this._pingTimer);
    clearTimeout(this._pongTimer);
  }
}

function scopeKey(scope) {
  return scope.ward !== undefined ? `ward:${scope.ward}` : `patient:${scope.patient}`;
}

/** A page that watches one subscription of the dashboard socket (`scope`: `{ ward: id }` or
 * `{ patient: id }`): `listen()` joins it and starts the socket, `leave()` leaves it; every
 * frame goes to the subclass's `handle(frame)`, none after `leave()` (`destroyed`). */
export class LiveView {
  constructor({ root, socket, ui }, scope) {
    this.root = root;
    this.socket = socket;
    this.ui = ui;
    this.scope = scope;
    this.destroyed = false;
    this._onMessage = (e) => this.handle(e.detail);
  }

  listen() {
    this.socket.addEventListener("message", this._onMessage);
    this.socket.subscribe(this.scope);
    this.socket.start();
  }

  leave() {
    this.destroyed = true;
    this.socket.removeEventListener("message", this._onMessage);
    this.socket.unsubscribe(this.scope);
  }
}
