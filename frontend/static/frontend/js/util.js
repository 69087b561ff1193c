// Small DOM and formatting helpers shared by the views.

/** Create an element: el("div", {class: "x", text: "y"}, child, ...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Set textContent only when it changed (avoids needless style/layout work). */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

export function setAttr(node, name, value) {
  if (value === null || value === undefined) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== String(value)) {
    node.setAttribute(name, value);
  }
}

export function parseTime(value) {
  if (value === null || value === undefined) return NaN;
  return typeof value === "number" ? value : Date.parse(value);
}

const pad = (n) => String(n).padStart(2, "0");

export function clockTime(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function dateTime(ms) {
  if (!Number.isFinite(ms)) return "—";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clockTime(ms)}`;
}

/** "12 s ago", "4 min ago", "3 h ago". */
export function ago(ms, now = Date.now()) {
  if (!Number.isFinite(ms)) return "never";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

// The ranking comes from the server (alerts.vocabulary), rendered into the page as JSON.
const VOCABULARY = JSON.parse(document.getElementById("vocabulary")?.textContent || "{}");
export const PRIORITY_RANK = VOCABULARY.priority_rank || {};
export const PRIORITY_LABEL = { high: "HIGH", medium: "MEDIUM", low: "LOW" };
// IEC 60601-1-8 visual markers: the priority is never told by colour alone.
export const PRIORITY_MARK = { high: "!!!", medium: "!!", low: "!" };

/** One alarm `a` of an alarm list: its priority mark, its `body` (an array of lines) in the
 * alarm's box, then `after` (an acknowledge button, or null). */
export function alertItem(a, body, after = null) {
  return el(
    "li",
    { class: "alert-item", dataset: { alert: String(a.id), priority: a.priority, state: a.state } },
    el("span", { class: "alert-mark", "aria-hidden": "true" }, PRIORITY_MARK[a.priority] || "!"),
    el("div", { class: "alert-body" }, ...body),
    after,
  );
}

export function humanKind(kind) {
  return String(kind || "alarm").replaceAll("_", " ");
}

// The alarm's short name (alerts.vocabulary.KIND_SHORT_NAMES): what a tile shows whole.
const KIND_SHORT = VOCABULARY.kind_short || {};
export function shortKind(kind) {
  if (KIND_SHORT[kind]) return KIND_SHORT[kind];
  const words = humanKind(kind);
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Local datetime-input value <-> epoch ms. */
export function toLocalInput(ms, seconds = false) {
  const d = new Date(ms);
  const base = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return seconds ? `${base}:${pad(d.getSeconds())}` : base;
}
