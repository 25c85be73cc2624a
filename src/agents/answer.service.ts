import { Injectable } from '@nestjs/common';
import { InferenceConfig } from '../config/inference.config';
import { ContextWindowService } from '../context/context-window.service';
import type { PromptSpec } from '../context/prompt.types';
import { InferenceService } from '../inference/inference.service';
import { NOOP_TURN_TRACE } from '../observability/turn-trace';
import type { RouteDecision, TurnInput, TurnOutput } from './agents.types';

/** What an agent node hands to the answer step. */
export interface AnswerRequest {
  input: TurnInput;
  route: RouteDecision;
  /** The agent's prompt: stable prefix, template version, history, volatile context, user message. */
  prompt: PromptSpec;
}

/**
 * The answer step every agent shares: fit the context window, consult the response cache,
 * assemble the prompt, call the engine, store cacheable answers. One place, so each cache
 * layer behaves the same whichever agent answers.
 */
@Injectable()
export class AnswerService {
  constructor(
    private readonly contextWindow: ContextWindowService,
    private readonly inference: InferenceService,
    private readonly inferenceConfig: InferenceConfig,
  ) {}

  async answer({ input, route, prompt }: AnswerRequest): Promise<TurnOutput> {
    const trace = input.trace ?? NOOP_TURN_TRACE;
    // Context window (policy, token counts) and the backend's prefix-reuse figure: src/context.
    const assembled = await this.contextWindow.prepare({
      tenantId: input.tenantId,
      conversationId: input.conversationId,
      state: input.context ?? null,
      spec: prompt,
      reservedOutputTokens: input.maxTokens ?? this.inferenceConfig.INFERENCE_DEFAULT_MAX_TOKENS,
      render: { now: new Date(), userName: input.userName },
    });
    const generation = trace.generation('engine', assembled.messages, {
      agent: route.agent,
      templateVersion: assembled.templateVersion,
    });
    let firstToken = true;
    try {
      const result = await this.inference.chat({
        messages: assembled.messages,
        maxTokens: input.maxTokens,
        temperature: input.temperature,
        cacheSalt: input.cacheSalt,
        routingKey: input.conversationId,
        promptTokenIds: assembled.promptFingerprint,
        signal: input.signal,
        onToken: (delta) => {
          if (firstToken) generation.firstToken();
          firstToken = false;
          input.onToken?.(delta);
        },
      });
      const { cache, answerTokenCount } = await this.contextWindow.report(assembled, result);
      generation.end({
        output: result.content,
        model: result.model,
        usage: result.usage,
        metadata: { replica: result.replica, templateVersion: assembled.templateVersion, prefixReuse: cache.prefixReuse },
      });
      return {
        ...result,
        route,
        templateVersion: assembled.templateVersion,
        cache,
        context: assembled.state,
        userPromptContent: assembled.userContent,
        tokenCounts: {
          user: assembled.userTokenCount,
          assistant: answerTokenCount,
          history: assembled.historyTokenCounts,
        },
      };
    } catch (e) {
      generation.end({ error: e instanceof Error ? e.message : String(e) });
      throw e;
    }
  }
}
