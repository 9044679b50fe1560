"""API token authentication against hashed keys (`ApiToken`): a leaked database holds no usable key.

Same header as DRF's own: `Authorization: Token <key>`, so existing clients keep working.
"""

from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from workbench.models import ApiToken
from workbench.models.access import token_digest

LAST_USED_EVERY = 60  # seconds: "last used" is worth one write a minute, not one per call


class HashedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        token = ApiToken.objects.select_related("user").filter(digest=token_digest(key)).first()
        if token is None or token.revoked_at is not None:
            raise AuthenticationFailed("Invalid or revoked token.")
        if not token.user.is_active:
            raise AuthenticationFailed("The account behind this token is deactivated.")
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USED_EVERY:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token
