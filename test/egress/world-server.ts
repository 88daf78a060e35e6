/**
 * The egress tests' outside world, run inside the test namespace (`ip netns exec`): HTTP and
 * HTTPS hosts that echo what reached them and say who they are, a package index serving one
 * wheel, a large download, and a DNS view of the hosts. Every request and DNS query is printed
 * as one JSON line on stdout, so the test sees exactly what arrived. Config: JSON on argv[2].
 */
import { createSocket } from 'node:dgram';
import dnsPacket from 'dns-packet';
import { readFileSync } from 'node:fs';
import { createServer as createHttp, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';

export interface WorldConfig {
  hosts: { name: string; address: string; cert: string; key: string }[];
  dns: { address: string; records: Record<string, string> };
  wheel: { file: string; name: string; project: string; sha256: string };
}

const config = JSON.parse(process.argv[2] ?? '{}') as WorldConfig;
const say = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);
const wheel = readFileSync(config.wheel.file);
const chunk = Buffer.alloc(64 * 1024, 0x61);

function handler(host: string, scheme: string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    say({
      kind: 'http',
      served_by: host,
      scheme,
      method: req.method,
      url: req.url,
      headers: req.headers,
    });
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === `/simple/${config.wheel.project}/`) {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(
        `<html><body><a href="/packages/${config.wheel.name}#sha256=${config.wheel.sha256}">${config.wheel.name}</a></body></html>\n`,
      );
      return;
    }
    if (url.pathname === `/packages/${config.wheel.name}`) {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': wheel.length,
      });
      res.end(wheel);
      return;
    }
    if (url.pathname === '/big') {
      let left = Number(url.searchParams.get('bytes') ?? 1024 * 1024);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': left });
      const pump = () => {
        while (left > 0) {
          const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= piece.length;
          if (!res.write(piece)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        served_by: host,
        scheme,
        host_header: req.headers.host,
        headers: req.headers,
      }),
    );
  };
}

for (const host of config.hosts) {
  createHttp(handler(host.name, 'http')).listen(80, host.address);
  createHttps({ cert: host.cert, key: host.key }, handler(host.name, 'https')).listen(
    443,
    host.address,
  );
}

const dns = createSocket('udp4');
dns.on('message', (message, peer) => {
  let query: dnsPacket.Packet;
  try {
    query = dnsPacket.decode(message);
  } catch {
    return;
  }
  const question = query.questions?.[0];
  const name = question?.name.toLowerCase() ?? '';
  say({ kind: 'dns', name, type: question?.type, from: peer.address });
  const address = config.dns.records[name];
  const answers: dnsPacket.Answer[] =
    address !== undefined && question?.type === 'A'
      ? [{ type: 'A', name, ttl: 5, class: 'IN', data: address }]
      : [];
  const reply = dnsPacket.encode({
    type: 'response',
    id: query.id,
    flags: dnsPacket.AUTHORITATIVE_ANSWER | (address === undefined ? 3 : 0), // 3: NXDOMAIN
    questions: query.questions,
    answers,
  });
  dns.send(reply, peer.port, peer.address);
});
dns.bind(53, config.dns.address, () => say({ kind: 'ready' }));
