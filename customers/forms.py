from django import forms
from django.conf import settings
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from core.people import PersonChoiceField
from core.times import as_utc
from customers.models import AcquisitionChannel, Order, Tag, validate_birth_date, validate_country
from customers.rules import customer_new_error
from customers.selectors import (
    DEFAULT_SORT,
    SORT_CHOICES,
    churn_risk_choices,
    owner_choices,
    rfm_segment_choices,
    stage_choices,
)


class UtcDateTimeField(forms.DateTimeField):
    """A date-time, in UTC (core.times: Django also takes ISO 8601 with an offset PostgreSQL
    refuses). One that UTC cannot express is invalid input."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return as_utc(moment)
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class CountryField(forms.CharField):
    """An ISO 3166-1 alpha-2 code, any case in, capitals out (the model's validator: pycountry's list)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("label", _("Country"))
        kwargs.setdefault("help_text", _("ISO 3166-1 alpha-2 code, e.g. DE."))
        super().__init__(max_length=2, required=False, validators=[validate_country], **kwargs)

    def to_python(self, value):
        return super().to_python(value).strip().upper()


class CustomerFilterForm(forms.Form):
    """The list page's search, filters and sort (GET). Invalid values are dropped, not fatal."""

    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=100,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": _("Name, e-mail or external id"), "autocomplete": "off"}
        ),
    )
    channel = forms.ModelChoiceField(
        label=_("Channel"), required=False, queryset=AcquisitionChannel.objects.all(),
        empty_label=_("All channels"),
        widget=forms.Select(attrs={"class": "js-filter"}),
    )
    country = forms.CharField(
        label=_("Country"),
        required=False,
        max_length=2,
        validators=[RegexValidator(r"^[A-Za-z]{2}$", _("Use a two-letter country code."))],
        widget=forms.TextInput(attrs={"placeholder": _("e.g. DE"), "size": 3, "autocomplete": "off"}),
    )
    owner = PersonChoiceField(
        label=_("Owner"),
        required=False,
        queryset=None,
        empty_label=_("Any owner"),
        widget=forms.Select(attrs={"class": "js-filter"}),
    )
    tag = forms.ModelChoiceField(
        label=_("Tag"),
        required=False,
        queryset=Tag.objects.all(),
        empty_label=_("Any tag"),
        widget=forms.Select(attrs={"class": "js-filter"}),
    )
    segment = forms.ChoiceField(
        label=_("RFM segment"), required=False, choices=(), widget=forms.Select(attrs={"class": "js-filter"})
    )
    stage = forms.ChoiceField(
        label=_("Lifecycle stage"), required=False, choices=(), widget=forms.Select(attrs={"class": "js-filter"})
    )
    risk = forms.TypedChoiceField(
        label=_("Churn risk"), required=False, choices=(), coerce=int, empty_value=None,
        widget=forms.Select(attrs={"class": "js-filter"}),
    )
    health_min = forms.IntegerField(
        label=_("Health from"), required=False, min_value=0, max_value=100,
        widget=forms.NumberInput(attrs={"class": "js-filter input--short", "placeholder": "0"}),
    )
    health_max = forms.IntegerField(
        label=_("Health to"), required=False, min_value=0, max_value=100,
        widget=forms.NumberInput(attrs={"class": "js-filter input--short", "placeholder": "100"}),
    )
    sort = forms.ChoiceField(label=_("Sort"), required=False, choices=[(s, s) for s in SORT_CHOICES])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = owner_choices()
        self.fields["segment"].choices = [("", _("Any segment")), *rfm_segment_choices()]
        self.fields["stage"].choices = [("", _("Any stage")), *stage_choices()]
        self.fields["risk"].choices = [("", _("Any risk level")), *churn_risk_choices()]

    def filters(self) -> dict:
        """Keyword arguments for customers.selectors.customer_filter (valid fields only)."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {
            "q": data.get("q") or "",
            "channel": data.get("channel"),
            "country": data.get("country") or "",
            "owner": data.get("owner"),
            "tag": data.get("tag"),
            "segment": data.get("segment") or "",
            "stage": data.get("stage") or "",
            "risk": data.get("risk"),
            "health_min": data.get("health_min"),
            "health_max": data.get("health_max"),
        }

    @property
    def sort_value(self) -> str:
        self.is_valid()
        return getattr(self, "cleaned_data", {}).get("sort") or DEFAULT_SORT


class CustomerForm(forms.Form):
    """The editable fields of a customer. A plain form, not a ModelForm: the service
    customers.services.customers.customer_update owns the write and its rules (consent time,
    normalised e-mail, duplicate checks)."""

    first_name = forms.CharField(label=_("First name"), max_length=100, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=100, required=False)
    email = forms.EmailField(label=_("E-mail"), max_length=254, required=False)
    phone = forms.CharField(label=_("Phone"), max_length=32, required=False)
    external_id = forms.CharField(label=_("External id"), max_length=64, required=False)
    country = CountryField()
    signed_up_at = UtcDateTimeField(
        label=_("Signed up"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
    )
    birth_date = forms.DateField(
        label=_("Date of birth"),
        required=False,
        # The model's validator (customers.rules.birth_date_clean wraps the same one for the API and import).
        validators=[validate_birth_date],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
    )
    channel = forms.ModelChoiceField(
        label=_("Acquisition channel"), required=False, queryset=AcquisitionChannel.objects.all()
    )
    owner = PersonChoiceField(label=_("Account manager"), required=False, queryset=None)
    tags = forms.ModelMultipleChoiceField(label=_("Tags"), required=False, queryset=Tag.objects.all())
    email_opt_in = forms.BooleanField(label=_("E-mail opt-in"), required=False)
    language = forms.ChoiceField(
        label=_("E-mail language"), choices=settings.LANGUAGES, initial=settings.LANGUAGE_CODE, required=False
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = owner_choices()

    @classmethod
    def initial_for(cls, customer) -> dict:
        initial = {name: getattr(customer, name) for name in cls.base_fields if name != "tags"}
        initial["tags"] = list(customer.tags.all())
        return initial

    def clean(self):
        data = super().clean()
        if not (data.get("email") or data.get("first_name") or data.get("last_name") or data.get("external_id")):
            raise forms.ValidationError(_("Give at least a name, an e-mail or an external id."))
        if not data.get("language"):
            data.pop("language", None)  # not sent: keep the customer's (or the default for a new one)
        return data


class CustomerCreateForm(CustomerForm):
    """A new customer: the edit form's fields, and the API's rule for a new one (customers.rules)."""

    def clean(self):
        data = super().clean()
        error = customer_new_error(data)
        if error:
            raise forms.ValidationError(error)
        return data


class OrderForm(forms.Form):
    """A new order of a customer. Its rules are checked by the service the API uses
    (customers.services.orders.order_bulk_upsert), whose field errors the view puts on these fields."""

    external_id = forms.CharField(
        label=_("Order id"), max_length=64, help_text=_("The order's id in the shop; it must be new.")
    )
    ordered_at = UtcDateTimeField(
        label=_("Ordered at"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
    )
    amount = forms.DecimalField(label=_("Amount"), max_digits=12, decimal_places=2)
    currency = forms.CharField(label=_("Currency"), max_length=100, initial=settings.DEFAULT_CURRENCY)  # the rule decides
    status = forms.ChoiceField(label=_("Status"), choices=Order.Status.choices, initial=Order.Status.PAID)

    def clean_external_id(self):
        value = self.cleaned_data["external_id"].strip()
        if "\x00" in value:
            raise forms.ValidationError(_("Null characters are not allowed."))
        return value


class NoteForm(forms.Form):
    body = forms.CharField(
        label=_("Note"),
        max_length=5000,
        error_messages={"required": _("A note cannot be empty.")},
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": _("Add a note…")})
    )


class TaskForm(forms.Form):
    title = forms.CharField(
        label=_("Task"),
        max_length=200,
        error_messages={"required": _("A task needs a title.")},
        widget=forms.TextInput(attrs={"placeholder": _("Call back…")}),
    )
    due_at = UtcDateTimeField(
        label=_("Due"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
    )
