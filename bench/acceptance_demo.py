"""Issue 10's acceptance figures on the demo company (`seed_demo`, default size).

    DATABASE_URL=postgres://... python manage.py seed_demo
    DATABASE_URL=postgres://... PYTHONPATH=. python bench/acceptance_demo.py [--holdout-weeks 52]

Prints: the back-test over the last N weeks (model chosen, every model's total predicted
holdout margin against actual), then a full nightly run: lost customers with future value,
customers without a repeat purchase whose P(alive) is 1, and the fit quality.
"""

import argparse
import json
import os
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cvm.settings")
django.setup()

from django.db.models import Max

from customers.models import Customer, Transaction
from valuation import selectors, services
from valuation.models import CustomerValue


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--holdout-weeks", type=int, default=52)
    args = parser.parse_args()
    as_of = Transaction.objects.aggregate(last=Max("date"))["last"]
    policy = selectors.valuation_policy()
    policy.holdout_weeks = args.holdout_weeks
    policy.save()
    settings = selectors.engine_settings(policy)

    started = time.monotonic()
    backtest = services.run_backtest(as_of=as_of, settings=settings)
    print(f"back-test as of {as_of}, holdout {args.holdout_weeks} weeks: {time.monotonic() - started:.1f} s")
    print(f"  chosen: {backtest['model']} ({backtest['reason']})")
    for name, entry in backtest["models_compared"].items():
        m, p = entry.get("margin"), entry.get("purchases")
        if m:
            print(f"  {name:11s} gate ok={entry['fit_quality']['ok']!s:5s} margin predicted {m['predicted_total']:12,.0f} "
                  f"actual {m['actual_total']:12,.0f} total error {m['total_error']:+.1%} RMSE {m['rmse']:,.1f}; "
                  f"purchases {p['predicted_total']:,.0f} vs {p['actual_total']:,.0f}")
        else:
            print(f"  {name:11s} gate ok=False {entry['fit_quality']['problems']}")
    print(f"  range calibration: {backtest['range_calibration']}")

    started = time.monotonic()
    run = services.run_valuation(as_of=as_of)
    print(f"nightly run {run.pk}: {run.status} in {time.monotonic() - started:.1f} s, model {run.parameters['model']}")
    print(f"  fit_quality: {json.dumps(run.parameters['fit_quality'])}")
    values = CustomerValue.objects.filter(run=run)
    lost = values.filter(customer__status=Customer.Status.LOST, customer__lost_on__lte=as_of)
    print(f"  lost customers: {lost.count()}, with CLV > 0: {lost.filter(clv__gt=0).count()}, "
          f"with value to infinity > 0: {lost.filter(clv_to_infinity__gt=0).count()}")
    no_repeat = values.filter(purchase_days=1).exclude(basis="lost")
    print(f"  customers without a repeat purchase: {no_repeat.count()}, P(alive) = 1: "
          f"{no_repeat.filter(p_alive__gte=0.9999).count()}, P(alive) not claimed: {no_repeat.filter(p_alive=None).count()}")
    print(f"  basis: { {b: values.filter(basis=b).count() for b in ('model', 'trailing_margin_rate', 'lost', 'no_purchase')} }")


if __name__ == "__main__":
    main()
