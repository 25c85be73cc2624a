import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type Redis from 'ioredis';
import { Counter } from 'prom-client';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { withTimeout } from '../../common/with-timeout';
import { AppConfig } from '../../config/app.config';
import { AuthConfig } from '../../config/auth.config';
import { RedisConfig } from '../../config/redis.config';
import { MetricsService } from '../../observability/metrics.service';
import { createFailFastConnection } from '../../redis/redis.connection';
import type { AuthContext } from '../api-key.service';
import { BudgetExceeded, RateLimiterUnavailable, RateLimitExceeded } from '../auth.errors';
import { BUDGET_NAMES, type BudgetName, type Limits } from './limits.types';
import { formatResetDuration, periodOf } from './periods';

/** The `x-ratelimit-*` response headers, as OpenAI sends them. Absent when nothing limits that dimension. */
export type RateLimitHeaders = Partial<
  Record<
    | 'x-ratelimit-limit-requests'
    | 'x-ratelimit-remaining-requests'
    | 'x-ratelimit-reset-requests'
    | 'x-ratelimit-limit-tokens'
    | 'x-ratelimit-remaining-tokens'
    | 'x-ratelimit-reset-tokens',
    string
  >
>;

/** Who a limit belongs to. */
export type LimitHolder = 'key' | 'tenant' | 'ip';

/** Spend is counted in integer nano-USD (the limiter counts integer points). */
const NANO = 1e9;
const MINUTE_S = 60;

/** One dimension's state after a check: the tightest of the key's and the tenant's. */
interface Window {
  limit: number;
  remaining: number;
  msBeforeReset: number;
}

/**
 * Requests- and tokens-per-minute limits and token/spend budgets, per key and per tenant (and per
 * client IP for unauthenticated requests), counted in Redis with rate-limiter-flexible so every API
 * replica shares one count.
 *
 * - rpm: each admitted request consumes one point of the key's and the tenant's minute window.
 * - tpm: a request is admitted while the minute's charged tokens are under the limit; tokens are
 *   charged after the call from real usage (`chargeTokens`), so one call may overshoot by its size.
 * - budgets: tokens and spend per UTC day / month, checked at admission, charged with the tokens.
 *
 * Every Redis call on the request path has a deadline (RATE_LIMIT_REDIS_TIMEOUT_MS) on a connection
 * without an offline queue. When Redis fails or is late the limiter fails open (RATE_LIMIT_FAIL_OPEN,
 * default) — the request goes on unlimited and the failure is logged and counted — or closed with
 * 503 `RateLimiterUnavailable`; it never turns a request into a 500.
 */
@Injectable()
export class RateLimitService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RateLimitService.name);
  private readonly redis: Redis;
  private readonly prefix: string;
  /** Limiter instances by kind and size: a limiter's point budget is fixed at construction. */
  private readonly limiters = new Map<string, RateLimiterRedis>();
  private lastErrorLog = 0;
  private readonly failures: Counter<'outcome'>;

  constructor(
    private readonly app: AppConfig,
    private readonly config: AuthConfig,
    redisConfig: RedisConfig,
    metrics: MetricsService,
  ) {
    this.prefix = `${redisConfig.REDIS_KEY_PREFIX}rl`;
    this.redis = createFailFastConnection(
      config.RATE_LIMIT_REDIS_URL ?? redisConfig.REDIS_URL,
      'limiter',
      (e) => this.logFailure(e),
    );
    this.failures = new Counter({
      name: 'kvchat_rate_limiter_failures_total',
      help: 'Rate-limiter Redis calls that failed or missed their deadline, by outcome (open = request let through, closed = 503, charge_lost = usage not charged).',
      labelNames: ['outcome'],
      registers: [metrics.registry],
    });
  }

  /**
   * Waits (at most 2 s) for the limiter's connection, so the first requests after boot are limited;
   * a Redis that is down does not stop the boot (the limiter then fails open or closed).
   */
  async onModuleInit(): Promise<void> {
    if (this.redis.status === 'ready') return;
    try {
      await withTimeout(new Promise<void>((resolve) => this.redis.once('ready', () => resolve())), 2000);
    } catch {
      this.logger.warn('rate limiter: Redis not ready at boot; limits fail open or closed until it is');
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  /**
   * Admits one authenticated request: consumes a request from the key's and the tenant's rpm, and
   * checks their tpm windows and budgets.
   * @returns the rate-limit headers to send
   * @throws RateLimitExceeded over rpm or tpm; BudgetExceeded when a budget is spent;
   *   RateLimiterUnavailable when Redis fails and RATE_LIMIT_FAIL_OPEN=false
   */
  async admit(auth: AuthContext): Promise<RateLimitHeaders> {
    const limits = this.limitsOf(auth);
    if (!limits) return {};
    const holders = [
      { holder: 'key' as const, id: auth.keyId, limits: limits.key },
      { holder: 'tenant' as const, id: auth.tenantId, limits: limits.tenant },
    ];
    const now = new Date();
    const result = await this.guarded(() =>
      Promise.all(
        holders.map(async ({ holder, id, limits }) => ({
          holder,
          limits,
          requests: limits.rpm ? await this.consumeRequest(holder, id, limits.rpm) : null,
          tokens: limits.tpm ? await this.minuteWindow('tpm', limits.tpm).get(`${holder}:${id}`) : null,
          budgets: await this.readBudgets(holder, id, limits, now),
        })),
      ),
    );
    if (!result) return {};

    const headers: RateLimitHeaders = {};
    const requestWindows: Window[] = [];
    const tokenWindows: Window[] = [];
    for (const r of result) {
      if (r.requests) requestWindows.push(r.requests);
      if (r.limits.tpm) {
        const used = r.tokens?.consumedPoints ?? 0;
        tokenWindows.push({
          limit: r.limits.tpm,
          remaining: Math.max(0, r.limits.tpm - used),
          msBeforeReset: r.tokens?.msBeforeNext ?? 0,
        });
      }
    }
    const requests = tightest(requestWindows);
    const tokens = tightest(tokenWindows);
    if (requests) {
      headers['x-ratelimit-limit-requests'] = String(requests.limit);
      headers['x-ratelimit-remaining-requests'] = String(requests.remaining);
      headers['x-ratelimit-reset-requests'] = formatResetDuration(requests.msBeforeReset);
    }
    if (tokens) {
      headers['x-ratelimit-limit-tokens'] = String(tokens.limit);
      headers['x-ratelimit-remaining-tokens'] = String(tokens.remaining);
      headers['x-ratelimit-reset-tokens'] = formatResetDuration(tokens.msBeforeReset);
    }

    for (const r of result) {
      if (r.requests && r.requests.over) {
        throw new RateLimitExceeded(
          `Over the ${r.holder}'s limit of ${r.requests.limit} requests per minute; retry in ${formatResetDuration(r.requests.msBeforeReset)}.`,
          { limit: 'requests', holder: r.holder, retryAfterSeconds: r.requests.msBeforeReset / 1000 },
          headers,
        );
      }
    }
    for (const r of result) {
      if (r.limits.tpm && (r.tokens?.consumedPoints ?? 0) >= r.limits.tpm) {
        const ms = r.tokens?.msBeforeNext ?? 0;
        throw new RateLimitExceeded(
          `Over the ${r.holder}'s limit of ${r.limits.tpm} tokens per minute; retry in ${formatResetDuration(ms)}.`,
          { limit: 'tokens', holder: r.holder, retryAfterSeconds: ms / 1000 },
          headers,
        );
      }
    }
    for (const r of result) {
      for (const b of r.budgets) {
        if (b.used >= b.limit) {
          const what = b.name.startsWith('tokens') ? `${b.limit} tokens` : `${b.limit} USD`;
          throw new BudgetExceeded(
            `The ${r.holder}'s budget ${b.name} (${what}) is spent; it resets at ${b.resetsAt.toISOString()}.`,
            {
              budget: b.name,
              holder: r.holder,
              limit: b.limit,
              used: b.used,
              resetsAt: b.resetsAt.toISOString(),
              retryAfterSeconds: (b.resetsAt.getTime() - now.getTime()) / 1000,
            },
            headers,
          );
        }
      }
    }
    return headers;
  }

  /**
   * Counts one request without a valid API key against its client IP (RATE_LIMIT_IP_PER_MINUTE).
   * @throws RateLimitExceeded when the IP is over; RateLimiterUnavailable (fail closed only)
   */
  async admitIp(ip: string): Promise<void> {
    const limit = this.config.RATE_LIMIT_IP_PER_MINUTE;
    if (limit === 0) return;
    const window = await this.guarded(() => this.consumeRequest('ip', ip, limit));
    if (window?.over) {
      throw new RateLimitExceeded(
        `Too many requests without a valid API key from this address; retry in ${formatResetDuration(window.msBeforeReset)}.`,
        { limit: 'requests', holder: 'ip', retryAfterSeconds: window.msBeforeReset / 1000 },
      );
    }
  }

  /**
   * Charges real usage after a call: `tokens` (prompt + completion the engine processed) to the
   * key's and the tenant's tpm windows and token budgets, `costUsd` to their spend budgets. Never
   * throws and never fails the call it follows: a Redis failure is logged and counted.
   * @param tokens tokens, ≥ 0 (rounded to an integer)
   * @param costUsd USD, ≥ 0
   */
  async chargeTokens(auth: AuthContext, tokens: number, costUsd = 0): Promise<void> {
    const limits = this.limitsOf(auth);
    if (!limits) return;
    const points = Math.max(0, Math.round(tokens));
    const spend = Math.max(0, Math.round(costUsd * NANO));
    if (points === 0 && spend === 0) return;
    const now = new Date();
    const calls: Promise<unknown>[] = [];
    for (const [holder, id, l] of [
      ['key', auth.keyId, limits.key],
      ['tenant', auth.tenantId, limits.tenant],
    ] as const) {
      if (l.tpm && points > 0) calls.push(this.minuteWindow('tpm', l.tpm).penalty(`${holder}:${id}`, points));
      for (const name of BUDGET_NAMES) {
        if (l.budgets?.[name] === undefined || l.budgets[name] === null) continue;
        const amount = name.startsWith('tokens') ? points : spend;
        if (amount > 0)
          calls.push(this.budgetCounter(name).penalty(budgetKey(holder, id, name, now), amount));
      }
    }
    if (calls.length === 0) return;
    try {
      await withTimeout(Promise.all(calls), this.config.RATE_LIMIT_REDIS_TIMEOUT_MS);
    } catch (e) {
      this.failures.inc({ outcome: 'charge_lost' });
      this.logFailure(e);
    }
  }

  /** The key's limits with RATE_LIMIT_PER_MINUTE as the key's default rpm; null when nothing limits. */
  private limitsOf(auth: AuthContext): { key: Limits; tenant: Limits } | null {
    const key = auth.limits?.key;
    const tenant = auth.limits?.tenant;
    const defaultRpm = this.app.RATE_LIMIT_PER_MINUTE > 0 ? this.app.RATE_LIMIT_PER_MINUTE : null;
    const merged = {
      key: { rpm: key?.rpm ?? defaultRpm, tpm: key?.tpm ?? null, budgets: key?.budgets ?? null },
      tenant: { rpm: tenant?.rpm ?? null, tpm: tenant?.tpm ?? null, budgets: tenant?.budgets ?? null },
    };
    const limited = (l: Limits): boolean =>
      l.rpm !== null ||
      l.tpm !== null ||
      Object.values(l.budgets ?? {}).some((v) => v !== null && v !== undefined);
    return limited(merged.key) || limited(merged.tenant) ? merged : null;
  }

  private async consumeRequest(
    holder: LimitHolder,
    id: string,
    limit: number,
  ): Promise<Window & { over: boolean }> {
    try {
      const res = await this.minuteWindow('rpm', limit).consume(`${holder}:${id}`, 1);
      return { limit, remaining: res.remainingPoints, msBeforeReset: res.msBeforeNext, over: false };
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) throw e;
      return { limit, remaining: 0, msBeforeReset: e.msBeforeNext, over: true };
    }
  }

  private async readBudgets(
    holder: 'key' | 'tenant',
    id: string,
    limits: Limits,
    now: Date,
  ): Promise<{ name: BudgetName; limit: number; used: number; resetsAt: Date }[]> {
    const out = [];
    for (const name of BUDGET_NAMES) {
      const limit = limits.budgets?.[name];
      if (limit === undefined || limit === null) continue;
      const res = await this.budgetCounter(name).get(budgetKey(holder, id, name, now));
      const points = res?.consumedPoints ?? 0;
      out.push({
        name,
        limit,
        used: name.startsWith('tokens') ? points : points / NANO,
        resetsAt: periodOf(name, now).end,
      });
    }
    return out;
  }

  /** A fixed one-minute window of `points` (rpm, tpm), shared by every replica through Redis. */
  private minuteWindow(kind: 'rpm' | 'tpm', points: number): RateLimiterRedis {
    return this.limiter(`${kind}:${points}`, () => ({
      keyPrefix: `${this.prefix}:${kind}:${points}`,
      points,
      duration: MINUTE_S,
    }));
  }

  /**
   * A budget counter: a limiter used only for its atomic counting (`penalty`, `get`); the key names
   * the UTC day or month, and it expires after its period has ended.
   */
  private budgetCounter(name: BudgetName): RateLimiterRedis {
    const day = name.endsWith('PerDay');
    return this.limiter(`budget:${name}`, () => ({
      keyPrefix: `${this.prefix}:budget`,
      points: Number.MAX_SAFE_INTEGER,
      duration: (day ? 2 : 32) * 86_400,
    }));
  }

  private limiter(
    id: string,
    options: () => { keyPrefix: string; points: number; duration: number },
  ): RateLimiterRedis {
    let limiter = this.limiters.get(id);
    if (!limiter) {
      limiter = new RateLimiterRedis({ storeClient: this.redis, rejectIfRedisNotReady: true, ...options() });
      this.limiters.set(id, limiter);
    }
    return limiter;
  }

  /** Runs limiter calls under the deadline; on failure returns null (fail open) or throws (closed). */
  private async guarded<T>(run: () => Promise<T>): Promise<T | null> {
    try {
      return await withTimeout(run(), this.config.RATE_LIMIT_REDIS_TIMEOUT_MS);
    } catch (e) {
      if (e instanceof RateLimiterRes) throw e;
      this.logFailure(e);
      if (this.config.RATE_LIMIT_FAIL_OPEN) {
        this.failures.inc({ outcome: 'open' });
        return null;
      }
      this.failures.inc({ outcome: 'closed' });
      throw new RateLimiterUnavailable('The rate limiter (Redis) is unavailable; retry shortly.', {
        dependency: 'redis',
        retryAfterSeconds: 1,
      });
    }
  }

  /** At most one log line a second while Redis is failing. */
  private logFailure(e: unknown): void {
    const now = Date.now();
    if (now - this.lastErrorLog < 1000) return;
    this.lastErrorLog = now;
    this.logger.warn(
      `rate limiter: Redis failed (${e instanceof Error ? e.message : String(e)}); failing ${this.config.RATE_LIMIT_FAIL_OPEN ? 'open' : 'closed'}`,
    );
  }
}

/** The window with the fewest remaining points (the one that binds first). */
function tightest(windows: Window[]): Window | null {
  if (windows.length === 0) return null;
  return windows.reduce((a, b) => (b.remaining < a.remaining ? b : a));
}

function budgetKey(holder: 'key' | 'tenant', id: string, name: BudgetName, now: Date): string {
  return `${holder}:${id}:${name}:${periodOf(name, now).label}`;
}
