"""The end-to-end benchmark's arithmetic: rates between samples, lag growth, the Markdown table."""

from __future__ import annotations

from services.benchmark.measure import Sample, lag_growth, rate_between
from services.benchmark.report import markdown


def _s(at: float, rows: int, audit_lag: int = 0, notifier_lag: int = 0) -> Sample:
    return Sample(at, audit_lag, 0, notifier_lag, rows, rows // 2, rows // 10)


def test_rate_is_growth_per_second_between_the_first_and_last_sample_of_the_window() -> None:
    samples = [_s(0, 0), _s(5, 400), _s(10, 1400), _s(15, 2400), _s(20, 2500)]
    assert rate_between(samples, "audit_rows", 5, 15) == (2400 - 400) / 10
    assert rate_between(samples, "pages", 5, 15) == (240 - 40) / 10
    assert rate_between(samples, "audit_rows", 30, 40) == 0.0  # no samples: no claim


def test_lag_growth_compares_the_window_ends() -> None:
    samples = [_s(0, 0, audit_lag=50), _s(5, 10, audit_lag=10, notifier_lag=7), _s(10, 20, audit_lag=900)]
    assert lag_growth(samples, 5, 10) == {"audit": 890, "escalator": 0, "notifier": -7}
    assert lag_growth(samples, 11, 12) == {}


def test_markdown_has_one_row_per_figure_and_names_the_machine() -> None:
    result = {
        "run": "abc123",
        "machine": {"cpus": 2, "cpu": "EPYC", "memory": "24 GB"},
        "commit": "deadbee",
        "workers": 1,
        "table": [
            {
                "figure": "accepted events/s",
                "measured": "5,100",
                "baseline": "20,000/s (ratio 0.26)",
                "target": "5,000",
            },
            {"figure": "audit rows/s", "measured": "9,000", "baseline": "-", "target": "-"},
        ],
    }
    text = markdown(result)
    assert "2 CPUs (EPYC)" in text
    assert "| accepted events/s | 5,100 | 20,000/s (ratio 0.26) | 5,000 |" in text
    assert text.count("\n|") == 4  # header, rule, two rows
