/** One chat message as the simulator sees it: text only. */
export interface ChatMessage {
  role: string;
  content: string;
}

export const IM_START = '<|im_start|>';
export const IM_END = '<|im_end|>';

/**
 * The simulator's fixed chat template, ChatML style: each message is
 * `<|im_start|>{role}\n{content}<|im_end|>\n`, and the generation prompt is `<|im_start|>assistant\n`.
 * It is fixed (not configurable) so that every component agrees on the exact prompt bytes.
 */
export function renderChatTemplate(messages: readonly ChatMessage[], addGenerationPrompt = true): string {
  let out = '';
  for (const m of messages) out += `${IM_START}${m.role}\n${m.content}${IM_END}\n`;
  if (addGenerationPrompt) out += `${IM_START}assistant\n`;
  return out;
}
