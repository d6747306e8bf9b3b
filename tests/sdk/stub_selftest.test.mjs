// The stub upstream alone, driven by the official SDKs: proves that what the
// stub sends is what the real APIs send (as far as the SDKs can tell), so a
// failure in the proxy tests is the proxy's. Needs no proxy binary.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startStub, stubAnswer, TENANT_A_OPENAI, TENANT_A_ANTHROPIC } from './harness.mjs';

let stub;
let openai;
let anthropic;

before(async () => {
  stub = await startStub();
  openai = new OpenAI({ baseURL: stub.url + '/v1', apiKey: TENANT_A_OPENAI, maxRetries: 0, timeout: 10_000 });
  anthropic = new Anthropic({ baseURL: stub.url, apiKey: TENANT_A_ANTHROPIC, maxRetries: 0, timeout: 10_000 });
});

after(async () => {
  await stub?.stop();
});

test('stats and reset', async () => {
  await stub.reset();
  let s = await stub.stats();
  assert.equal(s.calls, 0);
  await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
  s = await stub.stats();
  assert.equal(s.calls, 1);
  assert.deepEqual(s.by_path, { '/v1/chat/completions': 1 });
  assert.deepEqual(s.by_model, { 'gpt-4o-mini': 1 });
  assert.equal(s.last_headers.authorization, `Bearer ${TENANT_A_OPENAI}`);
  assert.equal(s.auth_log.at(-1).authorization, `Bearer ${TENANT_A_OPENAI}`);
  await stub.reset();
  s = await stub.stats();
  assert.equal(s.calls, 0);
  assert.deepEqual(s.by_path, {});
});

test('openai chat: non-stream parses, deterministic answer and usage', async () => {
  const before = (await stub.stats()).calls;
  const { data, response } = await openai.chat.completions
    .create({ model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'Be terse.' }, { role: 'user', content: 'What is RocksDB?' }] })
    .withResponse();
  assert.equal(response.status, 200);
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.choices[0].message.content, stubAnswer(before + 1, 'gpt-4o-mini', 'What is RocksDB?'));
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.ok(data.usage.prompt_tokens > 0 && data.usage.completion_tokens > 0);
  assert.equal(data.usage.total_tokens, data.usage.prompt_tokens + data.usage.completion_tokens);
});

test('openai chat: stream with include_usage parses', async () => {
  const n = (await stub.stats()).calls + 1;
  const stream = await openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Stream me a sentence' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.choices[0]) {
      text += chunk.choices[0].delta.content ?? '';
      finish = chunk.choices[0].finish_reason ?? finish;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, stubAnswer(n, 'gpt-4o-mini', 'Stream me a sentence'));
  assert.equal(finish, 'stop');
  assert.ok(usage && usage.completion_tokens > 0, JSON.stringify(usage));
});

test('openai chat: stream helper finalChatCompletion parses', async () => {
  const n = (await stub.stats()).calls + 1;
  const runner = openai.chat.completions.stream({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Helper stream' }] });
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].message.content, stubAnswer(n, 'gpt-4o', 'Helper stream'));
  assert.equal(final.choices[0].finish_reason, 'stop');
});

test('openai chat: ABORT_MIDSTREAM makes the SDK iteration fail', async () => {
  const stream = await openai.chat.completions.create({
    model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'ABORT_MIDSTREAM please' }], stream: true,
  });
  let text = '';
  let finish = null;
  let threw = null;
  try {
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
  } catch (e) {
    threw = e;
  }
  assert.ok(threw || finish === null, `expected a failure, got finish ${finish}`);
  assert.ok(text.length > 0, 'two content chunks arrive before the abort');
  assert.equal(finish, null);
});

test('openai errors: 404 model, 429 once, 400 messages, 401 without key, invalid JSON', async () => {
  await assert.rejects(
    openai.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && /no-such-model/.test(e.message) && e.code === 'model_not_found');
  const msg = [{ role: 'user', content: 'RATE_LIMIT_ONCE selftest' }];
  await assert.rejects(openai.chat.completions.create({ model: 'gpt-4o-mini', messages: msg }),
    (e) => e instanceof OpenAI.RateLimitError && e.status === 429 && e.headers.get('retry-after') === '0');
  const ok = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: msg });
  assert.match(ok.choices[0].message.content, /RATE_LIMIT_ONCE selftest$/);
  // With retries, the SDK itself recovers (what the proxy must do for its clients).
  const retrying = new OpenAI({ baseURL: stub.url + '/v1', apiKey: TENANT_A_OPENAI, maxRetries: 2 });
  const before = (await stub.stats()).calls;
  const r = await retrying.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'RATE_LIMIT_ONCE retried' }] });
  assert.match(r.choices[0].message.content, /^Answer #\d+ /);
  assert.equal((await stub.stats()).calls - before, 2);

  await assert.rejects(openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [] }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && /messages/.test(e.error.message));
  const raw = await fetch(`${stub.url}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${TENANT_A_OPENAI}`, 'content-type': 'application/json' }, body: '{"model": "gpt-4o-mini"',
  });
  assert.equal(raw.status, 400);
  assert.equal(typeof (await raw.json()).error.message, 'string');
  const noKey = await fetch(`${stub.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
  });
  assert.equal(noKey.status, 401);
});

test('openai legacy completions and models', async () => {
  const n = (await stub.stats()).calls + 1;
  const c = await openai.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'Say hi' });
  assert.equal(c.object, 'text_completion');
  assert.equal(c.choices[0].text, stubAnswer(n, 'gpt-3.5-turbo-instruct', 'Say hi'));
  const stream = await openai.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'Say hi streamed', stream: true });
  let text = '';
  let finish = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.text ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, stubAnswer(n + 1, 'gpt-3.5-turbo-instruct', 'Say hi streamed'));
  assert.equal(finish, 'stop');
  const ids = [];
  for await (const m of openai.models.list()) ids.push(m.id);
  assert.ok(ids.includes('gpt-4o-mini'), ids.join(','));
});

test('anthropic: non-stream, stream events, MessageStream, count_tokens', async () => {
  const s0 = (await stub.stats()).calls;
  const { data: msg, response } = await anthropic.messages
    .create({ model: 'claude-haiku-4-5-20251001', max_tokens: 256, system: 'Be terse.', messages: [{ role: 'user', content: 'What is FAISS?' }] })
    .withResponse();
  assert.equal(response.status, 200);
  assert.equal(msg.content[0].text, stubAnswer(s0 + 1, 'claude-haiku-4-5-20251001', 'What is FAISS?'));
  assert.equal(msg.stop_reason, 'end_turn');
  assert.ok(msg.usage.input_tokens > 0 && msg.usage.output_tokens > 0);
  const s = await stub.stats();
  // @anthropic-ai/sdk >= 1.0 sends the key as a bearer token; older clients as x-api-key.
  assert.equal(s.last_headers.authorization, `Bearer ${TENANT_A_ANTHROPIC}`);
  assert.ok(s.last_headers['anthropic-version']);
  const classic = await fetch(`${stub.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': TENANT_A_ANTHROPIC },
    body: JSON.stringify({ model: 'claude-haiku-4-5-20251001', max_tokens: 64, messages: [{ role: 'user', content: 'classic' }] }),
  });
  assert.equal(classic.status, 200);
  assert.equal((await classic.json()).content[0].text, stubAnswer(s0 + 2, 'claude-haiku-4-5-20251001', 'classic'));
  assert.equal((await stub.stats()).last_headers['x-api-key'], TENANT_A_ANTHROPIC);

  const stream = await anthropic.messages.create({
    model: 'claude-haiku-4-5-20251001', max_tokens: 256, stream: true, messages: [{ role: 'user', content: 'Stream FAISS' }],
  });
  const types = [];
  let text = '';
  let stop = null;
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
    if (ev.type === 'message_delta') stop = ev.delta.stop_reason;
  }
  assert.equal(text, stubAnswer(s0 + 3, 'claude-haiku-4-5-20251001', 'Stream FAISS'));
  assert.equal(stop, 'end_turn');
  assert.equal(types[0], 'message_start');
  assert.equal(types.at(-1), 'message_stop');

  const ms = anthropic.messages.stream({ model: 'claude-haiku-4-5-20251001', max_tokens: 256, messages: [{ role: 'user', content: 'MessageStream FAISS' }] });
  const final = await ms.finalMessage();
  assert.equal(final.content[0].text, stubAnswer(s0 + 4, 'claude-haiku-4-5-20251001', 'MessageStream FAISS'));
  assert.equal(final.stop_reason, 'end_turn');
  assert.ok(final.usage.output_tokens > 1);

  const ct = await anthropic.messages.countTokens({ model: 'claude-haiku-4-5-20251001', messages: [{ role: 'user', content: 'count me' }] });
  assert.ok(ct.input_tokens > 0);
});

test('anthropic errors: 404 model, missing max_tokens, missing key/version, abort', async () => {
  await assert.rejects(
    anthropic.messages.create({ model: 'no-such-model', max_tokens: 16, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.NotFoundError && e.status === 404 && /no-such-model/.test(e.message));
  await assert.rejects(
    anthropic.messages.create({ model: 'claude-haiku-4-5-20251001', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.BadRequestError && e.status === 400 &&
      e.error?.type === 'error' && e.error?.error?.type === 'invalid_request_error' && /max_tokens/.test(e.error.error.message));
  const body = JSON.stringify({ model: 'claude-haiku-4-5-20251001', max_tokens: 16, messages: [{ role: 'user', content: 'x' }] });
  const noKey = await fetch(`${stub.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body });
  assert.equal(noKey.status, 401);
  assert.equal((await noKey.json()).error.type, 'authentication_error');
  const noVersion = await fetch(`${stub.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'k' }, body });
  assert.equal(noVersion.status, 400);

  const stream = await anthropic.messages.create({
    model: 'claude-haiku-4-5-20251001', max_tokens: 256, stream: true, messages: [{ role: 'user', content: 'ABORT_MIDSTREAM now' }],
  });
  let stop = null;
  let threw = null;
  try {
    for await (const ev of stream) if (ev.type === 'message_delta') stop = ev.delta.stop_reason;
  } catch (e) {
    threw = e;
  }
  assert.ok(threw, 'iteration throws on a cut connection');
  assert.equal(stop, null);
});

test('SLOW_ANSWER waits ~300 ms', async () => {
  const t0 = Date.now();
  await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'SLOW_ANSWER please' }] });
  assert.ok(Date.now() - t0 >= 290);
});
