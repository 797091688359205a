// One model: its versions, which is deployed, each version's metrics and config;
// deploy and archive for those allowed.
import { get } from "../api.js";
import { action, badge, card, facts, fill, h, json, table, time, title } from "../ui.js";
import { metrics } from "./models.js";

const VERSION = "/api/v1/models/{name}/versions/{version}";

export async function render({ main, params, query }) {
  const model = await get(`/api/v1/models/${encodeURIComponent(params.model)}`);
  const chosen = model.versions.find((v) => v.version === query.get("version")) ?? model.versions[0];
  const reload = () => location.reload();
  fill(main,
    title(model.name, model.deployed.length
      ? h("span", {}, "deployed ", model.deployed.map((v) => badge(v, "ok")))
      : badge("none deployed", "warn")),
    card("Versions", table({
      caption: "Versions, newest first",
      columns: [
        { label: "Version", cell: (v) => h("a", { href: `?version=${encodeURIComponent(v.version)}` }, v.version) },
        { label: "Status", cell: (v) => badge(v.status) },
        { label: "Type", cell: (v) => [v.type, v.framework ? h("div", { class: "muted" }, v.framework) : null] },
        { label: "Metrics", cell: (v) => metrics(v.metrics) },
        { label: "Registered", cell: (v) => [time(v.created_at), h("div", { class: "muted" }, v.created_by)] },
        { label: "Deployed", cell: (v) => time(v.deployed_at) },
        { label: "Actions", cell: (v) => h("div", { class: "title-row" },
            v.status === "training" ? action({ label: "Deploy", pattern: `${VERSION}/deploy`, name: `deploy ${v.version}`,
              params: { name: model.name, version: v.version }, primary: true, done: reload }) : null,
            v.status !== "archived" ? action({ label: "Archive", pattern: `${VERSION}/archive`, name: `archive ${v.version}`,
              params: { name: model.name, version: v.version }, danger: true, done: reload,
              confirm: `Archive ${model.name} ${v.version} for good? It can never be deployed again.` }) : null) },
      ],
      rows: model.versions,
    })),
    chosen ? h("div", { class: "grid" },
      card(`Version ${chosen.version}`, facts([
        ["description", chosen.description],
        ["artifact", chosen.artifact_uri ? h("code", {}, chosen.artifact_uri) : "–"],
        ["status", badge(chosen.status)],
        ["updated", time(chosen.updated_at)],
        ["archived", time(chosen.archived_at)],
      ])),
      card("Metrics", json(chosen.metrics)),
      card("Config", json(chosen.config))) : null);
}
