#!/usr/bin/env python3
"""An external adloop-sim policy, to show the JSON-lines protocol (standard library only).

It gives each active ad a budget proportional to its reported ROAS over the last 72 hours plus a small
exploration share, keeping the total within the account's daily budget.

    adloop-sim compare --scenario scenarios/stationary-10.toml --policies uniform,external \
        --policy-cmd "python3 examples/external-policy/proportional_to_roas.py"
"""
import json
import sys

EXPLORATION_SHARE = 0.2


def decide(observation):
    active = [ad for ad in observation["ads"] if ad["status"] == "active"]
    if not active:
        return {}
    total = observation["total_daily_budget"]
    weights = []
    for ad in active:
        recent = ad["last_72_hours"]
        roas = recent["conversion_value"] / recent["spend"] if recent["spend"] > 0 else 0.0
        weights.append(roas)
    weight_sum = sum(weights)
    budgets = {}
    for ad, weight in zip(active, weights):
        exploit = (1 - EXPLORATION_SHARE) * (weight / weight_sum if weight_sum > 0 else 1 / len(active))
        explore = EXPLORATION_SHARE / len(active)
        budgets[ad["ad_id"]] = int(total * (exploit + explore))  # rounding down never exceeds the total
    return budgets


def main():
    for line in sys.stdin:
        message = json.loads(line)
        if message["type"] == "decide":
            observation = message["observation"]
            # Naming the hour lets adloop-sim catch an answer read for the wrong decision.
            print(json.dumps({"budgets": decide(observation), "hour": observation["hour"]}), flush=True)
        elif message["type"] == "end":
            return


if __name__ == "__main__":
    main()
