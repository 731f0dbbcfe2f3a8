"""The loyalty API: a member's account and ledger, staff adjustments (Manager) and redemptions.

`customer_id` in the paths is the customer's id. A write carries an idempotency_key: the same key
again answers the first result and writes nothing (header Idempotent-Replayed: true). A redemption
the balance or the stock cannot cover is a 409 with a clear error, never a 500."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.exceptions import DomainError
from core.roles import Role
from customers.models import Customer
from loyalty import selectors
from loyalty.serializers import (
    AccountOutputSerializer,
    AdjustInputSerializer,
    ConflictSerializer,
    EntryOutputSerializer,
    PostingOutputSerializer,
    RedeemInputSerializer,
)
from loyalty.services.ledger import InsufficientPoints, KeyReused, PostResult, points_adjust, points_redeem
from loyalty.services.rewards import OutOfStock, reward_redeem

CONFLICTS = (InsufficientPoints, OutOfStock, KeyReused)


def _customer_or_404(customer_id: int) -> None:
    get_object_or_404(Customer.objects.only("pk"), pk=customer_id)


def _conflict(exc: DomainError) -> Response:
    body = {"code": exc.code, "detail": exc.message}
    if isinstance(exc, InsufficientPoints):
        body["available"] = exc.available
    return Response(body, status=status.HTTP_409_CONFLICT)


# One output serializer for every posting: a serializer copies its declared fields, the nested
# serializers' too, each time it is made (a fifth of a redemption's Python time, profiled), and
# to_representation keeps no state between calls (no context, no request).
POSTING_OUTPUT = PostingOutputSerializer()


def _posted(result: PostResult, voucher=None) -> Response:
    data = {"entry": result.entry, "balance": max(result.entry.balance_after, 0), "voucher": voucher}
    response = Response(POSTING_OUTPUT.to_representation(data), status=status.HTTP_201_CREATED)
    if not result.created:
        response["Idempotent-Replayed"] = "true"
    return response


class AccountApi(APIView):
    @extend_schema(
        operation_id="loyalty_account_retrieve",
        responses=AccountOutputSerializer,
        summary="A member's balance, pending points, tier and next expiry (zeros before they enrol).",
        tags=["loyalty"],
    )
    def get(self, request, customer_id: int):
        _customer_or_404(customer_id)
        summary = selectors.account_summary(customer_id=customer_id)
        if summary is None:
            data = {"customer_id": customer_id, "enrolled": False, "balance": 0, "pending": 0, "spendable": 0,
                    "debt": 0, "tier": None, "next_expiry": None, "next_expiry_points": 0}
        else:
            data = {**summary, "customer_id": customer_id, "enrolled": True,
                    "tier": summary["tier"].name if summary["tier"] else None}
        return Response(AccountOutputSerializer(data).data)


class TransactionListApi(generics.ListAPIView):
    serializer_class = EntryOutputSerializer
    filter_backends = []

    def get_queryset(self):
        return selectors.ledger_entries(customer_id=self.kwargs["customer_id"], kind=self.request.query_params.get("kind"))

    @extend_schema(
        operation_id="loyalty_transactions_list",
        parameters=[OpenApiParameter("kind", str, enum=["earn", "redeem", "expire", "adjust", "reverse"])],
        summary="The member's ledger, newest first (cursor pagination); each entry's points are signed.",
        tags=["loyalty"],
    )
    def get(self, request, *args, **kwargs):
        _customer_or_404(kwargs["customer_id"])
        return super().get(request, *args, **kwargs)


class AdjustApi(APIView):
    write_role = Role.MANAGER

    @extend_schema(
        operation_id="loyalty_adjust",
        request=AdjustInputSerializer,
        responses={201: PostingOutputSerializer, 409: ConflictSerializer},
        summary="A manager's adjustment, up or down, with a reason (a decrease beyond the balance is a 409).",
        tags=["loyalty"],
    )
    def post(self, request, customer_id: int):
        _customer_or_404(customer_id)
        serializer = AdjustInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            result = points_adjust(customer_id=customer_id, staff=request.user, **serializer.validated_data)
        except CONFLICTS as exc:
            return _conflict(exc)
        return _posted(result)


class RedeemApi(APIView):
    # Staff redeem on a member's behalf (at the till, on the phone): every staff role.
    write_role = Role.AGENT

    @extend_schema(
        operation_id="loyalty_redeem",
        request=RedeemInputSerializer,
        responses={201: PostingOutputSerializer, 409: ConflictSerializer},
        summary="Spend points, or a reward's cost for a voucher; 409 when the balance or stock is short.",
        tags=["loyalty"],
    )
    def post(self, request, customer_id: int):
        # No customer lookup up front (one query less on the busiest write): only a member with an
        # account can spend, so an unknown customer ends in a conflict, checked there for the 404.
        serializer = RedeemInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            if "reward" in data:
                voucher, result = reward_redeem(
                    customer_id=customer_id, reward_id=data["reward"], idempotency_key=data["idempotency_key"]
                )
                return _posted(result, voucher)
            result = points_redeem(
                customer_id=customer_id, points=data["points"], idempotency_key=data["idempotency_key"]
            )
        except CONFLICTS as exc:
            _customer_or_404(customer_id)
            return _conflict(exc)
        return _posted(result)
