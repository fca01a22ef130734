from base64 import b32encode

import segno
from axes.helpers import get_lockout_response
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from apps.organizations import signin
from apps.organizations.forms import CodeForm, SignInForm
from apps.organizations.middleware import SESSION_KEY


@login_required
@require_POST
def switch_organization(request):
    """Make another of the user's organizations the current one."""
    try:
        wanted = int(request.POST.get("organization", ""))
    except ValueError:
        raise Http404("Not found.") from None
    if wanted not in {m.organization_id for m in request.memberships}:
        raise Http404("Not found.")
    request.session[SESSION_KEY] = wanted
    target = request.POST.get("next", "/admin/")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/admin/"
    return HttpResponseRedirect(target)


class SignInView(auth_views.LoginView):
    """The one sign-in page (the admin's login redirects here): password, then the second
    factor's code for those who have one; the lockout (django-axes) counts both."""

    form_class = SignInForm

    def form_valid(self, form):
        response = super().form_valid(form)
        if form.device is not None:
            otp_login(self.request, form.device)
        return response


def admin_login(request):
    """Django admin's login page, sent to the one sign-in page with where it was going."""
    return redirect(f"{reverse('login')}?{urlencode({'next': request.GET.get('next', '/admin/')})}")


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or settings.LOGIN_REDIRECT_URL
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return settings.LOGIN_REDIRECT_URL
    return target


@login_required
def second_factor(request):
    """Asks a signed-in user for their second factor's code, or, for one who has none yet,
    sets up an authenticator app (QR code and key), confirmed by its first code, and
    shows the recovery codes once."""
    user, next_url = request.user, _next_url(request)
    if user.is_verified():
        return redirect(next_url)
    enrolling = not signin.has_second_factor(user)
    device = signin.pending_app_device(user) if enrolling else None
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"]
        if enrolling:
            codes = signin.confirm_app_device(request, device, code)
            if codes is not None:
                otp_login(request, device)
                return render(request, "registration/recovery_codes.html", {"codes": codes, "next": next_url})
        else:
            verified = signin.verified_device(user, code)
            if verified is not None:
                otp_login(request, verified)
                return redirect(next_url)
            credentials = {"username": user.get_username()}
            user_login_failed.send(sender=__name__, credentials=credentials, request=request)
            if getattr(request, "axes_locked_out", False):
                logout(request)
                return get_lockout_response(request, credentials=credentials)
        form.add_error("code", "That code is not right.")
    context = {"form": form, "enrolling": enrolling, "next": next_url}
    if enrolling:
        context["qr_svg"] = segno.make(device.config_url).svg_inline(scale=4)
        context["key"] = b32encode(device.bin_key).decode()
    return render(request, "registration/second_factor.html", context)


@login_required
@require_POST
def renew_recovery_codes(request):
    if not request.user.is_verified():
        raise PermissionDenied("Sign in with your second factor first.")
    codes = signin.renew_recovery_codes(request, request.user)
    return render(request, "registration/recovery_codes.html", {"codes": codes, "next": _next_url(request)})
