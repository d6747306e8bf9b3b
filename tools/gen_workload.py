#!/usr/bin/python3
"""Generates examples/data/workload.jsonl: a replay of LLM traffic for the demo.

Four tenants (customer-support chat, coding help, RAG questions over docs, an
IT helpdesk) send traffic to several priced backends and one self-hosted,
unpriced model. Each
tenant draws its requests from a pool of distinct prompts with Zipf-like
popularity: a few FAQ-like prompts are asked very often, the long tail once,
so that almost half of all requests repeat an earlier one exactly, as real
traffic does. For the semantic tier, 9% of the requests are rewordings of an
earlier request (the same question retyped: casing, punctuation, filler,
contractions, a typo) and 3% are look-alikes of one (another number, name or
opposite verb), marked so that the demo can check what the cache served them.

Deterministic: the same seed gives byte-identical output. Standard library
only.

  /usr/bin/python3 tools/gen_workload.py [--seed 7] [--requests 3000] [--out PATH]
"""

import argparse
import copy
import json
import os
import random
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "examples", "data", "workload.jsonl")
PRICES = os.path.join(ROOT, "data", "prices.json")

SELF_HOSTED = ("self-hosted", "llama-3.1-8b-instruct")

# ---------------------------------------------------------------------------
# acme-support: a smart-home company's customer support chat.
# ---------------------------------------------------------------------------

ACME_SYSTEM = (
    "You are Aria, the customer support assistant for Acme Home. Acme sells "
    "smart-home devices (the Acme Hub, SmartPlug, Doorbell Cam, Thermostat "
    "T3 and Router X200) and the Acme Plus and Acme Protect subscriptions. "
    "Answer in the customer's language. Be friendly and concise: at most "
    "five short paragraphs or a numbered list of steps. Never ask for full "
    "card numbers or passwords. If the customer wants a refund above $200, a "
    "replacement under warranty, or is upset after two replies, offer to "
    "hand over to a human agent. Today's return window is 30 days; warranty "
    "is 2 years in the EU and 1 year elsewhere."
)

ACME_PRODUCTS = [
    "Acme Hub",
    "SmartPlug",
    "SmartPlug Mini",
    "Doorbell Cam",
    "Doorbell Cam Pro",
    "Thermostat T3",
    "Router X200",
    "Router X200 Mesh",
    "Motion Sensor",
    "Indoor Cam 2K",
    "Smart Bulb E27",
    "Smart Lock S1",
]
ACME_PLANS = ["Acme Plus", "Acme Protect", "Acme Protect Family"]
ACME_PLATFORMS = [
    "Alexa",
    "Google Home",
    "Apple HomeKit",
    "SmartThings",
    "Home Assistant",
    "IFTTT",
    "Android 14",
    "iOS 17",
]
ACME_VERSIONS = ["4.2.1", "4.3.0", "4.3.2", "5.0.0", "5.0.1"]
ACME_ERRORS = ["E-101", "E-203", "E-318", "E-404", "E-502", "NET-07", "AUTH-12"]

# (intent, generic phrasings asked as-is by many customers, specific templates
# that mention product/plan/order details and so form the long tail).
ACME_INTENTS = [
    (
        "reset_password",
        [
            "How do I reset my password?",
            "I forgot my password, how can I log in?",
            "How can I change my account password?",
        ],
        [
            "I can't log in to the Acme app, it says my password is wrong but I'm sure it's right. My email is on a {domain} address.",
            "The password reset email never arrives. I've checked spam. I use {domain}.",
        ],
    ),
    (
        "cancel",
        [
            "How do I cancel my subscription?",
            "How can I cancel Acme Plus?",
            "I want to cancel my plan and get my money back.",
        ],
        [
            "How do I cancel {plan}? I signed up {days} days ago and was charged ${amount}.",
            "If I cancel {plan} today, do I keep the recordings until the end of the month?",
        ],
    ),
    (
        "refund",
        ["What is your return policy?", "Can I return a product I bought online?"],
        [
            "Can I get a refund for my {product}? I bought it {days} days ago and it still works but I don't need it.",
            "I returned my {product} {days} days ago and haven't got my refund of ${amount} yet. Order #{order}.",
        ],
    ),
    (
        "shipping",
        ["How long does shipping take?", "Do you ship internationally?"],
        [
            "My order #{order} hasn't arrived yet, it's been {days} days. Can you check where it is?",
            "The tracking for order #{order} says delivered but I never got my {product}.",
        ],
    ),
    (
        "wifi",
        [
            "My device won't connect to Wi-Fi. What should I do?",
            "Does Acme support 5 GHz Wi-Fi?",
        ],
        [
            "My {product} keeps disconnecting from Wi-Fi since the {version} update. The router is {days} meters away.",
            "Setup of my {product} fails at the Wi-Fi step with error {error}.",
            "My {product} shows offline in the app but the light is solid blue. What does that mean?",
        ],
    ),
    (
        "compat",
        ["Which smart assistants does Acme work with?"],
        [
            "Is the {product} compatible with {platform}?",
            "How do I add my {product} to {platform}?",
            "My {product} disappeared from {platform} after I renamed it in the Acme app.",
        ],
    ),
    (
        "error_code",
        ["What do the error codes in the app mean?"],
        [
            "The app shows error {error} when I open the live view of my {product}.",
            "What does error {error} mean on the {product}?",
        ],
    ),
    (
        "plans",
        [
            "What's the difference between Acme Plus and Acme Protect?",
            "How much does Acme Protect cost?",
            "Is there a free trial of Acme Plus?",
        ],
        [
            "Does {plan} cover the {product}, or do I need a separate plan for it?",
            "I have {plan}. How many days of video history do I get for my {product}?",
        ],
    ),
    (
        "warranty",
        ["How long is the warranty?", "Is water damage covered by the warranty?"],
        [
            "My {product} stopped turning on after {days} days. Is it under warranty?",
            "The {product} I got as a gift has a cracked case. Can I get a replacement without the receipt?",
        ],
    ),
    (
        "battery",
        [
            "How long does the Doorbell Cam battery last?",
            "How do I charge the Doorbell Cam?",
        ],
        [
            "The battery of my {product} drops from 100% to {pct}% in {days} days. Is that normal?"
        ],
    ),
    (
        "firmware",
        ["How do I update the firmware?", "How do I factory reset my device?"],
        [
            "How do I factory reset the {product}? It's stuck on firmware {version}.",
            "The firmware update to {version} on my {product} has been stuck at {pct}% for an hour.",
        ],
    ),
    (
        "billing",
        ["Why was I charged twice?", "How do I update my payment method?"],
        [
            "I was charged ${amount} for {plan} but I thought it was ${amount2}. Can you explain?",
            "Can I switch {plan} from monthly to yearly billing and keep my recordings?",
        ],
    ),
]

ACME_INTL = {
    "es": [
        "¿Cómo restablezco mi contraseña?",
        "¿Cómo cancelo mi suscripción a Acme Plus?",
        "Mi {product} no se conecta al wifi desde la actualización {version}.",
        "¿El {product} es compatible con {platform}?",
        "Mi pedido #{order} no ha llegado todavía, han pasado {days} días.",
        "¿Cuánto dura la garantía en España?",
        "¿Qué significa el error {error} en mi {product}?",
    ],
    "de": [
        "Wie setze ich mein Passwort zurück?",
        "Wie kündige ich mein Acme-Plus-Abo?",
        "Mein {product} verliert seit dem Update {version} ständig die WLAN-Verbindung.",
        "Ist der {product} mit {platform} kompatibel?",
        "Meine Bestellung #{order} ist nach {days} Tagen noch nicht angekommen.",
        "Wie lange gilt die Garantie in Deutschland?",
        "Was bedeutet der Fehler {error} bei meinem {product}?",
    ],
    "fr": [
        "Comment réinitialiser mon mot de passe ?",
        "Comment résilier mon abonnement Acme Plus ?",
        "Mon {product} se déconnecte du wifi depuis la mise à jour {version}.",
        "Le {product} est-il compatible avec {platform} ?",
        "Ma commande #{order} n'est toujours pas arrivée après {days} jours.",
        "Quelle est la durée de la garantie en France ?",
        "Que signifie l'erreur {error} sur mon {product} ?",
    ],
}

# Canned earlier assistant turns, so that 2-3 turn conversations carry a
# believable history.
ACME_FIRST_REPLIES = {
    "reset_password": 'You can reset it from the login screen: tap "Forgot password?", enter the email on your account and follow the link we send you. The link is valid for 30 minutes.',
    "cancel": "You can cancel any time in the Acme app under Account > Subscriptions > Manage. Your plan stays active until the end of the current billing period.",
    "refund": "Products bought from acme.com can be returned within 30 days for a full refund. Start the return from Orders in your account and we'll email you a prepaid label.",
    "shipping": "Standard shipping takes 3-5 business days and express 1-2. I can look up a specific order if you share the order number.",
    "wifi": "Let's try the basics first: make sure the device is on 2.4 GHz Wi-Fi, within about 10 meters of the router, and that the router isn't blocking new devices.",
    "compat": "Acme devices work with Alexa, Google Home, Apple HomeKit (Hub required) and SmartThings. You can link them from Settings > Integrations in the Acme app.",
    "error_code": "Error codes starting with E- are device errors and NET- or AUTH- are connection and login errors. Could you tell me the exact code you see?",
    "plans": "Acme Plus ($3.99/month) adds 30 days of video history for one camera; Acme Protect ($9.99/month) covers all cameras with 60 days of history and professional monitoring.",
    "warranty": "Acme devices have a 2-year warranty in the EU and 1 year elsewhere, covering manufacturing defects but not accidental or water damage.",
    "battery": "With default settings the Doorbell Cam battery lasts 3-6 months. Busy streets, cold weather and live view drain it faster.",
    "firmware": 'Updates install automatically overnight. To update now, open the device in the app, go to Settings > Device info and tap "Check for updates".',
    "billing": "Sorry about that! Double charges are usually a pending authorization that disappears within 3 business days. You can check your invoices under Account > Billing.",
}
ACME_SECOND_REPLIES = [
    "I'm sorry that didn't help. Next, please restart the device by holding the button for 10 seconds, wait until the light blinks white, and try again.",
    "Understood. I can't see your account from here, but I can connect you with a human agent, who can. The current wait is about 5 minutes.",
    "Thanks for checking. In that case, please remove the device from the app and add it again: this clears the stored settings without a factory reset.",
]
ACME_FOLLOWUPS = [
    "I tried that already and it didn't work.",
    "Thanks. And what if that doesn't work?",
    "Ok. Can I talk to a human?",
    "That's not what I asked. I need this fixed today.",
    "Great, that worked! One more thing: is the {product} covered too?",
    "Where exactly is that in the app? I don't see it.",
    "I'm on Android, is it different there?",
    "Do I lose my settings if I do that?",
]

# ---------------------------------------------------------------------------
# acme-devtools: the internal coding assistant.
# ---------------------------------------------------------------------------

DEV_SYSTEM = (
    "You are a senior software engineer helping colleagues at Acme. Answer "
    "with working code first, then a short explanation. Prefer the standard "
    "library. Point out bugs and edge cases you notice."
)

DEV_TASKS = [
    "read a CSV file and skip the header",
    "parse a JSON string into a struct",
    "make an HTTP GET request with a timeout",
    "reverse a linked list",
    "remove duplicates from a list while keeping the order",
    "sort a list of objects by two fields",
    "read a file line by line",
    "run two functions concurrently and wait for both",
    "format a date as ISO 8601",
    "convert a string to an integer safely",
    "measure how long a function takes",
    "write a retry loop with exponential backoff",
    "check whether a string is a palindrome",
    "merge two sorted arrays",
    "read an environment variable with a default",
    "generate a random UUID",
    "split a string on whitespace",
    "flatten a nested list",
    "compute a SHA-256 hash of a file",
    "implement an LRU cache",
]
DEV_LANGS = ["Python", "C++", "Go", "TypeScript", "Rust", "Java"]

# (language, snippet template, symptom). Templates take {fn}, {var}, {n}.
DEV_SNIPPETS = [
    (
        "python",
        "def {fn}(items, seen=[]):\n    for x in items:\n        if x not in seen:\n            seen.append(x)\n    return seen\n",
        "return results from the previous call",
    ),
    (
        "python",
        "import json\n\ndef {fn}(path):\n    with open(path) as f:\n        data = json.load(f)\n    return data['{var}']['items'][{n}]\n",
        "raise KeyError on some files",
    ),
    (
        "python",
        "async def {fn}(urls):\n    results = []\n    for url in urls:\n        results.append(await fetch(url))\n    return results\n",
        "run so slowly with {n} URLs",
    ),
    (
        "python",
        "def {fn}(df):\n    for i, row in df.iterrows():\n        df.loc[i, '{var}'] = row['price'] * {n}\n    return df\n",
        "take minutes on a 2M-row DataFrame",
    ),
    (
        "python",
        "{var} = {{}}\nfor key in {var}:\n    if key.startswith('tmp_'):\n        del {var}[key]\n",
        "raise RuntimeError: dictionary changed size during iteration",
    ),
    (
        "cpp",
        "std::vector<int> {var} = load();\nfor (auto it = {var}.begin(); it != {var}.end(); ++it) {{\n  if (*it % {n} == 0) {var}.erase(it);\n}}\n",
        "crash with a segmentation fault",
    ),
    (
        "cpp",
        'std::string_view {fn}() {{\n  std::string s = "item-" + std::to_string({n});\n  return s;\n}}\n',
        "print garbage",
    ),
    (
        "cpp",
        "class {fn} {{\n public:\n  {fn}(int n) : size_(n), data_(new int[size_]) {{}}\n  ~{fn}() {{ delete data_; }}\n private:\n  int* data_;\n  int size_;\n}};\n",
        "fail under AddressSanitizer",
    ),
    (
        "cpp",
        "std::mutex m;\nint {var} = 0;\nvoid {fn}() {{\n  for (int i = 0; i < {n}; ++i) {{\n    std::lock_guard<std::mutex>(m);\n    ++{var};\n  }}\n}}\n",
        "give a wrong count with several threads",
    ),
    (
        "go",
        "func {fn}(ids []int) {{\n\tfor _, id := range ids {{\n\t\tgo func() {{\n\t\t\tprocess(id)\n\t\t}}()\n\t}}\n}}\n",
        "skip some ids on Go 1.21",
    ),
    (
        "go",
        'func {fn}() error {{\n\tf, err := os.Open("{var}.txt")\n\tdefer f.Close()\n\tif err != nil {{\n\t\treturn err\n\t}}\n\treturn nil\n}}\n',
        "panic with a nil pointer dereference",
    ),
    (
        "go",
        "var {var} map[string]int\n\nfunc {fn}(k string) {{\n\t{var}[k] += {n}\n}}\n",
        "panic: assignment to entry in nil map",
    ),
    (
        "typescript",
        "async function {fn}(ids: number[]) {{\n  ids.forEach(async (id) => {{\n    await save(id);\n  }});\n  console.log('done');\n}}\n",
        "log done before saving finishes",
    ),
    (
        "typescript",
        "const {var} = [10, 9, 1, {n}];\n{var}.sort();\nconsole.log({var});\n",
        "sort the numbers in the wrong order",
    ),
    (
        "typescript",
        "function {fn}(user?: {{ name: string }}) {{\n  return user.name.toUpperCase();\n}}\n",
        "not compile with strict mode",
    ),
    (
        "rust",
        'fn {fn}(v: &Vec<String>) -> &str {{\n    let s = v.join(",");\n    &s\n}}\n',
        "not compile (borrowed value does not live long enough)",
    ),
    (
        "rust",
        "let mut {var} = vec![1, 2, {n}];\nfor x in &{var} {{\n    if *x > 1 {{ {var}.push(*x * 2); }}\n}}\n",
        "fail to borrow-check",
    ),
    (
        "java",
        'public static boolean {fn}(String a) {{\n    return a == "{var}";\n}}\n',
        "return false for equal strings",
    ),
    (
        "java",
        "List<Integer> {var} = new ArrayList<>(List.of(1, 2, {n}));\nfor (Integer x : {var}) {{\n    if (x == 2) {var}.remove(x);\n}}\n",
        "throw ConcurrentModificationException",
    ),
    (
        "sql",
        "SELECT customer_id, COUNT(*)\nFROM orders\nWHERE created_at > NOW() - INTERVAL '{n} days'\nGROUP BY customer_id\nHAVING {var} > 5;\n",
        "fail with: column does not exist",
    ),
    (
        "sql",
        "SELECT * FROM {var} WHERE email LIKE '%@acme.com' ORDER BY created_at DESC LIMIT {n};\n",
        "take 9 seconds on a 40M-row table",
    ),
]
DEV_FNS = [
    "process",
    "load_items",
    "dedupe",
    "handler",
    "Buffer",
    "fetch_all",
    "collect",
    "update_totals",
    "parse_config",
    "worker",
    "build_index",
    "normalize",
    "sync_users",
    "export_rows",
    "compute_stats",
]
DEV_VARS = [
    "users",
    "orders",
    "cache",
    "counts",
    "config",
    "rows",
    "payload",
    "totals",
    "results",
    "events",
    "accounts",
    "invoices",
]
DEV_ERRORS = [
    "TypeError: 'NoneType' object is not subscriptable",
    "error: use of deleted function 'std::unique_ptr<T>::unique_ptr(const std::unique_ptr<T>&)'",
    "fatal error: all goroutines are asleep - deadlock!",
    "TS2532: Object is possibly 'undefined'.",
    "error[E0502]: cannot borrow `v` as mutable because it is also borrowed as immutable",
    "java.lang.OutOfMemoryError: Java heap space",
    "ModuleNotFoundError: No module named 'requests'",
    "undefined reference to `pthread_create'",
    'ERROR: duplicate key value violates unique constraint "users_email_key"',
    "CORS policy: No 'Access-Control-Allow-Origin' header is present on the requested resource",
    "fatal: refusing to merge unrelated histories",
    'CMake Error: Could not find a package configuration file provided by "absl"',
]
DEV_CONCEPTS = [
    "What's the difference between a process and a thread?",
    "When should I use std::unique_ptr vs std::shared_ptr?",
    "Explain Python's GIL in simple terms.",
    "What is the difference between git merge and git rebase?",
    "How do database indexes work?",
    "What does `volatile` do in C++ and when should I use it?",
    "Explain Go channels vs mutexes: when to use which?",
    "What is a race condition? Give a short example.",
    "How does HTTPS work?",
    "What's the difference between TCP and UDP?",
    "What is dependency injection and why is it useful?",
    "Explain big-O notation with examples.",
    "How do I write a good commit message?",
    "What is the difference between `==` and `===` in JavaScript?",
]

# ---------------------------------------------------------------------------
# globex-docs: RAG over Globex's product documentation.
# ---------------------------------------------------------------------------

GLOBEX_SYSTEM = (
    "You are the Globex documentation assistant. Answer only from the "
    "context below. If the context does not contain the answer, say you "
    "don't know and suggest contacting support@globex.example. Quote "
    "configuration keys and limits exactly. Cite the section title."
)

# Documentation sections: (title, passage, questions, paraphrases).
GLOBEX_DOCS = [
    (
        "Globex API > Rate limits",
        "Every API key is limited to 600 requests per minute and 20 concurrent "
        "requests. Requests over the limit receive HTTP 429 with a Retry-After "
        "header in seconds. Enterprise plans can raise the limit to 6,000 "
        "requests per minute by contacting their account manager. Batch "
        "endpoints count as one request per 100 items. Limits apply per key, "
        "not per IP address, so spreading traffic over several hosts does not "
        "raise them.",
        [
            "What is the API rate limit?",
            "What happens when I exceed the rate limit?",
            "How do I raise the rate limit?",
            "Do batch endpoints count against the limit?",
        ],
        ["how many requests per minute can I make", "rate limit for the api key?"],
    ),
    (
        "Globex API > Authentication",
        "Authenticate with an API key in the Authorization header: "
        "`Authorization: Bearer gx_live_...`. Test keys start with gx_test_ and "
        "only reach the sandbox. Keys can be scoped to read-only, write or "
        "admin. Rotate a key from Settings > API keys; the old key keeps "
        "working for 24 hours after rotation. OAuth 2.0 client credentials are "
        "available on the Business plan and above.",
        [
            "How do I authenticate API requests?",
            "How do I rotate an API key?",
            "What is the difference between gx_test_ and gx_live_ keys?",
            "Does Globex support OAuth?",
        ],
        ["how to authenticate", "where do I put the api key"],
    ),
    (
        "Data Platform > Retention",
        "Raw events are kept for 90 days on the Standard plan and 13 months on "
        "Enterprise. Aggregated tables are kept indefinitely. Deleted projects "
        "are recoverable for 30 days from Settings > Trash, after which all "
        "their data is purged from primary storage within 7 days and from "
        "backups within 35 days. Retention can be shortened per project with "
        "the `retention_days` setting (minimum 7).",
        [
            "How long is raw event data kept?",
            "Can I recover a deleted project?",
            "How do I shorten data retention?",
            "When is deleted data removed from backups?",
        ],
        ["data retention policy", "how long do you keep my events"],
    ),
    (
        "Data Platform > Ingestion",
        "Send events to `POST /v2/events` as JSON or newline-delimited JSON. A "
        "single request may carry up to 5 MB or 1,000 events. Each event needs "
        "`event`, `timestamp` (ISO 8601 or Unix milliseconds) and `user_id` or "
        "`anonymous_id`. Events with timestamps more than 7 days in the past "
        "are rejected unless `backfill=true` is set. Duplicate events with the "
        "same `insert_id` within 24 hours are dropped.",
        [
            "What is the maximum batch size for event ingestion?",
            "How do I backfill historical events?",
            "How are duplicate events handled?",
            "Which fields are required for an event?",
        ],
        ["max events per request", "can I import old events"],
    ),
    (
        "Edge Gateway > Installation",
        "Edge Gateway runs as a container: `docker run -d -p 8443:8443 -e "
        "GX_TOKEN=... globex/edge-gateway:3.4`. It needs 2 vCPUs and 4 GB of "
        "RAM for up to 5,000 requests per second. Helm charts are published "
        "for Kubernetes 1.27 and newer. The gateway caches configuration "
        "locally and keeps serving for up to 72 hours if it loses contact with "
        "the control plane.",
        [
            "How do I install Edge Gateway?",
            "What are the hardware requirements for Edge Gateway?",
            "Does Edge Gateway work on Kubernetes?",
            "What happens if the gateway loses connection to the control plane?",
        ],
        ["edge gateway system requirements", "install gateway with docker"],
    ),
    (
        "Edge Gateway > TLS",
        "The gateway terminates TLS 1.2 and 1.3. Upload certificates in PEM "
        "format under Gateway > Certificates, or enable automatic certificates "
        "with `tls.acme: true`, which uses Let's Encrypt and renews 30 days "
        "before expiry. Mutual TLS to upstreams is configured per route with "
        "`upstream.mtls.ca_bundle`. TLS 1.0 and 1.1 are not supported.",
        [
            "Which TLS versions does the gateway support?",
            "How do I enable automatic certificates?",
            "How do I configure mutual TLS to my backend?",
        ],
        ["does it support tls 1.1", "lets encrypt setup"],
    ),
    (
        "Billing > Invoices",
        "Invoices are issued on the 1st of each month for the previous month's "
        "usage and are payable within 30 days. Download them as PDF from "
        "Billing > Invoices. To add a VAT number or change the billing address, "
        "edit Billing > Details; changes apply to the next invoice only. Usage "
        "above the plan's included events is billed at $0.25 per 10,000 events.",
        [
            "When are invoices issued?",
            "How do I add my VAT number to invoices?",
            "How much do extra events cost?",
            "Where can I download past invoices?",
        ],
        ["overage pricing", "change billing address on invoice"],
    ),
    (
        "Billing > Plans",
        "Starter is free up to 1 million events per month. Standard costs $99 "
        "per month and includes 20 million events. Business costs $499 per "
        "month with 150 million events, SSO and OAuth. Enterprise is priced "
        "per contract and adds a 99.95% uptime SLA, 13-month retention and a "
        "dedicated account manager. Annual billing saves 15%.",
        [
            "What plans does Globex offer?",
            "Does the Business plan include SSO?",
            "Is there a discount for annual billing?",
            "What is the uptime SLA?",
        ],
        ["pricing plans", "how much is the standard plan"],
    ),
    (
        "Security > SSO",
        "SAML 2.0 single sign-on is available on Business and Enterprise. "
        "Supported identity providers include Okta, Azure AD (Entra ID), "
        "Google Workspace and OneLogin. Enable SCIM provisioning to create and "
        "deactivate users automatically. When SSO is enforced, password logins "
        "are disabled for everyone except the two break-glass owner accounts.",
        [
            "How do I set up SSO with Okta?",
            "Does Globex support SCIM?",
            "Can users still log in with a password when SSO is enforced?",
        ],
        ["sso azure ad", "saml setup"],
    ),
    (
        "Security > Audit log",
        "The audit log records logins, API key changes, permission changes and "
        "data exports, with the actor, IP address and timestamp. It is kept "
        "for 1 year and can be exported as CSV or streamed to a SIEM through "
        "the `audit.webhook_url` setting. Audit events cannot be edited or "
        "deleted, even by owners.",
        [
            "What does the audit log record?",
            "How long is the audit log kept?",
            "Can I stream audit events to Splunk?",
        ],
        ["audit log retention", "export audit log"],
    ),
    (
        "SDKs > Python",
        "Install with `pip install globex`. The client reads the API key from "
        "GLOBEX_API_KEY. Use `globex.Client(timeout=10, max_retries=3)`; "
        "retries use exponential backoff and honor Retry-After. The SDK "
        "supports Python 3.9 to 3.13. Async usage: `globex.AsyncClient`, which "
        "shares the same options.",
        [
            "How do I install the Python SDK?",
            "How do I set a timeout in the Python client?",
            "Which Python versions are supported?",
            "Is there an async Python client?",
        ],
        ["python sdk retries", "python client api key env var"],
    ),
    (
        "Webhooks",
        "Webhooks are sent as POST requests with a JSON body and an "
        "`X-Globex-Signature` header: an HMAC-SHA256 of the body with your "
        "webhook secret. Respond with 2xx within 10 seconds. Failed deliveries "
        "are retried 8 times over 24 hours with exponential backoff, after "
        "which the endpoint is disabled and owners are emailed.",
        [
            "How do I verify webhook signatures?",
            "How many times are failed webhooks retried?",
            "What timeout do webhook endpoints have?",
        ],
        ["webhook retry policy", "verify hmac signature"],
    ),
]

# Specific questions per section title: slots {n}, {k}, {plan}, {lang}, {idp}.
GLOBEX_SPECIFIC = {
    "Globex API > Rate limits": [
        "We send about {n} requests per minute from {k} servers. Will we get 429 errors?",
        "Our batch job posts {n} items per call. How many requests does that count as?",
    ],
    "Globex API > Authentication": [
        "Our {lang} service gets 401 after we rotated the key {k} hours ago. Why?",
        "Can a read-only key call the export endpoint on the {plan} plan?",
    ],
    "Data Platform > Retention": [
        "We're on {plan}. Can I still query raw events from {n} days ago?",
        "If I set retention_days to {k}, what happens to older events?",
    ],
    "Data Platform > Ingestion": [
        "Can I send {n} events in one request?",
        "Our events are {k} days old. Will the ingestion API accept them?",
    ],
    "Edge Gateway > Installation": [
        "Is a {k} vCPU VM enough for the gateway at {n} requests per second?",
        "Can Edge Gateway run on Kubernetes 1.{k}?",
    ],
    "Edge Gateway > TLS": [
        "A client of ours still uses TLS 1.{k}. Will it connect to the gateway?",
        "Our certificate expires in {k} days. When will automatic renewal kick in?",
    ],
    "Billing > Invoices": [
        "We used {n} million events on the {plan} plan last month. What will the overage be?",
        "I changed the VAT number on day {k} of the month. Which invoice will show it?",
    ],
    "Billing > Plans": [
        "We expect {n} million events per month. Which plan fits?",
        "Does the {plan} plan include SSO with {idp}?",
    ],
    "Security > SSO": [
        "How do I connect {idp} for SSO on the {plan} plan?",
        "Does SCIM with {idp} deactivate users automatically?",
    ],
    "Security > Audit log": [
        "Can I see who exported data {n} days ago?",
        "Can I stream audit events to our {lang}-based SIEM collector?",
    ],
    "SDKs > Python": [
        "Does the Python SDK support Python 3.{k}?",
        "How do I set max_retries to {k} in the async Python client?",
    ],
    "Webhooks": [
        "Our webhook handler takes {k} seconds to respond. Is that a problem?",
        "How do I verify the X-Globex-Signature header in {lang}?",
    ],
}

# ---------------------------------------------------------------------------
# initech-helpdesk: an internal IT helpdesk bot, mostly on a self-hosted model.
# ---------------------------------------------------------------------------

INITECH_SYSTEM = (
    "You are the Initech IT helpdesk bot. Employees ask about laptops, "
    "accounts, VPN, printers and software. Give step-by-step instructions "
    "for Windows 11 and macOS where they differ. For hardware faults or "
    "access requests, tell the user to open a ticket at "
    "https://help.initech.example with the category named."
)
INITECH_QUESTIONS = [
    "How do I connect to the VPN?",
    "The VPN disconnects every few minutes. How do I fix it?",
    "How do I reset my Windows password?",
    "How do I set up MFA on a new phone?",
    "The printer on the 3rd floor says offline.",
    "How do I add a printer on my Mac?",
    "How do I request admin rights on my laptop?",
    "Outlook keeps asking for my password.",
    "How do I share my calendar with my team?",
    "How do I get access to Jira?",
    "My laptop is very slow after the last update.",
    "How do I connect to the guest Wi-Fi?",
    "How do I install Python on my work laptop?",
    "Teams camera shows a black screen.",
    "How do I recover a deleted file from OneDrive?",
    "How do I request a second monitor?",
    "What's the process for a new hire laptop?",
    "I spilled coffee on my keyboard.",
    "How do I set an out-of-office reply?",
    "Can I use my personal phone for work email?",
]
INITECH_SOFTWARE = [
    "Slack",
    "Zoom",
    "Docker Desktop",
    "VS Code",
    "Tableau",
    "Adobe Acrobat",
    "Figma",
    "Postman",
    "IntelliJ IDEA",
    "Microsoft Project",
]
INITECH_SPECIFIC = [
    "How do I get a license for {sw}?",
    "{sw} crashes on startup since this morning.",
    "Is {sw} approved software? I need it for project {proj}.",
    "I get error 0x{hexcode} when installing {sw}.",
    "My badge doesn't open the door to room {room}.",
]

# ---------------------------------------------------------------------------


def zipf_sample(rng, n_items, n_draws, s):
    """Indices drawn with P(rank r) proportional to 1 / r^s."""
    weights = [1.0 / (r + 1) ** s for r in range(n_items)]
    return rng.choices(range(n_items), weights=weights, k=n_draws)


def msg(role, content):
    return {"role": role, "content": content}


def fill(rng, template):
    return template.format(
        product=rng.choice(ACME_PRODUCTS),
        plan=rng.choice(ACME_PLANS),
        platform=rng.choice(ACME_PLATFORMS),
        version=rng.choice(ACME_VERSIONS),
        error=rng.choice(ACME_ERRORS),
        days=rng.randint(2, 45),
        order=rng.randint(100000, 999999),
        amount=rng.choice([3.99, 9.99, 47.88, 119.88, 129, 249]),
        amount2=rng.choice([3.99, 9.99, 99.0]),
        pct=rng.choice([12, 30, 45, 60, 80]),
        domain=rng.choice(
            [
                "gmail.com",
                "outlook.com",
                "yahoo.com",
                "icloud.com",
                "gmx.de",
                "orange.fr",
            ]
        ),
    )


def acme_pool(rng):
    """Distinct support prompts, most popular first."""
    head, tail = [], []
    for intent, generic, specific in ACME_INTENTS:
        for q in generic:
            head.append((intent, "en", q))
        for t in specific:
            for _ in range(80):
                tail.append((intent, "en", fill(rng, t)))
    for lang, templates in ACME_INTL.items():
        for t in templates:
            if "{" in t:
                for _ in range(20):
                    tail.append(("intl", lang, fill(rng, t)))
            else:
                head.append(("intl", lang, t))
    rng.shuffle(head)
    rng.shuffle(tail)
    # Most FAQ answers are single-turn; some popular flows are scripted
    # follow-ups ("I tried that already") that many customers also hit.
    items = []
    for intent, lang, q in head + tail:
        turns = [q]
        if intent in ACME_FIRST_REPLIES and rng.random() < 0.22:
            turns += [ACME_FIRST_REPLIES[intent], fill(rng, rng.choice(ACME_FOLLOWUPS))]
            if rng.random() < 0.3:
                turns += [
                    rng.choice(ACME_SECOND_REPLIES),
                    fill(rng, rng.choice(ACME_FOLLOWUPS)),
                ]
        messages = [msg("system", ACME_SYSTEM)]
        for i, t in enumerate(turns):
            messages.append(msg("user" if i % 2 == 0 else "assistant", t))
        # Non-English traffic is served by the EU deployment on Claude.
        backend, model = (
            ("openai", "gpt-4o-mini")
            if lang == "en"
            else ("anthropic", "claude-haiku-4-5")
        )
        items.append(
            {
                "ns": "acme-support",
                "backend": backend,
                "model": model,
                "messages": messages,
                "params": {"temperature": 0.3, "max_tokens": 512},
            }
        )
    # Some flows are pinned to a bigger model, as support teams do for
    # escalations.
    for it in items[: len(items) : 9]:
        if it["backend"] == "openai":
            it["model"] = "gpt-4.1"
    return items


def dev_snippet(rng):
    lang, tmpl, symptom = rng.choice(DEV_SNIPPETS)
    code = tmpl.format(
        fn=rng.choice(DEV_FNS),
        var=rng.choice(DEV_VARS),
        n=rng.choice([2, 3, 5, 10, 42, 100, 1000]),
    )
    return lang, code, symptom.format(n=rng.choice([50, 200, 1000]))


def dev_pool(rng):
    head, tail = [], []
    for c in DEV_CONCEPTS:
        head.append(c)
    for e in DEV_ERRORS:
        head.append(f"What does this error mean and how do I fix it?\n\n```\n{e}\n```")
    for task in DEV_TASKS:
        for lang in DEV_LANGS:
            (head if lang in ("Python", "TypeScript") else tail).append(
                f"How do I {task} in {lang}?"
            )
    for _ in range(1500):
        lang, code, symptom = dev_snippet(rng)
        kind = rng.random()
        if kind < 0.45:
            q = f"Why does this code {symptom}?\n\n```{lang}\n{code}```"
        elif kind < 0.6:
            q = f"Can you explain what this does?\n\n```{lang}\n{code}```"
        elif kind < 0.75:
            q = f"Write unit tests for this:\n\n```{lang}\n{code}```"
        elif kind < 0.88:
            q = f"Refactor this to be more idiomatic and explain the changes:\n\n```{lang}\n{code}```"
        else:
            target = rng.choice([l for l in DEV_LANGS if l.lower() != lang])
            q = f"Translate this to {target}:\n\n```{lang}\n{code}```"
        tail.append(q)
    rng.shuffle(head)
    rng.shuffle(tail)
    items = []
    for q in head + tail:
        # Teams pick their model in their IDE plugin; the plugin also decides
        # whether a system prompt and explicit params are sent.
        r = rng.random()
        if r < 0.45:
            backend, model = "anthropic", "claude-sonnet-4-5"
        elif r < 0.8:
            backend, model = "openai", "gpt-4.1"
        else:
            backend, model = "deepseek", "deepseek-chat"
        messages = [msg("system", DEV_SYSTEM), msg("user", q)]
        item = {
            "ns": "acme-devtools",
            "backend": backend,
            "model": model,
            "messages": messages,
        }
        if backend != "deepseek":
            item["params"] = {"temperature": 0, "max_tokens": 2048}
        items.append(item)
    return items


def globex_pool(rng):
    head, tail = [], []
    for title, passage, questions, paraphrases in GLOBEX_DOCS:
        for q in questions:
            head.append((title, passage, q))
        for p in paraphrases:
            tail.append((title, passage, p))
        # Typos and casing variants: distinct requests for the exact tier.
        for t in GLOBEX_SPECIFIC.get(title, []):
            for _ in range(30):
                tail.append(
                    (
                        title,
                        passage,
                        t.format(
                            n=rng.choice([50, 120, 300, 800, 1500, 4000, 9000, 25000]),
                            k=rng.randint(1, 40),
                            plan=rng.choice(
                                ["Starter", "Standard", "Business", "Enterprise"]
                            ),
                            lang=rng.choice(
                                ["Python", "Go", "Java", "Node.js", "Ruby"]
                            ),
                            idp=rng.choice(
                                [
                                    "Okta",
                                    "Azure AD",
                                    "Google Workspace",
                                    "OneLogin",
                                    "JumpCloud",
                                ]
                            ),
                        ),
                    )
                )
        for q in questions:
            tail.append((title, passage, q.lower().rstrip("?")))
            tail.append(
                (
                    title,
                    passage,
                    q.replace("How do I", "how can i").replace("What is", "whats"),
                )
            )
    rng.shuffle(head)
    rng.shuffle(tail)
    items = []
    for title, passage, q in head + tail:
        # The retriever returns the matching section and, for some questions, a
        # second, less relevant one.
        ctx = f"[{title}]\n{passage}"
        if rng.random() < 0.35:
            other = rng.choice(GLOBEX_DOCS)
            if other[0] != title:
                ctx += f"\n\n[{other[0]}]\n{other[1]}"
        user = f"Context:\n{ctx}\n\nQuestion: {q}"
        r = rng.random()
        if r < 0.6:
            backend, model = "google", "gemini-2.5-flash"
        elif r < 0.82:
            backend, model = "mistral", "mistral-small-latest"
        else:
            backend, model = SELF_HOSTED
        items.append(
            {
                "ns": "globex-docs",
                "backend": backend,
                "model": model,
                "messages": [msg("system", GLOBEX_SYSTEM), msg("user", user)],
                "params": {"temperature": 0},
            }
        )
    return items


def initech_pool(rng):
    head = list(INITECH_QUESTIONS)
    tail = []
    for t in INITECH_SPECIFIC:
        for _ in range(80):
            tail.append(
                t.format(
                    sw=rng.choice(INITECH_SOFTWARE),
                    proj=rng.choice(["TPS", "Phoenix", "Atlas", "Mercury"]),
                    hexcode=f"{rng.randint(0x80070000, 0x8007ffff):08X}",
                    room=f"{rng.randint(1, 4)}{rng.randint(10, 60)}",
                )
            )
    rng.shuffle(head)
    rng.shuffle(tail)
    items = []
    for q in head + tail:
        on_prem = rng.random() < 0.8
        backend, model = SELF_HOSTED if on_prem else ("openai", "gpt-4o-mini")
        items.append(
            {
                "ns": "initech-helpdesk",
                "backend": backend,
                "model": model,
                "messages": [msg("system", INITECH_SYSTEM), msg("user", q)],
            }
        )
    return items


# ---------------------------------------------------------------------------
# Near-duplicates for the semantic tier: rewordings and look-alikes.
#
# Some requests are replaced by a variant of an earlier request, with the same
# namespace, backend, model, params, system prompt and earlier turns; only the
# words of the last user turn change. A "rewording" says the same thing the way
# users retype a question (casing, punctuation, contractions, filler, "How can
# I", a plural, a typo) and may be served the original's answer. A
# "hard_negative" looks almost the same but asks something else (another
# number, product or name, the opposite verb) and must not be. Both carry
# "kind" and "variant_of" (the 0-based line of the original).
#
# Every line also carries "question": lines with the same number ask the same
# thing (in the same words, or reworded), so that one's answer is right for
# the other. The demo checks every semantic hit against it. The library never
# sees these fields: the demo builds each Request itself.
# ---------------------------------------------------------------------------

REWORD_SHARE = 0.09
LOOKALIKE_SHARE = 0.03
# A variant comes at least this many requests after its original, so that the
# original's answer is stored when the variant is replayed, even with several
# concurrent callers.
MIN_GAP = 200
ANNOTATIONS = ("kind", "variant_of", "question")

CONTRACTIONS = [
    ("What is", "What's"),
    ("what is", "what's"),
    ("It is", "It's"),
    ("it is", "it's"),
    ("That is", "That's"),
    ("that is", "that's"),
    ("I am", "I'm"),
    ("I have", "I've"),
    ("do not", "don't"),
    ("does not", "doesn't"),
    ("did not", "didn't"),
    ("is not", "isn't"),
    ("has not", "hasn't"),
    ("have not", "haven't"),
    ("cannot", "can't"),
    ("will not", "won't"),
]
GREETINGS = ["Hi, ", "Hello, ", "Hey, ", "Hi! ", "Quick question: ", "Hi there, "]
THANKS = [" Thanks!", " Thank you.", " Thanks in advance.", " Please help."]
# Words that start a sentence and lose their capital after a greeting.
STARTERS = set(
    "How What What's Why When Where Which Who Is Are Can Could Do Does Did My "
    "The Our If We We're A Will Should Explain Write Refactor Translate That "
    "That's It It's Thanks. Great, Ok. Setup Change Install Verify Export "
    "Overage Pricing".split()
)
NOUNS = [
    ("password", "passwords"),
    ("subscription", "subscriptions"),
    ("invoice", "invoices"),
    ("certificate", "certificates"),
    ("webhook", "webhooks"),
    ("device", "devices"),
    ("printer", "printers"),
    ("file", "files"),
    ("error code", "error codes"),
    ("smart assistant", "smart assistants"),
    ("product", "products"),
    ("recording", "recordings"),
    ("monitor", "monitors"),
    ("license", "licenses"),
    ("endpoint", "endpoints"),
    ("API key", "API keys"),
    ("project", "projects"),
    ("commit message", "commit messages"),
    ("camera", "cameras"),
    ("setting", "settings"),
    ("index", "indexes"),
]

# Look-alikes: names of the same kind that give another answer.
ENTITY_SETS = [
    ACME_PRODUCTS,
    ACME_PLATFORMS,
    ACME_PLANS,
    INITECH_SOFTWARE,
    ["Okta", "Azure AD", "Google Workspace", "OneLogin", "JumpCloud"],
    ["Starter", "Standard", "Business", "Enterprise"],
    ["Python", "C++", "Go", "TypeScript", "Rust", "Java", "Node.js", "Ruby"],
    ["Windows", "Mac", "macOS", "Linux"],
    ["Outlook", "Gmail", "Thunderbird"],
    ["Android", "iPhone", "iPad"],
    ["Jira", "Confluence", "GitHub", "Salesforce"],
    ["OneDrive", "SharePoint", "Dropbox"],
    ["Splunk", "Datadog", "Elastic"],
    ["Let's Encrypt", "ZeroSSL", "DigiCert"],
]
# Opposite verbs, in requests that ask how to do something.
OPPOSITES = [
    ("enable", "disable"),
    ("start", "stop"),
    ("add", "remove"),
    ("install", "uninstall"),
    ("raise", "lower"),
    ("increase", "decrease"),
    ("shorten", "extend"),
    ("lock", "unlock"),
    ("upload", "download"),
    ("import", "export"),
    ("activate", "deactivate"),
    ("deactivate", "reactivate"),
    ("connect to", "disconnect from"),
    ("share", "stop sharing"),
    ("log in", "log out"),
    ("turn on", "turn off"),
]
ASKS_HOW = re.compile(
    r"\b([Hh]ow (do|can|should) I|[Hh]ow to|I want to|I need to|does .* automatically)\b"
)
# A quantity, amount, version or order number; not part of a name such as
# "E-101", "SHA-256" or "ISO 8601".
NUMBER = re.compile(r"(?<![\w.-])(?<!ISO )(\$?)(\d+(?:\.\d+)*)(?![\w]|\.\d)")


def last_user_span(item):
    """(message index, prefix, words, suffix) of the last user turn: `words`
    is what a user types; a RAG context or a code block stays as it is."""
    msgs = item["messages"]
    idx = max(i for i, m in enumerate(msgs) if m["role"] == "user")
    content = msgs[idx]["content"]
    if content.startswith("Context:"):
        cut = content.rindex("\nQuestion: ") + len("\nQuestion: ")
        return idx, content[:cut], content[cut:], ""
    fence = content.find("\n\n```")
    if fence >= 0:
        return idx, "", content[:fence], content[fence:]
    return idx, "", content, ""


def with_words(item, words):
    out = copy.deepcopy({k: v for k, v in item.items() if k not in ANNOTATIONS})
    idx, prefix, _, suffix = last_user_span(item)
    out["messages"][idx]["content"] = prefix + words + suffix
    return out


def is_english(item):
    return not (item["ns"] == "acme-support" and item["backend"] == "anthropic")


def meaning(words):
    """What the generator's own casing and "how can i" variants share."""
    t = normalized(words)
    t = re.sub(r"\bhow can i\b", "how do i", t)
    return re.sub(r"\bwhats\b", "what is", t)


def number_questions(lines):
    """Adds "question" to every line (see above)."""
    ids = {}
    for i, it in enumerate(lines):
        if it.get("kind") == "rewording":
            q = lines[it["variant_of"]]["question"]
        else:
            q = ids.setdefault((it["ns"], meaning(last_user_span(it)[2])), len(ids))
        lines[i] = {**it, "question": q}


def normalized(words):
    return " ".join(re.sub(r"[^\w#$.+-]+", " ", words.lower()).split()).rstrip(".")


def sub_once(rng, pattern, repl, text, flags=0):
    """Replaces one randomly chosen match of `pattern`; None without one."""
    matches = list(re.finditer(pattern, text, flags))
    if not matches:
        return None
    m = rng.choice(matches)
    return text[: m.start()] + m.expand(repl) + text[m.end() :]


# Rewordings. Each returns the new words, or None when it does not apply.


def rw_casing(rng, s):
    if rng.random() < 0.6:
        return s.lower()
    return s[:1].lower() + s[1:]


def rw_punctuation(rng, s):
    t = s.rstrip()
    if t.endswith(":"):
        return t[:-1]
    if t.endswith(" ?"):
        return t[:-2]
    if t.endswith("?") and rng.random() < 0.2:
        return t + "?"
    if t[-1:] in "?.!":
        return t[:-1]
    return t + "?"


def rw_contraction(rng, s):
    pairs = [(a, b) for a, b in CONTRACTIONS if re.search(rf"\b{re.escape(a)}\b", s)]
    pairs += [
        (b, a) for a, b in CONTRACTIONS if re.search(rf"\b{re.escape(b)}(?!\w)", s)
    ]
    if not pairs:
        return None
    a, b = rng.choice(pairs)
    return sub_once(rng, rf"\b{re.escape(a)}(?!\w)", b, s)


def rw_filler(rng, s):
    r = rng.random()
    if r < 0.5:
        first, _, rest = s.partition(" ")
        if first in STARTERS:
            s = first.lower() + " " + rest
        return rng.choice(GREETINGS) + s
    t = s.rstrip()
    if r < 0.75 and t[-1:] in "?.":
        return t[:-1].rstrip() + ", please" + t[-1]
    if t[-1:] in "?.!":
        return t + rng.choice(THANKS)
    if t[-1:] == ":":
        return None
    return t + rng.choice([", thanks", " thx", " please"])


def rw_how(rng, s):
    if re.search(r"\b[Hh]ow do I\b", s):
        return sub_once(rng, r"\b([Hh])ow do I\b", r"\1ow can I", s)
    return sub_once(rng, r"\b([Hh])ow can I\b", r"\1ow do I", s)


def rw_email(rng, s):
    if re.search(r"\b[Ee]mail", s):
        return sub_once(rng, r"\b([Ee])mail", r"\1-mail", s)
    return sub_once(rng, r"\b([Ee])-mail", r"\1mail", s)


def rw_plural(rng, s):
    options = []
    for one, many in NOUNS:
        if re.search(rf"\b{re.escape(many)}\b", s):
            options.append((rf"\b{re.escape(many)}\b", one))
        elif re.search(rf"\b{re.escape(one)}\b", s):
            options.append((rf"\b(?:an? )?{re.escape(one)}\b", many))
    if not options:
        return None
    pattern, repl = rng.choice(options)
    return sub_once(rng, pattern, repl, s)


def rw_typo(rng, s):
    words = [m for m in re.finditer(r"\b[^\W\d_A-Z]{7,}\b", s) if m.group().islower()]
    if not words:
        return None
    m = rng.choice(words)
    w = m.group()
    i = rng.randint(1, len(w) - 3)
    op = rng.random()
    if op < 0.4 and w[i] != w[i + 1]:
        t = w[:i] + w[i + 1] + w[i] + w[i + 2 :]  # swapped letters
    elif op < 0.7:
        t = w[:i] + w[i + 1 :]  # a letter left out
    else:
        t = w[:i] + w[i] + w[i:]  # a letter typed twice
    return s[: m.start()] + t + s[m.end() :]


# (transform, weight, works on any language)
REWORDINGS = [
    (rw_casing, 3, True),
    (rw_punctuation, 3, True),
    (rw_contraction, 2, False),
    (rw_filler, 2, False),
    (rw_how, 3, False),
    (rw_email, 2, False),
    (rw_plural, 2, False),
    (rw_typo, 2, True),
]


def reword(rng, words, english):
    usable = [(f, w) for f, w, any_lang in REWORDINGS if english or any_lang]
    want = rng.choices([1, 2, 3], weights=[4, 4, 2])[0]
    used, out = set(), words
    for _ in range(10):
        if len(used) == want:
            break
        f = rng.choices([f for f, _ in usable], weights=[w for _, w in usable])[0]
        if f in used:
            continue
        t = f(rng, out)
        if t is not None and t != out:
            used.add(f)
            out = t
    return out if used else None


# Look-alikes.


def other_number(rng, dollar, s):
    if dollar:
        amounts = ["3.99", "9.99", "19.99", "47.88", "99", "119.88", "129", "249"]
        return rng.choice([a for a in amounts if a != s])
    if "." in s:
        parts = s.split(".")
        last = int(parts[-1])
        parts[-1] = str(last + rng.choice([1, 2, 3]) if last < 90 else last - 1)
        return ".".join(parts)
    if len(s) >= 5:
        return str(rng.randint(10 ** (len(s) - 1), 10 ** len(s) - 1))
    v = int(s)
    return str(
        rng.choice(
            [x for x in (v + 1, v + 2, v * 2, v * 10, v + 5, max(v - 1, 0)) if x != v]
        )
    )


def hn_number(rng, s):
    matches = list(NUMBER.finditer(s))
    if not matches:
        return None
    m = rng.choice(matches)
    new = m.group(1) + other_number(rng, m.group(1), m.group(2))
    return s[: m.start()] + new + s[m.end() :]


def hn_entity(rng, s):
    found = []
    for names in ENTITY_SETS:
        for name in names:
            # Not "Go 1.21": a version belongs to its name.
            for m in re.finditer(rf"(?<![\w+]){re.escape(name)}(?![\w+]| \d)", s):
                found.append((m.start(), m.end(), names))
    # A name inside a longer one ("SmartPlug" in "SmartPlug Mini") is not one.
    found = [
        f
        for f in found
        if not any(
            g[0] <= f[0] and f[1] <= g[1] and g != f and g[1] - g[0] > f[1] - f[0]
            for g in found
        )
    ]
    if not found:
        return None
    start, end, names = rng.choice(found)
    others = [n for n in names if n != s[start:end] and n not in s]
    if not others:
        return None
    return s[:start] + rng.choice(others) + s[end:]


def hn_opposite(rng, s):
    if not ASKS_HOW.search(s):
        return None
    options = []
    for a, b in OPPOSITES:
        for x, y in ((a, b), (b, a)):
            # Lower case only: not "Smart Lock S1".
            if re.search(rf"\b{x}\b", s):
                options.append((x, y))
    if not options:
        return None
    x, y = rng.choice(options)
    # "add my plug to Alexa" / "remove my plug from Alexa"
    if x == "add" and re.search(r"\badd\b.*?\bto\b", s):
        return re.sub(r"\badd\b(.*?)\bto\b", r"remove\1from", s, count=1)
    if x == "remove" and re.search(r"\bremove\b.*?\bfrom\b", s):
        return re.sub(r"\bremove\b(.*?)\bfrom\b", r"add\1to", s, count=1)
    return re.sub(rf"\b{x}\b", y, s, count=1)


LOOKALIKES = [hn_number, hn_entity, hn_opposite]
LOOKALIKE_NAMES = {
    "number": "another number",
    "entity": "another name",
    "opposite": "the opposite verb",
}


def add_variants(rng, lines):
    """Replaces some lines by rewordings and look-alikes of earlier ones, in
    place. Returns {kind: {how: count}}."""
    n = len(lines)
    n_reword = round(n * REWORD_SHARE)
    n_lookalike = round(n * LOOKALIKE_SHARE)
    if n <= MIN_GAP + 1:
        return {}
    slots = rng.sample(
        range(MIN_GAP + 1, n), min(n_reword + n_lookalike, n - MIN_GAP - 1)
    )
    # Look-alikes of each sort in turn: another number, name or verb.
    kinds = ["rewording"] * n_reword + [
        LOOKALIKES[i % len(LOOKALIKES)] for i in range(n_lookalike)
    ]
    rng.shuffle(kinds)
    replaced = set(slots)

    def bare(it):
        return json.dumps(
            {k: v for k, v in it.items() if k not in ANNOTATIONS}, sort_keys=True
        )

    seen = {bare(it) for it in lines}
    # What each namespace already asks, to keep look-alikes from landing on
    # another request of the workload.
    asked = {(it["ns"], normalized(last_user_span(it)[2])) for it in lines}
    made = {"rewording": {}, "hard_negative": {}}
    for slot, kind in sorted(zip(slots, kinds)):
        # The same tenant rewords its own questions, which keeps each
        # tenant's share of the traffic.
        ns = lines[slot]["ns"]
        originals = [
            j
            for j in range(slot - MIN_GAP)
            if j not in replaced and lines[j]["ns"] == ns
        ]
        if not originals:
            continue
        for attempt in range(400):
            j = rng.choice(originals)
            orig = lines[j]
            words = last_user_span(orig)[2]
            if kind == "rewording":
                how = "rewording"
                new = reword(rng, words, is_english(orig))
                if (
                    new is None
                    or normalized(new) != normalized(words)
                    and (orig["ns"], normalized(new)) in asked
                ):
                    continue
            else:
                # Another sort of look-alike when this tenant has few of one.
                f = kind if attempt < 200 else rng.choice(LOOKALIKES)
                how = f.__name__[3:]  # "number", "entity", "opposite"
                new = f(rng, words)
                if new is None or (orig["ns"], normalized(new)) in asked:
                    continue
            item = with_words(orig, new)
            if bare(item) in seen:
                continue
            seen.add(bare(item))
            asked.add((orig["ns"], normalized(new)))
            if kind != "rewording":
                kind = "hard_negative"
            item["kind"] = kind
            item["variant_of"] = j
            lines[slot] = item
            made[kind][how] = made[kind].get(how, 0) + 1
            break
        # else: no variant fits here (a tenant with few requests so far); the
        # line stays as it is.
    return made


def dedupe(items):
    seen, out = set(), []
    for it in items:
        k = json.dumps(it, sort_keys=True)
        if k not in seen:
            seen.add(k)
            out.append(it)
    return out


def check_models(lines):
    """Warns about models missing from data/prices.json (other than self-hosted)."""
    if not os.path.exists(PRICES):
        return
    try:
        with open(PRICES) as f:
            text = f.read()
    except OSError:
        return
    for backend, model in sorted({(l["backend"], l["model"]) for l in lines}):
        if backend != SELF_HOSTED[0] and f'"{model}"' not in text:
            print(f"warning: {backend}/{model} not found in {PRICES}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    # (pool, share of traffic, Zipf exponent): FAQ-heavy tenants repeat more.
    tenants = [
        (dedupe(acme_pool(rng)), 0.40, 0.9),
        (dedupe(dev_pool(rng)), 0.25, 0.7),
        (dedupe(globex_pool(rng)), 0.22, 0.9),
        (dedupe(initech_pool(rng)), 0.13, 1.0),
    ]
    lines = []
    for pool, share, s in tenants:
        n = round(args.requests * share)
        lines += [pool[i] for i in zipf_sample(rng, len(pool), n, s)]
    # Interleave tenants as a shared proxy would see them.
    rng.shuffle(lines)
    # Its own stream, so that the rest of the workload does not depend on it.
    made = add_variants(random.Random(args.seed * 1_000_003 + 1), lines)
    number_questions(lines)

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for it in lines:
            f.write(json.dumps(it, ensure_ascii=False, separators=(",", ":")) + "\n")

    keys = [
        json.dumps(
            {k: v for k, v in it.items() if k not in ANNOTATIONS}, sort_keys=True
        )
        for it in lines
    ]
    distinct = len(set(keys))
    print(
        f"wrote {len(lines)} requests ({distinct} distinct, "
        f"{100 * (1 - distinct / len(lines)):.1f}% exact repeats, "
        f"{os.path.getsize(args.out) / 1e6:.2f} MB) to {args.out}"
    )
    by_ns = {}
    for it, k in zip(lines, keys):
        by_ns.setdefault(it["ns"], []).append(k)
    for ns, ks in sorted(by_ns.items()):
        print(
            f"  {ns:18s} {len(ks):5d} requests, {100 * (1 - len(set(ks)) / len(ks)):.1f}% repeats"
        )
    for kind, label in (("rewording", "rewordings"), ("hard_negative", "look-alikes")):
        hows = made.get(kind, {})
        detail = ", ".join(
            f"{v} with {LOOKALIKE_NAMES[k]}"
            for k, v in sorted(hows.items())
            if k != "rewording"
        )
        print(
            f"  {sum(hows.values()):5d} {label} of earlier requests"
            + (f": {detail}" if detail else "")
        )
    check_models(lines)


if __name__ == "__main__":
    main()
