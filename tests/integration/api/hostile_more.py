"""More hostile requests: issue 11's classes, and every other endpoint and job type."""

from __future__ import annotations

from typing import Any

from tests.integration.api.hostile import F, Hostile, email_job, http_job, job, typed_job
from tests.integration.api.test_auth import claims, signed

EXPIRED = signed(claims(exp=1))


def noop_job(**payload: Any) -> dict[str, Any]:
    return typed_job("noop", payload, cron="*/30 * * * * *")


def purge_job(**payload: Any) -> dict[str, Any]:
    return typed_job("purgeSessions", payload)


def report_job(**payload: Any) -> dict[str, Any]:
    return typed_job("generateReport", payload)


def http_with(**payload: Any) -> dict[str, Any]:
    return typed_job("httpRequest", {"url": "https://hooks.example.com/x", **payload})


def purge_path(suffix: str = "") -> str:
    return "/jobs/{purge}" + suffix


ISSUE_11_CORPUS = [
    # 3. Admin-only types: every write and trigger needs an admin, also in the owner's account.
    Hostile("admin-only job: replace", 403, "PUT", purge_path(), job()),
    Hostile("admin-only job: retype", 403, "PATCH", purge_path(), {"type": "echo"}),
    Hostile("admin-only job: pause", 403, "PATCH", purge_path(), {"enabled": False}),
    Hostile("admin-only job: new payload", 403, "PATCH", purge_path(), {"payload": {}}),
    Hostile("admin-only job: delete", 403, "DELETE", purge_path()),
    Hostile("admin-only job: run now", 403, "POST", purge_path("/run-now")),
    Hostile(
        "admin-only job: replace with If-Match",
        403,
        "PUT",
        purge_path(),
        job(),
        headers={"If-Match": '"1"'},
    ),
    Hostile("create purgeSessions", 403, body=purge_job(inactiveDays=30)),
    Hostile("own job to noop", 403, "PATCH", "/jobs/{alice}", {"type": "noop", "payload": {}}),
    Hostile("own job replaced as purgeSessions", 403, "PUT", "/jobs/{alice}", purge_job()),
    # 6. Only the documented payload names (as an admin, so that admin-only types are judged).
    Hostile(
        "noop sleep_seconds",
        422,
        body=noop_job(sleep_seconds=1),
        fields=F({"payload.sleep_seconds"}),
        admin=True,
    ),
    Hostile(
        "noop fail_attempts",
        422,
        body=noop_job(fail_attempts=1),
        fields=F({"payload.fail_attempts"}),
        admin=True,
    ),
    Hostile(
        "purgeSessions inactive_days",
        422,
        body=purge_job(inactive_days=30),
        fields=F({"payload.inactive_days", "payload.inactiveDays"}),
        admin=True,
    ),
    Hostile(
        "generateReport report_type",
        422,
        body=report_job(report_type="jobRuns", period="daily"),
        fields=F({"payload.report_type", "payload.type"}),
    ),
    Hostile(
        "generateReport type and report_type",
        422,
        body=report_job(type="jobRuns", report_type="jobFailures", period="daily"),
        fields=F({"payload.report_type"}),
    ),
    Hostile(
        "httpRequest timeout_seconds",
        422,
        body=http_with(timeout_seconds=5),
        fields=F({"payload.timeout_seconds"}),
    ),
    Hostile(
        "sendEmail Subject",
        422,
        body=email_job(Subject="x"),
        fields=F({"payload.Subject"}),
    ),
    Hostile("job timeout_seconds", 422, body=job(timeout_seconds=5), fields=F({"timeout_seconds"})),
    Hostile(
        "job overlap_policy", 422, body=job(overlap_policy="allow"), fields=F({"overlap_policy"})
    ),
    Hostile(
        "patch misfire_grace_seconds",
        422,
        "PATCH",
        "/jobs/{alice}",
        {"misfire_grace_seconds": 5},
        fields=F({"misfire_grace_seconds"}),
    ),
    # 9. If-Match is a strong comparison.
    Hostile(
        "weak If-Match on PATCH",
        412,
        "PATCH",
        "/jobs/{alice}",
        {"name": "w"},
        headers={"If-Match": 'W/"1"'},
    ),
    Hostile(
        "weak If-Match on PUT", 412, "PUT", "/jobs/{alice}", job(), headers={"If-Match": 'W/"1"'}
    ),
    Hostile(
        "weak If-Match on DELETE", 412, "DELETE", "/jobs/{alice}", headers={"If-Match": 'W/"1"'}
    ),
    Hostile("If-Match list", 400, "DELETE", "/jobs/{alice}", headers={"If-Match": '"1", "2"'}),
    Hostile("If-Match empty", 400, "DELETE", "/jobs/{alice}", headers={"If-Match": " "}),
    # 2. Loops: a running job cannot queue runs; no relative URL without a base URL; not the API.
    Hostile(
        "run-now with the run signature",
        409,
        "POST",
        "/jobs/{alice}/run-now",
        headers={"X-Cron-Signature": "t=1,v1=00"},
        detail="sent by a running job",
    ),
    Hostile(
        "run-now with the run id",
        409,
        "POST",
        "/jobs/{alice}/run-now",
        headers={"x-cron-run-id": "6740a1f2c3d4e5f601234567"},
        detail="sent by a running job",
    ),
    Hostile(
        "relative URL without a base URL",
        422,
        body=http_job("/hooks/nightly"),
        fields=F({"payload.url"}),
    ),
    Hostile(
        "the API's own address",
        422,
        body=http_job("http://localhost:8000/api/cron/jobs/x/run-now"),
        fields=F({"payload.url"}),
    ),
    # 1. Targets that climb or hide (what redirects are now checked against, hop by hop).
    Hostile("dot segments", 422, body=http_job("/hooks/../admin"), fields=F({"payload.url"})),
    Hostile("encoded dot segments", 422, body=http_job("/%2e%2e/admin"), fields=F({"payload.url"})),
    Hostile("dot segment with params", 422, body=http_job("/a/..;x/b"), fields=F({"payload.url"})),
    Hostile("scheme-relative", 422, body=http_job("//evil.example/x"), fields=F({"payload.url"})),
    Hostile(
        "user info", 422, body=http_job("https://u:p@hooks.example.com/"), fields=F({"payload.url"})
    ),
    Hostile("hex IPv4", 422, body=http_job("http://0x7f000001/"), fields=F({"payload.url"})),
    Hostile("decimal IPv4", 422, body=http_job("http://2130706433/"), fields=F({"payload.url"})),
    Hostile("IPv6 loopback", 422, body=http_job("http://[::1]/"), fields=F({"payload.url"})),
    Hostile(
        "IPv6 zone id", 422, body=http_job("http://[fe80::1%25eth0]/"), fields=F({"payload.url"})
    ),
    Hostile(
        "IPv4-mapped loopback",
        422,
        body=http_job("http://[::ffff:127.0.0.1]/"),
        fields=F({"payload.url"}),
    ),
    Hostile(
        "gopher scheme",
        422,
        body=http_job("gopher://hooks.example.com/"),
        fields=F({"payload.url"}),
    ),
    Hostile("port 0", 422, body=http_job("http://hooks.example.com:0/"), fields=F({"payload.url"})),
    Hostile(
        "CRLF in URL", 422, body=http_job("https://a.example/\r\nX: y"), fields=F({"payload.url"})
    ),
    Hostile(
        "reserved Host header",
        422,
        body=http_with(headers={"Host": "internal"}),
        fields=F({"payload.headers.Host.[key]"}),
    ),
    Hostile(
        "forged signature header",
        422,
        body=http_with(headers={"X-Cron-Signature": "t=1,v1=00"}),
        fields=F({"payload.headers.X-Cron-Signature.[key]"}),
    ),
    Hostile(
        "CRLF in header value",
        422,
        body=http_with(headers={"X-A": "a\r\nB: c"}),
        fields=F({"payload.headers.X-A"}),
    ),
    Hostile(
        "GET with a body", 422, body=http_with(method="GET", body="x"), fields=F({"payload.body"})
    ),
    Hostile("TRACE method", 422, body=http_with(method="TRACE"), fields=F({"payload.method"})),
    Hostile(
        "http timeout 0",
        422,
        body=http_with(timeoutSeconds=0),
        fields=F({"payload.timeoutSeconds"}),
    ),
    Hostile(
        "http timeout 61",
        422,
        body=http_with(timeoutSeconds=61),
        fields=F({"payload.timeoutSeconds"}),
    ),
    # 7. A hostile Host never reaches an answer.
    Hostile(
        "Host header on a refused create",
        422,
        body=job(cron="61 * * * *"),
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
        fields=F({"cron"}),
    ),
    # 8. A DST gap makes one second between fires twice a year (exact check, no sampling).
    Hostile(
        "dst gap of one second",
        422,
        body=job(cron="59 59 1,2 * * *", timezone="Europe/Berlin"),
        fields=F({"cron"}),
    ),
    # 10. Oversized headers answer in the problem shape.
    Hostile("40 KB of headers", 431, "GET", "/jobs", headers={"X-Filler": "a" * 40_000}),
]

MORE_ENDPOINTS_CORPUS = [
    # Run history and reports.
    Hostile("another owner's runs", 404, "GET", "/jobs/{bob}/runs"),
    Hostile("another owner's reports", 404, "GET", "/jobs/{bob}/reports"),
    Hostile("runs limit 0", 422, "GET", "/jobs/{alice}/runs?limit=0", fields=F({"limit"})),
    Hostile("runs limit text", 422, "GET", "/jobs/{alice}/runs?limit=ten", fields=F({"limit"})),
    Hostile(
        "runs cursor operator",
        422,
        "GET",
        "/jobs/{alice}/runs?cursor=%7B%24gt%3A1%7D",
        fields=F({"cursor"}),
    ),
    Hostile(
        "reports cursor junk", 422, "GET", "/jobs/{alice}/reports?cursor=zzz", fields=F({"cursor"})
    ),
    Hostile(
        "reports limit 201", 422, "GET", "/jobs/{alice}/reports?limit=201", fields=F({"limit"})
    ),
    Hostile("runs with expired token", 401, "GET", "/jobs/{alice}/runs", token=EXPIRED),
    Hostile("reports without token", 401, "GET", "/jobs/{alice}/reports", token=""),
    # Listing filters.
    Hostile("status filter bogus", 422, "GET", "/jobs?status=exploded", fields=F({"status"})),
    Hostile("enabled filter bogus", 422, "GET", "/jobs?enabled=perhaps", fields=F({"enabled"})),
    Hostile("type filter too long", 422, "GET", "/jobs?type=" + "t" * 65, fields=F({"type"})),
    Hostile(
        "ownerId filter too long", 422, "GET", "/jobs?ownerId=" + "o" * 300, fields=F({"ownerId"})
    ),
    # One job.
    Hostile("read another owner's job", 404, "GET", "/jobs/{bob}"),
    Hostile("replace another owner's job", 404, "PUT", "/jobs/{bob}", job()),
    Hostile(
        "replace with ownerId",
        422,
        "PUT",
        "/jobs/{alice}",
        job(ownerId="bob-52d9"),
        fields=F({"ownerId"}),
    ),
    Hostile(
        "patch ownerId",
        422,
        "PATCH",
        "/jobs/{alice}",
        {"ownerId": "bob-52d9"},
        fields=F({"ownerId"}),
    ),
    Hostile("patch version", 422, "PATCH", "/jobs/{alice}", {"version": 9}, fields=F({"version"})),
    Hostile("patch array body", 422, "PATCH", "/jobs/{alice}", [{"name": "x"}]),
    Hostile("replace with broken JSON", 400, "PUT", "/jobs/{alice}", content=b'{"name": '),
    Hostile("run-now without token", 401, "POST", "/jobs/{alice}/run-now", token=""),
    # Catalogue and preview.
    Hostile("job types without token", 401, "GET", "/job-types", token=""),
    Hostile("job types with a tampered token", 401, "GET", "/job-types", token=EXPIRED + "x"),
    Hostile(
        "preview bad zone",
        422,
        "POST",
        "/preview",
        {"cron": "0 8 * * *", "timezone": "Nowhere/Land"},
        fields=F({"timezone"}),
    ),
    Hostile("preview without cron", 422, "POST", "/preview", {"count": 3}, fields=F({"cron"})),
    Hostile(
        "preview count 0",
        422,
        "POST",
        "/preview",
        {"cron": "0 8 * * *", "count": 0},
        fields=F({"count"}),
    ),
    Hostile(
        "preview unknown field",
        422,
        "POST",
        "/preview",
        {"cron": "0 8 * * *", "$where": "1"},
        fields=F({"$where"}),
    ),
    # Each job type's payload.
    Hostile(
        "email not an address",
        422,
        body=email_job(to="not-an-address"),
        fields=F({"payload.to[0]"}),
    ),
    Hostile("email no recipients", 422, body=email_job(to=[]), fields=F({"payload.to"})),
    Hostile(
        "email blank subject", 422, body=email_job(subject="   "), fields=F({"payload.subject"})
    ),
    Hostile(
        "email subject 201 chars",
        422,
        body=email_job(subject="s" * 201),
        fields=F({"payload.subject"}),
    ),
    Hostile(
        "email unknown template",
        422,
        body=email_job(template="nope"),
        fields=F({"payload.template"}),
    ),
    Hostile(
        "email params not an object", 422, body=email_job(params=[1]), fields=F({"payload.params"})
    ),
    Hostile(
        "report period hourly",
        422,
        body=report_job(type="jobRuns", period="hourly"),
        fields=F({"payload.period"}),
    ),
    Hostile(
        "report without period", 422, body=report_job(type="jobRuns"), fields=F({"payload.period"})
    ),
    Hostile(
        "purge 0 days",
        422,
        body=purge_job(inactiveDays=0),
        fields=F({"payload.inactiveDays"}),
        admin=True,
    ),
    Hostile(
        "purge days as text",
        422,
        body=purge_job(inactiveDays="30"),
        fields=F({"payload.inactiveDays"}),
        admin=True,
    ),
    Hostile(
        "purge 3651 days",
        422,
        body=purge_job(inactiveDays=3651),
        fields=F({"payload.inactiveDays"}),
        admin=True,
    ),
    Hostile(
        "noop negative sleep",
        422,
        body=noop_job(sleepSeconds=-1),
        fields=F({"payload.sleepSeconds"}),
        admin=True,
    ),
    Hostile(
        "noop 11 failures",
        422,
        body=noop_job(failAttempts=11),
        fields=F({"payload.failAttempts"}),
        admin=True,
    ),
    Hostile("echo count 11", 422, body=job(payload={"count": 11}), fields=F({"payload.count"})),
    # Scheduling options.
    Hostile(
        "negative backoff",
        422,
        body=job(retry={"backoffSeconds": -1}),
        fields=F({"retry.backoffSeconds"}),
    ),
    Hostile(
        "grace of a year",
        422,
        body=job(misfireGraceSeconds=365 * 86_400),
        fields=F({"misfireGraceSeconds"}),
    ),
    Hostile(
        "overlap sometimes", 422, body=job(overlapPolicy="sometimes"), fields=F({"overlapPolicy"})
    ),
    Hostile("misfire maybe", 422, body=job(misfirePolicy="maybe"), fields=F({"misfirePolicy"})),
]
