#!/usr/bin/env node
// Verifies X-Session-Signature, sessiond's signature of the session headers
// (docs/HEADER-PROTOCOL.md, Signed session headers), so that a backend
// reached directly, not through sessiond, can refuse the request.
//
//   const { verify } = require('./verify_signature');
//   verify(KEY, req.method, req.url, req.headers, { maxAge: 60 })
//
// KEY is upstream_signature.key (a string or Buffer); headers is Node's
// req.headers (names lower-cased) or a list of [name, value] pairs. True
// only when the signature is present, at most maxAge seconds old (or ahead),
// and matches every X-Session-* header, the method and the target. Node.js
// built-in modules only.
//
//   node verify_signature.js KEY METHOD TARGET < headers.json
//       checks a request whose headers are a JSON list of [name, value];
//       prints "valid" (exit 0) or "invalid" (exit 1).
'use strict';

const crypto = require('crypto');

const PREFIX = 'x-session-';
const SIGNATURE = 'x-session-signature';

// The signed text: version, time, method, target, then each X-Session-*
// header but the signature, lower-cased and sorted by name.
function canonical(t, method, target, sessionHeaders) {
  const sorted = sessionHeaders.slice().sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return ['sessiond-signature-v1', t, method, target, ...sorted.map(([n, v]) => `${n}:${v}`)].join('\n') + '\n';
}

function verify(key, method, target, headers, { maxAge = 60, now = Date.now() / 1000 } = {}) {
  const pairs = Array.isArray(headers) ? headers : Object.entries(headers);
  const signatures = [];
  const session = [];
  for (const [name, value] of pairs) {
    const lname = name.toLowerCase();
    if (lname === SIGNATURE) signatures.push(value);
    else if (lname.startsWith(PREFIX)) session.push([lname, value]);
  }
  if (signatures.length !== 1 || typeof signatures[0] !== 'string') return false;
  const fields = {};
  for (const part of signatures[0].split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields[part.slice(0, eq)] = part.slice(eq + 1);
  }
  const t = fields.t || '';
  const mac = fields.v1 || '';
  if (!/^[0-9]+$/.test(t) || !/^[0-9a-f]{64}$/.test(mac)) return false;
  if (Math.abs(now - Number(t)) > maxAge) return false;
  const text = Buffer.from(canonical(t, method, target, session), 'latin1');
  const expected = crypto.createHmac('sha256', key).update(text).digest();
  return crypto.timingSafeEqual(expected, Buffer.from(mac, 'hex'));
}

module.exports = { verify, canonical };

if (require.main === module) {
  const [key, method, target] = process.argv.slice(2);
  if (target === undefined) {
    console.error('usage: node verify_signature.js KEY METHOD TARGET < headers.json');
    process.exit(2);
  }
  let input = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => { input += chunk; });
  process.stdin.on('end', () => {
    const ok = verify(key, method, target, JSON.parse(input));
    console.log(ok ? 'valid' : 'invalid');
    process.exit(ok ? 0 : 1);
  });
}
