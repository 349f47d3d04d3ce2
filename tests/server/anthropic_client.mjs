// anthropic_client.mjs - the official Anthropic Node SDK against `hearth serve`'s
// Messages API.
//
//   HEARTH_NODE_MODULES=<dir holding @anthropic-ai/sdk> node anthropic_client.mjs <base URL> <api key>
//
// test_server_anthropic.c runs it (the server has a fake cloud tier "oa" that
// answers with a get_weather call). It checks what an application relies on: a
// message, the same message streamed through the SDK's helper (same text, the
// final message assembled), count_tokens, a tier's tool call as a tool_use block
// (whole and streamed, the input assembled from input_json_delta), and errors
// as the SDK's typed exceptions.
import { createRequire } from 'node:module';
import path from 'node:path';
import assert from 'node:assert/strict';

const [baseURL, apiKey] = process.argv.slice(2);
const modules = process.env.HEARTH_NODE_MODULES;
if (!baseURL || !apiKey || !modules) {
  console.error('usage: HEARTH_NODE_MODULES=dir node anthropic_client.mjs BASE_URL API_KEY');
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(modules), 'noop.js'));
const mod = require('@anthropic-ai/sdk');
const Anthropic = mod.Anthropic ?? mod.default ?? mod;

const client = new Anthropic({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const ask = {
  model: 'local', max_tokens: 12, temperature: 0, system: 'Be brief.',
  messages: [{ role: 'user', content: 'Tell me a story' }],
};
const tools = [{
  name: 'get_weather', description: 'Weather',
  input_schema: { type: 'object', properties: { city: { type: 'string' } } },
}];

async function main() {
  const msg = await client.messages.create(ask);
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.equal(msg.content[0].type, 'text');
  assert.ok(['end_turn', 'max_tokens'].includes(msg.stop_reason), msg.stop_reason);
  assert.ok(msg.usage.input_tokens > 0 && msg.usage.output_tokens > 0);

  let streamed = '';
  const stream = client.messages.stream(ask);
  stream.on('text', (t) => { streamed += t; });
  const final = await stream.finalMessage();
  assert.equal(streamed, msg.content[0].text, 'streamed text = whole text');
  assert.equal(final.content[0].text, streamed);
  assert.equal(final.stop_reason, msg.stop_reason);

  const count = await client.messages.countTokens({
    model: ask.model, system: ask.system, messages: ask.messages,
  });
  assert.equal(count.input_tokens, msg.usage.input_tokens);

  const call = await client.messages.create({
    model: 'oa', max_tokens: 50, tools, messages: [{ role: 'user', content: 'Weather?' }],
  });
  const use = call.content.find((b) => b.type === 'tool_use');
  assert.ok(use, JSON.stringify(call));
  assert.equal(use.name, 'get_weather');
  assert.deepEqual(use.input, { city: 'Paris' });
  assert.equal(call.stop_reason, 'tool_use');
  const callStream = client.messages.stream({
    model: 'oa', max_tokens: 50, tools, messages: [{ role: 'user', content: 'Weather?' }],
  });
  const callFinal = await callStream.finalMessage();
  const use2 = callFinal.content.find((b) => b.type === 'tool_use');
  assert.deepEqual(use2?.input, { city: 'Paris' }, JSON.stringify(callFinal));

  await assert.rejects(
    client.messages.create({ ...ask, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AA==' } }] }] }),
    (e) => e instanceof Anthropic.BadRequestError && e.status === 400);
  const stranger = new Anthropic({ baseURL, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(stranger.messages.create(ask),
    (e) => e instanceof Anthropic.AuthenticationError && e.status === 401);
  console.log('anthropic_client.mjs: ok');
}

main().catch((e) => {
  console.error('anthropic_client.mjs:', e);
  process.exit(1);
});
