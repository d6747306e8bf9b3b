// promptcache-proxy end to end with the official OpenAI SDK:
// SDK -> proxy (PROXY_BIN) -> stub upstream (stub_upstream.mjs).
//
// One stub and one proxy for the file; every test uses its own system prompt
// and prompts, so that no test's cache entries (exact or semantic) can answer
// another test's requests. The last test stops the proxy and checks that no
// API key reached its files.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import OpenAI from 'openai';
import {
  startEnv, stopEnv, makeTest, describe, statusOf, stubAnswer, answerNumber, filesContaining, sleep,
  TENANT_A_OPENAI, TENANT_B_OPENAI,
} from './harness.mjs';

const MODEL = 'gpt-4o-mini'; // priced in data/prices.json

const env = {};
const ptest = makeTest(test, env);
let clientA; // tenant A
let clientB; // tenant B

before(async () => {
  await startEnv(env);
  const opts = { baseURL: env.proxy.url + '/v1', maxRetries: 0, timeout: 15_000 };
  clientA = new OpenAI({ ...opts, apiKey: TENANT_A_OPENAI });
  clientB = new OpenAI({ ...opts, apiKey: TENANT_B_OPENAI });
});

after(async () => {
  await stopEnv(env);
});

const stats = () => env.stub.stats();

function sys(name) {
  return `You are a terse assistant. Test context: openai/${name}.`;
}

// A non-streamed chat call through the SDK; returns the SDK data, the raw
// response and the interesting bits.
async function chat(client, { system, prompt, model = MODEL, temperature = 0, headers, extra = {} }) {
  const messages = [];
  if (system) messages.push({ role: 'system', content: system });
  messages.push({ role: 'user', content: prompt });
  const body = { model, messages, ...extra };
  if (temperature !== undefined) body.temperature = temperature;
  const { data, response } = await client.chat.completions
    .create(body, headers ? { headers } : undefined)
    .withResponse();
  return {
    data,
    response,
    status: statusOf(response),
    text: data.choices?.[0]?.message?.content,
    finish: data.choices?.[0]?.finish_reason,
  };
}

// A streamed chat call: iterates the SDK stream and assembles the text.
async function chatStream(client, { system, prompt, model = MODEL, temperature = 0, headers, extra = {} }) {
  const messages = [];
  if (system) messages.push({ role: 'system', content: system });
  messages.push({ role: 'user', content: prompt });
  const body = { model, messages, stream: true, ...extra };
  if (temperature !== undefined) body.temperature = temperature;
  const { data: stream, response } = await client.chat.completions
    .create(body, headers ? { headers } : undefined)
    .withResponse();
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  let last = null;
  for await (const chunk of stream) {
    chunks += 1;
    last = chunk;
    const c = chunk.choices?.[0];
    if (c) {
      text += c.delta?.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  return { response, status: statusOf(response), text, finish, usage, chunks, last };
}

function delta(s0, s1) {
  return s1.calls - s0.calls;
}

function assertStatus(r, expected, s, what) {
  const ok = Array.isArray(expected) ? expected.includes(r.status) : r.status === expected;
  assert.ok(ok, describe(`${what}: expected x-promptcache-status ${JSON.stringify(expected)}, got ${JSON.stringify(r.status)}`,
    r.response, s, { text: r.text }));
}

function assertCalls(s0, s1, n, what, r) {
  assert.equal(delta(s0, s1), n, describe(`${what}: expected ${n} new upstream call(s), stub saw ${delta(s0, s1)}`,
    r?.response, s1, { text: r?.text }));
}

function savedUsd(response) {
  const v = response.headers.get('x-promptcache-saved-usd');
  return v === null ? NaN : Number(v);
}

// ---------------------------------------------------------------- plain

ptest('plain chat: MISS then HIT with the same answer, priced saving and entry key', async () => {
  const system = sys('plain');
  const prompt = 'What is the difference between a mutex and a semaphore?';
  const s0 = await stats();
  const r1 = await chat(clientA, { system, prompt });
  const s1 = await stats();
  assertStatus(r1, 'MISS', s1, '1st call');
  assertCalls(s0, s1, 1, '1st call', r1);
  assert.equal(r1.text, stubAnswer(s1.calls, MODEL, prompt), 'the SDK parsed the stub answer');
  assert.equal(r1.finish, 'stop');
  assert.ok(r1.response.headers.get('x-promptcache-request'), describe('x-promptcache-request is set on a MISS', r1.response, s1));

  const r2 = await chat(clientA, { system, prompt });
  const s2 = await stats();
  assertStatus(r2, 'HIT', s2, 'identical 2nd call');
  assertCalls(s1, s2, 0, 'identical 2nd call', r2);
  assert.equal(r2.text, r1.text, 'a HIT serves the stored answer (same #n)');
  assert.equal(answerNumber(r2.text), s1.calls);
  assert.equal(r2.finish, 'stop');
  const saved = savedUsd(r2.response);
  assert.ok(Number.isFinite(saved) && saved > 0,
    describe(`x-promptcache-saved-usd must be a number > 0 for ${MODEL}`, r2.response, s2));
  const entry = r2.response.headers.get('x-promptcache-entry');
  assert.match(entry ?? '', /^[0-9a-f]{32}$/i, describe('x-promptcache-entry is 32 hex chars', r2.response, s2));
  const missEntry = r1.response.headers.get('x-promptcache-entry');
  if (missEntry) assert.equal(missEntry.toLowerCase(), entry.toLowerCase(), 'the MISS stored the entry the HIT serves');
  assert.ok(r2.response.headers.get('x-promptcache-request'), 'x-promptcache-request is set on a HIT');
});

ptest('key forwarding: the stub saw the tenant\'s own bearer key', async () => {
  const prompt = 'Which port does HTTPS use by default?';
  await chat(clientA, { system: sys('keyfwd'), prompt });
  const s = await stats();
  const last = s.auth_log.at(-1);
  assert.equal(last.path, '/v1/chat/completions');
  assert.equal(last.authorization, `Bearer ${TENANT_A_OPENAI}`,
    `the proxy must forward the client's Authorization header (no OPENAI_API_KEY in its env). stub auth_log tail: ${JSON.stringify(s.auth_log.slice(-3))}`);
});

// ---------------------------------------------------------------- semantic

ptest('paraphrase: SEMANTIC_HIT with a similarity in (0,1)', async () => {
  const system = 'You are the support assistant of the Acme customer portal.';
  const s0 = await stats();
  const r1 = await chat(clientA, { system, prompt: 'How do I reset my password?' });
  const s1 = await stats();
  assertStatus(r1, 'MISS', s1, 'original question');
  assertCalls(s0, s1, 1, 'original question', r1);

  const r2 = await chat(clientA, { system, prompt: 'how can I reset my password' });
  const s2 = await stats();
  assertStatus(r2, 'SEMANTIC_HIT', s2, 'paraphrase');
  assertCalls(s1, s2, 0, 'paraphrase', r2);
  assert.equal(r2.text, r1.text, 'the paraphrase is served the stored answer');
  const sim = Number(r2.response.headers.get('x-promptcache-similarity'));
  assert.ok(sim > 0 && sim < 1, describe('x-promptcache-similarity is a number in (0,1)', r2.response, s2));
  assert.match(r2.response.headers.get('x-promptcache-entry') ?? '', /^[0-9a-f]{32}$/i);
});

ptest('x-promptcache-semantic: off turns the paraphrase into a MISS', async () => {
  const system = 'You are the support assistant of the Globex customer portal.';
  const s0 = await stats();
  const r1 = await chat(clientA, { system, prompt: 'How do I reset my password?' });
  assertStatus(r1, 'MISS', await stats(), 'original question');
  const r2 = await chat(clientA, { system, prompt: 'how can I reset my password', headers: { 'x-promptcache-semantic': 'off' } });
  const s2 = await stats();
  assertStatus(r2, 'MISS', s2, 'paraphrase with semantic off');
  assertCalls(s0, s2, 2, 'original + paraphrase with semantic off', r2);
  assert.notEqual(r2.text, r1.text);
});

ptest('x-promptcache-threshold: 0.999 turns the paraphrase into a MISS', async () => {
  const system = 'You are the support assistant of the Initech customer portal.';
  const s0 = await stats();
  await chat(clientA, { system, prompt: 'How do I reset my password?' });
  const r2 = await chat(clientA, { system, prompt: 'how can I reset my password', headers: { 'x-promptcache-threshold': '0.999' } });
  const s2 = await stats();
  assertStatus(r2, 'MISS', s2, 'paraphrase with threshold 0.999');
  assertCalls(s0, s2, 2, 'original + paraphrase with threshold 0.999', r2);
});

// ---------------------------------------------------------------- what is part of the key

ptest('a different model is a MISS', async () => {
  const system = sys('model');
  const prompt = 'Name three sorting algorithms.';
  const s0 = await stats();
  const r1 = await chat(clientA, { system, prompt, model: MODEL });
  const r2 = await chat(clientA, { system, prompt, model: 'gpt-4o' });
  const s2 = await stats();
  assertStatus(r1, 'MISS', s2, `${MODEL}`);
  assertStatus(r2, 'MISS', s2, 'same prompt, gpt-4o');
  assertCalls(s0, s2, 2, 'two models', r2);
  assert.equal(r2.text, stubAnswer(s2.calls, 'gpt-4o', prompt));
});

ptest('a different temperature is a MISS', async () => {
  const system = sys('temperature');
  const prompt = 'Suggest a name for a pet goldfish.';
  const s0 = await stats();
  const r1 = await chat(clientA, { system, prompt, temperature: 0 });
  const r2 = await chat(clientA, { system, prompt, temperature: 0.7 });
  const s2 = await stats();
  assertStatus(r1, 'MISS', s2, 'temperature 0');
  assertStatus(r2, 'MISS', s2, 'temperature 0.7');
  assertCalls(s0, s2, 2, 'two temperatures', r2);
  const r3 = await chat(clientA, { system, prompt, temperature: 0.7 });
  const s3 = await stats();
  assertStatus(r3, 'HIT', s3, 'temperature 0.7 again');
  assert.equal(r3.text, r2.text);
});

ptest('tenants are isolated by API key: tenant B misses tenant A\'s entry', async () => {
  const system = sys('tenant');
  const prompt = 'What is our refund policy for annual plans?';
  const s0 = await stats();
  const a1 = await chat(clientA, { system, prompt });
  const b1 = await chat(clientB, { system, prompt });
  const s1 = await stats();
  assertStatus(a1, 'MISS', s1, 'tenant A');
  assertStatus(b1, 'MISS', s1, 'tenant B, same request');
  assertCalls(s0, s1, 2, 'tenant A + tenant B', b1);
  assert.equal(s1.auth_log.at(-1).authorization, `Bearer ${TENANT_B_OPENAI}`, 'tenant B\'s own key went upstream');
  const b2 = await chat(clientB, { system, prompt });
  const a2 = await chat(clientA, { system, prompt });
  const s2 = await stats();
  assertStatus(b2, 'HIT', s2, 'tenant B again');
  assertStatus(a2, 'HIT', s2, 'tenant A again');
  assert.equal(b2.text, b1.text);
  assert.equal(a2.text, a1.text);
  assert.notEqual(a1.text, b1.text);
});

// ---------------------------------------------------------------- streaming

ptest('streaming: MISS streamed, then the identical stream is a HIT replayed as SSE', async () => {
  const system = sys('stream');
  const prompt = 'Explain what a B-tree is in one sentence.';
  const s0 = await stats();
  const r1 = await chatStream(clientA, { system, prompt });
  const s1 = await stats();
  assertStatus(r1, 'MISS', s1, '1st streamed call');
  assertCalls(s0, s1, 1, '1st streamed call', r1);
  assert.equal(r1.text, stubAnswer(s1.calls, MODEL, prompt), 'the SDK assembled the full upstream text');
  assert.equal(r1.finish, 'stop');
  assert.match(r1.response.headers.get('content-type') ?? '', /text\/event-stream/);

  const r2 = await chatStream(clientA, { system, prompt });
  const s2 = await stats();
  assertStatus(r2, 'HIT', s2, '2nd streamed call');
  assertCalls(s1, s2, 0, '2nd streamed call', r2);
  assert.match(r2.response.headers.get('content-type') ?? '', /text\/event-stream/, 'a streamed HIT is replayed as SSE');
  assert.equal(r2.text, r1.text, 'the SDK assembles the same text from the replay');
  assert.equal(r2.finish, 'stop');
  assert.ok(savedUsd(r2.response) > 0, describe('saved-usd on a streamed HIT', r2.response, s2));
});

ptest('streaming is transport-only: a non-streamed call after a streamed one is a HIT', async () => {
  const system = sys('stream-then-plain');
  const prompt = 'What does the acronym ACID stand for?';
  const s0 = await stats();
  const r1 = await chatStream(clientA, { system, prompt });
  const r2 = await chat(clientA, { system, prompt });
  const s2 = await stats();
  assertStatus(r1, 'MISS', s2, 'streamed');
  assertStatus(r2, 'HIT', s2, 'non-streamed after streamed');
  assertCalls(s0, s2, 1, 'streamed + non-streamed', r2);
  assert.equal(r2.text, r1.text);
  assert.equal(r2.finish, 'stop');
});

ptest('streaming is transport-only: a streamed call after a non-streamed one is a HIT', async () => {
  const system = sys('plain-then-stream');
  const prompt = 'What is the capital of Australia?';
  const s0 = await stats();
  const r1 = await chat(clientA, { system, prompt });
  const r2 = await chatStream(clientA, { system, prompt });
  const s2 = await stats();
  assertStatus(r1, 'MISS', s2, 'non-streamed');
  assertStatus(r2, 'HIT', s2, 'streamed after non-streamed');
  assertCalls(s0, s2, 1, 'non-streamed + streamed', r2);
  assert.equal(r2.text, r1.text);
  assert.equal(r2.finish, 'stop');
});

ptest('streaming with stream_options.include_usage: the replay ends with a usage chunk', async () => {
  const system = sys('stream-usage');
  const prompt = 'List the primary colors.';
  const extra = { stream_options: { include_usage: true } };
  const s0 = await stats();
  const r1 = await chatStream(clientA, { system, prompt, extra });
  const s1 = await stats();
  assertStatus(r1, 'MISS', s1, 'streamed with usage');
  assertCalls(s0, s1, 1, 'streamed with usage', r1);
  assert.ok(r1.usage && r1.usage.prompt_tokens > 0 && r1.usage.completion_tokens > 0,
    `the MISS passes the upstream usage chunk through: ${JSON.stringify(r1.usage)}`);

  const r2 = await chatStream(clientA, { system, prompt, extra });
  const s2 = await stats();
  assertStatus(r2, 'HIT', s2, 'streamed with usage again');
  assertCalls(s1, s2, 0, 'streamed with usage again', r2);
  assert.equal(r2.text, r1.text);
  assert.equal(r2.finish, 'stop');
  assert.ok(r2.last && Array.isArray(r2.last.choices) && r2.last.choices.length === 0 && r2.last.usage,
    `the replay's last chunk is a usage chunk (choices: [], usage: {...}); got ${JSON.stringify(r2.last)}`);
  for (const k of ['prompt_tokens', 'completion_tokens', 'total_tokens']) {
    assert.equal(typeof r2.usage[k], 'number', `usage.${k} in the replay: ${JSON.stringify(r2.usage)}`);
  }
});

ptest('aborted upstream stream: the SDK sees a failure and the answer is not stored', async () => {
  const system = sys('abort');
  const prompt = 'ABORT_MIDSTREAM: tell me a long story about caches.';
  const attempt = async () => {
    let r = null;
    let error = null;
    try {
      r = await chatStream(clientA, { system, prompt });
    } catch (e) {
      error = e;
    }
    return { r, error };
  };
  const s0 = await stats();
  const a1 = await attempt();
  const s1 = await stats();
  assertCalls(s0, s1, 1, 'aborted stream', a1.r);
  assert.ok(a1.error || (a1.r && a1.r.finish === null),
    describe(`an aborted upstream stream must not look complete to the client (finish_reason ${a1.r?.finish})`, a1.r?.response, s1, { text: a1.r?.text }));

  const a2 = await attempt();
  const s2 = await stats();
  assertCalls(s1, s2, 1, 'repeat of the aborted call (aborted answers are never stored)', a2.r);
  if (a2.r) assert.notEqual(a2.r.status, 'HIT');
});

// ---------------------------------------------------------------- control headers

ptest('x-promptcache-skip: true => BYPASS, upstream called, nothing read or written', async () => {
  const system = sys('skip');
  const prompt = 'How many bytes are in a kibibyte?';
  const s0 = await stats();
  const r1 = await chat(clientA, { system, prompt });
  const r2 = await chat(clientA, { system, prompt, headers: { 'x-promptcache-skip': 'true' } });
  const s2 = await stats();
  assertStatus(r1, 'MISS', s2, 'first call');
  assertStatus(r2, 'BYPASS', s2, 'skip');
  assertCalls(s0, s2, 2, 'first + skip', r2);
  assert.equal(answerNumber(r2.text), s2.calls, 'the bypass got a fresh answer');
  const r3 = await chat(clientA, { system, prompt });
  const s3 = await stats();
  assertStatus(r3, 'HIT', s3, 'after the bypass');
  assert.equal(r3.text, r1.text, 'the bypass did not overwrite the stored answer');
});

ptest('x-promptcache-refresh: true => REFRESH, upstream called, later calls HIT the new answer', async () => {
  const system = sys('refresh');
  const prompt = 'What is the latest stable Linux kernel?';
  const s0 = await stats();
  const r1 = await chat(clientA, { system, prompt });
  const r2 = await chat(clientA, { system, prompt, headers: { 'x-promptcache-refresh': 'true' } });
  const s2 = await stats();
  assertStatus(r1, 'MISS', s2, 'first call');
  assertStatus(r2, 'REFRESH', s2, 'refresh');
  assertCalls(s0, s2, 2, 'first + refresh', r2);
  assert.notEqual(r2.text, r1.text, 'refresh fetched a new answer');
  const r3 = await chat(clientA, { system, prompt });
  const s3 = await stats();
  assertStatus(r3, 'HIT', s3, 'after the refresh');
  assertCalls(s2, s3, 0, 'after the refresh', r3);
  assert.equal(r3.text, r2.text, 'the HIT serves the refreshed answer (new #n)');
});

ptest('x-promptcache-no-store: true => answered but not stored', async () => {
  const system = sys('no-store');
  const prompt = 'Is zero an even number?';
  const s0 = await stats();
  const r1 = await chat(clientA, { system, prompt, headers: { 'x-promptcache-no-store': '1' } });
  const r2 = await chat(clientA, { system, prompt });
  const s2 = await stats();
  assertStatus(r1, 'MISS', s2, 'no-store call');
  assertStatus(r2, 'MISS', s2, 'the call after a no-store call');
  assertCalls(s0, s2, 2, 'no-store + plain', r2);
  const r3 = await chat(clientA, { system, prompt });
  assertStatus(r3, 'HIT', await stats(), 'third call');
  assert.equal(r3.text, r2.text);
});

ptest('x-promptcache-ttl: 1 => the entry expires', async () => {
  const system = sys('ttl');
  const prompt = 'What time zone is UTC+0?';
  const s0 = await stats();
  const r1 = await chat(clientA, { system, prompt, headers: { 'x-promptcache-ttl': '1' } });
  assertStatus(r1, 'MISS', await stats(), 'stored with ttl 1 s');
  await sleep(2500);
  const r2 = await chat(clientA, { system, prompt });
  const s2 = await stats();
  assertStatus(r2, 'MISS', s2, '2.5 s later');
  assertCalls(s0, s2, 2, 'ttl 1 s, then 2.5 s later', r2);
});

ptest('x-promptcache-namespace: team-x misses a prompt cached without it', async () => {
  const system = sys('namespace');
  const prompt = 'What is the boiling point of water at sea level?';
  const s0 = await stats();
  const r1 = await chat(clientA, { system, prompt });
  const r2 = await chat(clientA, { system, prompt, headers: { 'x-promptcache-namespace': 'team-x' } });
  const s2 = await stats();
  assertStatus(r1, 'MISS', s2, 'default namespace');
  assertStatus(r2, 'MISS', s2, 'namespace team-x');
  assertCalls(s0, s2, 2, 'default + team-x', r2);
  const r3 = await chat(clientA, { system, prompt, headers: { 'x-promptcache-namespace': 'team-x' } });
  const s3 = await stats();
  assertStatus(r3, 'HIT', s3, 'namespace team-x again');
  assert.equal(r3.text, r2.text);
});

// ---------------------------------------------------------------- errors

ptest('errors: no messages => 400 naming messages (SDK and raw body)', async () => {
  await assert.rejects(
    clientA.chat.completions.create({ model: MODEL, messages: [] }),
    (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, `expected BadRequestError, got ${e?.constructor?.name}: ${e?.message}`);
      assert.equal(e.status, 400);
      assert.match(e.error?.message ?? '', /messages/, `error.message names messages: ${JSON.stringify(e.error)}`);
      return true;
    });
  const res = await fetch(`${env.proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TENANT_A_OPENAI}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL }),
  });
  const text = await res.text();
  assert.equal(res.status, 400, describe(`body without messages: ${text}`, res, await stats()));
  let body;
  assert.doesNotThrow(() => { body = JSON.parse(text); }, `the 400 body is JSON: ${text}`);
  assert.equal(typeof body.error?.message, 'string', `OpenAI error format {"error":{"message":...}}: ${text}`);
  assert.match(body.error.message, /messages/);
});

ptest('errors: invalid JSON => 400 with an OpenAI error body', async () => {
  const res = await fetch(`${env.proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TENANT_A_OPENAI}`, 'content-type': 'application/json' },
    body: '{"model": "gpt-4o-mini", "messages": [',
  });
  const text = await res.text();
  assert.equal(res.status, 400, describe(`invalid JSON: ${text}`, res, await stats()));
  let body;
  assert.doesNotThrow(() => { body = JSON.parse(text); }, `the 400 body is JSON: ${text}`);
  assert.equal(typeof body.error?.message, 'string', `OpenAI error format: ${text}`);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
});

ptest('errors: unknown model => NotFoundError (404) naming the model, never cached', async () => {
  const messages = [{ role: 'user', content: 'Hello there, unknown model.' }];
  const s0 = await stats();
  for (let i = 0; i < 2; i++) {
    await assert.rejects(
      clientA.chat.completions.create({ model: 'no-such-model', messages }),
      (e) => {
        assert.ok(e instanceof OpenAI.NotFoundError, `expected NotFoundError, got ${e?.constructor?.name}: ${e?.message}`);
        assert.equal(e.status, 404);
        assert.match(e.message, /no-such-model/);
        return true;
      });
  }
  const s1 = await stats();
  assertCalls(s0, s1, 2, 'two calls to an unknown model (errors are not cached)');
});

ptest('errors: upstream 429 with retry-after 0 is retried by the proxy', async () => {
  const prompt = 'RATE_LIMIT_ONCE: what is a token bucket?';
  const s0 = await stats();
  const r = await chat(clientA, { system: sys('ratelimit'), prompt });
  const s1 = await stats();
  assertCalls(s0, s1, 2, 'a rate-limited call (429, then the retry)', r);
  assert.equal(r.text, stubAnswer(s1.calls, MODEL, prompt));
  assertStatus(r, 'MISS', s1, 'the retried call');
});

// ---------------------------------------------------------------- passthrough, legacy

ptest('passthrough: models.list() returns the stub\'s models', async () => {
  const s0 = await stats();
  const ids = [];
  for await (const m of clientA.models.list()) ids.push(m.id);
  const s1 = await stats();
  assert.ok(ids.includes(MODEL) && ids.includes('gpt-3.5-turbo-instruct'), `models: ${ids.join(', ')}`);
  assert.equal((s1.by_path['/v1/models'] ?? 0) - (s0.by_path['/v1/models'] ?? 0), 1, JSON.stringify(s1.by_path));
  assert.equal(s1.auth_log.at(-1).authorization, `Bearer ${TENANT_A_OPENAI}`);
  // An endpoint the stub does not know: its 404 comes back unchanged.
  const res = await fetch(`${env.proxy.url}/v1/models/gpt-4o-mini`, { headers: { authorization: `Bearer ${TENANT_A_OPENAI}` } });
  const body = await res.text();
  assert.equal(res.status, 404, body);
  assert.match(body, /Invalid URL \(GET \/v1\/models\/gpt-4o-mini\)/);
});

ptest('legacy completions: MISS then HIT; the streamed variant parses and replays', async () => {
  const model = 'gpt-3.5-turbo-instruct';
  const s0 = await stats();
  const { data: c1, response: h1 } = await clientA.completions.create({ model, prompt: 'Say hi' }).withResponse();
  const s1 = await stats();
  assert.equal(statusOf(h1), 'MISS', describe('legacy completion 1st', h1, s1));
  assertCalls(s0, s1, 1, 'legacy completion 1st');
  assert.equal(c1.choices[0].text, stubAnswer(s1.calls, model, 'Say hi'));
  const { data: c2, response: h2 } = await clientA.completions.create({ model, prompt: 'Say hi' }).withResponse();
  const s2 = await stats();
  assert.equal(statusOf(h2), 'HIT', describe('legacy completion 2nd', h2, s2));
  assertCalls(s1, s2, 0, 'legacy completion 2nd');
  assert.equal(c2.choices[0].text, c1.choices[0].text);

  const streamed = async () => {
    const { data: stream, response } = await clientA.completions
      .create({ model, prompt: 'Say hi, streamed', stream: true })
      .withResponse();
    let text = '';
    let finish = null;
    for await (const chunk of stream) {
      text += chunk.choices?.[0]?.text ?? '';
      finish = chunk.choices?.[0]?.finish_reason ?? finish;
    }
    return { response, status: statusOf(response), text, finish };
  };
  const r3 = await streamed();
  const s3 = await stats();
  assertStatus(r3, 'MISS', s3, 'streamed legacy completion');
  assert.equal(r3.text, stubAnswer(s3.calls, model, 'Say hi, streamed'));
  assert.equal(r3.finish, 'stop');
  const r4 = await streamed();
  const s4 = await stats();
  assertStatus(r4, 'HIT', s4, 'streamed legacy completion again');
  assertCalls(s3, s4, 0, 'streamed legacy completion again', r4);
  assert.equal(r4.text, r3.text);
  assert.equal(r4.finish, 'stop');
});

// ---------------------------------------------------------------- coalescing

ptest('coalescing: 5 concurrent identical slow calls => one upstream call', async () => {
  const system = sys('coalesce');
  const prompt = 'SLOW_ANSWER: summarize the CAP theorem.';
  const s0 = await stats();
  const rs = await Promise.all(Array.from({ length: 5 }, () => chat(clientA, { system, prompt })));
  const s1 = await stats();
  const statuses = rs.map((r) => r.status);
  assertCalls(s0, s1, 1, `5 concurrent identical calls (statuses ${statuses.join(',')})`, rs[0]);
  assert.equal(statuses.filter((s) => s === 'MISS').length, 1, `exactly one MISS: ${statuses.join(',')}`);
  assert.ok(statuses.every((s) => ['MISS', 'HIT', 'COALESCED'].includes(s)), `statuses: ${statuses.join(',')}`);
  for (const r of rs) assert.equal(r.text, rs[0].text);
  assert.equal(rs[0].text, stubAnswer(s1.calls, MODEL, prompt));
});

// ---------------------------------------------------------------- observability

ptest('/metrics is Prometheus text with requests and dollars saved per model; /promptcache/stats is JSON', async () => {
  const system = sys('metrics');
  const prompt = 'What is Prometheus used for?';
  await chat(clientA, { system, prompt });
  const hit = await chat(clientA, { system, prompt });
  assertStatus(hit, 'HIT', await stats(), 'the hit that metrics count');

  let text = '';
  let res;
  const savedRe = /^promptcache_\w*saved\w*\{[^}]*model="gpt-4o-mini"[^}]*\}\s+([0-9.eE+-]+)/m;
  for (let i = 0; i < 15; i++) { // counters may be flushed on a ~1 s period
    res = await fetch(`${env.proxy.url}/metrics`);
    text = await res.text();
    const m = savedRe.exec(text);
    if (res.status === 200 && m && Number(m[1]) > 0) break;
    await sleep(200);
  }
  assert.equal(res.status, 200, text.slice(0, 2000));
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  assert.match(text, /^promptcache_requests_total(\{[^}]*\})?\s+\d/m, `promptcache_requests_total:\n${text.slice(0, 3000)}`);
  const m = savedRe.exec(text);
  assert.ok(m && Number(m[1]) > 0, `a dollars-saved series labelled model="gpt-4o-mini" with a value > 0:\n${text.slice(0, 3000)}`);

  const st = await fetch(`${env.proxy.url}/promptcache/stats`);
  const body = await st.text();
  assert.equal(st.status, 200, body);
  assert.match(st.headers.get('content-type') ?? '', /application\/json/);
  let json;
  assert.doesNotThrow(() => { json = JSON.parse(body); }, body);
  assert.equal(typeof json, 'object');

  const hz = await fetch(`${env.proxy.url}/healthz`);
  await hz.arrayBuffer();
  assert.equal(hz.status, 200);
});

// ---------------------------------------------------------------- last: stop and check secrecy

ptest('SIGTERM => exit 0; no API key in the --db directory, the access log or the proxy output', async () => {
  await env.proxy.stop(); // throws unless exit code 0 within 10 s
  assert.ok(fs.existsSync(env.proxy.accessLog) && fs.statSync(env.proxy.accessLog).size > 0,
    `the access log ${env.proxy.accessLog} was written`);
  for (const secret of [TENANT_A_OPENAI, TENANT_B_OPENAI]) {
    const hits = filesContaining([env.proxy.dbDir, env.proxy.accessLog], secret);
    assert.deepEqual(hits, [], `files containing ${secret}: ${hits.join(', ')}`);
    // Its own logs (what a service manager would keep) must not carry keys either.
    assert.ok(!env.proxy.out.stdout.includes(secret) && !env.proxy.out.stderr.includes(secret),
      `the proxy printed ${secret} on stdout/stderr`);
  }
});
