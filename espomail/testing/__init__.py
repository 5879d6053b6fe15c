"""Helpers shared by the tests, the benchmarks and the demo: a private Dovecot, a
recording SMTP server and builders of test messages. Not used by the product itself."""
