"""API token authentication that reads the user's staff role with the token, in one query.

DRF's TokenAuthentication reads the token with its user, then the permission check asked for the
user's groups (core.roles.user_role): two queries, each built by the ORM, on every API request. This
reads the token, its user and the user's highest role in one fixed SQL statement and caches the role
on the user as user_role does. Nothing is kept across requests: a revoked token or a changed role
counts from the next request. An unknown key or an inactive user goes through DRF's own check, so
the 401 and its message are DRF's."""

from __future__ import annotations

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework import authentication

from .roles import ROLE_RANK

RANKED_ROLES = {rank: role for role, rank in ROLE_RANK.items()}


@cache
def _statement() -> tuple[str, list[str], list]:
    """The SQL (the token's key its last parameter), the user fields its columns hold, and the
    parameters before the key."""
    user_model = get_user_model()
    token_model = authentication.TokenAuthentication().get_model()
    quote = connection.ops.quote_name
    fields = user_model._meta.concrete_fields
    memberships = user_model._meta.get_field("groups").remote_field.through._meta
    ranks = " ".join("WHEN %s THEN %s" for _role in ROLE_RANK)
    sql = (
        f"SELECT t.{quote(token_model._meta.get_field('created').column)},"
        f" {', '.join(f'u.{quote(field.column)}' for field in fields)},"
        f" (SELECT MAX(CASE g.name {ranks} END) FROM {quote(memberships.db_table)} m"
        f" JOIN {quote(Group._meta.db_table)} g ON g.id = m.{quote(memberships.get_field('group').column)}"
        f" WHERE m.{quote(memberships.get_field('user').column)} = u.{quote(user_model._meta.pk.column)})"
        f" FROM {quote(token_model._meta.db_table)} t JOIN {quote(user_model._meta.db_table)} u"
        f" ON u.{quote(user_model._meta.pk.column)} = t.{quote(token_model._meta.get_field('user').column)}"
        f" WHERE t.{quote(token_model._meta.pk.column)} = %s"
    )
    return sql, [field.attname for field in fields], [value for role, rank in ROLE_RANK.items() for value in (str(role), rank)]


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        sql, fields, params = _statement()
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, key])
            row = cursor.fetchone()
        user = row and get_user_model().from_db(connection.alias, fields, row[1:-1])
        if user is None or not user.is_active:
            # DRF's own lookup raises its 401 (unknown key, inactive user) with its message.
            return super().authenticate_credentials(key)
        user._crm_role = RANKED_ROLES.get(row[-1])
        token = self.get_model()(key=key, user=user, created=row[0])
        token._state.adding, token._state.db = False, connection.alias
        return user, token
