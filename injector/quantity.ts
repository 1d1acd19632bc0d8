// Kubernetes resource quantities ("100m", "0.5", "64Mi", "1e3"), enough to
// check an annotation's syntax and compare a request with its limit.
const QUANTITY = /^(\+?(?:\d+(?:\.\d*)?|\.\d+))((?:[KMGTPE]i)|[numkMGTPE]|[eE][+-]?\d+)?$/;

const SUFFIX: Record<string, number> = {
  '': 1, n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

export function isQuantity(text: string): boolean {
  return QUANTITY.test(text);
}

export function quantityValue(text: string): number {
  const m = QUANTITY.exec(text);
  if (m === null) throw new Error(`"${text}" is not a quantity`);
  const suffix = m[2] ?? '';
  const scale = /^[eE]/.test(suffix) ? 10 ** Number(suffix.slice(1)) : SUFFIX[suffix]!;
  return Number(m[1]) * scale;
}

export function compareQuantities(a: string, b: string): number {
  return Math.sign(quantityValue(a) - quantityValue(b));
}
