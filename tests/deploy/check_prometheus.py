"""A real Prometheus has scraped the running services: every target is up, a metric of each service can
be queried, the alert rules load and evaluate without errors, and every query of the Grafana dashboard is
valid PromQL that Prometheus evaluates.

usage: check_prometheus.py PROMETHEUS_URL DASHBOARD.json METRIC [METRIC ...]
"""

import json
import sys
import time
import urllib.parse
import urllib.request

DEADLINE_SECONDS = 60


def api(prometheus_url, path, **parameters):
    query = urllib.parse.urlencode(parameters)
    with urllib.request.urlopen(f"{prometheus_url}/api/v1/{path}?{query}", timeout=10) as answer:
        document = json.load(answer)
    if document.get("status") != "success":
        raise RuntimeError(f"{path} {parameters}: {document}")
    return document["data"]


def wait_for(description, condition):
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        try:
            outcome = condition()
        except (OSError, RuntimeError) as error:
            outcome, last_error = None, error
        else:
            last_error = None
        if outcome:
            return outcome
        if time.monotonic() > deadline:
            raise SystemExit(f"check-prometheus: error: {description} within {DEADLINE_SECONDS} s ({last_error})")
        time.sleep(0.5)


def main():
    prometheus_url, dashboard_path, metrics = sys.argv[1], sys.argv[2], sys.argv[3:]

    def every_target_up():
        targets = api(prometheus_url, "targets")["activeTargets"]
        return targets and all(target["health"] == "up" for target in targets) and targets

    targets = wait_for("every scrape target up", every_target_up)
    print(f"check-prometheus: {len(targets)} targets up: " + ", ".join(t["labels"]["service"] for t in targets))

    for metric in metrics:
        result = wait_for(f"a sample of {metric}", lambda: api(prometheus_url, "query", query=metric)["result"])
        print(f"check-prometheus: {metric}: {len(result)} series, e.g. {result[0]['metric']}")

    def rules_evaluated():
        groups = api(prometheus_url, "rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules and all(rule.get("lastEvaluation", "").startswith("20") for rule in rules) and rules

    rules = wait_for("every alert rule evaluated", rules_evaluated)
    unhealthy = [f"{rule['name']}: {rule.get('lastError')}" for rule in rules if rule["health"] != "ok"]
    if unhealthy:
        raise SystemExit("check-prometheus: error: rules failed to evaluate: " + "; ".join(unhealthy))
    print(f"check-prometheus: {len(rules)} alert rules loaded and evaluated")

    with open(dashboard_path) as dashboard_file:
        dashboard = json.load(dashboard_file)
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    for expression in expressions:
        api(prometheus_url, "query", query=expression.replace("$__rate_interval", "1m"))
    print(f"check-prometheus: {len(expressions)} dashboard queries evaluated")


if __name__ == "__main__":
    main()
