"""The API's intake end points: a customer's referral code and share link, and creating a referral.

`POST /api/v1/referrals/` answers
- 201 with the referral (id, state, fraud {verdict ok | review, risk_score, signals}) when it is
  pending or flagged for review;
- 422 when a fraud rule rejects it at once: {"referee": [reason], "id": <the stored rejected
  referral, or null for a self-referral>, "state": "rejected", "fraud": {...}} (the same shape of
  field errors as every 4xx of the API, plus the verdict). 422, not 409, for every auto-reject,
  "already referred" (also a lost race) included: the request was understood and refused by a
  rule, and clients read the rule from fraud.signals[].code;
- 400 with field errors for bad input, an unknown or suspended code, an unknown referee.
Writes need the Manager role (core.permissions), as every write of the customers API. The same
path lists referrals (GET, referrals.apis.ReferralListApi, which this view extends)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from customers.models import Customer
from referrals.apis import ReferralListApi
from referrals.models import Referral, ReferralEvent
from referrals.services.codes import referral_code_for
from referrals.services.fraud import Assessment
from referrals.services.intake import ReferralRefused, referral_intake


class ReferralCodeOutputSerializer(serializers.Serializer):
    customer = serializers.IntegerField()
    code = serializers.CharField()
    link = serializers.URLField()
    suspended = serializers.BooleanField()


class ReferralIntakeInputSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=32)
    referee = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    ip = serializers.IPAddressField(required=False, allow_null=True)
    user_agent = serializers.CharField(max_length=512, required=False, allow_blank=True, default="")
    device_id = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    payment_fingerprint = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    address = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class SignalSerializer(serializers.Serializer):
    code = serializers.CharField()
    weight = serializers.IntegerField()
    action = serializers.CharField()
    detail = serializers.DictField()


class FraudSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=Referral.Verdict.choices)
    risk_score = serializers.IntegerField()
    signals = SignalSerializer(many=True)


class ReferralIntakeOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()
    referrer = serializers.IntegerField()
    referee = serializers.IntegerField()
    source = serializers.CharField()
    created_at = serializers.DateTimeField()
    fraud = FraudSerializer()


def fraud_data(assessment: Assessment) -> dict:
    return {"verdict": assessment.verdict, "risk_score": assessment.score, "signals": assessment.signals_json()}


def share_link(request, code: str) -> str:
    return request.build_absolute_uri(reverse("referrals-public:signup", args=[code]))


class CustomerReferralCodeApi(APIView):
    """The customer's referral code and share link, created on first use."""

    @extend_schema(responses=ReferralCodeOutputSerializer)
    def get(self, request, customer_id: int):
        customer = get_object_or_404(Customer.objects.only("pk"), pk=customer_id)
        code = referral_code_for(customer_id=customer.pk)
        data = {"customer": customer.pk, "code": code.code, "link": share_link(request, code.code),
                "suspended": code.suspended_at is not None}
        return Response(ReferralCodeOutputSerializer(data).data)


class ReferralListCreateApi(ReferralListApi):
    """GET: the referrals list (referrals.apis); POST: create a referral (see the module docstring)."""

    @extend_schema(
        operation_id="referrals_create", tags=["referrals"],
        request=ReferralIntakeInputSerializer,
        responses={
            201: ReferralIntakeOutputSerializer,
            400: OpenApiResponse(description="Field errors: bad input, unknown or suspended code, unknown referee."),
            422: OpenApiResponse(description="Rejected by a fraud rule; the rejected referral's id and its signals."),
        },
    )
    def post(self, request):
        serializer = ReferralIntakeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            result = referral_intake(
                code=data["code"], referee_id=data["referee"], source=Referral.Source.API, actor=ReferralEvent.Actor.API,
                ip=data.get("ip"), user_agent=data["user_agent"], device_id=data["device_id"], phone=data["phone"],
                payment_fingerprint=data["payment_fingerprint"], address=data["address"], staff=request.user,
            )
        except ReferralRefused as refused:
            body = {
                refused.field: [refused.message],
                "id": refused.referral.pk if refused.referral else None,
                "state": Referral.State.REJECTED,
                "fraud": fraud_data(refused.assessment),
            }
            return Response(body, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        referral = result.referral
        out = {
            "id": referral.pk, "state": referral.state, "referrer": referral.referrer_id, "referee": referral.referee_id,
            "source": referral.source, "created_at": referral.created_at, "fraud": fraud_data(result.assessment),
        }
        return Response(ReferralIntakeOutputSerializer(out).data, status=status.HTTP_201_CREATED)
