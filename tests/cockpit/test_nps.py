"""NPS: hand-worked figures per customer, segment and company; the all-or-nothing import;
detractors among valuable customers on the worklist."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from cockpit import importing
from cockpit.nps import company_nps, customer_nps, nps_trend, segment_nps
from customers.models import SurveyAnswer
from customers.nps import nps_of_scores
from customers.roles import Role
from tests.cockpit.factories import CustomerValueFactory, ValuationRunFactory
from tests.conftest import make_user
from tests.factories import CustomerFactory
from valuation.worklist import latest_detractor_scores

TODAY = dt.date(2026, 6, 30)


def test_nps_of_scores_by_hand():
    # 10 answers: promoters 9, 10, 10, 9 (4); passives 7, 8 (2); detractors 0, 5, 6, 3 (4): (4 - 4) / 10 = 0
    assert nps_of_scores([9, 10, 10, 9, 7, 8, 0, 5, 6, 3]) == 0
    # 3 promoters, 1 detractor of 5: (3 - 1) / 5 = 40
    assert nps_of_scores([10, 9, 9, 6, 8]) == 40
    assert nps_of_scores([]) is None


@pytest.mark.django_db
def test_customer_segment_and_company_nps_on_a_small_company():
    run = ValuationRunFactory(as_of=TODAY)
    a, b, c = CustomerFactory(), CustomerFactory(), CustomerFactory()
    CustomerValueFactory(run=run, customer=a, segment="investment")
    CustomerValueFactory(run=run, customer=b, segment="investment")
    CustomerValueFactory(run=run, customer=c, segment="problem")

    def answer(customer, score, days_ago=10):
        SurveyAnswer.objects.create(customer=customer, score=score, answered_on=TODAY - dt.timedelta(days=days_ago))

    for score in (10, 9, 6):  # a: 2 promoters, 1 detractor -> 33.3
        answer(a, score)
    answer(a, 0, days_ago=400)  # older than 12 months: left out
    for score in (8, 10):  # b: 1 passive, 1 promoter -> 50
        answer(b, score)
    for score in (3, 4, 7):  # c: 2 detractors, 1 passive -> -66.7
        answer(c, score)

    assert customer_nps(customer=a, today=TODAY)["nps"] == pytest.approx(100 / 3)
    assert customer_nps(customer=b, today=TODAY)["nps"] == 50
    # investment: a + b = 3 promoters, 1 passive, 1 detractor of 5 -> 40
    segments = {row["segment"]: row for row in segment_nps(run=run, today=TODAY)}
    assert segments["investment"]["nps"] == 40 and segments["investment"]["answers"] == 5
    assert segments["problem"]["nps"] == pytest.approx(-200 / 3)
    assert segments["uncritical"]["nps"] is None
    # company: 8 answers, promoters 3, detractors 3 -> 0
    company = company_nps(today=TODAY)
    assert (company["answers"], company["nps"]) == (8, 0)
    # The worklist takes each customer's latest answer of the year: a's is a 6 (all on one day,
    # the last created counts), c's a 7 (passive), b's a 10.
    assert latest_detractor_scores(as_of=TODAY).to_dict() == {a.pk: 6.0}


@pytest.mark.django_db
def test_the_trend_sums_answers_per_calendar_quarter():
    customer = CustomerFactory()
    scores = {
        dt.date(2025, 12, 31): [10, 9, 2],  # 2025 Q4: 2 promoters, 1 detractor of 3 -> 33.3
        dt.date(2026, 1, 1): [10],  # 2026 Q1 from its first day
        dt.date(2026, 3, 31): [7, 0],  # 2026 Q1: 1 promoter, 1 passive, 1 detractor -> 0
        dt.date(2026, 4, 1): [6, 6, 9, 8],  # 2026 Q2: 1 promoter, 1 passive, 2 detractors -> -25
    }
    for day, day_scores in scores.items():
        for score in day_scores:
            SurveyAnswer.objects.create(customer=customer, score=score, answered_on=day)
    SurveyAnswer.objects.create(customer=customer, score=10, answered_on=dt.date(2024, 6, 30))  # before the window

    trend = nps_trend(today=TODAY)

    assert [row["label"] for row in trend] == ["2025 Q4", "2026 Q1", "2026 Q2"]
    assert [(row["promoters"], row["passives"], row["detractors"]) for row in trend] == [(2, 0, 1), (1, 1, 1), (1, 1, 2)]
    assert [round(row["nps"], 1) for row in trend] == [33.3, 0.0, -25.0]


@pytest.mark.django_db
def test_survey_csv_imports_all_or_nothing(tmp_path):
    manager = make_user(Role.MANAGER)
    customer = CustomerFactory(number="K-1")
    good = tmp_path / "nps.csv"
    good.write_text("external_id,customer_number,date,score,comment,contact\n"
                    "n1,K-1,2026-05-02,9,Gut,Einkauf\nn2,K-1,03.05.2026,4,,Technik\n", encoding="utf-8")
    result = importing.import_file(kind="survey_answers", path=good, user=manager)
    assert result.committed and SurveyAnswer.objects.filter(customer=customer).count() == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("external_id,customer_number,date,score,comment,contact\n"
                   "n3,K-1,2026-05-04,10,,\nn4,K-1,2026-05-05,11,,\nn5,NOPE,2026-05-05,5,,\n", encoding="utf-8")
    result = importing.import_file(kind="survey_answers", path=bad, user=manager)
    assert not result.committed
    assert {error.column for error in result.errors} == {"score", "customer_number"}
    assert SurveyAnswer.objects.count() == 2  # nothing of the bad file
    again = importing.import_file(kind="survey_answers", path=good, user=manager)
    assert again.committed and SurveyAnswer.objects.count() == 2  # re-import updates, never duplicates


@pytest.mark.django_db
def test_answers_logged_on_the_cockpit_and_by_the_api(two_runs):
    from customers.models import Customer

    rep = make_user(Role.SALES_REP)
    customer = Customer.objects.get(number="S0001")
    Customer.objects.filter(pk=customer.pk).update(owner=rep)
    client = Client()
    client.force_login(rep)
    response = client.post(f"/customers/{customer.pk}/nps/", {"answered_on": "2026-06-20", "score": "3",
                                                             "contact": "Einkauf", "comment": "zu teuer"})
    assert response.status_code == 302
    assert 'id="customer-nps"' in client.get(f"/customers/{customer.pk}/").content.decode()
    api = client.post("/api/v1/survey-answers/", {"customer": customer.pk, "answered_on": "2026-06-21", "score": 2},
                      content_type="application/json")
    assert api.status_code == 201, api.content
    other = Customer.objects.exclude(pk=customer.pk).first()
    denied = client.post("/api/v1/survey-answers/", {"customer": other.pk, "answered_on": "2026-06-21", "score": 2},
                         content_type="application/json")
    assert denied.status_code == 400  # not a customer this rep may see
    assert SurveyAnswer.objects.filter(customer=customer).count() == 2


@pytest.mark.django_db
def test_the_dashboard_shows_the_segments_nps_as_the_run_counted_it():
    from valuation.models import RunSummary

    run = ValuationRunFactory(as_of=TODAY)
    customer = CustomerFactory()
    CustomerValueFactory(run=run, customer=customer, segment="problem")
    # Counted by the run as of its date; an answer logged since does not change them.
    RunSummary.objects.create(run=run, nps_by_segment={"problem": {"promoters": 3, "passives": 1, "detractors": 0}})
    SurveyAnswer.objects.create(customer=customer, score=0, answered_on=timezone.localdate())
    client = Client()
    client.force_login(make_user(Role.MANAGER, username="nps_manager"))

    page = client.get("/dashboard/").content.decode()

    assert 'data-segment="problem"><td>problem group</td><td class="num">4</td><td class="num">75</td>' in page
    assert 'id="segment-nps-as-of"' in page
