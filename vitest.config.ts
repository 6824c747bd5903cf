import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "tools/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Oracle tests mount loop devices and spawn e2fsprogs; keep files in parallel but bounded.
    maxWorkers: 2,
    reporters: ["default"],
    globalSetup: ["test/global_setup.ts"],
  },
});
