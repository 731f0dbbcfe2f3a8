"""Value API: a customer's value, the latest fitted model, and the channels' CAC and LTV/CAC.

Every staff role reads (core.permissions.StaffRolePermission); nothing here writes."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from lifecycle import selectors
from lifecycle.serializers import ClvChannelsOutputSerializer, ClvModelOutputSerializer, CustomerValueOutputSerializer


class CustomerValueApi(APIView):
    @extend_schema(
        operation_id="customer_value_retrieve",
        responses=CustomerValueOutputSerializer,
        summary="A customer's value figures from the latest recompute (404 until one has run).",
        tags=["value"],
    )
    def get(self, request, customer_id: int):
        value = selectors.customer_value_get(customer_id=customer_id)
        if value is None:
            raise Http404
        return Response(CustomerValueOutputSerializer(value).data)


class ClvModelApi(APIView):
    @extend_schema(
        operation_id="clv_model_retrieve",
        responses=ClvModelOutputSerializer,
        summary="The latest finished CLV run: its parameters, log-likelihoods and convergence.",
        tags=["value"],
    )
    def get(self, request):
        summary = selectors.clv_model_summary()
        if summary is None:
            raise Http404
        return Response(ClvModelOutputSerializer(summary).data)


class ClvChannelsApi(APIView):
    @extend_schema(
        operation_id="clv_channels_retrieve",
        responses=ClvChannelsOutputSerializer,
        summary="CAC (overall and per month), average CLV, LTV/CAC with the < 3 flag, and a suggested budget split.",
        tags=["value"],
    )
    def get(self, request):
        channels = selectors.channel_value_summary()
        data = {
            "ltv_basis": "formula_clv",
            "ltv_cac_target": selectors.LTV_CAC_TARGET,
            "channels": channels,
            "budget_split": selectors.budget_split(channels=channels),
        }
        return Response(ClvChannelsOutputSerializer(data).data)
