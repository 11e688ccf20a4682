"""Conformance of meta-sim against a client nobody here wrote: Meta's official Python Business SDK.

Run by scripts/run-sdk-conformance, which starts meta-sim and passes its base URL. Everything the SDK sends
must be accepted and everything it receives must parse into the SDK's own objects. Exits non-zero on the
first failed check.
"""
import json
import sys
import time
import urllib.request

from facebook_business.adobjects.adaccount import AdAccount
from facebook_business.adobjects.adset import AdSet
from facebook_business.adobjects.serverside.action_source import ActionSource
from facebook_business.adobjects.serverside.custom_data import CustomData
from facebook_business.adobjects.serverside.event import Event
from facebook_business.adobjects.serverside.event_request import EventRequest
from facebook_business.adobjects.serverside.user_data import UserData
from facebook_business.api import FacebookAdsApi, FacebookSession
from facebook_business.exceptions import FacebookRequestError

TOKEN = "meta-sim-dev-token"
PIXEL_ID = "100000000000001"
ACCOUNT_ID = "act_100000001"
FIRST_AD_SET = "23851000000001"
SECOND_AD_SET = "23851000000002"
THIRD_AD_SET = "23851000000003"

checks_passed = 0


def check(condition, description):
    global checks_passed
    if not condition:
        print(f"FAILED: {description}", file=sys.stderr)
        sys.exit(1)
    checks_passed += 1
    print(f"ok: {description}")


def sim_json(base_url, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base_url}/{path}", data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def ad_set_budget_in_sim(base_url, ad_set_id):
    state = sim_json(base_url, "_sim/state")
    return next(o["daily_budget"] for o in state["objects"] if o["id"] == ad_set_id)


def main(base_url):
    FacebookSession.GRAPH = base_url
    FacebookAdsApi.init(access_token=TOKEN)

    # Move the simulated clock to the real "now" so CAPI event times are current.
    clock = sim_json(base_url, "_sim/clock")
    hours_behind = max(0.0, (time.time() - clock["now_unix"]) / 3600.0)
    sim_json(base_url, "_sim/clock", {"advance_hours": hours_behind})

    # Reading objects.
    account = AdAccount(ACCOUNT_ID).api_get(fields=[AdAccount.Field.currency, AdAccount.Field.name])
    check(account[AdAccount.Field.currency] == "USD", "AdAccount.api_get reads the currency")
    ad_set = AdSet(FIRST_AD_SET).api_get(
        fields=[AdSet.Field.name, AdSet.Field.status, AdSet.Field.effective_status, AdSet.Field.daily_budget,
                AdSet.Field.campaign_id]
    )
    check(ad_set[AdSet.Field.status] == "ACTIVE", "AdSet.api_get reads status")
    check(int(ad_set[AdSet.Field.daily_budget]) == 10000, "AdSet.api_get reads daily_budget in minor units")

    # Updating a budget.
    AdSet(FIRST_AD_SET).api_update(params={AdSet.Field.daily_budget: 15000})
    check(ad_set_budget_in_sim(base_url, FIRST_AD_SET) == 15000, "AdSet.api_update changes the budget in meta-sim")

    # Errors parse into FacebookRequestError with Meta's codes.
    try:
        AdSet(SECOND_AD_SET).api_update(params={AdSet.Field.daily_budget: 1})
        check(False, "a budget below the minimum is refused")
    except FacebookRequestError as error:
        check(error.api_error_code() == 100, "a refused budget raises FacebookRequestError with code 100")
        check(error.api_error_subcode() == 1885272, "and Meta's budget-too-low subcode")
    try:
        AdSet("999").api_get(fields=[AdSet.Field.name])
        check(False, "an unknown object is refused")
    except FacebookRequestError as error:
        check(error.api_error_code() == 100 and error.api_error_subcode() == 33, "unknown objects get 100 / 33")

    # A batch with one failing operation.
    api = FacebookAdsApi.get_default_api()
    batch = api.new_batch()
    outcomes = {}

    def recorder(name):
        def record(response):
            outcomes[name] = response
        return record

    AdSet(SECOND_AD_SET).api_update(params={AdSet.Field.daily_budget: 12000}, batch=batch,
                                    success=recorder("update-ok"), failure=recorder("update-failed"))
    # A second ad set of the same campaign in one batch: Meta refuses it (one ad set per campaign per batch).
    AdSet(THIRD_AD_SET).api_update(params={AdSet.Field.daily_budget: 12000}, batch=batch,
                                   success=recorder("second-ad-set-ok"), failure=recorder("second-ad-set-failed"))
    AdSet(FIRST_AD_SET).api_get(fields=[AdSet.Field.daily_budget], batch=batch,
                                success=recorder("read-ok"), failure=recorder("read-failed"))
    retry = batch.execute()
    check(retry is None, "every batch operation ran (none came back null)")
    check("update-ok" in outcomes and outcomes["update-ok"].json()["success"] is True,
          "the batched update succeeded and its body parsed")
    refused = outcomes.get("second-ad-set-failed")
    check(refused is not None and refused.error().api_error_code() == 100
          and "same campaign" in refused.error().api_error_message(),
          "a second ad set of the campaign failed alone, with a parseable error naming the rule")
    check("read-ok" in outcomes and outcomes["read-ok"].json()["daily_budget"] == "15000",
          "the batched read returned the updated budget")
    check(ad_set_budget_in_sim(base_url, SECOND_AD_SET) == 12000, "the batched update applied in meta-sim")
    check(ad_set_budget_in_sim(base_url, THIRD_AD_SET) == 10000, "the refused update did not apply")

    # A dependent batch: the operation another depends on answers null (Meta omits it by default), and the SDK
    # takes null for "did not run" and hands it back for a retry: a client must not re-send that write blindly.
    dependent = api.new_batch()
    rename = dependent.add("POST", (SECOND_AD_SET,), params={"name": "renamed-in-batch"})
    rename["name"] = "rename"
    read_back = dependent.add("GET", (SECOND_AD_SET,), params={"fields": "name"}, success=recorder("read-back"))
    read_back["depends_on"] = "rename"
    retry = dependent.execute()
    check(retry is not None and len(retry) == 1, "the omitted dependency comes back to the SDK as 'retry'")
    check("read-back" in outcomes and outcomes["read-back"].json()["name"] == "renamed-in-batch",
          "yet it ran: the dependent read sees the new name")

    # Insights.
    insights = AdSet(FIRST_AD_SET).get_insights(
        fields=["impressions", "clicks", "spend", "actions", "action_values", "ctr", "frequency"],
        params={"time_increment": 1, "date_preset": "maximum"},
    )
    rows = list(insights)
    check(len(rows) >= 1 and int(rows[0]["impressions"]) > 0, "get_insights returns daily rows with delivery")

    # Paging: the SDK's Cursor follows paging.cursors.after while paging.next is there.
    paged = AdAccount(ACCOUNT_ID).get_insights(
        fields=["ad_id", "impressions"],
        params={"level": "ad", "date_preset": "maximum", "limit": 3},
    )
    ad_ids = [row["ad_id"] for row in paged]
    check(len(ad_ids) == 10 and len(set(ad_ids)) == 10,
          "the SDK's cursor walks every page of ad-level insights, each ad once")

    # Conversions API through the SDK's own EventRequest (it hashes the email itself).
    user_data = UserData(email="Person@Example.com", client_user_agent="Mozilla/5.0 (X11; Linux x86_64)",
                         fbp="fb.1.1596403881668.1116446470", client_ip_address="203.0.113.9")
    event = Event(event_name="Purchase", event_time=int(time.time()), event_id="sdk-order-1",
                  user_data=user_data, custom_data=CustomData(value=49.5, currency="usd"),
                  event_source_url="https://shop.example/checkout", action_source=ActionSource.WEBSITE)
    response = EventRequest(events=[event], pixel_id=PIXEL_ID, test_event_code="TEST4242").execute()
    check(response.events_received == 1, "EventRequest.execute is accepted and its response parses")
    stored = sim_json(base_url, f"_sim/capi/events?pixel_id={PIXEL_ID}")
    check(stored["counts"]["received"] == 1, "meta-sim stored exactly the one event the SDK sent")
    check(len(stored["events"][0]["event"]["user_data"]["em"][0]) == 64, "the SDK-hashed email passed validation")

    old_event = Event(event_name="Purchase", event_time=int(time.time()) - 10 * 86400, user_data=user_data,
                      event_source_url="https://shop.example/checkout", action_source=ActionSource.WEBSITE)
    try:
        EventRequest(events=[old_event], pixel_id=PIXEL_ID).execute()
        check(False, "an event older than 7 days is refused")
    except FacebookRequestError as error:
        check(error.api_error_code() == 100, "an event older than 7 days raises FacebookRequestError code 100")

    print(f"{checks_passed} passed, 0 failed")


if __name__ == "__main__":
    main(sys.argv[1])
