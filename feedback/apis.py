"""REST API of the feedback app (/api/v1/surveys/...). Thin views over feedback.services.

Staff roles: every role reads; creating surveys and inviting needs a Manager. Answering
(`POST surveys/responses/`) takes no login: the invitation's token is the credential, and the
endpoint is throttled per client like the token login."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response as ApiResponse
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from core.exceptions import DomainError
from core.parsers import JSONParser
from customers.models import Customer
from feedback import selectors
from feedback.emails import survey_url
from feedback.models import Survey
from feedback.serializers import (
    InvitationInputSerializer,
    InvitationOutputSerializer,
    ResponseInputSerializer,
    ResponseOutputSerializer,
    ResultsOutputSerializer,
    ResultsQuerySerializer,
    SurveyInputSerializer,
    SurveyOutputSerializer,
)
from feedback.services.invitations import survey_invite
from feedback.services.responses import AnswerErrors, response_save
from feedback.services.surveys import survey_create, survey_open


class SurveyListApi(generics.ListAPIView):
    """Surveys with their questions, newest first. POST creates one (Manager) and opens it unless
    `status` is "draft"."""

    serializer_class = SurveyOutputSerializer
    queryset = Survey.objects.prefetch_related("questions").order_by("-id")
    parser_classes = [JSONParser]

    @extend_schema(request=SurveyInputSerializer, responses={201: SurveyOutputSerializer})
    def post(self, request):
        data = SurveyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        questions = [dict(q, show_if=dict(q["show_if"]) if q.get("show_if") else None) for q in fields.pop("questions")]
        survey = survey_create(questions=questions, created_by=request.user, **fields)
        if request.query_params.get("status") != "draft":
            survey = survey_open(survey=survey)
        survey = Survey.objects.prefetch_related("questions").get(pk=survey.pk)
        return ApiResponse(SurveyOutputSerializer(survey).data, status=status.HTTP_201_CREATED)


class SurveyInvitationApi(APIView):
    """Invite one customer to a survey: the token and the link (the e-mail goes through the outbox).
    A refused invitation is a 400 that says why."""

    parser_classes = [JSONParser]

    @extend_schema(request=InvitationInputSerializer, responses={201: InvitationOutputSerializer})
    def post(self, request, pk: int):
        survey = get_object_or_404(Survey, pk=pk)
        data = InvitationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer = Customer.objects.filter(pk=data.validated_data["customer"]).first()
        if customer is None:
            raise ValidationError({"customer": ["There is no customer with this id."]})
        invitation = survey_invite(survey=survey, customer=customer, trigger="api")
        invitation.url = survey_url(invitation.token)
        return ApiResponse(InvitationOutputSerializer(invitation).data, status=status.HTTP_201_CREATED)


class SurveyResponseApi(APIView):
    """Answer a survey with an invitation's token (no login). 201 on the first submit; the same
    token again is a 409; an unknown token a 404; an expired link or a closed survey a 410."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "survey_answer"
    parser_classes = [JSONParser]

    @extend_schema(
        request=ResponseInputSerializer,
        responses={
            201: ResponseOutputSerializer,
            400: OpenApiResponse(description="Invalid answers, by question id."),
            404: OpenApiResponse(description="Unknown token."),
            409: OpenApiResponse(description="Already answered."),
            410: OpenApiResponse(description="Expired link or closed survey."),
        },
    )
    def post(self, request):
        data = ResponseInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        answers = {item["question"]: item["value"] for item in data.validated_data["answers"]}
        try:
            response = response_save(token=data.validated_data["token"], answers=answers, submit=data.validated_data["submit"])
        except AnswerErrors as exc:
            return ApiResponse({"answers": exc.errors}, status=status.HTTP_400_BAD_REQUEST)
        except DomainError as exc:
            code = {"not_found": 404, "already_submitted": 409, "expired": 410, "closed": 410}.get(exc.code, 400)
            return ApiResponse({"detail": exc.message, "code": exc.code}, status=code)
        body = {
            "id": response.pk,
            "survey_id": response.survey_id,
            "submitted_at": response.submitted_at,
            "nps_score": response.nps_score,
            "csat_score": response.csat_score,
            "category": response.category,
        }
        return ApiResponse(ResponseOutputSerializer(body).data, status=status.HTTP_201_CREATED if response.submitted_at else status.HTTP_200_OK)


class SurveyResultsApi(APIView):
    """NPS, CSAT and response rate of a survey over shop calendar days `from`..`to` (inclusive)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("from", str, description="First day, YYYY-MM-DD"),
            OpenApiParameter("to", str, description="Last day, YYYY-MM-DD"),
        ],
        responses=ResultsOutputSerializer,
    )
    def get(self, request, pk: int):
        survey = get_object_or_404(Survey, pk=pk)
        query = ResultsQuerySerializer(
            data={k: v for k, v in {"date_from": request.query_params.get("from"), "date_to": request.query_params.get("to")}.items() if v}
        )
        if not query.is_valid():
            raise ValidationError({{"date_from": "from", "date_to": "to"}[k]: v for k, v in query.errors.items()})
        results = selectors.survey_results(survey=survey, **query.validated_data)
        low, high = results.nps_interval or (None, None)
        body = {
            "responses": results.responses,
            "invitations": results.invitations,
            "promoters": results.promoters,
            "passives": results.passives,
            "detractors": results.detractors,
            "nps": results.nps,
            "nps_ci_low": low,
            "nps_ci_high": high,
            "small_sample": results.small_sample,
            "csat": results.csat,
            "response_rate": results.response_rate,
        }
        return ApiResponse(ResultsOutputSerializer(body).data)
