import type { Random } from '@srcnet/service-kit';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** Skaha's ids are random lower-case alphanumerics: 8 characters for sessions, 3 for apps. */
export function randomId(random: Random, length: number): string {
  let id = '';
  for (let i = 0; i < length; i++) id += ALPHABET[Math.floor(random() * ALPHABET.length)];
  return id;
}
