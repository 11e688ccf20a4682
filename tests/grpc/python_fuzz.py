"""Random requests from a gRPC client nobody here wrote (grpcio) against ml-service's Allocate, Score,
RecordEvent, FindSimilarPatterns, GetWeights and pattern-sharing methods: mostly well-formed requests with, here and there, an edge value
(zero, negative, huge, NaN, infinite, an unknown currency, an empty or NUL-holding id, an unknown enum value,
too many items). Every answer must be OK, INVALID_ARGUMENT naming a field, or RESOURCE_EXHAUSTED; an OK
allocation must hand out exactly the total with no negative budget and finite probabilities; and ml-service
must still answer at the end. Run by scripts/run-python-grpc-client: argv[1] is ml-service's address,
argv[2] the folder holding the generated stubs; ADLOOP_GRPC_FUZZ_SEED and ADLOOP_GRPC_FUZZ_REQUESTS
override the seed and the number of requests (a failure prints the seed to repeat it with).
"""
import collections
import math
import os
import random
import sys

sys.path.insert(0, sys.argv[2])

import grpc  # noqa: E402
from adloop.ml.v1 import ml_service_pb2 as pb  # noqa: E402
from adloop.ml.v1 import ml_service_pb2_grpc as pb_grpc  # noqa: E402

EDGE_INTEGERS = [0, 1, -1, 10**12, 2**62, 2**63 - 1, -(2**63)]
EDGE_FLOATS = [0.0, -1.0, 1e-300, 1e300, float("nan"), float("inf"), -float("inf"), 1e9]
EDGE_CURRENCIES = ["", "usd", "XXX", "USDD", "EUR", "KWD"]
EDGE_STRINGS = ["", " ", "x" * 300, "é" * 101, "a\x00b", "\x07", "1" * 40]
ACCEPTED_CODES = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}


class RequestMaker:
    """Builds requests whose every field is usually ordinary and, with `edge_probability`, an edge value."""

    def __init__(self, seed, edge_probability):
        self.random = random.Random(seed)
        self.edge_probability = edge_probability

    def either(self, edges, ordinary):
        if self.random.random() < self.edge_probability:
            return self.random.choice(edges)
        return ordinary()

    def money(self, currency, ordinary_units):
        return pb.Money(
            minor_units=self.either(EDGE_INTEGERS, ordinary_units),
            currency=self.either(EDGE_CURRENCIES, lambda: currency),
        )

    def ad_state(self, index, currency):
        choose = self.random.choice
        impressions = self.either(EDGE_INTEGERS, lambda: choose([0, 500, 100_000, 10**7]))
        clicks = self.either(EDGE_INTEGERS, lambda: min(impressions, choose([0, 3, 1_000])))
        ad = pb.AdState(
            ids=pb.AdIds(
                account_id=self.either(EDGE_STRINGS, lambda: choose(["act_1", "act_2"])),
                campaign_id=self.either(EDGE_STRINGS, lambda: "campaign-1"),
                ad_set_id=self.either(EDGE_STRINGS, lambda: f"set-{index}"),
                ad_id=self.either(EDGE_STRINGS, lambda: f"ad-{index}"),
            ),
            impressions=impressions,
            clicks=clicks,
            conversions=self.either(EDGE_INTEGERS, lambda: min(clicks, choose([0, 1, 10]))),
            spend=self.money(currency, lambda: choose([0, 5, 1_000, 100_000])),
            conversion_value=self.money(currency, lambda: choose([0, 1_000, 500_000])),
            age_hours=self.either(EDGE_FLOATS, lambda: choose([0.0, 1.0, 24.0, 240.0, 5_000.0])),
            current_daily_budget=self.money(currency, lambda: choose([0, 100, 10_000])),
            status=self.either([0, 3, 99], lambda: choose([1, 1, 1, 2])),
        )
        if self.random.random() < 0.5:
            ad.recent.CopyFrom(pb.RecentWindow(
                hours=self.either(EDGE_FLOATS, lambda: 72.0),
                impressions=self.either(EDGE_INTEGERS, lambda: min(impressions, 300)),
                clicks=self.either(EDGE_INTEGERS, lambda: 0),
                spend=self.money(currency, lambda: 0),
                conversions=self.either(EDGE_INTEGERS, lambda: 0),
                conversion_value=self.money(currency, lambda: 0),
            ))
        if self.random.random() < 0.3:
            ad.creative_dna_score = self.either(EDGE_FLOATS, self.random.random)
        if self.random.random() < 0.3:
            ad.frequency = self.either(EDGE_FLOATS, lambda: 1.0 + 3.0 * self.random.random())
        if self.random.random() < 0.3:
            for _ in range(self.random.randint(1, 3)):
                name = self.either(EDGE_STRINGS, lambda: choose(["has_number", "hook_type=demo", "duration_seconds"]))
                ad.creative_features[name] = self.either(EDGE_FLOATS, lambda: choose([0.0, 1.0, 15.0]))
        if self.random.random() < 0.3:
            ad.priors.append(pb.AdPrior(
                source=self.either(EDGE_STRINGS, lambda: choose(["instant_learner", "cross_learner"])),
                expected_ctr=self.either(EDGE_FLOATS, lambda: 0.05 * self.random.random()),
                ctr_strength_impressions=self.either(EDGE_FLOATS, lambda: choose([0.0, 100.0, 10_000.0])),
                expected_conversions_per_click=self.either(EDGE_FLOATS, lambda: 0.1 * self.random.random()),
                conversion_strength_conversions=self.either(EDGE_FLOATS, lambda: choose([0.0, 3.0])),
                rates_are_lifts=self.random.random() < 0.5,
            ))
        return ad

    def ads(self):
        currency = self.either(EDGE_CURRENCIES, lambda: self.random.choice(["USD", "JPY", "KWD", "IDR"]))
        count = self.either([0, 2_001], lambda: self.random.choice([1, 2, 3, 5, 10, 50]))
        return currency, [self.ad_state(index, currency) for index in range(count)]

    def allocate_request(self):
        currency, ads = self.ads()
        request = pb.AllocateRequest(
            ads=ads,
            total_daily_budget=self.money(currency, lambda: self.random.choice([1, 30_000, 10**7])),
            seed=self.random.randrange(2**64),
        )
        if self.random.random() < 0.5:
            request.constraints.CopyFrom(pb.AllocationConstraints(
                per_ad_floor=self.money(currency, lambda: self.random.choice([0, 100])),
                per_ad_cap=self.money(currency, lambda: self.random.choice([0, 10**9])),
                max_change_fraction=self.either(EDGE_FLOATS, lambda: self.random.choice([0.0, 0.2, 0.5, 1.0])),
            ))
        return request

    def learning_event(self):
        choose = self.random.choice
        event = pb.LearningEvent(
            event_id=self.either(EDGE_STRINGS, lambda: f"fuzz-{self.random.randrange(10**12)}"),
            ids=pb.AdIds(
                account_id=self.either(EDGE_STRINGS, lambda: "act_1"),
                ad_id=self.either(EDGE_STRINGS, lambda: choose(["ad-1", "ad-2"])),
            ),
            kind=self.either([0, 99], lambda: choose([1, 2, 3])),
            event_time_unix_seconds=self.either(EDGE_INTEGERS, lambda: 1_764_000_000),
            # Unknown, a month-old ad (its clicks teach no CTR) or a day-old one.
            ad_created_unix_seconds=self.either(
                EDGE_INTEGERS, lambda: choose([0, 1_761_400_000, 1_763_900_000])
            ),
            impressions=self.either(EDGE_FLOATS, lambda: choose([0.0, 1_000.0])),
            clicks=self.either(EDGE_FLOATS, lambda: choose([0.0, 10.0])),
            matured_clicks=self.either(EDGE_FLOATS, lambda: choose([0.0, 5.0])),
            conversions=self.either(EDGE_FLOATS, lambda: choose([0.0, 1.0])),
        )
        if self.random.random() < 0.3:
            event.value.CopyFrom(self.money("USD", lambda: 4_299))
        for _ in range(self.random.randint(0, 3)):
            name = self.either(EDGE_STRINGS, lambda: choose(["has_number", "has_question"]))
            event.creative_features[name] = self.either(EDGE_FLOATS, lambda: 1.0)
        if self.random.random() < self.edge_probability:
            event.creative_embedding.extend([1.0] * self.random.choice([1, 64, 2_000]))
        return event

    def find_similar_patterns_request(self):
        choose = self.random.choice
        request = pb.FindSimilarPatternsRequest(
            top_k=self.either([0, 1, 100, 101, 2**32 - 1], lambda: choose([0, 5])),
            account_id=self.either(EDGE_STRINGS, lambda: choose(["", "act_1", "act_2"])),
        )
        if self.random.random() < 0.95:
            for _ in range(self.either([0, 65], lambda: self.random.randint(1, 4))):
                name = self.either(EDGE_STRINGS, lambda: choose(["has_number", "has_question", "hook_type=demo"]))
                request.creative_features[name] = self.either(EDGE_FLOATS, lambda: 1.0)
        if self.random.random() < 0.1:
            # ml-service's default settings take no embeddings (embedding_dimensions 0): each is refused.
            length = self.either([0, 1, 1_025, 5_000], lambda: 64)
            request.embedding.extend(self.either(EDGE_FLOATS, self.random.random) for _ in range(length))
        return request

    def record_event_request(self):
        count = self.either([0, 5_001], lambda: self.random.choice([1, 3, 50]))
        return pb.RecordEventRequest(events=[self.learning_event() for _ in range(count)])


def allocation_problems(request, response):
    budgets = [recommendation.recommended_daily_budget.minor_units for recommendation in response.recommendations]
    problems = []
    if sum(budgets) != request.total_daily_budget.minor_units:
        problems.append(f"budgets {budgets} do not add up to {request.total_daily_budget.minor_units}")
    if any(budget < 0 for budget in budgets):
        problems.append(f"a negative budget: {budgets}")
    if any(not math.isfinite(r.probability_best) for r in response.recommendations):
        problems.append("a probability that is not finite")
    return problems


def main(address, seed, requests):
    maker = RequestMaker(seed, edge_probability=0.02)
    answers = collections.Counter()
    failures = []
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.MlServiceStub(channel)
        calls = {
            "Allocate": (maker.allocate_request, stub.Allocate),
            "Score": (lambda: pb.ScoreRequest(ads=maker.ads()[1]), stub.Score),
            "RecordEvent": (maker.record_event_request, stub.RecordEvent),
            "SetPatternSharing": (
                lambda: pb.SetPatternSharingRequest(account_id=maker.either(EDGE_STRINGS, lambda: "act_1"), shares=True),
                stub.SetPatternSharing,
            ),
            "GetPatternSharing": (
                lambda: pb.GetPatternSharingRequest(account_id=maker.either(EDGE_STRINGS, lambda: "act_1")),
                stub.GetPatternSharing,
            ),
            "FindSimilarPatterns": (maker.find_similar_patterns_request, stub.FindSimilarPatterns),
            "GetWeights": (lambda: pb.GetWeightsRequest(), stub.GetWeights),
        }
        weights = {
            "Allocate": 4,
            "Score": 2,
            "RecordEvent": 3,
            "SetPatternSharing": 1,
            "GetPatternSharing": 1,
            "FindSimilarPatterns": 2,
            "GetWeights": 1,
        }
        names = [name for name, weight in weights.items() for _ in range(weight)]
        for _ in range(requests):
            method = maker.random.choice(names)
            make_request, call = calls[method]
            request = make_request()
            try:
                response = call(request, timeout=20)
                answers[(method, "OK")] += 1
                if method == "Allocate" and response.recommendations:
                    failures += [(method, problem, request) for problem in allocation_problems(request, response)]
            except grpc.RpcError as error:
                answers[(method, error.code().name)] += 1
                if error.code() not in ACCEPTED_CODES:
                    failures.append((method, f"{error.code().name}: {error.details()}", request))
                elif error.code() == grpc.StatusCode.INVALID_ARGUMENT and ":" not in (error.details() or ""):
                    failures.append((method, f"a refusal that names no field: {error.details()!r}", request))
        stub.GetServiceInfo(pb.GetServiceInfoRequest(), timeout=20)
    for (method, code), count in sorted(answers.items()):
        print(f"{method:18} {code:20} {count}")
    for method, problem, request in failures[:5]:
        print(f"FAILED: {method}: {problem}\n{str(request)[:2_000]}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} of {requests} requests failed (seed {seed})", file=sys.stderr)
        sys.exit(1)
    print(f"{requests} random requests (seed {seed}): every answer OK or a refusal naming its field")


if __name__ == "__main__":
    main(
        sys.argv[1],
        int(os.environ.get("ADLOOP_GRPC_FUZZ_SEED", "20261203")),
        int(os.environ.get("ADLOOP_GRPC_FUZZ_REQUESTS", "1500")),
    )
