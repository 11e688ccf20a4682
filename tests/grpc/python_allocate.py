"""A gRPC client nobody here wrote (grpcio, with stubs generated from proto/ by grpcio-tools) calls
ml-service's Allocate. Run by scripts/run-python-grpc-client, which generates the stubs and starts
ml-service; argv[1] is its address, argv[2] the folder holding the generated stubs.
"""
import sys

sys.path.insert(0, sys.argv[2])

import grpc  # noqa: E402
from adloop.ml.v1 import ml_service_pb2 as pb  # noqa: E402
from adloop.ml.v1 import ml_service_pb2_grpc as pb_grpc  # noqa: E402

checks_passed = 0


def check(condition, description):
    global checks_passed
    if not condition:
        print(f"FAILED: {description}", file=sys.stderr)
        sys.exit(1)
    checks_passed += 1
    print(f"ok: {description}")


def usd(minor_units):
    return pb.Money(minor_units=minor_units, currency="USD")


def ad(ad_id, clicks, conversions, value):
    return pb.AdState(
        ids=pb.AdIds(account_id="act_1", campaign_id="c1", ad_set_id=f"set-{ad_id}", ad_id=ad_id),
        impressions=100_000, clicks=clicks, conversions=conversions, spend=usd(100_000),
        conversion_value=usd(value), age_hours=240.0, current_daily_budget=usd(10_000),
        status=pb.AD_STATUS_ACTIVE,
        recent=pb.RecentWindow(hours=72.0, impressions=30_000, clicks=clicks * 3 // 10, spend=usd(30_000),
                               conversions=conversions * 3 // 10, conversion_value=usd(value * 3 // 10)),
    )


def main(address):
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.MlServiceStub(channel)
        request = pb.AllocateRequest(
            ads=[ad("winner", 2000, 100, 500_000), ad("middle", 1500, 60, 300_000), ad("loser", 1000, 20, 100_000)],
            total_daily_budget=usd(30_000),
            constraints=pb.AllocationConstraints(per_ad_floor=usd(100), max_change_fraction=0.5),
        )
        response = stub.Allocate(request, timeout=10)
        budgets = [r.recommended_daily_budget.minor_units for r in response.recommendations]
        check(sum(budgets) == 30_000, f"Allocate conserves the total exactly: {budgets}")
        check(response.recommendations[0].probability_best > 0.9, "the winner is the likely best")
        check(response.recommendations[0].HasField("change_fraction"), "change_fraction is set when a budget exists")
        check("P(best)" in response.recommendations[0].reason, "each recommendation explains itself")

        request.ads[1].clicks = 200_000
        try:
            stub.Allocate(request, timeout=10)
            check(False, "clicks above impressions are refused")
        except grpc.RpcError as error:
            check(error.code() == grpc.StatusCode.INVALID_ARGUMENT, "bad input is INVALID_ARGUMENT")
            check(error.details().startswith("ads[1].clicks"), f"and names the field: {error.details()}")

        scores = stub.Score(pb.ScoreRequest(ads=[ad("winner", 2000, 100, 500_000), ad("loser", 1000, 20, 100_000)]))
        check(scores.scores[0].score > scores.scores[1].score, "Score ranks the better ad first")
    print(f"{checks_passed} passed, 0 failed")


if __name__ == "__main__":
    main(sys.argv[1])
