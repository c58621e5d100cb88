// N clients at once, as a batch engine's fetch (undici) makes them: each
// uploads a small file, downloads it and lists a page. A GET whose kept
// connection the server closed meanwhile is sent again (twice at most), as HTTP clients
// do for idempotent requests; an upload never is. Prints one JSON line:
// {"ok": N, "<step>: <error>": count, ...}. Node's built-ins only.
//
//   node burst.mjs PORT KEY N TAG
const [, , port, key, n, tag] = process.argv;
const base = `http://127.0.0.1:${port}/v1`;
const auth = { Authorization: `Bearer ${key}` };
const line = (i) => JSON.stringify({ custom_id: `c${i}`, method: 'POST', url: '/v1/chat/completions',
                                     body: { pad: 'x'.repeat((i % 50) * 100) } });
const counts = {};
const bump = (k) => (counts[k] = (counts[k] || 0) + 1);

async function get(url) {
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await fetch(url, { headers: auth });
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`status ${r.status}`);
      return;
    } catch (e) {
      if (attempt >= 2 || e.cause?.code !== 'UND_ERR_SOCKET') throw e;
    }
  }
}

await Promise.all(Array.from({ length: Number(n) }, async (_, i) => {
  let step = 'upload';
  try {
    const form = new FormData();
    form.append('purpose', 'batch');
    form.append('file', new Blob([Array.from({ length: 50 }, (_, j) => line(j)).join('\n')]),
                `${tag}-${i}.jsonl`);
    const r = await fetch(`${base}/files`, { method: 'POST', headers: auth, body: form });
    const text = await r.text();
    if (r.status !== 200) throw new Error(`status ${r.status} ${text.slice(0, 80)}`);
    const { id } = JSON.parse(text);
    step = 'content';
    await get(`${base}/files/${id}/content`);
    step = 'list';
    await get(`${base}/files?limit=5`);
    bump('ok');
  } catch (e) {
    bump(`${step}: ${e.cause?.code || e.message}`.slice(0, 120));
  }
}));
console.log(JSON.stringify(counts));
