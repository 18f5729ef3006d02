/**
 * The numeric-literal scan behind the spec-literal tests (test/spec-literals.test.ts for VT-d,
 * test/spec-literals-amd.test.ts for AMD-Vi): it parses a module and reports every number used the way a bit
 * position, a mask, a register offset, an entry size or a field formula is:
 *
 *   bitwise   an operand of & | ^ << >> >>> (or their assignments) or of ~
 *   scale     an operand of * / %  (entry sizes: `bus * 16`, `index * 8`; field formulas: `4 + 2 * nd`)
 *   offset    the address argument of a register or memory access, or a number added to it (`ce + 8`, `r32(u, 0xb0)`)
 *   constant  a module-level constant made of numbers only (`const QI_IOTLB_TYPE = 0x2`)
 *   hex       any other number written in hex or binary (`reason >= 0x20`)
 *
 * The idioms that pass are listed in the VT-d test's header. Each test keeps its own lists of modules and of
 * allowed constants; this module only classifies literals.
 */
import ts from "typescript";

const ARITH_OK = new Set([4, 4096, 1000, 1e6, 1e9, 100]);
const K = ts.SyntaxKind;
const BITWISE = new Set([
  K.AmpersandToken, K.BarToken, K.CaretToken, K.LessThanLessThanToken, K.GreaterThanGreaterThanToken, K.GreaterThanGreaterThanGreaterThanToken,
  K.AmpersandEqualsToken, K.BarEqualsToken, K.CaretEqualsToken, K.LessThanLessThanEqualsToken, K.GreaterThanGreaterThanEqualsToken, K.GreaterThanGreaterThanGreaterThanEqualsToken,
]);
const SHIFTS = new Set([K.LessThanLessThanToken, K.GreaterThanGreaterThanToken, K.GreaterThanGreaterThanGreaterThanToken, K.LessThanLessThanEqualsToken, K.GreaterThanGreaterThanEqualsToken, K.GreaterThanGreaterThanGreaterThanEqualsToken]);
const SCALE = new Set([K.AsteriskToken, K.SlashToken, K.PercentToken, K.AsteriskEqualsToken, K.SlashEqualsToken, K.PercentEqualsToken]);
const U32_MAX = 0xffffffff;
const U64_MAX = 2 ** 64 - 1;

/** Register and memory accessors, and which argument is the address or offset. */
function addressArgument(name: string): number {
  if (/^[rw](32|64)$/.test(name)) return 1; // the driver's r32(unit, offset) / w32(unit, offset, value)
  if (/^(read|write|get|set|update)(8|16|32|64)$|^mmio(Read|Write)(32|64)?$|^canRead$/.test(name)) return 0;
  return -1;
}

export interface Finding {
  file: string;
  line: number;
  text: string;
  rule: "bitwise" | "scale" | "offset" | "constant" | "hex";
  /** The top-level declaration it is in ("" at top level outside one). */
  owner: string;
}

function value(n: ts.NumericLiteral | ts.BigIntLiteral): number {
  return ts.isBigIntLiteral(n) ? Number(BigInt(n.text.slice(0, -1))) : Number(n.text.replace(/_/g, ""));
}

function unwrap(n: ts.Node): ts.Node {
  let p = n.parent;
  while (p !== undefined && ts.isParenthesizedExpression(p)) p = p.parent;
  return p;
}

function isNumberLike(n: ts.Expression): boolean {
  let e = n;
  while (ts.isParenthesizedExpression(e) || ts.isPrefixUnaryExpression(e)) e = ts.isParenthesizedExpression(e) ? e.expression : e.operand;
  return ts.isNumericLiteral(e) || ts.isBigIntLiteral(e);
}

function onlyNumbers(n: ts.Expression): boolean {
  if (ts.isParenthesizedExpression(n)) return onlyNumbers(n.expression);
  if (ts.isPrefixUnaryExpression(n)) return onlyNumbers(n.operand);
  if (ts.isBinaryExpression(n)) return onlyNumbers(n.left) && onlyNumbers(n.right);
  return ts.isNumericLiteral(n) || ts.isBigIntLiteral(n);
}

/** The expression `lit` stands in, climbing parentheses (the operand a parent operator sees). */
function operand(lit: ts.Node): ts.Node {
  let c = lit;
  while (ts.isParenthesizedExpression(c.parent)) c = c.parent;
  return c;
}

function bitwiseRule(lit: ts.NumericLiteral | ts.BigIntLiteral, v: number, p: ts.Node): boolean | null {
  if (ts.isPrefixUnaryExpression(p) && p.operator === K.TildeToken) return true;
  if (!ts.isBinaryExpression(p) || !BITWISE.has(p.operatorToken.kind)) return null;
  const op = p.operatorToken.kind;
  const right = p.right === operand(lit);
  if (right && v === 32 && SHIFTS.has(op)) return false;
  if ((op === K.AmpersandToken || op === K.AmpersandEqualsToken) && (v === U32_MAX || v === U64_MAX)) return false;
  if (op === K.LessThanLessThanToken && !right && v === 1 && !isNumberLike(p.right)) return false;
  return true;
}

function constantRule(lit: ts.Node): string | null {
  let e: ts.Node = operand(lit);
  while (ts.isBinaryExpression(e.parent) || ts.isPrefixUnaryExpression(e.parent) || ts.isParenthesizedExpression(e.parent)) e = e.parent;
  const d = e.parent;
  if (d !== undefined && ts.isVariableDeclaration(d) && d.initializer === e && onlyNumbers(d.initializer) && ts.isSourceFile(d.parent.parent.parent)) return d.name.getText();
  return null;
}

function offsetRule(lit: ts.Node, p: ts.Node): boolean {
  const self = operand(lit);
  // The literal is the address argument, or a term added to it.
  let arg: ts.Node = self;
  if (ts.isBinaryExpression(p) && (p.operatorToken.kind === K.PlusToken || p.operatorToken.kind === K.MinusToken)) arg = operand(p);
  const call = arg.parent;
  if (call === undefined || !ts.isCallExpression(call)) return false;
  const callee = call.expression;
  const name = ts.isPropertyAccessExpression(callee) ? callee.name.text : ts.isIdentifier(callee) ? callee.text : "";
  const at = addressArgument(name);
  return at >= 0 && call.arguments[at] === arg;
}

function ownerOf(n: ts.Node): string {
  let c = n;
  while (c.parent !== undefined && !ts.isSourceFile(c.parent)) c = c.parent;
  if (ts.isVariableStatement(c)) return c.declarationList.declarations[0]?.name.getText() ?? "";
  const name = (c as { name?: ts.Node }).name;
  return name !== undefined ? name.getText() : "";
}

/** The literal's finding, or null when it is one of the idioms. */
function classify(lit: ts.NumericLiteral | ts.BigIntLiteral): Finding["rule"] | null {
  const v = value(lit);
  if (v === 0) return null;
  const p = unwrap(lit);
  const b = bitwiseRule(lit, v, p);
  if (b !== null) return b ? "bitwise" : null;
  if (ts.isBinaryExpression(p) && SCALE.has(p.operatorToken.kind)) return ARITH_OK.has(v) ? null : "scale";
  if (offsetRule(lit, p)) return "offset";
  if (constantRule(lit) !== null) return "constant";
  if (/^0[xXbBoO]/.test(lit.getText()) && v !== U32_MAX && v !== U64_MAX && v !== 2 ** 32) return "hex";
  return null;
}

/** Every suspicious literal of a source text (the scan itself, for the files and for the self-check). */
export function scanLiterals(file: string, sf: ts.SourceFile): Finding[] {
  const out: Finding[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isNumericLiteral(n) || ts.isBigIntLiteral(n)) {
      const rule = classify(n);
      if (rule !== null) {
        const line = sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
        out.push({ file, line, text: unwrap(n).getText(sf).slice(0, 80), rule, owner: ownerOf(n) });
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/** The findings of a source text given as a string (the tests' self-checks). */
export function scanSource(file: string, text: string): Finding[] {
  return scanLiterals(file, ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true));
}
