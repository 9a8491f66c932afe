/**
 * The course system's synthetic data: users 1..1000 and their balances, computed rather than
 * stored, so every process agrees on them without a database.
 */

/** Highest existing user id; ids 1..MAX_USER_ID exist. */
export const MAX_USER_ID = 1000;

/** Payments above this amount go to a manual review that outlasts any caller's timeout. */
export const MANUAL_REVIEW_THRESHOLD = 10_000;

/** How long a manual review takes, in ms: longer than any caller of the demo waits. */
export const MANUAL_REVIEW_MS = 5_000;

const FIRST_NAMES = ["Alice", "Bob", "Charlie", "Dana", "Erin", "Farid", "Grace", "Hiro", "Ines", "Jonas"];
const LAST_NAMES = ["Smith", "Novak", "Okafor", "Garcia", "Kim", "Larsen", "Moreau", "Rossi", "Sato", "Weber"];

/** A user of the course system. */
export interface User {
  id: number;
  name: string;
  email: string;
}

/**
 * Looks a user up by id.
 *
 * @returns the user, or `undefined` when `id` is not an integer in 1..{@link MAX_USER_ID}
 */
export function findUser(id: number): User | undefined {
  if (!Number.isInteger(id) || id < 1 || id > MAX_USER_ID) {
    return undefined;
  }
  const first = FIRST_NAMES[id % FIRST_NAMES.length] ?? "User";
  const last = LAST_NAMES[Math.floor(id / FIRST_NAMES.length) % LAST_NAMES.length] ?? String(id);
  return { id, name: `${first} ${last}`, email: `${first.toLowerCase()}.${last.toLowerCase()}.${id}@example.com` };
}

/** The balance of a user, in euros: a deterministic amount between 100 and 712.5. */
export function balanceOf(userId: number): { amount: number; currency: string } {
  return { amount: 100 + (Math.abs(userId) % 50) * 12.5, currency: "EUR" };
}
