"""A mail backend for tests: raises the queued exceptions in order, then delivers to outbox."""

from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend


class ScriptedBackend(BaseEmailBackend):
    script: list[Exception] = []
    options: dict = {}

    def __init__(self, fail_silently=False, **kwargs):
        super().__init__(fail_silently=fail_silently)
        ScriptedBackend.options = kwargs

    def send_messages(self, email_messages):
        if ScriptedBackend.script:
            raise ScriptedBackend.script.pop(0)
        mail.outbox.extend(email_messages)
        return len(email_messages)
