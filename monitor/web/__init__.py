"""The web face: the HTTP API (intake, alerts), the console, and the acknowledge-link pages.

`app` builds the FastAPI application and serves it inside the daemon; `alerts_api` is
the alerts part of the API and the link pages; `console/` the server-rendered console
with its `templates/console/` and `static/`; `mailsink` the demo's local mailbox that the
console's 邮件 page reads.
"""
