"""Stage API: a customer's transitions, a Manager's manual stage change, and the tasks inbox
(list and update). The customer resource itself carries stage, health_score and churn_risk
(customers.serializers)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from core.roles import Role, role_at_least
from customers.models import Customer, Task
from lifecycle.models_stages import StageTransition
from lifecycle.selectors_tasks import open_tasks
from lifecycle.serializers_stages import (
    InboxTaskOutputSerializer,
    StageChangeInputSerializer,
    TaskUpdateInputSerializer,
    TransitionOutputSerializer,
)
from lifecycle.services.stages import customer_stage_set
from lifecycle.services.tasks_inbox import task_done_with_note


class CustomerTransitionListApi(generics.ListAPIView):
    serializer_class = TransitionOutputSerializer
    filter_backends = []

    @extend_schema(summary="A customer's stage transitions, newest first.", tags=["lifecycle"])
    def get(self, request, *args, **kwargs):
        get_object_or_404(Customer.objects.only("pk"), pk=self.kwargs["customer_id"])
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return StageTransition.objects.filter(customer_id=self.kwargs["customer_id"]).select_related("changed_by")


class CustomerStageApi(APIView):
    write_role = Role.MANAGER

    @extend_schema(
        request=StageChangeInputSerializer,
        responses={201: TransitionOutputSerializer},
        summary="Move a customer to a stage by hand (Manager; a reason is required).",
        tags=["lifecycle"],
    )
    def post(self, request, customer_id: int):
        customer = get_object_or_404(Customer, pk=customer_id)
        serializer = StageChangeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        transition = customer_stage_set(customer=customer, user=request.user, **serializer.validated_data)
        return Response(TransitionOutputSerializer(transition).data, status=status.HTTP_201_CREATED)


class TaskInboxListApi(generics.ListAPIView):
    serializer_class = InboxTaskOutputSerializer
    filter_backends = []

    @extend_schema(
        parameters=[
            OpenApiParameter("who", str, enum=["me", "all"], description="all: everyone's open tasks (Managers)."),
            OpenApiParameter("overdue", bool, description="Only overdue tasks."),
        ],
        summary="Open tasks: mine, or everyone's for a Manager.",
        tags=["lifecycle"],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        everyone = self.request.query_params.get("who") == "all" and role_at_least(self.request.user, Role.MANAGER)
        queryset = open_tasks(user=self.request.user, everyone=everyone).order_by("-id")
        if self.request.query_params.get("overdue") in ("true", "1"):
            queryset = queryset.filter(overdue=True)
        return queryset


class TaskInboxUpdateApi(APIView):
    write_role = Role.AGENT  # the service lets the assignee or a Manager finish a task

    @extend_schema(request=TaskUpdateInputSerializer, responses=InboxTaskOutputSerializer, summary="Mark a task done with a note.", tags=["lifecycle"])
    def patch(self, request, pk: int):
        get_object_or_404(Task.objects.only("pk"), pk=pk)
        serializer = TaskUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not serializer.validated_data["done"]:
            raise ValidationError({"done": [_("Only true is accepted: a done task stays done.")]})
        task = task_done_with_note(task_id=pk, user=request.user, note=serializer.validated_data["note"])
        task.overdue = False  # done tasks are never overdue
        return Response(InboxTaskOutputSerializer(task).data)
