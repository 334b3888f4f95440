"""Lines of the comparison: the difference in dollars and percent of the provider's cost,
and when a line passes the thresholds."""

from __future__ import annotations

from decimal import Decimal

from gateway.reconcile.compare import Line, Tally, Thresholds, compare, total

D = Decimal


def _line(ours: str, theirs: str) -> Line:
    return Line("2026-11-01", "m", Tally(cost_usd=D(ours)), Tally(cost_usd=D(theirs)))


def test_difference_is_the_provider_minus_the_ledger() -> None:
    """$1.10 billed against $1.00 recorded is +$0.10, +9.09...% of the bill."""
    line = _line("1.00", "1.10")
    assert line.diff_usd == D("0.10")
    assert round(line.diff_pct or 0, 2) == D("9.09")


def test_nothing_billed_has_no_percentage_unless_nothing_recorded() -> None:
    """A cost the provider did not bill has no percentage; nothing on both sides is 0%."""
    assert _line("0.5", "0").diff_pct is None
    assert _line("0", "0").diff_pct == 0


def test_a_line_fails_only_past_both_thresholds() -> None:
    """The default thresholds need more than $0.01 and more than 1%; no percentage fails on
    dollars alone."""
    limits = Thresholds()
    assert not limits.exceeded(_line("100", "100.5"))  # $0.50 but 0.5%
    assert not limits.exceeded(_line("0.001", "0.009"))  # 88.9% but $0.008
    assert limits.exceeded(_line("1.00", "1.02"))
    assert limits.exceeded(_line("0.02", "0"))
    assert Thresholds(D(0), D(0)).exceeded(_line("1", "1.000001"))


def test_compare_covers_keys_from_either_side_and_totals() -> None:
    """A day and model seen by one side only gets an empty tally on the other."""
    lines = compare({("2026-11-01", "a"): Tally(10, 0, 5, D("0.1"))},
                    {("2026-11-02", "b"): Tally(3, 1, 2, D("0.2"))})
    assert [(x.day, x.model) for x in lines] == [("2026-11-01", "a"), ("2026-11-02", "b")]
    assert lines[1].ours == Tally()
    assert total(lines).diff_usd == D("0.1")
