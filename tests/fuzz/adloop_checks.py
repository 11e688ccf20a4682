"""Schemathesis checks of adloop's own rule: every refusal explains itself.

Loaded through SCHEMATHESIS_HOOKS by scripts/run-http-fuzzer. A 4xx answer must be JSON with a non-empty
`error.message` (adloop's error body; Meta's drop-in routes use the same key), so a client always learns
which field broke which rule.
"""

import schemathesis


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
