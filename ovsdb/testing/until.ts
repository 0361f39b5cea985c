// Test helper: polls a condition often (10 ms: cache updates land within milliseconds), failing with what it waited for.
import assert from 'node:assert/strict';

export async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
