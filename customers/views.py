"""Staff screens for customers: list (live search, filters, keyset pages, CSV export), detail with
timeline, edit, notes and tasks. Views stay thin: a form validates, a selector reads, a service
writes."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from core.auth import role_required
from core.csv import csv_row
from core.exceptions import DomainError, ItemErrors
from core.registry import customer_panels_load
from core.roles import Role, role_at_least
from customers import selectors
from customers.forms import CustomerCreateForm, CustomerFilterForm, CustomerForm, NoteForm, OrderForm, TaskForm
from customers.models import Customer, Task
from customers.rules import customer_write_permitted
from customers.services.customers import (
    CUSTOMER_EDITABLE_FIELDS,
    customer_create,
    customer_update,
    note_create,
    task_complete,
    task_create,
)
from customers.services.orders import order_bulk_upsert


def _wants_fragment(request) -> bool:
    # A history restore (back button after a cache miss) needs the whole page.
    return bool(request.htmx) and not request.htmx.history_restore_request


def _render(request, template: str, fragment: str, context: dict):
    response = render(request, f"{template}#{fragment}" if _wants_fragment(request) else template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@role_required(Role.AGENT)
def customer_list(request):
    form = CustomerFilterForm(request.GET)
    sort = form.sort_value
    filters = form.filters()
    qs = selectors.customer_filter(**filters)
    page = selectors.customer_page(qs=qs, sort=sort, cursor=request.GET.get("cursor", ""), search=filters["q"])
    selectors.customer_health_bands(page.customers)
    context = {
        "form": form,
        "page": page,
        "sort": sort,
        "sort_columns": _sort_columns(sort),
        "may_create": role_at_least(request.user, Role.MANAGER),
        "currency": settings.DEFAULT_CURRENCY,  # the value columns' (lifecycle.CustomerValue)
    }
    return _render(request, "customers/list.html", "customer-table", context)


def _sort_columns(current: str) -> dict:
    """For each sortable column: the sort its header link selects and its current direction."""
    columns = {}
    for name in selectors.SORT_KEYS:
        if current == name:
            columns[name] = {"next": f"-{name}", "state": "ascending"}
        elif current == f"-{name}":
            columns[name] = {"next": name, "state": "descending"}
        else:
            columns[name] = {"next": f"-{name}" if name in selectors.DESCENDING_FIRST else name, "state": "none"}
    return columns


# The editable fields in the service's order, so an export reads back through the import.
EXPORT_COLUMNS = ("id", *CUSTOMER_EDITABLE_FIELDS, "tags", "created_at")
def _export_value(customer: Customer, column: str):
    if column == "channel":
        return customer.channel.code if customer.channel else None
    if column == "owner":
        return customer.owner.get_username() if customer.owner else None
    if column == "tags":
        return ";".join(sorted(t.name for t in customer.tags.all()))
    return getattr(customer, "pk" if column == "id" else column)


@role_required(Role.AGENT)
def customer_export(request):
    """The current filter and sort as CSV, streamed: memory stays flat for a million rows."""
    form = CustomerFilterForm(request.GET)
    qs = selectors.customer_filter(**form.filters())
    rows = selectors.customer_export_rows(qs=qs, sort=form.sort_value)

    def stream():
        yield csv_row(EXPORT_COLUMNS)
        for customer in rows:
            yield csv_row(_export_value(customer, column) for column in EXPORT_COLUMNS)

    filename = f"customers-{timezone.now():%Y%m%d-%H%M%S}.csv"
    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _get_customer(pk: int) -> Customer:
    try:
        return selectors.customer_detail(pk=pk)
    except Customer.DoesNotExist as exc:
        raise Http404(_("No such customer.")) from exc


@role_required(Role.AGENT)
def customer_detail(request, pk: int):
    customer = _get_customer(pk)
    before = request.GET.get("before", "")
    timeline = selectors.customer_timeline(customer=customer, before=before)
    if before and _wants_fragment(request):
        return _render(request, "customers/detail.html", "timeline-page", {"customer": customer, "timeline": timeline})
    context = {
        "customer": customer,
        "figures": selectors.customer_key_figures(customer=customer),
        "timeline": timeline,
        "open_tasks": selectors.customer_open_tasks(customer=customer),
        "panels": customer_panels_load(customer=customer, user=request.user),
        "may_write": customer_write_permitted(user=request.user, customer=customer),
        "may_edit": role_at_least(request.user, Role.MANAGER),
        "note_form": NoteForm(),
        "task_form": TaskForm(),
    }
    response = render(request, "customers/detail.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@role_required(Role.MANAGER)
def customer_edit(request, pk: int):
    customer = _get_customer(pk)
    if request.method == "POST":
        form = CustomerForm(request.POST)
        if form.is_valid():
            try:
                customer_update(customer=customer, **form.cleaned_data)
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
                customer = _get_customer(pk)  # the failed update changed the instance in memory
            else:
                messages.success(request, _("Customer saved."))
                return HttpResponseRedirect(reverse("customers:detail", args=[customer.pk]))
    else:
        form = CustomerForm(initial=CustomerForm.initial_for(customer))
    return render(request, "customers/edit.html", {"customer": customer, "form": form})


def _form_page(request, template: str, context: dict):
    """A create page; an htmx post that fails validation gets only the form back (#create-form)."""
    return _render(request, template, "create-form", context)


@role_required(Role.MANAGER)
def customer_create_page(request):
    """A new customer, through the service the API uses (the same rules, see customers.rules)."""
    form = CustomerCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            customer = customer_create(tags=data.pop("tags"), **data)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, _("Customer created."))
            return _redirect(request, _detail_url(customer))
    return _form_page(request, "customers/create.html", {"form": form})


@role_required(Role.MANAGER)
def order_create_page(request, pk: int):
    """A new order of this customer, written by the API's service: the same rules, the same order
    feed (customers.order_feed) as every other path."""
    customer = get_object_or_404(Customer, pk=pk)
    form = OrderForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            order_bulk_upsert(items=[{**form.cleaned_data, "customer": customer.pk}], create_only=True)
        except ItemErrors as exc:
            for name, errors in exc.errors[0].items():
                for error in errors:
                    form.add_error(name if name in form.fields else None, error)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Order added."))
            return _redirect(request, _detail_url(customer))
    return _form_page(request, "customers/order_create.html", {"form": form, "customer": customer})


def _redirect(request, url: str):
    # htmx follows a plain redirect inside the target; send it to the whole new page instead.
    return HttpResponseClientRedirect(url) if request.htmx else HttpResponseRedirect(url)


def _detail_url(customer: Customer) -> str:
    return reverse("customers:detail", args=[customer.pk])


def _write_for_customer(request, pk: int, form_class, write, success: str):
    """Validate a small form posted from the detail page, run the service, report as a message.
    The service decides who may write; its PermissionError becomes a 403."""
    customer = get_object_or_404(Customer, pk=pk)
    form = form_class(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return HttpResponseRedirect(_detail_url(customer))
    try:
        write(customer, form.cleaned_data)
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, success)
    return HttpResponseRedirect(_detail_url(customer))


@role_required(Role.AGENT)
@require_POST
def customer_note_create(request, pk: int):
    return _write_for_customer(
        request,
        pk,
        NoteForm,
        lambda customer, data: note_create(customer=customer, author=request.user, body=data["body"]),
        _("Note added."),
    )


@role_required(Role.AGENT)
@require_POST
def customer_task_create(request, pk: int):
    return _write_for_customer(
        request,
        pk,
        TaskForm,
        lambda customer, data: task_create(customer=customer, created_by=request.user, **data),
        _("Task added."),
    )


@role_required(Role.AGENT)
@require_POST
def customer_task_complete(request, pk: int, task_pk: int):
    task = get_object_or_404(Task.objects.select_related("customer"), pk=task_pk, customer_id=pk)
    try:
        task_complete(task=task, user=request.user)
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    messages.success(request, _("Task done."))
    return HttpResponseRedirect(_detail_url(task.customer))
