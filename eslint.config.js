// Lint: typescript-eslint strictTypeChecked, plus the layering rules from DEVELOPERS.md:
// the core (src/, except device/file.ts and node.ts) must not touch node:* so it runs in a browser,
// and engine code never schedules work behind the scheduler's back.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const browserSafe = "Core code must stay browser-safe; Node-only code lives in src/device/file.ts, src/node.ts or tools/.";
const upward = (forbidden) => ({
  paths: ["fs", "fs/promises", "path", "os", "child_process", "crypto", "zlib", "buffer"].map((name) => ({ name, message: browserSafe })),
  patterns: [
    { group: ["node:*"], message: browserSafe },
    { group: forbidden, message: "Layers import only downward (see DEVELOPERS.md)." },
  ],
});

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "bin/", "coverage/", "eslint.config.js", "vitest.config.ts"] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/switch-exhaustiveness-check": "error",
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true, allowBoolean: true }],
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/no-confusing-void-expression": ["error", { ignoreArrowShorthand: true }],
      "@typescript-eslint/no-unnecessary-condition": ["error", { allowConstantLoopConditions: true }],
      "no-constant-condition": ["error", { checkLoops: false }],
    },
  },
  { files: ["src/format/**/*.ts"], ignores: ["**/*.test.ts"], rules: { "no-restricted-imports": ["error", upward(["**/device/*", "**/cache/*", "**/fs/*", "**/api/*", "**/tools/**"])] } },
  { files: ["src/device/**/*.ts", "src/sync/**/*.ts"], ignores: ["**/*.test.ts", "src/device/file.ts"], rules: { "no-restricted-imports": ["error", upward(["**/format/*", "**/cache/*", "**/fs/*", "**/api/*", "**/tools/**"])] } },
  { files: ["src/cache/**/*.ts"], ignores: ["**/*.test.ts"], rules: { "no-restricted-imports": ["error", upward(["**/format/*", "**/fs/*", "**/api/*", "**/tools/**"])] } },
  { files: ["src/fs/**/*.ts", "src/fsck/**/*.ts"], ignores: ["**/*.test.ts"], rules: { "no-restricted-imports": ["error", upward(["**/api/*", "**/tools/**"])] } },
  { files: ["src/api/**/*.ts"], ignores: ["**/*.test.ts"], rules: { "no-restricted-imports": ["error", upward(["**/tools/**"])] } },
  { files: ["src/fs/**/*.ts", "src/fsck/**/*.ts", "src/cache/**/*.ts"], ignores: ["**/*.test.ts"], rules: { "no-restricted-globals": ["error", "setTimeout", "setImmediate", "queueMicrotask", "setInterval"] } },
  { files: ["**/*.test.ts", "test/**/*.ts", "bench/**/*.ts", "tools/**/*.ts"], rules: { "@typescript-eslint/no-floating-promises": "error" } },
);
