// RFC 6238 TOTP (and RFC 4226 HOTP) with node:crypto, plus an RFC 4648 base32 decoder.
//
//   totp(secretBase32)                          -> '123456' for the current 30 s step
//   totp(secretBase32, { time: 59, digits: 8 })  -> RFC 6238 test vector
//   freshTotp(secretBase32)                     -> a code for a step not handed out before for
//                                                  this secret (servers may refuse replays)
import { createHmac } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** Decode RFC 4648 base32 (case-insensitive, padding and spaces ignored). */
export function base32Decode(input) {
  const clean = String(input).toUpperCase().replace(/[\s=]/g, '');
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of clean) {
    const idx = ALPHABET.indexOf(ch);
    if (idx < 0) throw new Error(`invalid base32 character ${JSON.stringify(ch)} in ${JSON.stringify(input)}`);
    value = (value << 5) | idx;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** Encode bytes as RFC 4648 base32 without padding. */
export function base32Encode(buf) {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of Buffer.from(buf)) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/** RFC 4226 HOTP over a raw key. */
export function hotp(key, counter, { digits = 6, algorithm = 'sha1' } = {}) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac(algorithm, key).update(msg).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const bin =
    ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(bin % 10 ** digits).padStart(digits, '0');
}

/** The time step (counter) for a unix time in seconds. */
export function totpStep(time = Date.now() / 1000, period = 30) {
  return Math.floor(time / period);
}

/**
 * RFC 6238 TOTP for a base32 secret.
 * @param {string} secret base32
 * @param {{time?: number, period?: number, digits?: number, algorithm?: string, step?: number}} [opts]
 */
export function totp(secret, { time = Date.now() / 1000, period = 30, digits = 6, algorithm = 'sha1', step } = {}) {
  const counter = step ?? totpStep(time, period);
  return hotp(base32Decode(secret), counter, { digits, algorithm });
}

const lastStep = new Map(); // secret -> last step handed out by freshTotp

/**
 * A code for the current step, or the next one if the current step was already used for this
 * secret (servers accept one step of skew; a server refusing replays would reject a repeat).
 * Waits for the clock when even the next step was used.
 */
export async function freshTotp(secret, { period = 30 } = {}) {
  for (;;) {
    const now = totpStep(Date.now() / 1000, period);
    const prev = lastStep.get(secret);
    let step = now;
    if (prev !== undefined && prev >= now) step = prev + 1;
    if (step <= now + 1) {
      lastStep.set(secret, step);
      return totp(secret, { step, period });
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
