/**
 * A claimer process for the PostgreSQL claim test: `pg_claimer.ts URL HOST
 * SEED N DIR` connects, writes `DIR/HOST.ready`, waits for `DIR/go` (so all
 * claimers start together), claims gaps G-1..G-N in an order shuffled by
 * SEED, all at once, and prints the ids of the gaps it won as one JSON array.
 */
import { openClaims } from "../lib/store/pg/claims.ts";
import { seededRandom } from "../lib/learn/policy.ts";

const [url, host, seed, n, dir] = Deno.args;
const claims = await openClaims(url, host, `${host}-run`);
if (!claims.ok) {
  console.error(claims.error);
  Deno.exit(2);
}
await Deno.writeTextFile(`${dir}/${host}.ready`, "\n");
for (let i = 0; i < 6000; i++) {
  if (await Deno.stat(`${dir}/go`).then(() => true, () => false)) break;
  await new Promise((r) => setTimeout(r, 10));
}
const random = seededRandom(Number(seed));
const gaps = Array.from({ length: Number(n) }, (_, i) => `G-${i + 1}`)
  .map((g) => [random(), g] as const)
  .sort((a, b) => a[0] - b[0])
  .map(([, g]) => g);
const won: string[] = [];
await Promise.all(gaps.map(async (g) => {
  const r = await claims.value.claim(g);
  if (!r.ok) {
    console.error(r.error);
    Deno.exit(1);
  }
  if (r.value.won) won.push(g);
}));
await claims.value.close();
console.log(JSON.stringify(won));
