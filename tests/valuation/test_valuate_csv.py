import datetime as dt
import json

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from valuation.engine import BgNbdParams, GammaGammaParams
from valuation.engine.simulate import simulate_transactions

TRUE_BGNBD = BgNbdParams(r=0.6, alpha=5.0, a=0.8, b=2.5)
CAL_END = dt.date(2025, 6, 30)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    tx = simulate_transactions(6000, TRUE_BGNBD, GammaGammaParams(p=5.0, q=3.5, v=40.0),
                               dt.date(2024, 1, 1), dt.date(2025, 12, 31), seed=3)
    tx = tx[(tx["date"] <= pd.Timestamp("2025-12-31"))]
    path = tmp_path_factory.mktemp("export") / "transactions.csv"
    tx.assign(date=tx["date"].dt.strftime("%Y-%m-%d")).round(2).to_csv(path, index=False)
    return path, tx


def run(*args) -> dict:
    from io import StringIO

    out = StringIO()
    call_command("valuate_csv", *map(str, args), stdout=out)
    return json.loads(out.getvalue())


def test_report_has_parameters_in_weeks_and_a_backtest(export, tmp_path):
    path, tx = export
    report = run(path, "--calibration-end", CAL_END, "--output", tmp_path / "values.csv")
    assert report["customers"] == tx[tx["date"] <= pd.Timestamp(CAL_END)]["customer_id"].nunique()
    bgnbd = report["bgnbd"]
    # Recovery of the simulated parameters (first purchases spread over 18 months).
    assert bgnbd["r"] == pytest.approx(TRUE_BGNBD.r, rel=0.25)
    assert bgnbd["alpha"] == pytest.approx(TRUE_BGNBD.alpha, rel=0.3)
    assert bgnbd["log_likelihood"] < 0
    assert set(report["gamma_gamma"]) >= {"p", "q", "v"}
    backtest = report["backtest"]
    assert backtest["holdout_weeks"] == pytest.approx((dt.date(2025, 12, 31) - CAL_END).days / 7, abs=1 / 7)
    assert backtest["expected_repeat_purchases"] == pytest.approx(backtest["actual_repeat_purchases"], rel=0.1)
    assert backtest["mae_per_customer"] < backtest["naive_mae_per_customer"]
    values = pd.read_csv(tmp_path / "values.csv")
    assert len(values) == report["customers"]
    assert {"clv", "clv_low", "clv_high", "p_alive", "segment", "abc_class"} <= set(values.columns)


def test_without_later_transactions_there_is_no_backtest(export):
    path, _ = export
    report = run(path, "--calibration-end", "2026-01-31")
    assert "backtest" not in report


def test_bad_cells_are_named_by_line_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("customer_id,date,revenue\nA,2025-01-02,10\nB,31.02.2025,10\nC,2025-01-03,ten\n")
    with pytest.raises(CommandError) as excinfo:
        run(path, "--calibration-end", "2025-06-30")
    message = str(excinfo.value)
    assert "line 3, column date: '31.02.2025' is not a date" in message
    assert "line 4, column revenue: 'ten' is not a number" in message


def test_missing_columns_are_named(tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("customer,date,amount\nA,2025-01-02,10\n")
    with pytest.raises(CommandError, match="missing column\\(s\\) customer_id, revenue"):
        run(path, "--calibration-end", "2025-06-30")


def test_german_excel_file_with_times_reads_like_the_plain_file(tmp_path):
    """Semicolons, Windows-1252, decimal comma with thousands points, DD.MM.YYYY with a time:
    the same rows as the plain file (import_csv's reader, core.csvfile)."""
    from valuation.offline import read_transactions

    plain = tmp_path / "plain.csv"
    plain.write_text("customer_id,date,revenue,cost\nMüller,2025-01-02,1234.50,1000\nB,2025-03-04,-10.25,\n")
    german = tmp_path / "german.csv"
    german.write_bytes(
        "Customer_ID;Date;Revenue;Cost\nMüller;02.01.2025 14:30;1.234,50;1.000,00\nB;04.03.2025 08:00:59;-10,25;\n"
        .encode("cp1252")
    )
    expected = read_transactions(plain)
    got = read_transactions(german)
    pd.testing.assert_frame_equal(got, expected)
    assert got["revenue"].tolist() == [1234.5, -10.25]
    assert got["date"].tolist() == [pd.Timestamp("2025-01-02"), pd.Timestamp("2025-03-04")]
