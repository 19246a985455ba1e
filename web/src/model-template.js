// Chat prompts: the model's own tokenizer.chat_template rendered by @huggingface/jinja (the
// Jinja implementation transformers.js uses; trim_blocks and lstrip_blocks as in
// quantann/generate.py's jinja2 sandbox). No template logic of our own.
let jinja = null;

async function loadJinja() {
  if (!jinja) {
    jinja = import('@huggingface/jinja') // Node, or a page with an import map
      .catch(() => import(new URL('../node_modules/@huggingface/jinja/dist/index.js', import.meta.url).href));
  }
  return jinja;
}

// messages: [{role, content}, ...] (a string is one user message). Returns the prompt text.
export async function renderChat(template, messages, { bosToken = '', eosToken = '', addGenerationPrompt = true } = {}) {
  if (!template) throw new Error('the model has no tokenizer.chat_template');
  if (typeof messages === 'string') messages = [{ role: 'user', content: messages }];
  if (!Array.isArray(messages) || !messages.every((m) => m && typeof m === 'object' && 'role' in m && 'content' in m))
    throw new TypeError("chat messages must be a string or a list of {role, content} objects");
  const { Template } = await loadJinja();
  return new Template(template).render({
    messages, add_generation_prompt: addGenerationPrompt, bos_token: bosToken, eos_token: eosToken,
  });
}
