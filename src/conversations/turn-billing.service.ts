import { Inject, Injectable } from '@nestjs/common';
import type { AuthContext } from '../auth/api-key.service';
import { AccessPolicy } from '../auth/access-policy.service';
import { RateLimitService } from '../auth/limits/rate-limit.service';
import type { TurnOutput } from '../agents/agents.types';
import { ENGINE_ADAPTER, type EngineAdapter } from '../inference/engine-adapter';
import { InferenceService } from '../inference/inference.service';
import { UsageRecorder } from '../usage/usage-recorder.service';
import { savingsOf, type UsageSavings } from '../usage/usage-savings';
import type { UsageRow } from '../usage/usage.types';

/** The provider recorded for a response-cache hit (no engine was called; docs/usage.md). */
const CACHE_PROVIDER = 'cache';

/** A completed turn as the ledger sees it. */
export interface BilledTurn {
  requestId: string;
  conversationId: string;
  output: TurnOutput;
  /** Whole turn, ms. */
  latencyMs: number;
}

/**
 * What a turn costs and who may run it:
 * - `admit`: the key's model allow-list, checked against the model the engine serves, before the turn;
 * - `bill`: after the turn is stored, one usage record (UsageRecorder, never blocking on the ledger),
 *   then the turn's real tokens and cost charged to the key's and tenant's tpm window and budgets.
 */
@Injectable()
export class TurnBilling {
  constructor(
    private readonly access: AccessPolicy,
    private readonly inference: InferenceService,
    @Inject(ENGINE_ADAPTER) private readonly engine: EngineAdapter,
    private readonly recorder: UsageRecorder,
    private readonly limits: RateLimitService,
  ) {}

  /**
   * @throws ModelNotAllowed (403) when the key has a model allow-list without the served model;
   *   Engine* errors when the served model cannot be learned (only asked when the key has a list)
   */
  async admit(auth: AuthContext): Promise<void> {
    if (!auth.models) return;
    this.access.assertModelAllowed(auth, await this.inference.modelName());
  }

  /**
   * Records the turn in the usage ledger and charges its engine tokens (0 for a response-cache hit)
   * and cost to the limits. Never throws for a Redis or database problem.
   * @returns the ledger row and what each cache layer saved
   */
  async bill(auth: AuthContext, turn: BilledTurn): Promise<{ row: UsageRow; savings: UsageSavings }> {
    const { output } = turn;
    const response = output.cache.response;
    const hit = response?.hit === true;
    const row = this.recorder.record({
      tenantId: auth.tenantId,
      keyId: auth.keyId ?? null,
      requestId: turn.requestId,
      conversationId: turn.conversationId,
      endpoint: 'turn',
      model: output.model,
      provider: hit ? CACHE_PROVIDER : this.engine.name,
      deployment: output.replica,
      promptTokens: output.usage.promptTokens,
      cachedTokens: output.usage.cachedTokens,
      completionTokens: output.usage.completionTokens,
      ...(hit ? { cacheLayer: response.type ?? 'exact', replaced: output.replacedUsage ?? null } : {}),
      latencyMs: turn.latencyMs,
      ttftMs: output.timings.ttftMs,
    });
    await this.limits.chargeTokens(auth, row.promptTokens + row.completionTokens, row.cost);
    return { row, savings: savingsOf(row) };
  }
}
