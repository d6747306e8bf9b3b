// Helpers for the SDK end-to-end tests: start/stop the stub upstream and the
// proxy, read the stub's counters, format readable failure messages.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

// The SDKs read these from the environment; the tests set everything explicitly.
for (const k of Object.keys(process.env)) {
  if (/^(OPENAI|ANTHROPIC)_/.test(k)) delete process.env[k];
}

export const TENANT_A_OPENAI = 'sk-tenant-a-secret';
export const TENANT_B_OPENAI = 'sk-tenant-b-secret';
export const TENANT_A_ANTHROPIC = 'sk-ant-tenant-a-secret';
export const TENANT_B_ANTHROPIC = 'sk-ant-tenant-b-secret';

const STARTUP_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
const KEEP_OUTPUT = 64 * 1024;

// Every child still running when this process exits is killed, so a failed
// or interrupted test run leaves no stub or proxy behind.
const children = new Set();
function killChildren() {
  for (const p of children) {
    if (p.exitCode === null && p.signalCode === null) {
      try { p.kill('SIGKILL'); } catch { /* already gone */ }
    }
  }
}
process.on('exit', killChildren);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killChildren();
    process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
  });
}

// Spawns a process and resolves with the first stdout line matching `re`.
function spawnAndWaitFor(cmd, args, { env, re, name, stdin = 'ignore' }) {
  const proc = spawn(cmd, args, { env, stdio: [stdin, 'pipe', 'pipe'] });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  const out = { stdout: '', stderr: '' };
  const keep = (k, chunk) => {
    out[k] += chunk.toString('utf8');
    if (out[k].length > KEEP_OUTPUT) out[k] = out[k].slice(-KEEP_OUTPUT);
  };
  proc.stderr.on('data', (c) => keep('stderr', c));
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const ready = new Promise((resolve, reject) => {
    let buf = '';
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      proc.kill('SIGKILL');
      reject(new Error(`${name} did not print its listening line within ${STARTUP_TIMEOUT_MS} ms.\n` +
        `command: ${cmd} ${args.join(' ')}\nstdout:\n${out.stdout}\nstderr:\n${out.stderr}`));
    }, STARTUP_TIMEOUT_MS);
    proc.stdout.on('data', (c) => {
      keep('stdout', c);
      if (done) return;
      buf += c.toString('utf8');
      const m = buf.match(re);
      if (m) {
        done = true;
        clearTimeout(timer);
        resolve(m);
      }
    });
    proc.on('error', (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`${name} could not be started (${cmd}): ${err.message}`));
    });
    proc.on('exit', (code, signal) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`${name} exited (code ${code}, signal ${signal}) before it was ready.\n` +
        `command: ${cmd} ${args.join(' ')}\nstdout:\n${out.stdout}\nstderr:\n${out.stderr}`));
    });
  });
  return { proc, out, exited, ready };
}

// ---------------------------------------------------------------- stub

export async function startStub() {
  const { proc, out, exited, ready } = spawnAndWaitFor(
    // The stub gets a stdin pipe that stays open and exits when it closes.
    process.execPath, [path.join(HERE, 'stub_upstream.mjs'), '--exit-on-stdin-close'],
    { env: { ...process.env }, stdin: 'pipe', re: /stub listening on (http:\/\/127\.0\.0\.1:(\d+))/, name: 'stub upstream' });
  const m = await ready;
  const url = m[1];
  return {
    url,
    port: Number(m[2]),
    proc,
    out,
    stats: () => stubStats(url),
    reset: async () => {
      const r = await fetch(`${url}/__reset`, { method: 'POST' });
      if (!r.ok) throw new Error(`stub /__reset: HTTP ${r.status}`);
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}

export async function stubStats(stubUrl) {
  const r = await fetch(`${stubUrl}/__stats`);
  if (!r.ok) throw new Error(`stub /__stats: HTTP ${r.status}`);
  return r.json();
}

// ---------------------------------------------------------------- proxy

export function proxyBinary() {
  const bin = process.env.PROXY_BIN;
  if (!bin) throw new Error('PROXY_BIN is not set: run these tests through run_sdk_tests.sh <proxy-binary> <work-dir>');
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw new Error(`PROXY_BIN=${bin} does not exist or is not executable (has the proxy been built?)`);
  }
  return bin;
}

// Starts the proxy in front of the stub with a fresh --db directory and
// access log. The proxy's environment has no OPENAI_API_KEY/ANTHROPIC_API_KEY,
// so it must forward the client's own keys.
export async function startProxy(stubUrl, { extraArgs = [], env = {} } = {}) {
  const bin = proxyBinary();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'promptcache-sdk-'));
  const dbDir = path.join(root, 'db');
  fs.mkdirSync(dbDir);
  const accessLog = path.join(root, 'access.log');
  const args = [
    '--db', dbDir,
    '--listen', '127.0.0.1:0',
    '--openai-base-url', stubUrl,
    '--anthropic-base-url', stubUrl,
    '--access-log', accessLog,
    ...extraArgs,
  ];
  const procEnv = { ...process.env, NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost', ...env };
  for (const k of ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy']) {
    delete procEnv[k];
  }
  const { proc, out, exited, ready } = spawnAndWaitFor(bin, args, {
    env: procEnv,
    re: /promptcache-proxy listening on (http:\/\/127\.0\.0\.1:(\d+))/,
    name: 'promptcache-proxy',
  });
  const m = await ready;
  const proxy = {
    url: m[1],
    port: Number(m[2]),
    proc,
    out,
    root,
    dbDir,
    accessLog,
    args,
    exited,
    stopped: null, // {code, signal} once stopped
    // SIGTERM, wait for the exit, and throw unless it exited 0 within 10 s.
    async stop() {
      if (proxy.stopped) return proxy.stopped;
      if (proc.exitCode !== null || proc.signalCode !== null) {
        proxy.stopped = { code: proc.exitCode, signal: proc.signalCode };
        throw new Error(`promptcache-proxy had already exited (code ${proc.exitCode}, signal ${proc.signalCode}) before SIGTERM\n` +
          `stderr (tail):\n${tail(out.stderr)}`);
      }
      proc.kill('SIGTERM');
      let timer;
      const result = await Promise.race([
        exited,
        new Promise((r) => { timer = setTimeout(() => r(null), STOP_TIMEOUT_MS); }),
      ]);
      clearTimeout(timer);
      if (result === null) {
        proc.kill('SIGKILL');
        proxy.stopped = await exited;
        throw new Error(`promptcache-proxy did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM (killed)\n` +
          `stderr (tail):\n${tail(out.stderr)}`);
      }
      proxy.stopped = result;
      if (result.code !== 0) {
        throw new Error(`promptcache-proxy exited with code ${result.code}, signal ${result.signal} after SIGTERM (expected 0)\n` +
          `stderr (tail):\n${tail(out.stderr)}`);
      }
      return result;
    },
    // Kills without assertions (cleanup after a failure).
    async kill() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGKILL');
      await exited;
    },
  };
  return proxy;
}

// ---------------------------------------------------------------- environment per test file

// One stub and one proxy for a test file. `env.proxyError` holds the startup
// error (every test then fails with it rather than with a confusing TypeError).
// Fills `env` as it goes, so that stopEnv(env) cleans up after a failed start.
export async function startEnv(env = {}) {
  env.stub = null;
  env.proxy = null;
  env.stub = await startStub();
  env.proxy = await startProxy(env.stub.url);
  return env;
}

export async function stopEnv(env) {
  if (!env) return;
  let err = null;
  try {
    if (env.proxy && !env.proxy.stopped) await env.proxy.stop();
  } catch (e) {
    err = e;
  } finally {
    if (env.proxy) await env.proxy.kill();
    if (env.stub) await env.stub.stop();
    if (env.proxy && !process.env.KEEP_PROXY_DIRS) fs.rmSync(env.proxy.root, { recursive: true, force: true });
  }
  if (err) throw err;
}

// ---------------------------------------------------------------- assertions helpers

// Appends the proxy's state (and its stderr tail) to a failing test's error,
// so that a crash or a log line explains a "Connection error." from an SDK.
export async function annotate(err, env) {
  const p = env?.proxy;
  if (!p || !(err instanceof Error)) return err;
  // A connection error may arrive just before the exit is reported.
  await Promise.race([p.exited, sleep(300)]);
  const running = p.proc.exitCode === null && p.proc.signalCode === null;
  const state = running ? 'running' : `exited (code ${p.proc.exitCode}, signal ${p.proc.signalCode})`;
  const stderr = p.out.stderr.trim();
  let note = `\n  [proxy ${state}]`;
  if (stderr) note += `\n  [proxy stderr, tail]\n${tail(stderr, 1500).replace(/^/gm, '    ')}`;
  if (err.cause && typeof err.cause === 'object' && err.cause.message) note += `\n  [cause] ${err.cause.code ?? ''} ${err.cause.message}`;
  try {
    err.message += note;
  } catch { /* read-only message */ }
  return err;
}

// test() with a timeout whose failures carry the proxy's state.
export function makeTest(test, env, timeout = 30_000) {
  return (name, fn) => test(name, { timeout }, async (t) => {
    try {
      await fn(t);
    } catch (e) {
      throw await annotate(e, env);
    }
  });
}

export function tail(s, n = 4000) {
  return s.length > n ? '...' + s.slice(-n) : s;
}

// Response headers (a fetch Headers) as a plain object of the interesting ones.
export function pcHeaders(headers) {
  const o = {};
  for (const [k, v] of headers.entries()) {
    if (k.startsWith('x-promptcache') || k === 'content-type') o[k] = v;
  }
  return o;
}

// A compact description of a response + the stub's counters for messages.
export function describe(what, response, stats, extra = {}) {
  const s = stats
    ? { calls: stats.calls, by_path: stats.by_path, by_model: stats.by_model }
    : undefined;
  return `${what}\n  status: ${response?.status}\n  headers: ${JSON.stringify(response ? pcHeaders(response.headers) : null)}` +
    `\n  stub: ${JSON.stringify(s)}` +
    Object.entries(extra).map(([k, v]) => `\n  ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join('');
}

export function statusOf(response) {
  return response.headers.get('x-promptcache-status');
}

// Every file under dir (recursively), as paths.
export function listFiles(dir) {
  const out = [];
  const walk = (d) => {
    for (const ent of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, ent.name);
      if (ent.isDirectory()) walk(p);
      else if (ent.isFile()) out.push(p);
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}

// Files (under the given roots/files) whose bytes contain `needle`.
export function filesContaining(paths, needle) {
  const bytes = Buffer.from(needle, 'utf8');
  const hits = [];
  for (const p of paths) {
    const files = fs.existsSync(p) && fs.statSync(p).isDirectory() ? listFiles(p) : [p];
    for (const f of files) {
      if (!fs.existsSync(f)) continue;
      if (fs.readFileSync(f).includes(bytes)) hits.push(f);
    }
  }
  return hits;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The stub's answer text for call number n.
export function stubAnswer(n, model, userText) {
  return `Answer #${n} from ${model} to: ${userText}`;
}

// The "#n" in an answer text.
export function answerNumber(text) {
  const m = /^Answer #(\d+) /.exec(text ?? '');
  return m ? Number(m[1]) : null;
}
