/**
 * The project's TypeScript sources as a program: files, their runtime imports, and their functions with line
 * counts. The structure tests (cycles, file length, function length) read it.
 */
import { readdirSync, readFileSync, lstatSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Directories that hold data, downloads or output, not sources. */
const SKIP = new Set(["node_modules", "dist", "fixtures", "corpus", "work", "out"]);

/** Source files (repository-relative, "/" separated) under `dirs`, tests included unless `withTests` is false. */
export function sourceFiles(dirs: string[] = ["src"], withTests = true): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(join(REPO, dir))) {
      if (SKIP.has(name) || name.startsWith(".")) continue;
      const p = `${dir}/${name}`;
      if (lstatSync(join(REPO, p)).isDirectory()) walk(p);
      else if (name.endsWith(".ts") && !name.endsWith(".d.ts") && (withTests || !name.includes(".test."))) out.push(p);
    }
  };
  for (const d of dirs) walk(d);
  return out.sort();
}

export function parse(file: string, root = REPO): ts.SourceFile {
  return ts.createSourceFile(file, readFileSync(join(root, file), "utf8"), ts.ScriptTarget.ES2022, true);
}

/**
 * Modules `file` loads at run time: import and export-from declarations with a relative specifier, except
 * `import type` / `export type` (erased by the compiler). Under verbatimModuleSyntax an import whose every name
 * is marked `type` still loads the module, so it counts.
 */
export function runtimeImports(file: string, sf: ts.SourceFile = parse(file)): string[] {
  return imports(file, sf, false);
}

/** Every module `file` names in an import or export-from declaration, type-only ones included. */
export function allImports(file: string, sf: ts.SourceFile = parse(file)): string[] {
  return imports(file, sf, true);
}

function imports(file: string, sf: ts.SourceFile, withTypes: boolean, root = REPO): string[] {
  const out: string[] = [];
  for (const st of sf.statements) {
    let spec: ts.Expression | undefined;
    if (ts.isImportDeclaration(st)) {
      if (!withTypes && st.importClause?.isTypeOnly === true) continue;
      spec = st.moduleSpecifier;
    } else if (ts.isExportDeclaration(st)) {
      if (!withTypes && st.isTypeOnly) continue;
      spec = st.moduleSpecifier;
    }
    if (spec === undefined || !ts.isStringLiteral(spec) || !spec.text.startsWith(".")) continue;
    const target = relative(root, resolve(root, dirname(file), spec.text.replace(/\.js$/, ".ts"))).split("\\").join("/");
    out.push(target);
  }
  return out;
}

/**
 * Strongly connected components of more than one file (or a file importing itself): the import cycles, over
 * runtime imports only or, with `withTypes`, over type-only imports as well. Files are relative to `root`.
 */
export function importCycles(files: string[], withTypes = false, root = REPO): string[][] {
  const graph = new Map<string, string[]>();
  const set = new Set(files);
  for (const f of files) graph.set(f, imports(f, parse(f, root), withTypes, root).filter((t) => set.has(t)));
  // Tarjan's algorithm; recursion depth is bounded by the number of files (a few hundred).
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(scc.sort());
    }
  };
  for (const f of files) if (!idx.has(f)) visit(f);
  return cycles.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

export interface FunctionSpan {
  file: string;
  /** Declared name, or "<anonymous>" with the enclosing name when there is one. */
  name: string;
  /** 1-based line of the declaration. */
  line: number;
  lines: number;
  /** The comments just before the declaration (or before the statement that holds it). */
  leadingComment: string;
}

function nameOf(node: ts.Node, sf: ts.SourceFile): string {
  const n = (node as { name?: ts.Node }).name;
  if (n !== undefined) return n.getText(sf);
  const p = node.parent;
  if (ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p)) return p.name.getText(sf);
  return "<anonymous>";
}

function commentsBefore(node: ts.Node, sf: ts.SourceFile): string {
  let holder: ts.Node = node;
  // `const f = () => {…}` and `x: function () {…}`: the comment sits before the statement or property.
  while (holder.parent !== undefined && !ts.isSourceFile(holder.parent) && !ts.isBlock(holder.parent) && !ts.isClassLike(holder.parent) && !ts.isObjectLiteralExpression(holder.parent)) {
    holder = holder.parent;
  }
  const text = sf.getFullText();
  return (ts.getLeadingCommentRanges(text, holder.getFullStart()) ?? []).map((r) => text.slice(r.pos, r.end)).join("\n");
}

/** Every function-like declaration with a body: its length in lines, from the declaration to the closing brace. */
export function functionSpans(file: string, sf: ts.SourceFile = parse(file)): FunctionSpan[] {
  const out: FunctionSpan[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && (node as { body?: ts.Node }).body !== undefined) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      out.push({ file, name: nameOf(node, sf), line: start + 1, lines: end - start + 1, leadingComment: commentsBefore(node, sf) });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

export function lineCount(file: string): number {
  const text = readFileSync(join(REPO, file), "utf8");
  return text.endsWith("\n") ? text.split("\n").length - 1 : text.split("\n").length;
}
