/** `node dist/cli/catalog-write.js`: rewrite subjects/catalog.json from the code. */
import { writeFileSync } from "node:fs";
import { catalogJson } from "../contract/catalog.js";

writeFileSync(new URL("../../subjects/catalog.json", import.meta.url), catalogJson());
