// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 24 * 60 * 60 * 1000;

/** A certificate and its key, both PEM. */
export interface PemPair {
  cert: string;
  key: string;
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

/** A certificate as PEM ending in a newline, so PEM blocks can be concatenated. */
export function certificatePem(cert: x509.X509Certificate): string {
  return `${cert.toString('pem').trimEnd()}\n`;
}

function serial(): string {
  // Positive: the top bit of the first byte clear.
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

/**
 * A certificate authority made by one worker at start-up (in memory; a new one each run), used
 * only to present certificates for destinations that have a header rule, so the proxy can add
 * the rule's headers inside TLS. Sandboxes trust it through the CA bundle the worker installs.
 */
export class WorkerCa {
  private readonly contexts = new Map<string, Promise<SecureContext>>();

  private constructor(
    readonly certPem: string,
    private readonly caCert: x509.X509Certificate,
    private readonly caKeys: webcrypto.CryptoKeyPair,
    private readonly leafKeys: webcrypto.CryptoKeyPair,
    private readonly leafKeyPem: string,
  ) {}

  /** Generates a CA named `commonName`, valid ten years. */
  static async create(commonName: string): Promise<WorkerCa> {
    const pair = await generateCa(commonName, webcrypto);
    const leafKeys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
    return new WorkerCa(
      certificatePem(pair.cert),
      pair.cert,
      pair.keys,
      leafKeys,
      await keyPem(leafKeys.privateKey),
    );
  }

  /** A TLS context presenting a certificate for `host`, made once per host. */
  contextFor(host: string): Promise<SecureContext> {
    let context = this.contexts.get(host);
    if (context === undefined) {
      context = this.issue(host).then(({ cert, key }) =>
        createSecureContext({ cert: `${cert}${this.certPem}`, key }),
      );
      this.contexts.set(host, context);
    }
    return context;
  }

  /** A leaf certificate for `host` (a name or an address), signed by this CA. */
  async issue(host: string): Promise<PemPair> {
    const cert = await issueLeaf(host, this.caCert, this.caKeys, this.leafKeys, webcrypto);
    return { cert: certificatePem(cert), key: this.leafKeyPem };
  }
}

/** A self-signed CA certificate and its keys (also used by the tests for their own CA). */
export async function generateCa(
  commonName: string,
  crypto: webcrypto.Crypto = webcrypto,
): Promise<{ cert: x509.X509Certificate; keys: webcrypto.CryptoKeyPair; keyPem: string }> {
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serial(),
      name: `CN=${commonName}`,
      notBefore: new Date(Date.now() - DAY_MS),
      notAfter: new Date(Date.now() + 3650 * DAY_MS),
      keys,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { cert, keys, keyPem: await keyPem(keys.privateKey) };
}

/** A server certificate for `host`, signed by the CA. */
export async function issueLeaf(
  host: string,
  caCert: x509.X509Certificate,
  caKeys: webcrypto.CryptoKeyPair,
  leafKeys: webcrypto.CryptoKeyPair,
  crypto: webcrypto.Crypto = webcrypto,
): Promise<x509.X509Certificate> {
  const isAddress = /^[\d.]+$|:/.test(host);
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: serial(),
      subject: `CN=${host}`,
      issuer: caCert.subject,
      notBefore: new Date(Date.now() - DAY_MS),
      notAfter: new Date(Date.now() + 365 * DAY_MS),
      signingKey: caKeys.privateKey,
      publicKey: leafKeys.publicKey,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension([{ type: isAddress ? 'ip' : 'dns', value: host }]),
        await x509.AuthorityKeyIdentifierExtension.create(caCert, false, crypto),
      ],
    },
    crypto,
  );
}
