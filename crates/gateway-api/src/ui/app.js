// adloop's operator page: reads and acts through gateway-api's own JSON API with the operator's API key
// (kept in this tab's sessionStorage only). Everything from the API is written with textContent, never as
// HTML.
"use strict";

const KEY_STORAGE = "adloop.apiKey";
const REFRESH_MILLISECONDS = 5000;
let refreshing = false;
// An action while a refresh is in flight: that refresh may have read the state before the action, so read
// again once it is done.
let refreshAgain = false;

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    if (cell instanceof Node) {
      const td = document.createElement("td");
      td.appendChild(cell);
      tr.appendChild(td);
    } else if (cell && typeof cell === "object") {
      tr.appendChild(element("td", cell.text, cell.className));
    } else {
      tr.appendChild(element("td", cell));
    }
  }
  return tr;
}

function say(text, isError) {
  const message = document.getElementById("message");
  message.textContent = text || "";
  message.className = isError ? "error" : "";
}

// Minor units to an amount in the currency's own minor unit (JPY has none), as the browser's locale writes it.
function money(minorUnits, currency) {
  if (minorUnits === null || minorUnits === undefined) return "—";
  if (!currency) return String(minorUnits) + " (minor units)";
  try {
    const format = new Intl.NumberFormat(undefined, { style: "currency", currency });
    const digits = format.resolvedOptions().maximumFractionDigits;
    return format.format(minorUnits / Math.pow(10, digits));
  } catch (_) {
    return String(minorUnits) + " " + currency + " (minor units)";
  }
}

function when(unixSeconds) {
  if (!unixSeconds) return "—";
  return new Date(unixSeconds * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

async function api(path, options) {
  const key = sessionStorage.getItem(KEY_STORAGE);
  const headers = { Authorization: "Bearer " + key };
  const init = { method: "GET", headers };
  if (options && options.body !== undefined) {
    init.method = "POST";
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
  if (!response.ok) {
    const detail = body && body.error ? body.error.message : text;
    throw new Error(response.status + " from " + path + ": " + detail);
  }
  return body;
}

function renderExecutor(status) {
  const tenantPaused = status.pauses.some((pause) => pause.scope === "tenant");
  const state = document.getElementById("executor-state");
  state.textContent = status.paused ? "stopped" : "running";
  state.className = status.paused ? "paused" : "running";
  const counts = Object.entries(status.changes_by_state || {})
    .map(([name, count]) => count + " " + name.replace(/_/g, " "))
    .join(", ");
  document.getElementById("executor-counts").textContent = counts ? "Changes: " + counts + "." : "";
  const killSwitch = document.getElementById("kill-switch");
  killSwitch.textContent = tenantPaused ? "Resume changes" : "Stop all changes";
  killSwitch.dataset.action = tenantPaused ? "resume" : "pause";
  killSwitch.className = tenantPaused ? "" : "danger";
  const list = document.getElementById("executor-pauses");
  list.replaceChildren(...status.pauses.map((pause) => element("li",
    pause.scope + (pause.id ? " " + pause.id : "") + " stopped by " + pause.paused_by + " at " +
      when(pause.paused_at_unix) + (pause.reason ? ": " + pause.reason : ""))));
  for (const waiting of status.accounts_waiting_on_meta || []) {
    list.appendChild(element("li", waiting.ad_account_id + " waits on Meta's rate limit for " +
      Math.ceil(waiting.seconds_left) + " s (" + waiting.reason + ")"));
  }
  return status;
}

function renderApprovals(answer) {
  const body = document.getElementById("approvals-rows");
  const changes = answer.changes || [];
  document.getElementById("approvals-empty").hidden = changes.length > 0;
  body.replaceChildren(...changes.map((change) => {
    const isBudget = change.amount !== null && change.amount !== undefined;
    const now = isBudget ? money(change.old_budget, change.currency) : (change.old_status || "—");
    const requested = isBudget ? money(change.amount, change.currency) : change.status;
    const actions = document.createElement("span");
    const approve = element("button", "Approve", "approve");
    approve.dataset.changeId = change.id;
    approve.dataset.action = "approve";
    const reject = element("button", "Reject", "danger");
    reject.dataset.changeId = change.id;
    reject.dataset.action = "cancel";
    actions.append(approve, " ", reject);
    const tr = row([
      "#" + change.id, change.ad_account_id, change.object_id + " (" + change.kind.replace(/_/g, " ") + ")",
      { text: now, className: "number" }, { text: requested, className: "number" }, change.reason,
      { text: change.confidence === null ? "—" : change.confidence.toFixed(2), className: "number" }, actions,
    ]);
    tr.dataset.changeId = change.id;
    return tr;
  }));
}

function allocationTable(summary) {
  const table = document.createElement("table");
  const head = row(["Ad", "Ad set", { text: "Now", className: "number" }, { text: "Recommended", className: "number" },
    { text: "P(best)", className: "number" }, "", "Decision", "Reason"]);
  const thead = document.createElement("thead");
  for (const cell of head.children) thead.appendChild(element("th", cell.textContent, cell.className));
  table.appendChild(thead);
  const tbody = document.createElement("tbody");
  const recommendations = [...(summary.recommendations || [])]
    .sort((left, right) => right.probability_best - left.probability_best);
  for (const recommendation of recommendations) {
    const bar = element("span", null, "bar");
    bar.style.width = Math.round(recommendation.probability_best * 120) + "px";
    tbody.appendChild(row([
      recommendation.ad_id, recommendation.ad_set_id,
      { text: money(recommendation.current_daily_budget, summary.currency), className: "number" },
      { text: money(recommendation.recommended_daily_budget, summary.currency), className: "number" },
      { text: (recommendation.probability_best * 100).toFixed(1) + "%", className: "number" }, bar,
      recommendation.decision, recommendation.reason,
    ]));
  }
  table.appendChild(tbody);
  return table;
}

function renderAccounts(answer, status) {
  const list = document.getElementById("accounts-list");
  const accounts = answer.accounts || [];
  document.getElementById("accounts-empty").hidden = accounts.length > 0;
  const pausedAccounts = new Set(status.pauses.filter((pause) => pause.scope === "account").map((pause) => pause.id));
  list.replaceChildren(...accounts.map((account) => {
    const block = element("div", null, "account");
    block.dataset.accountId = account.ad_account_id;
    const settings = account.autopilot;
    const hours = settings.interval_seconds / 3600;
    const heading = element("h3", account.ad_account_id + " — autopilot " +
      (settings.enabled ? settings.mode.replace("_", " ") + ", every " + hours.toFixed(hours < 1 ? 2 : 0) + " h" : "off"));
    const paused = pausedAccounts.has(account.ad_account_id);
    const toggle = element("button", paused ? "Resume this account" : "Stop this account", paused ? "" : "danger");
    toggle.dataset.accountAction = paused ? "resume" : "pause";
    toggle.dataset.accountId = account.ad_account_id;
    heading.append(" ", toggle);
    block.appendChild(heading);
    const run = account.latest_completed_run;
    if (!run || !run.summary || !run.summary.recommendations) {
      block.appendChild(element("p", "No completed cycle with an allocation yet."));
      return block;
    }
    block.appendChild(element("p", "Cycle of " + when(run.clock_unix) + " (autopilot clock): " +
      money(run.summary.total_daily_budget, run.summary.currency) + " a day across " +
      run.summary.recommendations.length + " ads; " + run.changes_enqueued + " changes queued; model " +
      (run.model_version || "—") + "."));
    const delay = run.summary.reporting_delay;
    if (delay) {
      const percent = (share) => Math.round(100 * share) + "%";
      block.appendChild(element("p", "Conversions reported, as learned from this account's daily reports: " +
        percent(delay.reported_within_1_day) + " within a day, " + percent(delay.reported_within_7_days) +
        " within a week, " + percent(delay.reported_within_14_days) + " within two weeks."));
    }
    block.appendChild(allocationTable(run.summary));
    return block;
  }));
}

function renderRelay(health) {
  const list = document.getElementById("relay-health");
  const entries = [];
  const add = (term, value) => entries.push(element("dt", term), element("dd", value));
  const outcomes = (counts) => {
    const parts = Object.entries(counts || {}).map(([name, count]) => count + " " + name);
    return parts.length ? parts.join(", ") : "none yet";
  };
  add("Status", !health.configured ? "not configured" : health.ready ? "ready" : "not ready");
  if (health.error) add("Problem", health.error);
  if (health.configured) {
    add("Events received", outcomes(health.events));
    add("Delivery to Meta", outcomes(health.delivered_events));
    add("Conversions to the learner", outcomes(health.learning_conversions));
    add("Oldest event waiting", health.oldest_due_event_seconds === null ? "—" :
      health.oldest_due_event_seconds.toFixed(1) + " s");
    add("Pixel pauses (token refused)", health.pixel_pauses === null ? "—" : String(health.pixel_pauses));
  }
  list.replaceChildren(...entries);
}

function renderAudit(answer) {
  const body = document.getElementById("audit-rows");
  body.replaceChildren(...(answer.entries || []).map((entry) => {
    const detail = JSON.stringify(entry.detail);
    const tr = row([when(entry.at_unix), entry.event, entry.object_id || "—",
      entry.ad_change_id ? "#" + entry.ad_change_id : "—", entry.actor,
      detail.length > 160 ? detail.slice(0, 157) + "…" : detail]);
    tr.dataset.event = entry.event;
    return tr;
  }));
}

async function refresh() {
  if (!sessionStorage.getItem(KEY_STORAGE)) return;
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  refreshing = true;
  refreshAgain = false;
  try {
    const [status, approvals, accounts, relay, audit] = await Promise.all([
      api("/v1/executor/status"),
      api("/v1/ad-changes?state=awaiting_approval&limit=100"),
      api("/v1/accounts"),
      api("/v1/relay/health"),
      api("/v1/audit?order=newest&limit=50"),
    ]);
    renderExecutor(status);
    renderApprovals(approvals);
    renderAccounts(accounts, status);
    renderRelay(relay);
    renderAudit(audit);
    document.getElementById("console").hidden = false;
    document.body.dataset.refreshedAt = String(Date.now());
    if (document.getElementById("message").className === "error") say("");
  } catch (error) {
    say(error.message, true);
  } finally {
    refreshing = false;
  }
  if (refreshAgain) await refresh();
}

// Every action goes through the API, then the page reads everything again.
async function act(path, body, done) {
  try {
    await api(path, { body });
    say(done);
  } catch (error) {
    say(error.message, true);
  }
  await refresh();
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  if (button.dataset.changeId && button.dataset.action) {
    const verb = button.dataset.action === "approve" ? "approved" : "rejected";
    act("/v1/ad-changes/" + button.dataset.changeId + "/" + button.dataset.action, {},
      "Change #" + button.dataset.changeId + " " + verb + ".");
  } else if (button.id === "kill-switch") {
    const reason = document.getElementById("kill-reason").value;
    if (button.dataset.action === "resume") {
      act("/v1/executor/resume", {}, "Changes resume.");
    } else {
      act("/v1/executor/pause", { reason }, "Every change of this tenant is stopped.");
    }
  } else if (button.dataset.accountAction) {
    const account = button.dataset.accountId;
    act("/v1/executor/" + button.dataset.accountAction, { ad_account_id: account },
      button.dataset.accountAction === "pause" ? account + " is stopped." : account + " resumes.");
  } else if (button.id === "forget-key") {
    sessionStorage.removeItem(KEY_STORAGE);
    location.reload();
  }
});

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("api-key");
    sessionStorage.setItem(KEY_STORAGE, input.value.trim());
    input.value = "";
    document.getElementById("forget-key").hidden = false;
    refresh();
  });
  if (sessionStorage.getItem(KEY_STORAGE)) {
    document.getElementById("forget-key").hidden = false;
    refresh();
  }
  setInterval(refresh, REFRESH_MILLISECONDS);
});
