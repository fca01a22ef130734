from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed

from apps.organizations import signin

CODE_HELP = "The 6 digits your authenticator app shows, or one of your recovery codes."


class SignInForm(AuthenticationForm):
    """Username and password, and the second factor's code for a user who has one. A
    wrong code counts as a failed sign-in, towards the same lockout as a wrong password."""

    code = forms.CharField(
        label="Code",
        required=False,
        help_text=CODE_HELP,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text", "size": 12}),
    )
    error_messages = {
        **AuthenticationForm.error_messages,
        "code_required": "Enter the code of your second factor.",
        "code_invalid": "That code is not right (or that recovery code was used already).",
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.device = None
        self.fields["password"].widget.render_value = True

    @property
    def asks_for_code(self) -> bool:
        return self.user_cache is not None and self.device is None and signin.has_second_factor(self.user_cache)

    def clean(self):
        cleaned = super().clean()
        user = self.user_cache
        if user is None or not signin.has_second_factor(user):
            return cleaned
        code = cleaned.get("code", "")
        if not code:
            raise forms.ValidationError(self.error_messages["code_required"], code="code_required")
        self.device = signin.verified_device(user, code)
        if self.device is None:
            user_login_failed.send(sender=__name__, credentials={"username": user.get_username()}, request=self.request)
            raise forms.ValidationError(self.error_messages["code_invalid"], code="code_invalid")
        return cleaned


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code", help_text=CODE_HELP, widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "size": 12})
    )
