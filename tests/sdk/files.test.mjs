// The official OpenAI Node SDK (npm `openai`, pinned in package.json) against
// the running stack, used the way a user would: `new OpenAI({apiKey, baseURL})`.
// run.sh starts the stack and passes, in the environment:
//   FILES_API_BASE_URL       http://127.0.0.1:PORT/v1
//   FILES_API_KEY            account sdk-main, scopes '*'
//   FILES_API_KEY_READ_ONLY  account sdk-main, scopes 'files.read' (no inference scope)
//   FILES_API_KEY_REVOKED    account sdk-main, revoked
//   FILES_API_KEY_OTHER      account sdk-other, scopes 'inference.*'
//   FILES_API_MAX_FILE_BYTES the stack's max_file_bytes
//   FILES_API_TMP            a scratch directory
// Every client has maxRetries: 0 so a 5xx shows up as the failure it is
// instead of being retried.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import OpenAI, {
  toFile,
  toStreamingFile,
  APIError,
  NotFoundError,
  AuthenticationError,
  PermissionDeniedError,
  BadRequestError,
} from 'openai';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run tests/sdk/run.sh)`);
  return v;
};
const baseURL = env('FILES_API_BASE_URL');
const MAX_FILE_BYTES = Number(env('FILES_API_MAX_FILE_BYTES'));
const scratch = fs.mkdtempSync(path.join(env('FILES_API_TMP'), 'sdk-'));

const client = (apiKey = env('FILES_API_KEY'), extra = {}) =>
  new OpenAI({ apiKey, baseURL, maxRetries: 0, timeout: 60_000, ...extra });
const openai = client();

// ---------------------------------------------------------------- helpers

const batchLine = (customId, content = 'hello') =>
  JSON.stringify({
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content }] },
  });
let seq = 0;
const batchJsonl = (n, tag = 'req') => {
  const run = `${tag}-${process.pid}-${++seq}`;
  return Buffer.from(Array.from({ length: n }, (_, i) => batchLine(`${run}-${i}`)).join('\n') + '\n');
};
const writeScratch = (name, bytes) => {
  const p = path.join(scratch, name);
  fs.writeFileSync(p, bytes);
  return p;
};
const upload = async (bytes, name = 'requests.jsonl', c = openai) =>
  c.files.create({ file: await toFile(bytes, name), purpose: 'batch' });
const download = async (id, c = openai) => Buffer.from(await (await c.files.content(id)).arrayBuffer());
const nowSec = () => Math.floor(Date.now() / 1000);

function assertFileObject(f, { bytes, filename }) {
  assert.match(f.id, /^file_[A-Za-z0-9_-]+$/);
  assert.equal(f.object, 'file');
  assert.equal(f.bytes, bytes);
  assert.equal(f.filename, filename);
  assert.equal(f.purpose, 'batch');
  assert.equal(f.status, 'processed');
  assert.equal(f.expires_at, null);
  assert.ok(Number.isInteger(f.created_at) && Math.abs(f.created_at - nowSec()) < 300, `created_at ${f.created_at}`);
}

// Runs fn, which must throw an APIError of class Cls; checks what the SDK
// exposes (status, class, err.code, err.error, err.param, err.type, requestID)
// and returns the error for more checks.
async function expectApiError(fn, Cls, { status, code, param, type = 'invalid_request_error' }) {
  let err;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected ${Cls.name}, but the call succeeded`);
  assert.ok(err instanceof APIError, `expected an APIError, got ${err?.constructor?.name}: ${err?.message}`);
  assert.ok(err instanceof Cls, `expected ${Cls.name}, got ${err.constructor.name} (status ${err.status}): ${err.message}`);
  assert.equal(err.status, status);
  assert.equal(err.code, code, `err.code: ${JSON.stringify(err.error)}`);
  assert.equal(err.error?.code, code);
  assert.equal(typeof err.error?.message, 'string');
  assert.ok(err.error.message.length > 0);
  assert.ok(err.message.includes(err.error.message), `err.message ${JSON.stringify(err.message)}`);
  assert.equal(err.type, type);
  if (param !== undefined) assert.equal(err.param, param, `err.param: ${JSON.stringify(err.error)}`);
  assert.ok(typeof err.requestID === 'string' && err.requestID.length > 0, 'x-request-id reaches err.requestID');
  return err;
}

// A fetch that records what the SDK hands to it, then sends it unchanged.
// (Before its first FormData upload the SDK probes the fetch with a `data:`
// URL; only requests to the service are recorded.)
function recordingFetch(log) {
  return async (url, init = {}) => {
    if (String(url).startsWith('http')) log.push({ url: String(url), init });
    return fetch(url, init);
  };
}

// ---------------------------------------------------------------- uploads

test('files.create from fs.createReadStream: streamed (chunked, no Content-Length), file part first', async () => {
  const bytes = batchJsonl(3, 'stream');
  const p = writeScratch('stream-upload.jsonl', bytes);
  const calls = [];
  const c = client(undefined, { fetch: recordingFetch(calls) });
  const f = await c.files.create({ file: fs.createReadStream(p), purpose: 'batch' });
  assertFileObject(f, { bytes: bytes.length, filename: 'stream-upload.jsonl' });

  // What the SDK sent: a ReadableStream body (undici sends it chunked), no Content-Length.
  assert.equal(calls.length, 1);
  const { init } = calls[0];
  const headers = new Headers(init.headers);
  assert.ok(init.body instanceof ReadableStream, `body is ${init.body?.constructor?.name}`);
  assert.equal(init.duplex, 'half');
  assert.equal(headers.get('content-length'), null);
  assert.match(headers.get('content-type'), /^multipart\/form-data; boundary=openai-/);

  assert.deepEqual(await download(f.id), bytes);
});

test('files.create from toFile(Buffer, name): FormData with Content-Length, purpose first', async () => {
  const bytes = batchJsonl(2, 'tofile');
  const calls = [];
  const c = client(undefined, { fetch: recordingFetch(calls) });
  const f = await c.files.create({ purpose: 'batch', file: await toFile(bytes, 'name.jsonl') });
  assertFileObject(f, { bytes: bytes.length, filename: 'name.jsonl' });
  assert.ok(calls[0].init.body instanceof FormData, `body is ${calls[0].init.body?.constructor?.name}`);
  assert.deepEqual([...calls[0].init.body.keys()], ['purpose', 'file']);
  assert.deepEqual(await download(f.id), bytes);
});

test('files.create with a larger streamed file (many chunks) stores it byte for byte', async () => {
  // ~4 MB, lines of varying length with non-ASCII text, CRLF on some lines, no final newline.
  const lines = [];
  let size = 0;
  for (let i = 0; size < 4 * 1024 * 1024; i++) {
    let line = batchLine(`big-${process.pid}-${i}`, `ligne ${i} é 漢字 🙂 ${'x'.repeat(i % 997)}`);
    if (i % 7 === 0) line += '\r';
    lines.push(line);
    size += Buffer.byteLength(line) + 1;
  }
  const bytes = Buffer.from(lines.join('\n'));
  const p = writeScratch('big.jsonl', bytes);
  const f = await openai.files.create({ file: fs.createReadStream(p, { highWaterMark: 16 * 1024 }), purpose: 'batch' });
  assertFileObject(f, { bytes: bytes.length, filename: 'big.jsonl' });
  assert.deepEqual(await download(f.id), bytes);
});

test('raw chunked upload built with node:http (Transfer-Encoding: chunked, odd chunk sizes)', async () => {
  const bytes = batchJsonl(5, 'rawchunk');
  const boundary = 'rawchunk' + Math.random().toString(36).slice(2);
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="raw-chunked.jsonl"\r\n` +
      'Content-Type: application/octet-stream\r\n\r\n'),
    bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const url = new URL(baseURL + '/files');
  const { status, headers, text } = await new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname, port: url.port, path: url.pathname, method: 'POST',
      headers: {
        Authorization: `Bearer ${env('FILES_API_KEY')}`,
        'Content-Type': `multipart/form-data; boundary=${boundary}`,
        'Transfer-Encoding': 'chunked',
      },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    assert.equal(req.getHeader('content-length'), undefined);
    // 1, 7, 13, 1, 7, 13, ... bytes per chunk: boundaries land everywhere.
    const sizes = [1, 7, 13, 101, 3];
    let off = 0;
    for (let i = 0; off < body.length; i++) {
      const n = sizes[i % sizes.length];
      req.write(body.subarray(off, off + n));
      off += n;
    }
    req.end();
  });
  assert.equal(status, 200, text);
  assert.match(headers['content-type'], /^application\/json/);
  const f = JSON.parse(text);
  assertFileObject(f, { bytes: bytes.length, filename: 'raw-chunked.jsonl' });
  assert.deepEqual(await download(f.id), bytes);
});

test('filenames as the user meant them: double quotes (toFile and streamed) and non-ASCII', async () => {
  const bytes = batchJsonl(1, 'names');
  // toFile -> undici FormData, which writes " as %22.
  const a = await upload(bytes, 'my "quoted" batch.jsonl');
  assert.equal(a.filename, 'my "quoted" batch.jsonl');
  // createReadStream -> the SDK's own streaming encoder, which also writes " as %22.
  const p = writeScratch('stream "quoted".jsonl', bytes);
  const b = await openai.files.create({ file: fs.createReadStream(p), purpose: 'batch' });
  assert.equal(b.filename, 'stream "quoted".jsonl');
  // UTF-8 sent raw in the header by both encoders.
  const c = await upload(bytes, 'données-été 漢字.jsonl');
  assert.equal(c.filename, 'données-été 漢字.jsonl');
  for (const f of [a, b, c]) {
    const again = await openai.files.retrieve(f.id);
    assert.equal(again.filename, f.filename);
    const res = await openai.files.content(f.id);
    const cd = res.headers.get('content-disposition') ?? '';
    assert.match(cd, /^attachment/);
    // No raw quote inside the quoted filename, and the UTF-8 name is recoverable from filename*.
    const star = /filename\*=UTF-8''([^;\s]+)/i.exec(cd);
    assert.ok(star, `filename* in ${cd}`);
    assert.equal(decodeURIComponent(star[1]), f.filename);
    const plain = /filename="((?:[^"\\]|\\.)*)"/.exec(cd);
    assert.ok(plain, `quoted filename in ${cd}`);
    await res.arrayBuffer();
  }
});

test("a backslash in the name: both SDK encoders give the basename (toStreamingFile sends it as %5C)", async () => {
  // The SDK's own streaming encoder (toStreamingFile, and any stream upload)
  // escapes " \ CR LF with encodeURIComponent: a name 'dir\a.jsonl' goes out
  // as filename="dir%5Ca.jsonl". Through toFile the SDK itself cuts at the
  // backslash and sends "a.jsonl". The user meant the same file either way.
  const bytes = batchJsonl(1, 'bslash');
  const viaFile = await upload(bytes, 'dir\\a.jsonl');
  assert.equal(viaFile.filename, 'a.jsonl');
  const viaStream = await openai.files.create({
    file: toStreamingFile(Readable.from([bytes]), 'dir\\a.jsonl'),
    purpose: 'batch',
  });
  assert.equal(viaStream.filename, 'a.jsonl', 'the %5C the SDK sent for a backslash was not decoded');
});

test('files.create with expires_after sends expires_after[anchor]/[seconds] and sets expires_at', async () => {
  const bytes = batchJsonl(1, 'expiry');
  const f = await openai.files.create({
    file: await toFile(bytes, 'expiring.jsonl'),
    purpose: 'batch',
    expires_after: { anchor: 'created_at', seconds: 3600 },
  });
  assert.equal(f.expires_at, f.created_at + 3600);
  assert.equal((await openai.files.retrieve(f.id)).expires_at, f.created_at + 3600);
});

// ---------------------------------------------------------------- read paths

test('files.retrieve returns the object files.create returned; withResponse exposes x-request-id', async () => {
  const bytes = batchJsonl(2, 'retrieve');
  const created = await upload(bytes, 'retrieve-me.jsonl');
  const { data, response } = await openai.files.retrieve(created.id).withResponse();
  assert.deepEqual(data, created);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type'), /^application\/json/);
  assert.ok(response.headers.get('x-request-id'));
  // The SDK's polling helper returns at once for a processed file.
  const waited = await openai.files.waitForProcessing(created.id, { pollInterval: 50, maxWait: 5000 });
  assert.equal(waited.status, 'processed');
});

test('files.content returns the exact bytes with Accept: application/binary', async () => {
  // Unusual but valid JSONL: CRLF, blank and whitespace-only lines, escapes, no final newline.
  const text =
    batchLine(`c-${process.pid}-1`, 'a\\"b') + '\r\n' +
    '\n' +
    '   \t\n' +
    JSON.stringify({ custom_id: `c-${process.pid}-2`, method: 'POST', url: '/v1/chat/completions',
      body: { s: '\u0000\u001f\u2028 \ud83d\ude00', n: -0.5e-3, a: [true, false, null, {}] } });
  const bytes = Buffer.from(text);
  const f = await upload(bytes, 'exact.jsonl');
  assert.equal(f.bytes, bytes.length);
  const calls = [];
  const c = client(undefined, { fetch: recordingFetch(calls) });
  const res = await c.files.content(f.id);
  assert.equal(new Headers(calls[0].init.headers).get('accept'), 'application/binary');
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/jsonl');
  assert.equal(res.headers.get('content-length'), String(bytes.length));
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes);
});

test('files.list auto-pagination (limit 2, more than two pages): every id once, newest first', async () => {
  // A fresh account would be cleaner, but the account already holds the files
  // of the tests above: page through all of them and check the new ones too.
  const mine = [];
  for (let i = 0; i < 5; i++) mine.push((await upload(batchJsonl(1, 'page'), `page-${i}.jsonl`)).id);

  const calls = [];
  const c = client(undefined, { fetch: recordingFetch(calls) });
  const seen = [];
  for await (const f of c.files.list({ limit: 2 })) {
    assert.equal(f.object, 'file');
    seen.push(f);
  }
  const ids = seen.map((f) => f.id);
  assert.equal(new Set(ids).size, ids.length, 'no id twice');
  assert.ok(calls.length > 2, `pages fetched: ${calls.length}`);
  assert.ok(calls.every((k) => new URL(k.url).searchParams.get('limit') === '2'));
  // desc: created_at never increases, and our five come newest first, at the top.
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i - 1].created_at >= seen[i].created_at);
  assert.deepEqual(ids.slice(0, 5), [...mine].reverse());

  // The same set as one big page, and the reverse order with order=asc.
  const all = await openai.files.list({ limit: 100 });
  assert.equal(all.has_more, false);
  assert.deepEqual(all.data.map((f) => f.id), ids);
  const asc = [];
  for await (const f of openai.files.list({ limit: 2, order: 'asc' })) asc.push(f.id);
  assert.deepEqual(asc, [...ids].reverse());

  // Page by page with the page API: has_more false on the last page.
  let page = await openai.files.list({ limit: 2 });
  let pages = 1;
  while (page.hasNextPage()) {
    assert.equal(page.has_more, true);
    page = await page.getNextPage();
    pages++;
  }
  assert.equal(page.has_more, false);
  assert.equal(pages, Math.ceil(ids.length / 2));

  // purpose filter
  const batchOnly = [];
  for await (const f of openai.files.list({ purpose: 'batch', limit: 50 })) batchOnly.push(f.id);
  assert.deepEqual(batchOnly, ids);
});

test('files.list query errors are BadRequestError VALIDATION_4002 naming the param', async () => {
  await expectApiError(() => openai.files.list({ limit: 0 }), BadRequestError,
    { status: 400, code: 'VALIDATION_4002', param: 'limit' });
  await expectApiError(() => openai.files.list({ limit: 101 }), BadRequestError,
    { status: 400, code: 'VALIDATION_4002', param: 'limit' });
  await expectApiError(() => openai.files.list({ order: 'sideways' }), BadRequestError,
    { status: 400, code: 'VALIDATION_4002', param: 'order' });
});

// ---------------------------------------------------------------- delete

test('files.delete, then retrieve/content/delete are NotFoundError INFERENCE_3302', async () => {
  const f = await upload(batchJsonl(1, 'del'), 'delete-me.jsonl');
  const next = await upload(batchJsonl(1, 'del-next'), 'after-deleted.jsonl'); // created right after f
  const res = await openai.files.delete(f.id);
  assert.deepEqual(res, { id: f.id, object: 'file', deleted: true });
  await expectApiError(() => openai.files.retrieve(f.id), NotFoundError, { status: 404, code: 'INFERENCE_3302' });
  await expectApiError(() => openai.files.content(f.id), NotFoundError, { status: 404, code: 'INFERENCE_3302' });
  await expectApiError(() => openai.files.delete(f.id), NotFoundError, { status: 404, code: 'INFERENCE_3302' });
  const listed = [];
  for await (const x of openai.files.list({ limit: 100 })) listed.push(x.id);
  assert.ok(!listed.includes(f.id), 'deleted file not listed');
  // Paging on from the deleted file still works (asc: the files created after it).
  const page = await openai.files.list({ after: f.id, order: 'asc', limit: 1 });
  assert.equal(page.data[0]?.id, next.id);
});

// ---------------------------------------------------------------- errors

test('unknown or malformed file id: NotFoundError INFERENCE_3302', async () => {
  await expectApiError(() => openai.files.retrieve('file_doesnotexist0000000000'), NotFoundError,
    { status: 404, code: 'INFERENCE_3302' });
  await expectApiError(() => openai.files.content('file-abc'), NotFoundError, { status: 404, code: 'INFERENCE_3302' });
  await expectApiError(() => openai.files.delete('nope'), NotFoundError, { status: 404, code: 'INFERENCE_3302' });
});

test("another account's file is NotFoundError INFERENCE_3302", async () => {
  const f = await upload(batchJsonl(1, 'iso'), 'isolated.jsonl');
  const other = client(env('FILES_API_KEY_OTHER'));
  await expectApiError(() => other.files.retrieve(f.id), NotFoundError, { status: 404, code: 'INFERENCE_3302' });
  await expectApiError(() => other.files.content(f.id), NotFoundError, { status: 404, code: 'INFERENCE_3302' });
  await expectApiError(() => other.files.delete(f.id), NotFoundError, { status: 404, code: 'INFERENCE_3302' });
  const ids = [];
  for await (const x of other.files.list()) ids.push(x.id);
  assert.ok(!ids.includes(f.id));
  assert.equal((await openai.files.retrieve(f.id)).id, f.id, 'still there for its owner');
});

test('bad, revoked and missing keys: AuthenticationError AUTH_1008 / AUTH_1007', async () => {
  const bad = client('sk-mel-thisisnotarealkey0000000000000000000000000000000');
  await expectApiError(() => bad.files.list(), AuthenticationError,
    { status: 401, code: 'AUTH_1008', type: 'authentication_error' });
  await expectApiError(async () => bad.files.create({ file: await toFile(batchJsonl(1), 'x.jsonl'), purpose: 'batch' }),
    AuthenticationError, { status: 401, code: 'AUTH_1008', type: 'authentication_error' });
  const revoked = client(env('FILES_API_KEY_REVOKED'));
  await expectApiError(() => revoked.files.retrieve('file_x'), AuthenticationError,
    { status: 401, code: 'AUTH_1008', type: 'authentication_error' });
  // No key at all: the SDK sends no Authorization when it is set to null.
  const none = client('unused', { defaultHeaders: { Authorization: null } });
  await expectApiError(() => none.files.list(), AuthenticationError,
    { status: 401, code: 'AUTH_1007', type: 'authentication_error' });
});

test("key without inference scope ('files.read'): PermissionDeniedError AUTH_1015", async () => {
  const ro = client(env('FILES_API_KEY_READ_ONLY'));
  const err = await expectApiError(() => ro.files.list(), PermissionDeniedError,
    { status: 403, code: 'AUTH_1015', type: 'permission_error' });
  assert.ok(err.error.details?.required_scope, `details.required_scope in ${JSON.stringify(err.error)}`);
  await expectApiError(async () => ro.files.create({ file: await toFile(batchJsonl(1), 'x.jsonl'), purpose: 'batch' }),
    PermissionDeniedError, { status: 403, code: 'AUTH_1015', type: 'permission_error' });
});

test('invalid JSONL (trailing comma on line 2): BadRequestError INFERENCE_3303 with line/column', async () => {
  const bytes = Buffer.from(batchLine(`bad-${process.pid}`) + '\n{"a":1,}\n');
  const err = await expectApiError(() => upload(bytes, 'bad.jsonl'), BadRequestError,
    { status: 400, code: 'INFERENCE_3303', param: 'file' });
  assert.equal(err.error.details?.line, 2, JSON.stringify(err.error));
  assert.equal(err.error.details?.column, 8, JSON.stringify(err.error)); // the '}' after the comma
  assert.match(err.error.message, /line 2/);
  // The same through the streaming encoder.
  const p = writeScratch('bad-stream.jsonl', bytes);
  const err2 = await expectApiError(() => openai.files.create({ file: fs.createReadStream(p), purpose: 'batch' }),
    BadRequestError, { status: 400, code: 'INFERENCE_3303', param: 'file' });
  assert.equal(err2.error.details?.line, 2);
});

test('duplicate custom_id on line 2: BadRequestError INFERENCE_3303 duplicate_custom_id', async () => {
  const line = batchLine(`dup-${process.pid}`);
  const err = await expectApiError(() => upload(Buffer.from(line + '\n' + line + '\n'), 'dup.jsonl'), BadRequestError,
    { status: 400, code: 'INFERENCE_3303', param: 'file' });
  assert.equal(err.error.details?.line, 2);
  assert.equal(err.error.details?.reason_code, 'duplicate_custom_id');
});

test("purpose 'fine-tune': BadRequestError VALIDATION_4007 param purpose; nothing stored", async () => {
  const before = (await openai.files.list({ limit: 100 })).data.length;
  await expectApiError(async () => openai.files.create({ file: await toFile(batchJsonl(1), 'ft.jsonl'), purpose: 'fine-tune' }),
    BadRequestError, { status: 400, code: 'VALIDATION_4007', param: 'purpose' });
  // purpose after the file (the order the streaming encoder uses when file comes first)
  const p = writeScratch('ft-stream.jsonl', batchJsonl(1));
  await expectApiError(() => openai.files.create({ file: fs.createReadStream(p), purpose: 'fine-tune' }),
    BadRequestError, { status: 400, code: 'VALIDATION_4007', param: 'purpose' });
  assert.equal((await openai.files.list({ limit: 100 })).data.length, before);
});

// A valid batch JSONL file of exactly n bytes (the last line padded to fit).
function batchFileOfSize(n, tag) {
  const lines = [];
  let size = 0;
  for (let i = 0; size < n - 4096; i++) {
    const l = batchLine(`${tag}-${process.pid}-${i}`, 'y'.repeat(900));
    lines.push(l);
    size += Buffer.byteLength(l) + 1;
  }
  const head = Buffer.from(lines.join('\n') + '\n');
  const pad = n - head.length - Buffer.byteLength(batchLine(`${tag}-${process.pid}-last`, '')) - 1;
  assert.ok(pad > 0);
  const bytes = Buffer.concat([head, Buffer.from(batchLine(`${tag}-${process.pid}-last`, 'z'.repeat(pad)) + '\n')]);
  assert.equal(bytes.length, n);
  return bytes;
}

test('file over max_file_bytes, streamed without Content-Length: 413 VALIDATION_4016 reaches the SDK', async () => {
  const p = writeScratch('too-big.jsonl', batchFileOfSize(MAX_FILE_BYTES + 1, 'huge'));
  const err = await expectApiError(() => openai.files.create({ file: fs.createReadStream(p), purpose: 'batch' }),
    APIError, { status: 413, code: 'VALIDATION_4016' });
  assert.equal(err.constructor, APIError, 'the SDK has no class for 413: a plain APIError');
  // The same with Content-Length (toFile -> FormData).
  await expectApiError(async () => upload(fs.readFileSync(p), 'too-big.jsonl'),
    APIError, { status: 413, code: 'VALIDATION_4016' });
  // Exactly at the limit is fine.
  const ok = batchFileOfSize(MAX_FILE_BYTES, 'limit');
  const f = await openai.files.create({ file: fs.createReadStream(writeScratch('at-limit.jsonl', ok)), purpose: 'batch' });
  assert.equal(f.bytes, ok.length);
  assert.deepEqual(await download(f.id), ok);
});
