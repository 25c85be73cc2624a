/**
 * docker/nginx.conf (the compose gateway) rendered for another topology: its upstream's one
 * `server api:3000 …;` line repeated for each given api address (same parameters, e.g. `max_conns`,
 * unless `maxConns` overrides it), its `listen 8080;` moved to a loopback port, and no access log. Used
 * by bench:load (`--nginx`) and by the proxy's integration spec, so both run the file compose deploys.
 * @throws Error when the template lacks exactly those two lines
 */
export function renderNginxConfig(
  template: string,
  upstreams: readonly string[],
  port: number,
  maxConns?: number,
): string {
  const server = /^(\s*)server api:3000([^;]*);$/m.exec(template);
  if (!server || !/^\s*listen 8080;$/m.test(template))
    throw new Error(
      'docker/nginx.conf: expected one `server api:3000 ...;` line and one `listen 8080;` line',
    );
  const params =
    maxConns === undefined ? server[2] : server[2].replace(/max_conns=\d+/, `max_conns=${maxConns}`);
  return template
    .replace(server[0], upstreams.map((host) => `${server[1]}server ${host}${params};`).join('\n'))
    .replace(/^(\s*)listen 8080;$/m, `$1listen 127.0.0.1:${port} backlog=4096;`)
    .replace(/^http \{$/m, 'http {\n  access_log off;');
}
