// openai_client.mjs - the official OpenAI Node client against `hearth serve`.
//
//   HEARTH_NODE_MODULES=<dir holding openai/> node openai_client.mjs <base URL ending in /v1> <api key>
//
// test_server.c runs it when the package is installed (npm install --prefix
// build/npm openai). It checks what an application would rely on: listing
// models, a chat completion, the same chat streamed (same text, a finish
// reason, usage when asked), a legacy completion, logprobs, JSON mode,
// n choices (streamed and not) and logit_bias, embeddings (base64, the
// client's default, and float), and that errors arrive as the client's
// typed exceptions with the right status.
import { createRequire } from 'node:module';
import path from 'node:path';
import assert from 'node:assert/strict';

const [baseURL, apiKey] = process.argv.slice(2);
const modules = process.env.HEARTH_NODE_MODULES;
if (!baseURL || !apiKey || !modules) {
  console.error('usage: HEARTH_NODE_MODULES=dir node openai_client.mjs BASE_URL API_KEY');
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(modules), 'noop.js'));
const mod = require('openai');
const OpenAI = mod.OpenAI ?? mod.default ?? mod;

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const messages = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Name three colours.' },
];

async function main() {
  const models = await client.models.list();
  const ids = [];
  for await (const m of models) ids.push(m.id);
  assert.equal(ids.length, 1, 'one model is listed');

  const chat = await client.chat.completions.create({
    model: ids[0], messages, max_tokens: 16, temperature: 0,
  });
  assert.equal(chat.object, 'chat.completion');
  const text = chat.choices[0].message.content;
  assert.equal(typeof text, 'string');
  assert.ok(['stop', 'length'].includes(chat.choices[0].finish_reason));
  assert.ok(chat.usage.prompt_tokens > 0 && chat.usage.completion_tokens <= 16);

  const stream = await client.chat.completions.create({
    model: ids[0], messages, max_tokens: 16, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  let streamed = '';
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      streamed += c.delta?.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(streamed, text, 'streamed text equals the non-streamed text');
  assert.equal(finish, chat.choices[0].finish_reason);
  assert.equal(usage?.completion_tokens, chat.usage.completion_tokens);

  const withLogprobs = await client.chat.completions.create({
    model: ids[0], messages, max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 2,
  });
  const lp = withLogprobs.choices[0].logprobs.content;
  assert.equal(lp.length, withLogprobs.usage.completion_tokens);
  assert.equal(lp[0].top_logprobs.length, 2);

  const completion = await client.completions.create({
    model: ids[0], prompt: 'Once upon a time', max_tokens: 8, temperature: 0,
  });
  assert.equal(completion.object, 'text_completion');
  assert.equal(typeof completion.choices[0].text, 'string');

  // JSON mode: a finished answer is one JSON object (JSON.parse), and the
  // same request streamed gives the same text.
  const jsonReq = {
    model: ids[0], messages, max_tokens: 64, temperature: 0,
    response_format: { type: 'json_object' },
  };
  const jsonChat = await client.chat.completions.create(jsonReq);
  const jsonText = jsonChat.choices[0].message.content;
  if (jsonChat.choices[0].finish_reason === 'stop') {
    const v = JSON.parse(jsonText);
    assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), 'a JSON object');
  } else {
    assert.equal(jsonChat.choices[0].finish_reason, 'length');
    assert.match(jsonText, /^\s*\{/, `an object starts: ${JSON.stringify(jsonText)}`);
  }
  let jsonStreamed = '';
  for await (const chunk of await client.chat.completions.create({ ...jsonReq, stream: true })) {
    for (const c of chunk.choices) jsonStreamed += c.delta?.content ?? '';
  }
  assert.equal(jsonStreamed, jsonText, 'JSON mode streamed equals non-streamed');
  // json_schema: a finished answer validates; a keyword that cannot be
  // enforced is a 400.
  const schema = {
    type: 'object',
    properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer' } },
    required: ['name', 'age'],
    additionalProperties: false,
  };
  const schemaChat = await client.chat.completions.create({
    ...jsonReq, max_tokens: 160,
    response_format: { type: 'json_schema', json_schema: { name: 'cat', strict: true, schema } },
  });
  const schemaText = schemaChat.choices[0].message.content;
  if (schemaChat.choices[0].finish_reason === 'stop') {
    const v = JSON.parse(schemaText);
    assert.deepEqual(Object.keys(v), ['name', 'age'], schemaText);
    assert.ok(typeof v.name === 'string' && [...v.name].length <= 12, schemaText);
    assert.ok(Number.isInteger(v.age), schemaText);
  }
  await assert.rejects(
    client.chat.completions.create({
      ...jsonReq,
      response_format: {
        type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', pattern: '^a' } },
      },
    }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && /pattern/.test(e.message),
  );

  // The client asks for base64 by default and decodes it; both forms agree.
  const input = ['The quick brown fox', 'jumps over the lazy dog'];
  const emb = await client.embeddings.create({ model: ids[0], input });
  const embFloat = await client.embeddings.create({ model: ids[0], input, encoding_format: 'float' });
  assert.equal(emb.data.length, 2);
  for (let i = 0; i < 2; i++) {
    const v = Array.from(emb.data[i].embedding);
    assert.deepEqual(v, embFloat.data[i].embedding.map(Math.fround), 'base64 and float agree');
    const norm = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
    assert.ok(Math.abs(norm - 1) < 1e-4, 'unit length');
  }
  assert.ok(emb.usage.prompt_tokens > 0);

  // n choices with a seed: indices 0..n-1, the same texts streamed (each
  // chunk's choice index routes its delta), usage over all choices.
  const nReq = { model: ids[0], messages, max_tokens: 8, temperature: 1, seed: 11, n: 3 };
  const nChat = await client.chat.completions.create(nReq);
  assert.deepEqual(nChat.choices.map((c) => c.index), [0, 1, 2]);
  const nStreamed = ['', '', ''];
  const nFinish = [null, null, null];
  let nUsage = null;
  for await (const chunk of await client.chat.completions.create({
    ...nReq, stream: true, stream_options: { include_usage: true },
  })) {
    if (chunk.usage) nUsage = chunk.usage;
    for (const c of chunk.choices) {
      nStreamed[c.index] += c.delta?.content ?? '';
      if (c.finish_reason) nFinish[c.index] = c.finish_reason;
    }
  }
  assert.deepEqual(nStreamed, nChat.choices.map((c) => c.message.content), 'n: streamed texts');
  assert.deepEqual(nFinish, nChat.choices.map((c) => c.finish_reason));
  // the same counts streamed; cached_tokens depends on which slot's prompt
  // cache the request met (the first request may have left it in one), not
  // on the request
  const counts = (u) => ({ ...u, prompt_tokens_details: undefined });
  assert.deepEqual(counts(nUsage), counts(nChat.usage), 'n: the same usage streamed');
  assert.ok(nUsage.prompt_tokens_details.cached_tokens <= nUsage.prompt_tokens);
  assert.ok(nChat.usage.completion_tokens <= 24, "at most max_tokens per choice");
  await assert.rejects(
    client.chat.completions.create({ model: ids[0], messages, n: 17 }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'n');

  // logit_bias: +100 on one token makes greedy repeat it; a bad id is a 400
  // naming it.
  const biased = await client.chat.completions.create({
    model: ids[0], messages, max_tokens: 3, temperature: 0, logprobs: true,
    logit_bias: { 300: 100 },
  });
  const toks = biased.choices[0].logprobs.content.map((t) => t.token);
  assert.equal(toks.length, 3);
  assert.ok(toks.every((t) => t === toks[0]), `one token forced: ${JSON.stringify(toks)}`);
  await assert.rejects(
    client.chat.completions.create({ model: ids[0], messages, logit_bias: { 99999999: 1 } }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'logit_bias.99999999');
  const stranger = new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(stranger.models.list(),
    (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
  console.log('openai_client.mjs: all checks passed');
}

main().catch((e) => {
  console.error('openai_client.mjs:', e);
  process.exit(1);
});
