// openai_responses.mjs - the official OpenAI Node client's Responses API against
// `hearth serve`.
//
//   HEARTH_NODE_MODULES=<dir holding openai/> node openai_responses.mjs <base URL ending in /v1>
//
// test_server_responses.c runs it (the server has a fake cloud tier "oa" that
// answers with a get_weather call). It checks a response and its output_text, the
// same response streamed (the deltas add up to it, the last event carries it), a
// tier's call as a function_call item, and errors as the client's typed exceptions.
import { createRequire } from 'node:module';
import path from 'node:path';
import assert from 'node:assert/strict';

const [baseURL] = process.argv.slice(2);
const modules = process.env.HEARTH_NODE_MODULES;
if (!baseURL || !modules) {
  console.error('usage: HEARTH_NODE_MODULES=dir node openai_responses.mjs BASE_URL');
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(modules), 'noop.js'));
const mod = require('openai');
const OpenAI = mod.OpenAI ?? mod.default ?? mod;

const client = new OpenAI({ baseURL, apiKey: 'none', maxRetries: 0, timeout: 60_000 });
const ask = {
  model: 'local', instructions: 'Be brief.', input: 'Tell me a story',
  max_output_tokens: 12, temperature: 0,
};

async function main() {
  const r = await client.responses.create(ask);
  assert.equal(r.object, 'response');
  assert.ok(['completed', 'incomplete'].includes(r.status), r.status);
  assert.ok(typeof r.output_text === 'string' && r.output_text.length > 0, JSON.stringify(r));

  let deltas = '';
  let last = null;
  const stream = await client.responses.create({ ...ask, stream: true });
  for await (const ev of stream) {
    if (ev.type === 'response.output_text.delta') deltas += ev.delta;
    if (ev.type === 'response.completed' || ev.type === 'response.incomplete') last = ev.response;
  }
  assert.equal(deltas, r.output_text, 'streamed deltas = output_text');
  assert.ok(last && last.status === r.status);

  const call = await client.responses.create({
    model: 'oa', input: 'Weather?',
    tools: [{ type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } }],
  });
  const fc = call.output.find((i) => i.type === 'function_call');
  assert.ok(fc, JSON.stringify(call));
  assert.equal(fc.name, 'get_weather');
  assert.deepEqual(JSON.parse(fc.arguments), { city: 'Paris' });

  await assert.rejects(client.responses.create({ ...ask, previous_response_id: 'resp_x' }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400);
  console.log('openai_responses.mjs: ok');
}

main().catch((e) => {
  console.error('openai_responses.mjs:', e);
  process.exit(1);
});
