"""What operators see: logs, metrics, and the post-call webhook.

* `logs`          — structlog set-up; every line of a call carries its ids;
* `metrics`       — Prometheus metrics, fed by a call observer;
* `post_call`     — the post-call webhook (a call observer, sent off the call's path);
* `url_redaction` — URLs with their secrets removed, for logs.
"""
