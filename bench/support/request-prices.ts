/**
 * The requests each system makes per ResourceSync in the scale benchmark's two bulk phases, and the floor their
 * prices set on Sinker / ideal: where the API server's CPU is what bounds a phase (2 cores shared by the control
 * plane and the system measured), the phase cannot take less than the API server's CPU for its requests, so the
 * ratio of the two sums is the best ratio any Sinker making these requests could measure there. Pure:
 * `npm run bench:requests` measures the prices (bench/request-costs.ts) and prints these sums.
 */

/** One kind of request, as measured: the API server's and etcd's CPU per request (ms). */
export interface Price {
  apiMs: number;
  etcdMs: number;
}

/** The requests priced by `npm run bench:requests`, in the order they are measured. */
export const STEPS = [
  "create ResourceSync",
  "apply target (ideal)",
  "delete ResourceSync",
  "delete target (ideal)",
  "create ResourceSync, finalizer policy acting",
  "apply target (Sinker)",
  "status patch",
  "delete ResourceSync with finalizer",
  "delete target (Sinker)",
  "create Event",
  "finalizer patch, last finalizer",
] as const;
export type Step = (typeof STEPS)[number];

export interface Phase {
  name: "convergence" | "deletion";
  /** What the benchmark and the ideal copier send per ResourceSync (the benchmark's own create and DELETE of the
   * ResourceSync count: they cost more when a policy or a finalizer acts on them). */
  ideal: readonly Step[];
  sinker: readonly Step[];
}

/** What `npm run bench` counts per ResourceSync in each phase (its "requests per ResourceSync" rows). */
export const PHASES: readonly Phase[] = [
  {
    name: "convergence",
    ideal: ["create ResourceSync", "apply target (ideal)"],
    sinker: ["create ResourceSync, finalizer policy acting", "apply target (Sinker)", "status patch"],
  },
  {
    name: "deletion",
    ideal: ["delete ResourceSync", "delete target (ideal)"],
    sinker: [
      "delete ResourceSync with finalizer",
      "delete target (Sinker)",
      "create Event",
      "finalizer patch, last finalizer",
    ],
  },
];

export interface Floor {
  phase: Phase["name"];
  /** API server CPU per ResourceSync (ms) for each system's requests. */
  idealMs: number;
  sinkerMs: number;
  /** sinkerMs / idealMs: the lowest Sinker / ideal ratio the API server's CPU allows. */
  ratio: number;
}

/** The API server CPU per ResourceSync of each system in each phase, and their ratio. */
export function floors(prices: ReadonlyMap<Step, Price>): Floor[] {
  const sum = (steps: readonly Step[]) =>
    steps.reduce((total, step) => {
      const price = prices.get(step);
      if (!price) throw new Error(`no price measured for "${step}"`);
      return total + price.apiMs;
    }, 0);
  return PHASES.map((p) => {
    const idealMs = sum(p.ideal);
    const sinkerMs = sum(p.sinker);
    return { phase: p.name, idealMs, sinkerMs, ratio: idealMs > 0 ? sinkerMs / idealMs : Number.NaN };
  });
}

/** Per step, the median over rounds of each figure (a round that lacks a step is passed over for it). */
export function medianPrices(rounds: ReadonlyArray<ReadonlyMap<Step, Price>>): Map<Step, Price> {
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    const mid = s.length >> 1;
    return s.length % 2 === 1 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
  };
  const out = new Map<Step, Price>();
  for (const step of STEPS) {
    const seen = rounds.map((r) => r.get(step)).filter((p): p is Price => p !== undefined);
    if (seen.length === 0) continue;
    out.set(step, { apiMs: median(seen.map((p) => p.apiMs)), etcdMs: median(seen.map((p) => p.etcdMs)) });
  }
  return out;
}
