// A fake paid model backend for the SDK end-to-end tests (node:http, no deps).
//
// Speaks the OpenAI (/v1/chat/completions, /v1/completions, /v1/models) and
// Anthropic (/v1/messages, /v1/messages/count_tokens, /v1/models) wire formats
// closely enough that the official SDKs parse everything it sends.
//
// Answers are deterministic: `Answer #<n> from <model> to: <last user text>`,
// where n is this stub's call counter (every request under /v1/ counts), so a
// test tells a fresh upstream answer (new n) from a cached one (old n).
//
// Special prompts (anywhere in the last user text):
//   ABORT_MIDSTREAM  streaming: headers + two content chunks, then the socket is
//                    destroyed without a terminator. Non-streaming: headers and
//                    half of the body, then the socket is destroyed.
//   RATE_LIMIT_ONCE  the first call with a given (path, model, text) answers 429
//                    with `retry-after: 0`; the next one answers normally.
//   SLOW_ANSWER      waits 300 ms before answering.
// Model `no-such-model` answers 404 in the provider's error format.
//
// Test endpoints: GET /__stats, POST /__reset.
//
// Usage: node stub_upstream.mjs [--port N] [--exit-on-stdin-close]   (port 0 = a free port)
// Prints `stub listening on http://127.0.0.1:PORT` when ready.

import http from 'node:http';

const CREATED_BASE = 1767225600; // 2026-01-01T00:00:00Z: fixed, so answers are deterministic
const SLOW_MS = 300;

const MODELS = [
  'gpt-4o-mini',
  'gpt-4o',
  'gpt-4.1-mini',
  'gpt-3.5-turbo-instruct',
  'claude-haiku-4-5-20251001',
  'claude-3-5-haiku-20241022',
  'claude-sonnet-4-20250514',
];

let state;
function resetState() {
  state = {
    calls: 0,
    by_path: {},
    by_model: {},
    last_headers: {},
    last_body: null,
    auth_log: [], // [{n, method, path, authorization, x_api_key, anthropic_version}]
    rate_limited: new Set(),
  };
}
resetState();

// ---------------------------------------------------------------- helpers

function countTokens(text) {
  return Math.max(1, Math.ceil(String(text).length / 4));
}

function partText(content) {
  if (content == null) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (typeof p === 'string' ? p : p && typeof p.text === 'string' ? p.text : ''))
      .join('');
  }
  return '';
}

function lastUserText(messages) {
  if (!Array.isArray(messages)) return '';
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m && m.role === 'user') return partText(m.content);
  }
  return '';
}

function allText(messages) {
  if (!Array.isArray(messages)) return '';
  return messages.map((m) => (m ? `${m.role}: ${partText(m.content)}` : '')).join('\n');
}

function promptText(prompt) {
  if (typeof prompt === 'string') return prompt;
  if (Array.isArray(prompt)) {
    const last = prompt[prompt.length - 1];
    return typeof last === 'string' ? last : '';
  }
  return '';
}

// Splits text into stream pieces of one word each (with its trailing space).
function pieces(text) {
  const out = text.match(/\S+\s*|\s+/g) || [];
  return out.length ? out : [''];
}

// The answer for one call, cut to max_tokens (4 chars a token) when given.
function makeAnswer(n, model, userText, maxTokens) {
  let text = `Answer #${n} from ${model} to: ${userText}`;
  let truncated = false;
  if (Number.isInteger(maxTokens) && maxTokens > 0 && countTokens(text) > maxTokens) {
    text = text.slice(0, maxTokens * 4);
    truncated = true;
  }
  return { text, truncated, completionTokens: countTokens(text) };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function sendJson(res, status, body, extraHeaders = {}) {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': data.length,
    ...extraHeaders,
  });
  res.end(data);
}

function openaiError(res, status, message, type, param = null, code = null, extraHeaders = {}) {
  sendJson(res, status, { error: { message, type, param, code } }, {
    'x-request-id': `req_stub_${state.calls}`,
    ...extraHeaders,
  });
}

function anthropicError(res, status, type, message, extraHeaders = {}) {
  sendJson(res, status, { type: 'error', error: { type, message } }, {
    'request-id': `req_stub_${state.calls}`,
    ...extraHeaders,
  });
}

function sseHeaders(res, extra = {}) {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    ...extra,
  });
}

function writeAsync(res, chunk) {
  return new Promise((resolve) => {
    if (!res.write(chunk)) res.once('drain', resolve);
    else resolve();
  });
}

// Flushes what was written, then kills the connection without a terminator.
async function abortConnection(res) {
  await new Promise((r) => setTimeout(r, 50));
  res.socket?.destroy();
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function recordCall(req, path, model, body) {
  state.calls += 1;
  state.by_path[path] = (state.by_path[path] || 0) + 1;
  if (model) state.by_model[model] = (state.by_model[model] || 0) + 1;
  state.last_headers = { ...req.headers };
  state.last_body = body ?? null;
  state.auth_log.push({
    n: state.calls,
    method: req.method,
    path,
    model: model ?? null,
    authorization: req.headers.authorization ?? null,
    x_api_key: req.headers['x-api-key'] ?? null,
    anthropic_version: req.headers['anthropic-version'] ?? null,
  });
  if (state.auth_log.length > 500) state.auth_log.shift();
  return state.calls;
}

// Returns true (and has answered 429) for the first call with this key.
function rateLimitOnce(path, model, text) {
  if (!text.includes('RATE_LIMIT_ONCE')) return false;
  const key = `${path}\u0000${model}\u0000${text}`;
  if (state.rate_limited.has(key)) return false;
  state.rate_limited.add(key);
  return true;
}

// ---------------------------------------------------------------- OpenAI

function openaiAuthOk(req, res) {
  const auth = req.headers.authorization;
  if (!auth || !/^Bearer \S+/.test(auth)) {
    openaiError(
      res, 401,
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
      'invalid_request_error', null, null);
    return false;
  }
  return true;
}

function openaiUsage(promptTokens, completionTokens) {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

async function handleChat(req, res, body, n) {
  const model = body.model;
  const messages = body.messages;
  const userText = lastUserText(messages);
  if (rateLimitOnce('/v1/chat/completions', model, userText)) {
    return openaiError(res, 429,
      `Rate limit reached for ${model} in organization org-stub on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 0s.`,
      'requests', null, 'rate_limit_exceeded', { 'retry-after': '0', 'x-ratelimit-remaining-requests': '0' });
  }
  if (userText.includes('SLOW_ANSWER')) await sleep(SLOW_MS);

  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  const ans = makeAnswer(n, model, userText, maxTokens);
  const promptTokens = countTokens(allText(messages)) + 7;
  const finish = ans.truncated ? 'length' : 'stop';
  const id = `chatcmpl-stub${String(n).padStart(6, '0')}`;
  const created = CREATED_BASE + n;
  const headers = { 'x-request-id': `req_stub_${n}`, 'openai-processing-ms': '12' };

  if (!body.stream) {
    if (userText.includes('ABORT_MIDSTREAM')) {
      const full = JSON.stringify({ id, object: 'chat.completion', choices: [] }) + ' '.repeat(64);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(full), ...headers });
      await writeAsync(res, full.slice(0, Math.floor(full.length / 2)));
      return abortConnection(res);
    }
    return sendJson(res, 200, {
      id,
      object: 'chat.completion',
      created,
      model,
      choices: [{
        index: 0,
        message: { role: 'assistant', content: ans.text, refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: finish,
      }],
      usage: openaiUsage(promptTokens, ans.completionTokens),
      service_tier: 'default',
      system_fingerprint: 'fp_stub',
    }, headers);
  }

  const includeUsage = !!(body.stream_options && body.stream_options.include_usage);
  const chunk = (choices, usage) => {
    const c = { id, object: 'chat.completion.chunk', created, model, service_tier: 'default', system_fingerprint: 'fp_stub', choices };
    if (includeUsage) c.usage = usage ?? null;
    return `data: ${JSON.stringify(c)}\n\n`;
  };
  sseHeaders(res, headers);
  const parts = pieces(ans.text);
  if (userText.includes('ABORT_MIDSTREAM')) {
    await writeAsync(res, chunk([{ index: 0, delta: { role: 'assistant', content: parts[0], refusal: null }, logprobs: null, finish_reason: null }]));
    await writeAsync(res, chunk([{ index: 0, delta: { content: parts[1] ?? '' }, logprobs: null, finish_reason: null }]));
    return abortConnection(res);
  }
  await writeAsync(res, chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }]));
  for (const p of parts) {
    await writeAsync(res, chunk([{ index: 0, delta: { content: p }, logprobs: null, finish_reason: null }]));
  }
  await writeAsync(res, chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finish }]));
  if (includeUsage) await writeAsync(res, chunk([], openaiUsage(promptTokens, ans.completionTokens)));
  await writeAsync(res, 'data: [DONE]\n\n');
  res.end();
}

async function handleCompletions(req, res, body, n) {
  const model = body.model;
  const userText = promptText(body.prompt);
  if (rateLimitOnce('/v1/completions', model, userText)) {
    return openaiError(res, 429,
      `Rate limit reached for ${model} in organization org-stub on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 0s.`,
      'requests', null, 'rate_limit_exceeded', { 'retry-after': '0' });
  }
  if (userText.includes('SLOW_ANSWER')) await sleep(SLOW_MS);
  const ans = makeAnswer(n, model, userText, body.max_tokens ?? 16 * 4);
  const promptTokens = countTokens(userText);
  const finish = ans.truncated ? 'length' : 'stop';
  const id = `cmpl-stub${String(n).padStart(6, '0')}`;
  const created = CREATED_BASE + n;
  const headers = { 'x-request-id': `req_stub_${n}` };
  const usage = { prompt_tokens: promptTokens, completion_tokens: ans.completionTokens, total_tokens: promptTokens + ans.completionTokens };

  if (!body.stream) {
    if (userText.includes('ABORT_MIDSTREAM')) {
      const full = JSON.stringify({ id, object: 'text_completion', choices: [] }) + ' '.repeat(64);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(full), ...headers });
      await writeAsync(res, full.slice(0, Math.floor(full.length / 2)));
      return abortConnection(res);
    }
    return sendJson(res, 200, {
      id,
      object: 'text_completion',
      created,
      model,
      system_fingerprint: 'fp_stub',
      choices: [{ text: ans.text, index: 0, logprobs: null, finish_reason: finish }],
      usage,
    }, headers);
  }

  const includeUsage = !!(body.stream_options && body.stream_options.include_usage);
  const chunk = (choices, u) => {
    const c = { id, object: 'text_completion', created, model, system_fingerprint: 'fp_stub', choices };
    if (includeUsage) c.usage = u ?? null;
    return `data: ${JSON.stringify(c)}\n\n`;
  };
  sseHeaders(res, headers);
  const parts = pieces(ans.text);
  if (userText.includes('ABORT_MIDSTREAM')) {
    await writeAsync(res, chunk([{ text: parts[0], index: 0, logprobs: null, finish_reason: null }]));
    await writeAsync(res, chunk([{ text: parts[1] ?? '', index: 0, logprobs: null, finish_reason: null }]));
    return abortConnection(res);
  }
  for (const p of parts) {
    await writeAsync(res, chunk([{ text: p, index: 0, logprobs: null, finish_reason: null }]));
  }
  await writeAsync(res, chunk([{ text: '', index: 0, logprobs: null, finish_reason: finish }]));
  if (includeUsage) await writeAsync(res, chunk([], usage));
  await writeAsync(res, 'data: [DONE]\n\n');
  res.end();
}

// ---------------------------------------------------------------- Anthropic

// The key may come as `x-api-key` (the classic header, curl, SDKs before
// 1.0) or as `Authorization: Bearer` (what @anthropic-ai/sdk >= 1.0 sends with
// API version 2026-10-21). Either is accepted; neither is a 401.
function anthropicHeadersOk(req, res) {
  const key = req.headers['x-api-key'];
  const auth = req.headers.authorization;
  if (!key && !(auth && /^Bearer \S+/.test(auth))) {
    anthropicError(res, 401, 'authentication_error', 'x-api-key header is required');
    return false;
  }
  if (!req.headers['anthropic-version']) {
    anthropicError(res, 400, 'invalid_request_error', 'anthropic-version: header is required');
    return false;
  }
  return true;
}

function anthropicValidate(res, body, needMaxTokens = true) {
  if (typeof body.model !== 'string' || !body.model) {
    anthropicError(res, 400, 'invalid_request_error', 'model: Field required');
    return false;
  }
  if (needMaxTokens && body.max_tokens == null) {
    anthropicError(res, 400, 'invalid_request_error', 'max_tokens: Field required');
    return false;
  }
  if (!Array.isArray(body.messages)) {
    anthropicError(res, 400, 'invalid_request_error', 'messages: Field required');
    return false;
  }
  if (body.messages.length === 0) {
    anthropicError(res, 400, 'invalid_request_error', 'messages: at least one message is required');
    return false;
  }
  return true;
}

function systemText(system) {
  return partText(system);
}

async function handleMessages(req, res, body, n) {
  const model = body.model;
  const userText = lastUserText(body.messages);
  if (rateLimitOnce('/v1/messages', model, userText)) {
    return anthropicError(res, 429, 'rate_limit_error',
      'This request would exceed the rate limit for your organization of 3 requests per minute.',
      { 'retry-after': '0' });
  }
  if (userText.includes('SLOW_ANSWER')) await sleep(SLOW_MS);
  const ans = makeAnswer(n, model, userText, body.max_tokens);
  const inputTokens = countTokens(systemText(body.system) + allText(body.messages)) + 5;
  const stopReason = ans.truncated ? 'max_tokens' : 'end_turn';
  const id = `msg_stub${String(n).padStart(20, '0')}`;
  const headers = { 'request-id': `req_stub_${n}` };
  const usage = {
    input_tokens: inputTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    output_tokens: ans.completionTokens,
    service_tier: 'standard',
  };

  if (!body.stream) {
    if (userText.includes('ABORT_MIDSTREAM')) {
      const full = JSON.stringify({ id, type: 'message', content: [] }) + ' '.repeat(64);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(full), ...headers });
      await writeAsync(res, full.slice(0, Math.floor(full.length / 2)));
      return abortConnection(res);
    }
    return sendJson(res, 200, {
      id,
      type: 'message',
      role: 'assistant',
      model,
      content: [{ type: 'text', text: ans.text }],
      stop_reason: stopReason,
      stop_sequence: null,
      usage,
    }, headers);
  }

  const ev = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  sseHeaders(res, headers);
  await writeAsync(res, ev('message_start', {
    message: {
      id, type: 'message', role: 'assistant', model, content: [],
      stop_reason: null, stop_sequence: null,
      usage: { ...usage, output_tokens: 1 },
    },
  }));
  await writeAsync(res, ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }));
  await writeAsync(res, ev('ping', {}));
  const parts = pieces(ans.text);
  if (userText.includes('ABORT_MIDSTREAM')) {
    await writeAsync(res, ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: parts[0] } }));
    await writeAsync(res, ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: parts[1] ?? '' } }));
    return abortConnection(res);
  }
  for (const p of parts) {
    await writeAsync(res, ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: p } }));
  }
  await writeAsync(res, ev('content_block_stop', { index: 0 }));
  await writeAsync(res, ev('message_delta', {
    delta: { stop_reason: stopReason, stop_sequence: null },
    usage: { output_tokens: ans.completionTokens },
  }));
  await writeAsync(res, ev('message_stop', {}));
  res.end();
}

// ---------------------------------------------------------------- server

function modelList(req) {
  const created = CREATED_BASE - 86400;
  if (req.headers['anthropic-version']) {
    const data = MODELS.filter((m) => m.startsWith('claude')).map((id) => ({
      type: 'model', id, display_name: id, created_at: new Date(created * 1000).toISOString(),
    }));
    return { data, has_more: false, first_id: data[0].id, last_id: data[data.length - 1].id };
  }
  return {
    object: 'list',
    data: MODELS.map((id) => ({ id, object: 'model', created, owned_by: id.startsWith('claude') ? 'anthropic' : 'system' })),
  };
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://stub');
  const path = url.pathname;

  if (path === '/__stats' && req.method === 'GET') {
    return sendJson(res, 200, {
      calls: state.calls,
      by_path: state.by_path,
      by_model: state.by_model,
      last_headers: state.last_headers,
      last_body: state.last_body,
      auth_log: state.auth_log,
    });
  }
  if (path === '/__reset' && req.method === 'POST') {
    resetState();
    return sendJson(res, 200, { ok: true });
  }

  const raw = await readBody(req);
  if (!path.startsWith('/v1/')) {
    return openaiError(res, 404, `Invalid URL (${req.method} ${path})`, 'invalid_request_error');
  }

  const isAnthropic = path === '/v1/messages' || path.startsWith('/v1/messages/');
  let body = null;
  if (req.method === 'POST') {
    try {
      body = raw.length ? JSON.parse(raw.toString('utf8')) : {};
    } catch (e) {
      recordCall(req, path, null, null);
      if (isAnthropic) return anthropicError(res, 400, 'invalid_request_error', 'There was an error parsing the body of your request.');
      return openaiError(res, 400,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.",
        'invalid_request_error');
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) body = {};
  }
  const model = body && typeof body.model === 'string' ? body.model : null;
  const n = recordCall(req, path, model, body);

  if (isAnthropic) {
    if (!anthropicHeadersOk(req, res)) return;
    if (path === '/v1/messages' && req.method === 'POST') {
      if (!anthropicValidate(res, body)) return;
      if (model === 'no-such-model') return anthropicError(res, 404, 'not_found_error', `model: ${model}`);
      return handleMessages(req, res, body, n);
    }
    if (path === '/v1/messages/count_tokens' && req.method === 'POST') {
      if (!anthropicValidate(res, body, false)) return;
      if (model === 'no-such-model') return anthropicError(res, 404, 'not_found_error', `model: ${model}`);
      return sendJson(res, 200, { input_tokens: countTokens(systemText(body.system) + allText(body.messages)) + 5 });
    }
    return anthropicError(res, 404, 'not_found_error', 'Not Found');
  }

  if (path === '/v1/models' && req.method === 'GET') {
    if (req.headers['anthropic-version']) {
      if (!anthropicHeadersOk(req, res)) return;
    } else if (!openaiAuthOk(req, res)) return;
    return sendJson(res, 200, modelList(req), { 'x-request-id': `req_stub_${n}` });
  }

  if (!openaiAuthOk(req, res)) return;
  if ((path === '/v1/chat/completions' || path === '/v1/completions') && req.method === 'POST') {
    if (typeof body.model !== 'string' || !body.model) {
      return openaiError(res, 400, "you must provide a model parameter", 'invalid_request_error', null, null);
    }
    if (path === '/v1/chat/completions') {
      if (!Array.isArray(body.messages)) {
        return openaiError(res, 400, "Missing required parameter: 'messages'.", 'invalid_request_error', 'messages', 'missing_required_parameter');
      }
      if (body.messages.length === 0) {
        return openaiError(res, 400,
          "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
          'invalid_request_error', 'messages', 'empty_array');
      }
    } else if (body.prompt == null) {
      return openaiError(res, 400, "Missing required parameter: 'prompt'.", 'invalid_request_error', 'prompt', 'missing_required_parameter');
    }
    if (model === 'no-such-model') {
      return openaiError(res, 404, `The model \`${model}\` does not exist`, 'invalid_request_error', null, 'model_not_found');
    }
    if (path === '/v1/chat/completions') return handleChat(req, res, body, n);
    return handleCompletions(req, res, body, n);
  }
  return openaiError(res, 404, `Invalid URL (${req.method} ${path})`, 'invalid_request_error');
}

const portArg = process.argv.indexOf('--port');
const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 0;

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    process.stderr.write(`stub: ${req.method} ${req.url}: ${err && err.stack || err}\n`);
    if (!res.headersSent) openaiError(res, 500, 'stub internal error', 'server_error');
    else res.destroy();
  });
});
server.keepAliveTimeout = 30_000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`stub listening on http://127.0.0.1:${server.address().port}\n`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// The test harness keeps a pipe on stdin open: exit when the harness goes away.
if (process.argv.includes('--exit-on-stdin-close')) {
  process.stdin.on('end', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
}
