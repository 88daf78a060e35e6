import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HostOriginGuard, isLoopbackName, parseHostHeader } from './host-origin-guard.js';

const loopback = new HostOriginGuard({ host: '127.0.0.1' });
const refused = (guard: HostOriginGuard, host: string | undefined, origin?: string) =>
  guard.check(host, origin)?.code;

describe('HostOriginGuard', () => {
  it('parses Host headers, IPv6 and trailing dots included', () => {
    assert.deepEqual(parseHostHeader('LocalHost:5000'), { hostname: 'localhost', port: '5000' });
    assert.deepEqual(parseHostHeader('[::1]:8080'), { hostname: '[::1]', port: '8080' });
    assert.deepEqual(parseHostHeader('localhost.'), { hostname: 'localhost', port: '' });
    for (const bad of [undefined, '', 'a b', 'evil.com/x', 'user@localhost', 'x:99999']) {
      assert.equal(parseHostHeader(bad), undefined, String(bad));
    }
  });

  it('knows the loopback names', () => {
    for (const name of ['localhost', '8080-sb_x.localhost', '127.0.0.1', '127.1.2.3', '[::1]']) {
      assert.equal(isLoopbackName(name), true, name);
    }
    for (const name of ['localhost.evil.com', '128.0.0.1', '0.0.0.0', 'evil.com', '[::2]']) {
      assert.equal(isLoopbackName(name), false, name);
    }
  });

  it('accepts loopback hosts without an Origin, refuses other names (DNS rebinding)', () => {
    for (const host of ['localhost:5000', '127.0.0.1:5000', '[::1]:5000', 'a.localhost:5000']) {
      assert.equal(refused(loopback, host), undefined, host);
    }
    for (const host of ['evil.example.com:5000', 'evil.example.com', undefined, '10.0.0.8:5000']) {
      assert.equal(refused(loopback, host), 'forbidden_origin', String(host));
    }
    const message = loopback.check('evil.example.com', undefined)?.message ?? '';
    assert.match(message, /--allowed-hosts/);
    assert.match(message, /SANDPOOL_ALLOWED_HOSTS/);
  });

  it('accepts its own origin and loopback aliases of the same port, nothing else', () => {
    const host = '127.0.0.1:5000';
    for (const origin of ['http://127.0.0.1:5000', 'http://localhost:5000', 'http://[::1]:5000']) {
      assert.equal(refused(loopback, host, origin), undefined, origin);
    }
    assert.equal(refused(loopback, 'localhost', 'http://localhost'), undefined);
    for (const origin of [
      'http://evil.example',
      'http://localhost:3000', // another local app
      'http://8080-sb_x.localhost:5000', // a page a sandbox serves
      'http://127.0.0.1:5001',
      'null', // a sandboxed frame or a file
      'not a url',
    ]) {
      assert.equal(refused(loopback, host, origin), 'forbidden_origin', origin);
    }
    assert.match(loopback.check(host, 'http://evil.example')?.message ?? '', /--allowed-origins/);
  });

  it('takes the advertise name, configured names and domains', () => {
    const guard = new HostOriginGuard({
      host: '127.0.0.1',
      advertiseUrl: 'http://worker1:5000',
      allowedHosts: 'sandbox.example.com, .corp.example',
    });
    for (const host of [
      'worker1:5000',
      'sandbox.example.com',
      'corp.example',
      'a.b.corp.example',
    ]) {
      assert.equal(refused(guard, host), undefined, host);
    }
    for (const host of ['worker2:5000', 'example.com', 'xcorp.example']) {
      assert.equal(refused(guard, host), 'forbidden_origin', host);
    }
    assert.equal(refused(guard, 'worker1:5000', 'http://worker1:5000'), undefined, 'same origin');
    // Behind a TLS proxy: no port in either.
    const proxied = 'https://sandbox.example.com';
    assert.equal(refused(guard, 'sandbox.example.com', proxied), undefined, proxied);
    assert.equal(refused(guard, 'sandbox.example.com', 'https://corp.example'), 'forbidden_origin');
  });

  it('listening on every address accepts the machine’s own addresses', () => {
    const guard = new HostOriginGuard({ host: '0.0.0.0' });
    assert.equal(refused(guard, '127.0.0.1:5000'), undefined);
    assert.equal(refused(guard, 'evil.example.com:5000'), 'forbidden_origin');
  });

  it('configured origins, and * switches each check off', () => {
    const listed = new HostOriginGuard({
      host: '127.0.0.1',
      allowedOrigins: 'https://app.example.com/',
    });
    assert.equal(refused(listed, 'localhost:5000', 'https://app.example.com'), undefined);
    assert.equal(
      refused(listed, 'localhost:5000', 'https://other.example.com'),
      'forbidden_origin',
    );
    const open = new HostOriginGuard({ host: '127.0.0.1', allowedHosts: '*', allowedOrigins: '*' });
    assert.equal(refused(open, 'anything.example:1', 'http://evil.example'), undefined);
  });

  it('faces added later extend the same check', () => {
    const guard = new HostOriginGuard({ host: '127.0.0.1' });
    assert.equal(refused(guard, 'preview.example.net'), 'forbidden_origin');
    guard.addHostRule((name) => name.endsWith('.example.net'));
    assert.equal(refused(guard, 'preview.example.net'), undefined);
  });
});
