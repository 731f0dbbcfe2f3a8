"""The portal's background work: mailing a login link after the login page has answered.

The page answers at once and the same way for every address; looking the address up, writing the
token and queuing the message happen here, in a worker, so neither the answer nor its timing tells
whether the address is a customer's."""

from celery import shared_task

from portal.services import login_link_request


@shared_task(ignore_result=True)
def login_link_send(email: str, request_id: str) -> None:
    """Safe to run twice: request_id is unique among the login links (see login_link_request)."""
    login_link_request(email=email, request_id=request_id)
