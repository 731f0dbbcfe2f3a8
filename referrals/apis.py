"""The referrals API (staff): the referrals with filters, one with its events, a manager's approve /
reject, and the rewards. Creating a referral and a customer's code are the intake's (apis_intake).

A decision the state machine does not allow (approving what is not flagged, rejecting what is
decided) is a 409 {code, detail, state}; a bad note a 400 with field errors; never a 500."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from referrals.filters import ReferralFilter, RewardFilter
from referrals.models import Referral, Reward
from referrals.serializers import (
    DecisionInputSerializer,
    ReferralConflictSerializer,
    ReferralDetailOutputSerializer,
    ReferralOutputSerializer,
    RejectInputSerializer,
    RewardOutputSerializer,
)
from referrals.services.review import NotInReview, referral_approve, referral_reject
from referrals.services.transitions import TransitionRefused

REFERRALS = Referral.objects.select_related("code")


class ReferralListApi(generics.ListAPIView):
    queryset = REFERRALS
    serializer_class = ReferralOutputSerializer
    filterset_class = ReferralFilter

    @extend_schema(operation_id="referrals_list", summary="Referrals, newest first (cursor pages), with filters.",
                   tags=["referrals"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ReferralDetailApi(generics.RetrieveAPIView):
    queryset = REFERRALS.prefetch_related("events")
    serializer_class = ReferralDetailOutputSerializer
    lookup_url_kwarg = "referral_id"

    @extend_schema(operation_id="referrals_retrieve", summary="A referral with its events, oldest first.",
                   tags=["referrals"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class _DecisionApi(APIView):
    input_serializer = DecisionInputSerializer
    decide = None

    def post(self, request, referral_id: int):
        get_object_or_404(Referral.objects.only("pk"), pk=referral_id)
        serializer = self.input_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            self.decide(referral_id=referral_id, staff=request.user, note=serializer.validated_data["note"])
        except (NotInReview, TransitionRefused) as refused:  # other DomainErrors: 400 field errors
            state = Referral.objects.filter(pk=referral_id).values_list("state", flat=True).first()
            return Response({"code": refused.code, "detail": refused.message, "state": state},
                            status=status.HTTP_409_CONFLICT)
        referral = REFERRALS.prefetch_related("events").get(pk=referral_id)
        return Response(ReferralDetailOutputSerializer(referral).data)


class ReferralApproveApi(_DecisionApi):
    decide = staticmethod(referral_approve)

    @extend_schema(
        operation_id="referrals_approve", request=DecisionInputSerializer,
        responses={200: ReferralDetailOutputSerializer, 409: ReferralConflictSerializer},
        summary="A manager approves a flagged referral (note optional); 409 when it is not flagged.",
        tags=["referrals"],
    )
    def post(self, request, referral_id: int):
        return super().post(request, referral_id)


class ReferralRejectApi(_DecisionApi):
    input_serializer = RejectInputSerializer
    decide = staticmethod(referral_reject)

    @extend_schema(
        operation_id="referrals_reject", request=RejectInputSerializer,
        responses={200: ReferralDetailOutputSerializer, 409: ReferralConflictSerializer},
        summary="A manager rejects a referral not decided yet, with a note; 409 when it is decided.",
        tags=["referrals"],
    )
    def post(self, request, referral_id: int):
        return super().post(request, referral_id)


class RewardListApi(generics.ListAPIView):
    queryset = Reward.objects.all()
    serializer_class = RewardOutputSerializer
    filterset_class = RewardFilter

    @extend_schema(operation_id="referral_rewards_list", summary="Referral rewards, newest first (cursor pages).",
                   tags=["referrals"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RewardDetailApi(generics.RetrieveAPIView):
    queryset = Reward.objects.all()
    serializer_class = RewardOutputSerializer
    lookup_url_kwarg = "reward_id"

    @extend_schema(operation_id="referral_rewards_retrieve", summary="One referral reward.", tags=["referrals"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
