import logging

from common.logging import RedactSecretsFilter, redact


def test_secrets_are_masked():
    text = (
        "key ptla_abcdefghijk0123456789012345678901234567890 stripe sk_live_51Habc "
        "whsec_abc123 Authorization: Bearer eyJhbGciOi.payload.sig password=hunter2 "
        '{"token": "abc"}'
    )
    masked = redact(text)
    for secret in [
        "ptla_abcdefghijk",
        "sk_live_51Habc",
        "whsec_abc123",
        "eyJhbGciOi",
        "hunter2",
        '"abc"',
    ]:
        assert secret not in masked
    assert "Bearer ***" in masked


def test_filter_masks_formatted_arguments():
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "calling with %s", ("ptlc_secret1234",), None
    )
    assert RedactSecretsFilter().filter(record)
    assert record.getMessage() == "calling with ***"
