// The viewer role: it sees everything, but every mutating control is disabled (or, for
// commands, not offered) and the page says why. The API refuses a viewer's changes anyway;
// this only keeps the page honest about it.
import { session } from "./api.js";
import { h } from "./dom.js";

/** Whether the logged-in operator may change the mesh (admins; no credentials at all). */
export const mayChange = () => session.role !== "viewer";

/** The explanation shown where the controls are disabled; null when nothing is. */
export function readOnlyNote(what) {
  if (mayChange()) return null;
  return h("p.readonly", { id: "readonly-note", role: "note" },
    `Read-only: you are logged in as ${session.name} (${session.role}). You can see everything, but ${what} `
      + "needs an admin credential.");
}
