"""Forms of the account pages: API tokens, and users with their role."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.utils.translation import gettext_lazy as _

from customers.roles import Role, role_of
from customers.tokens import DEFAULT_LIFETIME_DAYS, LIFETIMES


class TokenForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100, help_text=_("What the token is for, e.g. “ERP export”."))
    lifetime = forms.TypedChoiceField(
        label=_("Valid for"), choices=list(LIFETIMES.items()), coerce=int, initial=DEFAULT_LIFETIME_DAYS
    )

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name or "\x00" in name:
            raise forms.ValidationError(_("Enter a name."))
        return name


class UserForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150, validators=[UnicodeUsernameValidator()])
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    email = forms.EmailField(
        label=_("Email"), required=False, help_text=_("Needed for the password-reset mail that sets the first password.")
    )
    role = forms.ChoiceField(
        label=_("Role"), required=False,
        choices=[("", _("no role (reaches nothing)"))] + [(role.value, role.label) for role in Role],
    )
    is_active = forms.BooleanField(label=_("Active"), required=False, initial=True,
                                   help_text=_("Inactive users cannot log in and their API tokens stop working."))

    def __init__(self, *args, instance=None, **kwargs):
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            role = role_of(instance)
            kwargs["initial"] = {
                "username": instance.username, "first_name": instance.first_name, "last_name": instance.last_name,
                "email": instance.email, "role": role.value if role else "", "is_active": instance.is_active,
            }
        super().__init__(*args, **kwargs)

    def clean_username(self):
        username = self.cleaned_data["username"]
        taken = get_user_model().objects.filter(username__iexact=username)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError(_("This username is taken."))
        return username

    def chosen_role(self) -> Role | None:
        value = self.cleaned_data.get("role")
        return Role(value) if value else None
