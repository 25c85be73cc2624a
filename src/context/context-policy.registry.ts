import type { Type } from '@nestjs/common';
import type { ContextConfig } from '../config/context.config';
import type { ContextPolicy } from './context-policy';
import { CompactPolicy } from './policies/compact.policy';
import { SlidingWindowPolicy } from './policies/sliding.policy';
import { SummaryPolicy } from './policies/summary.policy';

/**
 * Every context-window policy, by its CONTEXT_POLICY name. Adding a policy is one class
 * implementing ContextPolicy plus its line here (and its name in ContextConfig).
 */
export const CONTEXT_POLICIES: Record<ContextConfig['CONTEXT_POLICY'], Type<ContextPolicy>> = {
  sliding: SlidingWindowPolicy,
  compact: CompactPolicy,
  summary: SummaryPolicy,
};
