import { test } from "node:test";
import assert from "node:assert/strict";
import { kernelParams, kstrtobool, normalizedName, tokenizeCmdline } from "./kernel-cmdline.js";

const pairs = (text: string) => kernelParams(text).map((t) => [t.name, t.value]);

test("whitespace separates, quotes protect, the first '=' splits", () => {
  assert.deepEqual(pairs(' root=/dev/sda1\tro  acpi_osi="Windows 2020" a=b=c '), [
    ["root", "/dev/sda1"],
    ["ro", null],
    ["acpi_osi", "Windows 2020"],
    ["a", "b=c"],
  ]);
});

test("quotes as next_arg strips them: a leading quote of the parameter or of the value, and the closing one", () => {
  assert.deepEqual(pairs('"dyndbg=file x +p" foo="bar" "quoted" half="open x'), [
    ["dyndbg", "file x +p"],
    ["foo", "bar"],
    ["quoted", null],
    ["half", "open x"],
  ]);
  // A quote inside a value without a leading quote stays.
  assert.deepEqual(pairs('a=b"c d"'), [["a", 'b"c d"']]);
});

test("an '=' as the first character does not split (next_arg looks from the second)", () => {
  assert.deepEqual(pairs("=x =y=z"), [["=x", null], ["=y", "z"]]);
});

test("a bare -- ends the kernel's parameters; the tokens keep their offsets for editing", () => {
  const text = "quiet -- single x=1";
  assert.deepEqual(pairs(text), [["quiet", null]]);
  const all = tokenizeCmdline(text);
  assert.deepEqual(all.map((t) => [t.text, t.forInit]), [["quiet", false], ["--", true], ["single", true], ["x=1", true]]);
  for (const t of all) assert.equal(text.slice(t.start, t.end), t.text);
  // "--x" and "--=" are parameters, not the separator.
  assert.deepEqual(pairs("--x --=1"), [["--x", null], ["--", "1"]]);
});

test("names compare with '-' and '_' equal", () => {
  assert.equal(normalizedName("vfio-pci.ids"), "vfio_pci.ids");
});

test("kstrtobool reads the first characters as lib/kstrtox.c does", () => {
  const cases: [string | null, boolean | null][] = [
    ["1", true], ["Y", true], ["yes", true], ["t", true], ["True", true], ["on", true], ["ON", true],
    ["0", false], ["N", false], ["no", false], ["f", false], ["off", false], ["oFf", false],
    ["o", null], ["", null], [null, null], ["maybe", null], ["2", null],
  ];
  for (const [v, want] of cases) assert.equal(kstrtobool(v), want, String(v));
});
