"""Schemathesis checks of adloop's own rule, and hooks that let the fuzzer past the relay's door.

Loaded through SCHEMATHESIS_HOOKS by scripts/run-http-fuzzer.

- Every refusal explains itself: a 4xx answer must be JSON with a non-empty `error.message` (adloop's error
  body; Meta's drop-in routes use the same key), so a client always learns which field broke which rule.
- An ingest token may write only to its own pixels, so generated pixel ids meet a 403 and the relay's
  validation and acceptance are never reached. With ADLOOP_FUZZ_PIXEL_ID set, three requests in four that name a
  pixel (in the path, the query or a JSON body) name that one, the token's own; the rest keep the generated
  id and meet the 403. Event times must be recent (Meta takes at most 7 days old), which a schema cannot
  say: the same three cases in four carry event times of a minute ago.
"""

import itertools
import os
import time

import schemathesis

TOKENS_PIXEL_ID = os.environ.get("ADLOOP_FUZZ_PIXEL_ID")


@schemathesis.check
def a_refusal_explains_itself(ctx, response, case):
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{response.status_code} answered without a JSON body: {response.text[:200]!r}")
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if not message:
        raise AssertionError(f"{response.status_code} answered without error.message: {response.text[:200]!r}")
    return None


_cases_seen = itertools.count()


def events_of(body):
    """The events of a relay request body: its `data` or `events` list, or the body itself (one event)."""
    if not isinstance(body, dict):
        return []
    for list_name in ("data", "events"):
        if isinstance(body.get(list_name), list):
            return [event for event in body[list_name] if isinstance(event, dict)]
    return [body]


@schemathesis.hook
def map_case(context, case):
    """Three in four of the relay's cases that name a pixel, or may leave it to the token (the plan's check,
    whose `pixel_id` is optional), get the token's own pixel and their events' times of a minute ago (every
    phase runs this hook). Other cases (the gateway's) are left as generated."""
    naming_a_pixel = [
        values
        for values in (case.path_parameters, case.query, case.body)
        if isinstance(values, dict) and "pixel_id" in values
    ]
    pixel_optional = case.operation.path == "/api/meta/capi/test"
    if not TOKENS_PIXEL_ID or not (naming_a_pixel or pixel_optional) or next(_cases_seen) % 4 == 3:
        return case
    for values in naming_a_pixel:
        values["pixel_id"] = TOKENS_PIXEL_ID
    for event in events_of(case.body):
        if isinstance(event.get("event_time"), int):
            event["event_time"] = int(time.time()) - 60
    return case
