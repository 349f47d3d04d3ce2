// openai_tools.mjs - the official OpenAI Node client receiving tool calls
// from `hearth serve` (test_server_toolcalls.c runs it; the calls come from
// the fake cloud tiers "oa" (OpenAI format) and "an" (Anthropic format)).
//
//   HEARTH_NODE_MODULES=<dir holding openai/> node openai_tools.mjs <base URL ending in /v1>
//
// Non-streamed: message.tool_calls with a parseable arguments string and
// finish_reason tool_calls. Streamed: the chunks assembled by hand as
// applications do, and by the SDK's own stream helper (finalChatCompletion),
// give the same call.
import { createRequire } from 'node:module';
import path from 'node:path';
import assert from 'node:assert/strict';

const [baseURL] = process.argv.slice(2);
const modules = process.env.HEARTH_NODE_MODULES;
if (!baseURL || !modules) {
  console.error('usage: HEARTH_NODE_MODULES=dir node openai_tools.mjs BASE_URL');
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(modules), 'noop.js'));
const mod = require('openai');
const OpenAI = mod.OpenAI ?? mod.default ?? mod;
const client = new OpenAI({ baseURL, apiKey: 'none', maxRetries: 0, timeout: 60_000 });

const tools = [{
  type: 'function',
  function: {
    name: 'get_weather', description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}];
const messages = [{ role: 'user', content: 'Weather in Paris?' }];

// the tiers' own call ids, which the server passes on
const tierIds = { oa: 'call_fake', an: 'toolu_fake' };

function checkCall(call, model) {
  assert.equal(call.type, 'function');
  assert.equal(call.id, tierIds[model]);
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
}

async function main() {
  for (const model of ['oa', 'an']) {
    const chat = await client.chat.completions.create({ model, messages, tools, max_tokens: 32 });
    const choice = chat.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.tool_calls.length, 1);
    checkCall(choice.message.tool_calls[0], model);

    const stream = await client.chat.completions.create({
      model, messages, tools, max_tokens: 32, stream: true,
    });
    const calls = [];
    let finish = null;
    let content = '';
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        content += c.delta?.content ?? '';
        for (const d of c.delta?.tool_calls ?? []) {
          calls[d.index] ??= { id: '', type: '', function: { name: '', arguments: '' } };
          const t = calls[d.index];
          if (d.id) t.id = d.id;
          if (d.type) t.type = d.type;
          if (d.function?.name) t.function.name += d.function.name;
          if (d.function?.arguments) t.function.arguments += d.function.arguments;
        }
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    assert.equal(finish, 'tool_calls');
    assert.equal(calls.length, 1);
    checkCall(calls[0], model);
    assert.ok(!content.includes('tool_call'), `content leaked the call: ${content}`);

    // the SDK's own accumulation (ChatCompletionStream)
    const helper = client.chat.completions.stream ?? client.beta?.chat?.completions?.stream;
    if (helper) {
      const s = helper.call(client.chat.completions.stream ? client.chat.completions
                                                           : client.beta.chat.completions,
                            { model, messages, tools, max_tokens: 32 });
      const final = await s.finalChatCompletion();
      assert.equal(final.choices[0].finish_reason, 'tool_calls');
      checkCall(final.choices[0].message.tool_calls[0], model);
    }
  }
  console.log('openai_tools.mjs: all checks passed');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
