"""The public answer page (no login, no JavaScript needed, follow-ups, resume, single use, clear
pages for bad links) and the staff pages (roles, results, invite, exports, replies)."""

import csv
import io
import json

import pytest
from django.urls import reverse

from customers.models import Customer
from feedback.models import Invitation, Response, Survey
from feedback.services.responses import response_save
from tests.factories import CustomerFactory
from tests.feedback.factories import consenting_customer, invited, open_survey

pytestmark = pytest.mark.django_db


def _url(invitation):
    return reverse("feedback-public:answer", args=[invitation.token])


def test_the_answer_page_needs_no_login_and_shows_follow_ups_after_a_low_score(client):
    invitation = invited()
    nps, follow_up, product = invitation.survey.questions.order_by("position")
    page = client.get(_url(invitation))
    html = page.content.decode()
    assert page.status_code == 200 and nps.text in html and follow_up.text not in html
    assert 'name="csrfmiddlewaretoken"' in html and "<script" not in html.split("<main", 1)[1]
    # A low score: the follow-up comes next instead of a submit.
    page = client.post(_url(invitation), {"shown": [nps.pk, product.pk], f"q{nps.pk}": "3", "action": "submit"})
    assert page.status_code == 200 and follow_up.text in page.content.decode()
    assert Response.objects.get().submitted_at is None
    page = client.post(_url(invitation), {"shown": [nps.pk, follow_up.pk, product.pk], f"q{nps.pk}": "3", f"q{follow_up.pk}": "Cheaper", "action": "submit"})
    assert "Your answers have been sent" in page.content.decode()
    response = Response.objects.get()
    assert response.nps_score == 3 and response.answers.get(question=follow_up).text == "Cheaper"
    # Refresh or a second submit: the same single response, and a clear page.
    again = client.post(_url(invitation), {"shown": [nps.pk], f"q{nps.pk}": "10", "action": "submit"})
    assert again.status_code == 409 and "already been answered" in again.content.decode()
    assert Response.objects.get().nps_score == 3


def test_save_for_later_resumes_with_the_answers(client):
    invitation = invited()
    nps, _follow_up, product = invitation.survey.questions.order_by("position")
    client.post(_url(invitation), {"shown": [nps.pk, product.pk], f"q{product.pk}": "App", "action": "save"})
    html = client.get(_url(invitation)).content.decode()
    assert 'value="App" checked' in html


def test_errors_are_shown_on_the_page(client):
    invitation = invited()
    nps, _follow_up, product = invitation.survey.questions.order_by("position")
    page = client.post(_url(invitation), {"shown": [nps.pk, product.pk], f"q{nps.pk}": "12", "action": "submit"})
    assert page.status_code == 400 and "Choose a value from 0 to 10." in page.content.decode()


def test_bad_links_get_a_clear_page(client):
    assert client.get(reverse("feedback-public:answer", args=["x" * 43])).status_code == 404
    invitation = invited()
    Invitation.objects.filter(pk=invitation.pk).update(expires_at="2000-01-01T00:00:00Z")
    page = client.get(_url(invitation))
    assert page.status_code == 410 and "expired" in page.content.decode()


def test_the_answer_page_speaks_chinese(client):
    invitation = invited()
    html = client.get(_url(invitation), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "发送我的回答" in html


@pytest.mark.parametrize("name", ["feedback:list", "feedback:new"])
def test_staff_pages_need_a_login(client, name):
    assert client.get(reverse(name)).status_code == 302


def test_an_agent_reads_but_may_not_build_or_invite(client, agent):
    survey = open_survey()
    client.force_login(agent)
    assert client.get(reverse("feedback:list")).status_code == 200
    assert client.get(reverse("feedback:detail", args=[survey.pk])).status_code == 200
    assert client.get(reverse("feedback:new")).status_code == 403
    assert client.post(reverse("feedback:invite", args=[survey.pk])).status_code == 403
    assert client.post(reverse("feedback:close", args=[survey.pk])).status_code == 403


def test_a_manager_builds_a_survey_in_the_ui(client, manager):
    client.force_login(manager)
    data = {
        "name": "After delivery", "kind": "nps", "invitation_valid_days": 30, "reminder_after_days": 3,
        "q-TOTAL_FORMS": 6, "q-INITIAL_FORMS": 0, "q-MIN_NUM_FORMS": 0, "q-MAX_NUM_FORMS": 50,
        "q-0-type": "nps", "q-0-text": "Recommend us?", "q-0-required": "on",
        "q-1-type": "text", "q-1-text": "What could we do better?", "q-1-show_if_number": 1, "q-1-show_if_min": 0, "q-1-show_if_max": 6,
    }
    response = client.post(reverse("feedback:new"), data)
    assert response.status_code == 302
    survey = Survey.objects.get()
    follow_up = survey.questions.get(position=1)
    assert survey.status == "draft" and follow_up.show_if_question.position == 0 and follow_up.show_if_max == 6
    client.post(reverse("feedback:open", args=[survey.pk]))
    survey.refresh_from_db()
    assert survey.status == "open"


def test_the_builder_says_what_is_wrong(client, manager):
    client.force_login(manager)
    data = {"name": "Bad", "kind": "nps", "invitation_valid_days": 30, "q-TOTAL_FORMS": 1, "q-INITIAL_FORMS": 0, "q-0-type": "text", "q-0-text": "Hi"}
    response = client.post(reverse("feedback:new"), data)
    assert response.status_code == 200 and "starts with an NPS question" in response.content.decode()


def test_invite_a_filtered_list_reports_refusals(client, manager):
    survey = open_survey()
    consenting_customer(country="FR")
    consenting_customer(country="DE")
    CustomerFactory(country="FR", email_opt_in=False)
    client.force_login(manager)
    page = client.post(reverse("feedback:invite", args=[survey.pk]), {"country": "FR"})
    html = page.content.decode()
    assert "1 customer invited" in html and "has not opted in to marketing e-mail" in html
    assert list(Invitation.objects.values_list("customer__country", flat=True)) == ["FR"]
    assert Customer.objects.count() == 3


def test_results_page_draws_from_our_static_files_and_fixed_queries(client, agent, django_assert_max_num_queries):
    survey = open_survey()
    nps = survey.questions.get(position=0)
    for score in (2, 9, 10):
        response_save(token=invited(survey).token, answers={nps.pk: score}, submit=True)
    client.force_login(agent)
    with django_assert_max_num_queries(20) as captured:
        html = client.get(reverse("feedback:detail", args=[survey.pk])).content.decode()
    few = len(captured)
    assert "vendor/chartjs/chart.umd.min.js" in html and 'id="chart-nps-trend"' in html
    assert "Small sample: 3 answers" in html
    for score in (1, 5, 8, 7):
        response_save(token=invited(survey).token, answers={nps.pk: score}, submit=True)
    with django_assert_max_num_queries(few):
        client.get(reverse("feedback:detail", args=[survey.pk]))


def test_text_answers_search_as_an_htmx_fragment(client, agent):
    survey = open_survey()
    nps, follow_up, _product = survey.questions.order_by("position")
    response_save(token=invited(survey).token, answers={nps.pk: 2, follow_up.pk: "Shipping was slow"}, submit=True)
    response_save(token=invited(survey).token, answers={nps.pk: 1, follow_up.pk: "Too expensive"}, submit=True)
    client.force_login(agent)
    page = client.get(reverse("feedback:detail", args=[survey.pk]), {"fragment": "text-answers", "q": "slow"}, HTTP_HX_REQUEST="true")
    html = page.content.decode()
    assert "<html" not in html and "Shipping was slow" in html and "Too expensive" not in html
    assert "HX-Request" in page["Vary"]


def test_csv_export_is_formula_safe(client, agent):
    survey = open_survey()
    nps, follow_up, _product = survey.questions.order_by("position")
    response_save(token=invited(survey).token, answers={nps.pk: 2, follow_up.pk: "=HYPERLINK(1)"}, submit=True)
    client.force_login(agent)
    body = b"".join(client.get(reverse("feedback:export-csv", args=[survey.pk])).streaming_content).decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][-3:] == [q.text for q in survey.questions.order_by("position")]
    assert rows[1][-2] == "'=HYPERLINK(1)"


def test_json_export_then_import_in_the_ui(client, manager):
    survey = open_survey()
    client.force_login(manager)
    exported = client.get(reverse("feedback:export-json", args=[survey.pk])).content
    upload = io.BytesIO(exported)
    upload.name = "survey.json"
    response = client.post(reverse("feedback:import"), {"file": upload})
    assert response.status_code == 302
    assert json.loads(exported)["questions"][1]["show_if"]["max"] == 6


def test_replies_need_the_owner_or_a_manager(client, agent, manager):
    invitation = invited()
    nps = invitation.survey.questions.get(position=0)
    response = response_save(token=invitation.token, answers={nps.pk: 4}, submit=True)
    url = reverse("feedback:response", args=[response.pk])
    client.force_login(agent)
    assert client.post(url, {"body": "Sorry!"}).status_code == 403
    client.force_login(manager)
    assert client.post(url, {"body": "We called them.", "outcome": "Refund issued"}).status_code == 302
    response.refresh_from_db()
    assert response.outcome == "Refund issued" and response.replies.get().body == "We called them."


def test_the_customer_page_shows_their_answers(client, agent):
    invitation = invited()
    nps = invitation.survey.questions.get(position=0)
    response_save(token=invitation.token, answers={nps.pk: 10}, submit=True)
    client.force_login(agent)
    html = client.get(reverse("customers:detail", args=[invitation.customer_id])).content.decode()
    assert 'id="feedback-heading"' in html and "NPS 10" in html


def test_the_admin_freezes_what_would_change_old_answers(client, admin_user):
    survey = open_survey()
    client.force_login(admin_user)
    url = reverse("admin:feedback_survey_change", args=[survey.pk])
    assert 'name="questions-0-type"' in client.get(url).content.decode()
    nps = survey.questions.get(position=0)
    response_save(token=invited(survey).token, answers={nps.pk: 9}, submit=True)
    html = client.get(url).content.decode()
    assert 'name="questions-0-type"' not in html and 'name="questions-0-text"' in html
