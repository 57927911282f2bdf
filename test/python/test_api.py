"""The HTTP API from Python, as a backend of another language uses it, against the Cronofy simulator.

Started by test/python.test.ts, which runs the service (every role), a Temporal dev server, a fresh PostgreSQL
database and the simulator, and passes where they are in the environment:

  API_URL                  the service's HTTP API (http://127.0.0.1:port)
  SIMULATOR_URL            the Cronofy simulator
  CRONOFY_CLIENT_ID        the application's client id at the simulator
  API_KEY_BACKEND          downgrades:write, downgrades:read, credentials:read
  API_KEY_OPERATOR         operators:write, operators:read
  API_KEY_APPROVER         operators:approve
  API_ADMIN_KEY            every scope (the outbox of webhook events)
  WEBHOOK_PORT             where this script listens for the service's webhook (APP_WEBHOOK_URL)
  WEBHOOK_SECRET           the Standard Webhooks secret (whsec_...) the service signs with

It drives an Individual downgrade from its start through the consent page to `completed` and its new credentials,
then an Enterprise domain of 100 users through preview, approval, the administrator's consent and the CSV report,
and verifies every webhook delivery with the `standardwebhooks` library. requests and standardwebhooks only; it
exits non-zero on the first failed check, printing why.
"""

import csv
import io
import json
import os
import sys
import threading
import time
import traceback
import uuid
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urljoin

import requests
from standardwebhooks import Webhook, WebhookVerificationError

API_URL = os.environ["API_URL"].rstrip("/")
SIMULATOR_URL = os.environ["SIMULATOR_URL"].rstrip("/")
CLIENT_ID = os.environ["CRONOFY_CLIENT_ID"]
BACKEND_KEY = os.environ["API_KEY_BACKEND"]
OPERATOR_KEY = os.environ["API_KEY_OPERATOR"]
APPROVER_KEY = os.environ["API_KEY_APPROVER"]
ADMIN_KEY = os.environ["API_ADMIN_KEY"]
WEBHOOK_PORT = int(os.environ["WEBHOOK_PORT"])
WEBHOOK_SECRET = os.environ["WEBHOOK_SECRET"]

FREE_BUSY_PROVIDERS = {"google_free_busy", "ms_graph_free_busy"}
DOWNGRADE_ENDINGS = {
    "completed", "denied", "expired", "read_write_kept", "no_access", "other_account",
    "link_not_opened", "cancelled", "failed",
}
DOMAIN_ENDINGS = {
    "completed", "rejected", "denied", "expired", "read_write_kept", "no_access", "other_account",
    "cancelled", "failed",
}
# Ceilings that only catch a hang: the waits below end as soon as what they wait for happens.
WAIT_CEILING_S = 240
POLL_INTERVAL_S = 0.25
HTTP_TIMEOUT_S = 60
DOMAIN_USERS = 100
PAGE_SIZE = 50

started_at = time.monotonic()
http = requests.Session()


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def step(message):
    print(f"[{time.monotonic() - started_at:6.1f}s] {message}", flush=True)


def describe(response):
    body = response.text
    if len(body) > 2000:
        body = body[:2000] + "..."
    return f"{response.request.method} {response.request.url} -> {response.status_code}: {body}"


def api(method, path, key, expect, json_body=None, headers=None, idempotency_key=None):
    """A request to the service's API; fails unless it answers `expect`. POSTs carry an Idempotency-Key."""
    all_headers = {"Authorization": f"Bearer {key}", **(headers or {})}
    if method == "POST":
        all_headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
    response = http.request(
        method, f"{API_URL}{path}", json=json_body, headers=all_headers, timeout=HTTP_TIMEOUT_S,
    )
    check(response.status_code == expect, f"expected {expect}: {describe(response)}")
    return response


def wait_for(what, probe, ceiling_s=WAIT_CEILING_S):
    """Calls `probe` until it answers something truthy; `probe` raises CheckFailed to give up at once."""
    deadline = time.monotonic() + ceiling_s
    last = None
    while True:
        value, last = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise CheckFailed(f"{what}: not within {ceiling_s} s; last seen {json.dumps(last)[:1500]}")
        time.sleep(POLL_INTERVAL_S)


# -- the webhook receiver -------------------------------------------------------------------------------------


class Receiver:
    """Every delivery, verified with standardwebhooks before it is accepted (2xx) or refused (401)."""

    def __init__(self, secret):
        self.webhook = Webhook(secret)
        self.lock = threading.Lock()
        self.deliveries = []  # every delivery: id, verified, error
        self.events = {}  # verified events by webhook-id (a redelivery is the same event)
        self.first_raw = None  # one verified delivery as received: body bytes and headers

    def receive(self, body, headers):
        try:
            event = self.webhook.verify(body, headers)
        except WebhookVerificationError as error:
            with self.lock:
                self.deliveries.append({"id": headers.get("webhook-id"), "verified": False, "error": str(error)})
            return False
        with self.lock:
            event_id = headers.get("webhook-id")
            self.deliveries.append({"id": event_id, "verified": True})
            self.events.setdefault(event_id, event)
            if self.first_raw is None:
                self.first_raw = (body, dict(headers))
        return True

    def snapshot(self):
        with self.lock:
            return list(self.deliveries), dict(self.events)


def start_receiver(receiver):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            verified = receiver.receive(body, headers)
            self.send_response(204 if verified else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
            pass

    server = ThreadingHTTPServer(("127.0.0.1", WEBHOOK_PORT), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True).start()
    return server


# -- the simulator's consent pages, as a browser reads them ---------------------------------------------------


class ConsentForm(HTMLParser):
    """The page's form: its action, its hidden fields and the decisions its buttons offer."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.action = None
        self.hidden = {}
        self.decisions = []
        self.in_form = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form" and (attributes.get("method") or "get").lower() == "post":
            self.in_form = True
            self.action = attributes.get("action")
        elif not self.in_form:
            return
        elif tag == "input" and attributes.get("type") == "hidden":
            self.hidden[attributes["name"]] = attributes.get("value") or ""
        elif tag == "button" and attributes.get("name") == "decision":
            self.decisions.append(attributes.get("value"))

    def handle_endtag(self, tag):
        if tag == "form":
            self.in_form = False


def decide_on_consent_page(url, decision, fields):
    """Opens the consent link (following its redirects), submits the form with `decision` and `fields`, and
    answers where the simulator sends the browser back to (not followed)."""
    page = http.get(url, timeout=HTTP_TIMEOUT_S)
    check(page.status_code == 200, f"the consent page: {describe(page)}")
    form = ConsentForm()
    form.feed(page.text)
    check(form.action, f"the consent page at {page.url} has a form")
    check(decision in form.decisions, f"the consent page offers {decision}: it offers {form.decisions}")
    answer = http.post(
        urljoin(page.url, form.action),
        data={**form.hidden, **fields, "decision": decision},
        allow_redirects=False,
        timeout=HTTP_TIMEOUT_S,
    )
    check(
        answer.status_code == 302 and answer.headers.get("Location"),
        f"the consent page sends the browser back: {describe(answer)}",
    )
    return urljoin(answer.url, answer.headers["Location"])


def follow_to_service(location):
    """The browser back at the service's callback: it answers 303 to the page after consent, which is loaded."""
    callback = http.get(location, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    check(
        callback.status_code == 303 and callback.headers.get("Location"),
        f"the service's callback: {describe(callback)}",
    )
    answered = http.get(urljoin(location, callback.headers["Location"]), allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    check(answered.status_code == 200, f"the page after consent: {describe(answered)}")
    return answered


# -- the Individual downgrade ---------------------------------------------------------------------------------


def individual_downgrade(run_tag):
    email = f"person-{run_tag}@example.com"
    account = http.post(
        f"{SIMULATOR_URL}/_sim/accounts", json={"email": email, "client_id": CLIENT_ID}, timeout=HTTP_TIMEOUT_S,
    )
    check(account.status_code == 201, f"a Read/Write person at the simulator: {describe(account)}")
    person = account.json()
    step(f"individual: {email} is {person['sub']}, connected Read/Write")

    start = {"sub": person["sub"], "refreshToken": person["refresh_token"], "userId": f"user-{run_tag}"}
    key = str(uuid.uuid4())
    started = api("POST", "/v1/downgrades", BACKEND_KEY, 201, json_body=start, idempotency_key=key).json()
    workflow_id = started["workflowId"]
    check(started.get("authorizationUrl"), f"the start answers with a consent link: {started}")
    step(f"individual: started {workflow_id}, its consent link answered at once")
    replayed = api("POST", "/v1/downgrades", BACKEND_KEY, 201, json_body=start, idempotency_key=key)
    check(replayed.headers.get("Idempotent-Replayed") == "true", f"a replay says so: {dict(replayed.headers)}")
    check(replayed.json() == started, f"a replay answers the first answer: {replayed.json()} != {started}")
    step("individual: the same Idempotency-Key answers the first answer again")

    location = decide_on_consent_page(started["authorizationUrl"], "free_busy_google", {"email": email})
    page = follow_to_service(location)
    step(f"individual: chose Free/Busy on the consent page; the page after consent answered {page.status_code}")

    def completed():
        status = api("GET", f"/v1/downgrades/{workflow_id}", BACKEND_KEY, 200).json()
        if status["state"] != "completed" and status["state"] in DOWNGRADE_ENDINGS:
            raise CheckFailed(f"the downgrade ended {status['state']}: {status}")
        return status["state"] == "completed" and status, status

    status = wait_for(f"{workflow_id} completes", completed)
    check(status["providerName"] in FREE_BUSY_PROVIDERS, f"the status names a Free/Busy provider: {status}")
    step(f"individual: completed with {status['providerName']}")

    credentials = api("GET", f"/v1/downgrades/{workflow_id}/credentials", BACKEND_KEY, 200).json()
    check(credentials["sub"] == person["sub"], f"the credentials are the person's: {credentials['sub']}")
    check(
        credentials.get("providerName") in FREE_BUSY_PROVIDERS,
        f"the new credentials are Free/Busy: providerName {credentials.get('providerName')}",
    )
    check(credentials["accessToken"] != person["access_token"], "the new access token is a new one")
    check(credentials.get("refreshToken") not in (None, person["refresh_token"]), "a new refresh token")
    userinfo = http.get(
        f"{SIMULATOR_URL}/v1/userinfo",
        headers={"Authorization": f"Bearer {credentials['accessToken']}"},
        timeout=HTTP_TIMEOUT_S,
    )
    check(userinfo.status_code == 200, f"Cronofy takes the new access token: {describe(userinfo)}")
    check(userinfo.json()["sub"] == person["sub"], f"the new token is the person's: {userinfo.json()}")
    old = http.get(
        f"{SIMULATOR_URL}/v1/userinfo",
        headers={"Authorization": f"Bearer {person['access_token']}"},
        timeout=HTTP_TIMEOUT_S,
    )
    check(old.status_code == 401, f"Cronofy refuses the old Read/Write access token: {describe(old)}")
    step(f"individual: new credentials are {credentials['providerName']} and work at Cronofy; the old token does not")
    return workflow_id


# -- the Enterprise domain ------------------------------------------------------------------------------------


def domain_downgrade(run_tag):
    domain = f"py-{run_tag}.example.org"
    emails = [f"user{i:03d}@{domain}" for i in range(DOMAIN_USERS)]
    created = http.post(
        f"{SIMULATOR_URL}/_sim/enterprise/domains",
        json={"domain": domain, "client_id": CLIENT_ID, "users": emails},
        timeout=HTTP_TIMEOUT_S,
    )
    check(created.status_code == 201, f"the domain at the simulator: {describe(created)}")
    service_account = created.json()
    step(f"domain: {domain} with {DOMAIN_USERS} users, service account {service_account['service_account_id']}")

    upload = api("POST", "/v1/uploads", OPERATOR_KEY, 201, json_body={"kind": "domains"}).json()
    upload_id = upload["uploadId"]
    for page_number, first in enumerate(range(0, DOMAIN_USERS, PAGE_SIZE), start=1):
        page = api(
            "POST", f"/v1/uploads/{upload_id}/pages", OPERATOR_KEY, 200,
            json_body={"emails": emails[first:first + PAGE_SIZE]},
        ).json()
        check(page["pages"] == page_number, f"page {page_number} counted: {page}")
        check(page["people"] == first + PAGE_SIZE, f"{first + PAGE_SIZE} people so far: {page}")
    step(f"domain: upload {upload_id} holds {DOMAIN_USERS} emails in {DOMAIN_USERS // PAGE_SIZE} pages")

    preview = api(
        "POST", f"/v1/domains/{domain}/previews", OPERATOR_KEY, 201,
        json_body={
            "uploadId": upload_id,
            "serviceAccountRefreshToken": service_account["refresh_token"],
            "serviceAccountSub": service_account["service_account_id"],
        },
    ).json()
    check(preview["users"]["count"] == DOMAIN_USERS, f"the preview counts {DOMAIN_USERS}: {preview['users']}")
    check(preview["users"]["duplicates"] == 0 and preview["users"]["malformed"] == 0, f"{preview['users']}")
    check(
        service_account["refresh_token"] not in json.dumps(preview),
        "the preview does not show the service account's refresh token",
    )
    preview_id = preview["previewId"]
    step(f"domain: preview {preview_id} counts {preview['users']['count']} users, "
         f"{preview['cronofyCalls'].get('total')} Cronofy calls")

    started = api("POST", f"/v1/domains/{domain}/start", OPERATOR_KEY, 201, json_body={"previewId": preview_id}).json()
    check(started.get("previewId") == preview_id, f"started from the preview: {started}")
    status = api("GET", f"/v1/domains/{domain}", OPERATOR_KEY, 200).json()
    check(status["phase"] == "awaiting_approval", f"the domain waits for approval: {status}")
    check(status["userCount"] == DOMAIN_USERS, f"the status counts {DOMAIN_USERS} users: {status}")
    step(f"domain: started {started['workflowId']}, phase {status['phase']}")

    approved = api(
        "POST", f"/v1/domains/{domain}/approve", APPROVER_KEY, 200,
        json_body={"by": "ops@example.com", "previewId": preview_id},
    ).json()
    check(approved["phase"] != "awaiting_approval", f"approved, it goes ahead: {approved}")
    check(approved.get("approval", {}).get("decidedBy") == "ops@example.com", f"{approved.get('approval')}")
    step(f"domain: approved by ops@example.com, phase {approved['phase']}")

    def phase_reached(wanted, extra=lambda status: True):
        def probe():
            status = api("GET", f"/v1/domains/{domain}", OPERATOR_KEY, 200).json()
            if status["phase"] != wanted and status["phase"] in DOMAIN_ENDINGS:
                raise CheckFailed(f"the domain ended {status['phase']}: {status}")
            return status["phase"] == wanted and extra(status) and status, status
        return probe

    waiting = wait_for(
        f"{domain} asks its administrator",
        phase_reached("awaiting_admin", lambda status: bool(status.get("administrator", {}).get("authorizationUrl"))),
    )
    authorization_url = waiting["administrator"]["authorizationUrl"]
    step("domain: awaiting_admin; the administrator opens the consent link")
    location = decide_on_consent_page(authorization_url, "free_busy_google", {"domain": domain})
    follow_to_service(location)
    step("domain: the administrator chose Free/Busy for the domain")

    done = wait_for(f"{domain} completes", phase_reached("completed"))
    check(done["counts"].get("completed") == DOMAIN_USERS, f"every user completed: {done['counts']}")
    step(f"domain: completed, counts {done['counts']}")

    report = api("GET", f"/v1/domains/{domain}/report", OPERATOR_KEY, 200, headers={"Accept": "text/csv"})
    check(report.headers.get("Content-Type", "").startswith("text/csv"), f"CSV: {report.headers.get('Content-Type')}")
    rows = list(csv.DictReader(io.StringIO(report.text)))
    check(len(rows) == DOMAIN_USERS, f"the report has {DOMAIN_USERS} rows: {len(rows)}")
    check([row["email"] for row in rows] == emails, "the report lists the users in the order uploaded")
    not_completed = [row for row in rows if row["state"] != "completed"]
    check(not not_completed, f"every row is completed: {not_completed[:5]}")
    providers = {row["provider_name"] for row in rows}
    check(providers <= FREE_BUSY_PROVIDERS, f"every user is Free/Busy: {providers}")
    step(f"domain: the CSV report has {len(rows)} rows, all completed ({', '.join(sorted(providers))})")
    return done["workflowId"]


# -- the webhooks ---------------------------------------------------------------------------------------------


def webhooks_arrived(receiver, individual_id, domain_id):
    def recorded(stream):
        answer = api("GET", f"/v1/webhooks/events?downgrade={stream}&limit=1000", ADMIN_KEY, 200).json()
        return [event for event in answer["events"] if event["channel"] == "webhook"]

    def probe():
        pending = api("GET", "/v1/webhooks/events?status=pending&limit=1000", ADMIN_KEY, 200).json()["events"]
        failed = api("GET", "/v1/webhooks/events?status=failed&limit=1000", ADMIN_KEY, 200).json()["events"]
        if failed:
            raise CheckFailed(f"the service failed to deliver events: {failed}")
        deliveries, events = receiver.snapshot()
        refused = [delivery for delivery in deliveries if not delivery["verified"]]
        if refused:
            raise CheckFailed(f"a webhook did not verify with standardwebhooks: {refused}")
        types = {(event["status"].get("workflowId"), event["type"]) for event in events.values()}
        expected = {(individual_id, "authorization_required"), (individual_id, "finished")}
        done = not pending and expected <= types
        return done, {"pending": pending, "received": sorted(map(str, types))}

    wait_for("every recorded webhook event is delivered", probe)
    deliveries, events = receiver.snapshot()
    check(deliveries, "at least one webhook was received")
    refused = [delivery for delivery in deliveries if not delivery["verified"]]
    check(not refused, f"every webhook verifies with standardwebhooks: {refused}")

    for stream in (individual_id, domain_id):
        for event in recorded(stream):
            check(event["status"] == "delivered", f"the service recorded it delivered: {event}")
            check(event["eventId"] in events, f"event {event['eventId']} ({event['eventType']}) reached the receiver")
            received = events[event["eventId"]]
            check(received["type"] == event["eventType"], f"{received['type']} != {event['eventType']}")
    finished = [
        event for event in events.values()
        if event["type"] == "finished" and event["status"].get("workflowId") == individual_id
    ]
    check(len(finished) == 1 and finished[0]["status"]["state"] == "completed", f"one finished, completed: {finished}")
    summary = sorted(f"{event['type']}" for event in events.values())
    step(f"webhooks: {len(deliveries)} deliveries, {len(events)} events, all verified: {', '.join(summary)}")

    # The verification above is not vacuous: the same delivery with one byte changed does not verify.
    body, headers = receiver.first_raw
    try:
        Webhook(WEBHOOK_SECRET).verify(body.replace(b"}", b" }", 1), headers)
    except WebhookVerificationError:
        pass
    else:
        raise CheckFailed("a tampered body verified")
    try:
        Webhook("whsec_" + "A" * 43 + "=").verify(body, headers)
    except WebhookVerificationError:
        pass
    else:
        raise CheckFailed("another secret verified")
    step("webhooks: a tampered body and another secret are refused by the library")


def main():
    run_tag = uuid.uuid4().hex[:10]
    receiver = Receiver(WEBHOOK_SECRET)
    server = start_receiver(receiver)
    step(f"webhook receiver listening on 127.0.0.1:{WEBHOOK_PORT}")
    try:
        individual_id = individual_downgrade(run_tag)
        domain_id = domain_downgrade(run_tag)
        webhooks_arrived(receiver, individual_id, domain_id)
    except CheckFailed as failure:
        print(f"FAILED: {failure}", flush=True)
        return 1
    except Exception:  # noqa: BLE001 (anything else fails the run too, with its trace)
        print("FAILED with an error:", flush=True)
        traceback.print_exc()
        return 1
    finally:
        server.shutdown()
    step("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
