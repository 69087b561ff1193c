// "Who accessed this record": the last 50 audit records of a patient, for administrators,
// with the full list as a CSV download (GET /api/audit/export/, itself audited).

import { api, fetchBlob, resultsOf, session } from "./api.js";
import { dateTime, el, parseTime } from "./util.js";

function actorText(actor) {
  const who = actor.label || (actor.id ? `${actor.type} ${actor.id}` : actor.type);
  return actor.role ? `${who} (${actor.role})` : who;
}

/** The card, or null for anyone but an administrator. */
export function accessCard(patientId) {
  if (!session.user || session.user.role !== "admin") return null;
  const body = el("tbody");
  const status = el("p", { class: "muted" }, "Loading…");
  const download = el("button", { type: "button", class: "btn", id: "access-export" }, "Full list (CSV)");
  download.addEventListener("click", async () => {
    download.disabled = true;
    try {
      const blob = await fetchBlob(`/api/audit/export/?patient=${patientId}&file_format=csv`);
      const link = el("a", { href: URL.createObjectURL(blob), download: `access-patient-${patientId}.csv` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
    } catch (err) {
      status.textContent = `Export unavailable: ${err.message}`;
    } finally {
      download.disabled = false;
    }
  });
  const node = el(
    "section",
    { class: "card wide", "aria-labelledby": "access-h", id: "access-card" },
    el("div", { class: "chart-head" }, el("h2", { id: "access-h" }, "Who accessed this record"), download),
    status,
    el(
      "table",
      { class: "access-table" },
      el("thead", {}, el("tr", {}, ["When", "Who", "From", "What", "Outcome"].map((h) => el("th", { scope: "col" }, h)))),
      body,
    ),
  );
  api
    .get(`/api/audit/?patient=${patientId}&page_size=50`)
    .then((data) => {
      const rows = resultsOf(data);
      status.textContent = rows.length ? `The last ${rows.length} accesses.` : "No access recorded.";
      body.replaceChildren(
        ...rows.map((r) =>
          el(
            "tr",
            {},
            el("td", {}, dateTime(parseTime(r.at))),
            el("td", {}, actorText(r.actor)),
            el("td", {}, `${r.channel}${r.address ? " · " + r.address : ""}`),
            el("td", {}, `${r.action} ${r.resource.type || ""}`.trim()),
            el("td", {}, r.outcome),
          ),
        ),
      );
    })
    .catch((err) => {
      status.textContent = `Access list unavailable: ${err.message}`;
    });
  return node;
}
