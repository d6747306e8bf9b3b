// promptcache-proxy end to end with the official Anthropic SDK:
// SDK -> proxy (PROXY_BIN) -> stub upstream (stub_upstream.mjs).
//
// Note: @anthropic-ai/sdk >= 1.0 (API version 2026-10-21) sends the API key as
// `Authorization: Bearer <key>`, not `x-api-key`. Raw-fetch tests below cover
// the classic `x-api-key` header (curl, older SDKs) as well; the proxy must
// forward whichever the client sent, and derive the tenant from it.
//
// One stub and one proxy for the file; every test has its own system prompt.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import Anthropic from '@anthropic-ai/sdk';
import {
  startEnv, stopEnv, makeTest, describe, statusOf, stubAnswer, answerNumber, filesContaining,
  TENANT_A_ANTHROPIC, TENANT_B_ANTHROPIC,
} from './harness.mjs';

const MODEL = 'claude-haiku-4-5-20251001'; // priced in data/prices.json (claude-3-5-haiku-20241022 is not)
const OTHER_MODEL = 'claude-sonnet-4-20250514';

const env = {};
const ptest = makeTest(test, env);
let clientA;
let clientB;

before(async () => {
  await startEnv(env);
  const opts = { baseURL: env.proxy.url, maxRetries: 0, timeout: 15_000 };
  clientA = new Anthropic({ ...opts, apiKey: TENANT_A_ANTHROPIC });
  clientB = new Anthropic({ ...opts, apiKey: TENANT_B_ANTHROPIC });
});

after(async () => {
  await stopEnv(env);
});

const stats = () => env.stub.stats();

function sys(name) {
  return `You are a terse assistant. Test context: anthropic/${name}.`;
}

function textOf(message) {
  return (message.content ?? []).filter((b) => b.type === 'text').map((b) => b.text).join('');
}

async function msg(client, { system, prompt, model = MODEL, max_tokens = 256, headers, extra = {} }) {
  const body = { model, max_tokens, messages: [{ role: 'user', content: prompt }], ...extra };
  if (system) body.system = system;
  const { data, response } = await client.messages
    .create(body, headers ? { headers } : undefined)
    .withResponse();
  return { data, response, status: statusOf(response), text: textOf(data), stop: data.stop_reason };
}

// client.messages.create({stream: true}): iterate the raw events.
async function msgStream(client, { system, prompt, model = MODEL, max_tokens = 256, headers }) {
  const body = { model, max_tokens, stream: true, messages: [{ role: 'user', content: prompt }] };
  if (system) body.system = system;
  const { data: stream, response } = await client.messages
    .create(body, headers ? { headers } : undefined)
    .withResponse();
  let text = '';
  let stop = null;
  const types = [];
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'content_block_delta' && ev.delta?.type === 'text_delta') text += ev.delta.text;
    if (ev.type === 'message_delta') stop = ev.delta?.stop_reason ?? stop;
  }
  return { response, status: statusOf(response), text, stop, types };
}

// client.messages.stream(...).finalMessage(): the SDK's accumulating helper.
async function msgStreamHelper(client, { system, prompt, model = MODEL, max_tokens = 256, headers }) {
  const body = { model, max_tokens, messages: [{ role: 'user', content: prompt }] };
  if (system) body.system = system;
  const ms = client.messages.stream(body, headers ? { headers } : undefined);
  const { response } = await ms.withResponse();
  const final = await ms.finalMessage();
  return { response, status: statusOf(response), text: textOf(final), stop: final.stop_reason, final };
}

function assertStatus(r, expected, s, what) {
  const ok = Array.isArray(expected) ? expected.includes(r.status) : r.status === expected;
  assert.ok(ok, describe(`${what}: expected x-promptcache-status ${JSON.stringify(expected)}, got ${JSON.stringify(r.status)}`,
    r.response, s, { text: r.text }));
}

function assertCalls(s0, s1, n, what, r) {
  const d = s1.calls - s0.calls;
  assert.equal(d, n, describe(`${what}: expected ${n} new upstream call(s), stub saw ${d}`, r?.response, s1, { text: r?.text }));
}

// ---------------------------------------------------------------- plain

ptest('plain message: MISS then HIT with the same answer, priced saving and entry key', async () => {
  const system = sys('plain');
  const prompt = 'What is the difference between TCP and UDP?';
  const s0 = await stats();
  const r1 = await msg(clientA, { system, prompt });
  const s1 = await stats();
  assertStatus(r1, 'MISS', s1, '1st call');
  assertCalls(s0, s1, 1, '1st call', r1);
  assert.equal(r1.text, stubAnswer(s1.calls, MODEL, prompt));
  assert.equal(r1.stop, 'end_turn');

  const r2 = await msg(clientA, { system, prompt });
  const s2 = await stats();
  assertStatus(r2, 'HIT', s2, 'identical 2nd call');
  assertCalls(s1, s2, 0, 'identical 2nd call', r2);
  assert.equal(r2.text, r1.text, 'same answer (same #n)');
  assert.equal(answerNumber(r2.text), s1.calls);
  assert.equal(r2.stop, 'end_turn');
  assert.equal(r2.data.type, 'message');
  const saved = Number(r2.response.headers.get('x-promptcache-saved-usd') ?? NaN);
  assert.ok(Number.isFinite(saved) && saved > 0, describe(`x-promptcache-saved-usd > 0 for ${MODEL}`, r2.response, s2));
  assert.match(r2.response.headers.get('x-promptcache-entry') ?? '', /^[0-9a-f]{32}$/i,
    describe('x-promptcache-entry is 32 hex chars', r2.response, s2));
});

ptest('key forwarding: the SDK\'s bearer key and anthropic-version reach the stub', async () => {
  await msg(clientA, { system: sys('keyfwd'), prompt: 'What is a Bloom filter?' });
  const s = await stats();
  const last = s.auth_log.at(-1);
  assert.equal(last.path, '/v1/messages');
  assert.equal(last.authorization, `Bearer ${TENANT_A_ANTHROPIC}`,
    `the proxy forwards the client's Authorization header (no ANTHROPIC_API_KEY in its env): ${JSON.stringify(s.auth_log.slice(-3))}`);
  assert.ok(last.anthropic_version, `anthropic-version forwarded: ${JSON.stringify(last)}`);
});

ptest('key forwarding: a classic x-api-key client (raw fetch) is forwarded and cached', async () => {
  const body = JSON.stringify({
    model: MODEL, max_tokens: 256, system: sys('x-api-key'),
    messages: [{ role: 'user', content: 'What does HTTP status 418 mean?' }],
  });
  const call = () => fetch(`${env.proxy.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': TENANT_A_ANTHROPIC },
    body,
  });
  const s0 = await stats();
  const res1 = await call();
  const j1 = await res1.json();
  const s1 = await stats();
  assert.equal(res1.status, 200, describe(`x-api-key call: ${JSON.stringify(j1)}`, res1, s1));
  assert.equal(statusOf(res1), 'MISS', describe('x-api-key 1st call', res1, s1));
  assertCalls(s0, s1, 1, 'x-api-key 1st call');
  const last = s1.auth_log.at(-1);
  assert.equal(last.x_api_key, TENANT_A_ANTHROPIC, `x-api-key forwarded: ${JSON.stringify(last)}`);
  assert.equal(last.anthropic_version, '2023-06-01', 'anthropic-version forwarded unchanged');
  const res2 = await call();
  const j2 = await res2.json();
  const s2 = await stats();
  assert.equal(statusOf(res2), 'HIT', describe('x-api-key 2nd call', res2, s2));
  assert.equal(j2.content[0].text, j1.content[0].text);
});

ptest('tenants are isolated by API key', async () => {
  const system = sys('tenant');
  const prompt = 'What is our SLA for the enterprise plan?';
  const s0 = await stats();
  const a1 = await msg(clientA, { system, prompt });
  const b1 = await msg(clientB, { system, prompt });
  const s1 = await stats();
  assertStatus(a1, 'MISS', s1, 'tenant A');
  assertStatus(b1, 'MISS', s1, 'tenant B');
  assertCalls(s0, s1, 2, 'tenant A + tenant B', b1);
  assert.equal(s1.auth_log.at(-1).authorization, `Bearer ${TENANT_B_ANTHROPIC}`);
  const b2 = await msg(clientB, { system, prompt });
  assertStatus(b2, 'HIT', await stats(), 'tenant B again');
  assert.equal(b2.text, b1.text);
});

// ---------------------------------------------------------------- semantic, model

ptest('paraphrase: SEMANTIC_HIT with a similarity in (0,1)', async () => {
  const system = 'You are the support assistant of the Umbrella customer portal.';
  const s0 = await stats();
  const r1 = await msg(clientA, { system, prompt: 'How do I reset my password?' });
  const s1 = await stats();
  assertStatus(r1, 'MISS', s1, 'original question');
  assertCalls(s0, s1, 1, 'original question', r1);
  const r2 = await msg(clientA, { system, prompt: 'how can I reset my password' });
  const s2 = await stats();
  assertStatus(r2, 'SEMANTIC_HIT', s2, 'paraphrase');
  assertCalls(s1, s2, 0, 'paraphrase', r2);
  assert.equal(r2.text, r1.text);
  assert.equal(r2.stop, 'end_turn');
  const sim = Number(r2.response.headers.get('x-promptcache-similarity'));
  assert.ok(sim > 0 && sim < 1, describe('x-promptcache-similarity in (0,1)', r2.response, s2));
});

ptest('a different model is a MISS', async () => {
  const system = sys('model');
  const prompt = 'Name three famous bridges.';
  const s0 = await stats();
  const r1 = await msg(clientA, { system, prompt, model: MODEL });
  const r2 = await msg(clientA, { system, prompt, model: OTHER_MODEL });
  const s2 = await stats();
  assertStatus(r1, 'MISS', s2, MODEL);
  assertStatus(r2, 'MISS', s2, OTHER_MODEL);
  assertCalls(s0, s2, 2, 'two models', r2);
  assert.equal(r2.text, stubAnswer(s2.calls, OTHER_MODEL, prompt));
});

// ---------------------------------------------------------------- streaming

ptest('streaming: MISS streamed (raw events), then HIT replayed (MessageStream.finalMessage)', async () => {
  const system = sys('stream');
  const prompt = 'Explain what a write-ahead log is in one sentence.';
  const s0 = await stats();
  const r1 = await msgStream(clientA, { system, prompt });
  const s1 = await stats();
  assertStatus(r1, 'MISS', s1, '1st streamed call');
  assertCalls(s0, s1, 1, '1st streamed call', r1);
  assert.equal(r1.text, stubAnswer(s1.calls, MODEL, prompt));
  assert.equal(r1.stop, 'end_turn');
  assert.equal(r1.types[0], 'message_start');
  assert.equal(r1.types.at(-1), 'message_stop');

  const r2 = await msgStreamHelper(clientA, { system, prompt });
  const s2 = await stats();
  assertStatus(r2, 'HIT', s2, '2nd streamed call (messages.stream)');
  assertCalls(s1, s2, 0, '2nd streamed call', r2);
  assert.match(r2.response.headers.get('content-type') ?? '', /text\/event-stream/);
  assert.equal(r2.text, r1.text);
  assert.equal(r2.stop, 'end_turn');

  const r3 = await msgStream(clientA, { system, prompt });
  const s3 = await stats();
  assertStatus(r3, 'HIT', s3, '3rd streamed call (raw events)');
  assert.equal(r3.text, r1.text);
  assert.equal(r3.stop, 'end_turn');
  for (const t of ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']) {
    assert.ok(r3.types.includes(t), `the replay has a ${t} event: ${r3.types.join(',')}`);
  }
});

ptest('streaming is transport-only: a non-streamed call after a streamed MISS is a HIT', async () => {
  const system = sys('stream-then-plain');
  const prompt = 'What is the speed of light in vacuum?';
  const s0 = await stats();
  const r1 = await msgStreamHelper(clientA, { system, prompt });
  const r2 = await msg(clientA, { system, prompt });
  const s2 = await stats();
  assertStatus(r1, 'MISS', s2, 'streamed');
  assertStatus(r2, 'HIT', s2, 'non-streamed after streamed');
  assertCalls(s0, s2, 1, 'streamed + non-streamed', r2);
  assert.equal(r2.text, r1.text);
  assert.equal(r2.stop, 'end_turn');
});

ptest('aborted upstream stream: the SDK sees a failure and the answer is not stored', async () => {
  const system = sys('abort');
  const prompt = 'ABORT_MIDSTREAM: write an essay about consistency models.';
  const attempt = async () => {
    try {
      return { r: await msgStream(clientA, { system, prompt }), error: null };
    } catch (e) {
      return { r: null, error: e };
    }
  };
  const s0 = await stats();
  const a1 = await attempt();
  const s1 = await stats();
  assertCalls(s0, s1, 1, 'aborted stream', a1.r);
  assert.ok(a1.error || (a1.r && a1.r.stop === null),
    describe(`an aborted upstream stream must not look complete (stop_reason ${a1.r?.stop})`, a1.r?.response, s1, { text: a1.r?.text }));
  const a2 = await attempt();
  const s2 = await stats();
  assertCalls(s1, s2, 1, 'repeat of the aborted call (aborted answers are never stored)', a2.r);
});

// ---------------------------------------------------------------- errors, passthrough

ptest('errors: unknown model => NotFoundError (404) naming the model', async () => {
  await assert.rejects(
    clientA.messages.create({ model: 'no-such-model', max_tokens: 64, messages: [{ role: 'user', content: 'Hello, unknown model.' }] }),
    (e) => {
      assert.ok(e instanceof Anthropic.NotFoundError, `expected NotFoundError, got ${e?.constructor?.name}: ${e?.message}`);
      assert.equal(e.status, 404);
      assert.match(e.message, /no-such-model/);
      assert.equal(e.error?.type, 'error', `Anthropic error format: ${JSON.stringify(e.error)}`);
      assert.equal(e.error?.error?.type, 'not_found_error');
      return true;
    });
});

ptest('errors: missing max_tokens => 400 with an Anthropic invalid_request_error', async () => {
  await assert.rejects(
    clientA.messages.create({ model: MODEL, messages: [{ role: 'user', content: 'No max_tokens here.' }] }),
    (e) => {
      assert.ok(e instanceof Anthropic.BadRequestError, `expected BadRequestError, got ${e?.constructor?.name}: ${e?.message}`);
      assert.equal(e.status, 400);
      assert.equal(e.error?.type, 'error', `{"type":"error",...}: ${JSON.stringify(e.error)}`);
      assert.equal(e.error?.error?.type, 'invalid_request_error', JSON.stringify(e.error));
      assert.match(e.error?.error?.message ?? '', /max_tokens/);
      return true;
    });
});

ptest('errors: invalid JSON => 400 with an Anthropic error body', async () => {
  const res = await fetch(`${env.proxy.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': TENANT_A_ANTHROPIC },
    body: '{"model": "claude-haiku-4-5-20251001", "max_tokens": 16, "messages": [',
  });
  const text = await res.text();
  assert.equal(res.status, 400, describe(`invalid JSON: ${text}`, res, await stats()));
  let body;
  assert.doesNotThrow(() => { body = JSON.parse(text); }, text);
  assert.equal(body.type, 'error', text);
  assert.equal(body.error?.type, 'invalid_request_error', text);
});

ptest('errors: upstream 429 with retry-after 0 is retried by the proxy', async () => {
  const prompt = 'RATE_LIMIT_ONCE: what is exponential backoff?';
  const s0 = await stats();
  const r = await msg(clientA, { system: sys('ratelimit'), prompt });
  const s1 = await stats();
  assertCalls(s0, s1, 2, 'a rate-limited call (429, then the retry)', r);
  assert.equal(r.text, stubAnswer(s1.calls, MODEL, prompt));
});

ptest('passthrough: /v1/messages/count_tokens goes to the Anthropic upstream', async () => {
  const s0 = await stats();
  const r = await clientA.messages.countTokens({ model: MODEL, messages: [{ role: 'user', content: 'Count these tokens, please.' }] });
  const s1 = await stats();
  assert.ok(r.input_tokens > 0, JSON.stringify(r));
  assert.equal((s1.by_path['/v1/messages/count_tokens'] ?? 0) - (s0.by_path['/v1/messages/count_tokens'] ?? 0), 1, JSON.stringify(s1.by_path));
});

// ---------------------------------------------------------------- last: stop and check secrecy

ptest('SIGTERM => exit 0; no API key in the --db directory, the access log or the proxy output', async () => {
  await env.proxy.stop();
  assert.ok(fs.existsSync(env.proxy.accessLog) && fs.statSync(env.proxy.accessLog).size > 0,
    `the access log ${env.proxy.accessLog} was written`);
  for (const secret of [TENANT_A_ANTHROPIC, TENANT_B_ANTHROPIC]) {
    const hits = filesContaining([env.proxy.dbDir, env.proxy.accessLog], secret);
    assert.deepEqual(hits, [], `files containing ${secret}: ${hits.join(', ')}`);
    // Its own logs (what a service manager would keep) must not carry keys either.
    assert.ok(!env.proxy.out.stdout.includes(secret) && !env.proxy.out.stderr.includes(secret),
      `the proxy printed ${secret} on stdout/stderr`);
  }
});
