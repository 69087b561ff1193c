// The patient's notes in the history's range (GET /api/patients/<id>/notes/), newest first, with
// their addenda: the author corrects a note while it is editable (PATCH, NOTE_EDIT_MINUTES),
// anyone annotates it (POST .../addenda/). Live `note` frames replace a note by id.
import { api, session } from "./api.js";
import { dateTime, el, parseTime, setText } from "./util.js";

export class NotesList {
  constructor({ patientId }) {
    this.patientId = patientId;
    this.notes = new Map();
    this.range = null;
    this.destroyed = false;
    this.list = el("ol", { class: "note-list", id: "note-list", "aria-live": "polite" });
    this.status = el("p", { class: "muted small", id: "note-status" });
    this.node = el("div", { class: "notes" }, el("h3", { class: "notes-h" }, "Notes in this range"), this.status, this.list);
  }

  destroy() {
    this.destroyed = true;
  }

  async load(from, to) {
    this.range = { from, to };
    const query = `from=${encodeURIComponent(new Date(from).toISOString())}&to=${encodeURIComponent(new Date(to).toISOString())}&page_size=1000`;
    try {
      const body = await api.get(`/api/patients/${this.patientId}/notes/?${query}`);
      if (this.destroyed) return;
      this.notes = new Map((body.results || []).map((n) => [n.id, n]));
      setText(this.status, "");
    } catch (err) {
      setText(this.status, `Notes unavailable: ${err.message}`);
    }
    this.render();
  }

  /** A note written, corrected or annotated (a `note` frame or a save on this page). */
  setNote(note) {
    const t = parseTime(note.at);
    // A live history range follows the clock: a new note at "now" belongs to it.
    if (this.range && t >= this.range.from && t <= Math.max(this.range.to, Date.now())) this.notes.set(note.id, note);
    this.render();
  }

  render() {
    if (this.destroyed) return;
    const notes = [...this.notes.values()].sort((a, b) => parseTime(b.at) - parseTime(a.at));
    this.list.replaceChildren(...(notes.length ? notes.map((n) => this.item(n)) : [el("li", { class: "note-none muted" }, "No notes in this range.")]));
  }

  item(note) {
    const mine = session.user && Number(note.author.id) === Number(session.user.id);
    const editable = mine && Date.now() < parseTime(note.editable_until) && !(note.addenda || []).length;
    const actions = el("div", { class: "note-actions" });
    const li = el(
      "li",
      { class: "note-item", dataset: { note: String(note.id) } },
      el("div", { class: "note-head" },
        el("time", { class: "note-time", datetime: note.at }, dateTime(parseTime(note.at))),
        el("span", { class: "note-who muted small" }, `${note.author.name}, written ${dateTime(parseTime(note.created_at))}${note.edited_at ? " (corrected)" : ""}`)),
      el("p", { class: "note-text" }, note.text),
      (note.addenda || []).length
        ? el("ul", { class: "note-addenda" }, note.addenda.map((a) => el("li", {}, el("span", { class: "muted small" }, `Addendum by ${a.author.name}, ${dateTime(parseTime(a.created_at))}: `), a.text)))
        : null,
      actions,
    );
    const form = (label, initial, submit) => {
      const input = el("input", { type: "text", class: "note-input", maxlength: "1000", value: initial, "aria-label": label, required: true });
      const error = el("span", { class: "form-error" });
      const f = el("form", { class: "note-inline" }, input, el("button", { type: "submit", class: "btn btn-primary" }, "Save"),
        el("button", { type: "button", class: "btn", onclick: () => this.render() }, "Cancel"), error);
      f.addEventListener("submit", async (e) => {
        e.preventDefault();
        try {
          this.setNote(await submit(input.value.trim()));
        } catch (err) {
          setText(error, err.message);
        }
      });
      actions.replaceChildren(f);
      input.focus();
    };
    if (editable) {
      actions.append(el("button", { type: "button", class: "btn btn-small note-edit", onclick: () => form("Correct the note", note.text, (text) => api.patch(`/api/patients/${this.patientId}/notes/${note.id}/`, { text })) }, "Correct"));
    }
    actions.append(el("button", { type: "button", class: "btn btn-small note-annotate", onclick: () => form("Addendum", "", (text) => api.post(`/api/patients/${this.patientId}/notes/${note.id}/addenda/`, { text })) }, "Add addendum"));
    return li;
  }
}
