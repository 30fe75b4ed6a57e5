// A token-adding reverse proxy, as an API gateway in front of ehr-mcp would be: every request is passed
// on unchanged (Host, Origin and body included, responses streamed) with `Authorization: Bearer <token>`
// added. The conformance suite cannot send a token itself.
import http from 'node:http';

export function startProxy(target, token) {
  const upstream = new URL(target);
  const server = http.createServer((request, response) => {
    const headers = { ...request.headers, authorization: `Bearer ${token}` };
    const forwarded = http.request(
      { host: upstream.hostname, port: upstream.port, method: request.method, path: request.url, headers },
      (answer) => {
        response.writeHead(answer.statusCode, answer.headers);
        answer.pipe(response);
      },
    );
    forwarded.on('error', () => response.destroy());
    response.on('close', () => forwarded.destroy());
    request.pipe(forwarded);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}
