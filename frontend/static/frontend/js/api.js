// REST client: JWT access/refresh kept in sessionStorage (gone when the tab closes), the
// access token refreshed shortly before it expires, one retry after a 401.

const STORE_KEY = "pm.session";
const REFRESH_MARGIN_MS = 60_000;

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `Request failed (${status})`);
    this.status = status;
    this.code = err.code || (status === 0 ? "network_error" : "http_" + status);
    this.details = err.details || null;
    this.enrollment = (body && body.enrollment) || null; // otp_enrollment_required
  }
}

function jwtClaims(token) {
  try {
    return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  } catch {
    return {};
  }
}

function jwtExpiry(token) {
  return (jwtClaims(token).exp || 0) * 1000;
}

/** Refresh this long before expiry: a minute, or a quarter of a short-lived token's life. */
function refreshMargin(token) {
  const { exp, iat } = jwtClaims(token);
  if (!exp || !iat) return REFRESH_MARGIN_MS;
  return Math.min(REFRESH_MARGIN_MS, ((exp - iat) * 1000) / 4);
}

class Session extends EventTarget {
  constructor() {
    super();
    this.access = null;
    this.refresh = null;
    this.user = null;
    this._timer = null;
    this._refreshing = null;
    try {
      const saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || "null");
      if (saved && saved.refresh) Object.assign(this, saved);
    } catch {
      /* a corrupt entry means signed out */
    }
    if (this.refresh) this._schedule();
  }

  get signedIn() {
    return Boolean(this.refresh);
  }

  _save() {
    if (this.refresh) {
      sessionStorage.setItem(
        STORE_KEY,
        JSON.stringify({ access: this.access, refresh: this.refresh, user: this.user }),
      );
    } else {
      sessionStorage.removeItem(STORE_KEY);
    }
  }

  _schedule() {
    clearTimeout(this._timer);
    if (!this.access) return;
    const due = jwtExpiry(this.access) - refreshMargin(this.access) - Date.now();
    this._timer = setTimeout(() => this.refreshAccess().catch(() => {}), Math.max(1000, due));
  }

  async login(email, password, otp = "") {
    const body = otp ? { email, password, otp } : { email, password };
    return this._accept(await request("POST", "/api/auth/login/", body, { auth: false }));
  }

  /** Confirm a second-factor enrolment with the authenticator's first code. */
  async confirmOtp(token, otp) {
    return this._accept(await request("POST", "/api/auth/otp/confirm/", { token, otp }, { auth: false }));
  }

  _accept(data) {
    this.access = data.access;
    this.refresh = data.refresh;
    this.user = data.user || null;
    this._save();
    this._schedule();
    this.dispatchEvent(new Event("change"));
    return data;
  }

  /** A fresh access token (refreshing first when it expires within the margin). */
  async accessToken() {
    if (this.access && jwtExpiry(this.access) - Date.now() > refreshMargin(this.access)) return this.access;
    return this.refreshAccess();
  }

  refreshAccess() {
    if (!this.refresh) return Promise.reject(new ApiError(401, null));
    if (this._refreshing) return this._refreshing;
    this._refreshing = request("POST", "/api/auth/refresh/", { refresh: this.refresh }, { auth: false })
      .then((data) => {
        this.access = data.access;
        if (data.refresh) this.refresh = data.refresh; // rotation
        this._save();
        this._schedule();
        this.dispatchEvent(new Event("token"));
        return this.access;
      })
      .catch((err) => {
        if (err.status === 401 || err.status === 400) this.expire();
        throw err;
      })
      .finally(() => {
        this._refreshing = null;
      });
    return this._refreshing;
  }

  expire() {
    this._clear();
    this.dispatchEvent(new CustomEvent("expired"));
  }

  async logout() {
    const refresh = this.refresh;
    const access = this.access;
    this._clear();
    if (refresh) {
      try {
        await fetch("/api/auth/logout/", {
          method: "POST",
          headers: {
            "Content-Type": "application/json",
            ...(access ? { Authorization: `Bearer ${access}` } : {}),
          },
          body: JSON.stringify({ refresh }),
        });
      } catch {
        /* signed out locally either way */
      }
    }
    this.dispatchEvent(new Event("change"));
  }

  _clear() {
    clearTimeout(this._timer);
    this.access = this.refresh = this.user = null;
    this._save();
  }
}

export const session = new Session();

async function request(method, url, body, { auth = true, retry = true } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth) headers.Authorization = `Bearer ${await session.accessToken()}`;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { error: { message: "The server cannot be reached." } });
  }
  if (response.status === 401 && auth && retry) {
    await session.refreshAccess();
    return request(method, url, body, { auth, retry: false });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const api = {
  get: (url) => request("GET", url),
  post: (url, body = {}) => request("POST", url, body),
  put: (url, body) => request("PUT", url, body),
  patch: (url, body) => request("PATCH", url, body),
  delete: (url) => request("DELETE", url),
  /** Every page of a paginated list (lists are small here: wards, places, alerts of a ward). */
  async all(url, maxPages = 20) {
    const items = [];
    let next = url;
    for (let i = 0; next && i < maxPages; i++) {
      const data = await request("GET", next);
      if (Array.isArray(data)) return items.concat(data);
      items.push(...(data.results || []));
      next = data.next ? new URL(data.next, location.origin).pathname + new URL(data.next, location.origin).search : null;
    }
    return items;
  },
};

/** A binary answer (the CTG record's PDF) as a Blob; errors as ApiError like JSON calls. */
export async function fetchBlob(url, { retry = true } = {}) {
  let response;
  try {
    response = await fetch(url, { headers: { Authorization: `Bearer ${await session.accessToken()}` } });
  } catch {
    throw new ApiError(0, { error: { message: "The server cannot be reached." } });
  }
  if (response.status === 401 && retry) {
    await session.refreshAccess();
    return fetchBlob(url, { retry: false });
  }
  if (!response.ok) {
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    throw new ApiError(response.status, data);
  }
  return response.blob();
}

export function resultsOf(data) {
  if (Array.isArray(data)) return data;
  return (data && (data.results || data.items || data.buckets)) || [];
}
