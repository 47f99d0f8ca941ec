#!/usr/bin/env node
// Lint Cypher statements with Neo4j's own parser and semantic analysis
// (@neo4j-cypher/language-support, pinned in package.json).
//
// Input (stdin, JSON):
//   {"statements": [{"name": str, "query": str, "parameters": {...}}],
//    "labels": [str], "relationshipTypes": [str]}
// Output (stdout, JSON):
//   {"version": str, "results": [{"name": str, "diagnostics":
//     [{"severity": 1|2|3|4, "message": str, "line": int, "column": int}]}]}
// severity 1 = error, 2 = warning. Exit code 2 when the package is missing or
// not the pinned version.
//
// All statements go through one process: the parser takes ~1.5 s to load and
// ~0.15 s of CPU per statement after that (worker threads were tried: each one
// pays the load and warm-up again, which costs more than it saves on 2 cores).
//
// Procedures and functions are checked against the catalogue of a real Neo4j 5
// server with GDS and APOC that ships with the pinned package (its test
// fixture `mockSchema`), so a misspelt procedure, a wrong YIELD column or too
// many arguments are errors, as they would be on the server.
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const PINNED = '2.0.0-next.38';
const here = dirname(fileURLToPath(import.meta.url));
const modules = process.env.CYPHER_LINT_MODULES || join(here, 'node_modules');
const pkgDir = join(modules, '@neo4j-cypher', 'language-support');

function die(message) {
  process.stderr.write(`cypher-lint: ${message}\n`);
  process.exit(2);
}

if (!existsSync(join(pkgDir, 'package.json'))) {
  die(`@neo4j-cypher/language-support is not installed under ${modules}; ` +
      `run: npm ci --prefix tools/cypher-lint`);
}
const version = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version;
if (version !== PINNED) {
  die(`found @neo4j-cypher/language-support ${version}, need ${PINNED}`);
}
const esm = join(pkgDir, 'dist', 'esm', 'project', 'language-support', 'src');
const version5 = 'CYPHER 5';

// The parser and the catalogue.
async function loadLinter() {
  const { lintCypherQuery } = await import(pathToFileURL(join(esm, 'index.js')).href);
  const { testData } = await import(pathToFileURL(join(esm, 'tests', 'testData.js')).href);
  const catalog = testData.mockSchema;
  if (!catalog?.procedures?.[version5] || !catalog?.functions?.[version5]) {
    die('the procedure/function catalogue is missing from the installed package');
  }
  const lowerFunctions = new Map(
    Object.keys(catalog.functions[version5]).map((name) => [name.toLowerCase(), name]));
  return { lintCypherQuery, catalog, lowerFunctions };
}

// The catalogue entries a statement can refer to: every dotted name before "(" that the
// catalogue knows (built-in functions case-insensitively). Handing the linter only these
// keeps its per-call resolver check small; an unknown name is still reported as missing.
function catalogFor(query, { catalog, lowerFunctions }) {
  const procedures = {};
  const functions = {};
  for (const [, raw] of query.matchAll(/([A-Za-z_][\w.]*)\s*\(/g)) {
    if (catalog.procedures[version5][raw]) procedures[raw] = catalog.procedures[version5][raw];
    const fn = catalog.functions[version5][raw] ? raw : lowerFunctions.get(raw.toLowerCase());
    if (fn) functions[fn] = catalog.functions[version5][fn];
  }
  return { procedures: { [version5]: procedures }, functions: { [version5]: functions } };
}

async function lintAll(input) {
  const linter = await loadLinter();
  const { lintCypherQuery } = linter;
  return input.statements.map(({ name, query, parameters }) => {
    const dbSchema = {
      labels: input.labels,
      relationshipTypes: input.relationshipTypes,
      ...catalogFor(query, linter),
      parameters: parameters ?? {},
      defaultLanguage: 'CYPHER 5',
    };
    try {
      const { diagnostics } = lintCypherQuery(query, dbSchema);
      return {
        name,
        diagnostics: diagnostics.map((d) => ({
          severity: d.severity,
          message: d.message,
          line: d.range.start.line + 1,
          column: d.range.start.character + 1,
        })),
      };
    } catch (error) {
      return {
        name,
        diagnostics: [{ severity: 1, message: `linter crashed: ${error}`, line: 1, column: 1 }],
      };
    }
  });
}

const input = JSON.parse(readFileSync(0, 'utf8'));
const results = await lintAll(input);
process.stdout.write(JSON.stringify({ version, results }));
