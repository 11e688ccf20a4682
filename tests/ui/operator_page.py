"""The operator page (/ui) in headless Chromium, driven by real clicks against the running stack.

The autopilot runs one cycle in approval mode for meta-sim's account, which leaves its changes waiting for
approval. Through the page only, the operator then
  - sees the account's current allocation, each ad's P(best) and the allocator's reason;
  - approves one change: it leaves the pending list, the audit trail shows the approval, and the executor
    applies it to meta-sim (the ad set's daily_budget there becomes the approved amount);
  - flips the kill switch: the page says changes are stopped, the audit trail shows the pause with its
    reason, and a second change approved meanwhile is not applied; flips it back: that change is applied;
  - rejects a third change;
  - sees the relay's health.
Every check reads the page; the API and meta-sim are read only to know what the page should show.

Environment (from scripts/services' dev.env): ADLOOP_GATEWAY_URL, ADLOOP_DEV_API_KEY, ADLOOP_META_SIM_URL,
ADLOOP_META_SIM_TOKEN; ADLOOP_UI_SCREENSHOT_DIR for a screenshot of each step.
"""

import json
import os
import sys
import time
import urllib.request

from playwright.sync_api import expect, sync_playwright

GATEWAY = os.environ["ADLOOP_GATEWAY_URL"]
API_KEY = os.environ["ADLOOP_DEV_API_KEY"]
META_SIM = os.environ["ADLOOP_META_SIM_URL"]
META_SIM_TOKEN = os.environ["ADLOOP_META_SIM_TOKEN"]
SCREENSHOTS = os.environ.get("ADLOOP_UI_SCREENSHOT_DIR", ".data/ui-check")
# meta-sim's first (and, in stationary-10, only) ad account.
ACCOUNT = "act_100000001"
TIMEOUT_SECONDS = 60
# The page reads everything again after each action; on a busy 2-core machine that can take seconds.
expect.set_options(timeout=15_000)


def api(method, path, body=None):
    request = urllib.request.Request(
        GATEWAY + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + API_KEY, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
        try:
            return json.loads(body)
        except json.JSONDecodeError:
            # Say what answered: a body that is not JSON has come from something other than the gateway.
            sys.exit(
                f"operator page: {method} {GATEWAY}{path} answered {response.status} "
                f"{response.headers.get('content-type')!r} with a body that is not JSON: {body[:200]!r}"
            )


def daily_budget_at_meta_sim(ad_set_id):
    url = f"{META_SIM}/v25.0/{ad_set_id}?fields=daily_budget&access_token={META_SIM_TOKEN}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return int(json.loads(response.read())["daily_budget"])


def wait_for(description, predicate):
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    sys.exit(f"operator page: timed out waiting for {description}")


def change_state(change_id):
    return api("GET", f"/v1/ad-changes/{change_id}")["state"]


def pending_changes():
    return api("GET", f"/v1/ad-changes?state=awaiting_approval&account={ACCOUNT}&limit=100")["changes"]


def main():
    api("POST", f"/v1/accounts/{ACCOUNT}/autopilot", {"enabled": True, "mode": "approval", "interval_seconds": 86400})
    try:
        check_the_page()
    finally:
        # The tenant is this run's own, but its autopilot would otherwise run again whenever a gateway with
        # this database starts.
        api("POST", f"/v1/accounts/{ACCOUNT}/autopilot", {"enabled": False, "mode": "approval"})


def check_the_page():
    pending = wait_for("the autopilot's changes to wait for approval",
                       lambda: (lambda changes: changes if len(changes) >= 3 else None)(pending_changes()))
    budget_changes = [change for change in pending if change["amount"] is not None]
    if len(budget_changes) < 2:
        sys.exit(f"operator page: the cycle left {len(budget_changes)} budget changes; the check needs two")
    run = api("GET", "/v1/accounts")["accounts"][0]["latest_completed_run"]
    top = max(run["summary"]["recommendations"], key=lambda recommendation: recommendation["probability_best"])

    os.makedirs(SCREENSHOTS, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        page_errors = []
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        page.on("console", lambda message: message.type == "error" and page_errors.append(message.text))

        page.goto(GATEWAY + "/ui")
        page.fill("#api-key", API_KEY)
        page.click("text=Connect")

        # The allocation: the most likely best ad with its P(best) and the allocator's reason.
        account_block = page.locator(f'div.account[data-account-id="{ACCOUNT}"]')
        expect(account_block).to_be_visible()
        top_row = account_block.locator("tbody tr", has_text=top["ad_id"]).first
        expect(top_row).to_contain_text(f'{top["probability_best"] * 100:.1f}%')
        expect(top_row).to_contain_text(top["reason"][:40])
        # The account's reporting delays as its autopilot learned them.
        within_a_week = round(100 * run["summary"]["reporting_delay"]["reported_within_7_days"])
        expect(account_block).to_contain_text(f"{within_a_week}% within a week")
        page.screenshot(path=f"{SCREENSHOTS}/1-allocation.png", full_page=True)

        # Approve the first budget change: it leaves the list, is audited, and reaches meta-sim.
        approved = budget_changes[0]
        approved_row = page.locator(f'#approvals-rows tr[data-change-id="{approved["id"]}"]')
        expect(approved_row).to_be_visible()
        approved_row.get_by_role("button", name="Approve").click()
        expect(approved_row).to_have_count(0)
        expect(page.locator("#audit-rows tr[data-event='approve']", has_text=f'#{approved["id"]}')).to_be_visible()
        wait_for(f'change #{approved["id"]} to be applied', lambda: change_state(approved["id"]) == "completed")
        applied_budget = daily_budget_at_meta_sim(approved["object_id"])
        if applied_budget != approved["amount"]:
            sys.exit(f"operator page: meta-sim's budget {applied_budget} is not the approved {approved['amount']}")
        expect(page.locator("#audit-rows tr[data-event='completed']", has_text=f'#{approved["id"]}')).to_be_visible(
            timeout=15_000)
        page.screenshot(path=f"{SCREENSHOTS}/2-approved.png", full_page=True)

        # The kill switch: stopped, audited with its reason; a change approved meanwhile waits.
        page.fill("#kill-reason", "operator page check")
        page.click("#kill-switch")
        expect(page.locator("#executor-state")).to_have_text("stopped")
        expect(page.locator("#kill-switch")).to_have_text("Resume changes")
        expect(page.locator("#audit-rows tr[data-event='executor_paused']").first).to_contain_text("operator page check")
        held = budget_changes[1]
        budget_before = daily_budget_at_meta_sim(held["object_id"])
        page.locator(f'#approvals-rows tr[data-change-id="{held["id"]}"]').get_by_role("button", name="Approve").click()
        expect(page.locator(f'#approvals-rows tr[data-change-id="{held["id"]}"]')).to_have_count(0)
        time.sleep(3)  # several of the executor's polls: a stopped executor must not claim it
        if change_state(held["id"]) != "available" or daily_budget_at_meta_sim(held["object_id"]) != budget_before:
            sys.exit(f'operator page: change #{held["id"]} was applied while the kill switch was on')
        page.screenshot(path=f"{SCREENSHOTS}/3-stopped.png", full_page=True)

        page.click("#kill-switch")
        expect(page.locator("#executor-state")).to_have_text("running")
        expect(page.locator("#audit-rows tr[data-event='executor_resumed']").first).to_be_visible()
        wait_for(f'change #{held["id"]} to be applied after the resume', lambda: change_state(held["id"]) == "completed")
        if daily_budget_at_meta_sim(held["object_id"]) != held["amount"]:
            sys.exit(f'operator page: change #{held["id"]} did not reach meta-sim after the resume')

        # Reject another change.
        rejected = next(change for change in pending if change["id"] not in (approved["id"], held["id"]))
        page.locator(f'#approvals-rows tr[data-change-id="{rejected["id"]}"]').get_by_role("button", name="Reject").click()
        expect(page.locator("#audit-rows tr[data-event='cancel']", has_text=f'#{rejected["id"]}')).to_be_visible()
        if change_state(rejected["id"]) != "cancelled":
            sys.exit(f'operator page: rejected change #{rejected["id"]} is {change_state(rejected["id"])}')

        # The relay's health.
        expect(page.locator("#relay-health dd").first).to_have_text("ready")
        page.screenshot(path=f"{SCREENSHOTS}/4-done.png", full_page=True)
        browser.close()
        if page_errors:
            sys.exit("operator page: the page reported errors: " + "; ".join(page_errors))
    print(f'operator page: approved #{approved["id"]} and #{held["id"]} (applied), rejected #{rejected["id"]}, '
          "kill switch stopped and resumed the executor, all audited")


if __name__ == "__main__":
    main()
