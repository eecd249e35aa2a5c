// The login form: the operator pastes a credential (the admin one is in the control
// plane's data dir, `credentials/admin.token`); the answer sets the HttpOnly session cookie.
import { ApiError, login } from "./api.js";
import { h } from "./dom.js";

/** The form; calls onDone(session) once logged in. */
export function loginForm(onDone, reason = "") {
  const input = h("input", { type: "password", id: "login-token", name: "token", autocomplete: "current-password",
    required: true, spellcheck: false, "aria-describedby": "login-help" });
  const error = h("p.error", { id: "login-error", role: "alert" });
  const button = h("button.primary", { type: "submit", id: "login-submit" }, "Log in");
  const form = h("form.card.login", {
    "aria-labelledby": "login-title",
    on: {
      submit: async (event) => {
        event.preventDefault();
        error.textContent = "";
        button.disabled = true;
        try {
          onDone(await login(input.value.trim()));
        } catch (err) {
          error.textContent = err instanceof ApiError && err.status === 401
            ? "That credential was refused: it is unknown, expired, revoked or not an operator's."
            : `Could not log in: ${err.message}`;
          input.select();
        } finally {
          button.disabled = false;
        }
      },
    },
  },
  h("h1", { id: "login-title" }, "Log in to gossamer"),
  reason ? h("p.notice", {}, reason) : null,
  h("label.block", { for: "login-token" }, "Operator credential"),
  input,
  h("p.note", { id: "login-help" }, "An operator token (gst_…). The admin's is in the control plane's data dir, ",
    h("code", {}, "credentials/admin.token"), "; ", h("code", {}, "gossamer token create --operator NAME"), " makes others."),
  button,
  error);
  return { node: form, focus: () => input.focus() };
}
