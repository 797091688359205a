// Approvals: the inbox of what waits for a person's decision, with approve and
// reject and a comment for those whose role may decide; the decided ones too.
import { call, get, route } from "../api.js";
import { ago, badge, card, fill, filters, h, json, link, messageOf, notify, pager, short, time, title, uid } from "../ui.js";
import { atLeast, can } from "../session.js";

const ONE = "/api/v1/approvals/{approval_id}";

export async function render({ main, query }) {
  // "all", as the CLI's --status all says it (and links in the examples), is no filter
  const asked = query.get("status") ?? "pending";
  const status = asked === "all" ? "" : asked;
  const page = await get("/api/v1/approvals", { status: status || undefined,
                                                run_id: query.get("run_id") || undefined,
                                                before: query.get("before") || undefined, limit: 50 });
  const shown = new URLSearchParams(query);
  shown.set("status", status);
  fill(main, title("Approvals"),
    card("Show", filters([{ name: "status", label: "Status", options: [["pending", "waiting for a decision"],
      ["", "all"], ["approved", "approved"], ["rejected", "rejected"], ["expired", "expired"]] }], shown, { submit: "Show" })),
    h("section", { class: "approvals", "aria-label": "approvals" },
      page.approvals.length ? page.approvals.map(approvalCard)
        : h("p", { class: "card muted" }, status === "pending" ? "nothing waits for a decision" : "no approvals match")),
    pager(query, "before", page.next_before));
}

function approvalCard(a) {
  const id = uid("approval");
  const decide = a.status === "pending" && atLeast(a.role) &&
    can("POST", `${ONE}/approve`) ? decisionForm(a) : null;
  return h("article", { class: "card approval", "aria-labelledby": id, dataset: { approval: a.id } },
    h("div", { class: "title-row" }, h("h2", { id }, a.title), badge(a.status)),
    h("dl", { class: "facts" },
      h("dt", {}, "decided by"), h("dd", {}, a.status === "pending" ? `the ${a.role} role or above` : a.decided_by ?? "–"),
      a.run_id ? [h("dt", {}, "run"), h("dd", {}, link(`/workflow-runs/${a.run_id}`, short(a.run_id)), a.step ? ` step ${a.step}` : "")] : null,
      a.task_id ? [h("dt", {}, "task"), h("dd", {}, link(`/tasks/${a.task_id}`, short(a.task_id)))] : null,
      h("dt", {}, "asked"), h("dd", {}, time(a.created_at)),
      a.expires_at ? [h("dt", {}, "expires"), h("dd", {}, ago(a.expires_at), ` (then ${a.on_timeout})`)] : null,
      a.comment ? [h("dt", {}, "comment"), h("dd", {}, a.comment)] : null,
      a.decided_at ? [h("dt", {}, "decided"), h("dd", {}, time(a.decided_at))] : null),
    Object.keys(a.details ?? {}).length ? h("details", {}, h("summary", {}, "details"), json(a.details)) : null,
    decide ?? (a.status === "pending" ? h("p", { class: "muted" }, `Only the ${a.role} role or above decides this one.`) : null));
}

function decisionForm(a) {
  const commentId = uid("comment");
  const comment = h("textarea", { id: commentId, name: "comment", rows: 2 });
  const error = h("p", { class: "error", role: "alert" });
  const decide = (verb) => async () => {
    error.textContent = "";
    try {
      await call("POST", route(`${ONE}/${verb}`, { approval_id: a.id }),
                 { body: comment.value ? { comment: comment.value } : {} });
      notify(`${verb === "approve" ? "Approved" : "Rejected"}: ${a.title}`);
      location.reload();
    } catch (e) {
      error.textContent = messageOf(e);
    }
  };
  return h("div", { class: "decision" },
    h("label", { for: commentId }, "Comment (optional)"), comment,
    h("div", { class: "title-row" },
      h("button", { type: "button", class: "primary", onclick: decide("approve") }, "Approve"),
      h("button", { type: "button", class: "danger", onclick: decide("reject") }, "Reject")),
    error);
}
