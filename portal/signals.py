"""Signals of the portal, for apps that listen (the referrals app records where a customer logs in
from, for its fraud checks). Sent on commit of the login."""

from django.dispatch import Signal

# Sent with request and customer when a portal session begins.
portal_logged_in = Signal()
