/** IPv4/IPv6 addresses and prefixes as bigints: pure helpers for subnet and address allocation. */

export type Family = 4 | 6;

export interface Cidr {
  family: Family;
  /** Network address (host bits zero). */
  base: bigint;
  prefix: number;
}

const bits = (f: Family): number => (f === 4 ? 32 : 128);

export function parseIp(text: string): { family: Family; value: bigint } {
  if (text.includes(':')) return { family: 6, value: parseIp6(text) };
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) throw new Error(`invalid IPv4 address ${JSON.stringify(text)}`);
  return { family: 4, value: parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n) };
}

function parseIp6(text: string): bigint {
  const bad = (): Error => new Error(`invalid IPv6 address ${JSON.stringify(text)}`);
  const halves = text.split('::');
  if (halves.length > 2) throw bad();
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const head = groups(halves[0] ?? '');
  const tailG = halves.length === 2 ? groups(halves[1] ?? '') : [];
  const missing = 8 - head.length - tailG.length;
  if ((halves.length === 2 && missing < 1) || (halves.length === 1 && head.length !== 8)) throw bad();
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tailG];
  return all.reduce((acc, g) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw bad();
    return (acc << 16n) | BigInt(parseInt(g, 16));
  }, 0n);
}

export function formatIp(family: Family, value: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 255n)).join('.');
  const g = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  // RFC 5952: compress the longest run (length >= 2) of zero groups.
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export function parseCidr(text: string): Cidr {
  const [addr, len, extra] = text.split('/');
  if (addr === undefined || len === undefined || extra !== undefined || !/^\d{1,3}$/.test(len)) throw new Error(`invalid CIDR ${JSON.stringify(text)}`);
  const { family, value } = parseIp(addr);
  const prefix = Number(len);
  if (prefix > bits(family)) throw new Error(`invalid CIDR ${JSON.stringify(text)}: prefix longer than ${bits(family)}`);
  const hostBits = BigInt(bits(family) - prefix);
  if (value & ((1n << hostBits) - 1n)) throw new Error(`invalid CIDR ${JSON.stringify(text)}: host bits set`);
  return { family, base: value, prefix };
}

export const formatCidr = (c: Cidr): string => `${formatIp(c.family, c.base)}/${c.prefix}`;

/** The index-th subnet of length `prefix` inside `parent` (index 0 is the first). */
export function nthSubnet(parent: Cidr, prefix: number, index: bigint): Cidr {
  if (prefix < parent.prefix || prefix > bits(parent.family)) throw new Error(`cannot cut /${prefix} subnets from ${formatCidr(parent)}`);
  if (index < 0n || index >= subnetCount(parent, prefix)) throw new Error(`subnet ${index} is outside ${formatCidr(parent)}`);
  return { family: parent.family, base: parent.base + (index << BigInt(bits(parent.family) - prefix)), prefix };
}

export const subnetCount = (parent: Cidr, prefix: number): bigint => 1n << BigInt(prefix - parent.prefix);

/** The address at offset `n` in a subnet (n = 1 is the first host of an IPv4 /24: x.x.x.1). */
export function nthAddress(c: Cidr, n: bigint): string {
  if (n < 0n || n >= 1n << BigInt(bits(c.family) - c.prefix)) throw new Error(`offset ${n} is outside ${formatCidr(c)}`);
  return formatIp(c.family, c.base + n);
}

export function contains(c: Cidr, ip: string): boolean {
  const { family, value } = parseIp(ip);
  if (family !== c.family) return false;
  const hostBits = BigInt(bits(c.family) - c.prefix);
  return value >> hostBits === c.base >> hostBits;
}

/** Offset of an address inside its subnet. */
export function offsetOf(c: Cidr, ip: string): bigint {
  if (!contains(c, ip)) throw new Error(`${ip} is not in ${formatCidr(c)}`);
  return parseIp(ip).value - c.base;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const p = BigInt(bits(a.family) - Math.min(a.prefix, b.prefix));
  return a.base >> p === b.base >> p;
}

/** Number of host offsets a subnet has (capped for IPv6, where it is astronomically large). */
export const size = (c: Cidr): bigint => 1n << BigInt(bits(c.family) - c.prefix);

/**
 * `block` without the `holes`, as the fewest positive prefixes (a match never needs `!=`): each hole
 * inside the block splits it into halves down to the hole's length. Holes of another family or
 * outside the block change nothing.
 */
export function subtract(block: Cidr, holes: readonly Cidr[]): Cidr[] {
  const hole = holes.find((h) => overlaps(h, block));
  if (!hole) return [block];
  if (hole.prefix <= block.prefix) return [];
  const half = BigInt(bits(block.family) - block.prefix - 1);
  const lo: Cidr = { family: block.family, base: block.base, prefix: block.prefix + 1 };
  const hi: Cidr = { family: block.family, base: block.base + (1n << half), prefix: block.prefix + 1 };
  return [...subtract(lo, holes), ...subtract(hi, holes)];
}

/** A CIDR with its host bits cleared (`10.1.2.3/8` is `10.0.0.0/8`), and whether any were set. */
export function normaliseCidr(text: string): { cidr: Cidr; hostBits: boolean } {
  const [addr = '', len = '', extra] = text.split('/');
  if (extra !== undefined || !/^\d{1,3}$/.test(len)) throw new Error(`invalid CIDR ${JSON.stringify(text)}`);
  const { family, value } = parseIp(addr);
  const prefix = Number(len);
  if (prefix > bits(family)) throw new Error(`invalid CIDR ${JSON.stringify(text)}: prefix longer than ${bits(family)}`);
  const mask = ((1n << BigInt(bits(family) - prefix)) - 1n);
  return { cidr: { family, base: value & ~mask, prefix }, hostBits: (value & mask) !== 0n };
}
