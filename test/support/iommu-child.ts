/** The `iommu` entry point run from source in a child process (tests of pipes and exit status). */
import { main } from "../../src/cli/main.js";

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
