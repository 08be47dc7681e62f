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
    tx = simulate_transactions(
        6000, TRUE_BGNBD, GammaGammaParams(p=5.0, q=3.5, v=40.0), dt.date(2024, 1, 1), dt.date(2025, 12, 31), seed=3
    )
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


def test_days_beyond_the_timestamp_range_are_named_not_a_traceback(tmp_path):
    path = tmp_path / "far.csv"
    path.write_text("customer_id,date,revenue\nA,2024-01-05,10\nA,2999-03-01,12\nB,14.10.1066,5\n")
    with pytest.raises(CommandError) as excinfo:
        run(path, "--calibration-end", "2024-06-30")
    message = str(excinfo.value)
    assert "line 3, column date: '2999-03-01' lies outside the years 1678–2261" in message
    assert "line 4, column date: '14.10.1066' lies outside the years 1678–2261" in message


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
        "Customer_ID;Date;Revenue;Cost\nMüller;02.01.2025 14:30;1.234,50;1.000,00\nB;04.03.2025 08:00:59;-10,25;\n".encode(
            "cp1252"
        )
    )
    expected = read_transactions(plain)
    got = read_transactions(german)
    pd.testing.assert_frame_equal(got, expected)
    assert got["revenue"].tolist() == [1234.5, -10.25]
    assert got["date"].tolist() == [pd.Timestamp("2025-01-02"), pd.Timestamp("2025-03-04")]


def write(path, rows, header="customer_id,date,revenue,cost"):
    path.write_text(header + "\n" + "\n".join(",".join(map(str, row)) for row in rows) + "\n")
    return path


def test_report_names_the_chosen_model_the_comparison_and_the_holdout_columns(export, tmp_path):
    path, tx = export
    report = run(path, "--calibration-end", CAL_END, "--holdout-end", "2025-12-31", "--output", tmp_path / "v.csv")
    assert report["model"] in {"bgnbd", "mbgnbd", "pareto_nbd"}
    assert report["fit_quality"] == {"ok": True, "problems": [], "fallback": None}
    assert set(report["models_compared"]) == {"bgnbd", "mbgnbd", "pareto_nbd"}
    assert len(report["models_compared"]["bgnbd"]["conditional_expectations"]) == 8
    # Why the model won: the rule, the models tied with the best in the inner back-test (the
    # chosen one among them) and each model's squared-error difference to the best.
    choice = report["model_choice"]
    assert "standard error of the paired" in choice["rule"] and report["model"] in choice["tied"]
    tied = {name for name, versus in choice["versus_best"].items() if versus and versus["tied"]}
    assert tied == set(choice["tied"])
    backtest = report["backtest"]
    holdout = tx[
        (tx["date"] > pd.Timestamp(CAL_END))
        & (tx["customer_id"].isin(tx[tx["date"] <= pd.Timestamp(CAL_END)]["customer_id"]))
    ]
    assert backtest["actual_margin"] == pytest.approx((holdout["revenue"] - holdout["cost"]).round(2).sum(), rel=1e-3)
    assert abs(backtest["margin_total_error"]) < 0.25  # simulated by the models' own story
    assert 0 <= backtest["range_calibration"]["share_above_high"] <= 0.2
    values = pd.read_csv(tmp_path / "v.csv")
    assert {
        "holdout_expected",
        "holdout_low",
        "holdout_high",
        "clv_to_infinity",
        "median_lifetime_weeks",
        "basis",
    } <= set(values.columns)
    assert (values["holdout_low"] <= values["holdout_expected"] + 1e-6).mean() > 0.95
    assert values["holdout_expected"].sum() == pytest.approx(backtest["predicted_margin"], rel=1e-6)


def test_everyone_bought_once_fails_the_gate_and_claims_no_model_figures(tmp_path):
    """300 customers with one purchase each: nothing identifies a drop-out process. The
    valuation falls back to the trailing margin rate (hand-worked: margin in the 12-month
    window per month of history the window covers) and says so; P(alive) and ranges are not
    claimed."""
    rows = [(f"C{i}", f"2025-{1 + i % 6:02d}-{1 + i % 28:02d}", 100 + i % 7, 60) for i in range(300)]
    rows += [("C0", "2025-10-01", 50, 20)]  # one holdout purchase
    path = write(tmp_path / "once.csv", rows)
    report = run(path, "--calibration-end", "2025-06-30", "--holdout-end", "2025-12-31", "--output", tmp_path / "v.csv")
    assert report["fit_quality"]["ok"] is False
    codes = {p["code"] for p in report["fit_quality"]["problems"]}
    assert "too_few_repeat_buyers" in codes
    assert all(p["message"] for p in report["fit_quality"]["problems"])
    assert report["fit_quality"]["fallback"] == "trailing_margin_rate"
    values = pd.read_csv(tmp_path / "v.csv").set_index("customer_id")
    assert values["p_alive"].isna().all() and values["clv_low"].isna().all() and values["clv_to_infinity"].isna().all()
    assert (values["basis"] == "trailing_margin_rate").all()
    c1 = values.loc["C1"]  # bought 2025-02-02 for 101 at cost 60: margin 41 in the window
    weeks = (dt.date(2025, 12, 31) - dt.date(2025, 6, 30)).days / 7
    # The file starts 2025-01-01: 180 days = 5.91 months of the 12-month window are covered.
    covered_months = (dt.date(2025, 6, 30) - dt.date(2025, 1, 1)).days / (365.2425 / 12)
    assert c1["holdout_expected"] == pytest.approx(
        41 / covered_months * weeks / (365.2425 / 12 / 7), rel=1e-4
    )  # CSV has 4 decimals
    assert pd.isna(c1["holdout_low"]) and pd.isna(c1["holdout_high"])


def test_five_customers_fail_the_gate(tmp_path):
    rows = [(f"C{i}", f"2025-0{m}-1{i}", 10 * (i + m), 5) for i in range(5) for m in range(1, 7)]
    report = run(write(tmp_path / "five.csv", rows), "--calibration-end", "2025-06-30", "--output", tmp_path / "v.csv")
    assert report["fit_quality"]["ok"] is False
    assert "too_few_customers" in {p["code"] for p in report["fit_quality"]["problems"]}
    values = pd.read_csv(tmp_path / "v.csv")
    assert values["p_alive"].isna().all() and values["clv_high"].isna().all()


def test_all_revenue_zero_means_no_purchases_and_no_value(tmp_path):
    rows = [(f"C{i}", f"2025-0{m}-10", 0, 0) for i in range(60) for m in range(1, 6)]
    report = run(write(tmp_path / "zero.csv", rows), "--calibration-end", "2025-06-30", "--output", tmp_path / "v.csv")
    assert report["fit_quality"]["ok"] is False
    assert "no_purchases" in {p["code"] for p in report["fit_quality"]["problems"]}
    values = pd.read_csv(tmp_path / "v.csv")
    assert (values["purchase_days"] == 0).all() and (values["clv"] == 0).all()
    assert (values["basis"] == "no_purchase").all()


def test_returns_do_not_change_purchase_counts(export, tmp_path):
    """The same file with a credit note after a third of the purchases (on the same day and a
    week later) and zero rows: the same purchase days per customer, in calibration and holdout."""
    path, tx = export
    extra = tx.iloc[::3].copy()
    credit = extra.assign(revenue=-extra["revenue"] / 4, cost=-extra["cost"] / 4)
    later = credit.assign(date=credit["date"] + pd.Timedelta(days=7))
    zero = extra.assign(revenue=0.0, cost=0.0, date=extra["date"] + pd.Timedelta(days=3))
    with_returns = pd.concat([tx, credit, later, zero]).sort_values("date")
    returns_path = tmp_path / "returns.csv"
    with_returns.assign(date=with_returns["date"].dt.strftime("%Y-%m-%d")).round(2).to_csv(returns_path, index=False)
    plain = run(path, "--calibration-end", CAL_END, "--output", tmp_path / "a.csv")
    returned = run(returns_path, "--calibration-end", CAL_END, "--output", tmp_path / "b.csv")
    a = pd.read_csv(tmp_path / "a.csv").set_index("customer_id").sort_index()
    b = pd.read_csv(tmp_path / "b.csv").set_index("customer_id").sort_index()
    pd.testing.assert_series_equal(a["purchase_days"], b["purchase_days"])
    pd.testing.assert_series_equal(a["holdout_purchases"], b["holdout_purchases"])
    assert plain["backtest"]["actual_repeat_purchases"] == returned["backtest"]["actual_repeat_purchases"]
    assert b["margin_lifetime"].sum() < a["margin_lifetime"].sum()


def test_a_model_given_skips_the_choice(export):
    path, _ = export
    report = run(path, "--calibration-end", CAL_END, "--model", "pareto_nbd")
    assert report["model"] == "pareto_nbd"
    assert "no back-test" in report["model_choice"]["reason"]
    with pytest.raises(CommandError):
        run(path, "--calibration-end", CAL_END, "--model", "weibull")


def test_each_customer_id_keeps_its_own_values(export, tmp_path):
    """The file's ids (any text, numbered internally) come back on the right customers: the
    per-customer values equal the engine's on the same rows with the ids as they are."""
    from valuation import engine
    from valuation.offline import analyse, read_transactions

    _, tx = export
    names = {
        cid: f"{'Kunde Müller ' if cid % 3 else '00'}{cid}-{chr(65 + cid % 26)}" for cid in tx["customer_id"].unique()
    }
    renamed = tx.assign(customer_id=tx["customer_id"].map(names))
    path = tmp_path / "named.csv"
    renamed.assign(date=renamed["date"].dt.strftime("%Y-%m-%d")).round(2).to_csv(path, index=False)

    values = analyse(read_transactions(path), calibration_end=dt.date(2025, 12, 31), model="bgnbd").values
    rows = pd.read_csv(path, dtype={"customer_id": str}, parse_dates=["date"])
    ids = pd.Index(rows["customer_id"].unique())
    customers = pd.DataFrame({"customer_id": ids, "active": True, "referred_by": None, "wallet": float("nan")})
    no_services = pd.DataFrame(columns=["customer_id", "date", "service_type", "quantity", "unit", "cost"])
    direct = engine.valuate_with_backtest(rows, no_services, customers, dt.date(2025, 12, 31), model="bgnbd").customers

    assert set(values.index) == set(names.values())
    assert values.index.tolist() == direct.index.tolist()
    for column in ("purchase_days", "margin_lifetime", "p_alive", "clv", "clv_low", "clv_high", "segment"):
        assert values[column].tolist() == direct[column].tolist(), column


def test_codes_changed_after_reading_are_refused_not_misattributed(tmp_path):
    """read_transactions numbers the ids; a frame whose customer_id was changed afterwards no
    longer fits that numbering, and the valuation refuses it instead of naming wrong customers."""
    from valuation.offline import analyse, read_transactions

    path = write(tmp_path / "t.csv", [("A", "2025-01-02", 10, 5), ("B", "2025-02-03", 20, 5), ("C", "2025-03-04", 30, 5)])
    frame = read_transactions(path)
    assert sorted(frame["customer_id"]) == [0, 1, 2]
    frame["customer_id"] = frame["customer_id"] + 5
    with pytest.raises(ValueError, match="no longer holds the codes"):
        analyse(frame, calibration_end=dt.date(2025, 6, 30))


def test_the_report_is_the_same_without_the_values_file(export, tmp_path):
    """Without --output no customer is scored; what the report says must not change."""
    path, _ = export

    def untimed(value):
        if isinstance(value, dict):
            return {k: untimed(v) for k, v in value.items() if k not in ("seconds", "fit_seconds", "output")}
        if isinstance(value, list):
            return [untimed(v) for v in value]
        return value

    for extra in ((), ("--model", "bgnbd")):
        with_values = run(path, "--calibration-end", CAL_END, *extra, "--output", tmp_path / "values.csv")
        alone = run(path, "--calibration-end", CAL_END, *extra)
        assert "backtest" in alone and "output" not in alone
        assert untimed(alone) == untimed(with_values)
