"""Conformance of capi-relay against a client nobody here wrote: Meta's official Python Business SDK, pointed at
the relay instead of Meta (only its base URL and token change).

Run by scripts/run-sdk-conformance, which starts meta-sim and a relay delivering to it, and passes the relay's
base URL, an ingest token for the pixel and meta-sim's base URL. The SDK's EventRequest must be accepted, its
response must parse, the event must reach meta-sim with its event id, and the relay's refusals must raise the
SDK's own FacebookRequestError. Exits non-zero on the first failed check.
"""
import json
import sys
import time
import urllib.request

from facebook_business.adobjects.serverside.action_source import ActionSource
from facebook_business.adobjects.serverside.custom_data import CustomData
from facebook_business.adobjects.serverside.event import Event
from facebook_business.adobjects.serverside.event_request import EventRequest
from facebook_business.adobjects.serverside.user_data import UserData
from facebook_business.api import FacebookAdsApi, FacebookSession
from facebook_business.exceptions import FacebookRequestError

PIXEL_ID = "100000000000001"

checks_passed = 0


def check(condition, description):
    global checks_passed
    if not condition:
        print(f"FAILED: {description}", file=sys.stderr)
        sys.exit(1)
    checks_passed += 1
    print(f"ok: {description}")


def events_at_meta_sim(meta_sim_url):
    with urllib.request.urlopen(f"{meta_sim_url}/_sim/capi/events?pixel_id={PIXEL_ID}") as response:
        return json.load(response)["events"]


def main(relay_url, ingest_token, meta_sim_url):
    FacebookSession.GRAPH = relay_url
    FacebookAdsApi.init(access_token=ingest_token)

    user_data = UserData(email="Person@Example.com", client_user_agent="Mozilla/5.0 (X11; Linux x86_64)",
                         fbp="fb.1.1596403881668.1116446470", client_ip_address="203.0.113.9",
                         phone="+1 (650) 555-1212")
    # An id of this run's own: the relay's schema outlives a run, and it would de-duplicate a repeated id.
    event_id = f"sdk-relay-order-{time.time_ns()}"
    event = Event(event_name="Purchase", event_time=int(time.time()), event_id=event_id,
                  user_data=user_data, custom_data=CustomData(value=49.5, currency="usd"),
                  event_source_url="https://shop.example/checkout", action_source=ActionSource.WEBSITE)
    response = EventRequest(events=[event], pixel_id=PIXEL_ID).execute()
    check(response.events_received == 1, "the relay accepts the SDK's EventRequest and the SDK parses the answer")

    deadline = time.time() + 20
    delivered = []
    while time.time() < deadline:
        delivered = [stored for stored in events_at_meta_sim(meta_sim_url) if stored["event_id"] == event_id]
        if delivered:
            break
        time.sleep(0.2)
    check(len(delivered) == 1, "the relay delivered the event to meta-sim once, with the SDK's event id")
    em = delivered[0]["event"]["user_data"]["em"][0]
    check(em == "542d240129883c019e106e3b1b2d3f3cb3537c43c425364de8e951d5a3083345",
          "the email arrives hashed once (the SDK hashed it; the relay passed the digest through)")

    old_event = Event(event_name="Purchase", event_time=int(time.time()) - 10 * 86400, user_data=user_data,
                      event_source_url="https://shop.example/checkout", action_source=ActionSource.WEBSITE)
    try:
        EventRequest(events=[old_event], pixel_id=PIXEL_ID).execute()
        check(False, "an event older than 7 days is refused")
    except FacebookRequestError as error:
        check(error.api_error_code() == 100, "an event older than 7 days raises FacebookRequestError code 100")

    FacebookAdsApi.init(access_token="adlr_not-a-token")
    try:
        EventRequest(events=[event], pixel_id=PIXEL_ID).execute()
        check(False, "a wrong ingest token is refused")
    except FacebookRequestError as error:
        check(error.api_error_code() == 190, "a wrong ingest token raises FacebookRequestError code 190")

    print(f"{checks_passed} passed, 0 failed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
