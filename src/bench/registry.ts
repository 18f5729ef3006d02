/** The benchmark cases, in the order `iommu bench` runs them. */
import type { BenchCase } from "./harness.js";
import { iovaCase } from "./cases/iova.js";
import { translateHitCase, translateWalkCase } from "./cases/translate.js";
import { dumpWalkCase } from "./cases/dump-walk.js";
import { dmaMapSgCase, scaleCase } from "./cases/dma.js";
import { amdTranslateHitCase, amdTranslateWalkCase } from "./cases/amdvi-translate.js";

export const benchCases: readonly BenchCase[] = [
  translateHitCase,
  translateWalkCase,
  iovaCase,
  dmaMapSgCase,
  dumpWalkCase,
  scaleCase,
  amdTranslateHitCase,
  amdTranslateWalkCase,
];
