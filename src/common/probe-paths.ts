/**
 * Paths that orchestrators and scrapers call every few seconds: Kubernetes probes (`/health/live`,
 * `/health/ready`) and Prometheus (`/metrics`). They are not access-logged (unless
 * LOG_PROBE_REQUESTS), do not hold a drain open, and are all a `worker` process serves.
 */
export const PROBE_PATH_PREFIXES = ['/health', '/metrics'] as const;

/** True when `url` (path and query) is a probe or scrape path. */
export function isProbePath(url: string): boolean {
  const path = url.split('?', 1)[0];
  return PROBE_PATH_PREFIXES.some((p) => path === p || path.startsWith(`${p}/`));
}
