import { CACHE_MODES } from '../response-cache.types';

/** CacheControlDto as a JSON schema (the same fields and bounds, no others), for the routes' precompiled body schemas. */
export const CACHE_CONTROL_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    mode: { enum: [...CACHE_MODES] },
    maxAgeSeconds: { type: 'integer', minimum: 0 },
  },
} as const;
