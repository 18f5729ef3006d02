/**
 * A small seeded pseudo-random generator (mulberry32) for everything that must be reproducible from a seed:
 * fuzz and property-style tests, benchmark data, the simulated hypervisor's page scattering.
 */
export type Random = () => number;

/** Returns a generator of floats in [0, 1), the same sequence for the same seed. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
