"""The failed-authentication budget: a sliding window, and valid keys are never refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.licensing import gate, keys, throttle
from apps.licensing.services import AuthenticationFailed

pytestmark = pytest.mark.django_db

IP = "203.0.113.9"
# A whole minute plus 30 s, so fixed one-minute windows would split the run in two.
T0_S = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC).timestamp()


def _max_in_any_60_s(times_s: list[float]) -> int:
    return max((sum(1 for t in times_s if start <= t < start + 60) for start in times_s), default=0)


def _spread(count: int, over_s: float) -> list[float]:
    return [T0_S + i * over_s / (count - 1) for i in range(count)]


def test_twenty_failures_over_65_s_process_at_most_ten_in_any_60_s(settings) -> None:
    settings.LICENSING_AUTH_FAILURES_PER_MINUTE = 10
    processed = [t for t in _spread(20, 65) if throttle.failure_admit(IP, now_s=t).allowed]
    assert _max_in_any_60_s(processed) <= 10
    # The budget is used, not just refused: the first ten are all heard.
    assert len(processed) >= 10


def test_gate_with_the_real_clock_holds_the_sliding_budget(settings, time_machine) -> None:
    """Through gate.authenticate, the clock moved by time_machine (no now_s passed)."""
    settings.LICENSING_AUTH_FAILURES_PER_MINUTE = 10
    bad = keys.generate_key(keys.LICENSE_PREFIX).value
    processed: list[float] = []
    for t in _spread(20, 65):
        time_machine.move_to(datetime.fromtimestamp(t, tz=UTC), tick=False)
        try:
            gate.authenticate(key=bad, client_ip=IP)
        except AuthenticationFailed:
            processed.append(t)
        except gate.TooManyFailures:
            pass
    assert _max_in_any_60_s(processed) <= 10
    assert len(processed) >= 10


def test_valid_key_from_a_tripped_address_succeeds(issued, settings) -> None:
    settings.LICENSING_AUTH_FAILURES_PER_MINUTE = 10
    bad = keys.generate_key(keys.LICENSE_PREFIX).value
    for i in range(10):
        with pytest.raises(AuthenticationFailed):
            gate.authenticate(key=bad, client_ip=IP, now_s=T0_S + i)
    with pytest.raises(gate.TooManyFailures) as refused:
        gate.authenticate(key=bad, client_ip=IP, now_s=T0_S + 20)
    # The oldest failure (at T0) leaves the window at T0 + 61: 41 s from now.
    assert refused.value.retry_after_s == 41
    credential = gate.authenticate(key=issued.key, client_ip=IP, now_s=T0_S + 20)
    assert credential.license.pk == issued.license.pk
    # Letting the valid key through spent nothing of the budget.
    assert throttle.failures_in_window(IP, now_s=T0_S + 20) == 10


def test_refused_attempts_are_not_counted_and_budget_returns_one_by_one(settings) -> None:
    settings.LICENSING_AUTH_FAILURES_PER_MINUTE = 3
    for i in range(3):
        assert throttle.failure_admit(IP, now_s=T0_S + i).allowed
    for t in (T0_S + 10, T0_S + 30, T0_S + 60.5):
        decision = throttle.failure_admit(IP, now_s=t)
        assert not decision.allowed
        assert decision.retry_after_s == max(1, int(T0_S + 61 - t + 0.999))
    assert throttle.failures_in_window(IP, now_s=T0_S + 60.5) == 3
    # T0's failure ages out: exactly one more is heard, then the next has to wait for T0+1's.
    assert throttle.failure_admit(IP, now_s=T0_S + 61).allowed
    assert not throttle.failure_admit(IP, now_s=T0_S + 61.5).allowed
    assert throttle.failure_admit(IP, now_s=T0_S + 62).allowed


def test_budgets_are_per_address_and_ipv6_per_64(settings) -> None:
    settings.LICENSING_AUTH_FAILURES_PER_MINUTE = 2
    for host in ("2001:db8:0:1::1", "2001:db8:0:1::2"):
        assert throttle.failure_admit(host, now_s=T0_S).allowed
    # Same /64, another address: same budget, now spent.
    assert not throttle.failure_admit("2001:db8:0:1::3", now_s=T0_S).allowed
    # Another /64, and an IPv4 client, each have their own.
    assert throttle.failure_admit("2001:db8:0:2::1", now_s=T0_S).allowed
    assert throttle.failure_admit("198.51.100.1", now_s=T0_S).allowed
    # An IPv4-mapped spelling is the IPv4 client.
    assert throttle.failure_admit("::ffff:198.51.100.1", now_s=T0_S).allowed
    assert not throttle.failure_admit("198.51.100.1", now_s=T0_S).allowed
