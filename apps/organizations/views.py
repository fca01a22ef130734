from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

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
