"""The per-connection inbound budget: what passes, what is dropped, when a client is closed."""

from __future__ import annotations

from apps.realtime.inbound import DEBT_S, InboundBudget, InboundLimits, Verdict

LIMITS = InboundLimits(
    bytes_per_s=1000.0, burst_bytes=2000.0, events_per_s=10.0, burst_events=20.0, grace_s=3.0
)


def _flood(budget: InboundBudget, count: int, *, at_s: float, size: int = 10) -> list[Verdict]:
    return [budget.admit(size, now_s=at_s) for _ in range(count)]


def test_a_burst_within_the_budget_passes() -> None:
    budget = InboundBudget(LIMITS, now_s=0.0)
    assert _flood(budget, 20, at_s=0.0) == [Verdict.ACCEPT] * 20


def test_frames_over_the_budget_are_dropped_with_one_error_and_charged() -> None:
    budget = InboundBudget(LIMITS, now_s=0.0)
    verdicts = _flood(budget, 120, at_s=0.0)
    assert verdicts[:20] == [Verdict.ACCEPT] * 20
    assert verdicts[20] is Verdict.DROP_AND_TELL
    assert set(verdicts[21:]) == {Verdict.DROP}
    # 100 events over at 10/s: the client owes 10 s, capped at DEBT_S.
    assert budget.refill_wait_s() == DEBT_S + 0.1


def test_the_pause_grows_with_what_was_sent_over() -> None:
    small, large = InboundBudget(LIMITS, now_s=0.0), InboundBudget(LIMITS, now_s=0.0)
    _flood(small, 25, at_s=0.0)
    _flood(large, 45, at_s=0.0)
    assert 0.5 < small.refill_wait_s() < large.refill_wait_s() <= DEBT_S + 0.1


def test_a_client_paused_for_its_debt_and_still_flooding_is_closed() -> None:
    # The consumer stops reading for refill_wait_s; when it reads again, the flood goes on.
    budget = InboundBudget(LIMITS, now_s=0.0)
    _flood(budget, 60, at_s=0.0)
    resumed_at_s = budget.refill_wait_s()
    assert resumed_at_s > LIMITS.grace_s
    after = _flood(budget, 5, at_s=resumed_at_s)
    assert after[0] is Verdict.ACCEPT  # the debt is paid: one frame's worth
    assert Verdict.CLOSE in after[1:]


def test_a_client_that_pays_its_debt_and_slows_down_is_not_closed() -> None:
    budget = InboundBudget(LIMITS, now_s=0.0)
    _flood(budget, 30, at_s=0.0)
    # Paid off at about 1 s; from then on one frame every 0.2 s (half the rate), for a while.
    now_s = budget.refill_wait_s()
    verdicts = []
    while now_s < 20:
        verdicts.append(budget.admit(10, now_s=now_s))
        now_s += 0.2
    assert set(verdicts) == {Verdict.ACCEPT}


def test_a_new_episode_starts_after_a_quiet_second_without_debt() -> None:
    budget = InboundBudget(LIMITS, now_s=0.0)
    _flood(budget, 21, at_s=0.0)
    quiet_from = budget.refill_wait_s() + 1.0
    # Long after the first episode: going over again is told again, not closed.
    later = _flood(budget, 200, at_s=quiet_from + 10)
    assert later.count(Verdict.DROP_AND_TELL) == 1 and Verdict.CLOSE not in later


def test_bytes_are_metered_too() -> None:
    budget = InboundBudget(LIMITS, now_s=0.0)
    assert budget.admit(1500, now_s=0.0) is Verdict.ACCEPT
    assert budget.admit(1500, now_s=0.0) is Verdict.DROP_AND_TELL
    # 500 left, 1500 charged: 1000 bytes owed at 1000/s.
    assert budget.refill_wait_s() == 1.0
    # One frame larger than the whole burst is judged against a full bucket, not refused forever.
    assert InboundBudget(LIMITS, now_s=0.0).admit(5000, now_s=0.0) is Verdict.ACCEPT
